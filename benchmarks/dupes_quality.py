"""Benchmark: can people trust the duplicate groups? Labels and groups measured on generated photos.

    python benchmarks/dupes_quality.py                   # 40 scenes, tiny CLIP (+ .bench ViT-B/32 if present)
    python benchmarks/dupes_quality.py --scenes 100 --threshold 0.03 --threshold 0.3

Each generated scene (gradients, gratings, blotches, shapes and a subject; tests/helpers/scenes.py) is
saved as an original (JPEG or PNG, alternating) plus seven copies of the same picture: JPEG quality 60,
resized 50 %, cropped 5 %, WebP, PNG↔JPEG, mirrored, brightness +15 %. Every second scene also gets
two other shots of a burst (camera moved 1–3 %, subject moved 4–8 %, sensor noise): similar, not the
same picture. The folder is indexed with each model and ``find_duplicates(similar=True)`` is run at
each threshold. Printed:

1. **Pixel check alone**: the label of every copy and burst shot against its original, per transform
   (recall of "same picture" per transform; burst shots wrongly called "same picture"), and the time
   per pair (two small decodes + the comparison).
2. **End to end** per model and threshold: precision and recall of the "same picture" label (a member
   labelled "same picture" or "identical file" relative to its group's keeper is right when both come
   from one original; recall counts, per picture, the copies that could be labelled: copies − 1),
   and the pair precision/recall of the default groups (``similar=False``: two images share a group).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.helpers.scenes: the same pictures as the tests use

import lookalike  # noqa: E402
from lookalike.duplicates import SAME_PICTURE, SIMILAR, find_duplicates  # noqa: E402
from lookalike.folders import index_paths  # noqa: E402
from lookalike.images.compare import compare_prints, pixel_print  # noqa: E402
from tests.helpers.scenes import SUFFIX, TRANSFORMS, Scene, burst_shot, encode, first_shot  # noqa: E402


def expected_detail(name: str, original_format: str, copy_format: str) -> str:
    """The detail the check should report for a copy (a JPEG re-encode of a PNG is a format change)."""
    if name == "reencode" and original_format != copy_format:
        return "format change"
    return TRANSFORMS[name][1]


def make_photos(folder: Path, scenes: int, seed: int = 1000) -> dict[str, tuple[int, str]]:
    """Write the photos; returns file name -> (picture id, kind), kind "original", a transform or "burst"."""
    truth: dict[str, tuple[int, str]] = {}
    picture = 0
    for s in range(scenes):
        scene = Scene(seed + s)
        fmt = "JPEG" if s % 2 else "PNG"
        original = encode(first_shot(scene), fmt)
        base = f"scene{s:03d}"
        (folder / f"{base}{SUFFIX[fmt]}").write_bytes(original)
        truth[f"{base}{SUFFIX[fmt]}"] = (picture, "original")
        for name, (make, _) in TRANSFORMS.items():
            data, out_fmt = make(original, fmt, seed + s)
            (folder / f"{base}-{name}{SUFFIX[out_fmt]}").write_bytes(data)
            truth[f"{base}-{name}{SUFFIX[out_fmt]}"] = (picture, name)
        picture += 1
        if s % 2 == 0:
            for k in (1, 2):
                (folder / f"{base}-burst{k}{SUFFIX[fmt]}").write_bytes(encode(burst_shot(scene, k), fmt))
                truth[f"{base}-burst{k}{SUFFIX[fmt]}"] = (picture, "burst")
                picture += 1
    return truth


def pixel_only(folder: Path, truth: dict[str, tuple[int, str]]) -> None:
    """Label of each copy and burst shot against its scene's original, by the pixel check alone."""
    by_scene: dict[str, list[str]] = defaultdict(list)
    for name in truth:
        by_scene[name[:8]].append(name)
    results: dict[str, Counter[str]] = defaultdict(Counter)
    detail_ok: Counter[str] = Counter()
    print_times: list[float] = []
    compare_times: list[float] = []
    for names in by_scene.values():
        original = next(n for n in names if truth[n][1] == "original")
        t0 = time.perf_counter()
        po = pixel_print(folder / original)
        print_times.append(time.perf_counter() - t0)
        for name in names:
            kind = truth[name][1]
            if kind == "original":
                continue
            t0 = time.perf_counter()
            pc = pixel_print(folder / name)
            t1 = time.perf_counter()
            match = compare_prints(po, pc)
            t2 = time.perf_counter()
            print_times.append(t1 - t0)
            compare_times.append(t2 - t1)
            results[kind][match.label] += 1
            if kind != "burst":
                want = expected_detail(kind, po.format, pc.format)
                detail_ok[kind] += want in match.details
    print("pixel check alone (each file against its scene's original):")
    print(f"  {'copy':<10} {'n':>4} {'same picture':>13} {'similar':>8} {'right detail':>13}")
    for kind, counts in results.items():
        n = sum(counts.values())
        same = counts[SAME_PICTURE]
        extra = f"{detail_ok[kind]:>13}" if kind != "burst" else f"{'-':>13}"
        print(f"  {kind:<10} {n:>4} {same:>13} {counts[SIMILAR]:>8} {extra}")
    copies = sum(sum(c.values()) for k, c in results.items() if k != "burst")
    same_copies = sum(c[SAME_PICTURE] for k, c in results.items() if k != "burst")
    bursts = sum(results["burst"].values())
    wrong = results["burst"][SAME_PICTURE]
    precision = same_copies / max(same_copies + wrong, 1)
    print(
        f"  'same picture': precision {precision:.3f} ({same_copies}/{same_copies + wrong}), "
        f"recall {same_copies / max(copies, 1):.3f} ({same_copies}/{copies}); "
        f"burst shots called same picture: {wrong}/{bursts}"
    )
    print(
        f"  time: decode to a print {1000 * statistics.median(print_times):.2f} ms/image (median), "
        f"compare {1000 * statistics.median(compare_times):.2f} ms/pair (median, "
        f"max {1000 * max(compare_times):.2f}); per pair ≈ 2 prints + 1 compare, prints reused across pairs"
    )


def end_to_end(db: Path, folder: Path, truth: dict[str, tuple[int, str]], threshold: float) -> None:
    """Precision/recall of the labels (similar=True) and of the default groups, one model, one threshold."""
    client = lookalike.connect(db)
    table = client.open_table("images")
    t0 = time.perf_counter()
    labelled = find_duplicates(table, threshold=threshold, similar=True)
    t_similar = time.perf_counter() - t0
    t0 = time.perf_counter()
    default = find_duplicates(table, threshold=threshold)
    t_default = time.perf_counter() - t0
    client.close()

    def pic(row: dict) -> int:
        return truth[Path(row["path"]).name][0]

    tp = fp = 0
    said_similar_wrongly = 0
    for g in labelled:
        keeper_pic = pic(g.rows[0])
        for row, label in zip(g.rows[1:], g.labels[1:]):
            same_truth = pic(row) == keeper_pic
            if label != SIMILAR:
                tp += same_truth
                fp += not same_truth
            else:
                said_similar_wrongly += same_truth
    sizes = Counter(p for p, _ in truth.values())
    possible = sum(s - 1 for s in sizes.values())
    true_pairs = sum(s * (s - 1) // 2 for s in sizes.values())
    found_pairs = right_pairs = 0
    for g in default:
        for a, b in itertools.combinations(g.rows, 2):
            found_pairs += 1
            right_pairs += pic(a) == pic(b)
    diam = max((g.diameter for g in labelled), default=0.0)
    print(
        f"  threshold {threshold:<5g} 'same picture' label: precision {tp / max(tp + fp, 1):.3f} ({tp}/{tp + fp}), "
        f"recall {tp / max(possible, 1):.3f} ({tp}/{possible}); copies called similar: {said_similar_wrongly}"
    )
    print(
        f"  {'':15} default groups: {len(default)}, pair precision {right_pairs / max(found_pairs, 1):.3f} "
        f"({right_pairs}/{found_pairs}), pair recall {right_pairs / max(true_pairs, 1):.3f} "
        f"({right_pairs}/{true_pairs}); largest diameter {diam:.4f}; "
        f"scan {t_default:.2f} s (similar=True {t_similar:.2f} s, {len(labelled)} groups)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument(
        "--threshold", type=float, action="append", help="cosine distance (repeatable; default 0.03 and 0.3)"
    )
    args = parser.parse_args()
    thresholds = args.threshold or [0.03, 0.3]
    models = {"tiny-clip": ROOT / "tests/fixtures/tiny-clip"}
    big = ROOT / ".bench/clip-vit-b-32-random"
    if big.is_dir():
        models["ViT-B/32 (random weights)"] = big
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        truth = make_photos(folder, args.scenes)
        kinds = Counter(k for _, k in truth.values())
        print(f"{len(truth)} images: {args.scenes} originals, {kinds['burst']} burst shots, 7 copies each\n")
        pixel_only(folder, truth)
        for label, path in models.items():
            db = Path(tmp) / f"{path.name}.db"
            client = lookalike.connect(db)
            report = index_paths(client, [folder], model=f"local/{path}")
            client.close()
            print(f"\n{label}: indexed {report.added} images")
            for threshold in thresholds:
                end_to_end(db, folder, truth, threshold)


if __name__ == "__main__":
    main()
