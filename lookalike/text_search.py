"""The immutable full-text search builder: each call returns a new :class:`TextSearch`.

::

    table.search("red leather boots", search_type="fulltext").text_column("caption").limit(5).to_list()

Rows carry the table's columns (vector columns only when named in :meth:`TextSearch.select`) and
``_score``, the relevance (higher is better; no ``_distance`` key). See :mod:`lookalike.search` for
what ``_score`` means on each engine.

**Query text is words.** Without :meth:`TextSearch.raw`, the query is cut into words (runs of
letters and digits, :func:`lookalike.engines.base.query_words`) and rows containing *any* of them
are returned, best first (OR semantics, so a long natural-language query still finds something).
Quotes, ``*``, ``:``, ``(``, ``-``, ``NEAR``, ``AND``/``OR``/``NOT`` are ordinary words or separators,
never operators. ``.raw()`` passes the query to the engine's own syntax (FTS5 ``MATCH`` on the
embedded engine, ``to_tsquery`` on PostgreSQL); a syntax error there is a
:class:`~lookalike.errors.ConfigurationError`. A query with no words raises one too.

**Rerank.** ``.rerank(reranker, column)`` (default column: the searched one) fetches
``max(4 × limit, 40)`` BM25 hits and lets the reranker keep ``limit`` of them, ranked against the query
text (``query=`` gives other text, e.g. for a ``.raw()`` query); ``_score`` becomes its score.

**The engine contract** (for builders that run full-text search themselves, such as hybrid search)::

    request = TextSearch(spec, database, "red boots").text_column("caption").limit(20).build_request()
    with database.connection(write=False) as conn:
        rows = database.engine.text_search(conn, spec, request)   # list of dicts with "_score"

``build_request()`` returns a :class:`~lookalike.engines.base.TextSearchRequest` (``column``,
``query``, ``limit``, ``where``, ``columns``, ``raw``); ``Engine.create_fts_index(conn, spec,
column, language)`` and ``Engine.has_fts_index(conn, spec, column)`` build and find the index.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from lookalike.builder import DEFAULT_LIMIT, SearchBuilder
from lookalike.engines.base import TextSearchRequest, query_words
from lookalike.errors import ColumnChoiceError, ConfigurationError, describe_item
from lookalike.filters import compile_filter
from lookalike.rerank.base import rerank_pool
from lookalike.results import QueryResult
from lookalike.schema import FullTextSpec, TableSpec
from lookalike.session import Database

if sys.version_info >= (3, 11):
    from typing import Self
else:  # Python 3.10: typing_extensions comes with pydantic, a dependency
    from typing_extensions import Self

__all__ = ["DEFAULT_LIMIT", "TextSearch", "TextSearchResult", "pick_text_column"]


def pick_text_column(spec: TableSpec, name: str | None, *, how: str) -> FullTextSpec:
    """The full-text column called ``name``, or the table's only one.

    ``how`` tells the user how to name a column when the table has several.
    """
    columns = spec.fulltext
    if name is not None:
        if name in columns:
            return columns[name]
        if name in spec.sa_table.c:
            raise ColumnChoiceError(
                f"column {name!r} of {spec.name!r} has no full-text index; build one with "
                f"table.create_fts_index({name!r})"
            )
        raise ColumnChoiceError(
            f"{name!r} is not a column of {spec.name!r}; full-text columns: {list(columns)}"
        )
    if not columns:
        raise ColumnChoiceError(
            f"table {spec.name!r} has no full-text column: declare one with FullTextField() or build "
            "an index with table.create_fts_index(column)"
        )
    if len(columns) > 1:
        raise ColumnChoiceError(
            f"table {spec.name!r} has more than one full-text column ({', '.join(columns)}); {how}"
        )
    return next(iter(columns.values()))


class TextSearchResult(QueryResult):
    """Full-text hits, most relevant first: dicts with the table's columns plus ``_score`` and
    ``_match_score`` (pytidb's name for the full-text relevance; a rerank changes only ``_score``)."""


class TextSearch(SearchBuilder[TextSearchResult]):
    """A full-text search on one table; configure it by chaining, run it with ``to_list()`` and friends.

    Get it from ``table.search(text, search_type="fulltext")``; it holds the table's definition and
    database, not the table itself. ``filter``, ``limit``, ``select``, ``rerank`` and the ``to_*``
    methods are :class:`~lookalike.builder.SearchBuilder`'s.
    """

    _result_type = TextSearchResult

    def __init__(self, spec: TableSpec, database: Database, query: Any) -> None:
        if not isinstance(query, str):
            raise ConfigurationError(f"a full-text query must be text, got {describe_item(query, limit=40)}")
        super().__init__(spec, database, query)
        self._column: str | None = None
        self._raw = False

    def __repr__(self) -> str:
        return (
            f"<TextSearch {describe_item(self._query, limit=40)} on {self._spec.name!r} "
            f"column={self._column} limit={self._limit} raw={self._raw}>"
        )

    # ------------------------------------------------------------------ builder
    def text_column(self, name: str) -> Self:
        """Search this full-text column (needed when the table has several)."""
        self._text(name)
        return self._copy(_column=name)

    def raw(self, enabled: bool = True) -> Self:
        """Pass the query to the engine's own full-text syntax instead of reading it as words."""
        return self._copy(_raw=bool(enabled))

    # ------------------------------------------------------------------ running
    def _text(self, name: str | None) -> FullTextSpec:
        return pick_text_column(self._spec, name, how="pick one with .text_column(name)")

    def build_request(self) -> TextSearchRequest:
        """The engine-neutral request this search runs (checked: a query without words raises)."""
        column = self._text(self._column)
        if self._raw:
            if not self._query.strip():
                raise ConfigurationError("a raw full-text query must not be empty")
        elif not query_words(self._query):
            raise ConfigurationError(
                f"full-text query {describe_item(self._query, limit=60)} has no words to search for"
            )
        spec = self._spec
        where = compile_filter(
            self._filters, spec.sa_table, json_contains=self._database.engine.json_contains
        )
        rerank_column = self._rerank_column()
        return TextSearchRequest(
            column=column.name,
            query=self._query,
            limit=self._limit if self._rerank is None else rerank_pool(self._limit),
            where=where,
            columns=self._output_columns(rerank_column),
            raw=self._raw,
        )

    def _rerank_column(self) -> str | None:
        """The column the reranker reads (default: the searched text column); None without one."""
        if self._rerank is None:
            return None
        return self._rerank.column or self._text(self._column).name

    def _run(self) -> list[dict[str, Any]]:
        if self._rerank is not None:  # a search that cannot be reranked fails before it runs
            self._rerank.text_query(self._query)
        request = self.build_request()
        with self._database.connection(write=False) as conn:
            rows = self._database.engine.text_search(conn, self._spec, request)
        for row in rows:
            row["_score"] = float(row["_score"])
            row["_match_score"] = row["_score"]  # pytidb's name for the full-text relevance
            for name in self._spec.vectors:
                if isinstance(row.get(name), np.ndarray):
                    row[name] = row[name].tolist()
        rerank_column = self._rerank_column()
        if rerank_column is not None:  # _score becomes the reranker's; the BM25 order is its input
            rows = self._apply_rerank(rows, rerank_column)
        return rows
