"""An inverted-file index with 8-bit codes (faiss ``IVF<nlist>,SQ8``) for the embedded engine.

:class:`IVFIndex` clusters the vectors into ``nlist`` lists around trained centroids and stores each
vector as one byte a dimension. A search probes the ``nprobe`` lists nearest the query and returns a
*pool* of candidate keys: the caller re-ranks the pool exactly from the float32 vectors it stores
elsewhere, so the codes decide only which rows are looked at, never a returned distance.

It serves one metric: ``cosine`` (vectors normalised, inner product), ``inner_product`` or ``l2``.
``l1`` has no faiss index and is not served. Keys are int64 and given by the caller.

**Files.** An index is saved to one file: faiss's own serialisation first, then the sorted keys, a
JSON header (:data:`FORMAT_VERSION`, the table, column, dimensions and metric it was built for, plus
whatever the caller adds) and a fixed-size trailer with the lengths and a CRC32. Saving writes
``<path>.tmp-<pid>``, fsyncs and renames it over the old file, so a build killed half-way leaves the
previous file in place. A loaded file is **memory-mapped**, not read: opening a million-row index
costs milliseconds, and only the lists a search probes are paged in (the OS may drop them again).
The CRC covers the header, the keys and the first and last :data:`_CRC_SPAN` bytes of faiss's part
(its header, the centroids, the list sizes): a truncated, foreign or damaged file is refused
(:class:`IndexFileError`) without reading the codes, which are checked when the file is next
rewritten (a damaged code can only cost recall: results are re-ranked from the stored vectors).

**Changes to a loaded index.** A mapped file is read-only: rows added after loading go to a small
in-memory *delta* index (same centroids and codes), rows removed are kept as a set of keys the search
skips. :meth:`IVFIndex.save` merges them into a new file; until then both parts are searched.

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

FORMAT_VERSION = 2  # 1: header first, whole file checksummed and read into memory
IVF_METRICS = ("cosine", "inner_product", "l2")
MAX_NLIST = 4096
# k-means on 16 training vectors a list, 8 rounds (faiss: up to 256 a list, 25 rounds): on CLIP-like
# data at 1M rows recall@10 is 0.998 at nprobe 32 either way, and training costs 10x less
POINTS_PER_CENTROID = 16
TRAIN_SAMPLE = MAX_NLIST * POINTS_PER_CENTROID  # 65,536: vectors trained on at most
KMEANS_ITERATIONS = 8
HNSW_QUANTIZER_MIN_LISTS = 1024  # from this many lists, centroids are found through an HNSW graph
HNSW_EF_ADD = 16  # the graph's search breadth when a row is added (one nearest centroid: 4x faster
# than 64, and the same recall on CLIP-like data)
HNSW_EF_SEARCH = 64  # ...and when a query looks for its nprobe nearest centroids
_RANGE_MARGIN = 0.2  # each dimension's code range reaches 20 % of the sample's range beyond it
_MAGIC = b"LKIVF\x00\x02\n"
_TRAILER = struct.Struct("<8sQQII")  # magic, faiss part length, keys, header length, CRC32
_BITMAP_MAX_KEY = 1 << 30  # candidate keys below this are passed to faiss as a bitmap (≤ 128 MiB)
_CRC_SPAN = 1 << 24  # bytes at each end of faiss's part that the CRC covers (16 MiB)


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


def train_size(rows: int, nlist: int | None = None) -> int:
    """How many of ``rows`` vectors to train on: :data:`POINTS_PER_CENTROID` per list, at least
    all rows of a table too small for that."""
    lists = nlist or default_nlist(rows)
    return min(rows, max(lists * POINTS_PER_CENTROID, 4 * MAX_NLIST))


class IVFIndex:
    """Int64 keys and 8-bit codes of their vectors in ``nlist`` inverted lists, for one metric.

    Built in memory, it changes in place; loaded from a file, it is a read-only mapping plus a delta
    of rows added since and a set of keys removed since (see the module docstring)."""

    def __init__(self, dimensions: int, metric: str, *, faiss_index: Any = None) -> None:
        if metric not in IVF_METRICS:
            raise ValueError(f"the IVF index serves {', '.join(IVF_METRICS)}, not {metric!r}")
        self.dimensions = dimensions
        self.metric = metric
        self.metrics: tuple[str, ...] = (metric,)
        self._index = faiss_index  # None until trained; read-only when mapped from a file
        self._mapped: Path | None = None  # the file a read-only index maps
        self._keys: np.ndarray | None = None  # a mapped index's keys, sorted
        self._delta: Any = None  # rows added to a mapped index
        self._removed = np.empty(0, np.int64)  # keys of a mapped index removed since, sorted

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
        # many lists: rows find their nearest centroids through an HNSW graph of the centroids, not
        # by comparing each with all of them (adding 1M rows to 4,096 lists: 22 s instead of 150+ s;
        # the same recall@10, 0.998, at nprobe 32)
        graph = "_HNSW32" if lists >= HNSW_QUANTIZER_MIN_LISTS else ""
        index = faiss.index_factory(self.dimensions, f"IVF{lists}{graph},SQ8", kind)
        index.cp.min_points_per_centroid = 1  # small tables: no warning, every centroid used
        index.cp.niter = KMEANS_ITERATIONS
        # codes clamp values outside the sample's range per dimension: widen it, so rows added
        # later (the sample is a fraction of them, or the table has grown since) keep usable codes
        index.sq.rangestat = faiss.ScalarQuantizer.RS_minmax
        index.sq.rangestat_arg = _RANGE_MARGIN
        index.train(x)
        tune_quantizer(index)
        self._set(index)

    def _set(self, index: Any, mapped: Path | None = None, keys: np.ndarray | None = None) -> None:
        self._index, self._mapped, self._keys = index, mapped, keys
        self._delta, self._removed = None, np.empty(0, np.int64)

    @property
    def trained(self) -> bool:
        return self._index is not None

    @property
    def mapped(self) -> bool:
        """True while the index is a read-only mapping of its file (changes go to the delta)."""
        return self._mapped is not None

    @property
    def nlist(self) -> int:
        return 0 if self._index is None else int(self._index.nlist)

    def reset(self) -> None:
        """Drop every row, keep the trained centroids (a rebuild after a reset reuses them)."""
        if self._index is None:
            return
        if self._mapped is None:
            self._index.reset()
        else:
            self._set(self._empty_like())

    def _empty_like(self) -> Any:
        """A writable, empty index with this one's centroids and code ranges."""
        faiss = import_faiss()
        ivf = faiss.downcast_index(self._faiss())
        quantizer = faiss.clone_index(ivf.quantizer)  # faiss's wrapper keeps it alive with the index
        out = faiss.IndexIVFScalarQuantizer(
            quantizer, ivf.d, ivf.nlist, ivf.sq.qtype, ivf.metric_type, ivf.by_residual
        )
        out.sq.trained = ivf.sq.trained
        out.is_trained = True
        return out

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
        if self._index is None:
            return 0
        delta = 0 if self._delta is None else int(self._delta.ntotal)
        return int(self._index.ntotal) - len(self._removed) + delta

    @property
    def pending(self) -> int:
        """Rows added to or removed from a mapped index since it was loaded (merged by :meth:`save`)."""
        return len(self._removed) + (0 if self._delta is None else int(self._delta.ntotal))

    @property
    def memory_bytes(self) -> int:
        """Codes and keys of every row plus the centroids (a mapped file's pages count, though the
        OS keeps only those searches touch)."""
        if self._index is None:
            return 0
        ivf = self._index
        return int(len(self) * (ivf.code_size + 8) + ivf.nlist * self.dimensions * 4)

    def add(self, ids: np.ndarray, data: np.ndarray) -> None:
        """Add rows; a key already held is held twice (remove it first to replace it)."""
        keys = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(keys):
            return
        if self._mapped is None:
            self._faiss().add_with_ids(self._prepare(data), keys)
            return
        if self._delta is None:
            self._delta = self._empty_like()
        self._delta.add_with_ids(self._prepare(data), keys)

    def remove(self, ids: np.ndarray) -> None:
        """Drop rows by key; keys not held are ignored."""
        keys = np.unique(np.asarray(ids, dtype=np.int64))
        if not len(keys) or self._index is None:
            return
        if self._mapped is None:
            if len(self):
                self._index.remove_ids(keys)
            return
        if self._delta is not None and self._delta.ntotal:
            self._delta.remove_ids(keys)
        assert self._keys is not None  # a mapped index always has its keys
        at = np.searchsorted(self._keys, keys).clip(0, max(len(self._keys) - 1, 0))
        held = keys[(self._keys[at] == keys)] if len(self._keys) else keys[:0]
        self._removed = np.union1d(self._removed, held)

    def keys(self) -> np.ndarray:
        """Every key held, sorted."""
        if self._index is None:
            return np.empty(0, np.int64)
        if self._mapped is not None:
            assert self._keys is not None
            kept = np.setdiff1d(self._keys, self._removed, assume_unique=True)
            delta = list_keys(self._delta) if self._delta is not None else kept[:0]
            return np.union1d(kept, delta)
        return np.sort(list_keys(self._index))

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
        n = len(self)
        if not n or pool <= 0:
            return np.empty(0, np.int64)
        probe = max(1, nprobe)
        keys = None
        if candidate_ids is not None:
            keys = np.asarray(candidate_ids, dtype=np.int64)  # the caller's keys are unique
            if not len(keys):
                return np.empty(0, np.int64)
            probe = math.ceil(probe * n / len(keys))
        probe = min(probe, self.nlist)
        q = self._prepare(query)
        k = min(pool, n)
        if keys is not None and len(self._removed):
            base_keys: np.ndarray | None = np.setdiff1d(keys, self._removed, assume_unique=True)
        else:
            base_keys = keys
        dist, found = _search(
            self._faiss(), q, k, probe, base_keys, None if keys is not None else self._removed
        )
        if self._delta is not None and self._delta.ntotal:
            d2, f2 = _search(self._delta, q, k, probe, keys, None)
            dist, found = np.concatenate([dist, d2]), np.concatenate([found, f2])
            order = np.argsort(dist if self.metric == "l2" else -dist, kind="stable")[:k]
            found = found[order]
        # faiss pads a short answer with -1; other negative keys (rowids can be negative) are rows
        # (a row whose key is -1 can't be told from the padding: the index never returns it)
        return found[found != -1]

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str], header: dict[str, Any]) -> None:
        """Write the index to ``path`` atomically, with ``header`` (which names what it was built
        for). A mapped index is first merged with its delta and removals, in memory."""
        faiss = import_faiss()
        if self._mapped is not None:
            self._merge(faiss)
        index = self._faiss()
        keys = np.sort(list_keys(index))
        head = json.dumps(
            {**header, "format": FORMAT_VERSION, "dims": self.dimensions, "metric": self.metric},
            sort_keys=True,
        ).encode()
        target = Path(path)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        try:
            faiss.write_index(index, os.fspath(tmp))
            with open(tmp, "r+b") as f:
                size = f.seek(0, os.SEEK_END)
                crc = _span_crc(f, size, zlib.crc32(head + keys.tobytes()))
                f.write(keys.tobytes())
                f.write(head)
                f.write(_TRAILER.pack(_MAGIC, size, len(keys), len(head), crc))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _merge(self, faiss: Any) -> None:
        """Read the mapped file into memory, apply the removals and the delta: a writable index."""
        assert self._mapped is not None
        full = faiss.read_index(os.fspath(self._mapped))
        if len(self._removed):
            full.remove_ids(self._removed)
        if self._delta is not None and self._delta.ntotal:
            full.merge_from(self._delta, 0)
        self._set(full)

    @staticmethod
    def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
        """The header of an index file (cheap: the index itself is not read)."""
        with _open(path) as f:
            return _read_trailer(f, path)[0]

    @classmethod
    def load(cls, path: str | os.PathLike[str], expect: dict[str, Any]) -> tuple[IVFIndex, dict[str, Any]]:
        """The index saved at ``path``, mapped read-only, and its header, when the header matches
        ``expect`` (e.g. table, column, dims, metric); :class:`IndexFileError` when the file is
        missing, truncated, damaged or was built for something else."""
        name = os.fspath(path)
        with _open(path) as f:
            header, size, count, crc, head = _read_trailer(f, path)
            for key, value in {"format": FORMAT_VERSION, **expect}.items():
                if header.get(key) != value:
                    raise IndexFileError(
                        f"index file {name!r} has {key}={header.get(key)!r}, expected {value!r}"
                    )
            f.seek(size)
            raw_keys = f.read(8 * count)
            got = _span_crc(f, size, zlib.crc32(head + raw_keys))
        if got != crc:
            raise IndexFileError(f"index file {name!r} is damaged (checksum mismatch)")
        faiss = import_faiss()
        try:
            raw = faiss.read_index(name, faiss.IO_FLAG_MMAP)
            ivf = faiss.extract_index_ivf(raw)
        except RuntimeError as exc:
            raise IndexFileError(f"index file {name!r} is not a faiss IVF index: {exc}") from exc
        if ivf.d != header["dims"] or ivf.ntotal != count:
            raise IndexFileError(f"index file {name!r} holds {ivf.ntotal} {ivf.d}-d vectors, not {count}")
        # faiss prefetches the probed lists of a mapped file with 32 threads by default: for one
        # query that costs 3x the search itself (the page cache serves them as well)
        faiss.downcast_InvertedLists(ivf.invlists).prefetch_nthread = 0
        tune_quantizer(raw)
        keys = np.frombuffer(raw_keys, dtype=np.int64)
        index = cls(int(header["dims"]), str(header["metric"]))
        index._set(raw, Path(path), keys)
        return index, header


def list_keys(index: Any) -> np.ndarray:
    """The keys held in a faiss IVF index's lists, list by list."""
    faiss = import_faiss()
    inv = faiss.extract_index_ivf(index).invlists
    parts = []
    for i in range(inv.nlist):
        size = inv.list_size(i)
        if size:
            parts.append(faiss.rev_swig_ptr(inv.get_ids(i), size).copy())
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def tune_quantizer(index: Any) -> None:
    """Set an HNSW graph of centroids' breadth for adding rows (searches pass their own)."""
    faiss = import_faiss()
    quantizer = faiss.downcast_index(faiss.extract_index_ivf(index).quantizer)
    if isinstance(quantizer, faiss.IndexHNSW):
        quantizer.hnsw.efSearch = HNSW_EF_ADD


def _graph_params(index: Any, nprobe: int) -> Any:
    """Search parameters for an HNSW graph of centroids (None for a flat list of them)."""
    faiss = import_faiss()
    quantizer = faiss.downcast_index(faiss.extract_index_ivf(index).quantizer)
    if not isinstance(quantizer, faiss.IndexHNSW):
        return None
    params = faiss.SearchParametersHNSW()
    params.efSearch = max(HNSW_EF_SEARCH, nprobe)
    return params


def _search(
    index: Any, q: np.ndarray, k: int, nprobe: int, only: np.ndarray | None, skip: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """faiss search of one query among the keys ``only`` (when given), skipping the keys ``skip``."""
    faiss = import_faiss()
    if not index.ntotal or (only is not None and not len(only)):
        return np.empty(0, np.float32), np.empty(0, np.int64)
    params = faiss.SearchParametersIVF()
    params.nprobe = nprobe
    keep: list[Any] = []  # the selectors point into these arrays: they must outlive the search
    graph = _graph_params(index, nprobe)
    if graph is not None:
        keep.append(graph)
        params.quantizer_params = graph
    if only is not None:
        arr = np.ascontiguousarray(only, dtype=np.int64)
        top = int(arr.max()) if len(arr) else 0
        if 0 <= int(arr.min()) and top < _BITMAP_MAX_KEY:
            # a bit a key up to the largest (125 KB for a million rows): built in one numpy pass and
            # tested with a shift and a mask, where a batch selector hashes every key twice
            mask = np.zeros(top + 1, dtype=bool)
            mask[arr] = True
            bits = np.packbits(mask, bitorder="little")
            keep += [bits, faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))]
        else:  # negative or huge keys (a caller's own, not rowids)
            keep += [arr, faiss.IDSelectorBatch(len(arr), faiss.swig_ptr(arr))]
        params.sel = keep[-1]
    elif skip is not None and len(skip):
        arr = np.ascontiguousarray(skip, dtype=np.int64)
        keep += [arr, faiss.IDSelectorBatch(len(arr), faiss.swig_ptr(arr))]
        keep.append(faiss.IDSelectorNot(keep[-1]))
        params.sel = keep[-1]
    dist, found = index.search(q, k, params=params)
    return dist[0], found[0]


def _open(path: str | os.PathLike[str]) -> Any:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise IndexFileError(f"index file {os.fspath(path)!r} can't be read: {exc.strerror}") from exc


def _span_crc(f: Any, size: int, crc: int) -> int:
    """``crc`` continued over the first and last :data:`_CRC_SPAN` bytes of faiss's part."""
    spans = [(0, min(size, _CRC_SPAN))]
    if size > _CRC_SPAN:
        spans.append((max(_CRC_SPAN, size - _CRC_SPAN), size))
    for start, stop in spans:
        f.seek(start)
        crc = zlib.crc32(f.read(stop - start), crc)
    f.seek(size)
    return crc


def _read_trailer(f: Any, path: str | os.PathLike[str]) -> tuple[dict[str, Any], int, int, int, bytes]:
    """(header, faiss part length, key count, CRC, the header's bytes) from the end of an index file."""
    name = os.fspath(path)
    end = f.seek(0, os.SEEK_END)
    if end < _TRAILER.size:
        raise IndexFileError(f"{name!r} is not a lookalike index file")
    f.seek(end - _TRAILER.size)
    magic, size, count, length, crc = _TRAILER.unpack(f.read(_TRAILER.size))
    if magic[:5] != _MAGIC[:5]:
        raise IndexFileError(f"{name!r} is not a lookalike index file (or it is truncated)")
    if magic != _MAGIC:
        raise IndexFileError(f"index file {name!r} is of another format version")
    if size + 8 * count + length + _TRAILER.size != end:
        raise IndexFileError(f"index file {name!r} is truncated")
    f.seek(size + 8 * count)
    raw = f.read(length)
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise IndexFileError(f"index file {name!r} has a damaged header") from exc
    if not isinstance(header, dict):
        raise IndexFileError(f"index file {name!r} has a damaged header")
    return header, size, count, crc, raw
