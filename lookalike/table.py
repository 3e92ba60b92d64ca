"""``Table``: insert, bulk-insert, update, delete, get, query and search one table.

Vector columns with a ``source_field`` are filled automatically: only missing vectors are computed, a
``None``/empty source leaves the vector NULL, and bulk work runs in chunks (one transaction each) with
an explicit policy for bad items (``on_error="raise"`` writes nothing of the failing chunk and names the
item; ``"skip"`` writes the rest and reports what failed and why).

``Table`` is a facade: rows in go through :class:`~lookalike.ingest.Ingest`, searches are built by
:class:`~lookalike.Search`, and every statement runs on a connection from the table's
:class:`~lookalike.session.Database` (so calls inside ``client.session()`` share its transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import sqlalchemy as sa

from lookalike.cache import forget_rows, forget_table, read_sources
from lookalike.errors import ConfigurationError, SchemaError
from lookalike.examples import read_examples
from lookalike.filters import compile_filter
from lookalike.hybrid import HybridSearch
from lookalike.images import SourceInfo
from lookalike.ingest import DEFAULT_CHUNK_SIZE, Ingest, delete_rows
from lookalike.results import ColumnInfo, FailedItem, InsertResult, QueryResult, RowDict
from lookalike.schema import (
    FullTextSpec,
    TableSpec,
    VectorSpec,
    check_fts_language,
    is_text_column,
    normalize_metric,
)
from lookalike.search import Search, VectorColumns, pick_vector_column
from lookalike.session import Database
from lookalike.text_search import TextSearch
from lookalike.types import OnError, Progress

if TYPE_CHECKING:
    from lookalike.client import Client

__all__ = ["DEFAULT_CHUNK_SIZE", "FailedItem", "InsertResult", "OnError", "Progress", "Table"]


class Table:
    """One table of a :class:`~lookalike.Client` (get it from ``create_table`` or ``open_table``).

    It works through ``database`` (connections and sessions) and hands rows-in work to
    :class:`~lookalike.ingest.Ingest` and searches to :class:`~lookalike.Search`. The client is kept
    only for the pytidb-compatible :attr:`client` property.
    """

    def __init__(self, database: Database, spec: TableSpec, client: Client) -> None:
        self._database = database
        self._spec = spec
        self._client = client
        self._ingest = Ingest(spec, database)

    # ------------------------------------------------------------------ description
    @property
    def name(self) -> str:
        """The table's name in the database."""
        return self._spec.name

    @property
    def table_name(self) -> str:
        """The table's name (pytidb's spelling of :attr:`name`)."""
        return self._spec.name

    @property
    def table_model(self) -> Any:
        """The model class (the one given to ``create_table``, or rebuilt by ``open_table``)."""
        return self._spec.model

    @property
    def client(self) -> Client:
        """The client this table was opened with (pytidb's ``table.client``)."""
        return self._client

    @property
    def database(self) -> Database:
        """The connection/session object the table works through (shared with its client)."""
        return self._database

    @property
    def spec(self) -> TableSpec:
        """The table's definition: columns, vector columns, model class."""
        return self._spec

    @property
    def vector_columns(self) -> VectorColumns:
        """The vector columns as a list of SQLAlchemy columns, as pytidb's; indexing by name gives
        a column's settings (:class:`~lookalike.search.VectorColumns`)."""
        return VectorColumns(self._spec)

    @property
    def primary_key(self) -> str:
        """The primary key column's name."""
        return self._spec.primary_key

    def vector_field(self, name: str | None = None) -> VectorSpec:
        """The vector column called ``name``, or the only one (raises if there are several)."""
        return pick_vector_column(self._spec, name, how="pass the name of the one you mean")

    def columns(self) -> list[ColumnInfo]:
        """Each column's name, SQL type, nullability and primary-key flag: dicts that also read as
        pytidb's ``.column_name`` / ``.column_type``."""
        dialect = self._database.engine.sa_engine.dialect  # the types as this engine writes them
        out = []
        for col in self._spec.sa_table.columns:
            out.append(
                ColumnInfo(
                    name=col.name,
                    type=col.type.compile(dialect=dialect),
                    nullable=bool(col.nullable),
                    primary_key=bool(col.primary_key),
                    vector=col.name in self._spec.vectors,
                )
            )
        return out

    def __repr__(self) -> str:
        return f"<lookalike.Table {self.name!r} on {self._database.engine.name}>"

    # ------------------------------------------------------------------ rows in
    def insert(self, data: Any) -> Any:
        """Insert one row (model instance or dict); returns it with its id and vectors filled."""
        return self._ingest.one(data)

    def bulk_insert(
        self,
        data: Iterable[Any],
        *,
        chunk_size: int | None = None,
        on_error: OnError = "raise",
        progress: Progress | None = None,
    ) -> InsertResult:
        """Insert many rows in chunks (one transaction per chunk); vectors are filled automatically.

        Returns the inserted rows with their ids (``.failed`` lists skipped items with ``on_error="skip"``).
        With ``on_error="raise"`` a failing item raises :class:`BulkInsertError` naming it, and nothing of
        its chunk is written (earlier chunks stay, unless the call runs inside ``client.session()``).
        """
        return self._ingest.bulk(data, chunk_size=chunk_size, on_error=on_error, progress=progress)

    def replace_rows(
        self,
        items: Sequence[Any],
        replaces: Sequence[Any],
        *,
        on_error: OnError = "raise",
        progress: Progress | None = None,
    ) -> InsertResult:
        """Insert ``items`` as one chunk and delete the rows with primary keys ``replaces`` in the
        same transaction (a changed file's new row and its old one: never neither, never both).

        Embedding runs before the transaction opens, so the write lock is held only for the write.
        The old rows go even when every new item fails (``on_error="skip"``): they describe content
        that no longer exists. When the write itself fails, nothing changes.
        """
        return self._ingest.replace(items, replaces, on_error=on_error, progress=progress)

    def save(self, data: Any) -> Any:
        """Insert the row, or update it when a row with its primary key exists (upsert).

        Returns the model instance it was given, or for a dict a :class:`~lookalike.results.RowDict`
        (a dict whose keys also read as attributes, as pytidb's returned model does).
        """
        row = self._ingest.row(data)
        pk = self.primary_key
        if row.get(pk) is None or self.get(row[pk]) is None:
            saved = self.insert(data)
            return RowDict(saved) if isinstance(saved, Mapping) else saved
        key = row.pop(pk)
        self.update(row, {pk: key})
        if isinstance(data, Mapping):
            return RowDict({**data, pk: key})
        return self._ingest.result_row(data, row, key)

    def update(self, values: Mapping[str, Any], filters: Any = None) -> int:
        """Set ``values`` on the rows matching ``filters``; returns the number of rows changed.

        A changed source column re-embeds its vector column (unless the vector is given too).
        """
        values = self._ingest.update_values(values)
        where = self._where(filters)
        stmt = sa.update(self._spec.sa_table).values(**values)
        if where is not None:
            stmt = stmt.where(where)
        # a new source is another picture: the recorded hash of the old one no longer describes the row
        stale = [n for n, v in self._spec.vectors.items() if v.source_field in values]
        with self._database.connection(write=True) as conn:
            for name in stale:
                forget_rows(conn, self._spec.sa_table, self.primary_key, where, column=name)
            return conn.execute(stmt).rowcount

    def source_info(self, column: str | None = None) -> dict[str, SourceInfo]:
        """Content hash, pixel size and byte size of each row's image source, by primary key (as text).

        Recorded when lookalike read the image (local models); rows whose vectors came from elsewhere
        have no entry.
        """
        name = (
            self.vector_field(column).name
            if column or len(self._spec.vectors) != 1
            else next(iter(self._spec.vectors))
        )
        with self._database.connection(write=False) as conn:
            return read_sources(conn, self.name, name)

    def delete(self, filters: Any = None) -> int:
        """Delete the rows matching ``filters`` (every row when ``None``); returns how many.

        The rows' source records (content hashes) go with them, in the same transaction.
        """
        where = self._where(filters)
        with self._database.connection(write=True) as conn:
            return delete_rows(conn, self._spec, where)

    def truncate(self) -> None:
        """Delete every row."""
        with self._database.connection(write=True) as conn:
            self._database.engine.truncate(conn, self._spec)
            forget_table(conn, self.name)

    # ------------------------------------------------------------------ rows out
    def _where(self, filters: Any) -> Any:
        return compile_filter(filters, self._spec.sa_table, json_contains=self._database.engine.json_contains)

    def _model_or_dict(self, row: Mapping[Any, Any]) -> Any:
        model = self._spec.model
        data = {k: v for k, v in row.items()}
        if model is None:
            return data
        return model(**data)

    def get(self, id: Any) -> Any:
        """The row with this primary key (a model instance), or None."""
        pk = self._spec.sa_table.c[self.primary_key]
        with self._database.connection(write=False) as conn:
            row = conn.execute(sa.select(self._spec.sa_table).where(pk == id)).first()
        return None if row is None else self._model_or_dict(row._mapping)

    def query(
        self,
        filters: Any = None,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        *,
        columns: Sequence[str] | None = None,
    ) -> QueryResult:
        """Rows matching ``filters``, ordered (``"col"``, ``"-col"``, ``("col", "desc")`` or a list)."""
        table = self._spec.sa_table
        cols = [table.c[c] for c in columns] if columns else [table]
        stmt = sa.select(*cols)
        where = self._where(filters)
        if where is not None:
            stmt = stmt.where(where)
        for clause in _order_clauses(order_by, table):
            stmt = stmt.order_by(clause)
        # checked, not coerced: SQLite reads a negative LIMIT/OFFSET as "no limit" and returns every row
        if limit is not None:
            stmt = stmt.limit(_count_arg(limit, "limit"))
        if offset is not None and _count_arg(offset, "offset"):
            stmt = stmt.offset(int(offset))
        with self._database.connection(write=False) as conn:
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
        return QueryResult(rows, self._spec.model)

    def rows(self) -> int:
        """How many rows the table holds."""
        with self._database.connection(write=False) as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(self._spec.sa_table)).scalar() or 0
            )

    count = rows

    # ------------------------------------------------------------------ search and indexes
    # search_type picks the builder, each literal typed as its own class (the ``...`` defaults only
    # let the literal be given positionally or by keyword: a call without one matches the first)
    @overload
    def search(
        self,
        query: Any = None,
        search_type: Literal["vector"] = "vector",
        *,
        text: str | None = None,
        image: Any = None,
        vector: Any = None,
        positive: Sequence[Any] | None = None,
        negative: Sequence[Any] | None = None,
    ) -> Search: ...

    @overload
    def search(
        self,
        query: Any = None,
        search_type: Literal["fulltext"] = ...,
        *,
        text: str | None = None,
        image: Any = None,
        vector: Any = None,
        positive: Sequence[Any] | None = None,
        negative: Sequence[Any] | None = None,
    ) -> TextSearch: ...

    @overload
    def search(
        self,
        query: Any = None,
        search_type: Literal["hybrid"] = ...,
        *,
        text: str | None = None,
        image: Any = None,
        vector: Any = None,
        positive: Sequence[Any] | None = None,
        negative: Sequence[Any] | None = None,
    ) -> HybridSearch: ...

    @overload
    def search(
        self,
        query: Any = None,
        search_type: str = "vector",
        *,
        text: str | None = None,
        image: Any = None,
        vector: Any = None,
        positive: Sequence[Any] | None = None,
        negative: Sequence[Any] | None = None,
    ) -> Search | TextSearch | HybridSearch: ...

    def search(
        self,
        query: Any = None,
        search_type: str = "vector",
        *,
        text: str | None = None,
        image: Any = None,
        vector: Any = None,
        positive: Sequence[Any] | None = None,
        negative: Sequence[Any] | None = None,
    ) -> Search | TextSearch | HybridSearch:
        """Start a vector search by text, image (URL, path, PIL, bytes, data URI) or vector; with
        ``search_type="fulltext"`` a :class:`~lookalike.TextSearch`, with ``"hybrid"`` a
        :class:`~lookalike.HybridSearch` (each typed as such).

        ``search("orange tabby cat")`` decides from the value; ``search(text=...)``,
        ``search(image=...)`` and ``search(vector=...)`` say it explicitly, so no input is ambiguous.
        ``search(positive=[...], negative=[...])`` combines several examples (words, images, vectors,
        ``(item, weight)`` tuples) into one query vector; see :mod:`lookalike.examples`.
        """
        if search_type == "fulltext":  # BM25-ranked words in a full-text column (lookalike.text_search)
            words = [v for v in (query, text) if v is not None]
            if len(words) != 1 or any(v is not None for v in (image, vector, positive, negative)):
                raise ConfigurationError(
                    "a full-text search takes one text: search('words', search_type='fulltext')"
                )
            return TextSearch(self._spec, self._database, words[0])
        if search_type == "hybrid":  # vector + full-text, fused (lookalike.hybrid)
            if sum(v is not None for v in (query, text)) > 1 or any(
                v is not None for v in (image, positive, negative)
            ):
                raise ConfigurationError(
                    "a hybrid search takes one text (and optionally vector=): "
                    "search('words', search_type='hybrid')"
                )
            hybrid_text = text if text is not None else query
            return HybridSearch(self._spec, self._database, hybrid_text, vector=vector)
        if search_type != "vector":
            raise ConfigurationError(f"search_type {search_type!r} is not supported yet; use 'vector'")
        if positive is not None or negative is not None:  # several examples (lookalike.examples)
            if any(v is not None for v in (query, text, image, vector)):
                raise ConfigurationError(
                    "pass either a query (query, text=, image=, vector=) or positive=/negative= examples"
                )
            return Search(self._spec, self._database, read_examples(positive, negative), "examples")
        given = [
            (k, v)
            for k, v in (("auto", query), ("text", text), ("image", image), ("vector", vector))
            if v is not None
        ]
        if len(given) != 1:
            raise ConfigurationError("pass exactly one of query, text=, image= or vector= to search()")
        kind, value = given[0]
        if kind == "auto" and _is_vector(value):
            kind = "vector"
        return Search(self._spec, self._database, value, kind)

    def create_vector_index(
        self,
        column: str | None = None,
        *,
        metric: str | None = None,
        skip_existing: bool = True,
        **params: Any,
    ) -> None:
        """Build an ANN index on a vector column, for ``metric`` (default: the column's).

        PostgreSQL and TiDB build HNSW. The embedded engine builds an IVF index (8-bit codes, exact
        re-rank; the ``ann`` extra) in a file beside the database: at once on a table with rows, or,
        on an empty one, at the first search once ``min_rows`` rows (default 20,000) hold a vector.
        ``params``: ``nlist``, ``nprobe``, ``min_rows`` there; ``m``/``ef_construction`` on the others.
        """
        vec = self.vector_field(column)
        metric = normalize_metric(metric or vec.distance_metric)
        with self._database.connection(write=True) as conn:
            engine = self._database.engine
            # an index for another metric (a default cosine HNSW, say) does not stand in for this one
            if skip_existing and engine.has_vector_index_for(conn, self._spec, vec.name, metric):
                return
            engine.create_vector_index(conn, self._spec, vec.name, metric, params)

    def has_vector_index(self, column: str | None = None) -> bool:
        """True when the engine holds an ANN index on the column."""
        vec = self.vector_field(column)
        with self._database.connection(write=False) as conn:
            return self._database.engine.has_vector_index(conn, self._spec, vec.name)

    def create_fts_index(
        self, column: str, *, language: str | None = None, skip_existing: bool = True
    ) -> None:
        """Build a full-text index on the text column ``column`` (filled from the rows it has, kept in
        step with later writes) and record it with the table, so ``open_table`` elsewhere knows it.

        ``language``: stemming. The embedded engine knows ``None`` (no stemming) and ``"english"``
        (Porter); PostgreSQL any text search configuration it has (``None``: ``simple``); TiDB
        ignores it. With ``skip_existing`` an existing index is kept as it is, else it is rebuilt.
        """
        if column not in self._spec.sa_table.c:
            raise SchemaError(f"{column!r} is not a column of {self.name!r}")
        if not is_text_column(self._spec.sa_table.c[column]):
            raise SchemaError(f"column {column!r} of {self.name!r} does not hold text: no full-text index")
        language = check_fts_language(language)
        engine = self._database.engine
        with self._database.connection(write=True) as conn:
            if skip_existing and engine.has_fts_index(conn, self._spec, column):
                return
            known = self._spec.fulltext.get(column)
            text = FullTextSpec(column, True, language, known.parser if known else "MULTILINGUAL")
            engine.create_fts_index(conn, self._spec, column, language)
            self._spec.fulltext[column] = text
            engine.save_description(conn, self._spec)

    def has_fts_index(self, column: str) -> bool:
        """True when the engine holds a full-text index on the column."""
        if column not in self._spec.sa_table.c:
            raise SchemaError(f"{column!r} is not a column of {self.name!r}")
        with self._database.connection(write=False) as conn:
            return self._database.engine.has_fts_index(conn, self._spec, column)

    def find_duplicates(self, **options: Any) -> list[Any]:
        """Exact and near-duplicate groups with a suggested keeper; see :func:`lookalike.duplicates.find_duplicates`."""
        from lookalike.duplicates import find_duplicates

        return find_duplicates(self, **options)


# ---------------------------------------------------------------------- helpers


def _count_arg(value: Any, what: str) -> int:
    """``value`` as a row count (0 or more), or a :class:`ConfigurationError`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigurationError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _is_vector(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.dtype.kind in "fiu"
    if isinstance(value, (list, tuple)) and value:
        return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
    return False


def _order_clauses(order_by: Any, table: sa.Table) -> list[Any]:
    if order_by is None:
        return []
    if isinstance(order_by, Mapping):  # pytidb's {"col": "desc", "other": "asc"}
        order_by = list(order_by.items())
    items = order_by if isinstance(order_by, list) else [order_by]
    out = []
    for item in items:
        if isinstance(item, str):
            desc = item.startswith("-")
            name = item.lstrip("-+")
            if name not in table.c:
                raise SchemaError(f"unknown column {name!r} in order_by")
            out.append(table.c[name].desc() if desc else table.c[name].asc())
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, direction = item
            if name not in table.c:
                raise SchemaError(f"unknown column {name!r} in order_by")
            if str(direction).lower() not in ("asc", "desc"):
                raise ConfigurationError(f"order_by direction must be 'asc' or 'desc', got {direction!r}")
            out.append(table.c[name].desc() if str(direction).lower() == "desc" else table.c[name].asc())
        else:
            out.append(item)
    return out
