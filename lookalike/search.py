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
from lookalike.errors import ColumnChoiceError, ConfigurationError, describe_item
from lookalike.examples import examples_vector
from lookalike.filters import compile_filter
from lookalike.fusion import DISTANCE as DISTANCE_LABEL
from lookalike.fusion import MATCH_SCORE as MATCH_SCORE_LABEL
from lookalike.fusion import SCORE as SCORE_LABEL
from lookalike.rerank.base import RerankStep, rerank_pool
from lookalike.results import QueryResult
from lookalike.schema import TableSpec, VectorSpec, normalize_metric
from lookalike.session import Database
from lookalike.types import check_source_type

if sys.version_info >= (3, 11):
    from typing import Self
else:  # Python 3.10: typing_extensions comes with pydantic, a dependency
    from typing_extensions import Self

__all__ = [
    "DEFAULT_LIMIT",
    "DISTANCE_LABEL",
    "MATCH_SCORE_LABEL",
    "SCORE_LABEL",
    "Search",
    "SearchResult",
    "VectorColumns",
    "pick_vector_column",
]


class VectorColumns(list[Any]):
    """``Table.vector_columns``: the vector columns as SQLAlchemy ``Column`` objects, a list as in
    pytidb (``table.vector_columns[0].name``).

    Indexing by name (``vector_columns["image_vec"]``), ``keys()``, ``values()`` and ``items()``
    give lookalike's :class:`~lookalike.schema.VectorSpec` settings, as the earlier dict did.
    """

    def __init__(self, spec: TableSpec) -> None:
        super().__init__(spec.sa_table.c[name] for name in spec.vectors)
        self._specs = dict(spec.vectors)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            if key not in self._specs:
                raise KeyError(f"{key!r} is not a vector column; vector columns: {list(self._specs)}")
            return self._specs[key]
        return super().__getitem__(key)

    def __contains__(self, item: object) -> bool:
        return item in self._specs if isinstance(item, str) else super().__contains__(item)

    def keys(self) -> list[str]:
        """The vector columns' names."""
        return list(self._specs)

    def values(self) -> list[VectorSpec]:
        """The vector columns' settings."""
        return list(self._specs.values())

    def items(self) -> list[tuple[str, VectorSpec]]:
        """(name, settings) pairs."""
        return list(self._specs.items())


def pick_vector_column(spec: TableSpec, name: str | None, *, how: str) -> VectorSpec:
    """The vector column called ``name``, or the table's only one.

    ``how`` tells the user how to name a column when the table has several (it differs between
    ``Table.vector_field(name)`` and ``Search.vector_column(name)``).
    """
    vectors = spec.vectors
    if name is not None:
        if name not in vectors:
            what = "it is not a vector column" if name in spec.sa_table.c else "the table has no such column"
            raise ColumnChoiceError(
                f"Invalid vector column {name!r} of {spec.name!r}: {what}; vector columns: {list(vectors)}"
            )
        return vectors[name]
    if not vectors:
        raise ColumnChoiceError(f"table {spec.name!r} has no vector column")
    if len(vectors) > 1:
        raise ColumnChoiceError(
            f"table {spec.name!r} has more than one vector column ({', '.join(vectors)}); {how}"
        )
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
        self._query_vector: Any = None  # .vector(...): search by this, keep the text for a reranker

    def __repr__(self) -> str:
        return (
            f"<Search {self._kind}={_short(self._query)} on {self._spec.name!r} column={self._column} "
            f"metric={self._metric} limit={self._limit}>"
        )

    # ------------------------------------------------------------------ builder
    def vector_column(self, name: str) -> Self:
        """Search this vector column (needed when the table has several)."""
        if not isinstance(name, str) or not name:
            raise ColumnChoiceError(f"Invalid vector column name {name!r}: give the column's name")
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

    def vector(self, query_vector: Any) -> Self:
        """Search by this vector (a list or numpy array); a text query given before stays the
        reranker's text."""
        try:
            arr = np.asarray(query_vector, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"vector() needs a list of numbers, got {_short(query_vector)}") from exc
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ConfigurationError(
                f"vector() needs a non-empty flat list of finite numbers, got {_short(query_vector)}"
            )
        if self._query is None or self._kind == "vector":
            return self._copy(_query=query_vector, _kind="vector", _query_vector=None)
        return self._copy(_query_vector=query_vector)

    def text(self, query_text: str) -> Self:
        """Search by this text, embedded as text even when it looks like a path or URL."""
        return super().text(query_text)._copy(_kind="text", _query_vector=None)

    def skip_null_vectors(self, flag: bool = True) -> Self:
        """Accepted for pytidb: rows without a vector have no distance and are never hits, on every
        engine, whatever the flag (pytidb needs it because MySQL sorts NULL distances first)."""
        if not isinstance(flag, bool):
            raise ConfigurationError(f"skip_null_vectors() takes True or False, got {flag!r}")
        return self._copy()

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
    @property
    def needs_embedding(self) -> bool:
        """True when :meth:`query_vector` runs a model (the query is text, an image or examples)."""
        return self._query_vector is None and self._kind != "vector"

    def query_vector(self) -> np.ndarray:
        """The query as a vector (embedding it when it is text or an image)."""
        vec = self._vector(self._column)
        if self._query_vector is not None:
            return check_vector(
                self._query_vector, vec.dimensions, item=self._query_vector, what="query vector"
            )
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

    def _request(self, query: np.ndarray) -> SearchRequest:
        """The engine's request for this search and query vector."""
        vec = self._vector(self._column)
        engine = self._database.engine
        where = compile_filter(self._filters, self._spec.sa_table, json_contains=engine.json_contains)
        rerank_column = None if self._rerank is None else self._rerank_column(self._rerank)
        return SearchRequest(
            column=vec.name,
            vector=query,
            metric=self._metric or vec.distance_metric,
            limit=self._limit if self._rerank is None else rerank_pool(self._limit),
            distance_min=self._dmin,
            distance_max=self._dmax,
            where=where,
            columns=self._output_columns(rerank_column),
            num_candidate=self._num_candidate,
        )

    def compiled_vector_query_sql(self) -> str | None:
        """The SQL of this search's exact answer, with the query vector written in (as pytidb's).

        Where an ANN index serves the search the engine may take candidates from it first;
        :meth:`debug` logs what actually runs. None on the embedded engine, where no SQL computes
        a distance (numpy or the IVF index does; :meth:`debug` says which).
        """
        engine = self._database.engine
        statement = getattr(engine, "exact_statement", None)  # the server engines' exact SQL
        if statement is None:
            return None
        stmt = statement(self._spec, self._request(self.query_vector()))
        return str(stmt.compile(bind=engine.sa_engine, compile_kwargs={"literal_binds": True}))

    def _plan(self) -> str:
        vec = self._vector(self._column)
        engine = self._database.engine
        with self._database.connection(write=False) as conn:
            indexed = engine.has_vector_index(conn, self._spec, vec.name)
        metric = self._metric or vec.distance_metric
        pool = self._num_candidate or "the default"
        if getattr(engine, "exact_statement", None) is None:  # embedded: numpy or the IVF index
            if not indexed:
                return f"exact scan of every {vec.name!r} vector ({metric}) in memory, top {self._limit}"
            nprobe = vec.index_params.get("nprobe", "the default")
            return (
                f"IVF index on {vec.name!r} ({metric}): nprobe {nprobe}, a candidate pool of {pool} "
                "re-ranked exactly (an exact scan until the index is built, at its min_rows rows, "
                "and for a filter matching few rows)"
            )
        if indexed:
            return (
                f"ANN index on {vec.name!r} may serve the search ({metric}, candidates: {pool}); "
                "a small table and a filter matching few rows are searched exactly; SQL follows"
            )
        return f"exact SQL over every {vec.name!r} vector ({metric}); SQL follows"

    def _similarity(self, distance: float | None) -> float | None:
        if distance is None:
            return None
        metric = self._metric or self._vector(self._column).distance_metric
        return float(score_from_distance(metric, np.array([distance]))[0])

    def _vector_rows(self) -> list[dict[str, Any]]:
        spec = self._spec
        vec = self._vector(self._column)
        engine = self._database.engine
        metric = self._metric or vec.distance_metric
        searching_by_vector = self._kind == "vector" or self._query_vector is not None
        loading = None if searching_by_vector else engine.prefetch(spec, vec.name)
        try:
            query = self.query_vector()
        finally:
            if loading is not None:
                loading.join()
        request = self._request(query)
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
