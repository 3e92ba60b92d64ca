"""Tagging overhead during ingest: a folder index with tags vs without, full-size ViT-B/32.

Needs the full-size random-weight ViT-B/32 (``python scripts/make_tiny_clip.py --full`` writes it to
``.bench/clip-vit-b-32-random``), or ``--model DIR``. Random weights: the tags mean nothing, the
cost is what is measured.

    python benchmarks/tagging.py --images 200

Prints: the one-off cost of embedding the vocabulary (per model, then cached on disk), ingest time
with and without tags (runs alternate, best of ``--repeat``), the overhead as a share of ingest time
(target ≤ 5 %), and the tagging step alone (the matrix product and top-k for every image).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lookalike
from lookalike import EmbeddingFunction
from lookalike.folders import index_paths
from lookalike.tags import builtin_vocabulary, top_tags, vocabulary_vectors

ROOT = Path(__file__).resolve().parents[1]


def make_jpegs(folder: Path, n: int, size: tuple[int, int] = (640, 480)) -> None:
    """Photo-like JPEGs: smooth colour fields plus noise, different per image."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.random((size[1] // 16, size[0] // 16, 3)) * 255
        Image.fromarray(base.astype(np.uint8)).resize(size, Image.BILINEAR).save(
            folder / f"{i:05d}.jpg", quality=88
        )


def ingest_seconds(folder: Path, model: str, precision: str, tags: bool, work: Path) -> float:
    db = work / f"bench-{time.monotonic_ns()}.db"
    with lookalike.connect(db) as client:
        embed = EmbeddingFunction(model, precision=precision)
        embed.ensure_ready("image")  # model loading is not ingest
        start = time.perf_counter()
        report = index_paths(client, [folder], model=embed, tags=tags)
        seconds = time.perf_counter() - start
        assert report.added == len(list(folder.iterdir())), report.failures
    db.unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--model", default=str(ROOT / ".bench" / "clip-vit-b-32-random"))
    parser.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not Path(args.model).is_dir():
        sys.exit(f"no model at {args.model}: run python scripts/make_tiny_clip.py --full first")
    model = f"local/{args.model}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["LOOKALIKE_CACHE_DIR"] = str(work / "cache")  # a cold vocabulary cache
        folder = work / "photos"
        make_jpegs(folder, args.images)
        embed = EmbeddingFunction(model, precision=args.precision)
        vocab = builtin_vocabulary()
        start = time.perf_counter()
        matrix = vocabulary_vectors(embed, vocab)
        print(
            f"vocabulary: {len(vocab)} phrases embedded once in {time.perf_counter() - start:.2f} s (then cached)"
        )

        with_tags, without = [], []
        for _ in range(args.repeat):  # alternate, so drift in machine load hits both alike
            without.append(ingest_seconds(folder, model, args.precision, False, work))
            with_tags.append(ingest_seconds(folder, model, args.precision, True, work))
        base, tagged = min(without), min(with_tags)
        print(
            f"ingest {args.images} JPEGs 640x480, {args.precision}: without tags {base:.2f} s, with tags {tagged:.2f} s"
        )
        print(f"overhead: {100 * (tagged - base) / base:+.1f} % of ingest time (target ≤ 5 %)")

        vectors = np.random.default_rng(1).standard_normal((args.images, matrix.shape[1])).astype(np.float32)
        start = time.perf_counter()
        top_tags(vectors, matrix, vocab.words, 5)
        alone = time.perf_counter() - start
        print(
            f"tagging step alone: {1000 * alone:.1f} ms for {args.images} images ({100 * alone / base:.2f} % of ingest)"
        )


if __name__ == "__main__":
    main()
