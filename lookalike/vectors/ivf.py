"""An inverted-file index with 8-bit codes (faiss ``IVF<nlist>,SQ8``) for the embedded engine.

:class:`IVFIndex` clusters the vectors into ``nlist`` lists around trained centroids and stores each
vector as one byte a dimension. A search probes the ``nprobe`` lists nearest the query and returns a
*pool* of candidate keys: the caller re-ranks the pool exactly from the float32 vectors it stores
elsewhere, so the codes decide only which rows are looked at, never a returned distance.

It serves one metric: ``cosine`` (vectors normalised, inner product), ``inner_product`` or ``l2``.
``l1`` has no faiss index and is not served. Keys are int64 and given by the caller.

The index is saved to one file: a header (:data:`FORMAT_VERSION`, the table, column, dimensions and
metric it was built for, plus whatever the caller adds) and the faiss index, with a length and a
CRC32 so a truncated or damaged file is refused (:class:`IndexFileError`) instead of trusted. Saving
writes ``<path>.tmp-<pid>``, fsyncs and renames it over the old file, so a build killed half-way
leaves the previous file in place.

faiss is imported only when an index is built or loaded (the ``ann`` extra, package ``faiss-cpu``).
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import EngineError, MissingDependencyError

__all__ = [
    "FORMAT_VERSION",
    "IVF_METRICS",
    "IVFIndex",
    "IndexFileError",
    "default_nlist",
    "import_faiss",
]

FORMAT_VERSION = 1
IVF_METRICS = ("cosine", "inner_product", "l2")
MAX_NLIST = 4096
TRAIN_SAMPLE = 131_072  # vectors trained on; more barely moves the centroids and costs build time
_RANGE_MARGIN = 0.2  # each dimension's code range reaches 20 % of the sample's range beyond it
_MAGIC = b"LKIVF\x00\x01\n"
_HEAD = struct.Struct("<8sI")  # magic, header length
_BODY = struct.Struct("<QI")  # payload length, payload CRC32


class IndexFileError(EngineError):
    """An index file that can't be used: missing, truncated, damaged, or built for something else."""


def import_faiss() -> Any:
    """The faiss module, or :class:`MissingDependencyError` naming the extra that installs it."""
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError("the IVF vector index", "ann", package="faiss-cpu") from exc
    return faiss


def default_nlist(rows: int) -> int:
    """Lists for ``rows`` vectors: about 4·√rows (faiss's rule of thumb), 1 to :data:`MAX_NLIST`."""
    return max(1, min(MAX_NLIST, round(4 * math.sqrt(max(rows, 0))), rows))


class IVFIndex:
    """Int64 keys and 8-bit codes of their vectors in ``nlist`` inverted lists, for one metric."""

    def __init__(self, dimensions: int, metric: str, *, faiss_index: Any = None) -> None:
        if metric not in IVF_METRICS:
            raise ValueError(f"the IVF index serves {', '.join(IVF_METRICS)}, not {metric!r}")
        self.dimensions = dimensions
        self.metric = metric
        self.metrics: tuple[str, ...] = (metric,)
        self._index = faiss_index  # None until trained

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, dimensions: int, metric: str, sample: np.ndarray, nlist: int | None = None) -> IVFIndex:
        """An empty index trained on ``sample`` (a few thousand to :data:`TRAIN_SAMPLE` vectors)."""
        index = cls(dimensions, metric)
        index.train(sample, nlist)
        return index

    def train(self, sample: np.ndarray, nlist: int | None = None) -> None:
        """Learn centroids and code ranges from ``sample``; drops any rows held before."""
        faiss = import_faiss()
        x = self._prepare(sample)
        if not len(x):
            raise ValueError("cannot train an IVF index on no vectors")
        lists = min(nlist or default_nlist(len(x)), len(x))  # faiss needs a vector per centroid
        kind = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        index = faiss.index_factory(self.dimensions, f"IVF{lists},SQ8", kind)
        index.cp.min_points_per_centroid = 1  # small tables: no warning, every centroid used
        # codes clamp values outside the sample's range per dimension: widen it, so rows added
        # later (the sample is a fraction of them, or the table has grown since) keep usable codes
        index.sq.rangestat = faiss.ScalarQuantizer.RS_minmax
        index.sq.rangestat_arg = _RANGE_MARGIN
        index.train(x)
        self._index = index

    @property
    def trained(self) -> bool:
        return self._index is not None

    @property
    def nlist(self) -> int:
        return 0 if self._index is None else int(self._index.nlist)

    def reset(self) -> None:
        """Drop every row, keep the trained centroids (a rebuild after a reset reuses them)."""
        if self._index is not None:
            self._index.reset()

    def _prepare(self, data: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(data, dtype=np.float32).reshape(-1, self.dimensions))
        if self.metric == "cosine":
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            norms[norms == 0] = 1.0  # a zero vector stays zero: similar to nothing, as in exact search
            x = np.ascontiguousarray(x / norms)
        return x

    def _faiss(self) -> Any:
        if self._index is None:
            raise ValueError("the IVF index is not trained yet")
        return self._index

    # ------------------------------------------------------------------ contents
    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def memory_bytes(self) -> int:
        """Codes and keys of every row plus the centroids."""
        if self._index is None:
            return 0
        ivf = self._index
        return int(ivf.ntotal * (ivf.code_size + 8) + ivf.nlist * self.dimensions * 4)

    def add(self, ids: np.ndarray, data: np.ndarray) -> None:
        """Add rows; a key already held is held twice (remove it first to replace it)."""
        keys = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(keys):
            return
        self._faiss().add_with_ids(self._prepare(data), keys)

    def remove(self, ids: np.ndarray) -> None:
        """Drop rows by key; keys not held are ignored."""
        keys = np.ascontiguousarray(ids, dtype=np.int64)
        if len(keys) and len(self):
            self._faiss().remove_ids(keys)

    # ------------------------------------------------------------------ search
    def search_pool(
        self,
        query: np.ndarray,
        pool: int,
        nprobe: int,
        candidate_ids: np.ndarray | None = None,
    ) -> np.ndarray:
        """Keys of up to ``pool`` rows nearest ``query`` by their codes, probing ``nprobe`` lists,
        among ``candidate_ids`` only when given.

        A filter leaves fewer rows in each list, so ``nprobe`` is widened by the share it keeps
        (a filter keeping 1 % probes 100× the lists, up to all of them)."""
        faiss = import_faiss()
        n = len(self)
        if not n or pool <= 0:
            return np.empty(0, np.int64)
        params = faiss.SearchParametersIVF()
        probe = max(1, nprobe)
        if candidate_ids is not None:
            keys = np.ascontiguousarray(np.unique(candidate_ids), dtype=np.int64)
            if not len(keys):
                return np.empty(0, np.int64)
            probe = math.ceil(probe * n / len(keys))
            selector = faiss.IDSelectorBatch(len(keys), faiss.swig_ptr(keys))
            params.sel = selector
        params.nprobe = min(probe, self.nlist)
        q = self._prepare(query)
        _, found = self._faiss().search(q, min(pool, n), params=params)
        out: np.ndarray = found[0]
        return out[out >= 0]

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str], header: dict[str, Any]) -> None:
        """Write the index to ``path`` atomically, with ``header`` (which names what it was built for)."""
        faiss = import_faiss()
        payload = faiss.serialize_index(self._faiss()).tobytes()
        head = json.dumps(
            {**header, "format": FORMAT_VERSION, "dims": self.dimensions, "metric": self.metric},
            sort_keys=True,
        ).encode()
        target = Path(path)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                f.write(_HEAD.pack(_MAGIC, len(head)))
                f.write(head)
                f.write(_BODY.pack(len(payload), zlib.crc32(payload)))
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @staticmethod
    def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
        """The header of an index file (cheap: the index itself is not read)."""
        with open(path, "rb") as f:
            return _read_header(f, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], expect: dict[str, Any]) -> tuple[IVFIndex, dict[str, Any]]:
        """The index saved at ``path`` and its header, when the header matches ``expect`` (e.g.
        table, column, dims, metric); :class:`IndexFileError` when the file is missing, truncated,
        damaged or was built for something else."""
        try:
            f = open(path, "rb")
        except OSError as exc:
            raise IndexFileError(f"index file {os.fspath(path)!r} can't be read: {exc.strerror}") from exc
        with f:
            header = _read_header(f, path)
            for key, value in {"format": FORMAT_VERSION, **expect}.items():
                if header.get(key) != value:
                    raise IndexFileError(
                        f"index file {os.fspath(path)!r} has {key}={header.get(key)!r}, expected {value!r}"
                    )
            body = f.read(_BODY.size)
            if len(body) != _BODY.size:
                raise IndexFileError(f"index file {os.fspath(path)!r} is truncated")
            size, crc = _BODY.unpack(body)
            payload = f.read(size)
        if len(payload) != size:
            raise IndexFileError(f"index file {os.fspath(path)!r} is truncated")
        if zlib.crc32(payload) != crc:
            raise IndexFileError(f"index file {os.fspath(path)!r} is damaged (checksum mismatch)")
        faiss = import_faiss()
        try:
            raw = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
            ivf = faiss.extract_index_ivf(raw)
        except RuntimeError as exc:
            raise IndexFileError(f"index file {os.fspath(path)!r} is not a faiss IVF index: {exc}") from exc
        if ivf.d != header["dims"]:
            raise IndexFileError(f"index file {os.fspath(path)!r} holds {ivf.d}-d vectors")
        return cls(int(header["dims"]), str(header["metric"]), faiss_index=raw), header


def _read_header(f: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    start = f.read(_HEAD.size)
    if len(start) != _HEAD.size or not start.startswith(_MAGIC[:5]):
        raise IndexFileError(f"{os.fspath(path)!r} is not a lookalike index file")
    magic, length = _HEAD.unpack(start)
    if magic != _MAGIC:
        raise IndexFileError(f"index file {os.fspath(path)!r} is of another format version")
    raw = f.read(length)
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise IndexFileError(f"index file {os.fspath(path)!r} has a damaged header") from exc
    if len(raw) != length or not isinstance(header, dict):
        raise IndexFileError(f"index file {os.fspath(path)!r} has a damaged header")
    return header
