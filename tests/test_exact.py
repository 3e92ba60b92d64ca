"""The in-process exact-search kernel (:class:`lookalike.vectors.exact.VectorMatrix`) against a brute-force
float64 reference, at its switch points.

The kernel ranks rows in float32 and recomputes the returned rows in float64. Its switch points:

* ``_ARGMIN_K`` (32): top-k is k argmin passes when ``k <= 32`` *and* more than ``8 * k`` rows are
  eligible; otherwise it is an ``argpartition`` (or, when ``k >= rows``, a full sort);
* a candidate filter wider than ``n // 3`` rows ranks the whole matrix and gathers, narrower ones
  gather first;
* ``_L1_CHUNK`` (16 384) rows per L1 block;
* a distance range takes ``k + _RECHECK`` float32 rows with widened bounds and takes 4× more while
  the float64 bounds drop too many.

Promised order: by float64 distance, ties by id (rows are kept sorted by id, so position == id order).
Most tests use small-integer vectors so the float32 distances of l1, l2 and inner product are exact
and the reference can be compared id for id, ties included.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookalike.vectors import exact
from lookalike.vectors.exact import VectorMatrix

METRICS = ("l2", "l1", "inner_product", "cosine")
EXACT_METRICS = ("l2", "l1", "inner_product")  # float32 is exact on small integers
DIM = 8


# ---------------------------------------------------------------------------- reference
def ref_distances(data: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    x = np.asarray(data, np.float32).astype(np.float64).reshape(-1, DIM if data.size == 0 else data.shape[-1])
    q = np.asarray(query, np.float32).astype(np.float64)
    if metric == "l2":
        return np.sqrt(((x - q) ** 2).sum(axis=1))
    if metric == "l1":
        return np.abs(x - q).sum(axis=1)
    if metric == "inner_product":
        return -(x @ q)
    if metric == "cosine":
        denom = np.linalg.norm(x, axis=1) * np.linalg.norm(q)
        cos = np.divide(x @ q, denom, out=np.zeros(len(x)), where=denom > 0)
        return 1.0 - np.clip(cos, -1.0, 1.0)
    raise AssertionError(metric)


def ref_search(contents: dict[int, np.ndarray], query, metric, k, candidate_ids=None, dmin=None, dmax=None):
    ids = np.array(sorted(contents), dtype=np.int64)
    if not len(ids) or k <= 0:
        return np.empty(0, np.int64), np.empty(0)
    d = ref_distances(np.stack([contents[i] for i in ids]), query, metric)
    keep = np.ones(len(ids), bool)
    if candidate_ids is not None:
        keep &= np.isin(ids, np.asarray(candidate_ids, np.int64))
    if dmin is not None:
        keep &= d >= dmin
    if dmax is not None:
        keep &= d <= dmax
    ids, d = ids[keep], d[keep]
    order = np.lexsort((ids, d))[:k]
    return ids[order], d[order]


def check(m: VectorMatrix, contents, query, metric, k, candidate_ids=None, dmin=None, dmax=None):
    got_ids, got_d = m.search(
        query, metric, k, candidate_ids=candidate_ids, distance_min=dmin, distance_max=dmax
    )
    want_ids, want_d = ref_search(contents, query, metric, k, candidate_ids, dmin, dmax)
    assert got_ids.dtype == np.int64 and got_d.dtype == np.float64
    if metric in EXACT_METRICS:
        np.testing.assert_array_equal(got_ids, want_ids)
        np.testing.assert_array_equal(got_d, want_d)
    else:  # cosine's float32 ranking is approximate: same distances, sorted, ties by id, from the right rows
        assert len(got_ids) == len(want_ids)
        assert len(set(got_ids.tolist())) == len(got_ids)
        np.testing.assert_allclose(got_d, want_d, rtol=0, atol=1e-6)
        np.testing.assert_allclose(
            got_d, ref_search(contents, query, metric, len(contents), got_ids)[1], atol=1e-12
        )
        assert all(a < b or (a == b and i < j) for a, b, i, j in zip(got_d, got_d[1:], got_ids, got_ids[1:]))
    return got_ids, got_d


def outward(metric, dmin, dmax):
    """Bounds set at real distances; for cosine nudged out by 1e-9, as the reference's float64 cosine and
    the kernel's may differ in the last bit (l1, l2 and inner product are exact on small integers)."""
    if metric != "cosine":
        return dmin, dmax
    return (None if dmin is None else dmin - 1e-9), (None if dmax is None else dmax + 1e-9)


def int_matrix(n: int, seed: int = 0, dim: int = DIM, lo: int = -3, hi: int = 3, ids=None):
    rng = np.random.default_rng(seed)
    data = rng.integers(lo, hi + 1, size=(n, dim)).astype(np.float32)
    ids = np.arange(n, dtype=np.int64) * 3 + 5 if ids is None else np.asarray(ids, np.int64)
    m = VectorMatrix(dim)
    m.replace_all(ids, data)
    return m, {int(i): data[j] for j, i in enumerate(ids)}, rng


# ---------------------------------------------------------------------------- constants pinned
def test_switch_constants():
    assert exact._ARGMIN_K == 32
    assert exact._L1_CHUNK == 16_384
    assert exact._RECHECK == 8


# ---------------------------------------------------------------------------- top-k switch points
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 31, 32, 33])
@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_k_at_the_argmin_switch_and_rows_at_8k(metric, k, delta):
    """n = 8k - 1, 8k, 8k + 1: the argmin path starts strictly above 8k rows, and only for k <= 32."""
    n = 8 * k + delta
    m, contents, rng = int_matrix(n, seed=k * 10 + delta + 1)
    for _ in range(3):
        check(m, contents, rng.integers(-3, 4, DIM).astype(np.float32), metric, k)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n", [0, 1, 2, 5])
@pytest.mark.parametrize("k", [0, 1, 2, 3, 31, 32, 33])
def test_small_n_and_k_above_n(metric, n, k):
    m, contents, rng = int_matrix(n, seed=n)
    ids, _ = check(m, contents, rng.integers(-3, 4, DIM).astype(np.float32), metric, k)
    assert len(ids) == max(0, min(k, n))


@pytest.mark.parametrize("metric", METRICS)
def test_negative_k_returns_nothing(metric):
    m, _, _ = int_matrix(10)
    ids, d = m.search(np.ones(DIM, np.float32), metric, -1)
    assert len(ids) == 0 and len(d) == 0


def test_unknown_metric_raises():
    m, _, _ = int_matrix(10)
    with pytest.raises(ValueError):
        m.search(np.ones(DIM, np.float32), "hamming", 3)


@pytest.mark.parametrize("metric", EXACT_METRICS)
@pytest.mark.parametrize("n", [2000, 9000])
@pytest.mark.parametrize("k", [10, 31, 32, 33, 100])
def test_larger_n_both_paths(metric, n, k):
    m, contents, rng = int_matrix(n, seed=n + k)
    for _ in range(2):
        check(m, contents, rng.integers(-3, 4, DIM).astype(np.float32), metric, k)


@pytest.mark.parametrize(
    "n", [exact._L1_CHUNK - 1, exact._L1_CHUNK, exact._L1_CHUNK + 1, 2 * exact._L1_CHUNK + 7]
)
def test_l1_block_boundaries(n):
    m, contents, rng = int_matrix(n, seed=3, dim=4)
    q = rng.integers(-3, 4, 4).astype(np.float32)
    check(m, contents, q, "l1", 40)
    # the last row of the matrix is found wherever the block split falls
    last = max(contents)
    ids, d = m.search(contents[last] + np.float32(0.25), "l1", 1, candidate_ids=np.array([last, 5]))
    assert ids.tolist() == [last] and d[0] == 1.0


# ---------------------------------------------------------------------------- ties
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 5, 31, 32, 33, 40, 41, 60])
@pytest.mark.parametrize("n", [300, 1000])
def test_identical_vectors_tie_by_id_and_read_exactly_zero(metric, k, n):
    """41 copies of the query among random float rows: the lowest ids come back, in id order, at exactly 0
    (cosine: similarity exactly 1). Before the fix, k > 32 took arbitrary copies at the cut."""
    rng = np.random.default_rng(n + k)
    data = rng.standard_normal((n, 64)).astype(np.float32)
    q = data[7].copy()
    copies = np.unique(np.r_[rng.choice(n, 40, replace=False), 7])
    data[copies] = q
    ids = np.arange(n, dtype=np.int64) * 3 + 1
    m = VectorMatrix(64)
    m.replace_all(ids, data)
    got_ids, got_d = m.search(q, metric, k)
    if metric == "inner_product":  # ties on -|q|², not nearest-first for other rows, but copies still tie
        tied = got_d == got_d[0]
        assert np.all(np.diff(got_ids[tied]) > 0)
        return
    want = ids[copies][:k]
    np.testing.assert_array_equal(got_ids[: len(want)], want)
    assert (got_d[: len(want)] == 0.0).all()
    if k > len(copies):
        assert (got_d[len(want) :] > 0).all()


@pytest.mark.parametrize("metric", EXACT_METRICS)
@pytest.mark.parametrize("k", [1, 31, 32, 33, 64])
def test_heavy_ties_prefix_stable_across_k(metric, k):
    """Values in {0, 1} on 4 dims: many exact ties. top-k is a prefix of top-(k+1) on both sides of 32."""
    m, contents, _ = int_matrix(1500, seed=11, dim=4, lo=0, hi=1)
    q = np.array([1, 0, 1, 0], np.float32)
    a, _ = m.search(q, metric, k)
    b, _ = m.search(q, metric, k + 1)
    np.testing.assert_array_equal(a, b[:k])
    # and equal to the reference, ties by id
    got, want = m.search(q, metric, k)[0], ref_search(contents, q, metric, k)[0]
    np.testing.assert_array_equal(got, want)


def test_all_rows_identical():
    n = 700
    m = VectorMatrix(DIM)
    m.replace_all(np.arange(n, dtype=np.int64), np.ones((n, DIM), np.float32))
    for metric in METRICS:
        for k in (1, 32, 33, 699, 700, 701):
            ids, d = m.search(np.ones(DIM, np.float32), metric, k)
            np.testing.assert_array_equal(ids, np.arange(min(k, n)))
            if metric != "inner_product":
                assert (d == 0.0).all()


# ---------------------------------------------------------------------------- float64 exactness
@pytest.mark.parametrize("metric", ["l2", "l1", "cosine"])
def test_returned_distances_recomputed_in_float64(metric):
    rng = np.random.default_rng(5)
    data = (rng.standard_normal((500, 128)) * 37.0).astype(np.float32)
    m = VectorMatrix(128)
    m.replace_all(np.arange(500, dtype=np.int64), data)
    for row in (0, 123, 499):
        ids, d = m.search(data[row], metric, 3)
        assert ids[0] == row and d[0] == 0.0  # exactly, not 1e-7
        assert float(1.0 - d[0]) == 1.0
        np.testing.assert_allclose(d, ref_distances(data[ids], data[row], metric), rtol=1e-12, atol=1e-12)


def test_zero_vectors_cosine():
    m = VectorMatrix(DIM)
    data = np.zeros((3, DIM), np.float32)
    data[1, 0] = 1.0
    m.replace_all(np.array([1, 2, 3]), data)
    ids, d = m.search(np.eye(DIM, dtype=np.float32)[0], "cosine", 3)
    assert ids.tolist() == [2, 1, 3] and d.tolist() == [0.0, 1.0, 1.0]
    ids, d = m.search(np.zeros(DIM, np.float32), "cosine", 3)
    assert ids.tolist() == [1, 2, 3] and d.tolist() == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------------------- candidate filter
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 32, 33])
def test_candidate_filter(metric, k):
    n = 900
    m, contents, rng = int_matrix(n, seed=21)
    all_ids = np.array(sorted(contents))
    q = rng.integers(-3, 4, DIM).astype(np.float32)
    narrow = rng.choice(all_ids, n // 3, replace=False)  # exactly n // 3: the gather path
    wide = rng.choice(all_ids, n // 3 + 1, replace=False)  # one more: the full mat-vec path
    for cands in (
        narrow,
        wide,
        all_ids,
        all_ids[:5],
        np.array([], np.int64),
        np.array([-7, 1, 2, 10**12]),  # none present
        np.r_[np.array([-7, 10**12, 4]), all_ids[::7]][::-1],  # some absent, unsorted
        np.r_[all_ids[:3], all_ids[:3]],  # duplicates
    ):
        ids, _ = check(m, contents, q, metric, k, candidate_ids=cands)
        assert np.isin(ids, cands).all()


def test_candidate_filter_on_empty_matrix():
    m = VectorMatrix(DIM)
    ids, d = m.search(np.ones(DIM, np.float32), "l2", 5, candidate_ids=np.array([1, 2]))
    assert len(ids) == 0 and len(d) == 0


# ---------------------------------------------------------------------------- distance ranges
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 5, 32, 33])
def test_distance_range(metric, k):
    m, contents, rng = int_matrix(800, seed=31)
    q = rng.integers(-3, 4, DIM).astype(np.float32)
    d = np.sort(ref_distances(np.stack(list(contents.values())), q, metric))
    a, b = d[100], d[300]  # bounds equal to real distances: inclusive on both ends
    for dmin, dmax in ((a, b), (a, None), (None, b), (b, a), (d[0], d[0]), (d[-1] + 1, None)):
        dmin, dmax = outward(metric, dmin, dmax)
        check(m, contents, q, metric, k, dmin=dmin, dmax=dmax)
        check(m, contents, q, metric, k, candidate_ids=np.array(sorted(contents))[::2], dmin=dmin, dmax=dmax)


@pytest.mark.parametrize("side", ["max", "min"])
def test_distance_range_recheck_grows(side):
    """Many rows sit just outside the bound, inside its float32 slack: the float32 pass lets them in,
    float64 drops them, and the kernel takes 4× more rows until it has k (or all) in range."""
    eps = np.float32(2.0**-23)
    near = 1.0 + eps * np.arange(1, 41, dtype=np.float32) if side == "max" else 1.0 - eps * np.arange(1, 41)
    inside = np.full(5, 0.5 if side == "max" else 1.5, np.float32)
    r = np.r_[inside, near].astype(np.float32)
    data = np.zeros((len(r), DIM), np.float32)
    data[:, 0] = r
    ids = np.arange(len(r), dtype=np.int64)[::-1].copy()  # in-range rows have the highest ids
    order = np.argsort(ids)
    m = VectorMatrix(DIM)
    m.replace_all(ids[order], data[order])
    contents = {int(i): data[j] for j, i in enumerate(ids)}
    q = np.zeros(DIM, np.float32)
    kw = {"dmax": 1.0} if side == "max" else {"dmin": 1.0}
    for k in (3, 5, 10, 40):
        got, d = check(m, contents, q, "l2", k, **kw)
        assert len(got) == min(k, 5) and (d <= 1.0 if side == "max" else d >= 1.0).all()


# ---------------------------------------------------------------------------- writes
@pytest.mark.parametrize("metric", METRICS)
def test_writes_then_search(metric):
    m, contents, rng = int_matrix(400, seed=41)

    def fresh(ids):
        return {int(i): rng.integers(-3, 4, DIM).astype(np.float32) for i in ids}

    def apply_upsert(new):
        ids = np.array(list(new), np.int64)
        m.upsert(ids, np.stack([new[int(i)] for i in ids]))
        contents.update(new)

    def verify():
        np.testing.assert_array_equal(m.ids, np.array(sorted(contents)))
        assert len(m) == len(contents)
        for _ in range(2):
            q = rng.integers(-3, 4, DIM).astype(np.float32)
            for k in (1, 32, 33):
                check(m, contents, q, metric, k)

    verify()
    apply_upsert(fresh([5000, 5003, 5001]))  # appended past max id, out of order within the batch
    verify()
    apply_upsert(fresh([-4, 100, 6, 999, 7]))  # new ids below max: the merge path, out of order
    verify()
    apply_upsert(fresh([5, 8, 5000, -4]))  # all present: vectors replaced in place
    verify()
    apply_upsert(fresh([11, 123456, 2, 14]))  # mixed present / new
    verify()
    m.upsert(np.array([], np.int64), np.empty((0, DIM), np.float32))
    verify()
    gone = [5, 5000, 123456, -4, 77777, -1]  # some not present
    m.remove(np.array(gone))
    for i in gone:
        contents.pop(i, None)
    verify()
    m.remove(np.array([424242]))  # nothing present: no change
    m.remove(np.array([], np.int64))
    verify()
    all_ids = np.array(sorted(contents))
    m.remove(all_ids)
    contents.clear()
    assert len(m) == 0 and m.search(np.ones(DIM, np.float32), metric, 5)[0].size == 0
    apply_upsert(fresh([3, 1, 2]))  # from empty again
    verify()
    m2, c2, _ = int_matrix(50, seed=42, ids=np.arange(50) * 2)
    m.replace_all(m2.ids.copy(), m2.data.copy())
    contents.clear()
    contents.update(c2)
    verify()


def test_upsert_replacement_changes_cosine_norm_cache():
    m = VectorMatrix(2)
    m.replace_all(np.array([1, 2]), np.array([[1, 0], [0, 1]], np.float32))
    q = np.array([1, 0], np.float32)
    assert m.search(q, "cosine", 1)[0].tolist() == [1]
    m.upsert(np.array([2]), np.array([[5, 0]], np.float32))  # same count of rows, new norm
    ids, d = m.search(q, "cosine", 2)
    assert ids.tolist() == [1, 2] and d.tolist() == [0.0, 0.0]
    m.upsert(np.array([1]), np.array([[0, 3]], np.float32))
    ids, d = m.search(q, "cosine", 2)
    assert ids.tolist() == [2, 1] and d.tolist() == [0.0, 1.0]


def test_replace_all_from_read_only_buffer():
    data = np.arange(4 * DIM, dtype=np.float32)
    m = VectorMatrix(DIM)
    m.replace_all(np.arange(4), np.frombuffer(data.tobytes(), dtype=np.float32))
    m.upsert(np.array([2]), np.zeros((1, DIM), np.float32))  # in place on a copy, not the buffer
    assert m.search(np.zeros(DIM, np.float32), "l2", 1)[0].tolist() == [2]


# ---------------------------------------------------------------------------- property
_ops = st.lists(
    st.tuples(
        st.sampled_from(["upsert", "remove", "replace_all"]),
        st.lists(st.integers(-50, 400), max_size=60, unique=True),
    ),
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 300),
    seed=st.integers(0, 2**16),
    ops=_ops,
    metric=st.sampled_from(METRICS),
    k=st.sampled_from([0, 1, 2, 7, 31, 32, 33, 40, 300]),
    filt=st.one_of(st.none(), st.lists(st.integers(-50, 1000), max_size=120)),
    bounds=st.one_of(st.none(), st.tuples(st.integers(0, 20), st.integers(0, 20))),
)
def test_property_matches_reference(n, seed, ops, metric, k, filt, bounds):
    m, contents, rng = int_matrix(n, seed=seed, lo=-2, hi=2, ids=np.arange(n) * 3)
    for op, ids in ops:
        vecs = rng.integers(-2, 3, size=(len(ids), DIM)).astype(np.float32)
        if op == "upsert":
            m.upsert(np.array(ids, np.int64), vecs)
            contents.update({i: v for i, v in zip(ids, vecs)})
        elif op == "remove":
            m.remove(np.array(ids, np.int64))
            for i in ids:
                contents.pop(i, None)
        else:
            order = np.argsort(ids)
            m.replace_all(np.array(ids, np.int64)[order], vecs[order])
            contents = {i: v for i, v in zip(ids, vecs)}
    np.testing.assert_array_equal(m.ids, np.array(sorted(contents), np.int64))
    q = rng.integers(-2, 3, DIM).astype(np.float32)
    dmin = dmax = None
    if bounds is not None and contents:
        d = np.sort(ref_distances(np.stack(list(contents.values())), q, metric))
        dmin, dmax = d[min(bounds[0], len(d) - 1)], d[min(bounds[0] + bounds[1], len(d) - 1)]
        dmin, dmax = outward(metric, dmin, dmax)
    cands = None if filt is None else np.array(filt, np.int64)
    check(m, contents, q, metric, k, candidate_ids=cands, dmin=dmin, dmax=dmax)


@pytest.mark.parametrize("start", [[], [5], [1, 9]])
def test_an_id_given_twice_in_one_upsert_is_one_row_with_the_later_vector(start: list[int]) -> None:
    m = VectorMatrix(2)
    if start:
        m.replace_all(np.array(start, dtype=np.int64), np.ones((len(start), 2), dtype=np.float32))
    m.upsert(np.array([7, 3, 7]), np.array([[1, 0], [0, 1], [2, 2]], dtype=np.float32))
    assert m.ids.tolist() == sorted({*start, 3, 7})
    row = m.data[m.ids.tolist().index(7)]
    assert row.tolist() == [2.0, 2.0]
