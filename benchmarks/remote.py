"""Remote-provider throughput against the strict Jina stub with a fixed per-request latency.

    python -m benchmarks.remote [--items 2000] [--latency 0.2] [--baseline-items 50] [--rate-limit 0.1]

Measures, in one run:
1. ``table.bulk_insert`` of N image URLs with the provider's defaults (packed, concurrent requests);
2. the same through ``embed_sources`` alone (no database);
3. the naive baseline, one item per request, one request at a time, timed on a subset and
   extrapolated to N (the full run would take N x latency);
4. ``bulk_insert`` again with a share of responses answered 429 + Retry-After: items lost, retries, slowdown.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lookalike
from lookalike import EmbeddingFunction, Field, TableModel
from tests.stub_providers import StubProvider

KEY = "bench-key"


def _items(n: int) -> list[str]:
    # non-local URLs: the stub hashes them instead of fetching, so only the API latency counts
    return [f"https://images.example/{i}.jpg" for i in range(n)]


def _insert(
    stub: StubProvider, uris: list[str], db: Path, table_name: str, **options: object
) -> tuple[float, int]:
    embed = EmbeddingFunction("jina_ai/jina-embeddings-v4", api_key=KEY, api_base=stub.api_base, **options)

    class Item(TableModel):
        __tablename__ = table_name
        id: int = Field(primary_key=True)
        image_uri: str = Field()
        image_vec: list[float] = embed.VectorField(source_field="image_uri")

    client = lookalike.connect(db)
    table = client.create_table(schema=Item, if_exists="overwrite")
    start = time.perf_counter()
    table.bulk_insert([Item(image_uri=u) for u in uris])
    elapsed = time.perf_counter() - start
    stored = sum(1 for row in table.query(limit=len(uris) + 10).to_list() if row["image_vec"] is not None)
    client.close()
    return elapsed, stored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the stub waits per request")
    parser.add_argument("--baseline-items", type=int, default=50, help="subset timed one request at a time")
    parser.add_argument("--rate-limit", type=float, default=0.1, help="share of responses answered 429")
    parser.add_argument("--retry-after", default="0.5", help="Retry-After the stub sends with a 429")
    parser.add_argument("--concurrency", type=int, default=None, help="max_concurrency (default: provider's)")
    parser.add_argument("--dimensions", type=int, default=None, help="Matryoshka size (default 2048)")
    args = parser.parse_args(argv)
    uris = _items(args.items)
    options: dict[str, object] = {"max_concurrency": args.concurrency} if args.concurrency else {}
    if args.dimensions:
        options["dimensions"] = args.dimensions
    tmp = Path(tempfile.mkdtemp(prefix="lookalike-bench-"))
    os.environ.pop("JINA_API_KEY", None)

    with StubProvider("jina", valid_keys=[KEY], latency=args.latency) as stub:
        probe = EmbeddingFunction(
            "jina_ai/jina-embeddings-v4", api_key=KEY, api_base=stub.api_base, **options
        )
        impl = probe.impl
        print(
            f"stub latency {args.latency * 1000:.0f} ms/request, {args.items} image URLs; "
            f"batch_size={impl.batch_size}, max_concurrency={impl.max_concurrency}, dimensions={impl.dimensions}"
        )

        bulk_s, stored = _insert(stub, uris, tmp / "bench.db", "bench_items", **options)
        bulk_requests = stub.request_count
        print(
            f"bulk_insert:           {bulk_s:7.2f} s  {args.items / bulk_s:8.1f} items/s  "
            f"{bulk_requests} requests, {stored}/{args.items} stored"
        )

        stub.reset()
        start = time.perf_counter()
        vectors = probe.embed_sources(uris)
        embed_s = time.perf_counter() - start
        print(
            f"embed_sources:         {embed_s:7.2f} s  {args.items / embed_s:8.1f} items/s  "
            f"{stub.request_count} requests, {sum(v is not None for v in vectors)} vectors"
        )

        stub.reset()
        naive = EmbeddingFunction(
            "jina_ai/jina-embeddings-v4",
            api_key=KEY,
            api_base=stub.api_base,
            **{**options, "batch_size": 1, "max_concurrency": 1},
        )
        subset = uris[: args.baseline_items]
        start = time.perf_counter()
        naive.embed_sources(subset)
        per_item = (time.perf_counter() - start) / len(subset)
        naive_s = per_item * args.items
        print(
            f"sequential, 1/request: {naive_s:7.2f} s  {1 / per_item:8.1f} items/s  "
            f"(timed on {len(subset)} items, extrapolated to {args.items})"
        )
        violations = list(stub.violations)

    with StubProvider(
        "jina",
        valid_keys=[KEY],
        latency=args.latency,
        rate_limit_fraction=args.rate_limit,
        retry_after=args.retry_after,
        seed=1,
    ) as limited:
        limited_s, limited_stored = _insert(limited, uris, tmp / "bench.db", "bench_limited", **options)
        print(
            f"bulk_insert, {args.rate_limit:.0%} 429: {limited_s:7.2f} s  {args.items / limited_s:8.1f} items/s  "
            f"{limited.request_count} requests ({limited.rate_limited} answered 429, "
            f"Retry-After {args.retry_after} s), {limited_stored}/{args.items} stored"
        )
        violations += limited.violations

    print()
    print(f"speed-up bulk_insert vs sequential:   {naive_s / bulk_s:6.1f}x")
    print(f"speed-up embed_sources vs sequential: {naive_s / embed_s:6.1f}x")
    print(
        f"slowdown with {args.rate_limit:.0%} 429s:              {limited_s / bulk_s:6.2f}x, "
        f"items lost: {args.items - limited_stored}"
    )
    print(f"stub schema violations: {len(violations)}")
    return 0 if not violations and limited_stored == stored == args.items else 1


if __name__ == "__main__":
    raise SystemExit(main())
