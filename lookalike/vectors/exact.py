"""Exact vector search over a contiguous float32 matrix held in memory.

:class:`VectorMatrix` keeps ``ids`` (sorted row ids) and their vectors in one C-contiguous array with
spare capacity, plus the squared norms that cosine and L2 need, so a query is one BLAS mat-vec plus an
``argpartition``. Rows are appended, replaced and removed in place, so the matrix follows writes
without a reload. It implements :class:`lookalike.vectors.base.VectorIndex` for every metric.
"""

from __future__ import annotations

import numpy as np

__all__ = ["METRICS", "VectorMatrix"]

METRICS = ("cosine", "l2", "inner_product", "l1")

_L1_CHUNK = 16_384  # rows per block for L1, which needs an (n, d) temporary
_ARGMIN_K = 32  # up to this k, top-k is k argmin passes instead of an argpartition
_RECHECK = 8  # extra float32 candidates taken when a distance range is re-applied in float64
_BOUND_SLACK = 1e-5  # relative widening of a distance range in the float32 pass (its rounding error)


class VectorMatrix:
    """Row ids and their vectors, kept sorted by id: an exact :class:`VectorIndex`."""

    metrics: tuple[str, ...] = METRICS
    supports_prefilter: bool = True  # candidate ids select rows exactly: a filter costs no recall

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self._ids = np.empty(0, dtype=np.int64)
        self._data = np.empty((0, dimensions), dtype=np.float32)
        self._sq = np.empty(0, dtype=np.float32)
        self._n = 0
        self._version = 0  # bumped on every change (caches derived from the rows check it)

    # ------------------------------------------------------------------ contents
    def __len__(self) -> int:
        return self._n

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self._n]

    @property
    def data(self) -> np.ndarray:
        return self._data[: self._n]

    @property
    def memory_bytes(self) -> int:
        """Bytes held, spare capacity and the cached inverse norms included."""
        inv = self.__dict__.get("_inv")
        extra = 0 if inv is None else inv.nbytes
        return int(self._ids.nbytes + self._data.nbytes + self._sq.nbytes + extra)

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """A copy of (ids, vectors): the matrix itself keeps changing under later writes."""
        return self.ids.copy(), self.data.copy()

    def replace_all(self, ids: np.ndarray, data: np.ndarray) -> None:
        """Load everything at once (ids must be sorted ascending).

        ``data`` is taken over, not copied, when it is already a writeable contiguous float32 array
        (a million 512-d rows are 2 GB): the caller must not reuse it.
        """
        self._ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._data = np.ascontiguousarray(data, dtype=np.float32).reshape(-1, self.dimensions)
        if not self._data.flags.writeable:  # e.g. np.frombuffer over bytes: rows are replaced in place later
            self._data = self._data.copy()
        self._n = len(self._ids)
        self._version += 1
        self._sq = np.einsum("ij,ij->i", self._data, self._data) if self._n else np.empty(0, np.float32)

    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        if need <= len(self._ids):
            return
        cap = max(need, int(len(self._ids) * 1.5) + 1024)
        ids = np.empty(cap, dtype=np.int64)
        data = np.empty((cap, self.dimensions), dtype=np.float32)
        sq = np.empty(cap, dtype=np.float32)
        ids[: self._n] = self._ids[: self._n]
        data[: self._n] = self._data[: self._n]
        sq[: self._n] = self._sq[: self._n]
        self._ids, self._data, self._sq = ids, data, sq

    def upsert(self, ids: np.ndarray, data: np.ndarray) -> None:
        """Insert or replace rows."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        data = np.asarray(data, dtype=np.float32).reshape(-1, self.dimensions)
        order = np.argsort(ids, kind="stable")
        ids, data = ids[order], data[order]
        last = np.r_[ids[1:] != ids[:-1], True]  # an id given twice: the later vector wins, one row
        if not last.all():
            ids, data = ids[last], data[last]
        cur = self.ids
        pos = np.searchsorted(cur, ids)
        found = (
            (pos < len(cur)) & (cur[np.minimum(pos, len(cur) - 1)] == ids)
            if len(cur)
            else np.zeros(len(ids), bool)
        )
        self._version += 1
        if found.any():
            p = pos[found]
            self._data[p] = data[found]
            self._sq[p] = np.einsum("ij,ij->i", data[found], data[found])
        new_ids, new_data = ids[~found], data[~found]
        if not len(new_ids):
            return
        self._reserve(len(new_ids))
        n = self._n
        if n == 0 or new_ids[0] > self._ids[n - 1]:  # the common case: appends in id order
            self._ids[n : n + len(new_ids)] = new_ids
            self._data[n : n + len(new_ids)] = new_data
            self._sq[n : n + len(new_ids)] = np.einsum("ij,ij->i", new_data, new_data)
            self._n += len(new_ids)
            return
        merged_ids = np.concatenate([self.ids, new_ids])
        merged_data = np.concatenate([self.data, new_data])
        order = np.argsort(merged_ids, kind="stable")
        self.replace_all(merged_ids[order], merged_data[order])

    def remove(self, ids: np.ndarray) -> None:
        """Drop rows (ids not present are ignored)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids) or not self._n:
            return
        keep = ~np.isin(self.ids, ids)
        if keep.all():
            return
        self.replace_all(self.ids[keep], self.data[keep])

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions of the given ids that are present (others are dropped), ascending, each once."""
        ids = np.asarray(ids, dtype=np.int64)
        cur = self.ids
        if not len(cur) or not len(ids):
            return np.empty(0, dtype=np.int64)
        pos = np.searchsorted(cur, ids)
        pos = np.minimum(pos, len(cur) - 1)
        return np.unique(pos[cur[pos] == ids])  # sorted: ties go to the lower id; no repeated rows

    def _inverse_norms(self) -> np.ndarray:
        """1/‖row‖ (0 for zero rows), cached until the rows change."""
        inv = self.__dict__.get("_inv")
        if inv is None or len(inv) != self._n or self.__dict__.get("_inv_version") != self._version:
            norms = np.sqrt(self._sq[: self._n])
            inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
            self._inv, self._inv_version = inv, self._version
        return inv

    # ------------------------------------------------------------------ search
    def distances(self, query: np.ndarray, metric: str, positions: np.ndarray | None = None) -> np.ndarray:
        """Distances from ``query`` to every row (or the rows at ``positions``)."""
        q = np.asarray(query, dtype=np.float32)
        data = self.data if positions is None else self.data[positions]
        if metric == "l1":
            out = np.empty(len(data), dtype=np.float32)
            for start in range(0, len(data), _L1_CHUNK):
                block = data[start : start + _L1_CHUNK]
                out[start : start + len(block)] = np.abs(block - q).sum(axis=1)
            return out
        dots = data @ q
        if metric == "inner_product":
            return -dots
        sq = self._sq[: self._n] if positions is None else self._sq[positions]
        if metric == "cosine":
            qn = float(np.sqrt(q @ q))
            inv = self._inverse_norms() if positions is None else self._inverse_norms()[positions]
            dots *= inv  # in place on the fresh mat-vec result: two passes instead of five
            dots *= 1.0 / qn if qn > 0 else 1.0
            return np.subtract(1.0, dots, out=dots)
        if metric == "l2":
            d2 = sq - 2.0 * dots + float(q @ q)
            np.maximum(d2, 0.0, out=d2)
            return np.sqrt(d2)
        raise ValueError(f"unknown metric {metric!r}")

    def exact_distances(self, query: np.ndarray, metric: str, positions: np.ndarray) -> np.ndarray:
        """Float64 distances from ``query`` to the rows at ``positions`` (a few: the returned hits).

        The stored float32 values are exact in float64, so an identical vector gives exactly 0 (and
        a cosine similarity of exactly 1): the row's norm, its dot product with the query and the
        query's norm run through one summation in one order, so they agree to the last bit.
        """
        rows = self.data[positions].astype(np.float64)
        q = np.asarray(query, dtype=np.float32).astype(np.float64)
        if metric == "l1":
            return np.abs(rows - q).sum(axis=1)
        if metric == "l2":
            diff = rows - q
            return np.sqrt(np.einsum("ij,ij->i", diff, diff))
        qs = np.tile(q, (len(rows), 1))  # contiguous like `rows`: einsum sums both in the same order
        dots = np.einsum("ij,ij->i", rows, qs)
        if metric == "inner_product":
            return -dots
        if metric == "cosine":
            denom = np.sqrt(np.einsum("ij,ij->i", rows, rows) * np.einsum("ij,ij->i", qs, qs))
            cos = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)  # zero vector: 0
            return 1.0 - np.clip(cos, -1.0, 1.0)
        raise ValueError(f"unknown metric {metric!r}")

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
        """Top-``k`` (ids, float64 distances), nearest first, optionally among ``candidate_ids`` only.

        Rows are ranked in float32 (one BLAS pass over the matrix); the distances of the rows
        returned are then computed again in float64, so exact matches read 0 and no distance leaves
        its range. A distance range is applied to the float64 values: the float32 pass takes a few
        more rows with slightly widened bounds, and takes more when the exact bounds drop too many.
        """
        if not self._n or k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        lo = None if distance_min is None else distance_min - _BOUND_SLACK * (1.0 + abs(distance_min))
        hi = None if distance_max is None else distance_max + _BOUND_SLACK * (1.0 + abs(distance_max))
        bounded = lo is not None or hi is not None
        want = k + _RECHECK if bounded else k
        while True:
            rows = self._top(query, metric, want, candidate_ids, lo, hi)
            exact = self.exact_distances(query, metric, rows)
            if not bounded:
                break
            keep = np.ones(len(rows), dtype=bool)
            if distance_min is not None:
                keep &= exact >= distance_min
            if distance_max is not None:
                keep &= exact <= distance_max
            if keep.sum() >= k or len(rows) < want:
                rows, exact = rows[keep], exact[keep]
                break
            want *= 4
        order = np.lexsort((rows, exact))[:k]  # by exact distance, ties by position (stable results)
        return self.ids[rows[order]], exact[order]

    def _top(
        self,
        query: np.ndarray,
        metric: str,
        k: int,
        candidate_ids: np.ndarray | None,
        distance_min: float | None,
        distance_max: float | None,
    ) -> np.ndarray:
        """Positions of the top-``k`` rows by float32 distance (within the bounds), nearest first."""
        empty = np.empty(0, np.int64)
        positions = None
        if candidate_ids is not None:
            positions = self.positions(candidate_ids)
            if not len(positions):
                return empty
            if len(positions) > self._n // 3:
                # a wide filter: one full mat-vec beats gathering a large subset
                dist_all = self.distances(query, metric)
                dist = dist_all[positions]
            else:
                dist = self.distances(query, metric, positions)
        else:
            dist = self.distances(query, metric)
        idx_space = positions
        if distance_min is not None or distance_max is not None:
            mask = np.ones(len(dist), dtype=bool)
            if distance_min is not None:
                mask &= dist >= distance_min
            if distance_max is not None:
                mask &= dist <= distance_max
            sel = np.flatnonzero(mask)
            dist = dist[sel]
            idx_space = sel if positions is None else positions[sel]
        if not len(dist):
            return empty
        if k <= _ARGMIN_K and len(dist) > 8 * k:
            # a few SIMD argmin passes beat argpartition by ~10× for small k; ties go to the lower
            # position, like the sort below. `dist` is our own array, so it may be overwritten.
            part = np.empty(k, dtype=np.int64)
            for j in range(k):
                i = int(np.argmin(dist))
                part[j] = i
                dist[i] = np.inf
            return part if idx_space is None else idx_space[part]
        if k < len(dist):
            part = np.argpartition(dist, k - 1)[:k]
            # argpartition picks arbitrary rows among those tied with the k-th: take the lowest positions
            kth = dist[part[k - 1]]
            if kth == kth:  # not NaN
                below = part[dist[part] < kth]
                part = np.concatenate([below, np.flatnonzero(dist == kth)[: k - len(below)]])
        else:
            part = np.arange(len(dist))
        part = part[np.lexsort((part, dist[part]))]  # by distance, ties by position (stable results)
        return part if idx_space is None else idx_space[part]
