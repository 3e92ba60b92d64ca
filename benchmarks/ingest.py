"""Ingest speed with a local ONNX model: lookalike's bulk_insert vs the CPU-bound limit and a naive loop.

Needs the full-size random-weight ViT-B/32 model (``python scripts/make_tiny_clip.py --full`` in the
torch venv writes it to ``.bench/clip-vit-b-32-random``), or ``--model DIR`` for any CLIP-layout dir.

    python benchmarks/ingest.py --images 64 --size 12mp --precision int8

Prints, in one run: decode and inference core-seconds per image measured alone, the CPU-bound limit
(cores / (decode + inference core-seconds)), lookalike's throughput as a ratio of it (target ≥ 0.85),
a naive baseline (full decode, one image per forward pass, fp32) and the speed-up over it (target ≥ 4×
on 12 MP with int8), peak RSS, and warm text-query latency.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lookalike
from lookalike import EmbeddingFunction, Field, TableModel

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"12mp": (4000, 3000), "0.25mp": (600, 420)}


def make_jpegs(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    """Photo-like JPEGs: smooth gradients plus noise, different per image."""
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(0)
    small = (w // 8, h // 8)
    paths = []
    for i in range(n):
        base = rng.random((small[1], small[0], 3)) * 255
        im = Image.fromarray(base.astype(np.uint8)).resize((w, h), Image.BILINEAR)
        p = folder / f"img{i:05d}.jpg"
        im.save(p, quality=88)
        paths.append(p)
    return paths


def unique_copies(originals: list[Path], folder: Path, n: int) -> list[Path]:
    """``n`` files with distinct bytes (a JPEG comment differs) reusing a few decoded pictures."""
    folder.mkdir(parents=True, exist_ok=True)
    datas = [p.read_bytes() for p in originals]
    out = []
    for i in range(n):
        data = datas[i % len(datas)]
        comment = f"copy {i}".encode()
        blob = data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + data[2:]
        p = folder / f"c{i:06d}.jpg"
        p.write_bytes(blob)
        out.append(p)
    return out


RSS_CHILD = """
import resource, sys, time
sys.path.insert(0, sys.argv[4])
import lookalike
from lookalike import EmbeddingFunction, Field, TableModel
from pathlib import Path
embed = EmbeddingFunction("local/" + sys.argv[1], precision=sys.argv[3])
class Img(TableModel):
    __tablename__ = "imgs"
    id: int = Field(primary_key=True)
    path: str = Field()
    vec: list[float] = embed.VectorField(source_field="path")
paths = sorted(Path(sys.argv[2]).glob("*.jpg"))
t = lookalike.connect(Path(sys.argv[2]) / "rss.db").create_table(schema=Img, if_exists="overwrite")
t0 = time.perf_counter()
t.bulk_insert({"path": str(p)} for p in paths)
print(len(paths), time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

COLD_CHILD = """
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[2])
import lookalike
t = lookalike.connect(sys.argv[1]).open_table("imgs")
hits = t.search("a photo of a cat").limit(10).to_list()
print(time.perf_counter() - t0, sorted(getattr(t.vector_columns["vec"].embed_fn, "impl", t.vector_columns["vec"].embed_fn).loaded))
"""


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=str(ROOT / ".bench" / "clip-vit-b-32-random"))
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", choices=sorted(SIZES), default="12mp")
    parser.add_argument("--precision", choices=["fp32", "int8"], default="int8")
    parser.add_argument("--naive", type=int, default=8, help="images for the naive baseline")
    parser.add_argument("--rss", default="", help="e.g. 1000,10000: peak RSS of bulk_insert at these counts")
    args = parser.parse_args()
    if not Path(args.model).is_dir():
        sys.exit(f"model directory {args.model} not found: build it with scripts/make_tiny_clip.py --full")
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="lookalike-ingest-"))
    paths = make_jpegs(tmp / "imgs", args.images, SIZES[args.size])
    print(
        f"{args.images} JPEGs of {args.size} ({paths[0].stat().st_size / 1e6:.1f} MB each), {cores} cores, {args.precision}"
    )

    embed = EmbeddingFunction(f"local/{args.model}", precision=args.precision)
    impl = embed.impl

    # --- decode core-seconds per image, alone (the provider's own prepare step: draft + resize)
    sample = paths[: min(16, len(paths))]
    c0 = cpu_seconds()
    prepared = [impl.prepare_image(p) for p in sample]
    decode_cs = (cpu_seconds() - c0) / len(sample)
    # --- inference core-seconds per image, alone (batches of 32 of already prepared images)
    batch = (prepared * (32 // len(prepared) + 1))[:32]
    impl.embed_images(batch[:2], purpose="document")  # load the session
    c0 = cpu_seconds()
    impl.embed_images(batch, purpose="document")
    infer_cs = (cpu_seconds() - c0) / len(batch)
    limit = cores / (decode_cs + infer_cs)
    print(
        f"decode {decode_cs * 1000:.1f} core-ms/img, inference {infer_cs * 1000:.1f} core-ms/img → limit {limit:.1f} img/s"
    )

    # --- lookalike bulk_insert
    client = lookalike.connect(tmp / "bench.db")

    class Img(TableModel):
        __tablename__ = "imgs"
        id: int = Field(primary_key=True)
        path: str = Field()
        vec: list[float] = embed.VectorField(source_field="path")

    table = client.create_table(schema=Img, if_exists="overwrite")
    t0 = time.perf_counter()
    table.bulk_insert([{"path": str(p)} for p in paths])
    ours = len(paths) / (time.perf_counter() - t0)
    print(
        f"lookalike bulk_insert: {ours:.1f} img/s → {ours / limit:.2f} of the CPU-bound limit (target ≥ 0.85)"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS so far: {rss:.0f} MiB")

    # --- naive baseline: full decode, one image per forward pass, fp32
    naive_embed = EmbeddingFunction(f"local/{args.model}", precision="fp32").impl
    pre = naive_embed.image_preprocessor()
    naive_embed.embed_images([naive_embed.prepare_image(paths[0])], purpose="document")
    t0 = time.perf_counter()
    for p in paths[: args.naive]:
        with Image.open(p) as im:
            full = im.convert("RGB")  # full decode, no draft
        naive_embed.embed_images(
            [pre(full) if callable(pre) else naive_embed.prepare_image(full)], purpose="document"
        )
    naive = args.naive / (time.perf_counter() - t0)
    print(
        f"naive (full decode, bs=1, fp32): {naive:.1f} img/s → lookalike is {ours / naive:.1f}× faster (target ≥ 4× on 12 MP int8)"
    )

    # --- text query latency, warm, on this table
    table.search("a photo of a cat").limit(10).to_list()
    times = []
    for i in range(20):
        t0 = time.perf_counter()
        table.search(f"a photo of a cat number {i}").limit(10).to_list()
        times.append(time.perf_counter() - t0)
    print(
        f"warm text query (tokenize + text tower + search, {len(paths)} rows): {np.median(times) * 1000:.1f} ms median"
    )
    client.close()

    # --- cold process: start to first text result (text tower only)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", COLD_CHILD, str(tmp / "bench.db"), str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    inside, towers = out.stdout.split(" ", 1)
    print(
        f"cold process → first text result: {wall:.2f} s wall ({float(inside):.2f} s after interpreter start), towers loaded: {towers.strip()}"
    )

    # --- peak RSS vs number of images (flat in N)
    for n in [int(x) for x in args.rss.split(",") if x]:
        folder = tmp / f"rss-{n}"
        originals = make_jpegs(tmp / "rss-src", 50, SIZES["0.25mp"])
        unique_copies(originals, folder, n)
        out = subprocess.run(
            [sys.executable, "-c", RSS_CHILD, args.model, str(folder), args.precision, str(ROOT)],
            capture_output=True,
            text=True,
            check=True,
        )
        count, secs, peak = out.stdout.split()
        print(f"bulk_insert of {count} 0.25 MP images: {float(secs):.0f} s, peak RSS {float(peak):.0f} MiB")


if __name__ == "__main__":
    main()
