"""The rows-in pipeline of a table: items → rows → checked vectors → missing vectors filled → written.

:class:`Ingest` is what ``Table.insert``, ``bulk_insert``, ``save``, ``update`` and ``replace_rows``
delegate to, and what ``copy_table`` writes through. Its steps, in order:

1. each item (a dict or a model instance) becomes a row: unknown columns are refused, an empty primary
   key is left to the database, and the model's field defaults fill what a dict leaves out;
2. the vectors given are checked (dimensions, NaN/Inf) with one array operation per column, and row by
   row only to name a bad one;
3. missing vectors with a source column are embedded, reusing cached vectors by content hash (local
   models); a ``None``/empty source leaves the vector NULL;
4. tag columns (:func:`~lookalike.schema.TagsField`) left empty get each image's top words of a
   vocabulary: one matrix product of the chunk's vectors with the vocabulary's cached text vectors
   (:mod:`lookalike.tags`), no extra inference;
5. the rows, the new cache entries and the rows' source records are written in one transaction per
   chunk.

Bad items follow ``on_error``: ``"raise"`` stops with a :class:`~lookalike.errors.BulkInsertError`
naming the item and writes nothing of its chunk; ``"skip"`` writes the rest and reports each failure
as a :class:`~lookalike.results.FailedItem`. Errors carry the item's position and column as fields;
nothing here builds or parses message text. Rows travel as ``(position in the chunk, row)`` pairs, so
a failed item simply drops out and the positions still name the input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import sqlalchemy as sa
from pydantic_core import PydanticUndefined
from sqlalchemy.engine import Connection

from lookalike.cache import EmbeddingCache, forget_rows, record_sources
from lookalike.embeddings.base import check_vector
from lookalike.errors import (
    BulkInsertError,
    ConfigurationError,
    LookalikeError,
    SchemaError,
    describe_item,
)
from lookalike.images import SourceInfo
from lookalike.results import FailedItem, InsertResult
from lookalike.schema import TableSpec, VectorSpec, tag_fields
from lookalike.session import Database
from lookalike.tags import Tagger
from lookalike.types import OnError, Progress

__all__ = ["DEFAULT_CHUNK_SIZE", "Ingest", "delete_rows"]

DEFAULT_CHUNK_SIZE = 1000
"""Rows per transaction in bulk work; large enough that the decode/inference pipeline rarely drains."""

DELETE_BATCH = 500
"""Primary keys per ``IN`` list when deleting replaced rows: inside every engine's parameter limit."""

Row = tuple[int, dict[str, Any]]
"""A row on its way in, with the position of its item in the chunk (errors and results name it)."""

ChunkProgress = Callable[[int], None]
"""``progress(done)``: items of the current chunk embedded so far."""


@dataclass(frozen=True)
class SideWrites:
    """What one vector column's embedding left to write with the rows."""

    column: str
    cache: EmbeddingCache | None
    infos: dict[int, SourceInfo]
    """The source facts (hash, size) of the items read, by position in the chunk."""


class Ingest:
    """The rows-in pipeline of one table (see the module docstring for its steps)."""

    def __init__(self, spec: TableSpec, database: Database) -> None:
        self.spec = spec
        self.database = database
        self.columns = frozenset(spec.sa_table.columns.keys())
        self.defaults: dict[str, Any] = model_defaults(spec)
        """Model field defaults (values or factories), applied to dict rows so they match model instances."""
        self.taggers: dict[str, Tagger] = {}
        """Tag columns whose vector column has an embedder (its text side embeds the vocabulary)."""
        for name, tags in tag_fields(spec.sa_table).items():
            vec = spec.vectors.get(tags.vector_field)
            if vec is not None and vec.embed_fn is not None:
                self.taggers[name] = Tagger(tags, vec.embed_fn)

    # ------------------------------------------------------------------ single items
    def row(self, obj: Any, index: int | None = None) -> dict[str, Any]:
        """``obj`` (a dict or model instance) as a new row dict, with the model's defaults filled in."""
        if isinstance(obj, Mapping):
            row = dict(obj)
        elif hasattr(obj, "model_dump"):
            row = {c: getattr(obj, c, None) for c in self.spec.sa_table.columns.keys()}
        else:
            raise SchemaError(
                f"{describe_item(obj)} is neither a dict nor a model instance", item=obj, index=index
            )
        unknown = row.keys() - self.columns
        if unknown:
            raise SchemaError(
                f"unknown column {sorted(unknown)[0]!r} for table {self.spec.name!r}",
                item=obj,
                index=index,
            )
        pk = self.spec.primary_key
        if row.get(pk) is None:
            row.pop(pk, None)
        for name, value in self.defaults.items():
            if name not in row:
                row[name] = value() if callable(value) else value
        return row

    def check_vectors(self, row: dict[str, Any], index: int | None) -> None:
        """Replace each given vector of ``row`` by a checked float32 array, or raise naming the column."""
        for name, vec in self.spec.vectors.items():
            value = row.get(name)
            if value is None:
                continue
            try:
                row[name] = check_vector(value, vec.dimensions, item=value, what="vector")
            except LookalikeError as exc:
                exc.with_context(index=index, column=name)
                raise

    def one(self, obj: Any) -> Any:
        """Insert one item; returns it with its id and vectors (see :meth:`result_row`)."""
        row = self.row(obj)
        self.check_vectors(row, None)
        _, side = self.fill_vectors([(0, row)], "raise")
        self.check_vectors(row, None)  # computed vectors too: an embedder may not declare its size
        self.fill_tags([(0, row)])
        ids = self.write([(0, row)], side)
        return self.result_row(obj, row, ids[0])

    def update_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` for an UPDATE, checked: a changed source re-embeds its vector (unless given)."""
        values = dict(values)
        unknown = [k for k in values if k not in self.columns]
        if unknown:
            raise SchemaError(f"unknown column {unknown[0]!r} for table {self.spec.name!r}")
        for name, vec in self.spec.vectors.items():
            if vec.source_field in values and name not in values:
                src = values[vec.source_field]
                if is_empty(src) or vec.embed_fn is None:
                    values[name] = None
                else:
                    values[name] = self.embed_sources(vec, [src], "raise")[0]
        self.check_vectors(values, None)
        for name, tagger in self.taggers.items():
            # a new vector means new tags (unless given); a vector set to NULL clears them
            vector_column = tagger.spec.vector_field
            if vector_column in values and name not in values:
                values[name] = None
                if tagger.spec.scores_field is not None:
                    values[tagger.spec.scores_field] = None
        self.fill_tags([(0, values)])
        return values

    def result_row(self, original: Any, row: dict[str, Any], pk_value: Any) -> Any:
        """The inserted item with its id and vectors.

        A model instance gets its id and computed vectors (as lists) set on it; a dict comes back as a
        new dict with the id, the column defaults, and vectors as float32 arrays.
        """
        pk = self.spec.primary_key
        if isinstance(original, Mapping) or not hasattr(original, "model_dump"):
            # the row is already our own copy of the item, with defaults and float32 vectors
            row[pk] = pk_value
            return row
        for name in self.spec.vectors:
            if getattr(original, name, None) is None and row.get(name) is not None:
                setattr(original, name, plain(row[name]))
        setattr(original, pk, pk_value)
        return original

    # ------------------------------------------------------------------ many items
    def bulk(
        self,
        data: Iterable[Any],
        *,
        chunk_size: int | None = None,
        on_error: OnError = "raise",
        progress: Progress | None = None,
    ) -> InsertResult:
        """Insert ``data`` chunk by chunk, one transaction each; see :meth:`lookalike.Table.bulk_insert`.

        Items are consumed lazily from any iterable, so memory stays flat in the number of items.
        """
        check_on_error(on_error)
        if chunk_size is None:
            chunk_size = self.default_chunk_size()
        if chunk_size <= 0:
            raise ConfigurationError(f"chunk_size must be positive, got {chunk_size!r}")
        total = len(data) if isinstance(data, Sized) else 0  # a generator's total is unknown
        result = InsertResult()
        done = 0
        for items in chunks(data, chunk_size):
            hook = None
            if progress is not None:
                start = done

                def hook(k: int, start: int = start) -> None:
                    # items embedded so far in this chunk, reported before the chunk is written
                    progress(start + k, max(total, start + k))

            inserted, failed = self.chunk(items, done, on_error, hook)
            result.extend(inserted)
            result.failed.extend(failed)
            done += len(items)
            if progress is not None:
                progress(done, max(total, done))
        return result

    def default_chunk_size(self) -> int:
        """Rows per chunk: remote providers want enough items to keep all their request slots busy."""
        wanted = [v.embed_fn.preferred_chunk_size for v in self.spec.vectors.values() if v.embed_fn]
        return max([DEFAULT_CHUNK_SIZE, *wanted])

    def replace(
        self,
        items: Sequence[Any],
        replaces: Sequence[Any],
        *,
        on_error: OnError = "raise",
        progress: Progress | None = None,
    ) -> InsertResult:
        """Insert ``items`` as one chunk and delete the rows with primary keys ``replaces`` in the
        same transaction; see :meth:`lookalike.Table.replace_rows`."""
        check_on_error(on_error)
        total = len(items)
        hook = None if progress is None else (lambda k: progress(k, max(total, k)))
        inserted, failed = self.chunk(items, 0, on_error, hook, replaces=replaces)
        if progress is not None:
            progress(total, total)
        return InsertResult(inserted, failed)

    def chunk(
        self,
        items: Sequence[Any],
        base_index: int,
        on_error: OnError,
        progress: ChunkProgress | None = None,
        replaces: Sequence[Any] = (),
        *,
        embed: bool = True,
    ) -> tuple[list[Any], list[FailedItem]]:
        """Prepare, embed and write one chunk in one transaction; returns (inserted rows, failed items).

        ``base_index`` is the position of ``items[0]`` in the whole input (errors name items by it).
        ``replaces``: primary keys deleted in the same transaction. ``embed=False`` takes the rows'
        vectors as they are, for rows copied from another table: they are checked, but a missing one
        stays NULL instead of being computed from its source.
        """
        failed: list[FailedItem] = []
        rows: list[Row] = []
        for j, obj in enumerate(items):
            try:
                rows.append((j, self.row(obj, base_index + j)))
            except LookalikeError as exc:
                failed.append(item_failure(exc, base_index + j, obj, on_error))
        rows = self._checked(rows, items, base_index, on_error, failed)
        side: list[SideWrites] = []
        if embed:
            try:
                errors, side = self.fill_vectors(rows, on_error, base_index, progress)
            except LookalikeError as exc:
                if exc.index is None:
                    # about the whole call, not one item (a rejected key, a missing model, a provider
                    # that is down): naming an item would blame the wrong one; nothing was written
                    raise
                # the item itself when the embedder named only its position ("item 3 (None)" helps no one)
                item = exc.item if exc.item is not None else _item_at(items, exc.index - base_index)
                raise BulkInsertError(exc, index=exc.index, item=item) from exc
            failed += [FailedItem(base_index + j, describe_item(items[j]), exc) for j, exc in errors.items()]
            rows = [(j, row) for j, row in rows if j not in errors]
            # computed vectors against the column (an embedder without declared dimensions could
            # differ); one array check, and row by row only to name a bad one
            if side and not self.vectors_ok(rows):
                for j, row in rows:
                    self.check_vectors(row, base_index + j)
        self.fill_tags(rows)
        ids = self.write(rows, side, replaces) if rows or replaces else []
        inserted = [self.result_row(items[j], row, pk) for (j, row), pk in zip(rows, ids)]
        failed.sort(key=lambda f: f.index)
        return inserted, failed

    def _checked(
        self,
        rows: list[Row],
        items: Sequence[Any],
        base_index: int,
        on_error: OnError,
        failed: list[FailedItem],
    ) -> list[Row]:
        """The rows whose given vectors pass the checks; the others are raised or added to ``failed``."""
        if self.vectors_ok(rows):
            return rows
        kept: list[Row] = []
        for j, row in rows:  # something is off: check row by row to name the item
            try:
                self.check_vectors(row, base_index + j)
            except LookalikeError as exc:
                failed.append(item_failure(exc, base_index + j, items[j], on_error))
                continue
            kept.append((j, row))
        return kept

    def vectors_ok(self, rows: Sequence[Row]) -> bool:
        """Check the given vectors of many rows at once (one array op per column), as float32 arrays.

        Returns False when any vector is malformed; the caller then checks row by row to name it.
        """
        for name, vec in self.spec.vectors.items():
            given = [row for _, row in rows if row.get(name) is not None]
            if not given:
                continue
            try:
                matrix = np.asarray([row[name] for row in given], dtype=np.float32)
            except (TypeError, ValueError):
                return False
            if matrix.shape != (len(given), vec.dimensions) or not np.isfinite(matrix).all():
                return False
            for row, vector in zip(given, matrix):
                row[name] = vector
        return True

    def fill_vectors(
        self,
        rows: Sequence[Row],
        on_error: OnError,
        base_index: int = 0,
        progress: ChunkProgress | None = None,
    ) -> tuple[dict[int, LookalikeError], list[SideWrites]]:
        """Compute missing vectors in place.

        Returns the errors by position in the chunk (only with ``skip``; each carries its item's index
        and column) and, per vector column, the cache entries and source records to write in the same
        transaction as the rows.
        """
        errors: dict[int, LookalikeError] = {}
        side: list[SideWrites] = []
        for name, vec in self.spec.vectors.items():
            if vec.source_field is None or vec.embed_fn is None:
                continue
            source = vec.source_field
            todo = [
                (j, row)
                for j, row in rows
                if j not in errors and row.get(name) is None and not is_empty(row.get(source))
            ]
            if not todo:
                continue
            cache = (
                None
                if vec.embed_fn.remote
                else EmbeddingCache(lambda: self.database.connection(write=False), vec.embed_fn)
            )
            infos: dict[int, SourceInfo] = {}
            hook = None
            if progress is not None and not side:  # report the first embedded column's progress only
                hook = lambda done, _total: progress(done)  # noqa: E731
            try:
                out = self.embed_sources(
                    vec, [row[source] for _, row in todo], on_error, cache=cache, infos=infos, progress=hook
                )
            except LookalikeError as exc:
                if exc.index is not None:  # the embedder names the position in ``todo``
                    exc.with_context(index=base_index + todo[exc.index][0], column=name)
                raise
            seen: set[int] = set()
            for (j, row), res in zip(todo, out):
                if isinstance(res, LookalikeError):
                    if id(res) in seen:  # a copy of a failed image shares its error: give it its own
                        res = res.for_item(item=row[source])
                    seen.add(id(res))
                    errors[j] = res.with_context(index=base_index + j, column=name)
                elif res is not None:
                    row[name] = res
            side.append(SideWrites(name, cache, {todo[k][0]: info for k, info in infos.items()}))
        return errors, side

    def fill_tags(self, rows: Sequence[Row]) -> None:
        """Fill each tag column the rows leave empty from their (checked) vectors, in place.

        One matrix product per tag column for the whole chunk; tags given with a row are kept.
        """
        for name, tagger in self.taggers.items():
            column = tagger.spec.vector_field
            todo = [row for _, row in rows if row.get(column) is not None and row.get(name) is None]
            if not todo:
                continue
            matrix = np.asarray([row[column] for row in todo], dtype=np.float32)
            for row, (text, scores_of) in zip(todo, tagger.tag(matrix)):
                row[name] = text
                if tagger.spec.scores_field is not None:
                    row[tagger.spec.scores_field] = scores_of

    def embed_sources(
        self, vec: VectorSpec, sources: list[Any], on_error: OnError, **kwargs: Any
    ) -> list[Any]:
        """Embed ``sources`` with the column's embedder (see ``BaseEmbeddingFunction.embed_sources``)."""
        if vec.embed_fn is None:
            raise ConfigurationError(f"vector column {vec.name!r} has no embedding function")
        return vec.embed_fn.embed_sources(sources, source_type=vec.source_type, on_error=on_error, **kwargs)

    def write(
        self, rows: Sequence[Row], side: Sequence[SideWrites] = (), replaces: Sequence[Any] = ()
    ) -> list[Any]:
        """Insert rows, the new cache entries and the rows' source records in one transaction.

        ``replaces``: primary keys of rows deleted in the same transaction, before the insert.
        Returns the new rows' primary keys, in order.
        """
        with self.database.connection(write=True) as conn:
            pk = self.spec.sa_table.c[self.spec.primary_key]
            for start in range(0, len(replaces), DELETE_BATCH):
                delete_rows(conn, self.spec, pk.in_(list(replaces[start : start + DELETE_BATCH])))
            ids = self.database.engine.insert_rows(conn, self.spec, [row for _, row in rows]) if rows else []
            written = {j: k for k, (j, _) in enumerate(rows)}
            for entry in side:
                if entry.cache is not None:
                    entry.cache.flush(conn)
                record_sources(
                    conn,
                    self.spec.name,
                    entry.column,
                    [(ids[written[j]], info) for j, info in entry.infos.items() if j in written],
                )
            return ids


# ---------------------------------------------------------------------- helpers


def delete_rows(conn: Connection, spec: TableSpec, where: Any) -> int:
    """Delete the rows matching ``where`` (all when None) and their source records, inside ``conn``."""
    stmt = sa.delete(spec.sa_table)
    if where is not None:
        stmt = stmt.where(where)
    if spec.vectors:
        forget_rows(conn, spec.sa_table, spec.primary_key, where)
    return conn.execute(stmt).rowcount


def _item_at(items: Sequence[Any], position: int) -> Any:
    """``items[position]``, or None when the position is not in this chunk."""
    return items[position] if 0 <= position < len(items) else None


def item_failure(exc: LookalikeError, index: int, item: Any, on_error: OnError) -> FailedItem:
    """The failure of input ``index``: raised as a :class:`BulkInsertError`, or returned to skip it.

    Either way the error names what failed (``item`` when it names nothing more precise, such as a
    vector), so the raised text is the skipped item's text behind the bulk prefix.
    """
    exc.with_context(index=index, item=item)
    if on_error == "raise":
        raise BulkInsertError(exc, index=index) from exc
    return FailedItem(index, describe_item(item), exc)


def model_defaults(spec: TableSpec) -> dict[str, Any]:
    """The model's field defaults (values or factories) for columns other than the primary key."""
    out: dict[str, Any] = {}
    fields = spec.model.model_fields if spec.model is not None else {}
    for name, info in fields.items():
        if name not in spec.sa_table.c or name == spec.primary_key:
            continue
        if info.default_factory is not None:
            out[name] = info.default_factory
        elif info.default is not None and info.default is not PydanticUndefined:
            out[name] = info.default
    return out


def check_on_error(on_error: str) -> None:
    """Refuse an ``on_error`` policy other than ``"raise"`` or ``"skip"``."""
    if on_error not in ("raise", "skip"):
        raise ConfigurationError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last may be shorter), read lazily."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def is_empty(value: Any) -> bool:
    """A source that leaves its vector NULL: ``None`` or blank text."""
    return value is None or (isinstance(value, str) and not value.strip())


def plain(value: Any) -> Any:
    """A vector as a list (model fields hold lists), anything else as it is."""
    return value.tolist() if isinstance(value, np.ndarray) else value
