"""Finding duplicates: exact copies by content hash, near-copies by vector distance.

::

    groups = table.find_duplicates()            # or lookalike.duplicates.find_duplicates(table)
    for g in groups:
        print(g.keeper, "keep;", [m for m in g.ids if m != g.keeper], "are copies")

How it works, and why it scales:

1. **Exact duplicates** come from the content hashes recorded at ingest (``table.source_info()``),
   or a ``hash`` column when the table has one. Without either, identical vectors count as exact.
2. **Near-duplicates** (resized, re-encoded, lightly cropped or recoloured copies) come from a
   k-nearest-neighbour graph of the normalised vectors, keeping only edges within ``threshold``
   (cosine distance), built with blocked matrix products and top-k per row by argpartition. Up to
   :data:`EXHAUSTIVE_MAX` vectors every pair is compared (exact). Above, vectors are split into cells
   of ~64 around k-means centroids and each vector meets only the members of its
   :data:`DEFAULT_PROBE` nearest cells — sub-quadratic, and approximate: near-copies sit far closer
   together than a cell is wide, so they share a probed cell (benchmarks/dupes.py recovers every
   planted duplicate at 100k vectors), but a pair right at the threshold can be missed. Pass
   ``exhaustive=True`` for the exact quadratic scan. (A triangle-inequality-pruned exact variant was
   tried: in 512 dimensions cell radii are as large as the gaps between cells, so it pruned little.)
3. **Groups** are the connected components of exact + near edges (union-find), so A~B and B~C put A,
   B and C in one group. Each group lists its members, their pairwise distances, and a suggested
   keeper. Nothing is deleted.

Thresholds are cosine distances (``1 - cosine similarity``). :data:`DEFAULT_THRESHOLDS` holds one per
model with :data:`GENERIC_THRESHOLD` as the fallback; pass ``threshold=`` to override.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from lookalike.errors import ConfigurationError

if TYPE_CHECKING:
    from lookalike.table import Table

__all__ = [
    "DEFAULT_THRESHOLDS",
    "GENERIC_THRESHOLD",
    "KEEPER_POLICIES",
    "DuplicateGroup",
    "all_pairs_groups",
    "default_threshold",
    "find_duplicates",
    "groups_as_indices",
    "knn_edges",
]

GENERIC_THRESHOLD = 0.03
"""Fallback threshold (cosine distance) for models without a measured default.

Conservative on purpose: a false "duplicate" can cost a user a photo, a missed one only disk space.
"""

DEFAULT_THRESHOLDS: dict[str, float] = {
    "local/clip-vit-b-32": 0.03,
    "local/clip-vit-b-16": 0.03,
    "clip-vit-b-32": 0.03,
    "clip-vit-b-16": 0.03,
}
"""Default near-duplicate thresholds (cosine distance) keyed by model name.

How they were chosen (``python benchmarks/dupes.py --calibrate``): 24 generated scenes, each against
four near-copies (resized to 50 %, JPEG quality 60, 8 % crop, +15 % brightness) and against each other.

================================  =======  =======  ======  =========  ================
model                             resized  JPEG 60  crop 8  bright+15  different (min)
================================  =======  =======  ======  =========  ================
tests/fixtures/tiny-clip          0.0001   0.0009   0.142   0.027      0.054
ViT-B/32, random weights (.bench) 0.0000   0.0001   0.003   0.024      0.0023
================================  =======  =======  ======  =========  ================

(maxima for near-copies.) Both models have **random weights**, and a random network's distances are
not a trained CLIP's: the random ViT-B/32 maps unrelated scenes almost on top of each other, so no
threshold separates them there. What carries over: resizing and re-encoding move vectors by ~0.001 or
less, brightness and cropping by up to ~0.03. 0.03 catches re-encodes, resizes and mild edits while
staying under the distances at which trained CLIP models place merely similar photos (bursts, the
same scene re-shot), which peers found to be the costly mistake (Immich retuned its threshold twice).
It is a default, not a truth: pass ``threshold=`` (``lookalike dupes --threshold``) for your model and
collection. SigLIP models use :data:`GENERIC_THRESHOLD` until measured with trained weights.
"""

EXACT_DISTANCE = 1e-6
"""Vectors at most this far apart count as identical (exact duplicates when no hash is recorded)."""

DEFAULT_K = 16
"""Neighbours kept per item in the kNN graph; groups still grow past it through transitivity."""

MAX_PAIRWISE = 256
"""Groups larger than this report distances to the keeper only (a sign the threshold is too loose)."""

EXHAUSTIVE_MAX = 10_000
"""Up to this many vectors the kNN graph is exhaustive (exact); above, cell-probing (see module doc)."""

DEFAULT_PROBE = 4
"""Cells each vector is compared against above :data:`EXHAUSTIVE_MAX` vectors."""

_BLOCK = 1024  # query rows per matrix product
_CELL_SIZE = 64  # target vectors per cell
_KMEANS_ITERS = 4


@dataclass
class DuplicateGroup:
    """Items that are copies of one another.

    ``ids`` are the members' primary keys, keeper first; ``rows`` their non-vector columns (same
    order); ``distances[i][j]`` the cosine distance between members ``i`` and ``j`` (``None`` for groups
    over :data:`MAX_PAIRWISE` members, see ``keeper_distances``); ``exact`` is True when every member
    has the same content (hash, or identical vectors when no hash is recorded).
    """

    ids: list[Any]
    keeper: Any
    rows: list[dict[str, Any]] = field(default_factory=list)
    distances: list[list[float]] | None = None
    keeper_distances: list[float] = field(default_factory=list)
    exact: bool = False
    reason: str = ""

    @property
    def duplicates(self) -> list[Any]:
        """Members other than the keeper (the candidates for removal)."""
        return [i for i in self.ids if i != self.keeper]

    @property
    def max_distance(self) -> float:
        """The largest distance from the keeper to a member."""
        return max(self.keeper_distances, default=0.0)

    def __len__(self) -> int:
        return len(self.ids)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (for ``lookalike dupes --json`` and the web API)."""
        return {
            "keeper": _plain(self.keeper),
            "ids": [_plain(i) for i in self.ids],
            "exact": self.exact,
            "reason": self.reason,
            "max_distance": round(self.max_distance, 6),
            "members": [
                {**{k: _plain(v) for k, v in row.items()}, "distance_to_keeper": round(d, 6)}
                for row, d in zip(self.rows, self.keeper_distances)
            ],
            "distances": None
            if self.distances is None
            else [[round(x, 6) for x in r] for r in self.distances],
        }


# ---------------------------------------------------------------------- thresholds


def default_threshold(model_name: str | None) -> float:
    """The documented near-duplicate threshold for a model (``GENERIC_THRESHOLD`` when unmeasured)."""
    if not model_name:
        return GENERIC_THRESHOLD
    if model_name in DEFAULT_THRESHOLDS:
        return DEFAULT_THRESHOLDS[model_name]
    tail = model_name.rstrip("/").rsplit("/", 1)[-1]  # "local/./models/clip-vit-b-32" → its alias
    return DEFAULT_THRESHOLDS.get(tail, GENERIC_THRESHOLD)


# ---------------------------------------------------------------------- keeper policies


@dataclass(frozen=True)
class _Candidate:
    """What keeper policies look at for one member."""

    id: Any
    order: int  # insertion order (position among the table's vectors)
    pixels: int | None
    nbytes: int | None
    added: Any


def _by_largest(c: _Candidate) -> tuple[Any, ...]:
    return (-(c.pixels or 0), -(c.nbytes or 0), c.order)


def _by_oldest(c: _Candidate) -> tuple[Any, ...]:
    return (c.added is None, c.added if c.added is not None else 0, c.order)


def _by_newest(c: _Candidate) -> tuple[Any, ...]:
    return (c.added is None, _neg(c.added), -c.order)


def _by_smallest_file(c: _Candidate) -> tuple[Any, ...]:
    return (c.nbytes is None, c.nbytes or 0, -(c.pixels or 0), c.order)


def _by_largest_file(c: _Candidate) -> tuple[Any, ...]:
    return (-(c.nbytes or 0), -(c.pixels or 0), c.order)


def _neg(value: Any) -> Any:
    if value is None:
        return 0
    if hasattr(value, "timestamp"):
        return -value.timestamp()
    return -value


KEEPER_POLICIES: dict[str, Callable[[_Candidate], tuple[Any, ...]]] = {
    "largest": _by_largest,  # most pixels, then biggest file, then first inserted
    "oldest": _by_oldest,  # earliest added_at (or first inserted)
    "newest": _by_newest,
    "smallest_file": _by_smallest_file,
    "largest_file": _by_largest_file,
}
"""Keeper policies by name: the member sorting first is suggested as the one to keep."""


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


# ---------------------------------------------------------------------- loading a table's vectors


def _table_vectors(table: Table, column: str) -> tuple[list[Any], np.ndarray]:
    """Primary keys and vectors of every row with a vector, in insertion (row id / key) order.

    The embedded engine hands over its in-memory matrix (no second copy of the blobs is read); other
    engines are read in pages.
    """
    spec = table.spec
    engine = table.client.engine
    pk = spec.sa_table.c[table.primary_key]
    vec = spec.vectors[column]
    if hasattr(engine, "_matrix"):
        with table.client._conn(write=False) as conn:
            entry = engine._matrix(conn, spec, column)
            with entry.lock:
                rowids = entry.matrix.ids.copy()
                data = np.array(entry.matrix.data, dtype=np.float32, copy=True)
            rowid = sa.literal_column("rowid")
            mapping = dict(conn.execute(sa.select(rowid, pk).select_from(spec.sa_table)).all())
        return [mapping[int(r)] for r in rowids], data
    ids: list[Any] = []
    chunks: list[np.ndarray] = []
    col = spec.sa_table.c[column]
    last = None
    while True:  # keyset pagination: constant memory on the server, no OFFSET rescans
        stmt = sa.select(pk, col).where(col.is_not(None)).order_by(pk).limit(10_000)
        if last is not None:
            stmt = stmt.where(pk > last)
        with table.client._conn(write=False) as conn:
            page = conn.execute(stmt).all()
        if not page:
            break
        ids.extend(r[0] for r in page)
        chunks.append(np.asarray([r[1] for r in page], dtype=np.float32))
        last = page[-1][0]
    data = np.concatenate(chunks) if chunks else np.empty((0, vec.dimensions), np.float32)
    return ids, data


def _hashes(table: Table, ids: Sequence[Any], column: str) -> dict[Any, Any]:
    """Content hash and size facts per id, from the source records written at ingest."""
    source_info = getattr(table, "source_info", None)
    if not callable(source_info):
        return {}
    info = source_info(column)
    if not info:
        return {}
    by_text = {str(i): i for i in ids}  # records are keyed by the primary key as text
    return {by_text[key]: value for key, value in info.items() if key in by_text}


def _rows(table: Table, ids: Sequence[Any]) -> dict[Any, dict[str, Any]]:
    """Non-vector columns of the given rows."""
    spec = table.spec
    pk = spec.sa_table.c[table.primary_key]
    cols = [c for c in spec.sa_table.columns if c.name not in spec.vectors]
    out: dict[Any, dict[str, Any]] = {}
    id_list = list(ids)
    for start in range(0, len(id_list), 500):  # keep IN lists inside every engine's parameter limit
        part = id_list[start : start + 500]
        with table.client._conn(write=False) as conn:
            for row in conn.execute(sa.select(*cols).where(pk.in_(part))):
                m = dict(row._mapping)
                out[m[table.primary_key]] = m
    return out


# ---------------------------------------------------------------------- the public call


def find_duplicates(
    table: Table,
    *,
    threshold: float | None = None,
    exact: bool = True,
    limit: int | None = None,
    keeper: str | Callable[[list[dict[str, Any]]], Any] = "largest",
    column: str | None = None,
    k: int = DEFAULT_K,
    exhaustive: bool | None = None,
) -> list[DuplicateGroup]:
    """Group the table's exact and near-duplicate images; suggest one of each group to keep.

    ``threshold``: cosine distance under which two vectors are near-copies (default: the model's entry
    in :data:`DEFAULT_THRESHOLDS`, else :data:`GENERIC_THRESHOLD`; ``0`` finds identical vectors only).
    ``exact``: also group byte-identical files by content hash (when the table records one).
    ``limit``: return at most this many groups. Exact groups come first, then by tightness.
    ``keeper``: a policy name from :data:`KEEPER_POLICIES` (``"largest"``: most pixels, then biggest
    file, then first inserted; ``"oldest"``, ``"newest"``, ``"smallest_file"``, ``"largest_file"``) or
    a callable taking the group's rows and returning the keeper's id.
    ``column``: the vector column (needed when the table has several). ``k``: neighbours per item.
    ``exhaustive``: compare every pair (exact, quadratic); default only up to :data:`EXHAUSTIVE_MAX`
    vectors, cell-probing above (see the module docstring).

    Nothing is deleted: the caller decides what to do with ``group.duplicates``.
    """
    vec = table.vector_field(column)
    if threshold is None:
        embed = vec.embed_fn
        threshold = default_threshold(getattr(embed, "model_name", None) and _full_name(embed))
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ConfigurationError(f"threshold must be a finite number, got {threshold!r}")
    if threshold < 0 or threshold > 2:
        raise ConfigurationError(f"threshold is a cosine distance in [0, 2], got {threshold!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ConfigurationError(f"limit must be a positive integer, got {limit!r}")
    if isinstance(keeper, str) and keeper not in KEEPER_POLICIES:
        raise ConfigurationError(
            f"unknown keeper policy {keeper!r}; use one of {', '.join(KEEPER_POLICIES)} or a callable"
        )
    ids, matrix = _table_vectors(table, vec.name)
    n = len(ids)
    if n < 2:
        return []
    index_of = {key: i for i, key in enumerate(ids)}
    uf = _UnionFind(n)

    # 1. exact: same content hash
    info = _hashes(table, ids, vec.name)
    hash_col = "hash" if "hash" in table.spec.sa_table.c and not info else None
    rows_needed: dict[Any, dict[str, Any]] | None = None
    same_hash: dict[Any, list[int]] = {}
    if info and exact:
        for key, si in info.items():
            h = getattr(si, "hash", None) if not isinstance(si, Mapping) else si.get("hash")
            if h and key in index_of:
                same_hash.setdefault(h, []).append(index_of[key])
    elif exact and hash_col:
        rows_needed = _rows(table, ids)
        for key, row in rows_needed.items():
            if row.get(hash_col) and key in index_of:
                same_hash.setdefault(row[hash_col], []).append(index_of[key])
    for members in same_hash.values():
        for other in members[1:]:
            uf.union(members[0], other)

    # 2. near: the thresholded kNN graph
    r, c, _ = knn_edges(matrix, max(float(threshold), EXACT_DISTANCE), k=k, exhaustive=exhaustive)
    for a, b in zip(r.tolist(), c.tolist()):
        uf.union(a, b)

    comps = [m for m in uf.components().values() if len(m) > 1]
    if not comps:
        return []
    member_ids = [ids[i] for comp in comps for i in comp]
    if rows_needed is None:
        rows_needed = _rows(table, member_ids)
    xn = _normalise(matrix[np.concatenate([np.asarray(cm) for cm in comps])])
    groups: list[DuplicateGroup] = []
    offset = 0
    for comp in comps:
        sub = xn[offset : offset + len(comp)]
        offset += len(comp)
        group_ids = [ids[i] for i in comp]
        rows = [rows_needed.get(g, {table.primary_key: g}) for g in group_ids]
        hashes = {_hash_of(info, rows_needed, hash_col, g) for g in group_ids}
        keep_pos = _pick_keeper(keeper, comp, group_ids, rows, info)
        perm = [keep_pos] + [p for p in range(len(comp)) if p != keep_pos]
        sub = sub[perm]
        pairwise = None
        if len(comp) <= MAX_PAIRWISE:
            pw = np.maximum(0.0, 1.0 - sub @ sub.T).astype(np.float64)
            np.fill_diagonal(pw, 0.0)
            pairwise = pw.tolist()
            to_keeper = pw[0].copy()
        else:
            to_keeper = np.maximum(0.0, 1.0 - sub @ sub[0]).astype(np.float64)
            to_keeper[0] = 0.0
        identical_vectors = bool(to_keeper.max() <= EXACT_DISTANCE)
        exact_group = (None not in hashes and len(hashes) == 1) or (not same_hash and identical_vectors)
        groups.append(
            DuplicateGroup(
                ids=[group_ids[p] for p in perm],
                keeper=group_ids[keep_pos],
                rows=[rows[p] for p in perm],
                distances=pairwise,
                keeper_distances=to_keeper.tolist(),
                exact=exact_group,
                reason="same content" if exact_group else f"within {threshold:g} cosine distance",
            )
        )
    groups.sort(key=lambda g: (not g.exact, g.max_distance, -len(g), _sort_key(g.keeper)))
    return groups[:limit] if limit is not None else groups


def _full_name(embed: Any) -> str:
    provider = getattr(embed, "provider", None)
    name = str(embed.model_name)
    if provider and provider != "python" and not name.startswith(f"{provider}/"):
        return f"{provider}/{name}"
    return name


def _hash_of(info: Mapping[Any, Any], rows: Mapping[Any, dict[str, Any]], col: str | None, key: Any) -> Any:
    if info:
        si = info.get(key)
        return None if si is None else getattr(si, "hash", None)
    if col:
        return rows.get(key, {}).get(col)
    return None


def _attr(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _pick_keeper(
    keeper: str | Callable[[list[dict[str, Any]]], Any],
    comp: list[int],
    group_ids: list[Any],
    rows: list[dict[str, Any]],
    info: Mapping[Any, Any],
) -> int:
    if callable(keeper):
        chosen = keeper([dict(r) for r in rows])
        if chosen not in group_ids:
            raise ConfigurationError(f"keeper callable returned {chosen!r}, which is not a member id")
        return group_ids.index(chosen)
    cands = []
    for pos, (order, key, row) in enumerate(zip(comp, group_ids, rows)):
        si = info.get(key) if info else None
        width = _attr(si, "width") or row.get("width")
        height = _attr(si, "height") or row.get("height")
        nbytes = _attr(si, "nbytes") or row.get("size") or row.get("nbytes")
        pixels = int(width) * int(height) if width and height else None
        added = row.get("added_at")
        cands.append((pos, _Candidate(key, order, pixels, int(nbytes) if nbytes else None, added)))
    rule = KEEPER_POLICIES[keeper]
    return min(cands, key=lambda pc: rule(pc[1]))[0]


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return value


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
