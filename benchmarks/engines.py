"""PostgreSQL + pgvector through lookalike: bulk insert vs raw COPY, exact vs HNSW, filtered search.

    python benchmarks/engines.py --rows 100000          # pgserver in a temp folder (about 3-5 min)
    python benchmarks/engines.py --url postgresql://... --rows 20000 --queries 50

Vectors are synthetic clustered unit vectors (4,096 gaussian clusters around a shared direction, like
CLIP's anisotropic embeddings), as in docs/reference measurements. Recall@10 is against numpy brute
force. Not a test: it prints a table of figures.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--url", default=None, help="PostgreSQL URL (default: a pgserver in a temp folder)")
    ap.add_argument("--chunk", type=int, default=5000, help="bulk_insert chunk size")
    ap.add_argument("--maintenance-work-mem", default="1GB", help="for the HNSW build")
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
