"""The engine seam: one small base class, one module per engine, a registry keyed by URL scheme.

An engine owns a SQLAlchemy engine and knows its dialect's vector SQL: how vectors are stored, how a
top-k search with filters runs, how an ANN index is made. Everything portable (the table catalogue
that lets ``open_table`` work in a new process, DDL, inserts with ids, reading a column's vectors)
lives here on the base class.

Every hook an engine may implement is declared on :class:`Engine` with its default, so a new engine
author sees the whole contract in one place:

* storage of vectors: :meth:`~Engine.vector_type`, :meth:`~Engine.encode_vector`,
  :meth:`~Engine.decode_vector` (default: little-endian float32 blobs in a binary column). The engine
  binds itself to its SQLAlchemy dialect, and :class:`~lookalike.schema.VectorType` asks it there;
* DDL and rows: :meth:`~Engine.after_create`, :meth:`~Engine.drop_table`, :meth:`~Engine.truncate`,
  :meth:`~Engine.insert_rows`, :meth:`~Engine.read_vectors`;
* search: :meth:`~Engine.vector_search` (abstract), :meth:`~Engine.prefetch`,
  :meth:`~Engine.create_vector_index`, :meth:`~Engine.has_vector_index`, :meth:`~Engine.json_contains`;
* full-text search: :meth:`~Engine.create_fts_index`, :meth:`~Engine.has_fts_index`,
  :meth:`~Engine.text_search` (a :class:`TextSearchRequest` in, rows with ``_score`` out; higher is
  more relevant). The default refuses: an engine without full text says so;
* transactions: :meth:`~Engine.translate_error`, :meth:`~Engine.notify_reset`, :meth:`~Engine.after_write`.

Engines are found by URL scheme in :data:`ENGINES`, a :class:`~lookalike._registry.LazyRegistry`:
an engine's module is imported on first use, and a missing driver names the extra to install.
"""

from __future__ import annotations

import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from lookalike._registry import LazyRegistry
from lookalike.errors import (
    ConfigurationError,
    EngineError,
    LookalikeError,
    MissingDependencyError,
    SchemaError,
)
from lookalike.schema import TableSpec, bind_vector_codec
from lookalike.vectors.base import float32_blob, vector_as_list

CATALOG_TABLE = "_lookalike_tables"
INTERNAL_PREFIX = "_lookalike"
READ_PAGE_ROWS = 10_000  # rows per page when read_vectors pages through a table by primary key


@dataclass(frozen=True)
class SearchRequest:
    """One vector search, engine-neutral."""

    column: str
    vector: np.ndarray
    metric: str
    limit: int
    distance_min: float | None = None
    distance_max: float | None = None
    where: Any = None  # a SQLAlchemy boolean expression over the table, or None
    columns: Sequence[str] | None = None  # None: every column
    num_candidate: int | None = None
    """How many candidates an ANN index examines (pgvector's ``hnsw.ef_search``); None: the engine's
    default. Exact searches ignore it."""


@dataclass(frozen=True)
class TextSearchRequest:
    """One full-text search, engine-neutral.

    Without ``raw`` the engine searches for rows containing *any* of :func:`query_words` ``(query)``
    (OR semantics), ranked by relevance; no character of ``query`` acts as an operator. With ``raw``
    the query is passed to the engine's own full-text syntax (FTS5 ``MATCH``, PostgreSQL
    ``to_tsquery``, TiDB ``FTS_MATCH_WORD``) as it is.
    """

    column: str
    query: str
    limit: int
    where: Any = None  # a SQLAlchemy boolean expression over the table, or None
    columns: Sequence[str] | None = None  # None: every column
    raw: bool = False


_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script; "_" and punctuation separate words


def query_words(text: str) -> list[str]:
    """The words of a full-text query, in order, each once (case-insensitively): runs of Unicode
    letters and digits. Quotes, ``*``, ``:``, ``(``, ``-`` and the like only separate words, so a
    query can never carry operators into an engine's full-text syntax."""
    seen: set[str] = set()
    out: list[str] = []
    for word in _WORD.findall(text):
        key = word.casefold()
        if key not in seen:
            seen.add(key)
            out.append(word)
    return out


def score_from_distance(metric: str, distance: np.ndarray) -> np.ndarray:
    """``_score``: higher means more similar, for every metric.

    cosine: ``1 - distance`` (the cosine similarity); inner_product: ``-distance`` (the inner product,
    since the distance is its negative); l2 and l1: ``1 / (1 + distance)`` (in (0, 1]).
    """
    distance = clamp_distance(metric, np.asarray(distance, dtype=np.float64))
    if metric == "cosine":
        return 1.0 - distance
    if metric == "inner_product":
        return -distance
    return 1.0 / (1.0 + distance)


def clamp_distance(metric: str, distance: np.ndarray) -> np.ndarray:
    """Distances held to their metric's range (cosine [0, 2], l2 and l1 ≥ 0): an engine's rounding
    must not yield a cosine similarity above 1 or a negative length."""
    if metric == "cosine":
        return np.clip(distance, 0.0, 2.0)
    if metric in ("l2", "l1"):
        return np.maximum(distance, 0.0)
    return distance


class Engine(ABC):
    """Base class of the storage engines (embedded SQLite, PostgreSQL + pgvector, TiDB)."""

    name: ClassVar[str]
    max_dimensions: ClassVar[int] = 16_000
    supports_returning: ClassVar[bool] = True
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    """Driver exceptions that can escape SQLAlchemy (raw cursors): translated like SQLAlchemy's."""
    index_by_default: ClassVar[bool] = False
    """True when a vector field that says neither ``index=True`` nor ``index=False`` gets an ANN index
    for a cosine or l2 metric at ``create_table`` (pytidb's default, on the server engines)."""

    def __init__(self, sa_engine: sa.Engine) -> None:
        self.sa_engine = sa_engine
        # vector columns compiled or bound with this dialect ask this engine for their type and encoding
        bind_vector_codec(sa_engine.dialect, self)
        self._catalog = sa.Table(
            CATALOG_TABLE,
            sa.MetaData(),
            sa.Column("name", sa.String(255), primary_key=True),
            sa.Column("description", sa.Text, nullable=False),
        )
        self._catalog_ready = False

    # ------------------------------------------------------------------ construction
    @classmethod
    @abstractmethod
    def from_url(cls, url: str | None, **kwargs: Any) -> Engine:
        """Open the engine for ``url`` (``None``: the engine's default, e.g. ``./lookalike.db``)."""

    def close(self) -> None:
        """Release connections."""
        self.sa_engine.dispose()

    # ------------------------------------------------------------------ transactions
    @property
    def caught_errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions :meth:`translate_error` turns into :class:`LookalikeError`: SQLAlchemy's and
        the driver's own (for ``except``: one typed tuple instead of a starred expression)."""
        return (sa.exc.SQLAlchemyError, *self.driver_errors)

    @contextmanager
    def begin(self, *, write: bool) -> Iterator[Connection]:
        """A connection inside a transaction (committed on success, rolled back on error)."""
        try:
            with self.sa_engine.connect() as conn:
                if write:
                    conn = conn.execution_options(lookalike_write=True)
                with conn.begin():
                    yield conn
        except LookalikeError:
            raise
        except self.caught_errors as exc:
            raise self.translate_error(exc) from exc

    def translate_error(self, exc: BaseException) -> LookalikeError:
        """Turn a driver error into a :class:`LookalikeError` (subclasses add specifics)."""
        orig = getattr(exc, "orig", None) or exc
        return EngineError(f"{self.name}: {type(orig).__name__}: {orig}")

    # ------------------------------------------------------------------ catalogue
    def ensure_catalog(self, conn: Connection) -> None:
        if not self._catalog_ready:
            from lookalike.cache import create_tables

            self._catalog.create(conn, checkfirst=True)
            create_tables(conn)
            self._catalog_ready = True

    def save_description(self, conn: Connection, spec: TableSpec) -> None:
        self.ensure_catalog(conn)
        desc = json.dumps(spec.describe(), sort_keys=True)
        conn.execute(sa.delete(self._catalog).where(self._catalog.c.name == spec.name))
        conn.execute(sa.insert(self._catalog).values(name=spec.name, description=desc))

    def load_description(self, conn: Connection, name: str) -> dict[str, Any] | None:
        self.ensure_catalog(conn)
        row = conn.execute(sa.select(self._catalog.c.description).where(self._catalog.c.name == name)).first()
        return None if row is None else json.loads(row[0])

    def forget_description(self, conn: Connection, name: str) -> None:
        self.ensure_catalog(conn)
        conn.execute(sa.delete(self._catalog).where(self._catalog.c.name == name))

    # ------------------------------------------------------------------ tables
    def list_tables(self, conn: Connection) -> list[str]:
        names = sa.inspect(conn).get_table_names()
        return sorted(n for n in names if not n.startswith(INTERNAL_PREFIX))

    def has_table(self, conn: Connection, name: str) -> bool:
        return sa.inspect(conn).has_table(name)

    def check_spec(self, spec: TableSpec) -> None:
        """Refuse what this engine can't store (e.g. too many dimensions)."""
        for vec in spec.vectors.values():
            if vec.dimensions > self.max_dimensions:
                raise SchemaError(
                    f"vector field {vec.name!r} has {vec.dimensions} dimensions; {self.name} stores at most "
                    f"{self.max_dimensions}"
                )

    def create_table(self, conn: Connection, spec: TableSpec) -> None:
        self.check_spec(spec)
        spec.sa_table.create(conn)
        self.after_create(conn, spec)
        for text in spec.fulltext.values():  # FullTextField(index=True) / FullTextIndex(...)
            if text.index:
                self.create_fts_index(conn, spec, text.name, text.language)
        self.save_description(conn, spec)

    def after_create(self, conn: Connection, spec: TableSpec) -> None:
        """Engine-specific DDL after ``CREATE TABLE`` (triggers, indexes)."""

    def drop_table(self, conn: Connection, name: str) -> None:
        from lookalike.cache import forget_table

        conn.execute(sa.text(f"DROP TABLE IF EXISTS {self.quote(name)}"))
        self.forget_description(conn, name)
        forget_table(conn, name)

    def truncate(self, conn: Connection, spec: TableSpec) -> None:
        conn.execute(sa.delete(spec.sa_table))

    def quote(self, name: str) -> str:
        return self.sa_engine.dialect.identifier_preparer.quote(name)

    # ------------------------------------------------------------------ rows
    def insert_rows(self, conn: Connection, spec: TableSpec, rows: list[dict[str, Any]]) -> list[Any]:
        """Insert rows and return their primary keys, in order."""
        if not rows:
            return []
        table = spec.sa_table
        pk = table.c[spec.primary_key]
        groups: dict[frozenset[str], list[int]] = {}
        for i, row in enumerate(rows):  # one executemany per set of keys: each needs one statement
            groups.setdefault(frozenset(row), []).append(i)
        if len(groups) > 1:
            ids: list[Any] = [None] * len(rows)
            for members in groups.values():
                for i, value in zip(members, self.insert_rows(conn, spec, [rows[i] for i in members])):
                    ids[i] = value
            return ids
        if self.supports_returning:
            result = conn.execute(sa.insert(table).returning(pk, sort_by_parameter_order=True), rows)
            return [r[0] for r in result]
        ids = []
        for row in rows:  # engines without RETURNING: one statement per row keeps ids exact
            res = conn.execute(sa.insert(table), row)
            given = row.get(pk.name)
            if given is None and res.inserted_primary_key is not None:
                given = res.inserted_primary_key[0]
            ids.append(given)
        return ids

    def read_vectors(self, conn: Connection, spec: TableSpec, column: str) -> tuple[list[Any], np.ndarray]:
        """Primary keys and a float32 ``(n, dimensions)`` matrix of every row with a vector in ``column``.

        Rows come in primary-key order, read in pages by key (keyset pagination: constant memory on
        the server, no OFFSET rescans). Engines that hold the vectors in memory override this.
        """
        table = spec.sa_table
        pk = table.c[spec.primary_key]
        col = table.c[column]
        ids: list[Any] = []
        chunks: list[np.ndarray] = []
        last = None
        while True:
            stmt = sa.select(pk, col).where(col.is_not(None)).order_by(pk).limit(READ_PAGE_ROWS)
            if last is not None:
                stmt = stmt.where(pk > last)
            page = conn.execute(stmt).all()
            if not page:
                break
            ids.extend(r[0] for r in page)
            chunks.append(np.asarray([r[1] for r in page], dtype=np.float32))
            last = page[-1][0]
        dims = spec.vectors[column].dimensions
        data = np.concatenate(chunks) if chunks else np.empty((0, dims), np.float32)
        return ids, data

    # ------------------------------------------------------------------ vector storage
    def vector_type(self, dimensions: int) -> TypeEngine[Any]:
        """The column type of a vector column (default: a binary column of float32 blobs)."""
        return sa.LargeBinary()

    def encode_vector(self, value: Any) -> Any:
        """A vector (array, list or float32 bytes) as the value bound for :meth:`vector_type`
        (default: little-endian float32 bytes)."""
        return float32_blob(value)

    def decode_vector(self, value: Any) -> list[float]:
        """A stored value of :meth:`vector_type` (never None) as a list of floats."""
        return vector_as_list(value)

    # ------------------------------------------------------------------ search
    def _names(self, spec: TableSpec, request: SearchRequest | TextSearchRequest) -> list[str]:
        """The columns a search returns: those the request names, else every column."""
        return list(request.columns) if request.columns else [c.name for c in spec.sa_table.columns]

    @abstractmethod
    def vector_search(
        self, conn: Connection, spec: TableSpec, request: SearchRequest
    ) -> list[dict[str, Any]]:
        """Top-``limit`` rows by distance; each dict has the columns plus ``_distance``."""

    def prefetch(self, spec: TableSpec, column: str) -> threading.Thread | None:
        """Start loading what a search of ``column`` needs, in the background (or return None)."""
        return None

    def create_vector_index(
        self, conn: Connection, spec: TableSpec, column: str, metric: str, params: dict[str, Any]
    ) -> None:
        """Build an ANN index on ``column`` (engines without one treat this as a no-op)."""

    def has_vector_index(self, conn: Connection, spec: TableSpec, column: str) -> bool:
        return False

    def has_vector_index_for(self, conn: Connection, spec: TableSpec, column: str, metric: str) -> bool:
        """True when an ANN index of ``column`` serves ``metric`` (engines that keep one index per
        column, whatever its metric, answer :meth:`has_vector_index`)."""
        return self.has_vector_index(conn, spec, column)

    def can_index_by_default(self, spec: TableSpec, column: str) -> bool:
        """Whether a default (not asked-for) index of ``column`` can be built; an explicit one that
        can't be built raises instead."""
        return True

    def declared_indexes(self, spec: TableSpec) -> list[tuple[str, str, dict[str, Any]]]:
        """The ``(column, metric, params)`` ANN indexes ``create_table`` builds: those asked for
        (``VectorField(index=True)``, a ``VectorIndex`` in ``__table_args__``) and, on engines with
        :attr:`index_by_default`, cosine/l2 columns that did not opt out with ``index=False``."""
        out: list[tuple[str, str, dict[str, Any]]] = []
        for vec in spec.vectors.values():
            metric = vec.index_metric or vec.distance_metric
            if vec.index is None:
                default = metric in ("cosine", "l2") and self.can_index_by_default(spec, vec.name)
                if not (self.index_by_default and default):
                    continue
            elif not vec.index:
                continue
            out.append((vec.name, metric, dict(vec.index_params)))
        return out

    # ------------------------------------------------------------------ databases (pytidb's client calls)
    def check_database_name(self, name: Any) -> str:
        """The name, or ConfigurationError when this engine can't hold a database of that name."""
        if not isinstance(name, str) or not name.strip() or "\x00" in name:
            raise ConfigurationError(f"a database name must be a non-empty string, got {name!r}")
        return name

    def current_database(self) -> str | None:
        """The name of the database this engine is connected to."""
        return None

    def list_databases(self) -> list[str]:
        """The databases reachable from this connection."""
        raise EngineError(f"the {self.name} engine does not manage databases")

    def has_database(self, name: str) -> bool:
        return self.check_database_name(name) in self.list_databases()

    def create_database(self, name: str) -> None:
        """Create an empty database (the caller checked that it doesn't exist)."""
        raise EngineError(f"the {self.name} engine does not manage databases")

    def drop_database(self, name: str) -> None:
        """Drop a database that is not the current one; a missing one is a no-op."""
        raise EngineError(f"the {self.name} engine does not manage databases")

    def open_database(self, name: str) -> Engine:
        """A new engine, with this one's settings, on the database ``name``."""
        raise EngineError(f"the {self.name} engine does not manage databases")

    def json_contains(self, column: Any, value: Any) -> Any:
        """A boolean expression: the JSON array in ``column`` contains ``value``."""
        raise ConfigurationError(f"$contains on JSON is not supported by {self.name}")

    # ------------------------------------------------------------------ full-text search
    def create_fts_index(self, conn: Connection, spec: TableSpec, column: str, language: str | None) -> None:
        """Build a full-text index on the text column ``column`` (filled from the rows it already
        has, kept in step with later writes). ``language``: the engine's stemming/stop-word setting
        (``None``: no stemming). The caller records the index in the catalogue."""
        raise EngineError(f"full-text search is not supported by the {self.name} engine")

    def has_fts_index(self, conn: Connection, spec: TableSpec, column: str) -> bool:
        """True when a full-text index of ``column`` exists."""
        return False

    def text_search(
        self, conn: Connection, spec: TableSpec, request: TextSearchRequest
    ) -> list[dict[str, Any]]:
        """Top-``limit`` rows by full-text relevance; each dict has the columns plus ``_score``
        (higher is more relevant; no ``_distance``)."""
        raise EngineError(f"full-text search is not supported by the {self.name} engine")

    def notify_reset(self) -> None:
        """Called after a rollback: caches may hold rows that never committed."""

    def after_write(self, conn: Connection) -> None:
        """Called inside each committed write transaction opened outside a session, just before the
        commit (housekeeping such as pruning a change log). The default does nothing."""


# ---------------------------------------------------------------------- registry

ENGINES: LazyRegistry[Engine] = LazyRegistry("database URL scheme", "the {name} engine")
"""Engine classes by URL scheme (``postgresql+psycopg://`` → ``postgresql``), imported on first use.

Every scheme is its own entry, so the list of known schemes in an error shows each spelling and a
missing driver is named after the scheme the URL used."""

_BUILT_IN: tuple[tuple[str, str, str | None, str | None], ...] = (
    # scheme, "module:Class", extra, pip package
    ("sqlite", "lookalike.engines.sqlite:SQLiteEngine", None, None),
    ("file", "lookalike.engines.sqlite:SQLiteEngine", None, None),
    ("postgresql", "lookalike.engines.postgres:PostgresEngine", "postgres", "psycopg[binary]"),
    ("postgres", "lookalike.engines.postgres:PostgresEngine", "postgres", "psycopg[binary]"),
    ("mysql", "lookalike.engines.tidb:TiDBEngine", "tidb", "pymysql"),
    ("tidb", "lookalike.engines.tidb:TiDBEngine", "tidb", "pymysql"),
)
for scheme, target, extra, package in _BUILT_IN:
    ENGINES.register(scheme, target, extra=extra, package=package)
del scheme, target, extra, package


def register_engine(
    scheme: str, target: str | type[Engine], *, extra: str | None = None, package: str | None = None
) -> None:
    """Register an engine class (or ``"module:Class"``, imported on first use) for a URL scheme.

    ``extra``/``package``: what to install when importing it fails (named in the error).
    """
    ENGINES.register(scheme, target, extra=extra, package=package)


def engine_for_url(url: str) -> type[Engine]:
    """Pick the engine class from the URL's scheme (``postgresql+psycopg://`` → ``postgresql``)."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else "sqlite"
    if scheme not in ENGINES:
        hints = "; ".join(
            f"{name}:// (pip install 'lookalike[{entry.extra}]')" if entry.extra else f"{name}://"
            for name, entry in ENGINES.items()
        )
        raise ConfigurationError(
            f"unknown database URL scheme {scheme!r} in {redact_url(url)!r}; known: {hints}"
        )
    return ENGINES.load(scheme)


def missing_driver(scheme: str, *, package: str | None = None) -> MissingDependencyError:
    """The error for an engine whose driver can't be imported: the extra (and package) come from
    the scheme's registry entry; ``package`` names another driver the URL asked for."""
    entry = ENGINES.entry(scheme)
    return MissingDependencyError(
        ENGINES.what.format(name=ENGINES.canonical(scheme)),
        entry.extra or scheme,
        package=package or entry.package,
    )


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        return url.split("@")[-1] if "@" in url else url
    return parsed.render_as_string(hide_password=True)
