"""Benchmark: ``find_duplicates``'s kNN graph vs an all-pairs numpy scan, plus threshold calibration.

    python benchmarks/dupes.py                 # 100k synthetic 512-d vectors with planted duplicates
    python benchmarks/dupes.py --n 30000       # smaller
    python benchmarks/dupes.py --calibrate     # distances of near-copies vs different images per model

The synthetic data imitates a photo collection: clusters ("the same scene") whose members are
~0.36 cosine distance apart, plus 2 % planted near-duplicates (a copy plus noise, ~0.006 away). The
baseline compares every pair with blocked matrix products (the fastest brute force numpy allows) and
unions pairs under the threshold; the kNN graph must give the same connected components, and its
diameter-bounded groups (what ``find_duplicates`` returns) the same as with the exhaustive graph.
Pictures are not looked at here (the table holds vectors only): see benchmarks/dupes_quality.py.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np

from lookalike.duplicates import all_pairs_groups, diameter_groups, groups_as_indices, knn_edges


def synthetic(n: int, d: int = 512, seed: int = 0, dup_frac: float = 0.02) -> tuple[np.ndarray, int]:
    """Clustered unit vectors with ``dup_frac`` planted near-duplicates; returns (matrix, planted)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 50), d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, len(centres), n)]
    x = x + 0.75 * rng.standard_normal((n, d)).astype(np.float32) / np.sqrt(d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    planted = int(n * dup_frac)
    src = rng.choice(n - planted, planted, replace=False)
    x[n - planted :] = x[src] + 0.1 * rng.standard_normal((planted, d)).astype(np.float32) / np.sqrt(d)
    return x, planted


def _through_a_table(x: np.ndarray, threshold: float, folder: Path) -> tuple[float, list[list[int]]]:
    """``find_duplicates`` end to end on a SQLite table holding ``x`` (row i has id i + 1)."""
    import lookalike
    from lookalike import Field, TableModel, VectorField

    class Vec(TableModel):
        __tablename__ = "vecs"
        id: int | None = Field(default=None, primary_key=True)
        vec: list[float] | None = VectorField(dimensions=x.shape[1])

    client = lookalike.connect(folder / "dupes_bench.db")
    table = client.create_table(schema=Vec, if_exists="overwrite")
    for start in range(0, len(x), 10_000):
        table.bulk_insert([{"vec": v} for v in x[start : start + 10_000]], chunk_size=10_000)
    client.close()
    client = lookalike.connect(folder / "dupes_bench.db")  # a fresh process-like start: cold matrix
    t0 = time.perf_counter()
    found = client.open_table("vecs").find_duplicates(threshold=threshold, exact=False)
    elapsed = time.perf_counter() - t0
    client.close()
    return elapsed, sorted(sorted(i - 1 for i in g.ids) for g in found)


def bench(n: int, threshold: float) -> None:
    x, planted = synthetic(n)
    t0 = time.perf_counter()
    r, c, _ = knn_edges(x, threshold)
    components = groups_as_indices(zip(r.tolist(), c.tolist()), n)
    t_knn = time.perf_counter() - t0
    t0 = time.perf_counter()
    groups = diameter_groups(x, threshold)
    t_groups = time.perf_counter() - t0
    print(f"n={n} d={x.shape[1]} planted={planted} threshold={threshold}")
    print(f"  kNN graph + union-find    : {t_knn:8.2f} s  components={len(components)}")
    print(f"  kNN graph + diameter split: {t_groups:8.2f} s  groups={len(groups)}")
    bench_dir = Path(__file__).resolve().parent.parent / ".bench"
    bench_dir.mkdir(exist_ok=True)
    t_table, table_groups = _through_a_table(x, threshold, bench_dir)
    print(f"  table.find_duplicates()   : {t_table:8.2f} s  groups={len(table_groups)} (SQLite, end to end)")
    t0 = time.perf_counter()
    reference = all_pairs_groups(x, threshold)
    t_all = time.perf_counter() - t0
    print(f"  all-pairs numpy (blocked) : {t_all:8.2f} s  components={len(reference)}")
    t0 = time.perf_counter()
    exact_groups = diameter_groups(x, threshold, exhaustive=True)
    t_exact = time.perf_counter() - t0
    print(f"  exhaustive diameter groups: {t_exact:8.2f} s  groups={len(exact_groups)}")
    print(f"  equal components (kNN vs all pairs): {components == reference}")
    print(
        f"  equal groups (kNN vs exhaustive, and through the table): {groups == exact_groups == table_groups}"
    )
    biggest = max((len(g) for g in reference), default=0)
    print(f"  largest component {biggest}, largest group {max((len(g) for g in groups), default=0)}")
    print(f"  speed-up vs all-pairs: kNN graph {t_all / t_knn:.1f}x, end to end {t_all / t_table:.1f}x")


def _variants(im):  # near-copies a user would call duplicates
    from PIL import Image, ImageEnhance

    w, h = im.size
    out = {"resized": im.resize((w // 2, h // 2), Image.BILINEAR)}
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=60)
    out["jpeg60"] = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    dx, dy = int(w * 0.04), int(h * 0.04)
    out["crop8"] = im.crop((dx, dy, w - dx, h - dy))
    out["brighter"] = ImageEnhance.Brightness(im).enhance(1.15)
    return out


def _scene(rng: np.random.Generator, size: int = 224):
    from PIL import Image, ImageDraw, ImageFilter

    im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = rng.integers(0, size, 2)
        x1, y1 = x0 + rng.integers(10, size // 2), y0 + rng.integers(10, size // 2)
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    return im.filter(ImageFilter.GaussianBlur(1))


def calibrate(models: list[str], scenes: int = 24) -> None:
    """Cosine distances: near-copies vs their original, and different generated scenes."""
    from lookalike import EmbeddingFunction

    rng = np.random.default_rng(1)
    originals = [_scene(rng) for _ in range(scenes)]
    for name in models:
        embed = EmbeddingFunction(name)
        base = np.stack(embed.embed_sources(originals, source_type="image"))
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        near: dict[str, list[float]] = {}
        for i, im in enumerate(originals):
            for kind, variant in _variants(im).items():
                v = embed.embed_query(variant, source_type="image")
                near.setdefault(kind, []).append(float(1 - base[i] @ (v / np.linalg.norm(v))))
        sims = base @ base.T
        different = 1 - sims[np.triu_indices(len(base), 1)]
        print(f"{name}:")
        for kind, ds in near.items():
            print(f"  near-copy {kind:<9} max {max(ds):.4f}  median {np.median(ds):.4f}")
        print(f"  different scenes   min {different.min():.4f}  p1 {np.quantile(different, 0.01):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    if args.calibrate:
        root = Path(__file__).resolve().parent.parent
        models = [f"local/{root / 'tests/fixtures/tiny-clip'}"]
        big = root / ".bench/clip-vit-b-32-random"
        if big.is_dir():
            models.append(f"local/{big}")
        calibrate(models)
        return
    bench(args.n, args.threshold)


if __name__ == "__main__":
    main()
