"""Benchmark: ``lookalike search "text"`` from a cold process on a 100k-row table.

    python benchmarks/cli_search.py                  # builds .bench/cli_search.db once, then times runs
    python benchmarks/cli_search.py --rows 10000 --runs 3

The table is a standard folder index (:func:`lookalike.folders.folder_schema`) whose embedder is the
full-size ViT-B/32 with random weights in ``.bench/clip-vit-b-32-random`` (same graph, same cost as
the real one). Rows get random unit vectors directly (embedding 100k images is not what is measured);
the query goes through the real path: process start, imports, opening the table, loading the text
tower only, tokenising, one forward pass, exact search over the 100k × 512 matrix, printing.
Target: ≤ 1.5 s wall per search.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / ".bench" / "clip-vit-b-32-random"


def build(db: Path, rows: int) -> None:
    import lookalike
    from lookalike.folders import folder_schema

    client = lookalike.connect(db)
    if client.has_table("images") and client.open_table("images").rows() == rows:
        client.close()
        return
    embed = lookalike.EmbeddingFunction(f"local/{MODEL_DIR}")
    table = client.create_table(schema=folder_schema(embed), if_exists="overwrite")
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for start in range(0, rows, 10_000):
        n = min(10_000, rows - start)
        vecs = rng.standard_normal((n, 512)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        table.bulk_insert(
            [
                {"path": f"/photos/{start + i:06d}.jpg", "size": 1000, "mtime": 0.0, "vec": v}
                for i, v in enumerate(vecs)
            ],
            chunk_size=10_000,
        )
    print(f"built {rows} rows in {time.perf_counter() - t0:.1f} s -> {db}")
    client.close()


def time_search(db: Path, runs: int, query: str) -> list[float]:
    cmd = [sys.executable, "-m", "lookalike.cli", "search", query, "--db", str(db), "--limit", "10"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"search failed: {proc.stderr}")
        if i:  # the first run warms the OS file cache (model and database pages); not counted
            out.append(wall)
        else:
            print(proc.stdout.splitlines()[0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--query", default="a dog playing in the snow")
    args = parser.parse_args()
    if not (MODEL_DIR / "onnx" / "text_model.onnx").is_file():
        raise SystemExit(f"{MODEL_DIR} is missing: build the random-weight ViT-B/32 first")
    db = ROOT / ".bench" / f"cli_search_{args.rows}.db"
    build(db, args.rows)
    walls = time_search(db, args.runs, args.query)
    print(
        f"lookalike search (cold process, {args.rows} rows, ViT-B/32 text tower): "
        f"median {statistics.median(walls):.2f} s, min {min(walls):.2f} s, max {max(walls):.2f} s "
        f"over {len(walls)} runs"
    )


if __name__ == "__main__":
    main()
