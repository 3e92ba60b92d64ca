"""``connect(url) -> Client``: tables, raw SQL and sessions on one database.

The URL's scheme picks the engine (a SQLite file by default; ``postgresql://`` and ``mysql+pymysql://``
or ``tidb://`` for the server engines). Table definitions and embedder configurations are stored in
the database, so :meth:`Client.open_table` works in any process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from lookalike.engines.base import Engine, engine_for_url
from lookalike.errors import ConfigurationError, SchemaError, TableNotFoundError
from lookalike.results import QueryResult
from lookalike.schema import TableSpec
from lookalike.session import Database
from lookalike.table import Table

if TYPE_CHECKING:
    from sqlmodel import SQLModel

    from lookalike.embeddings.base import BaseEmbeddingFunction

__all__ = ["Client", "TiDBClient", "connect"]


def connect(url: str | os.PathLike[str] | None = None, **kwargs: Any) -> Client:
    """Open a database and return a :class:`Client`.

    ``None`` opens ``./lookalike.db``; a path or ``sqlite:///path`` opens that SQLite file;
    ``":memory:"`` a throw-away in-memory database; ``postgresql://…`` PostgreSQL with pgvector;
    ``mysql+pymysql://…`` or ``tidb://…`` TiDB. pytidb's keyword arguments (``host``, ``port``,
    ``username``, ``password``, ``database``, ``enable_ssl``, ``ensure_db``) open TiDB.
    """
    return Client.connect(url, **kwargs)


class Client:
    """A connection to one database: create/open/drop tables, run SQL, group calls in a session."""

    def __init__(self, engine: Engine) -> None:
        self.database = Database(engine)
        """The engine and its session state, shared with every table of this client."""
        self._tables: dict[str, Table] = {}

    @classmethod
    def connect(cls, url: str | os.PathLike[str] | None = None, **kwargs: Any) -> Client:
        """See :func:`lookalike.connect`."""
        if url is None and "host" in kwargs:
            url = "tidb://"
        text = "lookalike.db" if url is None else os.fspath(url)
        return cls(engine_for_url(text).from_url(text, **kwargs))

    # ------------------------------------------------------------------ lifecycle
    @property
    def engine(self) -> Engine:
        """The storage engine (raises once the client is closed)."""
        return self.database.engine

    @property
    def db_engine(self) -> sa.Engine:
        """The SQLAlchemy engine underneath (pytidb's name)."""
        return self.engine.sa_engine

    def close(self) -> None:
        """Close the client's connections; further calls raise."""
        self.database.close()

    disconnect = close

    @property
    def closed(self) -> bool:
        return self.database.closed

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.database.closed else self.engine.name
        return f"<lookalike.Client {state}>"

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def session(self) -> Iterator[Client]:
        """One transaction across table calls: committed at the end, rolled back on an exception."""
        with self.database.session():
            yield self

    # ------------------------------------------------------------------ tables
    def create_table(
        self,
        *,
        schema: type[SQLModel],
        if_exists: Literal["raise", "overwrite", "skip"] = "raise",
    ) -> Table:
        """Create the table for ``schema`` (a :class:`~lookalike.TableModel` class)."""
        if if_exists not in ("raise", "overwrite", "skip"):
            raise ConfigurationError(f"if_exists must be 'raise', 'overwrite' or 'skip', got {if_exists!r}")
        spec = TableSpec.from_model(schema)
        self.engine.check_spec(spec)
        with self.database.connection(write=True) as conn:
            exists = self.engine.has_table(conn, spec.name)
            if exists and if_exists == "raise":
                raise SchemaError(
                    f"table {spec.name!r} already exists; pass if_exists='overwrite' to replace it "
                    "or if_exists='skip' to open it"
                )
            if exists and if_exists == "skip":
                pass
            else:
                if exists:
                    self.engine.drop_table(conn, spec.name)
                self.engine.create_table(conn, spec)
                for vec in spec.vectors.values():
                    if vec.index:
                        self.engine.create_vector_index(
                            conn, spec, vec.name, vec.distance_metric, vec.index_params
                        )
        table = Table(self.database, spec, self)
        self._tables[spec.name] = table
        return table

    def open_table(self, name: str, *, embed_fn: BaseEmbeddingFunction | None = None) -> Table:
        """Open an existing table; its columns and embedders are rebuilt from the database.

        ``embed_fn`` replaces the stored embedder (e.g. a class that can't be imported here).
        """
        from lookalike.embeddings.registry import build_from_config

        cached = self._tables.get(name)
        if cached is not None and embed_fn is None:
            with self.database.connection(write=False) as conn:
                if self.engine.has_table(conn, name):
                    return cached
        with self.database.connection(write=False) as conn:
            if not self.engine.has_table(conn, name):
                raise TableNotFoundError(f"table {name!r} does not exist; known tables: {self.list_tables()}")
            desc = self.engine.load_description(conn, name)
        if desc is None:
            raise TableNotFoundError(
                f"table {name!r} exists but was not created by lookalike (no stored definition); "
                "create it with client.create_table(schema=...)"
            )
        embedders: dict[str, BaseEmbeddingFunction | None] = {}
        for col, vec in desc.get("vectors", {}).items():
            config = vec.get("embedder")
            if embed_fn is not None:
                stored = vec.get("dimensions")
                if embed_fn.dimensions is not None and stored is not None and embed_fn.dimensions != stored:
                    raise SchemaError(
                        f"table {name!r} stores {stored}-dimensional vectors in {col!r}, but "
                        f"{embed_fn.model_name} produces {embed_fn.dimensions} dimensions"
                    )
                embedders[col] = embed_fn
            elif config:
                embedders[col] = build_from_config(config)
            else:
                embedders[col] = None
        spec = TableSpec.from_description(desc, embedders)
        table = Table(self.database, spec, self)
        self._tables[name] = table
        return table

    def drop_table(self, name: str, if_not_exists: Literal["raise", "skip"] = "raise") -> None:
        """Drop a table; ``if_not_exists="skip"`` ignores a missing one."""
        with self.database.connection(write=True) as conn:
            if not self.engine.has_table(conn, name):
                if if_not_exists == "skip":
                    return
                raise TableNotFoundError(f"table {name!r} does not exist")
            self.engine.drop_table(conn, name)
        self._tables.pop(name, None)

    def list_tables(self) -> list[str]:
        """Names of the tables in the database (lookalike's internal tables excluded)."""
        with self.database.connection(write=False) as conn:
            return self.engine.list_tables(conn)

    def has_table(self, name: str) -> bool:
        """True when the table exists."""
        with self.database.connection(write=False) as conn:
            return self.engine.has_table(conn, name)

    table_names = list_tables

    # ------------------------------------------------------------------ raw SQL
    def execute(self, sql: str | Any, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement and return the number of rows it affected. Errors raise."""
        stmt = sa.text(sql) if isinstance(sql, str) else sql
        with self.database.connection(write=True) as conn:
            result = conn.execute(stmt, dict(params or {}))
            return result.rowcount if result.rowcount is not None else -1

    def query(self, sql: str | Any, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run a query and return its rows (``.to_list()``, ``.scalar()``, ``.to_pandas()``...)."""
        stmt = sa.text(sql) if isinstance(sql, str) else sql
        # driver errors become LookalikeErrors in ``database.connection``, as for every other call
        with self.database.connection(write=False) as conn:
            result = conn.execute(stmt, dict(params or {}))
            rows = [dict(r._mapping) for r in result] if result.returns_rows else []
        return QueryResult(rows)


TiDBClient = Client
"""pytidb's name for the client, so pytidb code reads the same."""
