"""The engine seam: one small base class, one module per engine, a registry keyed by URL scheme.

An engine owns a SQLAlchemy engine and knows its dialect's vector SQL: how vectors are stored, how a
top-k search with filters runs, how an ANN index is made. Everything portable (the table catalogue
that lets ``open_table`` work in a new process, DDL, inserts with ids) lives here on the base class.
"""

from __future__ import annotations

import importlib
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lookalike.errors import (
    ConfigurationError,
    EngineError,
    LookalikeError,
    MissingDependencyError,
    SchemaError,
)
from lookalike.schema import TableSpec

CATALOG_TABLE = "_lookalike_tables"
INTERNAL_PREFIX = "_lookalike"


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
    extra: dict[str, Any] = field(default_factory=dict)


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

    def __init__(self, sa_engine: sa.Engine) -> None:
        self.sa_engine = sa_engine
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
    def from_url(cls, url: str, **kwargs: Any) -> Engine:
        """Open the engine for ``url``."""

    def close(self) -> None:
        """Release connections."""
        self.sa_engine.dispose()

    # ------------------------------------------------------------------ transactions
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
        except (sa.exc.SQLAlchemyError, *self.driver_errors) as exc:
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
            ids.append(row.get(pk.name) if row.get(pk.name) is not None else res.inserted_primary_key[0])
        return ids

    # ------------------------------------------------------------------ vectors
    def _names(self, spec: TableSpec, request: SearchRequest) -> list[str]:
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

    def json_contains(self, column: Any, value: Any) -> Any:
        """A boolean expression: the JSON array in ``column`` contains ``value``."""
        raise ConfigurationError(f"$contains on JSON is not supported by {self.name}")

    def notify_reset(self) -> None:
        """Called after a rollback: caches may hold rows that never committed."""

    def after_write(self, conn: Connection) -> None:
        """Called inside each committed write transaction opened outside a session, just before the
        commit (housekeeping such as pruning a change log). The default does nothing."""


# ---------------------------------------------------------------------- registry

_ENGINES: dict[str, tuple[str, str | None, str | None]] = {
    # scheme: ("module:Class", extra, pip package)
    "sqlite": ("lookalike.engines.sqlite:SQLiteEngine", None, None),
    "file": ("lookalike.engines.sqlite:SQLiteEngine", None, None),
    "postgresql": ("lookalike.engines.postgres:PostgresEngine", "postgres", "psycopg[binary]"),
    "postgres": ("lookalike.engines.postgres:PostgresEngine", "postgres", "psycopg[binary]"),
    "mysql": ("lookalike.engines.tidb:TiDBEngine", "tidb", "pymysql"),
    "tidb": ("lookalike.engines.tidb:TiDBEngine", "tidb", "pymysql"),
}


def register_engine(scheme: str, target: str, *, extra: str | None = None) -> None:
    """Register an engine class (``"module:Class"``) for a URL scheme."""
    _ENGINES[scheme] = (target, extra, None)


def engine_for_url(url: str) -> type[Engine]:
    """Pick the engine class from the URL's scheme (``postgresql+psycopg://`` → ``postgresql``)."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else "sqlite"
    entry = _ENGINES.get(scheme)
    if entry is None:
        hints = "; ".join(
            f"{s}:// (pip install 'lookalike[{extra}]')" if extra else f"{s}://"
            for s, (_, extra, _) in sorted(_ENGINES.items())
        )
        raise ConfigurationError(
            f"unknown database URL scheme {scheme!r} in {redact_url(url)!r}; known: {hints}"
        )
    target, extra, package = entry
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if extra:
            raise MissingDependencyError(f"the {scheme} engine", extra, package=package) from exc
        raise
    return getattr(module, cls_name)


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        return url.split("@")[-1] if "@" in url else url
    return parsed.render_as_string(hide_password=True)
