"""Fusing two ranked result lists (a vector search's and a full-text search's) into one.

Usable on their own, over lists of row dicts, best first::

    from lookalike.fusion import rrf_fusion, weighted_fusion
    rows = rrf_fusion(vector_rows, text_rows, key="id", k=60)
    rows = weighted_fusion(vector_rows, text_rows, key="id", vs_weight=0.7, fts_weight=0.3)

Rows are matched by ``key``: a column name (the primary key) or a function of the row. A row that is
listed twice in one list counts once, at its best rank.

**Inputs.** Vector rows carry ``_distance`` (smaller is nearer); full-text rows carry ``_score`` (BM25,
higher is better; ``_match_score`` is read first when a row has it).

**Fused rows** carry the columns of the vector row, filled in from the text row, and three fields:

=================  =============================================================================
``_score``         the fused score, higher is better (the list is sorted by it)
``_distance``      the vector search's distance, or ``None`` when only the full-text search found it
``_match_score``   the full-text (BM25) score, or ``None`` when only the vector search found it
=================  =============================================================================

(``_match_score`` is pytidb's name for the full-text score, so pytidb code reads it unchanged.)

**Reciprocal rank fusion** (:func:`rrf_fusion`): ``_score = Σ 1 / (k + rank)`` over the lists that hold
the row, ranks counted from 1, ``k = 60`` by default (the value of Cormack et al.; a larger ``k`` flattens
the difference between top and lower ranks). Scores are ignored, only ranks count.

**Weighted score fusion** (:func:`weighted_fusion`): ``_score = vs_weight · v + fts_weight · t``, where
``v`` and ``t`` are each list's scores normalised to [0, 1]; a row missing from a list gets 0 for it.
Weights are used as given (they need not sum to 1); a weight of 0 ignores that list's scores (its rows
still appear). Normalisation, ``normalize=``:

- ``"minmax"`` (default): over each list separately, the best row gets 1 and the worst 0:
  ``v = (d_max - d) / (d_max - d_min)`` for distances, ``t = (s - s_min) / (s_max - s_min)`` for BM25;
  a list whose rows all score the same (or hold one row) gives each 1. Unbounded BM25 and distances of
  any metric become comparable this way, relative to what each search returned.
- ``"atan"``: pytidb's fixed mapping, independent of the other rows: cosine ``1 - d / 2``; l2 and l1
  ``1 - 2·atan(d)/π``; inner product ``1/2 + atan(-d)/π``; BM25 ``2·atan(s)/π``. Needs ``metric=``.

**Ties** are broken by the smaller key, so an order never depends on hash order; keys that cannot be
compared (mixed types) keep the order in which they were first seen (vector list first).

**pytidb's functions** :func:`fusion_result_rows_by_rrf` and :func:`fusion_result_rows_by_weighted` have
pytidb's names, arguments and result shape ``(field_names, rows)``, over SQLAlchemy ``Row`` objects or
dicts. Fixed instead of copied: their tie order came from a Python ``set`` (hash order); ``k=None``
failed (here it means 60); a weight of 0 or 1 was rejected (here any weight ≥ 0 works, not all 0);
weighted fusion knew only cosine and L2 (here all four metrics).

Bad input raises :class:`~lookalike.errors.ConfigurationError`: ``k`` that is not a positive number,
weights that are negative, not finite or all zero, an unknown ``normalize``, a row without its key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal

from lookalike.errors import ConfigurationError
from lookalike.schema import normalize_metric

__all__ = [
    "DEFAULT_RRF_K",
    "Normalization",
    "RowKey",
    "check_rrf_k",
    "check_weights",
    "fusion_result_rows_by_rrf",
    "fusion_result_rows_by_weighted",
    "rrf_fusion",
    "weighted_fusion",
]

DEFAULT_RRF_K = 60
"""RRF's ``k`` when none is given (pytidb's hybrid search used the limit instead: its bug #8)."""

Normalization = Literal["minmax", "atan"]
RowKey = str | Callable[[Mapping[str, Any]], Hashable]
"""How rows are matched across lists: a column name, or a function of the row."""

DISTANCE = "_distance"
MATCH_SCORE = "_match_score"
SCORE = "_score"


# --------------------------------------------------------------------------- argument checks
def check_rrf_k(k: Any) -> float:
    """``k`` as a float, or :class:`ConfigurationError` unless it is a positive finite number.

    ``None`` means the default, 60.
    """
    if k is None:
        return float(DEFAULT_RRF_K)
    if isinstance(k, bool) or not _is_number(k) or not math.isfinite(k) or k <= 0:
        raise ConfigurationError(f"fusion: RRF k must be a positive number, got {k!r}")
    return float(k)


def check_weights(vs_weight: Any, fts_weight: Any) -> tuple[float, float]:
    """The two weights as floats, or :class:`ConfigurationError` naming the bad one.

    Each must be a finite number ≥ 0, and not both 0.
    """
    for name, value in (("vs_weight", vs_weight), ("fts_weight", fts_weight)):
        if isinstance(value, bool) or not _is_number(value) or not math.isfinite(value):
            raise ConfigurationError(f"fusion: {name} must be a finite number, got {value!r}")
        if value < 0:
            raise ConfigurationError(f"fusion: {name} must not be negative, got {value!r}")
    if vs_weight == 0 and fts_weight == 0:
        raise ConfigurationError(
            "fusion: vs_weight and fts_weight are both 0; give at least one list a positive weight"
        )
    return float(vs_weight), float(fts_weight)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str)


# --------------------------------------------------------------------------- the two fusions
def rrf_fusion(
    vector_rows: Iterable[Mapping[str, Any]],
    text_rows: Iterable[Mapping[str, Any]],
    *,
    key: RowKey = "id",
    k: float | None = DEFAULT_RRF_K,
) -> list[dict[str, Any]]:
    """Reciprocal rank fusion of a vector and a full-text result list (see the module notes)."""
    kk = check_rrf_k(k)
    lists = [_dedupe(vector_rows, key, "vector"), _dedupe(text_rows, key, "full-text")]
    scores: dict[Hashable, float] = {}
    for rows in lists:
        for rank, (row_key, _) in enumerate(rows, start=1):
            scores[row_key] = scores.get(row_key, 0.0) + 1.0 / (kk + rank)
    return _merge(lists[0], lists[1], scores)


def weighted_fusion(
    vector_rows: Iterable[Mapping[str, Any]],
    text_rows: Iterable[Mapping[str, Any]],
    *,
    key: RowKey = "id",
    vs_weight: float = 0.5,
    fts_weight: float = 0.5,
    normalize: Normalization = "minmax",
    metric: Any = None,
) -> list[dict[str, Any]]:
    """Weighted score fusion of a vector and a full-text result list (see the module notes).

    ``metric`` (the vector search's distance metric) is needed only with ``normalize="atan"``.
    """
    vw, tw = check_weights(vs_weight, fts_weight)
    if normalize not in ("minmax", "atan"):
        raise ConfigurationError(f"fusion: normalize must be 'minmax' or 'atan', got {normalize!r}")
    if normalize == "atan" and metric is None:
        raise ConfigurationError("fusion: normalize='atan' needs the vector search's metric=")
    vec = _dedupe(vector_rows, key, "vector")
    txt = _dedupe(text_rows, key, "full-text")
    distances = [_value(row, (DISTANCE,), "vector") for _, row in vec]
    matches = [_value(row, (MATCH_SCORE, SCORE), "full-text") for _, row in txt]
    if normalize == "minmax":
        v_norm = _minmax([-d for d in distances])
        t_norm = _minmax(matches)
    else:
        name = normalize_metric(metric)
        v_norm = [_atan_distance(name, d) for d in distances]
        t_norm = [2.0 * math.atan(s) / math.pi for s in matches]
    scores: dict[Hashable, float] = {}
    for (row_key, _), v in zip(vec, v_norm):
        scores[row_key] = vw * v
    for (row_key, _), t in zip(txt, t_norm):
        scores[row_key] = scores.get(row_key, 0.0) + tw * t
    return _merge(vec, txt, scores)


# --------------------------------------------------------------------------- helpers
def key_function(key: RowKey) -> Callable[[Mapping[str, Any]], Hashable]:
    """``key`` as a function of a row; a column name raises :class:`ConfigurationError` when absent."""
    if callable(key):
        return key
    if not isinstance(key, str):
        raise ConfigurationError(f"fusion: key must be a column name or a function, got {key!r}")

    def by_column(row: Mapping[str, Any]) -> Hashable:
        try:
            return row[key]
        except KeyError:
            raise ConfigurationError(
                f"fusion: a row has no key column {key!r} (columns: {', '.join(map(str, row))}); "
                "pass key= the primary key column or a function of the row"
            ) from None

    return by_column


def _dedupe(
    rows: Iterable[Mapping[str, Any]], key: RowKey, what: str
) -> list[tuple[Hashable, Mapping[str, Any]]]:
    """``(key, row)`` pairs in rank order, each key once (at its best rank)."""
    get = key_function(key)
    out: list[tuple[Hashable, Mapping[str, Any]]] = []
    seen: set[Hashable] = set()
    for row in rows:
        if not isinstance(row, Mapping):
            raise ConfigurationError(
                f"fusion: {what} rows must be mappings (dicts), got {type(row).__name__}"
            )
        row_key = get(row)
        try:
            if row_key in seen:
                continue
        except TypeError:
            raise ConfigurationError(f"fusion: row key {row_key!r} is not hashable") from None
        seen.add(row_key)
        out.append((row_key, row))
    return out


def _value(row: Mapping[str, Any], names: tuple[str, ...], what: str) -> float:
    for name in names:
        value = row.get(name)
        if value is not None:
            if isinstance(value, bool) or not _is_number(value) or math.isnan(float(value)):
                raise ConfigurationError(f"fusion: a {what} row's {name} is not a number: {value!r}")
            return float(value)
    raise ConfigurationError(f"fusion: a {what} row has no {' or '.join(names)}: {dict(row)!r:.200}")


def _minmax(values: Sequence[float]) -> list[float]:
    """Higher is better in, [0, 1] out; all-equal (or one) values give 1."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    span = hi - lo
    if not span > 0 or not math.isfinite(span):
        return [1.0 if v == hi else 0.0 for v in values] if math.isinf(span) else [1.0] * len(values)
    return [(v - lo) / span for v in values]


def _atan_distance(metric: str, distance: float) -> float:
    if metric == "cosine":
        return 1.0 - min(max(distance, 0.0), 2.0) / 2.0
    if metric == "inner_product":
        return 0.5 + math.atan(-distance) / math.pi
    return 1.0 - 2.0 * math.atan(max(distance, 0.0)) / math.pi


def _merge(
    vec: list[tuple[Hashable, Mapping[str, Any]]],
    txt: list[tuple[Hashable, Mapping[str, Any]]],
    scores: dict[Hashable, float],
) -> list[dict[str, Any]]:
    by_key: dict[Hashable, dict[str, Any]] = {}
    for row_key, row in vec:
        merged = {n: v for n, v in row.items() if n not in (SCORE, MATCH_SCORE)}
        merged.setdefault(DISTANCE, None)
        merged[MATCH_SCORE] = None
        by_key[row_key] = merged
    for row_key, row in txt:
        match = row.get(MATCH_SCORE)
        match = row.get(SCORE) if match is None else match
        found = by_key.get(row_key)
        if found is None:
            found = {n: v for n, v in row.items() if n not in (SCORE, MATCH_SCORE, DISTANCE)}
            found[DISTANCE] = None
            by_key[row_key] = found
        else:
            for n, v in row.items():
                if n not in (SCORE, MATCH_SCORE, DISTANCE) and found.get(n) is None:
                    found[n] = v
        found[MATCH_SCORE] = match
    for row_key, fused in by_key.items():
        fused[SCORE] = scores[row_key]
    return [by_key[row_key] for row_key in ranked_keys(list(by_key), scores)]


def ranked_keys(keys: list[Hashable], scores: Mapping[Hashable, float]) -> list[Hashable]:
    """``keys`` (in first-seen order) by score, best first; ties by the smaller key when keys compare,
    else in first-seen order."""
    try:
        return sorted(keys, key=lambda k: (-scores[k], k))
    except TypeError:  # keys of mixed types do not compare: first-seen order breaks the tie
        return sorted(keys, key=lambda k: -scores[k])


# --------------------------------------------------------------------------- pytidb's functions
def fusion_result_rows_by_rrf(
    rows_a: Sequence[Any],
    rows_b: Sequence[Any],
    get_row_key: Callable[[Any], Hashable],
    k: float | None = DEFAULT_RRF_K,
) -> tuple[list[str], list[Any]]:
    """pytidb's RRF over two lists of rows (SQLAlchemy ``Row`` or dicts) → ``(field_names, rows)``.

    Every field of either list is kept (the first list's value unless it is None); ``_score`` becomes
    the RRF score. Rows come back as the kind they came in.
    """
    kk = check_rrf_k(k)
    scores: dict[Hashable, float] = {}
    for rows in (rows_a, rows_b):
        seen: set[Hashable] = set()
        for rank, row in enumerate(rows, start=1):
            row_key = get_row_key(row)
            if row_key not in seen:
                seen.add(row_key)
                scores[row_key] = scores.get(row_key, 0.0) + 1.0 / (kk + rank)
    return _pytidb_merge(rows_a, rows_b, get_row_key, scores)


def fusion_result_rows_by_weighted(
    vs_rows: Sequence[Any],
    vs_metric: Any,
    fts_rows: Sequence[Any],
    get_row_key: Callable[[Any], Hashable],
    vs_weight: float = 0.5,
    fts_weight: float = 0.5,
) -> tuple[list[str], list[Any]]:
    """pytidb's weighted fusion (its fixed ``atan`` normalisation) → ``(field_names, rows)``.

    ``vs_rows`` need ``_distance`` in ``vs_metric``'s units, ``fts_rows`` need ``_match_score`` (or
    ``_score``). ``_score`` becomes the weighted score.
    """
    vw, tw = check_weights(vs_weight, fts_weight)
    metric = normalize_metric(vs_metric)
    scores: dict[Hashable, float] = {}
    for row in vs_rows:
        row_key = get_row_key(row)
        distance = _value(_as_mapping(row), (DISTANCE,), "vector")
        scores.setdefault(row_key, vw * _atan_distance(metric, distance))
    seen: set[Hashable] = set()
    for row in fts_rows:
        row_key = get_row_key(row)
        if row_key in seen:
            continue
        seen.add(row_key)
        match = _value(_as_mapping(row), (MATCH_SCORE, SCORE), "full-text")
        scores[row_key] = scores.get(row_key, 0.0) + tw * 2.0 * math.atan(match) / math.pi
    return _pytidb_merge(vs_rows, fts_rows, get_row_key, scores)


def _as_mapping(row: Any) -> Mapping[str, Any]:
    mapping = getattr(row, "_mapping", row)
    if not isinstance(mapping, Mapping):
        raise ConfigurationError(f"fusion: rows must be SQLAlchemy rows or dicts, got {type(row).__name__}")
    return mapping


def _pytidb_merge(
    rows_a: Sequence[Any],
    rows_b: Sequence[Any],
    get_row_key: Callable[[Any], Hashable],
    scores: dict[Hashable, float],
) -> tuple[list[str], list[Any]]:
    if not rows_a and not rows_b:
        return [], []
    fields: dict[str, None] = {}
    merged: dict[Hashable, dict[str, Any]] = {}
    for rows in (rows_a, rows_b):
        for row in rows:
            mapping = _as_mapping(row)
            fields.update(dict.fromkeys(mapping))
            target = merged.setdefault(get_row_key(row), {})
            for name, value in mapping.items():
                if target.get(name) is None:
                    target[name] = value
    names = list(fields) if SCORE in fields else [*fields, SCORE]
    make: Callable[[list[Any]], Any] = dict_maker(names)
    if any(hasattr(row, "_mapping") for row in (*rows_a, *rows_b)):
        from sqlalchemy.engine import result_tuple

        make = result_tuple(names)
    out: list[Any] = []
    for row_key in ranked_keys(list(merged), scores):
        values = merged[row_key]
        values[SCORE] = scores[row_key]
        out.append(make([values.get(name) for name in names]))
    return names, out


def dict_maker(names: list[str]) -> Callable[[list[Any]], dict[str, Any]]:
    """A function that turns a list of values into a dict with these names."""
    return lambda values: dict(zip(names, values))
