"""The part every search builder shares: :class:`SearchBuilder`.

A builder is immutable: each configuring call (``filter``, ``limit``, ``select``, ``rerank`` and the
subclass's own) returns a changed copy, so one half-configured search can be the start of several.
:class:`~lookalike.search.Search` (vector), :class:`~lookalike.text_search.TextSearch` (full-text)
and :class:`~lookalike.hybrid.HybridSearch` (both, fused) build on it; each fixes its result type
and implements ``_run()``, the rows the search returns.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import numpy as np

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

__all__ = ["DEFAULT_LIMIT", "SearchBuilder"]

DEFAULT_LIMIT = 10
"""Rows a search returns unless ``.limit(k)`` says otherwise."""

ResultT = TypeVar("ResultT", bound=QueryResult)


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

    def execute(self) -> ResultT:
        """Run the search."""
        return self._result_type(self._run(), self._spec.model)

    def to_list(self) -> list[dict[str, Any]]:
        """Hits as dicts, best first."""
        return self.execute().to_list()

    def to_pandas(self) -> Any:
        """Hits as a pandas DataFrame."""
        return self.execute().to_pandas()

    def to_pydantic(self, model: type | None = None) -> list[Any]:
        """Hits as model instances (``_score`` and the search's other fields set as attributes)."""
        return self.execute().to_pydantic(model)

    def to_rows(self) -> list[tuple[Any, ...]]:
        """Hits as tuples."""
        return self.execute().to_rows()
