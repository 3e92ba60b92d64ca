"""The immutable search builder: each call returns a new :class:`Search`.

::

    table.search("orange tabby cat").filter({"album": "pets"}).limit(5).to_list()

Rows carry ``_distance`` (smaller is nearer, in the metric's own units) and ``_score`` (higher is more
similar, for every metric):

========================  ======================  ============================
metric                    ``_distance``           ``_score``
========================  ======================  ============================
``cosine``                ``1 - cos(a, b)``       ``1 - _distance`` (cosine similarity)
``l2``                    ``‖a - b‖₂``            ``1 / (1 + _distance)``
``inner_product``         ``-(a · b)``            ``-_distance`` (the inner product)
``l1``                    ``Σ |aᵢ - bᵢ|``         ``1 / (1 + _distance)``
========================  ======================  ============================

Vector columns are left out of results unless named in :meth:`Search.select`.

Full-text searches (``search_type="fulltext"``, :class:`lookalike.text_search.TextSearch`) carry
``_score`` only (no ``_distance`` key): the relevance of the row to the query's words, higher is
better, comparable within one search only:

========================  ============================================================
engine                    full-text ``_score``
========================  ============================================================
embedded (SQLite FTS5)    ``-bm25()``: BM25 with k1 = 1.2, b = 0.75 (> 0)
PostgreSQL                ``ts_rank(tsvector, tsquery, 1)``: term frequency over
                          1 + log(length), no IDF (PostgreSQL has no BM25)
TiDB                      ``FTS_MATCH_WORD(query, column)``: TiDB's BM25
========================  ============================================================
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from lookalike.builder import DEFAULT_LIMIT, SearchBuilder
from lookalike.embeddings.base import check_vector
from lookalike.engines.base import SearchRequest, score_from_distance
from lookalike.errors import ConfigurationError, SchemaError, describe_item
from lookalike.examples import examples_vector
from lookalike.filters import compile_filter
from lookalike.rerank.base import RerankStep, rerank_pool
from lookalike.results import QueryResult
from lookalike.schema import TableSpec, VectorSpec, normalize_metric
from lookalike.session import Database
from lookalike.types import check_source_type

if sys.version_info >= (3, 11):
    from typing import Self
else:  # Python 3.10: typing_extensions comes with pydantic, a dependency
    from typing_extensions import Self

__all__ = ["DEFAULT_LIMIT", "Search", "SearchResult", "pick_vector_column"]


def pick_vector_column(spec: TableSpec, name: str | None, *, how: str) -> VectorSpec:
    """The vector column called ``name``, or the table's only one.

    ``how`` tells the user how to name a column when the table has several (it differs between
    ``Table.vector_field(name)`` and ``Search.vector_column(name)``).
    """
    vectors = spec.vectors
    if name is not None:
        if name not in vectors:
            raise SchemaError(
                f"{name!r} is not a vector column of {spec.name!r}; vector columns: {list(vectors)}"
            )
        return vectors[name]
    if not vectors:
        raise SchemaError(f"table {spec.name!r} has no vector column")
    if len(vectors) > 1:
        raise SchemaError(f"table {spec.name!r} has several vector columns ({', '.join(vectors)}); {how}")
    return next(iter(vectors.values()))


class SearchResult(QueryResult):
    """Search hits, nearest first: dicts with the table's columns plus ``_distance`` and ``_score``."""


class Search(SearchBuilder[SearchResult]):
    """A vector search on one table; configure it by chaining, run it with ``to_list()`` and friends.

    Get it from :meth:`lookalike.Table.search`; it holds the table's definition and database, not the
    table itself. ``filter``, ``limit``, ``select``, ``rerank`` and the ``to_*`` methods are
    :class:`~lookalike.builder.SearchBuilder`'s.
    """

    _result_type = SearchResult

    def __init__(self, spec: TableSpec, database: Database, query: Any, kind: str) -> None:
        super().__init__(spec, database, query)
        self._kind = kind  # "auto" | "text" | "image" | "vector" | "examples" (query: Examples)
        self._column: str | None = None
        self._metric: str | None = None
        self._dmin: float | None = None
        self._dmax: float | None = None
        self._num_candidate: int | None = None

    def __repr__(self) -> str:
        return (
            f"<Search {self._kind}={_short(self._query)} on {self._spec.name!r} column={self._column} "
            f"metric={self._metric} limit={self._limit}>"
        )

    # ------------------------------------------------------------------ builder
    def vector_column(self, name: str) -> Self:
        """Search this vector column (needed when the table has several)."""
        self._vector(name)
        return self._copy(_column=name)

    def distance_metric(self, metric: str) -> Self:
        """``"cosine"``, ``"l2"``, ``"inner_product"`` or ``"l1"`` (pytidb's upper-case names work too)."""
        return self._copy(_metric=normalize_metric(metric))

    def distance_threshold(self, threshold: float | None) -> Self:
        """Keep rows with ``_distance <= threshold`` (0 keeps exact matches only)."""
        if threshold is None:
            return self._copy(_dmax=None)
        return self._copy(_dmax=_number(threshold, "distance_threshold"))

    def distance_range(self, lower: float | None = None, upper: float | None = None) -> Self:
        """Keep rows with ``lower <= _distance <= upper`` (either bound may be None)."""
        lo = None if lower is None else _number(lower, "distance_range lower bound")
        hi = None if upper is None else _number(upper, "distance_range upper bound")
        if lo is not None and hi is not None and lo > hi:
            raise ConfigurationError(f"distance_range: lower bound {lo} is above upper bound {hi}")
        return self._copy(_dmin=lo, _dmax=hi)

    def num_candidate(self, n: int) -> Self:
        """Candidates an ANN index search considers (exact search ignores it).

        On PostgreSQL this is the HNSW search beam, ``hnsw.ef_search``, for this query (by default
        ``max(100, 4 × limit)``, at most 1,000); on TiDB, which has no search-time beam setting, it
        is how many rows are taken from the index before ranking; on the embedded engine's IVF index
        it is the pool re-ranked exactly, and the scan covers 8 rows per candidate (recall on hard,
        unclustered data: 0.76 by default, 0.98 with 1,000 at 20k rows).
        """
        if n <= 0:
            raise ConfigurationError(f"num_candidate must be positive, got {n!r}")
        return self._copy(_num_candidate=int(n))

    def _rerank_column(self, step: RerankStep) -> str:
        if step.column is not None:
            return step.column
        vec = self._vector(self._column)
        if vec.source_field is None or vec.source_type == "image":
            raise ConfigurationError(
                f"rerank: vector column {vec.name!r} has no text source field; name the text column "
                "to rerank on: .rerank(reranker, 'caption')"
            )
        return vec.source_field

    # ------------------------------------------------------------------ running
    def query_vector(self) -> np.ndarray:
        """The query as a vector (embedding it when it is text or an image)."""
        vec = self._vector(self._column)
        if self._kind == "vector":
            return check_vector(self._query, vec.dimensions, item=self._query, what="query vector")
        if self._kind == "examples":  # several examples, combined (lookalike.examples)
            return examples_vector(self._query, vec)
        if vec.embed_fn is None:
            raise ConfigurationError(
                f"vector column {vec.name!r} has no embedding function: search it with a vector "
                "(search(vector=[...])), or open the table with embed_fn="
            )
        out = vec.embed_fn.embed_query(self._query, source_type=check_source_type(self._kind))
        return check_vector(out, vec.dimensions, item=self._query, what="query embedding")

    def _vector(self, name: str | None) -> VectorSpec:
        return pick_vector_column(self._spec, name, how="pick one with .vector_column(name)")

    def _vector_rows(self) -> list[dict[str, Any]]:
        spec = self._spec
        vec = self._vector(self._column)
        metric = self._metric or vec.distance_metric
        engine = self._database.engine
        loading = engine.prefetch(spec, vec.name) if self._kind != "vector" else None
        try:
            query = self.query_vector()
        finally:
            if loading is not None:
                loading.join()
        where = compile_filter(self._filters, spec.sa_table, json_contains=engine.json_contains)
        rerank_column = None if self._rerank is None else self._rerank_column(self._rerank)
        request = SearchRequest(
            column=vec.name,
            vector=query,
            metric=metric,
            limit=self._limit if self._rerank is None else rerank_pool(self._limit),
            distance_min=self._dmin,
            distance_max=self._dmax,
            where=where,
            columns=self._output_columns(rerank_column),
            num_candidate=self._num_candidate,
        )
        with self._database.connection(write=False) as conn:
            rows = engine.vector_search(conn, spec, request)
        if rows:
            scores = score_from_distance(metric, np.array([r["_distance"] for r in rows]))
            for row, score in zip(rows, scores.tolist()):
                row["_score"] = score
                for name in spec.vectors:
                    if isinstance(row.get(name), np.ndarray):
                        row[name] = row[name].tolist()
        return rows

    def _run(self) -> list[dict[str, Any]]:
        if self._rerank is not None:  # a search that cannot be reranked fails before it runs
            self._rerank.text_query(self._query)
        rows = self._vector_rows()
        if self._rerank is not None:
            rows = self._apply_rerank(rows, self._rerank_column(self._rerank))
        return rows


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ConfigurationError(f"{what} must be a number, got {value!r}")
    if not np.isfinite(value):
        raise ConfigurationError(f"{what} must be finite, got {value!r}")
    return float(value)


def _short(value: Any) -> str:
    return describe_item(value, limit=40)
