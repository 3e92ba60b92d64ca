"""The part every search builder shares: :class:`SearchBuilder`.

A builder is immutable: each configuring call (``filter``, ``limit``, ``select``, ``rerank`` and the
subclass's own) returns a changed copy, so one half-configured search can be the start of several.
:class:`~lookalike.search.Search` (vector), :class:`~lookalike.text_search.TextSearch` (full-text)
and :class:`~lookalike.hybrid.HybridSearch` (both, fused) build on it; each fixes its result type
and implements ``_run()``, the rows the search returns.
"""

from __future__ import annotations

import copy
import logging
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import numpy as np
import sqlalchemy as sa

from lookalike.errors import ConfigurationError, SchemaError
from lookalike.filters import compile_filter
from lookalike.rerank.base import RerankStep
from lookalike.results import QueryResult
from lookalike.schema import TableSpec
from lookalike.session import Database

if sys.version_info >= (3, 11):
    from typing import Self
else:  # Python 3.10: typing_extensions comes with pydantic, a dependency
    from typing_extensions import Self

__all__ = ["DEFAULT_LIMIT", "SearchBuilder", "SearchHit"]

logger = logging.getLogger("lookalike.search")

DEFAULT_LIMIT = 10
"""Rows a search returns unless ``.limit(k)`` says otherwise."""

ResultT = TypeVar("ResultT", bound=QueryResult)


class SearchHit:
    """One search hit as pytidb's ``to_pydantic()`` gives it: the row as a model instance in
    ``hit``, with ``distance``, ``match_score``, ``score`` and ``similarity_score`` beside it.

    Other attributes are the hit's own (``result.caption`` is ``result.hit.caption``).
    """

    __slots__ = ("distance", "hit", "match_score", "score", "similarity_score")

    def __init__(
        self,
        hit: Any,
        *,
        distance: float | None = None,
        match_score: float | None = None,
        score: float | None = None,
        similarity_score: float | None = None,
    ) -> None:
        self.hit = hit
        self.distance = distance
        self.match_score = match_score
        self.score = score
        self.similarity_score = similarity_score
        """How similar the hit is, higher is better: ``1 - distance`` for cosine (as pytidb), and the
        metric's own similarity otherwise (the vector search's ``_score`` before any rerank)."""

    # the underscore names are the dict keys of to_list(), kept so code written for either form works
    @property
    def _distance(self) -> float | None:
        return self.distance

    @property
    def _score(self) -> float | None:
        return self.score

    @property
    def _match_score(self) -> float | None:
        return self.match_score

    def __getattr__(self, name: str) -> Any:
        if name == "hit":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.hit, name)

    def __repr__(self) -> str:
        return f"SearchHit(hit={self.hit!r}, distance={self.distance!r}, score={self.score!r})"


class SearchBuilder(Generic[ResultT]):
    """The shared half of a search builder: the query, filter, limit, selected columns and reranker.

    Subclasses set ``_result_type`` and implement :meth:`_run`.
    """

    _result_type: type[ResultT]  # set by each subclass

    def __init__(self, spec: TableSpec, database: Database, query: Any) -> None:
        self._spec = spec
        self._database = database
        self._query = query
        self._filters: Any = None
        self._limit = DEFAULT_LIMIT
        self._columns: list[str] | None = None
        self._rerank: RerankStep | None = None  # .rerank(...)
        self._debug = False  # .debug(): log the plan and the SQL each run executes

    def _copy(self, **changes: Any) -> Self:
        new = copy.copy(self)
        for key, value in changes.items():
            setattr(new, key, value)
        return new

    # ------------------------------------------------------------------ builder
    def filter(self, filters: Any, prefilter: bool | None = None) -> Self:
        """Only rows matching a dict filter, a SQL string or a SQLAlchemy expression.

        Filtering is always exact: the filter is applied in the same query as the search, so
        ``limit`` rows come back whenever that many match (``prefilter`` is accepted for pytidb).
        """
        compile_filter(filters, self._spec.sa_table, json_contains=self._database.engine.json_contains)
        return self._copy(_filters=filters)

    def limit(self, k: int) -> Self:
        """How many rows to return (default 10)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ConfigurationError(f"limit must be a positive integer, got {k!r}")
        return self._copy(_limit=int(k))

    def select(self, *columns: str | Sequence[str]) -> Self:
        """Return only these columns (plus the search's own fields: ``_score``, and ``_distance`` /
        ``_match_score`` where the search has them)."""
        names: list[str] = []
        for c in columns:
            names.extend([c] if isinstance(c, str) else list(c))
        table = self._spec.sa_table
        for n in names:
            if n not in table.c:
                raise SchemaError(f"unknown column {n!r} in select(); columns: {', '.join(table.c.keys())}")
        return self._copy(_columns=names or None)

    def text(self, query_text: str) -> Self:
        """Search for this text (pytidb's builder form of ``search("words")``)."""
        if not isinstance(query_text, str) or not query_text.strip():
            raise ConfigurationError(f"text() needs a non-empty string, got {query_text!r}")
        return self._copy(_query=query_text)

    def debug(self, flag: bool = True) -> Self:
        """Log, at INFO on the ``lookalike.search`` logger, how each run of this search is answered:
        the plan and every SQL statement it executes (with its parameters, shortened)."""
        if not isinstance(flag, bool):
            raise ConfigurationError(f"debug() takes True or False, got {flag!r}")
        return self._copy(_debug=flag)

    @property
    def reranks(self) -> bool:
        """True when a reranker orders the hits (it may call a model: a blocking step)."""
        return self._rerank is not None

    def rerank(
        self,
        reranker: Any,
        column: str | None = None,
        *,
        on_error: str = "raise",
        query: str | None = None,
    ) -> Self:
        """Re-order the hits with ``reranker`` (see :mod:`lookalike.rerank`) by how well ``column``
        matches the query text (default column: a vector search's text source field, a full-text or
        hybrid search's full-text column).

        The search fetches ``max(4 × limit, 40)`` hits for the reranker to choose ``limit`` from;
        ``_score`` becomes the reranker's score. A failing reranker raises an ``EngineError``, or with
        ``on_error="fallback"`` the search's own order is kept (with a warning). ``query=`` gives the
        text to rank against when the search is by image or vector.
        """
        step = RerankStep.build(reranker, column, on_error, query, self._spec.sa_table.c.keys())
        return self._copy(_rerank=step)

    # ------------------------------------------------------------------ running
    def _output_columns(self, rerank_column: str | None = None) -> list[str]:
        """The columns to read: the selected ones (default: all but vectors), plus the reranker's
        column, which it reads even when ``select()`` left it out."""
        spec = self._spec
        columns = self._columns or [c for c in spec.sa_table.columns.keys() if c not in spec.vectors]
        if rerank_column is not None:
            columns = list(dict.fromkeys([*columns, rerank_column]))
        return columns

    def _apply_rerank(self, rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
        """The reranker's best ``limit`` of ``rows``, without ``column`` when it was read only for it."""
        assert self._rerank is not None
        rows = self._rerank.apply(self._query, rows, column, self._limit)
        if self._columns and column not in self._columns:
            rows = [{k: v for k, v in row.items() if k != column} for row in rows]
        return rows

    def _run(self) -> list[dict[str, Any]]:
        """The rows the search returns, best first."""
        raise NotImplementedError

    def _plan(self) -> str | None:
        """What a run will do, in words, for :meth:`debug` (None: the SQL says it all)."""
        return None

    @contextmanager
    def _logging_sql(self) -> Iterator[None]:
        """While the block runs, log each statement this thread sends to the database."""
        me = threading.get_ident()

        def log(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            if threading.get_ident() == me:  # other threads' queries are not this search's
                shown = repr(params)
                shown = shown if len(shown) <= 300 else shown[:300] + "…"
                logger.info("search on %r runs:\n%s\nparameters: %s", self._spec.name, statement, shown)

        sa_engine = self._database.engine.sa_engine
        sa.event.listen(sa_engine, "before_cursor_execute", log)
        try:
            yield
        finally:
            sa.event.remove(sa_engine, "before_cursor_execute", log)

    def execute(self) -> ResultT:
        """Run the search."""
        if not self._debug:
            return self._result_type(self._run(), self._spec.model)
        plan = self._plan()
        if plan is not None:
            logger.info("search on %r: %s", self._spec.name, plan)
        with self._logging_sql():
            return self._result_type(self._run(), self._spec.model)

    def to_list(self) -> list[dict[str, Any]]:
        """Hits as dicts, best first."""
        return self.execute().to_list()

    def to_pandas(self) -> Any:
        """Hits as a pandas DataFrame."""
        return self.execute().to_pandas()

    def to_arrow(self) -> Any:
        """Hits as a ``pyarrow.Table`` (``lookalike[arrow]``): selected vector columns as fixed-size
        float32 lists, ``_distance`` / ``_score`` kept."""
        return self.execute().to_arrow(vector_dimensions=self._vector_dimensions())

    def to_polars(self) -> Any:
        """Hits as a ``polars.DataFrame`` (``lookalike[polars]``), typed as :meth:`to_arrow`'s."""
        return self.execute().to_polars(vector_dimensions=self._vector_dimensions())

    def _vector_dimensions(self) -> dict[str, int]:
        """The table's vector columns and their sizes, for typing them in Arrow and polars."""
        return {name: vec.dimensions for name, vec in self._spec.vectors.items() if vec.dimensions}

    def to_pydantic(self, model: type | bool | None = None, *, with_score: bool = True) -> list[Any]:
        """Hits as pytidb gives them: :class:`SearchHit` objects (``hit``, ``distance``, ``score``,
        ``similarity_score``), or with ``with_score=False`` the bare model instances.

        ``model`` defaults to the table's model. Vector fields the model requires are read for the
        hits (a search leaves vectors out otherwise), so such a model validates.
        """
        if isinstance(model, bool):  # pytidb's positional form: to_pydantic(False)
            with_score = model
            model = None
        target = model or self._spec.model
        search = self
        required = _required_vectors(target, self._spec.vectors)
        if required:
            search = self._copy(_columns=[*self._output_columns(), *required])
        result = search.execute()
        rows = list(result)
        models = self._with_relationships(target, result.to_pydantic(target))
        if not with_score:
            return models
        return [
            SearchHit(
                obj,
                distance=row.get("_distance"),
                match_score=row.get("_match_score"),
                score=row.get("_score"),
                similarity_score=self._similarity(row.get("_distance")),
            )
            for obj, row in zip(models, rows)
        ]

    def _with_relationships(self, target: Any, models: list[Any]) -> list[Any]:
        """The hits with their SQLModel relationships loaded, as pytidb's are: read again through the
        ORM by primary key, in this search's transaction, then detached."""
        relationships = getattr(target, "__sqlmodel_relationships__", None)
        table = getattr(target, "__table__", None)
        if not relationships or table is None or not models or len(table.primary_key.columns) != 1:
            return models
        from sqlmodel import Session, select

        pk = next(iter(table.primary_key.columns))
        ids = [getattr(m, pk.name, None) for m in models]
        with self._database.connection(write=False) as conn, Session(bind=conn) as session:
            loaded = {getattr(o, pk.name): o for o in session.exec(select(target).where(pk.in_(ids)))}
            for obj in loaded.values():
                for name in relationships:
                    getattr(obj, name)  # a lazy relationship loads now, while the session is open
            session.expunge_all()
        return [loaded.get(i, m) for i, m in zip(ids, models)]

    def _similarity(self, distance: float | None) -> float | None:
        """The similarity a distance means (pytidb: ``1 - distance``); vector searches know their metric."""
        return None if distance is None else 1.0 - distance

    def to_rows(self) -> list[tuple[Any, ...]]:
        """Hits as tuples."""
        return self.execute().to_rows()


def _required_vectors(model: Any, vectors: Any) -> list[str]:
    """The vector columns ``model`` can't be validated without."""
    fields = getattr(model, "model_fields", None) or {}
    return [name for name in vectors if name in fields and fields[name].is_required()]
