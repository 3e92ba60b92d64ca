"""``Table``: insert, bulk-insert, update, delete, get, query and search one table.

Vector columns with a ``source_field`` are filled automatically: only missing vectors are computed, a
``None``/empty source leaves the vector NULL, and bulk work runs in chunks (one transaction each) with
an explicit policy for bad items (``on_error="raise"`` writes nothing of the failing chunk and names the
item; ``"skip"`` writes the rest and reports what failed and why).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import sqlalchemy as sa

from lookalike.cache import (
    EmbeddingCache,
    SourceInfo,
    forget_rows,
    forget_table,
    read_sources,
    record_sources,
)
from lookalike.embeddings.base import check_vector
from lookalike.errors import (
    BulkInsertError,
    ConfigurationError,
    LookalikeError,
    SchemaError,
    describe_item,
)
from lookalike.filters import compile_filter
from lookalike.results import QueryResult
from lookalike.schema import TableSpec, VectorSpec, normalize_metric

if TYPE_CHECKING:
    from lookalike.client import Client
    from lookalike.search import Search

OnError = Literal["raise", "skip"]
Progress = Callable[[int, int], None]
"""``progress(done, total)``: items written so far (including failed ones) out of the total."""

DEFAULT_CHUNK_SIZE = 1000
"""Rows per transaction in bulk work; large enough that the decode/inference pipeline rarely drains."""


@dataclass(frozen=True)
class _SideWrites:
    """What one vector column's embedding left to write with the rows."""

    column: str
    cache: EmbeddingCache | None
    infos: dict[int, SourceInfo]


@dataclass(frozen=True)
class FailedItem:
    """An item that bulk work skipped: its position, a description, and the error."""

    index: int
    item: str
    error: LookalikeError

    def __str__(self) -> str:
        if self.error.index == self.index:
            return str(self.error)  # the error names the item already
        return f"item {self.index} ({self.item}): {self.error}"


class InsertResult(list):  # type: ignore[type-arg]
    """The inserted rows (model instances or dicts, with ids), plus ``failed`` items when skipping."""

    def __init__(self, rows: Iterable[Any] = (), failed: list[FailedItem] | None = None) -> None:
        super().__init__(rows)
        self.failed: list[FailedItem] = failed or []


class Table:
    """One table of a :class:`~lookalike.Client` (get it from ``create_table`` or ``open_table``)."""

    def __init__(self, client: Client, spec: TableSpec) -> None:
        self._client = client
        self._spec = spec
        self._column_names = frozenset(spec.sa_table.columns.keys())

    # ------------------------------------------------------------------ description
    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def table_model(self) -> Any:
        """The model class (the one given to ``create_table``, or rebuilt by ``open_table``)."""
        return self._spec.model

    @property
    def client(self) -> Client:
        return self._client

    @property
    def spec(self) -> TableSpec:
        return self._spec

    @property
    def vector_columns(self) -> dict[str, VectorSpec]:
        """The vector columns and their settings."""
        return dict(self._spec.vectors)

    @property
    def primary_key(self) -> str:
        return self._spec.primary_key

    def vector_field(self, name: str | None = None) -> VectorSpec:
        """The vector column called ``name``, or the only one (raises if there are several)."""
        vectors = self._spec.vectors
        if name is not None:
            if name not in vectors:
                raise SchemaError(
                    f"{name!r} is not a vector column of {self.name!r}; vector columns: {list(vectors)}"
                )
            return vectors[name]
        if not vectors:
            raise SchemaError(f"table {self.name!r} has no vector column")
        if len(vectors) > 1:
            raise SchemaError(
                f"table {self.name!r} has several vector columns ({', '.join(vectors)}); "
                "pick one with .vector_column(name)"
            )
        return next(iter(vectors.values()))

    def columns(self) -> list[dict[str, Any]]:
        """Each column's name, SQL type, nullability and primary-key flag."""
        engine = self._client.engine.sa_engine
        out = []
        for col in self._spec.sa_table.columns:
            out.append(
                {
                    "name": col.name,
                    "type": col.type.compile(dialect=engine.dialect),
                    "nullable": bool(col.nullable),
                    "primary_key": bool(col.primary_key),
                    "vector": col.name in self._spec.vectors,
                }
            )
        return out

    def __repr__(self) -> str:
        return f"<lookalike.Table {self.name!r} on {self._client.engine.name}>"

    # ------------------------------------------------------------------ rows in
    def _as_dict(self, obj: Any, index: int | None = None) -> dict[str, Any]:
        if isinstance(obj, Mapping):
            row = dict(obj)
        elif hasattr(obj, "model_dump"):
            row = {c: getattr(obj, c, None) for c in self._spec.sa_table.columns.keys()}
        else:
            raise SchemaError(
                f"{describe_item(obj)} is neither a dict nor a model instance", item=obj, index=index
            )
        unknown = row.keys() - self._column_names
        if unknown:
            raise SchemaError(
                f"unknown column {sorted(unknown)[0]!r} for table {self.name!r}",
                item=obj,
                index=index,
            )
        pk = self.primary_key
        if row.get(pk) is None:
            row.pop(pk, None)
        for name, value in self._defaults().items():
            if name not in row:
                row[name] = value() if callable(value) else value
        return row

    def _defaults(self) -> dict[str, Any]:
        """Model field defaults, applied to dict rows so they match model instances."""
        cached = getattr(self, "_defaults_cache", None)
        if cached is not None:
            return cached
        out: dict[str, Any] = {}
        model = self._spec.model
        fields = getattr(model, "model_fields", {}) if model is not None else {}
        for name, info in fields.items():
            if name not in self._spec.sa_table.c or name == self.primary_key:
                continue
            if info.default_factory is not None:
                out[name] = info.default_factory
            elif info.default is not None and not _is_undefined(info.default):
                out[name] = info.default
        self._defaults_cache = out
        return out

    def _check_vectors(self, row: dict[str, Any], index: int | None) -> None:
        for name, vec in self._spec.vectors.items():
            value = row.get(name)
            if value is None:
                continue
            try:
                row[name] = check_vector(value, vec.dimensions, item=value, what="vector")
            except LookalikeError as exc:
                exc.with_context(index=index, column=name)
                raise

    def _check_vectors_bulk(self, rows: list[dict[str, Any] | None]) -> bool:
        """Check the given vectors of many rows at once (one array op per column).

        Returns False when any vector is malformed; the caller then checks row by row to name it.
        """
        for name, vec in self._spec.vectors.items():
            idx = [i for i, r in enumerate(rows) if r is not None and r.get(name) is not None]
            if not idx:
                continue
            try:
                matrix = np.asarray([rows[i][name] for i in idx], dtype=np.float32)  # type: ignore[index]
            except (TypeError, ValueError):
                return False
            if matrix.shape != (len(idx), vec.dimensions) or not np.isfinite(matrix).all():
                return False
            for k, i in enumerate(idx):
                rows[i][name] = matrix[k]  # type: ignore[index]
        return True

    def _fill_vectors(
        self,
        rows: list[dict[str, Any]],
        on_error: OnError,
        base_index: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[dict[int, LookalikeError], list[_SideWrites]]:
        """Compute missing vectors in place.

        Returns errors by row position (only with ``skip``) and, per vector column, the cache entries
        and source records to write in the same transaction as the rows.
        """
        errors: dict[int, LookalikeError] = {}
        side: list[_SideWrites] = []
        for name, vec in self._spec.vectors.items():
            if vec.source_field is None or vec.embed_fn is None:
                continue
            todo = [
                i
                for i, r in enumerate(rows)
                if i not in errors and r.get(name) is None and not _empty(r.get(vec.source_field))
            ]
            if not todo:
                continue
            sources = [rows[i][vec.source_field] for i in todo]
            cache = (
                None
                if vec.embed_fn.remote
                else EmbeddingCache(lambda: self._client._conn(write=False), vec.embed_fn)
            )
            infos: dict[int, SourceInfo] = {}
            hook = None
            if progress is not None and not side:  # report the first embedded column's progress only
                hook = lambda done, _total: progress(done)  # noqa: E731
            try:
                out = self._embed_sources(vec, sources, on_error, cache=cache, infos=infos, progress=hook)
            except LookalikeError as exc:
                if exc.index is not None:
                    exc.with_context(index=base_index + todo[exc.index], column=name)
                raise
            for i, res in zip(todo, out):
                if isinstance(res, LookalikeError):
                    errors[i] = res
                elif res is not None:
                    rows[i][name] = res
            side.append(_SideWrites(name, cache, {todo[k]: info for k, info in infos.items()}))
        return errors, side

    def _embed_sources(
        self, vec: VectorSpec, sources: list[Any], on_error: OnError, **kwargs: Any
    ) -> list[Any]:
        assert vec.embed_fn is not None
        return vec.embed_fn.embed_sources(sources, source_type=vec.source_type, on_error=on_error, **kwargs)  # type: ignore[arg-type]

    def _write(
        self,
        rows: list[dict[str, Any]],
        side: Sequence[_SideWrites] = (),
        positions: Sequence[int] = (),
        replaces: Sequence[Any] = (),
    ) -> list[Any]:
        """Insert rows, the new cache entries and the rows' source records in one transaction.

        ``positions`` maps each written row to its position in the chunk that ``side`` refers to.
        ``replaces``: primary keys of rows deleted in the same transaction, before the insert.
        """
        with self._client._conn(write=True) as conn:
            pk = self._spec.sa_table.c[self.primary_key]
            for start in range(0, len(replaces), 500):
                self._delete_in(conn, pk.in_(list(replaces[start : start + 500])))
            ids = self._client.engine.insert_rows(conn, self._spec, rows) if rows else []
            where = {p: k for k, p in enumerate(positions or range(len(rows)))}
            for entry in side:
                if entry.cache is not None:
                    entry.cache.flush(conn)
                record_sources(
                    conn,
                    self.name,
                    entry.column,
                    [(ids[where[p]], info) for p, info in entry.infos.items() if p in where],
                )
            return ids

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
        with self._client._conn(write=False) as conn:
            return read_sources(conn, self.name, name)

    def _result_row(self, original: Any, row: dict[str, Any], pk_value: Any) -> Any:
        """The inserted item with its id and vectors.

        A model instance gets its id and computed vectors (as lists) set on it; a dict comes back as a
        new dict with the id, the column defaults, and vectors as float32 arrays.
        """
        pk = self.primary_key
        if isinstance(original, Mapping) or not hasattr(original, "model_dump"):
            # the row is already our own copy of the item, with defaults and float32 vectors
            row[pk] = pk_value
            return row
        for name in self._spec.vectors:
            if getattr(original, name, None) is None and row.get(name) is not None:
                setattr(original, name, _plain(row[name]))
        setattr(original, pk, pk_value)
        return original

    def insert(self, data: Any) -> Any:
        """Insert one row (model instance or dict); returns it with its id and vectors filled."""
        row = self._as_dict(data)
        self._check_vectors(row, None)
        _, side = self._fill_vectors([row], "raise")
        self._check_vectors(row, None)
        ids = self._write([row], side)
        return self._result_row(data, row, ids[0])

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
        from lookalike.ingest import run_ingest

        if on_error not in ("raise", "skip"):
            raise ConfigurationError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if chunk_size is None:
            # remote providers want enough items per chunk to keep all their request slots busy
            wanted = [getattr(v.embed_fn, "preferred_chunk_size", 0) for v in self._spec.vectors.values()]
            chunk_size = max([DEFAULT_CHUNK_SIZE, *[w for w in wanted if isinstance(w, int)]])
        if chunk_size <= 0:
            raise ConfigurationError(f"chunk_size must be positive, got {chunk_size!r}")
        return run_ingest(self, data, chunk_size=chunk_size, on_error=on_error, progress=progress)

    def _replace_chunk(
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
        total = len(items)
        hook = None if progress is None else (lambda k: progress(k, max(total, k)))
        inserted, failed = self._insert_chunk(items, 0, on_error, hook, replaces=replaces)
        if progress is not None:
            progress(total, total)
        return InsertResult(inserted, failed)

    def _insert_chunk(
        self,
        items: Sequence[Any],
        base_index: int,
        on_error: OnError,
        progress: Callable[[int], None] | None = None,
        replaces: Sequence[Any] = (),
    ) -> tuple[list[Any], list[FailedItem]]:
        """Prepare, embed and write one chunk; returns (inserted rows, failed items).

        ``replaces``: primary keys deleted in the chunk's transaction (see :meth:`_replace_chunk`).
        """
        rows: list[dict[str, Any] | None] = []
        failed: list[FailedItem] = []
        for j, obj in enumerate(items):
            try:
                rows.append(self._as_dict(obj, base_index + j))
            except LookalikeError as exc:
                if on_error == "raise":
                    raise _bulk_error(exc, base_index + j, obj) from exc
                failed.append(FailedItem(base_index + j, describe_item(obj), exc))
                rows.append(None)
        if not self._check_vectors_bulk(rows):
            # something is off: check row by row to name the item
            for j, row in enumerate(rows):
                if row is None:
                    continue
                try:
                    self._check_vectors(row, base_index + j)
                except LookalikeError as exc:
                    if on_error == "raise":
                        raise _bulk_error(exc, base_index + j, items[j]) from exc
                    failed.append(FailedItem(base_index + j, describe_item(items[j]), exc))
                    rows[j] = None
        live = [i for i, r in enumerate(rows) if r is not None]
        live_rows = [rows[i] for i in live]
        try:
            errors, side = self._fill_vectors(live_rows, on_error, base_index, progress)  # type: ignore[arg-type]
        except LookalikeError as exc:
            index = exc.index if exc.index is not None else base_index
            raise _bulk_error(exc, index, exc.item) from exc
        keep: list[int] = []
        kept_live: list[int] = []
        for k, i in enumerate(live):
            if k in errors:
                failed.append(FailedItem(base_index + i, describe_item(items[i]), errors[k]))
            else:
                keep.append(i)
                kept_live.append(k)
        to_write = [rows[i] for i in keep]
        # computed vectors against the column (an embedder without declared dimensions could differ);
        # one array check, and row by row only to name a bad one
        if side and not self._check_vectors_bulk(to_write):  # type: ignore[arg-type]
            for i in keep:
                self._check_vectors(rows[i], base_index + i)  # type: ignore[arg-type]
        ids = self._write(to_write, side, kept_live, replaces) if to_write or replaces else []  # type: ignore[arg-type]
        inserted = [self._result_row(items[i], rows[i], pk) for i, pk in zip(keep, ids)]  # type: ignore[arg-type]
        failed.sort(key=lambda f: f.index)
        return inserted, failed

    def save(self, data: Any) -> Any:
        """Insert the row, or update it when a row with its primary key exists (upsert)."""
        row = self._as_dict(data)
        pk = self.primary_key
        if row.get(pk) is None or self.get(row[pk]) is None:
            return self.insert(data)
        key = row.pop(pk)
        self.update(row, {pk: key})
        return self._result_row(data, row, key) if not isinstance(data, Mapping) else {**data, pk: key}

    def update(self, values: Mapping[str, Any], filters: Any = None) -> int:
        """Set ``values`` on the rows matching ``filters``; returns the number of rows changed.

        A changed source column re-embeds its vector column (unless the vector is given too).
        """
        values = dict(values)
        unknown = [k for k in values if k not in self._spec.sa_table.c]
        if unknown:
            raise SchemaError(f"unknown column {unknown[0]!r} for table {self.name!r}")
        for name, vec in self._spec.vectors.items():
            if vec.source_field in values and name not in values:
                src = values[vec.source_field]
                if _empty(src) or vec.embed_fn is None:
                    values[name] = None
                else:
                    values[name] = self._embed_sources(vec, [src], "raise")[0]
        self._check_vectors(values, None)
        where = self._where(filters)
        stmt = sa.update(self._spec.sa_table).values(**values)
        if where is not None:
            stmt = stmt.where(where)
        # a new source is another picture: the recorded hash of the old one no longer describes the row
        stale = [n for n, v in self._spec.vectors.items() if v.source_field in values]
        with self._client._conn(write=True) as conn:
            for name in stale:
                forget_rows(conn, self._spec.sa_table, self.primary_key, where, column=name)
            return conn.execute(stmt).rowcount

    def delete(self, filters: Any = None) -> int:
        """Delete the rows matching ``filters`` (every row when ``None``); returns how many.

        The rows' source records (content hashes) go with them, in the same transaction.
        """
        where = self._where(filters)
        with self._client._conn(write=True) as conn:
            return self._delete_in(conn, where)

    def _delete_in(self, conn: Any, where: Any) -> int:
        """Delete the rows matching ``where`` and their source records inside ``conn``'s transaction."""
        stmt = sa.delete(self._spec.sa_table)
        if where is not None:
            stmt = stmt.where(where)
        if self._spec.vectors:
            forget_rows(conn, self._spec.sa_table, self.primary_key, where)
        return conn.execute(stmt).rowcount

    def truncate(self) -> None:
        """Delete every row."""
        with self._client._conn(write=True) as conn:
            self._client.engine.truncate(conn, self._spec)
            forget_table(conn, self.name)

    # ------------------------------------------------------------------ rows out
    def _where(self, filters: Any) -> Any:
        return compile_filter(filters, self._spec.sa_table, json_contains=self._client.engine.json_contains)

    def _model_or_dict(self, row: Mapping[str, Any]) -> Any:
        model = self._spec.model
        data = {k: v for k, v in row.items()}
        if model is None:
            return data
        return model(**data)

    def get(self, id: Any) -> Any:
        """The row with this primary key (a model instance), or None."""
        pk = self._spec.sa_table.c[self.primary_key]
        with self._client._conn(write=False) as conn:
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
        with self._client._conn(write=False) as conn:
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
        return QueryResult(rows, self._spec.model)

    def rows(self) -> int:
        """How many rows the table holds."""
        with self._client._conn(write=False) as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(self._spec.sa_table)).scalar() or 0
            )

    count = rows

    # ------------------------------------------------------------------ search and indexes
    def search(
        self,
        query: Any = None,
        search_type: str = "vector",
        *,
        text: str | None = None,
        image: Any = None,
        vector: Any = None,
    ) -> Search:
        """Start a vector search by text, image (URL, path, PIL, bytes, data URI) or vector.

        ``search("orange tabby cat")`` decides from the value; ``search(text=...)``,
        ``search(image=...)`` and ``search(vector=...)`` say it explicitly, so no input is ambiguous.
        """
        from lookalike.search import Search

        if search_type != "vector":
            raise ConfigurationError(f"search_type {search_type!r} is not supported yet; use 'vector'")
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
        return Search(self, value, kind)

    def create_vector_index(
        self,
        column: str | None = None,
        *,
        metric: str | None = None,
        skip_existing: bool = True,
        **params: Any,
    ) -> None:
        """Build an ANN index on a vector column (the embedded engine searches exactly: a no-op there)."""
        vec = self.vector_field(column)
        metric = normalize_metric(metric or vec.distance_metric)
        with self._client._conn(write=True) as conn:
            if skip_existing and self._client.engine.has_vector_index(conn, self._spec, vec.name):
                return
            self._client.engine.create_vector_index(conn, self._spec, vec.name, metric, params)

    def has_vector_index(self, column: str | None = None) -> bool:
        """True when the engine holds an ANN index on the column."""
        vec = self.vector_field(column)
        with self._client._conn(write=False) as conn:
            return self._client.engine.has_vector_index(conn, self._spec, vec.name)

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


def _is_undefined(value: Any) -> bool:
    return type(value).__name__ in ("PydanticUndefinedType", "UndefinedType")


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


def _is_vector(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.dtype.kind in "fiu"
    if isinstance(value, (list, tuple)) and value:
        return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
    return False


def _bulk_error(exc: LookalikeError, index: int, item: Any) -> BulkInsertError:
    return BulkInsertError(exc, index=index, item=item)


def _order_clauses(order_by: Any, table: sa.Table) -> list[Any]:
    if order_by is None:
        return []
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
                raise SchemaError(f"order_by direction must be 'asc' or 'desc', got {direction!r}")
            out.append(table.c[name].desc() if str(direction).lower() == "desc" else table.c[name].asc())
        else:
            out.append(item)
    return out
