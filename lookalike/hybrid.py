"""The immutable hybrid search builder: a vector search and a full-text search, fused into one list.

::

    table.search("red boots", search_type="hybrid").text_column("caption").limit(5).to_list()
    table.search("red boots", search_type="hybrid").fusion("weighted", vs_weight=0.7, fts_weight=0.3)
    table.search(search_type="hybrid").text("red boots").rerank(Reranker("bm25"), "caption")

**How it runs.** The query text is embedded by the vector column's embedder (or ``.vector(v)`` gives
the query vector) and searched; the same text is searched in the full-text column (``.text_column``,
or the table's only one). Both use the same filter, and each fetches a pool of ``max(4 × limit, 40)``
rows, so a row that one search ranks just below ``limit`` can still win on the other's strength. The
two pools are fused (:mod:`lookalike.fusion`) by the primary key and the best ``limit`` rows are kept.
The full-text search runs in a worker thread while the query is embedded and the vectors searched,
so a hybrid search costs about the slower of the two, not their sum (inside ``client.session()``,
whose one connection serves both, they run one after the other).

**Fusion.** ``.fusion("rrf", k=60)`` (the default) or ``.fusion("weighted", vs_weight=0.5,
fts_weight=0.5, normalize="minmax")``; both are described in :mod:`lookalike.fusion`. Unlike pytidb,
whose RRF without ``k`` used ``k = limit`` (its bug #8), ``k`` is 60 unless given.

**Rows** carry the table's columns (vector columns only when named in :meth:`HybridSearch.select`) and
``_score`` (the fused score, higher is better), ``_distance`` (the vector distance, ``None`` when
only the full-text search found the row) and ``_match_score`` (the full-text score, ``None`` when only
the vector search found it). After ``.rerank(...)``, ``_score`` is the reranker's score.

A table without a full-text column cannot be searched this way: that is a
:class:`~lookalike.errors.ConfigurationError` naming the table and how to add one.
"""

from __future__ import annotations

import contextvars
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.pool import SingletonThreadPool, StaticPool

from lookalike.builder import DEFAULT_LIMIT, SearchBuilder
from lookalike.errors import ConfigurationError, SchemaError, describe_item
from lookalike.fusion import DEFAULT_RRF_K, check_rrf_k, check_weights, rrf_fusion, weighted_fusion
from lookalike.rerank.base import rerank_pool
from lookalike.results import QueryResult
from lookalike.schema import FullTextSpec, TableSpec, normalize_metric
from lookalike.search import Search, pick_vector_column
from lookalike.session import Database
from lookalike.text_search import TextSearch, pick_text_column

if sys.version_info >= (3, 11):
    from typing import Self
else:  # Python 3.10: typing_extensions comes with pydantic, a dependency
    from typing_extensions import Self

__all__ = [
    "DEFAULT_LIMIT",
    "FUSION_METHODS",
    "HybridSearch",
    "HybridSearchResult",
    "concurrent_reads",
    "hybrid_pool",
]

FUSION_METHODS: dict[str, tuple[str, ...]] = {
    "rrf": ("k",),
    "weighted": ("vs_weight", "fts_weight", "normalize"),
}
"""Fusion methods and the parameters each takes."""


def concurrent_reads(database: Database) -> bool:
    """True when two threads reading at once get two connections from the engine's pool.

    SQLAlchemy's ``StaticPool`` and ``SingletonThreadPool`` hand out one shared connection (an
    in-memory SQLite database is one), which must not run two transactions at once.
    """
    return not isinstance(database.engine.sa_engine.pool, (StaticPool, SingletonThreadPool))


def hybrid_pool(limit: int) -> int:
    """Rows each of the two searches fetches for a hybrid search of ``limit``: ``max(4 × limit, 40)``."""
    return max(4 * limit, 40)


class HybridSearchResult(QueryResult):
    """Hybrid hits, best first: the table's columns plus ``_score``, ``_distance`` and ``_match_score``."""


class HybridSearch(SearchBuilder[HybridSearchResult]):
    """A hybrid (vector + full-text) search on one table; chain to configure, ``to_list()`` to run.

    Get it from ``table.search(text, search_type="hybrid")``. ``filter`` (both sides), ``limit``,
    ``select``, ``rerank`` (default column: the full-text one; it chooses from the best
    ``max(4 × limit, 40)`` fused rows) and the ``to_*`` methods are
    :class:`~lookalike.builder.SearchBuilder`'s.
    """

    _result_type = HybridSearchResult

    def __init__(self, spec: TableSpec, database: Database, query: Any = None, vector: Any = None) -> None:
        if not spec.fulltext:
            raise ConfigurationError(
                f"table {spec.name!r} has no full-text column, so a hybrid search has no words to match: "
                "build a full-text index with table.create_fts_index('<text column>') (or declare the "
                "column with FullTextField()), or use search_type='vector'"
            )
        if query is not None and not isinstance(query, str):
            raise ConfigurationError(
                f"a hybrid search's query is text (the words for the full-text side), got "
                f"{describe_item(query, limit=40)}; give a query vector with .vector(v)"
            )
        super().__init__(spec, database, query)
        self._query_vector: Any = vector
        self._vector_column: str | None = None
        self._text_column: str | None = None
        self._metric: str | None = None
        self._dmax: float | None = None
        self._num_candidate: int | None = None
        self._fusion: tuple[str, dict[str, Any]] = ("rrf", {"k": DEFAULT_RRF_K})

    def __repr__(self) -> str:
        return (
            f"<HybridSearch {describe_item(self._query, limit=40)} on {self._spec.name!r} "
            f"fusion={self._fusion[0]} limit={self._limit}>"
        )

    # ------------------------------------------------------------------ builder
    def text(self, query: str) -> Self:
        """The query text (pytidb's ``.text(...)``)."""
        if not isinstance(query, str):
            raise ConfigurationError(f"text() takes a string, got {describe_item(query, limit=40)}")
        return self._copy(_query=query)

    def vector(self, query_vector: Any) -> Self:
        """Search the vector side with this vector instead of embedding the text."""
        return self._copy(_query_vector=query_vector)

    def vector_column(self, name: str) -> Self:
        """The vector column (needed when the table has several)."""
        Search(self._spec, self._database, None, "vector").vector_column(name)
        return self._copy(_vector_column=name)

    def text_column(self, name: str) -> Self:
        """The full-text column (needed when the table has several)."""
        self._text_spec(name)
        return self._copy(_text_column=name)

    def distance_metric(self, metric: Any) -> Self:
        """The vector side's metric (default: the column's)."""
        return self._copy(_metric=normalize_metric(metric))

    def distance_threshold(self, threshold: float | None) -> Self:
        """The vector side keeps rows with ``_distance <= threshold``."""
        if threshold is not None:
            Search(self._spec, self._database, None, "vector").distance_threshold(threshold)
        return self._copy(_dmax=threshold)

    def num_candidate(self, n: int) -> Self:
        """Candidates the vector side's ANN index considers (see :meth:`Search.num_candidate`)."""
        Search(self._spec, self._database, None, "vector").num_candidate(n)
        return self._copy(_num_candidate=int(n))

    def fusion(self, method: str = "rrf", **params: Any) -> Self:
        """``"rrf"`` (``k=60``) or ``"weighted"`` (``vs_weight``, ``fts_weight``, ``normalize``)."""
        if method not in FUSION_METHODS:
            raise ConfigurationError(
                f"fusion method must be one of {', '.join(FUSION_METHODS)}, got {method!r}"
            )
        unknown = sorted(set(params) - set(FUSION_METHODS[method]))
        if unknown:
            raise ConfigurationError(
                f"fusion {method!r} takes {', '.join(FUSION_METHODS[method])}; unknown: {', '.join(unknown)}"
            )
        if method == "rrf":
            params = {"k": check_rrf_k(params.get("k"))}
        else:
            vw, tw = check_weights(params.get("vs_weight", 0.5), params.get("fts_weight", 0.5))
            normalize = params.get("normalize", "minmax")
            if normalize not in ("minmax", "atan"):
                raise ConfigurationError(f"fusion: normalize must be 'minmax' or 'atan', got {normalize!r}")
            params = {"vs_weight": vw, "fts_weight": tw, "normalize": normalize}
        return self._copy(_fusion=(method, params))

    # ------------------------------------------------------------------ running
    def _text_spec(self, name: str | None) -> FullTextSpec:
        try:
            return pick_text_column(self._spec, name, how="pick one with .text_column(name)")
        except SchemaError as exc:
            raise ConfigurationError(f"hybrid search: {exc}") from exc

    def _searches(self, text: str, columns: list[str] | None) -> tuple[Search, TextSearch]:
        pool = hybrid_pool(self._limit)
        if self._rerank is not None:
            pool = max(pool, rerank_pool(self._limit))
        if self._query_vector is not None:
            vs = Search(self._spec, self._database, self._query_vector, "vector")
        else:
            vs = Search(self._spec, self._database, text, "text")
        if self._vector_column is not None:
            vs = vs.vector_column(self._vector_column)
        if self._metric is not None:
            vs = vs.distance_metric(self._metric)
        if self._dmax is not None:
            vs = vs.distance_threshold(self._dmax)
        if self._num_candidate is not None:
            vs = vs.num_candidate(self._num_candidate)
        ts = TextSearch(self._spec, self._database, text).text_column(self._text_spec(self._text_column).name)
        if self._filters is not None:
            vs, ts = vs.filter(self._filters), ts.filter(self._filters)
        if columns is not None:
            vs, ts = vs.select(columns), ts.select(columns)
        return vs.limit(pool), ts.limit(pool)

    def _run(self) -> list[dict[str, Any]]:
        text = self._query
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError(
                "a hybrid search needs query text: table.search('words', search_type='hybrid') or .text('words')"
            )
        key = self._spec.primary_key
        rerank_column = None
        if self._rerank is not None:
            self._rerank.text_query(text)
            rerank_column = self._rerank.column or self._text_spec(self._text_column).name
        columns = None
        if self._columns is not None:  # the key and the reranker's column travel even when not selected
            columns = list(dict.fromkeys([*self._columns, key, *([rerank_column] if rerank_column else [])]))
        vs, ts = self._searches(text, columns)
        ts.build_request()  # a query without words fails before anything runs
        vector_rows, text_rows = self._both(vs, ts)
        method, params = self._fusion
        if method == "rrf":
            fused = rrf_fusion(vector_rows, text_rows, key=key, k=params["k"])
        else:
            vec = pick_vector_column(
                self._spec, self._vector_column, how="pick one with .vector_column(name)"
            )
            metric = self._metric or vec.distance_metric
            fused = weighted_fusion(vector_rows, text_rows, key=key, metric=metric, **params)
        if self._rerank is not None and rerank_column is not None:
            fused = fused[: rerank_pool(self._limit)]  # the reranker chooses from the best fused rows
            fused = self._rerank.apply(text, fused, rerank_column, self._limit)
        fused = fused[: self._limit]
        if self._columns is not None:
            keep = {*self._columns, "_score", "_distance", "_match_score"}
            fused = [{k: v for k, v in row.items() if k in keep} for row in fused]
        return fused

    def _both(self, vs: Search, ts: TextSearch) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Run the two searches: at once, the full-text one in a worker thread while this thread embeds
        the query and searches vectors, unless a session's single connection (or an engine whose
        connections are one shared connection, as an in-memory SQLite's are) must serve both."""
        if self._database.in_session or not concurrent_reads(self._database):
            return vs.to_list(), ts.to_list()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookalike-hybrid") as pool:
            text_rows = pool.submit(contextvars.copy_context().run, ts.to_list)
            vector_rows = vs.to_list()
            return vector_rows, text_rows.result()
