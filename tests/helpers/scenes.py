"""Generated photos for the duplicate checks: varied scenes, their copies, and burst shots of them.

A scene is a recipe (:class:`Scene`) that can be rendered again with the camera moved, the subject
moved and sensor noise added, which is what a burst of photos looks like. :data:`TRANSFORMS` are the
ways a copy of one picture is made (re-encode, resize, crop, format change, mirror, brightness), each
with the detail the pixel check should report.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

SIZE = (480, 360)
_MARGIN = 0.08  # the rendered world is this much larger than the frame on each side, for camera moves


@dataclass(frozen=True)
class Scene:
    """A random scene's recipe: rendering it twice with the same arguments gives the same picture."""

    seed: int

    def render(
        self,
        size: tuple[int, int] = SIZE,
        *,
        camera: tuple[float, float] = (0.0, 0.0),
        subject: tuple[float, float] = (0.0, 0.0),
        noise: float = 0.0,
        noise_seed: int = 0,
    ) -> Image.Image:
        """The scene seen through a frame shifted by ``camera`` and with the subject moved by ``subject``
        (fractions of the frame), plus gaussian sensor noise of ``noise`` grey levels."""
        rng = np.random.default_rng(self.seed)
        w, h = size
        mw, mh = int(w * (1 + 2 * _MARGIN)), int(h * (1 + 2 * _MARGIN))
        world = _background(rng, mw, mh)
        draw = ImageDraw.Draw(world, "RGBA")
        for _ in range(int(rng.integers(6, 14))):
            _shape(draw, rng, mw, mh, scale=float(rng.uniform(0.05, 0.3)))
        # the subject: a bold, textured shape that a burst sees in a slightly different place
        sx, sy = rng.uniform(0.3, 0.7) + subject[0] * w / mw, rng.uniform(0.3, 0.7) + subject[1] * h / mh
        r = float(rng.uniform(0.09, 0.16)) * mh
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        cx, cy = sx * mw, sy * mh
        draw.ellipse(
            (cx - r, cy - r * 1.3, cx + r, cy + r * 1.3), fill=(*colour, 255), outline=(0, 0, 0, 255), width=3
        )
        inner = tuple(255 - c for c in colour)
        draw.rectangle((cx - r * 0.4, cy - r * 0.2, cx + r * 0.4, cy + r * 0.5), fill=(*inner, 255))
        draw.ellipse((cx - r * 0.5, cy - r * 0.9, cx - r * 0.1, cy - r * 0.5), fill=(250, 250, 250, 255))
        world = world.filter(ImageFilter.GaussianBlur(0.7))
        x0 = round((_MARGIN + camera[0]) * w)
        y0 = round((_MARGIN + camera[1]) * h)
        frame = world.crop((x0, y0, x0 + w, y0 + h))
        if noise > 0:
            arr = np.asarray(frame, dtype=np.float32)
            arr = arr + np.random.default_rng(noise_seed).normal(0, noise, arr.shape)
            frame = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        return frame


def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A two-colour gradient at a random angle with a texture of sine gratings and smoothed noise."""
    c1, c2 = rng.integers(0, 255, 3).astype(np.float32), rng.integers(0, 255, 3).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1) / 2
    img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    for _ in range(int(rng.integers(1, 4))):
        freq, phase, theta = rng.uniform(3, 25), rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
        wave = np.sin(freq * (np.cos(theta) * xx / w + np.sin(theta) * yy / h) * 2 * np.pi + phase)
        img = img + rng.uniform(5, 30) * wave[..., None] * rng.uniform(0.3, 1.0, 3)
    blotches = rng.normal(0, 1, (h // 16 + 1, w // 16 + 1, 3)).astype(np.float32)
    big = np.asarray(
        Image.fromarray(np.clip(blotches * 40 + 128, 0, 255).astype(np.uint8)).resize((w, h), Image.BICUBIC),
        dtype=np.float32,
    )
    img = img + (big - 128) * rng.uniform(0.2, 0.8)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _shape(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, scale: float) -> None:
    x, y = rng.uniform(0, w), rng.uniform(0, h)
    sw, sh = scale * w * rng.uniform(0.5, 1.5), scale * h * rng.uniform(0.5, 1.5)
    fill = (*(int(v) for v in rng.integers(0, 255, 3)), int(rng.integers(120, 256)))
    kind = int(rng.integers(0, 4))
    if kind == 0:
        draw.ellipse((x, y, x + sw, y + sh), fill=fill)
    elif kind == 1:
        draw.rectangle((x, y, x + sw, y + sh), fill=fill)
    elif kind == 2:
        pts = [
            (x + sw * rng.uniform(-1, 1), y + sh * rng.uniform(-1, 1)) for _ in range(int(rng.integers(3, 7)))
        ]
        draw.polygon(pts, fill=fill)
    else:
        for i in range(int(rng.integers(3, 8))):  # stripes
            draw.line((x, y + i * 6, x + sw, y + i * 6 + sh * 0.2), fill=fill, width=int(rng.integers(1, 4)))


# ---------------------------------------------------------------------- files


def encode(im: Image.Image, fmt: str, quality: int = 92) -> bytes:
    """``im`` encoded as ``fmt`` ("JPEG", "PNG", "WEBP")."""
    out = io.BytesIO()
    if fmt == "PNG":
        im.save(out, fmt)
    else:
        im.save(out, fmt, quality=quality)
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def _crop(im: Image.Image, seed: int) -> Image.Image:
    """5 % of the width and of the height cut away, split at random between the two sides."""
    w, h = im.size
    cw, ch = round(w * 0.05), round(h * 0.05)
    rng = np.random.default_rng(seed)
    left, top = int(rng.integers(0, cw + 1)), int(rng.integers(0, ch + 1))
    return im.crop((left, top, left + w - cw, top + h - ch))


def _other_format(fmt: str) -> str:
    return "PNG" if fmt == "JPEG" else "JPEG"


# name -> (make the copy's bytes from (original bytes, original format, seed), expected detail, suffix)
Transform = Callable[[bytes, str, int], tuple[bytes, str]]
TRANSFORMS: dict[str, tuple[Transform, str]] = {
    "reencode": (lambda data, fmt, s: (encode(_open(data), "JPEG", 60), "JPEG"), "re-encoded"),
    "resize50": (
        lambda data, fmt, s: (
            encode(_open(data).resize((SIZE[0] // 2, SIZE[1] // 2), Image.BILINEAR), fmt),
            fmt,
        ),
        "resized",
    ),
    "crop5": (lambda data, fmt, s: (encode(_crop(_open(data), s), fmt), fmt), "cropped"),
    "webp": (lambda data, fmt, s: (encode(_open(data), "WEBP", 80), "WEBP"), "format change"),
    "format": (
        lambda data, fmt, s: (encode(_open(data), _other_format(fmt)), _other_format(fmt)),
        "format change",
    ),
    "mirror": (lambda data, fmt, s: (encode(ImageOps.mirror(_open(data)), fmt), fmt), "mirrored"),
    "bright15": (
        lambda data, fmt, s: (encode(ImageEnhance.Brightness(_open(data)).enhance(1.15), fmt), fmt),
        "brighter",
    ),
}
"""Copies of one picture: name -> (function making the copy's bytes and format, detail expected)."""

SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


def burst_shot(scene: Scene, k: int, size: tuple[int, int] = SIZE) -> Image.Image:
    """The ``k``-th other shot of a burst: the camera moved 1–3 %, the subject 4–8 %, sensor noise."""
    rng = np.random.default_rng(scene.seed * 1000 + k)
    sign = rng.choice([-1, 1], 4)
    camera = (float(sign[0] * rng.uniform(0.01, 0.03)), float(sign[1] * rng.uniform(0.01, 0.03)))
    subject = (float(sign[2] * rng.uniform(0.04, 0.08)), float(sign[3] * rng.uniform(0.0, 0.04)))
    return scene.render(size, camera=camera, subject=subject, noise=3.0, noise_seed=scene.seed * 1000 + k)


def first_shot(scene: Scene, size: tuple[int, int] = SIZE) -> Image.Image:
    """The picture that copies are made of (and the first shot of its burst): a little sensor noise."""
    return scene.render(size, noise=3.0, noise_seed=scene.seed * 1000)
