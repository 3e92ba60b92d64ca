"""The IVF index on its own (lookalike.vectors.ivf): recall against brute force, add/remove, the
candidate selector, files (round trip, truncated, damaged, foreign, atomic), a missing faiss."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.common import clustered_vectors
from lookalike.errors import MissingDependencyError
from lookalike.vectors.ivf import IndexFileError, IVFIndex, default_nlist

pytest.importorskip("faiss")

HEADER = {"table": "photos", "column": "vec", "seq": 7, "max_rowid": 99}


def brute_force(data: np.ndarray, q: np.ndarray, metric: str, k: int) -> np.ndarray:
    """Positions of the k nearest rows, by the engine's distance definitions."""
    if metric == "cosine":
        d = 1 - (data @ q) / (np.linalg.norm(data, axis=1) * np.linalg.norm(q))
    elif metric == "inner_product":
        d = -(data @ q)
    else:
        d = np.linalg.norm(data - q, axis=1)
    return np.argsort(d, kind="stable")[:k]


def reranked(
    index: IVFIndex, data: np.ndarray, q: np.ndarray, metric: str, k: int, **kw: object
) -> np.ndarray:
    """Top-k keys after an exact re-rank of a 4k pool (keys are positions + 1)."""
    pool = index.search_pool(q, 4 * k, **kw)  # type: ignore[arg-type]  # nprobe/candidate_ids
    rows = pool - 1
    return rows[brute_force(data[rows], q, metric, k)] + 1


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """10,000 base vectors and 50 queries from 100 clusters (not too easy, not hopeless)."""
    data = clustered_vectors(10_050, dims=128, clusters=100, seed=1)
    return data[:10_000], data[10_000:]


@pytest.mark.parametrize("metric", ["cosine", "inner_product", "l2"])
def test_recall_against_brute_force(clustered: tuple[np.ndarray, np.ndarray], metric: str) -> None:
    base, queries = clustered
    index = IVFIndex.build(128, metric, base)
    index.add(np.arange(1, len(base) + 1), base)
    assert len(index) == len(base) and index.nlist == default_nlist(len(base)) == 400
    recalls = []
    for q in queries:
        got = reranked(index, base, q, metric, 10, nprobe=16)
        want = brute_force(base, q, metric, 10) + 1
        recalls.append(len(set(got.tolist()) & set(want.tolist())) / 10)
    assert np.mean(recalls) >= 0.95, np.mean(recalls)
    # all lists probed: the codes rank well enough that the re-ranked pool is the exact answer
    q = queries[0]
    all_lists = reranked(index, base, q, metric, 10, nprobe=index.nlist)
    assert all_lists.tolist() == (brute_force(base, q, metric, 10) + 1).tolist()


def test_memory_is_a_byte_a_dimension(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    base, _ = clustered
    index = IVFIndex.build(128, "cosine", base)
    index.add(np.arange(len(base)), base)
    raw = base.nbytes
    assert raw / 4 < index.memory_bytes < raw / 2  # codes + keys + centroids, far below float32


def test_add_remove_and_the_selector() -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((500, 16)).astype(np.float32)
    keys = np.arange(1000, 1500)
    index = IVFIndex.build(16, "l2", data)
    index.add(keys, data)
    index.remove(np.array([1000, 1001, 7]))  # 7 is not held: ignored
    assert len(index) == 498
    found = index.search_pool(data[0], 500, index.nlist)
    assert 1000 not in found and 1001 not in found and len(found) == 498
    # a selector restricts to the candidates, widening the probe so they are all reached
    picked = keys[::50]  # 2 %
    got = index.search_pool(data[0], 20, 2, candidate_ids=picked)
    assert set(got.tolist()) == set(picked.tolist()) - {1000}
    assert index.search_pool(data[0], 20, 2, candidate_ids=np.array([5, 6])).tolist() == []
    assert index.search_pool(data[0], 20, 2, candidate_ids=np.array([], dtype=np.int64)).tolist() == []
    # keys too large for a bitmap (or negative) go through a hashed selector: the same answer
    far = np.array([1 << 40, -5])
    index.add(far, data[:2] + 0.001)
    got = index.search_pool(data[0], 20, 2, candidate_ids=np.concatenate([picked, far]))
    assert set(got.tolist()) == (set(picked.tolist()) - {1000}) | set(far.tolist())
    index.remove(far)
    # reset keeps the centroids: rows can be added again at once
    nlist = index.nlist
    index.reset()
    assert len(index) == 0 and index.trained and index.nlist == nlist
    index.add(keys[:3], data[:3])
    assert sorted(index.search_pool(data[0], 10, nlist).tolist()) == keys[:3].tolist()


def test_cosine_ignores_length_and_keeps_zero_vectors() -> None:
    data = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [10, 1, 0]], dtype=np.float32)
    index = IVFIndex.build(3, "cosine", data)
    index.add(np.arange(4), data)
    got = index.search_pool(np.array([5, 0, 0], dtype=np.float32), 4, index.nlist)
    assert got.tolist()[:2] == [0, 3] and sorted(got.tolist()) == [0, 1, 2, 3]


def test_small_samples_and_unserved_metrics() -> None:
    assert [default_nlist(n) for n in (0, 1, 10, 10_000, 10**8)] == [1, 1, 10, 400, 4096]
    one = IVFIndex.build(4, "inner_product", np.ones((1, 4), np.float32))
    one.add(np.array([3]), np.ones((1, 4), np.float32))
    assert one.search_pool(np.ones(4, np.float32), 5, 16).tolist() == [3]
    with pytest.raises(ValueError, match="not 'l1'"):
        IVFIndex(4, "l1")
    with pytest.raises(ValueError, match="no vectors"):
        IVFIndex.build(4, "l2", np.empty((0, 4), np.float32))


def built(tmp_path: Path) -> tuple[IVFIndex, np.ndarray, Path]:
    rng = np.random.default_rng(2)
    data = rng.standard_normal((300, 8)).astype(np.float32)
    index = IVFIndex.build(8, "cosine", data)
    index.add(np.arange(300) * 3, data)
    path = tmp_path / "x.ivf"
    index.save(path, HEADER)
    return index, data, path


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index, data, path = built(tmp_path)
    loaded, header = IVFIndex.load(path, {"table": "photos", "column": "vec", "dims": 8, "metric": "cosine"})
    assert header == {**HEADER, "format": 2, "dims": 8, "metric": "cosine"} == IVFIndex.read_header(path)
    assert len(loaded) == 300 and loaded.nlist == index.nlist and loaded.mapped
    assert loaded.keys().tolist() == (np.arange(300) * 3).tolist()
    for q in data[:5]:
        assert loaded.search_pool(q, 10, 4).tolist() == index.search_pool(q, 10, 4).tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["x.ivf"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("missing", "can't be read"),
        ("truncated", "truncated"),
        ("cut-short", "truncated"),
        ("flipped-header", "checksum|damaged header"),
        ("flipped-centroids", "checksum"),
        ("flipped-keys", "checksum"),
        ("garbage", "not a lookalike index file"),
        ("header", "damaged header"),
        ("version", "another format version"),
        ("not-faiss", "not a faiss IVF index|checksum"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, damage: str, match: str) -> None:
    _, _, path = built(tmp_path)
    raw = path.read_bytes()
    trailer = 8 + 8 + 8 + 4 + 4  # magic, faiss part length, key count, header length, CRC
    head_len = int.from_bytes(raw[-8:-4], "little")
    head_at = len(raw) - trailer - head_len

    def flip(at: int) -> bytes:
        return raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1 :]

    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) - 100])
    elif damage == "cut-short":  # the trailer kept, bytes missing before it
        path.write_bytes(raw[:200] + raw[300:])
    elif damage == "flipped-header":
        path.write_bytes(flip(head_at + head_len // 2))
    elif damage == "flipped-centroids":
        path.write_bytes(flip(100))
    elif damage == "flipped-keys":
        path.write_bytes(flip(head_at - 5))
    elif damage == "garbage":
        path.write_bytes(b"SQLite format 3\x00" + bytes(200))
    elif damage == "header":
        path.write_bytes(raw[: head_at + 1] + b"}" + raw[head_at + 2 :])
    elif damage == "version":
        path.write_bytes(raw[:-trailer] + b"LKIVF\x00\x09\n" + raw[-trailer + 8 :])
    else:  # a valid trailer around bytes that are not faiss's
        path.write_bytes(
            bytes(len(raw) - trailer - head_len - 8 * 300) + raw[-trailer - head_len - 8 * 300 :]
        )
    with pytest.raises(IndexFileError, match=match):
        IVFIndex.load(path, {"table": "photos"})


def test_a_mapped_index_takes_changes_in_a_delta_and_merges_them_on_save(tmp_path: Path) -> None:
    index, data, path = built(tmp_path)
    rng = np.random.default_rng(5)
    more = rng.standard_normal((40, 8)).astype(np.float32)
    loaded, _ = IVFIndex.load(path, {"table": "photos"})
    assert loaded.mapped and loaded.pending == 0
    # remove ten rows, replace five others with new vectors, add forty new rows
    gone = np.arange(10) * 3
    moved = np.arange(10, 15) * 3
    for target in (index, loaded):
        target.remove(np.concatenate([gone, moved]))
        target.add(moved, more[:5])
        target.add(np.arange(1000, 1035), more[5:])
    assert loaded.pending == 15 + 40 and len(loaded) == len(index) == 300 - 10 + 35
    assert loaded.keys().tolist() == index.keys().tolist()
    # a full probe with a pool of every row finds exactly the rows held, in both
    everything = len(index)
    for q in [*data[:3], *more[:3]]:
        got = loaded.search_pool(q, everything, loaded.nlist)
        assert sorted(got.tolist()) == sorted(index.search_pool(q, everything, index.nlist).tolist())
        assert not set(got.tolist()) & set(gone.tolist())
    # the candidate restriction applies to both parts and never brings back a removed row
    cands = np.concatenate([gone, moved, np.arange(1000, 1010)])
    got = loaded.search_pool(more[0], 100, loaded.nlist, cands)
    assert sorted(got.tolist()) == sorted([*moved.tolist(), *range(1000, 1010)])
    # the nearest row to a moved row's new vector is that row, found in the delta
    assert loaded.search_pool(more[2], 1, loaded.nlist).tolist() == [int(moved[2])]
    loaded.save(path, HEADER)
    assert not loaded.mapped and loaded.pending == 0 and len(loaded) == len(index)
    again, _ = IVFIndex.load(path, {"table": "photos"})
    assert again.keys().tolist() == index.keys().tolist() and len(again) == len(index)
    for q in more[:3]:
        assert again.search_pool(q, 10, 4).tolist() == loaded.search_pool(q, 10, 4).tolist()


def test_a_mapped_index_resets_to_a_writable_empty_one(tmp_path: Path) -> None:
    _, data, path = built(tmp_path)
    loaded, _ = IVFIndex.load(path, {"table": "photos"})
    nlist = loaded.nlist
    loaded.reset()
    assert not loaded.mapped and len(loaded) == 0 and loaded.nlist == nlist
    loaded.add(np.arange(50), data[:50])
    assert loaded.search_pool(data[7], 1, nlist).tolist() == [7]


@pytest.mark.parametrize(
    "expect", [{"table": "other"}, {"column": "img"}, {"dims": 16}, {"metric": "l2"}, {"format": 3}]
)
def test_a_foreign_file_is_refused(tmp_path: Path, expect: dict[str, object]) -> None:
    _, _, path = built(tmp_path)
    key = next(iter(expect))
    with pytest.raises(IndexFileError, match=f"has {key}="):
        IVFIndex.load(path, expect)


def test_a_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index, _, path = built(tmp_path)
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    index.remove(np.array([0, 3]))
    with pytest.raises(OSError, match="No space"):
        index.save(path, {**HEADER, "seq": 8})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.ivf"]


def test_missing_faiss_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now raises ImportError
    with pytest.raises(MissingDependencyError) as info:
        IVFIndex.build(4, "l2", np.ones((4, 4), np.float32))
    assert "ann" in str(info.value) and "faiss-cpu" in str(info.value)


def test_many_lists_use_a_graph_of_centroids_through_files_deltas_and_resets(tmp_path: Path) -> None:
    """From HNSW_QUANTIZER_MIN_LISTS lists rows are assigned through an HNSW graph of the centroids:
    the same answers as before through a save, a mapped load with a delta, a merge and a reset."""
    import faiss

    from lookalike.vectors.ivf import HNSW_QUANTIZER_MIN_LISTS

    rng = np.random.default_rng(9)
    data = rng.standard_normal((6000, 16)).astype(np.float32)
    index = IVFIndex.build(16, "cosine", data, HNSW_QUANTIZER_MIN_LISTS)
    index.add(np.arange(5000), data[:5000])

    def graph(ix: IVFIndex) -> bool:
        quantizer = faiss.downcast_index(faiss.extract_index_ivf(ix._faiss()).quantizer)
        return isinstance(quantizer, faiss.IndexHNSW)

    assert graph(index)
    everything = index.nlist  # probing every list finds every row, graph or not
    assert index.search_pool(data[42], 1, everything).tolist() == [42]
    path = tmp_path / "g.ivf"
    index.save(path, HEADER)
    loaded, _ = IVFIndex.load(path, {"table": "photos"})
    assert loaded.mapped and graph(loaded)
    loaded.add(np.arange(5000, 6000), data[5000:])
    loaded.remove(np.arange(10))
    assert loaded.search_pool(data[5500], 1, everything).tolist() == [5500]
    assert 3 not in loaded.search_pool(data[3], 50, everything).tolist()
    loaded.save(path, HEADER)
    assert len(loaded) == 5990 and graph(loaded)
    loaded.reset()
    loaded.add(np.arange(100), data[:100])
    assert graph(loaded) and loaded.search_pool(data[7], 1, everything).tolist() == [7]
