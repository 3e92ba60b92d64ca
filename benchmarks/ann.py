"""The embedded engine at a million images: lookalike (exact and indexed) vs numpy and LanceDB.

Usage::

    python benchmarks/ann.py --rows 100000                     # the issue's table at 100k
    python benchmarks/ann.py --rows 1000000 --hnsw             # at 1M: ~5 GB of RAM, ~11 GB of disk
    python benchmarks/ann.py --rows 20000 --queries 50 --repeat 1   # a smoke run, a couple of minutes
    python benchmarks/ann.py --rows 1000000 --stats-only       # only check the data's statistics

Data: CLIP-like 512-d unit vectors from a seed (:func:`benchmarks.common.clip_like_blocks`), generated
in blocks; the script prints random-pair cosine and the queries' nearest-neighbour cosine, so a reader
can check the data is neither too easy nor too hard. Queries are held-out draws of the same mixture.
Two int columns drive filters: ``c100`` (``c100 == 7`` keeps 1 %) and ``c10`` (``c10 == 3``: 10 %).

Each store is loaded once, then queried from a new process per query series (this script with the
hidden ``--child`` option), the stores taking turns for ``--repeat`` rounds; medians are reported.
numpy's exact answers are the ground truth for recall@10. "cold" is the time from just before the
child process starts to the end of its first query: interpreter, imports, open and search included.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import clip_like_blocks

DIMS = 512
K = 10
FILTERS: dict[str, tuple[str, int] | None] = {"all": None, "1 %": ("c100", 7), "10 %": ("c10", 3)}
BLOCK = 50_000
LANCE_NPROBES = 20
LANCE_REFINE = 10
NUMPY_FILES = ("vectors.npy", "c100.npy", "c10.npy")  # the numpy store (queries.npy sits beside them)

Searcher = Callable[[np.ndarray, "tuple[str, int] | None"], list[int]]
Opened = tuple[Searcher, "bool | None"]  # a store's search function, and whether it has an ANN index


# ---------------------------------------------------------------------- data


def make_data(rows: int, queries: int, seed: int, data_dir: Path | None) -> dict[str, Any]:
    """Generate the vectors block by block (written to ``data_dir`` as .npy unless None), the
    filter columns and the queries; return the data's statistics."""
    q = next(clip_like_blocks(queries, seed=seed, stream=1))
    rng = np.random.default_rng([seed, 9])
    c100 = rng.integers(0, 100, rows).astype(np.int32)
    c10 = rng.integers(0, 10, rows).astype(np.int32)
    out = None
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        np.save(data_dir / "queries.npy", q)
        np.save(data_dir / "c100.npy", c100)
        np.save(data_dir / "c10.npy", c10)
        out = np.lib.format.open_memmap(data_dir / "vectors.npy", "w+", np.float32, (rows, DIMS))
    # the queries' running top-10 cosines, and random pairs drawn inside each block
    top = np.full((len(q), K), -2.0, dtype=np.float32)
    pairs: list[np.ndarray] = []
    t0 = time.perf_counter()
    for start, block in zip(range(0, rows, BLOCK), clip_like_blocks(rows, seed=seed, block=BLOCK)):
        if out is not None:
            out[start : start + len(block)] = block
        scores = np.concatenate([top, q @ block.T], axis=1)
        top = -np.sort(-np.partition(scores, scores.shape[1] - K, axis=1)[:, -K:], axis=1)
        i, j = rng.integers(0, len(block), (2, 2_000))
        pairs.append(np.einsum("ij,ij->i", block[i], block[j])[i != j])
    if out is not None:
        out.flush()
        del out
    cos = np.concatenate(pairs)
    return {
        "gen_s": time.perf_counter() - t0,
        "pair_mean": float(cos.mean()),
        "pair_sd": float(cos.std()),
        "top1": float(top[:, 0].mean()),
        "top1_p10": float(np.percentile(top[:, 0], 10)),
        "top1_p90": float(np.percentile(top[:, 0], 90)),
        "top10": float(top[:, K - 1].mean()),
    }


def print_stats(rows: int, stats: dict[str, Any]) -> None:
    print(
        f"data: {rows:,} × {DIMS} generated in {stats['gen_s']:.1f} s; random pairs cos "
        f"{stats['pair_mean']:.3f} ± {stats['pair_sd']:.3f} (target 0.46 ± 0.11); queries' nearest "
        f"neighbour cos {stats['top1']:.3f} (p10 {stats['top1_p10']:.3f}, p90 {stats['top1_p90']:.3f}; "
        f"target ≈ 0.94 at 1M), 10th neighbour {stats['top10']:.3f}"
    )


def vector_blocks(data_dir: Path) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, rows) of the saved vectors, a block at a time (bounded memory at 1M)."""
    vectors = np.load(data_dir / "vectors.npy", mmap_mode="r")
    for start in range(0, len(vectors), BLOCK):
        yield start, np.ascontiguousarray(vectors[start : start + BLOCK])


def disk_bytes(path: Path) -> int:
    """Bytes of a file or of everything under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def siblings_bytes(db: Path) -> int:
    """A SQLite file with its -wal/-shm and any sidecar files beside it (an index file)."""
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


# ---------------------------------------------------------------------- loading the stores


def lookalike_connect(db: Path, vector_index: str) -> tuple[Any, bool]:
    """A client on ``db`` with the engine's ``vector_index`` option, and whether the engine knows it
    (an engine without an index takes no such option: exact search is all it does)."""
    import lookalike

    try:
        return lookalike.connect(db, vector_index=vector_index), True
    except TypeError:  # SQLAlchemy's "invalid argument sent to create_engine()": no such option yet
        return lookalike.connect(db), False


def load_lookalike(data_dir: Path, db: Path) -> dict[str, Any]:
    """``bulk_insert`` the precomputed vectors into a fresh table; rows/s and the file's size."""
    from lookalike import Field, TableModel, VectorField

    class Bench(TableModel):
        __tablename__ = "bench"
        id: int = Field(primary_key=True)
        c100: int = Field(default=0, index=True)
        c10: int = Field(default=0, index=True)
        vec: list[float] | None = VectorField(dimensions=DIMS)

    c100 = np.load(data_dir / "c100.npy")
    c10 = np.load(data_dir / "c10.npy")

    def rows() -> Iterator[dict[str, Any]]:
        for start, block in vector_blocks(data_dir):
            for i, vec in enumerate(block, start):
                yield {"c100": int(c100[i]), "c10": int(c10[i]), "vec": vec}

    client, _ = lookalike_connect(db, "off")
    table = client.create_table(schema=Bench, if_exists="overwrite")
    t0 = time.perf_counter()
    table.bulk_insert(rows())
    load_s = time.perf_counter() - t0
    client.close()
    return {"rows_per_s": len(c100) / load_s, "disk": siblings_bytes(db)}


def index_lookalike(db: Path) -> dict[str, Any]:
    """``create_vector_index()`` on the loaded table; seconds, whether an index now exists, size."""
    client, known = lookalike_connect(db, "on")
    table = client.open_table("bench")
    t0 = time.perf_counter()
    table.create_vector_index()
    build_s = time.perf_counter() - t0
    has = table.has_vector_index()
    client.close()
    return {
        "build_s": build_s if has else None,
        "has_index": has,
        "option": known,
        "disk": siblings_bytes(db),
    }


def lance_batches(data_dir: Path, schema: Any) -> Iterator[Any]:
    import pyarrow as pa

    c100 = np.load(data_dir / "c100.npy")
    c10 = np.load(data_dir / "c10.npy")
    for start, block in vector_blocks(data_dir):
        end = start + len(block)
        vec = pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), DIMS)
        ids = pa.array(np.arange(start, end, dtype=np.int64))
        yield pa.RecordBatch.from_arrays(
            [ids, pa.array(c100[start:end]), pa.array(c10[start:end]), vec], schema=schema
        )


def load_lancedb(data_dir: Path, folder: Path, index_type: str) -> dict[str, Any]:
    """``create_table`` from pyarrow batches, then the vector index (and bitmap indexes on the filter
    columns, so a prefilter doesn't scan); rows/s, build seconds, folder size."""
    import lancedb
    import pyarrow as pa
    from lancedb.index import Bitmap, HnswSq, IvfPq

    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("c100", pa.int32()),
            ("c10", pa.int32()),
            ("vector", pa.list_(pa.float32(), DIMS)),
        ]
    )
    rows = len(np.load(data_dir / "c100.npy", mmap_mode="r"))
    db = lancedb.connect(folder)
    t0 = time.perf_counter()
    table = db.create_table("bench", data=lance_batches(data_dir, schema), schema=schema, mode="overwrite")
    load_s = time.perf_counter() - t0
    if index_type == "IVF_PQ":
        # √rows lists (1,000 at 1M), 8 dims per PQ sub-vector; queries re-rank 10× the limit exactly
        parts = max(1, round(math.sqrt(rows)))
        config: Any = IvfPq(distance_type="cosine", num_partitions=parts, num_sub_vectors=DIMS // 8)
    else:
        config = HnswSq(distance_type="cosine")
    t0 = time.perf_counter()
    table.create_index("vector", config=config)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for column in ("c100", "c10"):
        table.create_index(column, config=Bitmap())
    scalar_s = time.perf_counter() - t0
    return {"rows_per_s": rows / load_s, "build_s": build_s, "scalar_s": scalar_s, "disk": disk_bytes(folder)}


# ---------------------------------------------------------------------- the querying child


def numpy_searcher(work: Path) -> Opened:
    data_dir = work / "numpy"
    matrix = np.load(data_dir / "vectors.npy")
    columns = {"c100": np.load(data_dir / "c100.npy"), "c10": np.load(data_dir / "c10.npy")}

    def search(q: np.ndarray, filt: tuple[str, int] | None) -> list[int]:
        if filt is None:
            ids, scores = None, matrix @ q
        else:
            ids = np.flatnonzero(columns[filt[0]] == filt[1])
            scores = matrix[ids] @ q
        top = np.argpartition(-scores, K)[:K]
        top = top[np.argsort(-scores[top])]
        return (top if ids is None else ids[top]).tolist()

    return search, None


def lookalike_searcher(work: Path, vector_index: str, num_candidate: int | None) -> Opened:
    client, _ = lookalike_connect(work / "lookalike" / "bench.db", vector_index)
    table = client.open_table("bench")

    def search(q: np.ndarray, filt: tuple[str, int] | None) -> list[int]:
        s = table.search(vector=q)
        if filt is not None:
            s = s.filter({filt[0]: filt[1]})
        if num_candidate:
            s = s.num_candidate(num_candidate)
        return [row["id"] - 1 for row in s.limit(K).to_list()]  # ids count from 1 in insertion order

    return search, table.has_vector_index()


def lancedb_searcher(folder: Path, tuned: bool) -> Opened:
    import lancedb

    table = lancedb.connect(folder).open_table("bench")

    def search(q: np.ndarray, filt: tuple[str, int] | None) -> list[int]:
        s: Any = table.search(q)  # a vector query builder; search() is typed as the generic one
        s = s.distance_type("cosine").limit(K).select(["id"])
        if tuned:
            s = s.nprobes(LANCE_NPROBES).refine_factor(LANCE_REFINE)
        if filt is not None:
            s = s.where(f"{filt[0]} = {filt[1]}", prefilter=True)
        return s.to_arrow()["id"].to_pylist()

    return search, True


def peak_rss() -> int:
    """This process's peak resident set, in bytes.

    ``VmHWM`` where /proc has it: Linux's ``getrusage(RUSAGE_SELF).ru_maxrss`` keeps the high-water
    mark of the parent that forked the child (measured: every child reported the parent's 705 MB).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def child(store: str, work: Path, num_candidate: int | None) -> None:
    """Open one store, answer the first query (cold), then time every query series; JSON on stdout."""
    opened: dict[str, Callable[[], Opened]] = {
        "numpy": lambda: numpy_searcher(work),
        "lookalike-exact": lambda: lookalike_searcher(work, "off", None),
        "lookalike-indexed": lambda: lookalike_searcher(work, "on", num_candidate),
        "lancedb-ivfpq": lambda: lancedb_searcher(work / "lancedb-ivfpq", tuned=True),
        "lancedb-hnsw": lambda: lancedb_searcher(work / "lancedb-hnsw", tuned=False),
    }
    queries = np.load(work / "numpy" / "queries.npy")
    search, has_index = opened[store]()
    search(queries[0], None)
    first_done = time.time()
    result: dict[str, Any] = {"first_done": first_done, "has_index": has_index}
    for name, filt in FILTERS.items():
        times, ids = [], []
        for q in queries:
            t0 = time.perf_counter()
            ids.append(search(q, filt))
            times.append(time.perf_counter() - t0)
        result[name] = {"p50": statistics.median(times), "ids": ids}
    result["rss"] = peak_rss()
    print(json.dumps(result))


def run_child(store: str, work: Path, num_candidate: int | None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", store, "--workdir", str(work)]
    if num_candidate:
        cmd += ["--num-candidate", str(num_candidate)]
    started = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{store} child failed:\n{done.stderr}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["cold_s"] = out.pop("first_done") - started
    return out


# ---------------------------------------------------------------------- report


def recall(got: list[list[int]], truth: list[list[int]]) -> tuple[float, int]:
    """Mean recall@10 and how many queries came back with fewer than 10 rows."""
    hits = [len(set(g) & set(t)) / len(t) for g, t in zip(got, truth)]
    return float(np.mean(hits)), sum(len(g) < K for g in got)


def fmt_ms(s: float) -> str:
    return f"{s * 1000:.2f} ms" if s < 0.01 else f"{s * 1000:.1f} ms"


def fmt_bytes(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def summarise(runs: list[dict[str, Any]], truth: dict[str, Any]) -> dict[str, Any]:
    """Medians over repetitions; recall from the first repetition (every store is deterministic)."""
    out: dict[str, Any] = {
        "cold_s": statistics.median(r["cold_s"] for r in runs),
        "rss": statistics.median(r["rss"] for r in runs),
        "has_index": runs[0]["has_index"],
    }
    for name in FILTERS:
        out[name] = statistics.median(r[name]["p50"] for r in runs)
        out[name + " recall"], out[name + " short"] = recall(runs[0][name]["ids"], truth[name]["ids"])
    return out


def report(rows: int, labels: dict[str, str], res: dict[str, dict[str, Any]], built: dict[str, Any]) -> None:
    print(
        f"\n| {rows:,} rows | warm p50 | recall@10 | cold open + 1st query | peak RSS | index build | load rows/s | disk |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for store, label in labels.items():
        r, b = res[store], built.get(store, {})
        build = f"{b['build_s']:.1f} s" if b.get("build_s") is not None else "—"
        load = f"{b['rows_per_s'] / 1000:.0f}k" if b.get("rows_per_s") else "—"
        print(
            f"| {label} | {fmt_ms(r['all'])} | {r['all recall']:.3f} | {r['cold_s']:.2f} s | "
            f"{fmt_bytes(r['rss'])} | {build} | {load} | {fmt_bytes(b['disk'])} |"
        )
    print("\n| filtered, top-10 | 1 % p50 | 1 % recall | 10 % p50 | 10 % recall |")
    print("|---|---|---|---|---|")
    for store, label in labels.items():
        r = res[store]
        cells = []
        for name in ("1 %", "10 %"):
            short = f" ({r[name + ' short']} short)" if r[name + " short"] else ""
            cells += [fmt_ms(r[name]), f"{r[name + ' recall']:.3f}{short}"]
        print(f"| {label} | {' | '.join(cells)} |")


def ratios(res: dict[str, dict[str, Any]], built: dict[str, Any], raw_bytes: int) -> None:
    ours = res["lookalike-indexed"]
    print("\nratios (same run; speed-up = other's p50 / lookalike indexed's, > 1: lookalike is faster):")
    for other, label in (("numpy", "numpy scan"), ("lookalike-exact", "lookalike exact")):
        print(f"  lookalike indexed vs {label}: speed-up {res[other]['all'] / ours['all']:.2f}×")
    for other in ("lancedb-ivfpq", "lancedb-hnsw"):
        if other in res:
            print(
                f"  lookalike indexed vs {other}: speed-up {res[other]['all'] / ours['all']:.2f}×, "
                f"recall {ours['all recall']:.3f} vs {res[other]['all recall']:.3f}; filtered 1 % / 10 %: "
                f"{res[other]['1 %'] / ours['1 %']:.2f}× / {res[other]['10 %'] / ours['10 %']:.2f}×"
            )
    if "lancedb-ivfpq" in built:
        rate = built["lookalike-exact"]["rows_per_s"] / built["lancedb-ivfpq"]["rows_per_s"]
        print(f"  load: lookalike bulk_insert at {rate:.2f}× LanceDB create_table's rows/s (goal ≥ 0.7×)")
    disk = built["lookalike-indexed"]["disk"] / raw_bytes
    print(f"  disk: lookalike file(s) with index {disk:.2f}× the raw float32 vectors (goal ≤ 1.5×)")


# ---------------------------------------------------------------------- main


def build_stores(args: argparse.Namespace, work: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Load every store once; their labels and load/build figures."""
    data_dir = work / "numpy"
    built: dict[str, Any] = {"numpy": {"disk": sum(disk_bytes(data_dir / f) for f in NUMPY_FILES)}}
    db = work / "lookalike" / "bench.db"
    db.parent.mkdir()
    built["lookalike-exact"] = load_lookalike(data_dir, db)
    print(f"lookalike bulk_insert: {built['lookalike-exact']['rows_per_s']:,.0f} rows/s")
    idx = index_lookalike(db)
    built["lookalike-indexed"] = {**idx, "rows_per_s": built["lookalike-exact"]["rows_per_s"]}
    if idx["has_index"]:
        print(f"lookalike create_vector_index: {idx['build_s']:.1f} s")
    else:
        why = "the engine has no vector_index option" if not idx["option"] else "no index was built"
        print(f"lookalike create_vector_index: a no-op ({why}); the indexed row measures exact search")
    labels = {"numpy": "numpy matvec + argpartition (exact)", "lookalike-exact": "lookalike exact"}
    labels["lookalike-indexed"] = "lookalike indexed" + ("" if idx["has_index"] else " (no index: exact)")
    if args.num_candidate:
        labels["lookalike-indexed"] += f", num_candidate {args.num_candidate}"
    lance = (
        []
        if args.skip_lancedb
        else [("lancedb-ivfpq", "IVF_PQ")] + ([("lancedb-hnsw", "IVF_HNSW_SQ")] * args.hnsw)
    )
    for store, kind in lance:
        built[store] = load_lancedb(data_dir, work / store, kind)
        b = built[store]
        print(
            f"LanceDB {kind}: create_table {b['rows_per_s']:,.0f} rows/s, index {b['build_s']:.1f} s "
            f"(+ bitmap indexes on c100, c10: {b['scalar_s']:.1f} s)"
        )
    if not args.skip_lancedb:
        labels["lancedb-ivfpq"] = f"LanceDB IVF_PQ, nprobes {LANCE_NPROBES}, refine {LANCE_REFINE}"
        if args.hnsw:
            labels["lancedb-hnsw"] = "LanceDB IVF_HNSW_SQ (defaults)"
    return labels, built


def bench(args: argparse.Namespace, work: Path) -> None:
    stats = make_data(args.rows, args.queries, args.seed, work / "numpy")
    print_stats(args.rows, stats)
    labels, built = build_stores(args, work)
    runs: dict[str, list[dict[str, Any]]] = {store: [] for store in labels}
    for rep in range(args.repeat):
        for store in labels:  # interleaved: a slow minute on the shared machine hits every store
            runs[store].append(run_child(store, work, args.num_candidate))
            print(f"  round {rep + 1}: {store} p50 {fmt_ms(runs[store][-1]['all']['p50'])}", flush=True)
    truth = runs["numpy"][0]
    res = {store: summarise(runs[store], truth) for store in labels}
    if res["lookalike-indexed"]["has_index"] is False and built["lookalike-indexed"]["has_index"]:
        print("note: the querying process did not see the index (has_vector_index() was False there)")
    report(args.rows, labels, res, built)
    ratios(res, built, args.rows * DIMS * 4)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="query rounds, each store in a new process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="where the stores go (default: a temp dir)")
    parser.add_argument("--skip-lancedb", action="store_true")
    parser.add_argument("--hnsw", action="store_true", help="also LanceDB IVF_HNSW_SQ (slow to build)")
    parser.add_argument(
        "--num-candidate", type=int, default=None, help="lookalike indexed: .num_candidate(n)"
    )
    parser.add_argument("--stats-only", action="store_true", help="print the data's statistics and stop")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.workdir), args.num_candidate)
    elif args.stats_only:
        print_stats(args.rows, make_data(args.rows, args.queries, args.seed, None))
    else:
        with tempfile.TemporaryDirectory(dir=args.workdir, prefix="ann-") as tmp:
            bench(args, Path(tmp))


if __name__ == "__main__":
    main()
