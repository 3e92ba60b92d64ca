"""PostgreSQL + pgvector through lookalike: bulk insert vs raw COPY, exact vs HNSW, filtered search.

    python benchmarks/engines.py --rows 100000          # pgserver in a temp folder (about 3-5 min)
    python benchmarks/engines.py --url postgresql://... --rows 20000 --queries 50
    python benchmarks/engines.py --ef-sweep                # default hnsw.ef_search: recall@10 per beam

Vectors are synthetic clustered unit vectors (4,096 gaussian clusters around a shared direction, like
CLIP's anisotropic embeddings), as in docs/reference measurements. Recall@10 is against numpy brute
force. Not a test: it prints a table of figures.

``--ef-sweep`` measures what the default search-time beam (``hnsw.ef_search``) buys on the hard case:
uniformly random unit vectors (20,000 x 32 by default, HNSW defaults m=16, ef_construction=64), for
the default beam and for each beam given with ``num_candidate`` (which sets ``hnsw.ef_search``).
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import struct
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lookalike
from lookalike import Field, TableModel, VectorField


def clustered(n: int, dims: int, seed: int = 0, clusters: int = 4096) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(dims)
    shared /= np.linalg.norm(shared)
    centers = shared + rng.standard_normal((clusters, dims)) / np.sqrt(dims)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    out = np.empty((n, dims), dtype=np.float32)
    step = 20_000
    for start in range(0, n, step):
        m = min(step, n - start)
        pts = centers[rng.integers(0, clusters, m)] + 0.35 * rng.standard_normal((m, dims)) / np.sqrt(dims)
        out[start : start + m] = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    return out


def recall(got: list[int], truth: np.ndarray) -> float:
    return len(set(got) & set(truth.tolist())) / len(truth)


def timed(fn, repeat: int) -> tuple[float, list]:  # type: ignore[no-untyped-def]
    out = []
    start = time.perf_counter()
    for i in range(repeat):
        out.append(fn(i))
    return (time.perf_counter() - start) / repeat * 1000, out


def random_unit(n: int, dims: int, seed: int = 0) -> np.ndarray:
    """Uniform on the sphere: no cluster structure for the graph to exploit (a hard case for HNSW)."""
    data = np.random.default_rng(seed).standard_normal((n, dims)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def ef_sweep(url: str, n: int, dims: int, queries: int, k: int = 10) -> dict[str, float]:
    """Recall@k of the default beam and of fixed beams, on random unit vectors with an HNSW index."""
    data = random_unit(n, dims)
    qs = random_unit(queries, dims, seed=1)

    class Sweep(TableModel):
        __tablename__ = "bench_ef_sweep"
        id: int = Field(primary_key=True)
        vec: list[float] | None = VectorField(dimensions=dims)

    client = lookalike.connect(url)
    table = client.create_table(schema=Sweep, if_exists="overwrite")
    ids = np.array([r["id"] for r in table.bulk_insert([{"vec": v} for v in data], chunk_size=5000)])
    table.create_vector_index(metric="cosine")
    truth = [set(ids[np.argsort(1.0 - data @ q)[:k]].tolist()) for q in qs]
    out: dict[str, float] = {}
    for ef in (None, 40, 64, 80, 100, 128, 160, 200):
        got = []
        start = time.perf_counter()
        for q in qs:
            s = table.search(q).limit(k).select("id")
            if ef is not None:
                s = s.num_candidate(ef)
            got.append({r["id"] for r in s.to_list()})
        ms = (time.perf_counter() - start) / len(qs) * 1000
        rec = float(np.mean([len(g & t) / k for g, t in zip(got, truth)]))
        label = "default" if ef is None else f"ef_search={ef}"
        out[label] = rec
        print(
            f"{n:,} x {dims} random unit vectors, top-{k}, {label}: recall {rec:.3f}, {ms:.2f} ms", flush=True
        )
    client.drop_table("bench_ef_sweep")
    client.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--url", default=None, help="PostgreSQL URL (default: a pgserver in a temp folder)")
    ap.add_argument("--chunk", type=int, default=5000, help="bulk_insert chunk size")
    ap.add_argument("--maintenance-work-mem", default="1GB", help="for the HNSW build")
    ap.add_argument("--ef-sweep", action="store_true", help="only measure recall by hnsw.ef_search")
    args = ap.parse_args()

    url = args.url
    if url is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            base = Path(tempfile.mkdtemp(prefix="lkbench-", dir="/tmp"))
            base.chmod(0o755)  # as root, pgserver's own user must reach the data folder
            atexit.register(shutil.rmtree, base, True)  # runs after pgserver's own cleanup (LIFO)
            url = pgserver.get_server(base / "data", cleanup_mode="delete").get_uri()

    if args.ef_sweep:
        rows = args.rows if args.rows != ap.get_default("rows") else 20_000
        dims = args.dims if args.dims != ap.get_default("dims") else 32
        print(json.dumps(ef_sweep(url, rows, dims, args.queries), indent=2))
        return

    n, d = args.rows, args.dims
    print(f"generating {n:,} x {d} clustered vectors ...", flush=True)
    data = clustered(n, d)
    cats = np.arange(n) % 100  # cat == 7 selects 1 %, cat < 10 selects 10 %
    rng = np.random.default_rng(1)
    qidx = rng.integers(0, n, args.queries)
    queries = data[qidx] + 0.02 * rng.standard_normal((args.queries, d)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    client = lookalike.connect(url)
    print(f"PostgreSQL {client.query('SHOW server_version').scalar()}, pgvector {client.engine.version_text}")
    results: dict[str, object] = {
        "rows": n,
        "dims": d,
        "queries": args.queries,
        "pgvector": client.engine.version_text,
    }

    # ---- raw COPY baseline: psycopg binary COPY of the same vectors into a plain table
    raw_sa = client.engine.sa_engine
    with raw_sa.connect() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_raw")
        conn.exec_driver_sql(f"CREATE TABLE bench_raw (id serial PRIMARY KEY, cat int, vec vector({d}))")
        conn.commit()
        dbapi = conn.connection.dbapi_connection
        head = struct.pack(">hh", d, 0)
        start = time.perf_counter()
        with dbapi.cursor() as cur, cur.copy("COPY bench_raw (cat, vec) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "bytea"])
            for i in range(n):
                cp.write_row((int(cats[i]), head + data[i].astype(">f4").tobytes()))
        dbapi.commit()
        raw_s = time.perf_counter() - start
        conn.exec_driver_sql("DROP TABLE bench_raw")
        conn.commit()
    results["raw_copy_rows_per_s"] = round(n / raw_s)

    # ---- lookalike bulk_insert of precomputed vectors
    class Bench(TableModel):
        __tablename__ = "bench_vectors"
        id: int = Field(primary_key=True)
        cat: int = Field(default=0)
        vec: list[float] | None = VectorField(dimensions=d)

    table = client.create_table(schema=Bench, if_exists="overwrite")
    start = time.perf_counter()
    table.bulk_insert(({"cat": int(cats[i]), "vec": data[i]} for i in range(n)), chunk_size=args.chunk)
    ins_s = time.perf_counter() - start
    results["bulk_insert_rows_per_s"] = round(n / ins_s)
    results["bulk_insert_vs_raw_copy"] = round(raw_s / ins_s, 2)
    print(
        f"insert: raw COPY {n / raw_s:,.0f} rows/s, bulk_insert {n / ins_s:,.0f} rows/s ({raw_s / ins_s:.2f}x)",
        flush=True,
    )
    client.execute("ANALYZE bench_vectors")

    truth = []
    truth_1 = []
    truth_10 = []
    ids = np.arange(1, n + 1)  # ids follow insertion order
    for q in queries:
        dist = 1.0 - data @ q
        truth.append(ids[np.argsort(dist)[:10]])
        m1 = np.flatnonzero(cats == 7)
        truth_1.append(ids[m1[np.argsort(dist[m1])[:10]]])
        m10 = np.flatnonzero(cats < 10)
        truth_10.append(ids[m10[np.argsort(dist[m10])[:10]]])

    def run(filt: object | None, truths: list[np.ndarray], repeat: int) -> tuple[float, float]:
        def one(i: int) -> list[int]:
            s = table.search(queries[i]).limit(10)
            if filt is not None:
                s = s.filter(filt)
            return [r["id"] for r in s.select("id").to_list()]

        ms, got = timed(one, repeat)
        return ms, float(np.mean([recall(g, truths[i]) for i, g in enumerate(got)]))

    exact_q = min(args.queries, 20)
    ms, rec = run(None, truth, exact_q)
    results["exact_ms"], results["exact_recall"] = round(ms, 2), rec
    print(f"exact (no index), {exact_q} queries: {ms:.1f} ms, recall {rec:.3f}", flush=True)
    ms, rec = run({"cat": 7}, truth_1, args.queries)
    results["filtered_1pct_no_index_ms"], results["filtered_1pct_no_index_recall"] = round(ms, 2), rec
    print(f"filtered 1 % without index: {ms:.1f} ms, recall {rec:.3f}", flush=True)

    start = time.perf_counter()
    table.create_vector_index(metric="cosine", maintenance_work_mem=args.maintenance_work_mem)
    build_s = time.perf_counter() - start
    results["hnsw_build_s"] = round(build_s, 1)
    print(
        f"HNSW build (m=16, ef_construction=64, maintenance_work_mem={args.maintenance_work_mem}): {build_s:.1f} s",
        flush=True,
    )

    ms, rec = run(None, truth, args.queries)
    results["hnsw_ms"], results["hnsw_recall"] = round(ms, 2), rec
    print(f"HNSW: {ms:.2f} ms, recall {rec:.3f}", flush=True)
    for label, filt, truths in (("1pct", {"cat": 7}, truth_1), ("10pct", {"cat": {"$lt": 10}}, truth_10)):
        ms, rec = run(filt, truths, args.queries)
        results[f"filtered_{label}_ms"], results[f"filtered_{label}_recall"] = round(ms, 2), rec
        print(f"filtered {label} with index: {ms:.2f} ms, recall {rec:.3f}", flush=True)

    # the widened-pool index path, forced (what a broad filter gets once it matches > 10,000 rows)
    forced = lookalike.connect(url, exact_search_max_rows=0)
    ftable = forced.open_table("bench_vectors")
    table_saved = table
    table = ftable
    ms, rec = run({"cat": {"$lt": 10}}, truth_10, args.queries)
    table = table_saved
    results["filtered_10pct_pool_path_ms"], results["filtered_10pct_pool_path_recall"] = round(ms, 2), rec
    print(f"filtered 10 % via widened index pool: {ms:.2f} ms, recall {rec:.3f}", flush=True)
    forced.close()

    client.drop_table("bench_vectors")
    client.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
