"""Differential tests: generated tables, vectors, filters and searches, each checked against a
brute-force reference written here in plain Python/numpy from the documented semantics (not by
calling the library's filter compiler), on SQLite, on SQLite with its IVF index, on PostgreSQL, and on
PostgreSQL with an HNSW index.

The reference semantics, from ``lookalike/filters.py``'s docstring and the README:

* a bare value is ``$eq``; several operators on one field and several keys in one dict are ANDed;
* every field test is two-valued: a NULL (or missing JSON key, or JSON ``null``) fails ``$eq v``,
  ``$gt``… and ``$in``, passes ``$ne v`` and ``$nin`` (they "count NULL as not equal"); ``$eq None``
  is "is missing", ``$ne None`` "is present"; ``$in`` is the OR of ``$eq`` over its list and ``$nin``
  its negation (so a ``None`` in the list stands for a missing value, like ``$eq None``);
* ``$not`` is the complement of its filter, ``$and``/``$or`` are all/any;
* ``$like`` is SQL LIKE, case-sensitive (as on PostgreSQL and TiDB); ``$contains`` is a
  case-sensitive substring test on text and an element test on JSON arrays (anything else at the
  path, a scalar or an object, contains nothing), with JSON types kept apart (``true`` is not ``1``);
* ``$exists`` is true when the value is not NULL, a JSON ``null`` counting as missing;
* distances: ``1 - cos`` (1 when either vector is zero: the engines define it so, "no similarity"),
  ``‖a - b‖₂``, ``-(a · b)``, ``Σ|aᵢ - bᵢ|``; results nearest first, ties by primary key (SQLite's
  matrix is kept in id order and ties go to the lower position; PostgreSQL orders by distance, pk).

Run more examples with ``LOOKALIKE_HYPOTHESIS_PROFILE=long`` (or ``scripts/differential_long.py``).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlmodel import JSON

import lookalike
from lookalike import Field, TableModel, VectorField

# ---------------------------------------------------------------------- settings

PROFILE = os.environ.get("LOOKALIKE_HYPOTHESIS_PROFILE", "ci")
EXAMPLES = {"ci": 40, "long": 4000}.get(PROFILE, 40)
if os.environ.get("LOOKALIKE_HYPOTHESIS_EXAMPLES"):  # the long-run script sizes runs to a time budget
    EXAMPLES = int(os.environ["LOOKALIKE_HYPOTHESIS_EXAMPLES"])

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # database round trips vary; a per-example deadline would only add flakes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
    report_multiple_bugs=False,  # one bug at a time: shrinking several at once takes minutes
    # LOOKALIKE_HYPOTHESIS_NO_SHRINK=1 while hunting: failures come back at once, unshrunk
    phases=[Phase.explicit, Phase.reuse, Phase.generate]
    if os.environ.get("LOOKALIKE_HYPOTHESIS_NO_SHRINK")
    else list(Phase),
)

# generated cases per engine, reported by the long-run script (LOOKALIKE_DIFF_STATS names a file)
RUNS: Counter[str] = Counter()

METRICS = ["cosine", "l2", "inner_product", "l1"]
EPS = 1e-4  # float32 engines vs the float64 reference; distances are at most ~100 here


# ---------------------------------------------------------------------- strategies

# small pools so that equal values, ties and collisions between filter values and data are common
INTS = st.integers(-4, 4)
FLOATS = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, -2.25, 3.75, 1e-3]) | st.floats(
    -10, 10, allow_nan=False, width=32
)
# no backslash: PostgreSQL's LIKE escapes with it by default and SQLite's has no escape character
ALPHABET = st.sampled_from(["a", "A", "b", "B", "é", "É", "ß", "😀", " ", "%", "_", "/", "-"])
TEXT = st.text(ALPHABET, max_size=4)
BOOLS = st.booleans()


def nullable(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | s


# The JSON column ``meta`` keeps one type per path. PostgreSQL reads a path as text and casts it to
# the compared value's type, so a path holding another type (a string where ints are compared) is a
# cast error there; mixed types per path are out of scope here.
TAG = st.sampled_from(["a", "b", "A", ""]) | st.integers(0, 2) | st.booleans()
META = st.fixed_dictionaries(
    {},
    optional={
        "n": nullable(INTS),
        "f": nullable(FLOATS),
        "s": nullable(TEXT),
        "flag": nullable(BOOLS),
        "tags": st.lists(TAG, max_size=3),
        "sub": st.fixed_dictionaries({}, optional={"x": nullable(INTS), "y": nullable(TEXT)}),
    },
)

ROW = st.fixed_dictionaries(
    {
        "i": nullable(INTS),
        "f": nullable(FLOATS),
        "s": nullable(TEXT),
        "b": nullable(BOOLS),
        "meta": nullable(META),
    }
)

# (field, value strategy, ordered?): what a leaf may compare each field with
SCALAR_FIELDS: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("i", INTS | FLOATS),
    ("f", FLOATS | INTS),
    ("s", TEXT),
    ("b", BOOLS),
    ("meta.n", INTS | FLOATS),
    ("meta.f", FLOATS),  # an int would cast the stored float text to integer on PostgreSQL
    ("meta.s", TEXT),
    ("meta.flag", BOOLS),
    ("meta.sub.x", INTS),
    ("meta.sub.y", TEXT),
]
TEXT_FIELDS = ["s", "meta.s", "meta.sub.y"]


@st.composite
def leaf(draw: st.DrawFn) -> dict[str, Any]:
    """One field test: ``{field: value}`` or ``{field: {op: arg, ...}}``."""
    kind = draw(st.sampled_from(["scalar", "scalar", "scalar", "text", "exists", "contains"]))
    if kind == "exists":
        name = draw(st.sampled_from([f for f, _ in SCALAR_FIELDS] + ["meta", "meta.tags", "meta.sub"]))
        if draw(st.booleans()):
            return {name: {"$exists": draw(BOOLS)}}
        return {name: {draw(st.sampled_from(["$eq", "$ne"])): None}} if draw(BOOLS) else {name: None}
    if kind == "contains":
        # meta.s and meta hold a scalar and an object: an element test on them must match nothing
        name = draw(st.sampled_from(["meta.tags", "meta.tags", "meta.s", "meta"]))
        return {name: {"$contains": draw(TAG)}}
    if kind == "text":
        name = draw(st.sampled_from(TEXT_FIELDS))
        if draw(st.booleans()):
            pattern = draw(st.text(ALPHABET | st.sampled_from(["%", "_"]), max_size=4))
            return {name: {"$like": pattern}}
        return {name: {"$contains": draw(TEXT)}}
    name, values = draw(st.sampled_from(SCALAR_FIELDS))
    ops: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 2))):  # one or two operators on the field, ANDed
        op = draw(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"]))
        if op in ("$in", "$nin"):
            ops[op] = draw(st.lists(nullable(values), max_size=3))
        else:
            ops[op] = draw(values)
    if list(ops) == ["$eq"] and draw(st.booleans()):
        return {name: ops["$eq"]}  # a bare value is $eq
    return {name: ops}


def filters() -> st.SearchStrategy[dict[str, Any]]:
    """Leaves combined by $and/$or/$not and by several keys in one dict, nested."""

    def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda xs: {"$and": xs}),
            st.lists(children, min_size=1, max_size=3).map(lambda xs: {"$or": xs}),
            children.map(lambda x: {"$not": x}),
            st.lists(children, min_size=2, max_size=3).map(_merge),
        )

    return st.recursive(leaf(), extend, max_leaves=6)


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several filters as keys of one dict (implicitly ANDed); a repeated key goes into an $and."""
    out: dict[str, Any] = {}
    rest: list[dict[str, Any]] = []
    for part in parts:
        if any(k in out for k in part):
            rest.append(part)
        else:
            out.update(part)
    if rest:
        out["$and"] = [*out.get("$and", []), *rest] if "$and" in out else rest
    return out


@st.composite
def vectors(draw: st.DrawFn, n: int, dims: int) -> list[list[float] | None]:
    """Vectors with NULLs, zero vectors, exact duplicates and small integers (exact ties)."""
    out: list[list[float] | None] = []
    small = st.lists(st.integers(-2, 2).map(float), min_size=dims, max_size=dims)
    real = st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=dims, max_size=dims)
    for _ in range(n):
        kind = draw(st.sampled_from(["small", "small", "real", "dup", "zero", "none"]))
        if kind == "dup" and any(v is not None for v in out):
            out.append(list(draw(st.sampled_from([v for v in out if v is not None]))))
        elif kind == "zero":
            out.append([0.0] * dims)
        elif kind == "none":
            out.append(None)
        else:
            out.append(draw(real if kind == "real" else small))
    return out


@dataclass
class Case:
    """One generated table and one search/query over it."""

    dims: int
    rows: list[dict[str, Any]]
    vecs: list[list[float] | None]
    query: list[float]
    metric: str
    where: dict[str, Any] | None
    lower: float | None
    upper: float | None
    limit: int
    q_limit: int | None
    q_offset: int | None
    extra: dict[str, Any] = field(default_factory=dict)


@st.composite
def cases(draw: st.DrawFn, max_rows: int = 45) -> Case:
    dims = draw(st.integers(4, 8))
    rows = draw(st.lists(ROW, max_size=max_rows))
    vecs = draw(vectors(len(rows), dims))
    present = [v for v in vecs if v is not None]
    query_kind = draw(st.sampled_from(["row", "small", "zero"] if present else ["small", "zero"]))
    if query_kind == "row":  # an exact match exists
        query = list(draw(st.sampled_from(present)))
    elif query_kind == "zero":
        query = [0.0] * dims
    else:
        query = draw(st.lists(st.integers(-2, 2).map(float), min_size=dims, max_size=dims))
    metric = draw(st.sampled_from(METRICS))
    ref = distances(np.array(present, dtype=np.float32).reshape(-1, dims), np.array(query), metric)
    bound = st.none() | st.sampled_from(sorted(set(ref.tolist())) or [0.0]) | st.floats(-5, 5)
    lower, upper = draw(bound), draw(bound)
    if lower is not None and upper is not None and lower > upper:
        lower, upper = upper, lower
    return Case(
        dims=dims,
        rows=rows,
        vecs=vecs,
        query=query,
        metric=metric,
        where=draw(st.none() | filters()),
        lower=lower,
        upper=upper,
        limit=draw(st.integers(1, 12)),
        q_limit=draw(st.none() | st.integers(0, 10)),
        q_offset=draw(st.none() | st.integers(0, 10)),
    )


# ---------------------------------------------------------------------- the reference


def distances(data: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """``_distance`` in float64 from the stored float32 values; cosine with a zero vector is 1."""
    m, qq = np.asarray(data, np.float32).astype(np.float64), np.asarray(q, np.float32).astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(m, axis=1) * np.linalg.norm(qq)
        dots = m @ qq
        return np.where(norms > 0, 1.0 - dots / np.where(norms > 0, norms, 1.0), 1.0)
    if metric == "l2":
        return np.linalg.norm(m - qq, axis=1)
    if metric == "inner_product":
        return -(m @ qq)
    return np.abs(m - qq).sum(axis=1)


_MISSING = None


def value_of(row: dict[str, Any], name: str) -> Any:
    """A column's value, or a JSON path's (None when a key is missing or holds JSON null)."""
    if name in row:
        return row[name]
    head, _, rest = name.partition(".")
    cur: Any = row.get(head)
    for key in rest.split(".") if rest else []:
        cur = cur.get(key) if isinstance(cur, dict) else _MISSING
    return cur


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def _same(a: Any, b: Any) -> bool:
    """JSON equality: numbers compare by value, but ``true`` is not ``1``."""
    return _kind(a) == _kind(b) and a == b


def _like(text: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, flags=re.DOTALL) is not None


def op_matches(value: Any, op: str, arg: Any, *, json_path: bool = False) -> bool:
    """One field operator, two-valued (see the module docstring)."""
    if op == "$exists":
        return (value is not None) == bool(arg)
    if op == "$eq":
        return value is None if arg is None else value is not None and _same(value, arg)
    if op == "$ne":
        return not op_matches(value, "$eq", arg)
    if op == "$in":
        return any(op_matches(value, "$eq", a) for a in arg)
    if op == "$nin":
        return not op_matches(value, "$in", arg)
    if op == "$like":
        return isinstance(value, str) and _like(value, arg)
    if op == "$contains":
        if isinstance(value, list):
            return any(_same(v, arg) for v in value)
        # a substring test on text columns only: in JSON a string is a scalar, not an array
        return not json_path and isinstance(value, str) and isinstance(arg, str) and arg in value
    if value is None:
        return False
    return {"$gt": value > arg, "$gte": value >= arg, "$lt": value < arg, "$lte": value <= arg}[op]


def row_matches(row: dict[str, Any], filt: dict[str, Any] | None) -> bool:
    """The reference filter interpreter."""
    if not filt:
        return True
    for key, cond in filt.items():
        if key == "$and":
            ok = all(row_matches(row, sub) for sub in cond)
        elif key == "$or":
            ok = any(row_matches(row, sub) for sub in cond)
        elif key == "$not":
            ok = not row_matches(row, cond)
        elif isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
            value = value_of(row, key)
            ok = all(op_matches(value, op, arg, json_path="." in key) for op, arg in cond.items())
        else:
            ok = op_matches(value_of(row, key), "$eq", cond)
        if not ok:
            return False
    return True


# ---------------------------------------------------------------------- running a case

_names = itertools.count()


def make_table(client: lookalike.Client, dims: int, *, index: bool = False) -> lookalike.Table:
    # a fresh name per example: a failing example leaves nothing behind that the next one trips on
    name = f"diff_{os.getpid()}_{next(_names)}"

    class Row(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        i: int | None = Field(default=None)
        f: float | None = Field(default=None)
        s: str | None = Field(default=None)
        b: bool | None = Field(default=None)
        meta: dict | None = Field(default=None, sa_type=JSON)
        vec: list[float] | None = VectorField(dimensions=dims, index=index)

    return client.create_table(schema=Row)


def load(t: lookalike.Table, case: Case) -> list[int]:
    out = t.bulk_insert([{**row, "vec": vec} for row, vec in zip(case.rows, case.vecs)])
    return [r["id"] for r in out]


def check_search(
    got: list[dict[str, Any]], case: Case, ids: list[int], *, exact: bool, where: dict[str, Any] | None
) -> None:
    """``got`` against the reference: exact top-k (exact=True) or a valid answer with good recall."""
    idx = [j for j, v in enumerate(case.vecs) if v is not None]
    data = np.array([case.vecs[j] for j in idx], dtype=np.float32).reshape(-1, case.dims)
    ref = dict(zip([ids[j] for j in idx], distances(data, np.array(case.query), case.metric).tolist()))
    passing = {ids[j] for j in idx if row_matches(case.rows[j], where)}
    lo = -math.inf if case.lower is None else case.lower
    hi = math.inf if case.upper is None else case.upper
    # values within EPS of a bound may round either way in float32: they may or may not come back
    allowed = {i for i in passing if lo - EPS <= ref[i] <= hi + EPS}
    certain = {i for i in passing if lo + EPS <= ref[i] <= hi - EPS}
    got_ids = [r["id"] for r in got]
    got_d = [r["_distance"] for r in got]

    assert len(set(got_ids)) == len(got_ids), f"duplicate rows: {got_ids}"
    wrong = [i for i in got_ids if i not in allowed]
    assert not wrong, f"rows outside the filter/range: {wrong}"
    np.testing.assert_allclose(got_d, [ref[i] for i in got_ids], rtol=EPS, atol=EPS, err_msg="distances")
    assert all(a <= b + EPS for a, b in itertools.pairwise(got_d)), f"not nearest first: {got_d}"
    for (ia, da), (ib, db) in itertools.pairwise(zip(got_ids, got_d)):
        assert da != db or ia < ib, f"ties not in primary-key order: {list(zip(got_ids, got_d))}"
    # `limit` rows whenever that many match (promised for the index too)
    assert min(case.limit, len(certain)) <= len(got_ids) <= min(case.limit, len(allowed)), (
        len(got_ids),
        len(certain),
        len(allowed),
    )
    for r in got:
        assert r["_score"] == pytest.approx(_score(case.metric, r["_distance"]), rel=1e-9, abs=1e-9)
    if exact:
        worst = max(got_d, default=-math.inf)
        if len(got_ids) == case.limit:  # no allowed row left out is nearer than the farthest kept
            missed = [i for i in certain - set(got_ids) if ref[i] < worst - EPS]
        else:  # fewer than limit: every certain row is there
            missed = sorted(certain - set(got_ids))
        assert not missed, f"missed rows {missed} (kept up to {worst})"
        # identical stored vectors tie exactly, and ties go by primary key
        vec_of = {ids[j]: tuple(case.vecs[j]) for j in idx}  # type: ignore[arg-type]
        for a, b in itertools.combinations(range(len(got)), 2):
            if vec_of[got_ids[a]] == vec_of[got_ids[b]]:
                assert got_d[a] == got_d[b] and got_ids[a] < got_ids[b], (got_ids, got_d)
    else:
        # recall against the exact top-k (every row tied with the k-th counts as a right answer)
        # pgvector's cosine HNSW index leaves zero vectors out (no direction): the index can't find
        # them, so recall is measured over the rows it holds (an unfixed limitation, see the report)
        # (a zero vector the search did return still counts as right when its distance earns it a place:
        # with a zero query every cosine distance is 1, and ties go to the lower id)
        zero: set[int] = set()
        if case.metric == "cosine":
            zero = {ids[j] for j in idx if not any(case.vecs[j])} & allowed  # type: ignore[arg-type]
            certain, allowed = certain - zero, allowed - zero
        ranked = sorted(certain, key=lambda i: (ref[i], i))[: case.limit]
        if ranked and got_ids:
            # fewer rows than limit (zero vectors aside): every allowed row has earned its place
            kth = ref[ranked[-1]] if len(ranked) >= case.limit else math.inf
            right = {i for i in allowed | zero if ref[i] <= kth + EPS}
            recall = len(set(got_ids) & right) / len(got_ids)
            assert recall >= 0.8, f"recall {recall:.2f}"


def _score(metric: str, d: float) -> float:
    if metric == "cosine":
        return 1 - d
    return -d if metric == "inner_product" else 1 / (1 + d)


def run_search(t: lookalike.Table, case: Case, where: dict[str, Any] | None) -> list[dict[str, Any]]:
    s = t.search(vector=case.query).distance_metric(case.metric).limit(case.limit)
    if where is not None:
        s = s.filter(where)
    if case.lower is not None:
        s = s.distance_range(case.lower, case.upper)
    elif case.upper is not None:
        s = s.distance_threshold(case.upper)
    return s.to_list()


def check_query(t: lookalike.Table, case: Case, ids: list[int]) -> None:
    """``query()`` with the same filter, ordered by id, with limit/offset; rows come back as written."""
    expected = [ids[j] for j, row in enumerate(case.rows) if row_matches(row, case.where)]
    start = case.q_offset or 0
    expected = expected[start : None if case.q_limit is None else start + case.q_limit]
    got = t.query(case.where, order_by="id", limit=case.q_limit, offset=case.q_offset).to_list()
    assert [r["id"] for r in got] == expected, case.where
    by_id = dict(zip(ids, case.rows))
    for r in got:
        want = by_id[r["id"]]
        assert {k: r[k] for k in want} == want


def run_case(client: lookalike.Client, case: Case, engine: str) -> None:
    t = make_table(client, case.dims)
    try:
        ids = load(t, case)
        check_query(t, case, ids)
        check_search(run_search(t, case, case.where), case, ids, exact=True, where=case.where)
        RUNS[engine] += 1
    finally:
        client.drop_table(t.name, if_not_exists="skip")


# ---------------------------------------------------------------------- clients


def _pg_url() -> str:
    try:
        from tests.pg_support import postgres_url
    except ImportError:
        url = None
    else:
        url = postgres_url()
    if url is None:
        if os.environ.get("LOOKALIKE_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is required but could not be started")
        pytest.skip("PostgreSQL + pgvector not available")
    return url


@pytest.fixture(scope="module")
def sqlite_db() -> Iterator[lookalike.Client]:
    with tempfile.TemporaryDirectory() as tmp:
        c = lookalike.connect(Path(tmp) / "diff.db")
        yield c
        c.close()


@pytest.fixture(scope="module")
def sqlite_ivf() -> Iterator[lookalike.Client]:
    # every vector column searched through its IVF index, filtered searches through its candidate
    # pool even on these small tables (exact_search_max_rows=0)
    with tempfile.TemporaryDirectory() as tmp:
        c = lookalike.connect(
            f"sqlite:///{Path(tmp) / 'diff.db'}?vector_index=always&exact_search_max_rows=0"
        )
        yield c
        c.close()


@pytest.fixture(scope="module")
def pg_db() -> Iterator[lookalike.Client]:
    c = lookalike.connect(_pg_url())
    yield c
    c.close()


@pytest.fixture(scope="module")
def pg_ann() -> Iterator[lookalike.Client]:
    # exact_search_max_rows=0: a filtered search takes the index's candidate-pool path even on the
    # small tables generated here (the default answers filters matching < 20,000 rows exactly)
    c = lookalike.connect(_pg_url(), exact_search_max_rows=0)
    yield c
    c.close()


@pytest.fixture(scope="module", autouse=True)
def _report_runs() -> Iterator[None]:
    yield
    path = os.environ.get("LOOKALIKE_DIFF_STATS")
    if path:
        Path(path).write_text(json.dumps(dict(RUNS)))


# ---------------------------------------------------------------------- the generated tests


@SETTINGS
@given(case=cases())
def test_sqlite_matches_reference(sqlite_db: lookalike.Client, case: Case) -> None:
    run_case(sqlite_db, case, "sqlite")


@SETTINGS
@given(case=cases())
def test_sqlite_ivf_matches_reference(sqlite_ivf: lookalike.Client, case: Case) -> None:
    """With the IVF index asked for on the case's metric: the exact answer (an index this small
    passes every row to the exact re-rank; l1, which it doesn't serve, is searched exactly)."""
    t = make_table(sqlite_ivf, case.dims)
    try:
        ids = load(t, case)
        if case.metric != "l1":
            t.create_vector_index(metric=case.metric)
        check_query(t, case, ids)
        check_search(run_search(t, case, case.where), case, ids, exact=True, where=case.where)
        RUNS["sqlite+ivf"] += 1
    finally:
        sqlite_ivf.drop_table(t.name, if_not_exists="skip")


@SETTINGS
@given(case=cases())
def test_postgres_matches_reference(pg_db: lookalike.Client, case: Case) -> None:
    run_case(pg_db, case, "postgres")


@SETTINGS
@given(case=cases(max_rows=60), index_metric=st.sampled_from(["cosine", "l2", "inner_product", "l1"]))
def test_postgres_hnsw_matches_reference(pg_ann: lookalike.Client, case: Case, index_metric: str) -> None:
    """With an HNSW index: never a row that fails the filter or range, ``limit`` rows whenever that
    many match, and the index's answer close to the exact one (recall)."""
    if index_metric == "l1" and pg_ann.engine.pgvector_version < (0, 7, 0):  # type: ignore[attr-defined]
        index_metric = "l2"  # pgvector < 0.7 has no l1 opclass; l1 searches stay exact
    t = make_table(pg_ann, case.dims)
    try:
        ids = load(t, case)
        t.create_vector_index(metric=index_metric)
        assert t.has_vector_index()
        for metric in {index_metric, case.metric}:  # through the index, and a metric it doesn't serve
            one = Case(**{**case.__dict__, "metric": metric})
            exact = metric != index_metric
            check_search(run_search(t, one, case.where), one, ids, exact=exact, where=case.where)
        check_query(t, case, ids)
        RUNS["postgres+hnsw"] += 1
    finally:
        pg_ann.drop_table(t.name, if_not_exists="skip")


# ---------------------------------------------------------------------- regressions found by the above


def _ids(rows: Any) -> list[int]:
    return sorted(r["id"] for r in rows)


def test_bulk_insert_rows_listing_keys_in_another_order(client: lookalike.Client) -> None:
    """SQLite's fast insert path took values in the first row's key order for every row."""
    t = make_table(client, 4)
    out = t.bulk_insert(
        [
            {"i": 1, "s": "one", "f": 1.5, "vec": [1, 0, 0, 0]},
            {"s": "two", "vec": [0, 1, 0, 0], "f": 2.5, "i": 2},
        ]
    )
    got = {r["id"]: (r["i"], r["s"], r["f"]) for r in t.query()}
    assert got == {out[0]["id"]: (1, "one", 1.5), out[1]["id"]: (2, "two", 2.5)}


def test_like_and_text_contains_are_case_sensitive(client: lookalike.Client) -> None:
    """SQLite's LIKE ignored ASCII case; PostgreSQL's doesn't."""
    t = make_table(client, 4)
    out = t.bulk_insert([{"s": "Abc", "vec": [1, 0, 0, 0]}, {"s": "abc", "vec": [0, 1, 0, 0]}])
    lower = out[1]["id"]
    assert _ids(t.query({"s": {"$like": "a%"}})) == [lower]
    assert _ids(t.query({"s": {"$contains": "ab"}})) == [lower]


def test_not_is_the_complement_when_values_are_null(client: lookalike.Client) -> None:
    """NOT (NULL < 8) is NULL in SQL: a row with i NULL fell out of both F and {"$not": F}."""
    t = make_table(client, 4)
    out = t.bulk_insert([{"i": 3, "vec": [1, 0, 0, 0]}, {"i": None, "vec": [0, 1, 0, 0]}])
    assert _ids(t.query({"$not": {"i": {"$lt": 8}}})) == [out[1]["id"]]
    assert _ids(t.query({"$not": {"meta.n": {"$gt": 0}}})) == _ids(out)
    hits = t.search(vector=[0, 1, 0, 0]).filter({"$not": {"i": {"$lt": 8}}}).to_list()
    assert [h["id"] for h in hits] == [out[1]["id"]]


def test_in_and_nin_with_none_in_the_list(client: lookalike.Client) -> None:
    """None in $in means "missing" (as {"$eq": None}); NOT IN (NULL) used to match nothing at all."""
    t = make_table(client, 4)
    out = t.bulk_insert([{"s": "x", "vec": [1, 0, 0, 0]}, {"s": None, "vec": [0, 1, 0, 0]}, {"s": "y"}])
    x, null, y = (r["id"] for r in out)
    assert _ids(t.query({"s": {"$in": [None, "x"]}})) == [x, null]
    assert _ids(t.query({"s": {"$nin": [None]}})) == [x, y]
    assert _ids(t.query({"s": {"$nin": [None, "x"]}})) == [y]
    assert _ids(t.query({"meta.s": {"$in": [None]}})) == [x, null, y]


def test_json_null_in_a_json_column_counts_as_missing(client: lookalike.Client) -> None:
    """PostgreSQL stored None in a JSON column as JSON null, which IS NULL didn't see."""
    t = make_table(client, 4)
    out = t.bulk_insert([{"meta": None, "vec": [1, 0, 0, 0]}, {"meta": {"n": 1}, "vec": [0, 1, 0, 0]}])
    none, some = out[0]["id"], out[1]["id"]
    assert _ids(t.query({"meta": {"$exists": False}})) == [none]
    assert _ids(t.query({"meta": None})) == [none]
    assert _ids(t.query({"meta": {"$ne": None}})) == [some]
    assert _ids(t.query({"meta": {"$exists": True}})) == [some]


def test_json_contains_is_an_element_test_on_arrays_only(client: lookalike.Client) -> None:
    """SQLite's json_each also walked scalars and objects, and took true for 1."""
    t = make_table(client, 4)
    out = t.bulk_insert(
        [
            {"meta": {"s": "abc", "tags": [True]}, "vec": [1, 0, 0, 0]},
            {"meta": {"s": "x", "tags": [1, "a"]}, "vec": [0, 1, 0, 0]},
        ]
    )
    flag, one = out[0]["id"], out[1]["id"]
    assert _ids(t.query({"meta.s": {"$contains": "abc"}})) == []  # a string is not an array
    assert _ids(t.query({"meta": {"$contains": "abc"}})) == []  # nor is an object
    assert _ids(t.query({"meta.tags": {"$contains": True}})) == [flag]
    assert _ids(t.query({"meta.tags": {"$contains": 1}})) == [one]
    assert _ids(t.query({"meta.tags": {"$contains": "a"}})) == [one]


def test_order_operators_take_booleans(client: lookalike.Client) -> None:
    """SQLAlchemy refused `col < True` with its own ArgumentError."""
    t = make_table(client, 4)
    out = t.bulk_insert([{"b": False, "vec": [1, 0, 0, 0]}, {"b": True, "meta": {"flag": True}}])
    assert _ids(t.query({"b": {"$lt": True}})) == [out[0]["id"]]
    assert _ids(t.query({"b": {"$gte": True}})) == [out[1]["id"]]
    assert _ids(t.query({"meta.flag": {"$gt": False}})) == [out[1]["id"]]


def test_cosine_with_a_zero_vector_is_distance_one_everywhere(client: lookalike.Client) -> None:
    """PostgreSQL's NaN for a zero vector sorted after every distance and failed every threshold."""
    t = make_table(client, 4)
    out = t.bulk_insert([{"vec": [0, 0, 0, 0]}, {"vec": [-1, 0, 0, 0]}, {"vec": [1, 0, 0, 0]}])
    zero, opposite, same = (r["id"] for r in out)
    hits = t.search(vector=[1, 0, 0, 0]).distance_metric("cosine").to_list()
    assert [h["id"] for h in hits] == [same, zero, opposite]
    np.testing.assert_allclose([h["_distance"] for h in hits], [0, 1, 2], atol=1e-6)
    near = t.search(vector=[1, 0, 0, 0]).distance_metric("cosine").distance_threshold(1.5).to_list()
    assert [h["id"] for h in near] == [same, zero]
    from_zero = t.search(vector=[0, 0, 0, 0]).distance_metric("cosine").distance_range(0.5, 1.5).to_list()
    assert [h["id"] for h in from_zero] == [zero, opposite, same]  # all at 1: ties by primary key


def test_hnsw_filtered_search_on_a_json_path() -> None:
    """The candidate-count EXPLAIN sent a JSON path as a raw tuple: "malformed array literal"."""
    c = lookalike.connect(_pg_url(), exact_search_max_rows=0)  # the index path even on a small table
    t = make_table(c, 4)
    try:
        out = t.bulk_insert([{"meta": {"n": i % 3}, "vec": [1, i, 0, 0]} for i in range(40)])
        t.create_vector_index(metric="l2")
        near = t.search(vector=[1, 0, 0, 0]).distance_metric("l2")  # the index's metric
        hits = near.filter({"meta.n": 2}).limit(3).to_list()
        assert [h["id"] for h in hits] == [out[i]["id"] for i in (2, 5, 8)]
        hits = near.filter({"meta.n": {"$in": [1, 2]}}).limit(2).to_list()
        assert [h["id"] for h in hits] == [out[1]["id"], out[2]["id"]]
    finally:
        c.drop_table(t.name, if_not_exists="skip")
        c.close()


def test_hnsw_search_never_returns_rows_without_a_vector() -> None:
    """The index path's candidate query had no `vector IS NOT NULL`; a scanned small table sorts
    NULL distances last and handed them back."""
    c = lookalike.connect(_pg_url(), exact_search_max_rows=0)
    t = make_table(c, 4)
    try:
        out = t.bulk_insert([{"vec": [1, 0, 0, 0]}, {"vec": None}, {"vec": [0, 1, 0, 0]}, {"vec": None}])
        t.create_vector_index(metric="inner_product")
        for s in (t.search(vector=[1, 0, 0, 0]), t.search(vector=[1, 0, 0, 0]).filter({"i": None})):
            hits = s.distance_metric("inner_product").limit(4).to_list()
            assert [h["id"] for h in hits] == [out[0]["id"], out[2]["id"]]
    finally:
        c.drop_table(t.name, if_not_exists="skip")
        c.close()


def test_a_float_compared_with_an_integer_column_is_not_rounded(client: lookalike.Client) -> None:
    """PostgreSQL's driver cast 0.001 to INTEGER 0 in `i NOT IN (..., 0.001)` and 0.5 to 1 in `i > 0.5`."""
    t = make_table(client, 4)
    out = t.bulk_insert([{"i": 0, "vec": [1, 0, 0, 0]}, {"i": 1, "vec": [0, 1, 0, 0]}])
    zero, one = out[0]["id"], out[1]["id"]
    assert _ids(t.query({"i": {"$nin": [3, -1, 0.001]}})) == [zero, one]
    assert _ids(t.query({"i": {"$in": [0.001, 1]}})) == [one]
    assert _ids(t.query({"i": {"$gt": 0.5}})) == [one]
    assert _ids(t.query({"i": {"$lte": 0.5}})) == [zero]
    assert _ids(t.query({"i": 0.0})) == [zero]
