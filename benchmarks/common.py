"""Shared helpers for the benchmarks: synthetic CLIP-like vectors and timing."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np


def clustered_vectors(n: int, dims: int = 512, clusters: int = 4096, seed: int = 0) -> np.ndarray:
    """Unit vectors in gaussian clusters around a shared direction (CLIP embeddings are anisotropic)."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(dims).astype(np.float32)
    shared /= np.linalg.norm(shared)
    centres = rng.standard_normal((clusters, dims)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    centres = 0.6 * centres + 0.8 * shared
    out = np.empty((n, dims), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        labels = rng.integers(0, clusters, m)
        block = centres[labels] + 0.25 * rng.standard_normal((m, dims)).astype(np.float32) / np.sqrt(dims) * 4
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + m] = block
    return out


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    """Median seconds of ``repeat`` calls (after one warm-up call), and all timings."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"
