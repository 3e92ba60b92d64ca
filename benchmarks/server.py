"""Latency of the REST search routes, warm, under a bounded load from a local client.

Builds (once, cached under ``.bench/``) a table of ``--rows`` synthetic clustered unit vectors of
``--dims`` dimensions, like CLIP's, starts ``lookalike.server`` on it in a subprocess (uvicorn, one
process, 127.0.0.1), warms it up, then sends ``--requests`` requests from ``--concurrency`` threads
with keep-alive connections and prints p50 / p90 / p99 latency and throughput per route:

* ``GET /api/search?q=…``: every query text is distinct, so each request embeds its query (the server
  caches query vectors for paging) with a hashing text embedder that costs microseconds: the figures
  are the server + exact vector search over all rows, not a model;
* ``GET /api/items/{id}/similar``: "more like this", no embedding at all;
* the same search through the library in-process, one at a time: the floor the server adds to.

    python benchmarks/server.py                      # 100k rows, 512-d, 2,000 requests, 4 concurrent
    python benchmarks/server.py --rows 10000 --requests 500
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lookalike  # noqa: E402
from lookalike import BaseEmbeddingFunction, Field, TableModel, VectorField  # noqa: E402


class HashTextEmbedder(BaseEmbeddingFunction):
    """Text → a deterministic unit vector seeded by the text's hash (no model, microseconds)."""

    def __init__(self, dimensions: int = 512) -> None:
        super().__init__("bench-hash", dimensions=dimensions, multimodal=False)

    def embed_texts(self, texts: list[str], *, purpose: str) -> np.ndarray:
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dimensions).astype(np.float32)
            out.append(v / np.linalg.norm(v))
        return np.stack(out)

    def config_options(self) -> dict:
        return {"dimensions": self.dimensions}


def synthetic_vectors(n: int, dims: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors around a shared direction (CLIP embeddings are anisotropic)."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(dims).astype(np.float32)
    centres = rng.standard_normal((max(1, n // 25), dims)).astype(np.float32) + 2.0 * shared
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, dims)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build_db(path: Path, rows: int, dims: int) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)

    class BenchImage(TableModel):
        __tablename__ = "images"
        id: int = Field(primary_key=True)
        path: str = Field()
        vec: list[float] | None = VectorField(dimensions=dims)

    print(f"building {rows:,} rows × {dims}-d at {path} …", flush=True)
    started = time.perf_counter()
    client = lookalike.connect(tmp)
    table = client.create_table(schema=BenchImage, if_exists="overwrite")
    vectors = synthetic_vectors(rows, dims)
    chunk = 5_000
    for start in range(0, rows, chunk):
        table.bulk_insert(
            [
                {"path": f"/photos/{i:06d}.jpg", "vec": vectors[i]}
                for i in range(start, min(rows, start + chunk))
            ],
            chunk_size=chunk,
        )
    client.close()
    tmp.rename(path)
    print(f"built in {time.perf_counter() - started:.1f} s", flush=True)


def serve(db: Path, port: int, dims: int) -> None:
    """The server process: the stored table with the hashing embedder for text queries."""
    import uvicorn

    from lookalike.server import create_app

    client = lookalike.connect(db)
    table = client.open_table("images", embed_fn=HashTextEmbedder(dims))
    app = create_app(table)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(base: str, paths: list[str], concurrency: int) -> tuple[np.ndarray, float]:
    """Send every path once, ``concurrency`` at a time; return per-request seconds and wall time."""
    import httpx

    latencies = np.zeros(len(paths))
    cursor = iter(range(len(paths)))
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                r = client.get(paths[i])
                latencies[i] = time.perf_counter() - t0
                if r.status_code != 200:
                    errors.append(f"{paths[i]}: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return latencies, wall


def library_baseline(db: Path, dims: int, limit: int, n: int) -> tuple[np.ndarray, float]:
    """The same text searches through the library in this process, one at a time (the floor)."""
    client = lookalike.connect(db)
    table = client.open_table("images", embed_fn=HashTextEmbedder(dims))
    table.search(text="warm").limit(limit).to_list()
    latencies = np.zeros(n)
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        table.search(text=f"baseline {i}").limit(limit + 1).to_list()
        latencies[i] = time.perf_counter() - t0
    wall = time.perf_counter() - started
    client.close()
    return latencies, wall


def report(name: str, latencies: np.ndarray, wall: float) -> None:
    ms = latencies * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    print(
        f"{name:<34} n={len(ms):>5}  p50 {p50:6.1f} ms  p90 {p90:6.1f} ms  p99 {p99:6.1f} ms  "
        f"max {ms.max():6.1f} ms  {len(ms) / wall:6.0f} req/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=512)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--limit", type=int, default=24, help="results per page (the page asks for 48)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.dims)
        return

    db = ROOT / ".bench" / f"server-{args.rows}x{args.dims}.db"
    build_db(db, args.rows, args.dims)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, __file__, "--serve", str(db), "--port", str(port), "--dims", str(args.dims)]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/api/stats", timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        rng = np.random.default_rng(1)
        print(
            f"{args.rows:,} rows × {args.dims}-d, {args.requests:,} requests, {args.concurrency} concurrent, "
            f"limit {args.limit}, {os.cpu_count()} CPUs"
        )
        # warm-up: loads the vector matrix into memory, fills connection pools
        load(base, [f"/api/search?q=warm+{i}&limit={args.limit}" for i in range(100)], args.concurrency)
        text = [f"/api/search?q=query+{i}&limit={args.limit}" for i in range(args.requests)]
        report("GET /api/search?q= (distinct texts)", *load(base, text, args.concurrency))
        ids = rng.integers(1, args.rows + 1, args.requests)
        similar = [f"/api/items/{i}/similar?limit={args.limit}" for i in ids]
        report("GET /api/items/{id}/similar", *load(base, similar, args.concurrency))
        single = [f"/api/search?q=single+{i}&limit={args.limit}" for i in range(min(500, args.requests))]
        report("GET /api/search?q= (1 at a time)", *load(base, single, 1))
        report(
            "library search, in-process, no HTTP", *library_baseline(db, args.dims, args.limit, len(single))
        )
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
