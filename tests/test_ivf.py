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
    assert header == {**HEADER, "format": 1, "dims": 8, "metric": "cosine"} == IVFIndex.read_header(path)
    assert len(loaded) == 300 and loaded.nlist == index.nlist
    for q in data[:5]:
        assert loaded.search_pool(q, 10, 4).tolist() == index.search_pool(q, 10, 4).tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["x.ivf"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("missing", "can't be read"),
        ("truncated", "truncated"),
        ("flipped", "checksum"),
        ("garbage", "not a lookalike index file"),
        ("header", "damaged header"),
        ("version", "another format version"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, damage: str, match: str) -> None:
    _, _, path = built(tmp_path)
    raw = path.read_bytes()
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) - 100])
    elif damage == "flipped":
        path.write_bytes(raw[:-50] + bytes([raw[-50] ^ 0xFF]) + raw[-49:])
    elif damage == "garbage":
        path.write_bytes(b"SQLite format 3\x00" + raw[16:])
    elif damage == "header":
        path.write_bytes(raw[:20] + b"}" + raw[21:])
    else:
        path.write_bytes(raw[:6] + b"\x02" + raw[7:])
    with pytest.raises(IndexFileError, match=match):
        IVFIndex.load(path, {"table": "photos"})


@pytest.mark.parametrize(
    "expect", [{"table": "other"}, {"column": "img"}, {"dims": 16}, {"metric": "l2"}, {"format": 2}]
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
