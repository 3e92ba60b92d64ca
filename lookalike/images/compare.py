"""Are two images the same picture? A cheap pixel-level check on small decodes.

::

    a, b = pixel_print("IMG_1.jpg"), pixel_print("IMG_1 (copy).webp")
    match = compare_prints(a, b)     # Match(label="same picture", details=("format change",), ...)

Used by :func:`lookalike.duplicates.find_duplicates` to confirm each near-duplicate pair that the
vectors found, and to say *why* two images are grouped:

- ``"identical file"``: the same bytes (same content hash).
- ``"same picture"``: the same pixels up to a re-encode, resize, format change, small crop (up to
  ~12 % a side), mirror or tonal change (brightness, contrast, gamma); ``details`` says which where the
  check can tell.
- ``"similar"``: the vectors are close but the pixels disagree somewhere: the same scene shot again
  (a burst, the subject moved, the camera moved).

How: each image is decoded small (JPEG draft scaling, so a 12 MP photo costs a 1/8-scale decode) into
a 64×64 grey thumbnail (:class:`PixelPrint`). Two prints are compared on a 32×32 grid under a few
alignments: as is, mirrored, and one as a crop of the other (scales 0.96–0.88, nine offsets). Each
alignment gets a monotone tone mapping (quantile matching, which absorbs brightness, contrast, gamma
and clipping), then the residual is measured per 4×4 block. A re-encode or resize leaves a small,
even residual; a moved subject leaves a large residual in a few blocks, so the decision looks at the
**worst block** (:data:`BLOCK_LIMIT`) as well as the whole (:data:`GLOBAL_LIMIT`), both relative to
the picture's contrast. The limits were chosen on ``benchmarks/dupes_quality.py`` (which prints the
precision and recall they give) and are module constants so they can be revisited.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from lookalike.images.decode import ImageSource, decode_image, read_source, sniff_format

__all__ = [
    "BLOCK_LIMIT",
    "GLOBAL_LIMIT",
    "IDENTICAL_FILE",
    "SAME_PICTURE",
    "SIMILAR",
    "Match",
    "PixelPrint",
    "compare_prints",
    "pixel_print",
]

IDENTICAL_FILE = "identical file"
SAME_PICTURE = "same picture"
SIMILAR = "similar"

PRINT_SIZE = 64
"""Side of the grey thumbnail kept per image."""

_GRID = 32  # comparison grid: coarse enough to average JPEG blocks and sensor noise away
_BLOCK = 5  # residual blocks of 5×5 grid cells: 6×6 blocks over the 30×30 inside of the grid

GLOBAL_LIMIT = 0.15
"""Largest RMS residual over the whole aligned picture, as a fraction of its contrast (grey std)."""

BLOCK_LIMIT = 0.40
"""Largest RMS residual in any one 4×4 block of the 32×32 grid, as a fraction of the picture's contrast."""

_CROP_SCALES = (0.97, 0.94, 0.91, 0.88)  # kept side fractions first tried for a crop
_PLACES = (0.0, 0.25, 0.5, 0.75, 1.0)  # where a crop sits within the slack, per axis
_STARTS = 3  # best grid crops refined
_HOPELESS = 0.3  # 1 - correlation of the best grid crop above which refining is skipped (15 % crops: < 0.12)
_MIN_KEPT = 0.85  # smaller crops are not looked for
_FIRST_STEP, _LAST_STEP = 0.01, 0.0015  # the crop search's first and last moves (fractions of the picture)
_TONE_CHANGE = 0.04  # mean grey ratio beyond which "brighter"/"darker" is reported
_RESIZE_CHANGE = 0.03  # relative size difference beyond which "resized" is reported
_BLUR = 1.0  # grey levels are blurred by this many print pixels (sigma)
_SHAPE_PENALTY = 0.005  # handicap of cropped and mirrored readings against the plain one


@dataclass(frozen=True)
class PixelPrint:
    """What the pixel check keeps of one image: a small grey thumbnail and facts about the file."""

    grey: np.ndarray = field(repr=False)  # PRINT_SIZE × PRINT_SIZE float32, the whole picture squashed
    width: int  # upright pixel size of the full image
    height: int
    format: str  # as sniffed: "JPEG", "PNG", "WEBP", ...
    content_hash: str  # sha256 of the bytes
    nbytes: int | None = None  # size of the file


@dataclass(frozen=True)
class Match:
    """The verdict on a pair: ``label`` (one of the three above), ``details`` and the scores behind it.

    ``residual`` and ``worst_block`` are the best alignment's RMS residuals relative to contrast
    (see :data:`GLOBAL_LIMIT`, :data:`BLOCK_LIMIT`).
    """

    label: str
    details: tuple[str, ...] = ()
    residual: float = 0.0
    worst_block: float = 0.0


def pixel_print(ref: Any, *, max_pixels: int | None = None) -> PixelPrint:
    """Read and decode ``ref`` (a path, bytes or :class:`ImageSource`; URLs are the caller's choice) small.

    Raises :class:`~lookalike.errors.ImageInputError` for missing, unreadable or corrupt images.
    """
    source = ref if isinstance(ref, ImageSource) else read_source(ref)
    data = source.data
    width = height = 0
    fmt = "image"
    if data is not None:
        fmt = sniff_format(data)
        try:  # the header's size: the draft decode below is smaller than the file for JPEGs
            with Image.open(io.BytesIO(data)) as head:
                width, height = head.size
                if head.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                    width, height = height, width
        except Exception:  # decode_image below gives the proper error for a bad file
            pass
    im = decode_image(source, draft_size=(PRINT_SIZE * 2, PRINT_SIZE * 2), max_pixels=max_pixels)
    if not width or not height:
        width, height = im.size
    # a smooth (triangle) downscale and a blur: sharp 1-px detail would otherwise alias, and a shift by
    # one source pixel (a crop, a mirror of an odd width) would change the print more than a re-encode
    grey = (
        im.convert("L")
        .resize((PRINT_SIZE, PRINT_SIZE), Image.Resampling.BILINEAR)
        .filter(ImageFilter.GaussianBlur(_BLUR))
    )
    return PixelPrint(
        grey=np.asarray(grey, dtype=np.float32),
        width=int(width),
        height=int(height),
        format=fmt,
        content_hash=source.content_hash,
        nbytes=len(data) if data is not None else None,
    )


# ---------------------------------------------------------------------- resampling


def _box_weights(start: float, length: float, n_out: int = _GRID, n_in: int = PRINT_SIZE) -> np.ndarray:
    """Area-average weights (n_out × n_in) sampling [start, start + length] (fractions) on n_out cells."""
    edges = (start + length * np.arange(n_out + 1) / n_out) * n_in
    lo, hi = edges[:-1, None], edges[1:, None]
    k = np.arange(n_in)[None, :]
    w = np.clip(np.minimum(hi, k + 1) - np.maximum(lo, k), 0.0, None)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


Region = tuple[float, float, float, float]  # (x0, y0, fx, fy): fractions of the larger picture


def _crop(scale: float, x0: float, y0: float, ratio: float) -> Region | None:
    """The crop whose longer kept side is ``scale``, at ``(x0, y0)`` clamped inside the picture.

    ``ratio`` is (smaller picture's w/h) / (larger picture's w/h): keeping fx of the width and fy of the
    height changes the aspect by fx / fy, so one side follows from the other.
    """
    fx, fy = (scale, scale / ratio) if ratio >= 1 else (scale * ratio, scale)
    if not (_MIN_KEPT <= fx <= 1.0 and _MIN_KEPT <= fy <= 1.0):
        return None
    return (min(max(x0, 0.0), 1.0 - fx), min(max(y0, 0.0), 1.0 - fy), fx, fy)


@functools.lru_cache(maxsize=64)
def _coarse_bank(ratio: float) -> tuple[list[Region], np.ndarray, np.ndarray]:
    """A grid of crops (a few scales, each at 5 × 5 places) with their half-resolution weights.

    The grid is searched at half resolution (16 × 16 from a 32 × 32 print), 8× cheaper; the best
    few are refined at full resolution.
    """
    regions: list[Region] = []
    for s in _CROP_SCALES:
        for ox in _PLACES:
            for oy in _PLACES:
                r = _crop(s, (1 - s) * ox, (1 - s) * oy, ratio)
                if r is not None and r not in regions:
                    regions.append(r)
    half, small = _GRID // 2, PRINT_SIZE // 2
    if not regions:  # no crop fits this ratio: empty weight stacks, and callers skip it
        empty = np.zeros((0, half, small), dtype=np.float32)
        return regions, empty, empty
    ry = np.stack([_box_weights(y0, fy, half, small) for _, y0, _, fy in regions])
    rx = np.stack([_box_weights(x0, fx, half, small) for x0, _, fx, _ in regions])
    return regions, ry, rx


def _halve(grey: np.ndarray) -> np.ndarray:
    n = grey.shape[0] // 2
    return grey.reshape(n, 2, n, 2).mean(axis=(1, 3))


def _around(region: Region, step: float, ratio: float) -> list[Region]:
    """Crops one ``step`` away from ``region`` in scale and in each offset (a pattern search's moves)."""
    x0, y0, fx, fy = region
    scale = max(fx, fy)
    out = []
    for ds in (-step, 0.0, step):
        for dx in (-step, 0.0, step):
            for dy in (-step, 0.0, step):
                r = _crop(scale + ds, x0 + dx - ds / 2, y0 + dy - ds / 2, ratio)
                if r is not None:
                    out.append(r)
    return out


_WEIGHTS: dict[tuple[float, float], np.ndarray] = {}


def _weights(start: float, length: float) -> np.ndarray:
    key = (round(start, 6), round(length, 6))
    w = _WEIGHTS.get(key)
    if w is None:
        if len(_WEIGHTS) > 4096:  # aspect ratios vary per pair; keep the cache bounded
            _WEIGHTS.clear()
        w = _WEIGHTS[key] = _box_weights(start, length)
    return w


def _sample(grey: np.ndarray, regions: list[tuple[float, float, float, float]]) -> np.ndarray:
    """The given regions of a print, each resampled to GRID × GRID (one batched product)."""
    ry = np.stack([_weights(y0, fy) for _, y0, _, fy in regions])
    rx = np.stack([_weights(x0, fx) for x0, _, fx, _ in regions])
    return ry @ grey @ rx.transpose(0, 2, 1)


# ---------------------------------------------------------------------- scoring


def _scores(cands: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative (whole, worst-block) RMS residuals of each candidate against ``target`` after tone mapping.

    The outer ring of grid cells is left out: there the blur saw what lies beyond a crop's edge in one
    picture and a clamped edge in the other.
    """
    inner = target[1:-1, 1:-1].ravel()
    scale = max(float(inner.std()), 4.0)  # a nearly flat picture: do not blow tiny residuals up
    c = cands[:, 1:-1, 1:-1].reshape(len(cands), -1)
    ranks = np.argsort(np.argsort(c, axis=1), axis=1)
    mapped = np.sort(inner)[ranks]  # quantile matching: any monotone tone change is undone
    side = _GRID - 2
    resid2 = ((mapped - inner[None, :]) ** 2).reshape(len(cands), side, side)
    whole = np.sqrt(resid2.mean(axis=(1, 2))) / scale
    nb = side // _BLOCK
    blocks = resid2.reshape(len(cands), nb, _BLOCK, nb, _BLOCK).mean(axis=(2, 4))
    worst = np.sqrt(blocks.max(axis=(1, 2))) / scale
    return whole, worst


def _full(grey: np.ndarray) -> np.ndarray:
    return _sample(grey, [(0.0, 0.0, 1.0, 1.0)])[0]


@dataclass(frozen=True)
class _Trial:
    cost: float
    whole: float
    worst: float
    a_is_larger: bool
    mirrored: bool
    region: tuple[float, float, float, float]
    cand: np.ndarray
    target: np.ndarray


def compare_prints(a: PixelPrint, b: PixelPrint) -> Match:
    """Label ``b`` relative to ``a``: identical file, same picture (with what changed) or similar."""
    if a.content_hash == b.content_hash:
        return Match(IDENTICAL_FILE)
    best = _judge(a, b, True, False, (0.0, 0.0, 1.0, 1.0))
    if best.whole > GLOBAL_LIMIT / 2 or best.worst > BLOCK_LIMIT / 2:
        # not plainly the same: look for a mirror and a crop (either way round), then keep the better
        other = _search(a, b)
        if other.whole + _SHAPE_PENALTY < best.whole:
            best = other
    if best.whole > GLOBAL_LIMIT or best.worst > BLOCK_LIMIT:
        return Match(SIMILAR, (), best.whole, best.worst)
    return Match(SAME_PICTURE, _details(a, b, best), best.whole, best.worst)


def _pair(
    a: PixelPrint, b: PixelPrint, a_is_larger: bool, mirrored: bool
) -> tuple[np.ndarray, np.ndarray, float]:
    """(the larger view's print, the smaller view's full grid, their aspect ratio) for one reading."""
    big, small = (a, b) if a_is_larger else (b, a)
    ratio = (small.width / max(small.height, 1)) / (big.width / max(big.height, 1))
    return big.grey, _full(small.grey[:, ::-1] if mirrored else small.grey), ratio


def _judge(a: PixelPrint, b: PixelPrint, a_is_larger: bool, mirrored: bool, region: Region) -> _Trial:
    """The full residual scores of one reading."""
    big, target, _ = _pair(a, b, a_is_larger, mirrored)
    cand = _sample(big, [region])
    whole, worst = _scores(cand, target)
    return _Trial(
        float(whole[0]), float(whole[0]), float(worst[0]), a_is_larger, mirrored, region, cand[0], target
    )


def _search(a: PixelPrint, b: PixelPrint) -> _Trial:
    """The best mirrored and/or cropped reading, found by correlation (cheap), then scored in full.

    A grid of crops for each way round and orientation; the few best are refined by a pattern search
    (moves in scale and offset, halved until :data:`_LAST_STEP`), since one start can settle in a
    neighbouring crop that fits a textured picture almost as well.
    """
    found: list[tuple[float, bool, bool, Region]] = []
    for a_is_larger in (True, False):
        for mirrored in (False, True):
            big, target, ratio = _pair(a, b, a_is_larger, mirrored)
            if a_is_larger and mirrored:  # the whole picture, mirrored
                cost = _misfit(_sample(big, [(0.0, 0.0, 1.0, 1.0)]), target)
                found.append((float(cost[0]), a_is_larger, mirrored, (0.0, 0.0, 1.0, 1.0)))
            regions, ry, rx = _coarse_bank(round(ratio, 3))
            if not regions:
                continue
            cost = _misfit(ry @ _halve(big) @ rx.transpose(0, 2, 1), _halve(target))
            for i in np.argsort(cost)[:_STARTS].tolist():
                found.append((float(cost[i]), a_is_larger, mirrored, regions[i]))
    found.sort(key=lambda f: f[0])
    best: tuple[float, bool, bool, Region] = found[0]
    if best[0] > _HOPELESS:  # nothing lines up at all: a different picture, not worth refining
        return _judge(a, b, best[1], best[2], best[3])
    for cost0, a_is_larger, mirrored, region in found[:_STARTS]:
        if region[2] == region[3] == 1.0:
            continue
        big, target, ratio = _pair(a, b, a_is_larger, mirrored)
        step, current = _FIRST_STEP, cost0
        while step >= _LAST_STEP:
            regions = _around(region, step, ratio)
            cost = _misfit(_sample(big, regions), target)
            i = int(np.argmin(cost))
            if cost[i] < current - 1e-6:
                current, region = float(cost[i]), regions[i]
                continue  # keep moving at this step while it helps
            step /= 2
        if current < best[0]:
            best = (current, a_is_larger, mirrored, region)
    return _judge(a, b, best[1], best[2], best[3])


def _misfit(cands: np.ndarray, target: np.ndarray) -> np.ndarray:
    """1 - correlation of each candidate with ``target`` over the grid's inside: cheap, to align by."""
    t = target[1:-1, 1:-1].ravel()
    t = (t - t.mean()) / (np.linalg.norm(t - t.mean()) + 1e-6)
    c = cands[:, 1:-1, 1:-1].reshape(len(cands), -1)
    c = c - c.mean(axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True) + 1e-6
    return 1.0 - c @ t


def _details(a: PixelPrint, b: PixelPrint, best: _Trial) -> tuple[str, ...]:
    """What changed from ``a`` to ``b``, as far as the prints tell."""
    out: list[str] = []
    _, _, fx, fy = best.region
    if best.mirrored:
        out.append("mirrored")
    if fx < 1.0 or fy < 1.0:
        out.append("cropped")
    # the smaller view's size against the larger one's, crop taken out: another scale means a resize
    big, small = (a, b) if best.a_is_larger else (b, a)
    expect_w, expect_h = big.width * fx, big.height * fy
    if (
        expect_w
        and expect_h
        and (
            abs(small.width / expect_w - 1) > _RESIZE_CHANGE
            or abs(small.height / expect_h - 1) > _RESIZE_CHANGE
        )
    ):
        out.append("resized")
    # tone: b's mean grey against a's over the same part of the picture
    mean_big, mean_small = float(best.cand.mean()), float(best.target.mean())
    mean_a, mean_b = (mean_big, mean_small) if best.a_is_larger else (mean_small, mean_big)
    if mean_a > 1 and mean_b / mean_a > 1 + _TONE_CHANGE:
        out.append("brighter")
    elif mean_a > 1 and mean_b / mean_a < 1 - _TONE_CHANGE:
        out.append("darker")
    if a.format != b.format:
        out.append("format change")
    elif not out:
        out.append("re-encoded")
    return tuple(out)
