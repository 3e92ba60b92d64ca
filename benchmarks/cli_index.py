"""Benchmark: ``lookalike index`` throughput against the library's own bulk insert, per precision.

    python benchmarks/cli_index.py                       # 48 photos of 12 MP
    python benchmarks/cli_index.py --images 96 --size 0.25mp

Needs the full-size random-weight ViT-B/32 in ``.bench/clip-vit-b-32-random`` (see benchmarks/ingest.py).
The same generated JPEGs go through, each into a fresh database:

* ``lookalike index`` (a new process: imports, model load and the walk included) at int8 and at fp32;
* ``table.bulk_insert`` of the same paths at int8, in this process with the model already loaded: the
  library's speed, which the command should reach.

Prints images per second and the command's ratio to the library (int8).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

import lookalike  # noqa: E402
from benchmarks.ingest import SIZES, make_jpegs  # noqa: E402
from lookalike import EmbeddingFunction  # noqa: E402
from lookalike.folders import folder_schema  # noqa: E402

MODEL = ROOT / ".bench" / "clip-vit-b-32-random"


def cli(folder: Path, db: Path, precision: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "lookalike.cli", "index", str(folder), "--db", str(db)]
    command += ["--model", str(MODEL), "--precision", precision]
    t0 = time.perf_counter()
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return seconds


def library(files: list[Path], db: Path) -> float:
    embed = EmbeddingFunction(f"local/{MODEL}", precision="int8")
    embed.ensure_ready("image")
    client = lookalike.connect(db)
    table = client.create_table(schema=folder_schema(embed, "images"))
    t0 = time.perf_counter()
    table.bulk_insert([{"path": str(p)} for p in files])
    seconds = time.perf_counter() - t0
    client.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", choices=sorted(SIZES), default="12mp")
    args = parser.parse_args()
    if not MODEL.is_dir():
        raise SystemExit(
            f"{MODEL} is missing: python scripts/make_tiny_clip.py --full (see benchmarks/ingest.py)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        files = make_jpegs(folder, args.images, SIZES[args.size])
        lib = args.images / library(files, Path(tmp) / "lib.db")
        rows = [("library bulk_insert, int8 (model loaded)", lib)]
        for precision in ("int8", "fp32"):
            rate = args.images / cli(folder, Path(tmp) / f"cli-{precision}.db", precision)
            rows.append((f"lookalike index --precision {precision} (whole process)", rate))
        print(f"{args.images} images of {args.size}")
        for name, rate in rows:
            print(f"  {name:<52} {rate:6.1f} img/s   {rate / lib:5.2f}× the library")


if __name__ == "__main__":
    main()
