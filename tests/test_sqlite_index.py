"""The IVF index on the embedded engine: real SQLite files, real faiss, real second processes.

Recall and exact filtered answers through ``table.search``; other processes' writes seen by the next
search; a missing, truncated or foreign index file rebuilt with a warning; a build killed half-way
(kill -9) or two builds at once never yielding a wrong answer; bad queries and unserved metrics.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import lookalike
from benchmarks.common import clustered_vectors
from lookalike import Field, TableModel, VectorField
from lookalike.errors import ConfigurationError, EngineError, MissingDependencyError, VectorError
from lookalike.vectors.ivf import IVFIndex

pytest.importorskip("faiss")

ROOT = Path(__file__).resolve().parents[1]
DIMS = 128


def make_table(
    client: lookalike.Client, name: str = "pics", dims: int = DIMS, **field: object
) -> lookalike.Table:
    class Pic(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        cat: int = Field(default=0)
        vec: list[float] | None = VectorField(dimensions=dims, **field)  # type: ignore[arg-type]

    return client.create_table(schema=Pic, if_exists="overwrite")


def fill(table: lookalike.Table, data: np.ndarray) -> np.ndarray:
    """Rows with ``cat = i % 100``; their ids in order."""
    out = table.bulk_insert([{"cat": i % 100, "vec": v} for i, v in enumerate(data)], chunk_size=5000)
    return np.array([r["id"] for r in out])


def exact_ids(
    data: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None = None
) -> list[int]:
    """Brute-force cosine top-k ids (ties by id)."""
    d = 1 - (data @ q) / (np.linalg.norm(data, axis=1) * np.linalg.norm(q))
    rows = np.arange(len(data)) if mask is None else np.flatnonzero(mask)
    return ids[rows[np.lexsort((ids[rows], d[rows]))[:k]]].tolist()


def hits(
    table: lookalike.Table, q: np.ndarray, k: int = 10, where: dict[str, object] | None = None
) -> list[int]:
    search = table.search(vector=q).limit(k)
    if where is not None:
        search = search.filter(where)
    return [r["id"] for r in search.to_list()]


def index_file(db: Path, table: str = "pics", column: str = "vec") -> Path:
    return Path(f"{db}.{table}.{column}.ivf")


def run_child(code: str, db: Path) -> subprocess.CompletedProcess[str]:
    script = "import lookalike, numpy as np\n" + textwrap.dedent(code)
    out = subprocess.run(
        [sys.executable, "-c", script, str(db)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """20,000 clustered 128-d vectors indexed in a file; 50 queries from the same clusters."""
    db = tmp_path_factory.mktemp("big") / "big.db"
    data = clustered_vectors(20_050, dims=DIMS, clusters=100, seed=1)
    with lookalike.connect(db, vector_index="on") as c:
        t = make_table(c)
        ids = fill(t, data[:20_000])
        t.create_vector_index()
        assert t.has_vector_index()
    return db, data[:20_000], ids, data[20_000:]


def test_recall_through_table_search(big: tuple[Path, np.ndarray, np.ndarray, np.ndarray]) -> None:
    db, data, ids, queries = big
    with lookalike.connect(f"sqlite:///{db}?vector_index=on") as c:
        t = c.open_table("pics")
        t0 = time.perf_counter()
        got = [hits(t, q) for q in queries]
        per_query = (time.perf_counter() - t0) / len(queries)
        recall = np.mean([len(set(g) & set(exact_ids(data, ids, q, 10))) / 10 for g, q in zip(got, queries)])
        assert recall >= 0.95, recall
        assert not c.engine._caches  # type: ignore[attr-defined]  # the float32 matrix was never loaded
        first = t.search(vector=data[123]).limit(1).to_list()[0]
        assert first["id"] == ids[123] and first["_distance"] == pytest.approx(0, abs=1e-6)
    print(f"IVF recall@10 {recall:.3f}, {per_query * 1000:.2f} ms/query (20k x {DIMS})")


@pytest.mark.parametrize("exact_max", [None, 0])
def test_filtered_search_is_exact(
    big: tuple[Path, np.ndarray, np.ndarray, np.ndarray], exact_max: int | None
) -> None:
    """1 % and 10 % of rows: exactly the brute-force rows, whether the plan reads the matching rows
    (the default) or takes the index's candidates (exact_search_max_rows=0)."""
    db, data, ids, queries = big
    options = {} if exact_max is None else {"exact_search_max_rows": exact_max}
    cats = np.arange(len(data)) % 100
    with lookalike.connect(db, vector_index="on", **options) as c:
        t = c.open_table("pics")
        for q in queries[:10]:
            assert hits(t, q, where={"cat": 7}) == exact_ids(data, ids, q, 10, cats == 7)
            assert hits(t, q, where={"cat": {"$lt": 10}}) == exact_ids(data, ids, q, 10, cats < 10)
        assert not c.engine._caches  # type: ignore[attr-defined]  # no float32 matrix for these either


def test_an_unselective_filter_is_applied_to_the_pool(
    big: tuple[Path, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Half or 90 % of the rows: the filter is applied to a widened pool from the index instead of
    being read as 10k-18k ids, so recall is an index's (as high as unfiltered), never a wrong row."""
    db, data, ids, queries = big
    cats = np.arange(len(data)) % 100
    by_id = dict(zip(ids.tolist(), cats.tolist()))
    with lookalike.connect(db, vector_index="on") as c:
        t = c.open_table("pics")
        for below in (50, 90):
            where = {"cat": {"$lt": below}}
            got = [hits(t, q, where=where) for q in queries]
            assert all(len(g) == 10 and all(by_id[i] < below for i in g) for g in got)
            truth = [exact_ids(data, ids, q, 10, cats < below) for q in queries]
            recall = np.mean([len(set(g) & set(e)) / 10 for g, e in zip(got, truth)])
            assert recall >= 0.99, (below, recall)


def test_a_post_filtered_search_that_comes_up_short_is_completed(
    big: tuple[Path, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """A filter keeping every row near the query (so it looks unselective) but only 300 rows in
    all, asked for 400: the pool can't hold 400, the search falls back and returns all 300, in
    exact order."""
    db, data, ids, queries = big
    q = queries[0]
    near = exact_ids(data, ids, q, 300)
    with lookalike.connect(db, vector_index="on") as c:
        t = c.open_table("pics")
        got = hits(t, q, 400, where={"id": {"$in": near}})
        assert got == near
        assert hits(t, q, 10, where={"id": {"$in": near}}) == near[:10]


def test_other_processes_writes_are_seen(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    rng = np.random.default_rng(4)
    data = rng.standard_normal((3000, 16)).astype(np.float32)
    with lookalike.connect(db, vector_index="on") as c:
        t = make_table(c, dims=16)
        ids = fill(t, data)
        t.create_vector_index()
        assert hits(t, data[5], 1) == [ids[5]]
        run_child(
            """
            import sys
            c = lookalike.connect(sys.argv[1], vector_index="on")
            t = c.open_table("pics")
            t.insert({"id": 100000, "cat": 1, "vec": [3.0] * 16})
            t.update({"vec": [-3.0] * 16}, {"id": 6})
            t.delete({"id": 5})
            c.close()
            """,
            db,
        )
        assert hits(t, np.full(16, 3.0, np.float32), 1) == [100000]
        assert hits(t, np.full(16, -3.0, np.float32), 1) == [6]
        assert ids[5] not in hits(t, data[5], 20)
        # the catch-up in this process is what a fresh process reading the file and the log sees
        assert hits(t, data[9], 5) == exact_ids(data, ids, data[9], 5, np.arange(3000) != 5)


@pytest.mark.parametrize("damage", ["missing", "truncated", "foreign"])
def test_a_bad_index_file_is_rebuilt(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "x.db"
    rng = np.random.default_rng(5)
    data = rng.standard_normal((2000, 16)).astype(np.float32)
    with lookalike.connect(db, vector_index="on") as c:
        other = make_table(c, "other", dims=16)
        fill(other, -data)
        other.create_vector_index()
        t = make_table(c, dims=16)
        ids = fill(t, data)
        t.create_vector_index()
    path = index_file(db)
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    else:
        shutil.copyfile(index_file(db, "other"), path)
    with lookalike.connect(db, vector_index="on") as c:
        t = c.open_table("pics")
        with pytest.warns(UserWarning, match="rebuilding"):
            assert hits(t, data[3]) == exact_ids(data, ids, data[3], 10)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # said once
            assert hits(t, data[4]) == exact_ids(data, ids, data[4], 10)
    assert IVFIndex.read_header(path)["table"] == "pics"  # the file was written again, whole


def test_a_build_killed_half_way_leaves_right_answers(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    rng = np.random.default_rng(6)
    data = rng.standard_normal((60_000, 32)).astype(np.float32)
    with lookalike.connect(db, vector_index="on") as c:
        t = make_table(c, dims=32)
        ids = fill(t, data[:1000]).tolist()
        t.create_vector_index()  # the old index
        ids += fill(t, data[1000:]).tolist()  # rows the old file does not hold
    old = IVFIndex.read_header(index_file(db))
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, lookalike\n"
            "t = lookalike.connect(sys.argv[1], vector_index='on').open_table('pics')\n"
            "print('building', flush=True)\n"
            "t.create_vector_index(skip_existing=False)\n",
            str(db),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "building"
    time.sleep(0.5)  # inside the build (it takes seconds on 60,000 rows)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert IVFIndex.read_header(index_file(db)) == old  # the old file, whole
    with lookalike.connect(db, vector_index="on") as c:
        t = c.open_table("pics")
        for i in (3, 1500, 59_999):  # old and new rows are all found
            top = t.search(vector=data[i]).limit(1).to_list()[0]
            assert top["id"] == ids[i] and top["_distance"] == pytest.approx(0, abs=1e-5)
        assert len(hits(t, data[7], 10, {"cat": 7})) == 10


def test_two_processes_building_at_once(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    rng = np.random.default_rng(7)
    data = rng.standard_normal((20_000, 32)).astype(np.float32)
    with lookalike.connect(db, vector_index="on") as c:
        ids = fill(make_table(c, dims=32), data)
    code = (
        "import sys, lookalike\n"
        "lookalike.connect(sys.argv[1], vector_index='on').open_table('pics').create_vector_index()\n"
    )
    children = [subprocess.Popen([sys.executable, "-c", code, str(db)], cwd=ROOT) for _ in range(2)]
    assert [p.wait(timeout=300) for p in children] == [0, 0]
    header = IVFIndex.read_header(index_file(db))
    assert header["rows"] == 20_000
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
    with lookalike.connect(db, vector_index="on") as c:
        t = c.open_table("pics")
        assert t.has_vector_index()
        top = t.search(vector=data[42]).limit(1).to_list()[0]
        assert top["id"] == ids[42] and top["_distance"] == pytest.approx(0, abs=1e-5)


def test_bad_queries_and_unserved_metrics(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    rng = np.random.default_rng(8)
    data = rng.standard_normal((2000, 16)).astype(np.float32)
    with lookalike.connect(db, vector_index="on") as c:
        t = make_table(c, dims=16)
        ids = fill(t, data)
        t.create_vector_index()
        with pytest.raises(VectorError, match="15 dimensions, expected 16"):
            t.search(vector=np.ones(15)).to_list()
        with pytest.raises(VectorError, match="NaN"):
            t.search(vector=[float("nan")] * 16).to_list()
        q = data[10]
        with pytest.warns(UserWarning, match="serves cosine distances; l2 searches are exact"):
            got = [r["id"] for r in t.search(vector=q).distance_metric("l2").limit(10).to_list()]
        assert got == ids[np.argsort(np.linalg.norm(data - q, axis=1), kind="stable")[:10]].tolist()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # said once
            t.search(vector=q).distance_metric("l2").limit(10).to_list()
        l1 = make_table(c, "l1s", dims=16, distance_metric="l1")
        fill(l1, data[:100])
        with pytest.warns(UserWarning, match="l1 searches stay exact"):
            l1.create_vector_index()
        assert not l1.has_vector_index()


def test_vector_field_index_waits_for_min_rows(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    rng = np.random.default_rng(9)
    data = rng.standard_normal((120, 8)).astype(np.float32)
    with lookalike.connect(db, vector_index="on") as c:
        t = make_table(c, dims=8, index=True, min_rows=100)  # an empty table: the wish is recorded
        assert t.has_vector_index()  # asked for: indexed, built once min_rows rows hold a vector
        ids = fill(t, data[:50])
        assert hits(t, data[1], 3) == exact_ids(data[:50], ids, data[1], 3)
        assert not index_file(db).exists()  # 50 < min_rows: exact, no file yet
        ids = np.concatenate([ids, fill(t, data[50:])])
        assert hits(t, data[1], 3) == exact_ids(data, ids, data[1], 3)
        assert index_file(db).exists() and t.has_vector_index()
        t.truncate()
        assert not index_file(db).exists()
        assert hits(t, data[1], 3) == []
        c.drop_table("pics")
        assert not index_file(db).exists()


def test_a_failed_write_keeps_the_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "x.db"
    rng = np.random.default_rng(10)
    data = rng.standard_normal((3000, 8)).astype(np.float32)
    with lookalike.connect(db, vector_index="on") as c:
        t = make_table(c, dims=8)
        ids = fill(t, data[:1500])
        t.create_vector_index()
        before = index_file(db).read_bytes()

        def disk_full(self: IVFIndex, path: object, header: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(IVFIndex, "save", disk_full)
        with pytest.raises(EngineError, match="No space left"):
            t.create_vector_index(skip_existing=False)
        ids = np.concatenate([ids, fill(t, data[1500:])])  # enough new rows that a search saves
        with pytest.warns(UserWarning, match="cannot write the vector index file"):
            assert hits(t, data[2999], 1) == [ids[2999]]
        assert index_file(db).read_bytes() == before


def test_memory_database_and_options(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    data = rng.standard_normal((500, 8)).astype(np.float32)
    with lookalike.connect(":memory:", vector_index="always", exact_search_max_rows=0) as c:
        t = make_table(c, dims=8)
        ids = fill(t, data)
        assert hits(t, data[0], 5) == exact_ids(data, ids, data[0], 5)
        assert t.has_vector_index()  # built by the search, held in memory only
    with pytest.raises(ConfigurationError, match="unknown SQLite URL option"):
        lookalike.connect(f"sqlite:///{tmp_path / 'y.db'}?vector_idx=on")
    with pytest.raises(ConfigurationError, match="vector_index must be one of"):
        lookalike.connect(tmp_path / "y.db", vector_index="sometimes")
    with lookalike.connect(tmp_path / "z.db") as c:  # "on", the default: built when asked for
        t = make_table(c, dims=8)
        fill(t, data)
        assert not t.has_vector_index() and not index_file(tmp_path / "z.db").exists()
        t.create_vector_index()
        assert t.has_vector_index() and index_file(tmp_path / "z.db").exists()
    with lookalike.connect(tmp_path / "off.db", vector_index="off") as c:  # off: every search exact
        t = make_table(c, dims=8)
        fill(t, data)
        t.create_vector_index()
        assert not t.has_vector_index() and not index_file(tmp_path / "off.db").exists()
    assert os.path.exists(tmp_path / "z.db")


def test_without_faiss_a_declared_index_searches_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``ann`` extra missing: ``index=True`` in a schema must not break create_table or search
    (exact, warned once); an explicit ``create_vector_index()`` says what to install."""
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if faiss-cpu were not installed

    class Declared(TableModel):
        __tablename__ = "declared"
        id: int = Field(primary_key=True)
        vec: list[float] | None = VectorField(dimensions=8, index=True)

    data = np.random.default_rng(5).standard_normal((60, 8)).astype(np.float32)
    with lookalike.connect(tmp_path / "x.db", vector_index="always") as c:
        t = c.create_table(schema=Declared)
        ids = np.array([r["id"] for r in t.bulk_insert([{"vec": v} for v in data])])
        with pytest.warns(UserWarning, match=r"searched exactly, because .*lookalike\[ann\]"):
            got = [r["id"] for r in t.search(vector=data[3]).limit(5).to_list()]
        assert got == exact_ids(data, ids, data[3], 5)
        with pytest.raises(MissingDependencyError, match=r"lookalike\[ann\]"):
            t.create_vector_index(skip_existing=False)


def test_num_candidate_widens_the_scan_on_hard_data(tmp_path: Path) -> None:
    """Uniformly random unit vectors (no clusters: the worst case for an IVF): the default scan is
    the fast trade-off, and ``num_candidate`` buys recall back by scanning more lists."""
    rng = np.random.default_rng(0)
    data = rng.standard_normal((20_000, 32)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries = rng.standard_normal((40, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with lookalike.connect(tmp_path / "hard.db") as c:
        t = make_table(c, dims=32)
        ids = fill(t, data)
        t.create_vector_index()
        assert t.has_vector_index()

        def recall(num_candidate: int | None) -> float:
            found = []
            for q in queries:
                search = t.search(vector=q).limit(10)
                if num_candidate is not None:
                    search = search.num_candidate(num_candidate)
                got = {r["id"] for r in search.to_list()}
                found.append(len(got & set(exact_ids(data, ids, q, 10))) / 10)
            return float(np.mean(found))

        default, wide = recall(None), recall(1000)
        assert wide >= 0.95 and wide > default
