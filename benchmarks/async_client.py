"""The async client on PostgreSQL: gathered searches through the worker pool or psycopg's async driver.

    python benchmarks/async_client.py                       # pgserver in a temp folder
    python benchmarks/async_client.py --url postgresql://... --rows 20000 --queries 500 --runs 3

The baseline, measured in the same run, is the sync client running the same searches one after
another. Each run gathers every query at once through ``connect_async(max_workers=...)``, once with
the pool (the default) and once with ``async_driver=True``. Not a test: it prints seconds and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lookalike
from lookalike import Field, TableModel, VectorField


class AsyncBench(TableModel):
    __tablename__ = "bench_async"
    id: int | None = Field(default=None, primary_key=True)
    vec: list[float] = VectorField(dimensions=64, index=False)


async def gathered(url: str, queries: list[list[float]], workers: int, async_driver: bool) -> float:
    client = await lookalike.connect_async(url, max_workers=workers, async_driver=async_driver)
    try:
        table = await client.open_table("bench_async")
        await table.search(queries[0]).limit(10).to_list()  # warm: connections, catalogue
        start = time.perf_counter()
        await asyncio.gather(*(table.search(q).limit(10).to_list() for q in queries))
        return time.perf_counter() - start
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="postgresql://… (default: pgserver in a temporary folder)")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    url = args.url
    if url is None:
        from tests.pg_support import postgres_url

        url = postgres_url()
        if url is None:
            raise SystemExit("install pgserver or pass --url")
    rng = np.random.default_rng(0)
    with lookalike.connect(url) as client:
        table = client.create_table(schema=AsyncBench, if_exists="overwrite")
        table.bulk_insert(
            [{"vec": v.tolist()} for v in rng.standard_normal((args.rows, 64)).astype(np.float32)]
        )
        queries = [q.tolist() for q in rng.standard_normal((args.queries, 64)).astype(np.float32)]
        start = time.perf_counter()
        for q in queries:
            table.search(q).limit(10).to_list()
        sync_s = time.perf_counter() - start
    print(f"{args.queries} top-10 searches of {args.rows:,} x 64-d rows, {args.workers} workers")
    print(f"  sync, one after another (baseline): {sync_s:.3f} s")
    for run in range(args.runs):
        for driver in (False, True):
            seconds = asyncio.run(gathered(url, queries, args.workers, driver))
            label = "async driver" if driver else "worker pool "
            print(f"  run {run + 1}, {label}: {seconds:.3f} s ({seconds / sync_s:.2f}x the baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
