"""Finding duplicates: groups of copies a person can trust, each with the reason it is a group.

::

    groups = table.find_duplicates()            # or lookalike.duplicates.find_duplicates(table)
    for g in groups:
        print(g.kind, g.diameter, g.keeper, "keep;", list(zip(g.duplicates, g.labels[1:])))

How it works, and why it scales:

1. **Candidates** come from a k-nearest-neighbour graph of the normalised vectors, keeping only edges
   within ``threshold`` (cosine distance), built with blocked matrix products and top-k per row by
   argpartition (:func:`knn_edges`). Up to :data:`EXHAUSTIVE_MAX` vectors every pair is compared
   (exact). Above, vectors are split into cells of ~64 around k-means centroids and each vector meets
   only the members of its :data:`DEFAULT_PROBE` nearest cells — sub-quadratic, and approximate:
   near-copies sit far closer together than a cell is wide, so they share a probed cell
   (benchmarks/dupes.py recovers every planted duplicate at 100k vectors), but a pair right at the
   threshold can be missed. Pass ``exhaustive=True`` for the exact quadratic scan. Files with the same
   content hash (recorded at ingest, or a ``hash`` column) are joined too.
2. **Groups never chain.** Connected components of that graph would put A, B and C together when
   A~B and B~C although A and C are far apart (one user's collection made a 277-image "group" whose
   farthest pair was 0.18 apart at threshold 0.03). Each component is instead split into groups whose
   **diameter** (largest pairwise distance) is at most ``threshold``: greedy, seed-centred, every
   newcomer checked against every member (:func:`~lookalike.knn_graph.split_by_diameter`). Each
   group reports its ``diameter``.
3. **Pixels confirm.** Every member is decoded small (JPEG draft scaling) and compared with the
   keeper by :func:`lookalike.images.compare.compare_prints`, which labels it ``"identical file"``
   (same bytes), ``"same picture"`` (re-encoded, resized, format change, small crop, mirrored, tone
   change: ``details`` says which where it can tell) or ``"similar"`` (the pixels disagree: another
   shot of the same scene, e.g. a burst).
4. **Groups are sets of copies.** A vector group's members are split into sets of the same picture,
   each headed by the member the keeper policy prefers (``"largest"``: most pixels, then biggest
   file), which is the set's keeper; each set of two or more is returned as a group, so a burst of
   shots that each have copies gives one group per shot, and a bigger but different shot never
   displaces the original of a picture. With ``similar=True`` the shots that are no one's copy are
   added, labelled ``"similar"``, to the largest set's group (or make a group of their own).

**Without pixels** (a table of URLs, of vectors with no source, or a file that is missing or
unreadable) a pair is labelled from what is known: the same content hash → ``"identical file"``;
otherwise ``"same picture"`` with the detail ``"vectors only (…)"`` — the threshold is then the only
evidence, as before pixels were checked; identical vectors with no hash recorded count as an
identical file (detail ``"identical vectors"``). URLs are never fetched by a duplicate scan.

Thresholds are cosine distances (``1 - cosine similarity``). :data:`DEFAULT_THRESHOLDS` holds one per
model with :data:`GENERIC_THRESHOLD` as the fallback; pass ``threshold=`` to override.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from lookalike._json import to_jsonable
from lookalike.errors import ConfigurationError
from lookalike.knn_graph import (
    DEFAULT_K,
    DEFAULT_PROBE,
    EXACT_DISTANCE,
    EXHAUSTIVE_MAX,
    all_pairs_groups,
    diameter_groups,
    groups_as_indices,
    knn_edges,
)

if TYPE_CHECKING:
    from lookalike.images.compare import Match, PixelPrint
    from lookalike.table import Table

__all__ = [
    "DEFAULT_K",
    "DEFAULT_PROBE",
    "DEFAULT_THRESHOLDS",
    "EXACT_DISTANCE",
    "EXHAUSTIVE_MAX",
    "GENERIC_THRESHOLD",
    "IDENTICAL_FILE",
    "KEEPER_POLICIES",
    "KINDS",
    "SAME_PICTURE",
    "SIMILAR",
    "DuplicateGroup",
    "all_pairs_groups",
    "default_threshold",
    "diameter_groups",
    "find_duplicates",
    "groups_as_indices",
    "knn_edges",
]

IDENTICAL_FILE = "identical file"
SAME_PICTURE = "same picture"
SIMILAR = "similar"
KINDS = (IDENTICAL_FILE, SAME_PICTURE, SIMILAR)
"""Member labels and group kinds, strongest first (a group's kind is its weakest member's label)."""

KEEPER = "keeper"  # the keeper's own entry in DuplicateGroup.labels

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

MAX_PAIRWISE = 256
"""Groups larger than this report distances to the keeper only."""

_CHUNK = 64  # vector groups whose pictures are read at once (a limit stops the reading early)


@dataclass
class DuplicateGroup:
    """Items that are copies of one another (or, with ``similar=True``, shots of one scene).

    ``ids`` are the members' primary keys, keeper first; ``rows`` their non-vector columns (same
    order); ``labels[i]`` how member ``i`` relates to the keeper (``"keeper"`` for the keeper itself,
    else one of :data:`KINDS`) and ``details[i]`` what changed (``"resized, format change"``; empty when
    unknown); ``kind`` the weakest label; ``diameter`` the largest cosine distance between any two
    members (at most the threshold); ``distances[i][j]`` the pairwise distances (``None`` over
    :data:`MAX_PAIRWISE` members, see ``keeper_distances``); ``exact`` is True when every member is an
    identical file.
    """

    ids: list[Any]
    keeper: Any
    rows: list[dict[str, Any]] = field(default_factory=list)
    distances: list[list[float]] | None = None
    keeper_distances: list[float] = field(default_factory=list)
    exact: bool = False
    reason: str = ""
    diameter: float = 0.0
    kind: str = SAME_PICTURE
    labels: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

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
            "kind": self.kind,
            "exact": self.exact,
            "reason": self.reason,
            "diameter": round(self.diameter, 6),
            "max_distance": round(self.max_distance, 6),
            "members": [
                {
                    **{k: _plain(v) for k, v in row.items()},
                    "distance_to_keeper": round(d, 6),
                    "match": label,
                    "detail": detail,
                }
                for row, d, label, detail in zip(self.rows, self.keeper_distances, self.labels, self.details)
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


# ---------------------------------------------------------------------- loading a table's vectors


def _table_vectors(table: Table, column: str) -> tuple[list[Any], np.ndarray]:
    """Primary keys and vectors of every row with a vector, in insertion (row id / key) order.

    The engine reads them its own way (the embedded engine copies its in-memory matrix; server
    engines page through the table by key).
    """
    db = table.database
    with db.connection(write=False) as conn:
        return db.engine.read_vectors(conn, table.spec, column)


def _hashes(table: Table, ids: Sequence[Any], column: str) -> dict[Any, Any]:
    """Content hash and size facts per id, from the source records written at ingest."""
    info = table.source_info(column)
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
    db = table.database
    for start in range(0, len(id_list), 500):  # keep IN lists inside every engine's parameter limit
        part = id_list[start : start + 500]
        with db.connection(write=False) as conn:
            for row in conn.execute(sa.select(*cols).where(pk.in_(part))):
                m = dict(row._mapping)
                out[m[table.primary_key]] = m
    return out


@dataclass
class _Facts:
    """What is known about each row besides its vector, by position among the table's vectors."""

    hashes: list[Any]  # content hash, or None
    info: dict[Any, Any]  # source records by primary key (size, pixels), may be empty
    rows_by_id: dict[Any, dict[str, Any]] | None  # non-vector columns, when already read


def _facts(table: Table, ids: Sequence[Any], column: str) -> _Facts:
    """Content hashes: recorded at ingest, else a ``hash`` column."""
    index_of = {key: i for i, key in enumerate(ids)}
    info = _hashes(table, ids, column)
    hashes: list[Any] = [None] * len(ids)
    rows_by_id: dict[Any, dict[str, Any]] | None = None
    if info:
        for key, si in info.items():
            hashes[index_of[key]] = _attr(si, "hash") or None
    elif "hash" in table.spec.sa_table.c:
        rows_by_id = _rows(table, ids)
        for key, row in rows_by_id.items():
            if key in index_of:
                hashes[index_of[key]] = row.get("hash") or None
    return _Facts(hashes, info, rows_by_id)


def _same_hash_edges(hashes: Sequence[Any]) -> list[tuple[int, int]]:
    """Edges joining every row to the first row with the same content hash."""
    same_hash: dict[Any, list[int]] = {}
    for i, h in enumerate(hashes):
        if h:
            same_hash.setdefault(h, []).append(i)
    return [(m[0], other) for m in same_hash.values() for other in m[1:]]


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
    similar: bool = False,
) -> list[DuplicateGroup]:
    """Group the table's copies of the same picture, say why each is one, and suggest one to keep.

    ``threshold``: cosine distance under which two vectors are candidates, and the largest distance
    between any two members of a group (default: the model's entry in :data:`DEFAULT_THRESHOLDS`,
    else :data:`GENERIC_THRESHOLD`; ``0`` finds identical vectors only).
    ``exact``: also join byte-identical files by content hash (when the table records one).
    ``similar``: also return members that the pixel check finds only similar (another shot of the
    scene), labelled ``"similar"``; by default they are left out and only copies are returned.
    ``limit``: return at most this many groups: identical files first, then same pictures, each by
    diameter (the pixel check stops once ``limit`` groups are found, so later ones are not ranked).
    ``keeper``: a policy name from :data:`KEEPER_POLICIES` (``"largest"``: most pixels, then biggest
    file, then first inserted; ``"oldest"``, ``"newest"``, ``"smallest_file"``, ``"largest_file"``),
    applied within the largest set of copies (see the module docstring), or a callable taking the
    group's rows and returning the keeper's id.
    ``column``: the vector column (needed when the table has several). ``k``: neighbours per item.
    ``exhaustive``: compare every pair (exact, quadratic); default only up to :data:`EXHAUSTIVE_MAX`
    vectors, cell-probing above (see the module docstring).

    Nothing is deleted: the caller decides what to do with ``group.duplicates``.
    """
    vec = table.vector_field(column)
    threshold = _checked_threshold(threshold, vec.embed_fn)
    _check_options(limit, keeper)
    ids, matrix = _table_vectors(table, vec.name)
    if len(ids) < 2:
        return []
    facts = _facts(table, ids, vec.name)
    extra = _same_hash_edges(facts.hashes) if exact else []
    # groups of bounded diameter from the kNN graph; the tightest are labelled first
    t = max(float(threshold), EXACT_DISTANCE)
    clusters = diameter_groups(matrix, t, k=k, exhaustive=exhaustive, extra_edges=extra)
    if not clusters:
        return []
    members_all = [i for cl in clusters for i in cl]
    unit = dict(zip(members_all, _unit_rows(matrix[members_all])))
    hashes = facts.hashes
    clusters.sort(
        key=lambda cl: (len({hashes[i] for i in cl}) != 1 or hashes[cl[0]] is None, _diameter(cl, unit))
    )
    rows_by_id = facts.rows_by_id
    if rows_by_id is None:
        rows_by_id = _rows(table, [ids[i] for i in members_all])
    rows = {i: rows_by_id.get(ids[i], {table.primary_key: ids[i]}) for i in members_all}
    checker = _PairChecker(hashes, unit, _refs(rows, members_all, vec.source_field))
    labeller = _Labeller(keeper, similar, ids, rows, facts.info, checker, unit, threshold)
    return labeller.groups(clusters, limit)


def _checked_threshold(threshold: float | None, embed: Any) -> float:
    """The threshold given, or the model's default; a finite cosine distance in [0, 2]."""
    if threshold is None:
        threshold = default_threshold(embed.full_name if embed is not None else None)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ConfigurationError(f"threshold must be a finite number, got {threshold!r}")
    if threshold < 0 or threshold > 2:
        raise ConfigurationError(f"threshold is a cosine distance in [0, 2], got {threshold!r}")
    return threshold


def _check_options(limit: int | None, keeper: str | Callable[[list[dict[str, Any]]], Any]) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ConfigurationError(f"limit must be a positive integer, got {limit!r}")
    if isinstance(keeper, str) and keeper not in KEEPER_POLICIES:
        raise ConfigurationError(
            f"unknown keeper policy {keeper!r}; use one of {', '.join(KEEPER_POLICIES)} or a callable"
        )


@dataclass
class _Labeller:
    """Turns vector groups into labelled duplicate groups, a chunk of groups at a time."""

    keeper: str | Callable[[list[dict[str, Any]]], Any]
    similar: bool
    ids: Sequence[Any]
    rows: Mapping[int, dict[str, Any]]
    info: Mapping[Any, Any]
    checker: _PairChecker
    unit: Mapping[int, np.ndarray]
    threshold: float

    def groups(self, clusters: list[list[int]], limit: int | None) -> list[DuplicateGroup]:
        """The groups of ``clusters`` (tightest first), strongest kind first, at most ``limit``."""
        out: list[DuplicateGroup] = []
        for start in range(0, len(clusters), _CHUNK):
            chunk = clusters[start : start + _CHUNK]
            self.checker.load([i for cl in chunk for i in cl])  # decodes in parallel, once per picture
            for cl in chunk:
                for members, labels, details in _label_cluster(
                    cl, self.keeper, self.similar, self.ids, self.rows, self.info, self.checker
                ):
                    out.append(
                        _make_group(members, labels, details, self.ids, self.rows, self.unit, self.threshold)
                    )
            if limit is not None and len(out) >= limit:
                break
        out.sort(key=lambda g: (KINDS.index(g.kind), g.diameter, -len(g), _sort_key(g.keeper)))
        return out[:limit] if limit is not None else out


# ---------------------------------------------------------------------- pixels: which pairs are copies


class _PairChecker:
    """Labels pairs of rows (by index), decoding each picture once (see the module docstring)."""

    def __init__(
        self, hashes: Sequence[Any], unit: Mapping[int, np.ndarray], refs: Mapping[int, Any]
    ) -> None:
        self.hashes = hashes
        self.unit = unit
        self.refs = refs  # index -> a path or bytes to decode, or a str saying why there is none
        self.prints: dict[int, PixelPrint | str] = {}
        self.cache: dict[tuple[int, int], tuple[str, str]] = {}

    def load(self, indices: Iterable[int]) -> None:
        """Decode the given rows' pictures small, in parallel (Pillow releases the GIL while decoding)."""
        todo = [i for i in dict.fromkeys(indices) if i not in self.prints]
        if not todo:
            return
        workers = min(8, os.cpu_count() or 1, len(todo))
        if workers <= 1:
            self.prints.update(zip(todo, map(self._print, todo)))
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            self.prints.update(zip(todo, pool.map(self._print, todo)))

    def _print(self, i: int) -> PixelPrint | str:
        ref = self.refs.get(i)
        if ref is None or isinstance(ref, _NoPixels):
            return ref.why if isinstance(ref, _NoPixels) else "no file"
        from lookalike.images.compare import pixel_print

        try:
            return pixel_print(ref)
        except Exception:  # a picture the check cannot read must never stop the scan
            return "unreadable file"

    def nbytes_and_pixels(self, i: int) -> tuple[int | None, int | None]:
        """Byte size and pixel count from the decoded picture, when the table records neither."""
        p = self.prints.get(i)
        if p is None or isinstance(p, str):
            return None, None
        return p.nbytes, p.width * p.height

    def label(self, a: int, b: int) -> tuple[str, str]:
        """``(label, detail)`` of row ``b`` relative to row ``a``."""
        key = (a, b)
        if key not in self.cache:
            self.cache[key] = self._label(a, b)
        return self.cache[key]

    def _label(self, a: int, b: int) -> tuple[str, str]:
        ha, hb = self.hashes[a], self.hashes[b]
        if ha and hb and ha == hb:
            return IDENTICAL_FILE, ""
        self.load((a, b))
        pa, pb = self.prints[a], self.prints[b]
        if not isinstance(pa, str) and not isinstance(pb, str):
            from lookalike.images.compare import compare_prints

            match: Match = compare_prints(pa, pb)
            return match.label, ", ".join(match.details)
        # no pixels for this pair: the vectors (and hashes) are all the evidence there is
        why = pa if isinstance(pa, str) else pb
        assert isinstance(why, str)
        if not (ha and hb) and float(1.0 - self.unit[a] @ self.unit[b]) <= EXACT_DISTANCE:
            return IDENTICAL_FILE, f"identical vectors; pixels not checked ({why})"
        return SAME_PICTURE, f"vectors only ({why})"


@dataclass(frozen=True)
class _NoPixels:
    why: str


def _refs(rows: Mapping[int, dict[str, Any]], indices: Iterable[int], source: str | None) -> dict[int, Any]:
    """What to decode for each row: a local path or bytes from the image column, else why not."""
    from lookalike.images.refs import is_url

    out: dict[int, Any] = {}
    for i in indices:
        row = rows[i]
        value = row.get(source) if source else None
        if value is None:
            value = row.get("path")
        if isinstance(value, (bytes, bytearray, memoryview)):
            out[i] = bytes(value)
        elif isinstance(value, str) and value:
            if is_url(value):
                out[i] = _NoPixels("URL not fetched")  # a scan must not download a collection
            elif value.startswith(("data:", "file://")) or os.path.isfile(value):
                out[i] = value
            else:
                out[i] = _NoPixels("missing file" if _looks_like_path(value) else "no file")
        else:
            out[i] = _NoPixels("no file")
    return out


def _looks_like_path(value: str) -> bool:
    from lookalike.images.refs import looks_like_path

    return looks_like_path(value)


def _label_cluster(
    cluster: list[int],
    keeper: str | Callable[[list[dict[str, Any]]], Any],
    similar: bool,
    ids: Sequence[Any],
    rows: Mapping[int, dict[str, Any]],
    info: Mapping[Any, Any],
    checker: _PairChecker,
) -> list[tuple[list[int], list[str], list[str]]]:
    """The groups one vector group gives: ``(members keeper first, labels, details)`` each.

    Members are split into sets of copies, each headed by the member the keeper policy prefers; each
    set of two or more is a group. With ``similar``, the members that are no one's copy join the
    largest set's group (or, when no member has a copy, make one group together).
    """
    order = cluster if callable(keeper) else _ranked(keeper, cluster, ids, rows, info, checker)
    sets: list[list[int]] = []
    taken: set[int] = set()
    for head in order:
        if head in taken:
            continue
        members = [head] + [
            j for j in order if j not in taken and j != head and checker.label(head, j)[0] != SIMILAR
        ]
        taken.update(members)
        sets.append(members)
    chosen = [members for members in sets if len(members) > 1]
    if similar:
        # shots that have no copy here join the largest set's group as "similar"; other sets of
        # copies stay groups of their own, so every copy is still labelled against its own original
        lone = [members[0] for members in sets if len(members) == 1]
        if chosen:
            main = max(chosen, key=len)
            chosen[chosen.index(main)] = main + lone
        elif lone:
            chosen = [lone]
    out = []
    for members in chosen:
        if len(members) < 2:
            continue
        head = members[0]
        if callable(keeper):
            picked = keeper([dict(rows[j]) for j in members])
            by_id = {ids[j]: j for j in members}
            if picked not in by_id:
                raise ConfigurationError(f"keeper callable returned {picked!r}, which is not a member id")
            head = by_id[picked]
        rest = [j for j in members if j != head]
        labelled = [(j, *checker.label(head, j)) for j in rest]
        if not similar:
            labelled = [m for m in labelled if m[1] != SIMILAR]
        if not labelled:
            continue
        # copies first, strongest label first, then nearest
        labelled.sort(key=lambda m: (KINDS.index(m[1]), float(1.0 - checker.unit[head] @ checker.unit[m[0]])))
        out.append(
            (
                [head] + [m[0] for m in labelled],
                [KEEPER] + [m[1] for m in labelled],
                [""] + [m[2] for m in labelled],
            )
        )
    return out


def _make_group(
    members: list[int],
    labels: list[str],
    details: list[str],
    ids: Sequence[Any],
    rows: Mapping[int, dict[str, Any]],
    unit: Mapping[int, np.ndarray],
    threshold: float,
) -> DuplicateGroup:
    sub = np.stack([unit[i] for i in members])
    pairwise = None
    if len(members) <= MAX_PAIRWISE:
        pw = np.maximum(0.0, 1.0 - sub @ sub.T).astype(np.float64)
        np.fill_diagonal(pw, 0.0)
        pairwise = pw.tolist()
        to_keeper = pw[0].copy()
        diameter = float(pw.max())
    else:
        to_keeper = np.maximum(0.0, 1.0 - sub @ sub[0]).astype(np.float64)
        to_keeper[0] = 0.0
        diameter = _diameter(members, unit)
    kind = max(labels[1:], key=KINDS.index)
    reason = {
        IDENTICAL_FILE: "same content",
        SAME_PICTURE: f"the same picture, within {threshold:g} cosine distance",
        SIMILAR: f"similar shots, within {threshold:g} cosine distance",
    }[kind]
    return DuplicateGroup(
        ids=[ids[i] for i in members],
        keeper=ids[members[0]],
        rows=[rows[i] for i in members],
        distances=pairwise,
        keeper_distances=to_keeper.tolist(),
        exact=kind == IDENTICAL_FILE,
        reason=reason,
        diameter=diameter,
        kind=kind,
        labels=labels,
        details=details,
    )


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def _diameter(members: Sequence[int], unit: Mapping[int, np.ndarray]) -> float:
    """Largest pairwise cosine distance, in blocks (bounded memory for big groups)."""
    sub = np.stack([unit[i] for i in members])
    worst = 0.0
    for start in range(0, len(sub), 1024):
        worst = max(worst, float((1.0 - sub[start : start + 1024] @ sub.T).max()))
    return max(0.0, worst)


def _ranked(
    policy: str,
    cluster: list[int],
    ids: Sequence[Any],
    rows: Mapping[int, dict[str, Any]],
    info: Mapping[Any, Any],
    checker: _PairChecker,
) -> list[int]:
    """The cluster's rows, the one the keeper policy prefers first."""
    cands = []
    for i in cluster:
        row = rows[i]
        si = info.get(ids[i]) if info else None
        width = _attr(si, "width") or row.get("width")
        height = _attr(si, "height") or row.get("height")
        nbytes = _attr(si, "nbytes") or row.get("size") or row.get("nbytes")
        pixels = int(width) * int(height) if width and height else None
        if pixels is None or not nbytes:  # nothing recorded: what the pixel check read from the file
            seen_bytes, seen_pixels = checker.nbytes_and_pixels(i)
            pixels = pixels or seen_pixels
            nbytes = nbytes or seen_bytes
        cands.append((i, _Candidate(ids[i], i, pixels, int(nbytes) if nbytes else None, row.get("added_at"))))
    rule = KEEPER_POLICIES[policy]
    return [i for i, _ in sorted(cands, key=lambda ic: rule(ic[1]))]


def _attr(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def _plain(value: Any) -> Any:
    return to_jsonable(value, by_attribute=True, keep_unknown=True)
