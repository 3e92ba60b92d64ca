"""The thresholded k-nearest-neighbour graph of a set of vectors, and its split into tight groups.

:func:`knn_edges` finds pairs of rows within a cosine distance (each row's ``k`` nearest): blocked
matrix products up to :data:`EXHAUSTIVE_MAX` rows (exact), k-means cell probing above (sub-quadratic,
approximate; see :mod:`lookalike.duplicates`). :func:`diameter_groups` turns those pairs into groups in
which **every pair** is within the threshold (diameter-bounded), never the long chains that
connected components (single linkage) make: see its docstring for how, and at what cost.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from lookalike.errors import ConfigurationError

__all__ = [
    "DEFAULT_K",
    "DEFAULT_PROBE",
    "DENSE_MAX",
    "EXACT_DISTANCE",
    "EXHAUSTIVE_MAX",
    "MAX_CANDIDATES",
    "all_pairs_groups",
    "diameter_groups",
    "groups_as_indices",
    "knn_edges",
    "split_by_diameter",
]

EXACT_DISTANCE = 1e-6
"""Vectors at most this far apart count as identical; thresholds below it are raised to it."""

DEFAULT_K = 16
"""Neighbours kept per item in the kNN graph."""

EXHAUSTIVE_MAX = 10_000
"""Up to this many vectors the kNN graph is exhaustive (exact); above, cell-probing (see module doc)."""

DEFAULT_PROBE = 4
"""Cells each vector is compared against above :data:`EXHAUSTIVE_MAX` vectors."""

DENSE_MAX = 2048
"""Connected components up to this size are split with their full distance matrix; larger ones with
their kNN edges only (see :func:`split_by_diameter`)."""

MAX_CANDIDATES = 512
"""A group's seed considers at most this many nearest neighbours: a group has at most this many + 1."""

_BLOCK = 1024  # query rows per matrix product
_CELL_SIZE = 64  # target vectors per cell
_KMEANS_ITERS = 4


# ---------------------------------------------------------------------- union-find


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression keeps later finds O(1)
            parent[x], x = root, parent[x]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # the smaller index becomes the root: deterministic groups whatever the edge order
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb

    def components(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return out


# ---------------------------------------------------------------------- the kNN graph


def _normalise(matrix: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def _topk_edges(
    dist: np.ndarray, rows: np.ndarray, cols: np.ndarray, threshold: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (row, col, distance) within ``threshold``, at most ``k`` nearest per row."""
    if dist.shape[1] > k:
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        d = np.take_along_axis(dist, part, axis=1)
        c = cols[part]
    else:
        d = dist
        c = np.broadcast_to(cols, dist.shape)
    r = np.broadcast_to(rows[:, None], d.shape)
    keep = d <= threshold
    return r[keep], c[keep], d[keep]


def _brute_edges(x: np.ndarray, threshold: float, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(x)
    out_r, out_c, out_d = [], [], []
    cols = np.arange(n, dtype=np.int64)
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        dist = 1.0 - x[start:stop] @ x.T
        dist[np.arange(stop - start), np.arange(start, stop)] = np.inf  # an item is not its own copy
        r, c, d = _topk_edges(dist, np.arange(start, stop, dtype=np.int64), cols, threshold, k)
        out_r.append(r)
        out_c.append(c)
        out_d.append(d)
    return _concat(out_r, out_c, out_d)


def _kmeans(x: np.ndarray, nlist: int, rng: np.random.Generator) -> np.ndarray:
    """Spherical k-means on a sample; any centroids keep the search exact, good ones make it fast."""
    sample = x[rng.choice(len(x), size=min(len(x), nlist * 4), replace=False)]
    cent = sample[rng.choice(len(sample), size=nlist, replace=False)].copy()
    for _ in range(_KMEANS_ITERS):
        labels = np.argmax(sample @ cent.T, axis=1)
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=nlist)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        filled = counts > 0
        sums = np.zeros_like(cent)
        # reduceat over label-sorted rows: far faster than np.add.at for wide rows
        sums[filled] = np.add.reduceat(sample[order], starts[filled], axis=0)
        if (~filled).any():  # re-seed empty cells on random points
            sums[~filled] = sample[rng.choice(len(sample), size=int((~filled).sum()), replace=False)]
        cent = _normalise(sums)
    return cent


def _cell_edges(
    x: np.ndarray, threshold: float, k: int, probe: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Approximate kNN edges: each vector meets the members of its ``probe`` nearest cells."""
    n = len(x)
    nlist = max(2, n // _CELL_SIZE)
    cent = _kmeans(x, nlist, np.random.default_rng(0))
    probe = min(probe, nlist)
    near = np.empty((n, probe), dtype=np.int64)
    for start in range(0, n, _BLOCK * 4):
        sims = x[start : start + _BLOCK * 4] @ cent.T
        stop = start + len(sims)
        rows = np.arange(len(sims))
        # a few argmax passes beat argpartition for the handful of cells probed
        for j in range(probe):
            best = np.argmax(sims, axis=1)
            near[start:stop, j] = best
            sims[rows, best] = -np.inf
    labels = near[:, 0].copy()  # a vector's own cell is its nearest one
    order = np.argsort(labels, kind="stable")
    xs = x[order]
    counts = np.bincount(labels, minlength=nlist)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    # grouped by probed cell: each cell's members meet every vector that probes it, in one product
    px = np.repeat(np.arange(n, dtype=np.int64), probe)
    pc = near.ravel()
    o = np.argsort(pc, kind="stable")
    px, pc = px[o], pc[o]
    c_bounds = np.searchsorted(pc, np.arange(nlist + 1))
    out_r, out_c, out_d = [], [], []
    for cell in np.flatnonzero(np.diff(c_bounds) * counts).tolist():
        q = px[c_bounds[cell] : c_bounds[cell + 1]]
        lo, hi = int(bounds[cell]), int(bounds[cell + 1])
        dist = 1.0 - x[q] @ xs[lo:hi].T
        rr, cc = np.nonzero(dist <= threshold)
        rows, cols = q[rr], order[lo:hi][cc]
        mine = rows != cols
        out_r.append(rows[mine])
        out_c.append(cols[mine])
        out_d.append(dist[rr, cc][mine])
    r, c, d = _concat(out_r, out_c, out_d)
    # each row's k nearest, as in the exhaustive pass
    o = np.lexsort((d, r))
    r, c, d = r[o], c[o], d[o]
    if not len(r):
        return r, c, d
    first = np.r_[0, np.flatnonzero(r[1:] != r[:-1]) + 1]
    rank = np.arange(len(r)) - np.repeat(first, np.diff(np.r_[first, len(r)]))
    keep = rank < k
    return r[keep], c[keep], d[keep]


def _concat(
    rs: list[np.ndarray], cs: list[np.ndarray], ds: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not rs:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return (
        np.concatenate(rs).astype(np.int64),
        np.concatenate(cs).astype(np.int64),
        np.concatenate(ds).astype(np.float32),
    )


def knn_edges(
    matrix: np.ndarray,
    threshold: float,
    *,
    k: int = DEFAULT_K,
    exhaustive: bool | None = None,
    probe: int = DEFAULT_PROBE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of rows of ``matrix`` within ``threshold`` cosine distance (each row's ``k`` nearest).

    Returns ``(i, j, distance)`` arrays with ``i < j``, each pair once. ``exhaustive=True`` compares
    every pair (blocked matrix products: exact, quadratic); ``False`` probes ``probe`` k-means cells
    per row (sub-quadratic, approximate); ``None`` picks exhaustive up to :data:`EXHAUSTIVE_MAX` rows.
    """
    if k <= 0:
        raise ConfigurationError(f"k must be positive, got {k!r}")
    if probe <= 0:
        raise ConfigurationError(f"probe must be positive, got {probe!r}")
    x = _normalise(matrix)
    if len(x) < 2:
        return _concat([], [], [])
    if exhaustive is None:
        exhaustive = len(x) <= EXHAUSTIVE_MAX
    if exhaustive:
        r, c, d = _brute_edges(x, threshold, k)
    else:
        r, c, d = _cell_edges(x, threshold, k, probe)
    d = np.maximum(d, 0.0)  # 1 - cos can come out at -1e-7
    lo, hi = np.minimum(r, c), np.maximum(r, c)
    if not len(lo):
        return lo, hi, d
    key = lo * len(x) + hi
    _, first = np.unique(key, return_index=True)
    return lo[first], hi[first], d[first]


# ---------------------------------------------------------------------- references


def all_pairs_groups(matrix: np.ndarray, threshold: float) -> list[list[int]]:
    """Reference: connected components of the all-pairs threshold graph (for tests and benchmarks).

    Blocked to bound memory, quadratic in time: use :func:`find_duplicates` for real work.
    """
    x = _normalise(matrix)
    uf = _UnionFind(len(x))
    for start in range(0, len(x), _BLOCK):
        dist = 1.0 - x[start : start + _BLOCK] @ x.T
        rr, cc = np.nonzero(dist <= max(threshold, EXACT_DISTANCE))
        for a, b in zip((rr + start).tolist(), cc.tolist()):
            if a != b:
                uf.union(a, b)
    return sorted(sorted(m) for m in uf.components().values() if len(m) > 1)


def groups_as_indices(edges: Iterable[tuple[int, int]], n: int) -> list[list[int]]:
    """Connected components (size > 1) of an edge list over ``n`` items, sorted (for comparisons)."""
    uf = _UnionFind(n)
    for a, b in edges:
        uf.union(a, b)
    return sorted(sorted(m) for m in uf.components().values() if len(m) > 1)


# ---------------------------------------------------------------------- groups of bounded diameter


def split_by_diameter(
    x: np.ndarray,
    threshold: float,
    neighbours: list[np.ndarray] | None = None,
) -> list[list[int]]:
    """Split rows of the normalised matrix ``x`` into groups whose every pair is within ``threshold``.

    Greedy and seed-centred, with a check: rows are taken as seeds in order of how many neighbours
    (rows within ``threshold``) they have, most first (ties: first row first); a seed's group is the
    seed plus its still-free neighbours, nearest first, each admitted only if it is within
    ``threshold`` of **every** member admitted so far. Members leave the pool; rows that join no
    group are left out (singletons are not returned).

    Guaranteed: every group's diameter (largest pairwise cosine distance) is at most ``threshold``; no
    row is in two groups; and when ``neighbours`` is complete (the default: taken from the full
    distance matrix), no two left-out rows are within ``threshold`` of each other. Not guaranteed: the
    fewest groups (that is clique cover, NP-hard).

    ``neighbours[i]``: row ``i``'s candidate rows; default: all rows within ``threshold``, from the
    m × m distance matrix (callers pass kNN lists for big inputs). A seed looks at no more than
    :data:`MAX_CANDIDATES` candidates, nearest first, which bounds both the cost (each admitted member
    costs one product with the candidates) and a group's size.
    """
    m = len(x)
    if m < 2:
        return []
    dist = None
    if neighbours is None:
        dist = 1.0 - x @ x.T
        np.fill_diagonal(dist, np.inf)
        neighbours = [np.flatnonzero(row <= threshold) for row in dist]

    def distances(row: int, to: np.ndarray) -> np.ndarray:
        # from the matrix when there is one, else computed for this neighbourhood only
        return dist[row, to] if dist is not None else 1.0 - x[to] @ x[row]

    free = np.ones(m, dtype=bool)
    degree = np.array([len(nb) for nb in neighbours])
    groups: list[list[int]] = []
    for seed in np.argsort(-degree, kind="stable").tolist():
        if not free[seed] or not degree[seed]:
            continue
        cand = neighbours[seed]
        cand = cand[free[cand]]
        near = distances(seed, cand)
        order = np.argsort(near, kind="stable")[:MAX_CANDIDATES]
        keep = near[order] <= threshold
        cand, far = cand[order][keep], near[order][keep]  # far: each candidate's largest distance to members
        members = [seed]
        for j in range(len(cand)):
            if far[j] <= threshold:
                members.append(int(cand[j]))
                np.maximum(far, distances(int(cand[j]), cand), out=far)
        if len(members) > 1:
            free[members] = False
            groups.append(members)
    return groups


def diameter_groups(
    matrix: np.ndarray,
    threshold: float,
    *,
    k: int = DEFAULT_K,
    exhaustive: bool | None = None,
    extra_edges: Iterable[tuple[int, int]] = (),
) -> list[list[int]]:
    """Groups of rows of ``matrix`` in which every pair is within ``threshold`` cosine distance.

    The kNN graph (:func:`knn_edges`) plus ``extra_edges`` (e.g. same content hash) gives connected
    components cheaply; each component is then split by :func:`split_by_diameter`: with its full
    distance matrix up to :data:`DENSE_MAX` rows, with its kNN edges above (a component that big means
    a loose threshold; the bound keeps it from costing m²). Each group's rows are sorted; groups come
    in the order of their first row.
    """
    x = _normalise(matrix)
    n = len(x)
    if n < 2:
        return []
    t = max(float(threshold), EXACT_DISTANCE)
    r, c, _ = knn_edges(x, t, k=k, exhaustive=exhaustive)
    uf = _UnionFind(n)
    for a, b in zip(r.tolist(), c.tolist()):
        uf.union(a, b)
    extra = [(int(a), int(b)) for a, b in extra_edges]
    for a, b in extra:
        uf.union(a, b)
    comps = [np.asarray(m) for m in uf.components().values() if len(m) > 1]
    big = [comp for comp in comps if len(comp) > DENSE_MAX]
    adjacency: dict[int, list[int]] = {}
    if big:  # kNN lists for the big components only
        in_big = np.zeros(n, dtype=bool)
        for comp in big:
            in_big[comp] = True
        for a, b in zip(r.tolist(), c.tolist()):
            if in_big[a]:
                adjacency.setdefault(a, []).append(b)
                adjacency.setdefault(b, []).append(a)
        for a, b in extra:
            if in_big[a]:
                adjacency.setdefault(a, []).append(b)
                adjacency.setdefault(b, []).append(a)
    out: list[list[int]] = []
    for comp in comps:
        neighbours = None
        if len(comp) > DENSE_MAX:
            local = {int(g): i for i, g in enumerate(comp.tolist())}
            neighbours = [
                np.unique(np.array([local[b] for b in adjacency.get(int(g), [])], dtype=np.int64))
                for g in comp.tolist()
            ]
        for group in split_by_diameter(x[comp], t, neighbours):
            out.append(sorted(int(comp[i]) for i in group))
    out.sort()
    return out
