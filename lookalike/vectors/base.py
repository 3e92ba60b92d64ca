"""What an in-process vector index offers the embedded engine: :class:`VectorIndex`.

The embedded engine keeps one index per (table, vector column) and feeds it from its change log as
index operations: ``replace_all`` after a reset, ``remove`` and ``upsert`` for the rows that changed.
The exact matrix (:class:`lookalike.vectors.exact.VectorMatrix`) implements this protocol; an ANN
graph (HNSW) or an inverted file (IVF) supports the same operations, so it can take the matrix's place
without the engine changing how it keeps the index in sync.

Keys are int64 row ids. Distances follow the metric's definition in
:func:`lookalike.engines.base.score_from_distance`: ``cosine`` is ``1 - similarity``,
``inner_product`` the negative inner product, ``l2`` and ``l1`` the lengths.

Also here: the portable float32 blob that stores a vector in a binary column (little-endian), the
default encoding of every engine without a vector type of its own.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["VectorIndex", "float32_blob", "vector_as_list"]


@runtime_checkable
class VectorIndex(Protocol):
    """A searchable set of (int64 id, float32 vector) rows, maintained in place."""

    dimensions: int
    """Length of every vector."""

    metrics: tuple[str, ...]
    """The metrics :meth:`search` serves (an HNSW graph is built for one; the exact matrix serves all)."""

    supports_prefilter: bool
    """True when :meth:`search` honours ``candidate_ids`` exactly (filters cost no recall)."""

    def __len__(self) -> int: ...

    @property
    def memory_bytes(self) -> int:
        """Bytes of memory the index holds (vectors, graph, spare capacity)."""
        ...

    def replace_all(self, ids: np.ndarray, data: np.ndarray) -> None:
        """Hold exactly these rows (``ids`` ascending), dropping everything held before."""
        ...

    def upsert(self, ids: np.ndarray, data: np.ndarray) -> None:
        """Insert rows or replace the vectors of ids already held (an id given twice: the later wins)."""
        ...

    def remove(self, ids: np.ndarray) -> None:
        """Drop rows; ids not held are ignored."""
        ...

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """A copy of every row: (ids ascending, float32 ``(n, dimensions)`` vectors)."""
        ...

    def search(
        self,
        query: np.ndarray,
        metric: str,
        k: int,
        *,
        candidate_ids: np.ndarray | None = None,
        distance_min: float | None = None,
        distance_max: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (ids, float64 distances), nearest first, among ``candidate_ids`` when given and
        within the distance range when one is given."""
        ...


def float32_blob(value: Any) -> bytes:
    """A vector (array, list, or bytes already encoded) as little-endian float32 bytes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return np.asarray(value, dtype="<f4").tobytes()


def float32_blobs(values: list[Any]) -> list[Any]:
    """Many vectors as float32 blobs (None stays None), in one array conversion when they are all
    arrays or sequences of one length (one call per row costs more than SQLite's insert)."""
    present = [v for v in values if v is not None]
    if present and not any(isinstance(v, (bytes, bytearray, memoryview)) for v in present):
        try:
            matrix = np.asarray(present, dtype="<f4")
        except (ValueError, TypeError):  # ragged or odd values: row by row below
            matrix = None
        if matrix is not None and matrix.ndim == 2:
            raw, width = matrix.tobytes(), matrix.shape[1] * 4
            blobs = iter([raw[i : i + width] for i in range(0, len(raw), width)])
            return [None if v is None else next(blobs) for v in values]
    return [None if v is None else float32_blob(v) for v in values]


def vector_as_list(value: Any) -> list[float]:
    """A stored vector (float32 blob, array or sequence) as a list of floats."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return np.frombuffer(value, dtype="<f4").tolist()
    if isinstance(value, np.ndarray):
        return value.astype(np.float32).tolist()
    return list(value)
