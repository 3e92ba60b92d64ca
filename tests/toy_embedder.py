"""A small, deterministic multimodal embedder for tests: images by their colours, text by words.

Colour words ("red", "orange", ...) map to the same vector as a picture of that colour, so
cross-modal search ("red" → the red picture) works the way a CLIP model would.
"""

from __future__ import annotations

import hashlib

import numpy as np

from lookalike import BaseEmbeddingFunction

COLOURS = {
    "red": (220, 30, 30),
    "orange": (240, 140, 20),
    "yellow": (235, 220, 40),
    "green": (40, 180, 60),
    "blue": (30, 60, 220),
    "purple": (140, 40, 180),
    "black": (10, 10, 10),
    "white": (245, 245, 245),
}
DIMS = 16


def colour_vector(rgb: np.ndarray) -> np.ndarray:
    """Mean colour (3) + a coarse 2x2 layout of brightness (4) + padding, unit length."""
    rgb = np.asarray(rgb, dtype=np.float32).reshape(-1, 3) / 255.0
    v = np.zeros(DIMS, dtype=np.float32)
    v[:3] = rgb.mean(axis=0) * 4.0
    v[3:] = 0.05
    return v / np.linalg.norm(v)


class ToyEmbedder(BaseEmbeddingFunction):
    """Deterministic 16-d multimodal embedder (no model files, no network)."""

    def __init__(self, dimensions: int = DIMS) -> None:
        super().__init__("toy", dimensions=dimensions, multimodal=True)
        self.calls = {"texts": 0, "images": 0}

    def embed_texts(self, texts: list[str], *, purpose: str) -> np.ndarray:
        self.calls["texts"] += len(texts)
        out = []
        for t in texts:
            words = t.lower().split()
            colour = next((COLOURS[w] for w in words if w in COLOURS), None)
            if colour is not None:
                out.append(colour_vector(np.array(colour)))
            else:
                seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little")
                v = np.random.default_rng(seed).standard_normal(DIMS).astype(np.float32)
                out.append(v / np.linalg.norm(v))
        return np.stack(out)

    def embed_images(self, images: list, *, purpose: str) -> np.ndarray:
        self.calls["images"] += len(images)
        return np.stack([colour_vector(np.asarray(im.convert("RGB").resize((8, 8)))) for im in images])

    def config_options(self) -> dict:
        return {}
