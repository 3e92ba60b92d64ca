"""The filtered-search plan, engine neutral: when to trust an ANN index, and when to search exactly.

An index answers "the ``k`` nearest rows" fast but approximately, and knows nothing of a filter. So a
search with an index runs by this plan (:func:`planned_search`):

* no index serves (column, metric) → exact search;
* no filter (no ``WHERE``, no distance range), or an index that filters while it scans
  (``filters_in_index``, e.g. pgvector ≥ 0.8's iterative scan) → the index, with ``num_candidate``
  candidates when the query names more than ``k``;
* a filter → count the rows it matches (or have the database estimate them): none match → no rows
  (when the count is exact); few match (``exact_search_max_rows`` or fewer) → exact search over them;
  many match → a candidate pool from the index, widened by the filter's selectivity
  (``k × total / matches × pool_overfetch + 20``), then filtered; a pool over ``max_pool`` → exact;
* whenever the index path yields fewer than ``k`` rows, the search is re-run exactly, so no result is
  ever lost to the index silently.

The engine supplies the three operations as :class:`SearchHooks` (the server engines implement them
in SQL; the embedded engine can implement them over an in-process index) and the numbers as a
:class:`PoolPolicy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from lookalike.engines.base import SearchRequest
    from lookalike.schema import TableSpec

__all__ = ["IndexScan", "PoolPolicy", "Rows", "SearchHooks", "is_filtered", "planned_search"]

Rows = list[dict[str, Any]]
"""Search results: the requested columns plus ``_distance``, one dict a row, nearest first."""


@dataclass(frozen=True)
class IndexScan:
    """How a search reads an ANN index: ``pool`` candidates from ``index`` (the engine's name for
    the kind of index), with the filter applied after taking them (``post_filter``) or within."""

    index: str
    pool: int
    post_filter: bool


@dataclass(frozen=True)
class PoolPolicy:
    """The numbers of the plan, which differ by engine."""

    exact_search_max_rows: int
    """A filter matching at most this many rows is searched exactly."""

    pool_overfetch: float = 3.0
    """A post-filtered candidate pool holds about this many times the rows the filter should keep."""

    max_pool: int = 10_000
    """Above this many candidates the index path costs more than an exact search."""

    exact_match_counts: bool = True
    """True when :meth:`SearchHooks.count_matches` counts rows (so 0 means none match), False for
    estimates."""

    filters_in_index: bool = False
    """True when the index applies the filter while it scans, so a filtered search needs no pool."""

    small_tables_exact: bool = False
    """True when a table of at most ``exact_search_max_rows`` rows (by :meth:`SearchHooks.count_matches`,
    which must then be cheap) is searched exactly even with no filter: pgvector's HNSW graph of a
    small table with many equal vectors or dead rows can lose its nearest row, and the exact scan
    costs little there."""

    def plan_pool(self, k: int, matches: float, total: float, want: int = 0) -> int | None:
        """Candidate pool for a post-filtered index search of ``k`` rows, or None to search exactly.

        ``matches``: rows the filter matches, ``total``: rows with a vector, ``want``: the pool the
        query asked for (``num_candidate``), a floor.
        """
        if matches <= self.exact_search_max_rows:
            return None
        pool = max(math.ceil(k * total / max(matches, 1) * self.pool_overfetch) + 20, want)
        return None if pool > self.max_pool else pool


class SearchHooks(Protocol):
    """The three searches a plan is made of; ``conn`` and ``spec`` are passed through untouched."""

    def exact_search(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> Rows:
        """Exact top-k over every row that passes the filter, never answered by an index."""
        ...

    def index_search(
        self, conn: Connection, spec: TableSpec, request: SearchRequest, scan: IndexScan
    ) -> Rows:
        """Top-k from the candidates ``scan`` takes from the index, ranked by exact distance."""
        ...

    def count_matches(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> tuple[float, float]:
        """(rows matching the filter, rows with a vector), counted or estimated."""
        ...


def is_filtered(request: SearchRequest) -> bool:
    """Whether rows can be left out by something other than distance rank (a filter or a range)."""
    return request.where is not None or request.distance_min is not None or request.distance_max is not None


def planned_search(
    hooks: SearchHooks,
    conn: Connection,
    spec: TableSpec,
    request: SearchRequest,
    index: str | None,
    policy: PoolPolicy,
) -> Rows:
    """Run ``request`` by the plan in the module docstring; ``index`` is the kind of index serving
    (column, metric), or None."""
    if index is None:
        return hooks.exact_search(conn, spec, request)
    k = request.limit
    want = request.num_candidate or 0
    if not is_filtered(request) or policy.filters_in_index:
        if policy.small_tables_exact:
            _, total = hooks.count_matches(conn, spec, replace(request, where=None))
            if total <= policy.exact_search_max_rows:
                return hooks.exact_search(conn, spec, request)
        rows = hooks.index_search(conn, spec, request, IndexScan(index, max(k, want), post_filter=False))
    else:
        matches, total = hooks.count_matches(conn, spec, request)
        if matches == 0 and policy.exact_match_counts:
            return []
        pool = policy.plan_pool(k, matches, total, want)
        if pool is None:
            return hooks.exact_search(conn, spec, request)
        rows = hooks.index_search(conn, spec, request, IndexScan(index, pool, post_filter=True))
    if len(rows) >= k:
        return rows[:k]
    # the index path came up short (or fewer rows match at all): the exact answer is complete
    return hooks.exact_search(conn, spec, request)
