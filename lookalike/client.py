"""``connect(url) -> Client``: tables, raw SQL and sessions on one database.

The URL's scheme picks the engine (a SQLite file by default; ``postgresql://`` and ``mysql+pymysql://``
or ``tidb://`` for the server engines). Table definitions and embedder configurations are stored in
the database, so :meth:`Client.open_table` works in any process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, overload

import sqlalchemy as sa

from lookalike.engines.base import Engine, engine_for_url
from lookalike.errors import ConfigurationError, LookalikeError, SchemaError, TableNotFoundError
from lookalike.results import ExecuteResult, QueryResult
from lookalike.schema import TableSpec
from lookalike.session import Database, Session
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

    # pytidb's own attribute; its tests and examples open ``Session(client._db_engine)`` with it
    _db_engine = db_engine

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
    def session(self, *, provided_session: Any = None) -> Iterator[Session]:
        """One transaction across table calls: committed at the end, rolled back on an exception.

        Yields a :class:`~lookalike.session.Session` with ``commit()``, ``rollback()`` and ``execute()``.
        ``provided_session`` (a SQLAlchemy ``Session`` or ``Connection`` on this database) makes the
        calls inside join that transaction instead; its owner commits or rolls it back.
        """
        with self.database.session(provided_session) as session:
            yield session

    @property
    def is_serverless(self) -> bool:
        """True when connected to TiDB Cloud (pytidb's name). pytidb's own tests read it as "full-text
        search is available"; on lookalike full-text search works on every engine, so don't gate on it."""
        return bool(getattr(self.engine, "is_serverless", False))

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
                # asked-for indexes, VectorIndex entries and the engine's default (HNSW on servers)
                for column, metric, params in self.engine.declared_indexes(spec):
                    self.engine.create_vector_index(conn, spec, column, metric, params)
        table = Table(self.database, spec, self)
        self._tables[spec.name] = table
        return table

    open_table_if_missing: Literal["raise", "none"] = "raise"
    """What :meth:`open_table` does for a missing table unless told: raise ``TableNotFoundError``,
    or ``"none"``, return None as pytidb does (set it on a client that runs pytidb code)."""

    @overload
    def open_table(
        self,
        name: str,
        *,
        embed_fn: BaseEmbeddingFunction | None = None,
        if_missing: Literal["raise"] | None = None,
    ) -> Table: ...

    @overload
    def open_table(
        self,
        name: str,
        *,
        embed_fn: BaseEmbeddingFunction | None = None,
        if_missing: Literal["none"],
    ) -> Table | None: ...

    def open_table(
        self,
        name: str,
        *,
        embed_fn: BaseEmbeddingFunction | None = None,
        if_missing: Literal["raise", "none"] | None = None,
    ) -> Table | None:
        """Open an existing table; its columns and embedders are rebuilt from the database.

        ``embed_fn`` replaces the stored embedder (e.g. a class that can't be imported here). A
        missing table raises ``TableNotFoundError``; ``if_missing="none"`` (or the client's
        :attr:`open_table_if_missing`) returns None instead, as pytidb does.
        """
        missing = self.open_table_if_missing if if_missing is None else if_missing
        if missing not in ("raise", "none"):
            raise ConfigurationError(f"if_missing must be 'raise' or 'none', got {missing!r}")
        if missing == "none" and not self.has_table(name):
            return None
        return self._open_table(name, embed_fn)

    def _open_table(self, name: str, embed_fn: BaseEmbeddingFunction | None) -> Table:
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

    def configure_embedding_provider(
        self, provider: str, api_key: str | None, use_server: bool | None = None
    ) -> None:
        """pytidb's call: use ``api_key`` for ``provider``'s embedders that were given none, in this
        process. Never stored: tables keep the name of the provider's environment variable
        (see :func:`lookalike.embeddings.registry.configure_embedding_provider`). ``use_server``
        (pytidb: let TiDB Cloud embed) is accepted and unused: lookalike embeds in this process."""
        from lookalike.embeddings.registry import configure_embedding_provider

        configure_embedding_provider(provider, api_key)

    def drop_table(self, name: str, if_not_exists: Literal["raise", "skip"] = "raise") -> None:
        """Drop a table; ``if_not_exists="skip"`` ignores a missing one, ``"raise"`` raises."""
        if if_not_exists not in ("raise", "skip"):
            raise ConfigurationError(f"if_not_exists must be 'raise' or 'skip', got {if_not_exists!r}")
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

    # ------------------------------------------------------------------ databases
    # PostgreSQL and TiDB: the server's databases. The embedded engine: SQLite files NAME.db in the
    # folder of the current file (names must be safe file names; see SQLiteEngine.database_file).

    def current_database(self) -> str | None:
        """The database this client uses (the embedded engine: the file's name without ``.db``)."""
        return self.engine.current_database()

    def list_databases(self) -> list[str]:
        """The databases this client could :meth:`use_database`, sorted."""
        return self.engine.list_databases()

    def has_database(self, name: str) -> bool:
        """True when database ``name`` exists."""
        return self.engine.has_database(self.engine.check_database_name(name))

    def create_database(self, name: str, if_exists: Literal["raise", "skip"] = "raise") -> None:
        """Create database ``name``; ``if_exists="skip"`` leaves an existing one as it is."""
        if if_exists not in ("raise", "skip"):
            raise ConfigurationError(f"if_exists must be 'raise' or 'skip', got {if_exists!r}")
        if self.has_database(name):
            if if_exists == "skip":
                return
            raise SchemaError(f"database {name!r} already exists; pass if_exists='skip' to keep it")
        self.engine.create_database(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` and everything in it (a missing one is a no-op, as in pytidb).

        The current database is refused: :meth:`use_database` another one first.
        """
        name = self.engine.check_database_name(name)
        if name == self.current_database():
            raise ConfigurationError(
                f"database {name!r} is the one this client uses; use_database() another one before dropping it"
            )
        self.engine.drop_database(name)

    def use_database(self, name: str, *, ensure_db: bool = False) -> None:
        """Reconnect this client to database ``name`` (created first with ``ensure_db=True``).

        The old connection is closed, so tables opened before raise: open them again.
        Refused inside :meth:`session` (its transaction belongs to the old connection).
        """
        if self.database.in_session:
            raise ConfigurationError("use_database() can't switch databases inside a session()")
        if not self.has_database(name):
            if not ensure_db:
                raise ConfigurationError(
                    f"Database {name!r} does not exist; create it with create_database() or pass ensure_db=True"
                )
            self.create_database(name, if_exists="skip")
        new = self.engine.open_database(name)
        old, self.database = self.database, Database(new)
        self._tables.clear()
        old.close()

    # ------------------------------------------------------------------ raw SQL
    def execute(
        self, sql: str | Any, params: Mapping[str, Any] | None = None, raise_error: bool = True
    ) -> ExecuteResult:
        """Run a statement; the result has ``success``, ``rowcount`` (rows affected) and ``message``.

        Errors raise (pytidb swallows them by default, which hides failed writes); ``raise_error=False``
        gives pytidb's form: a result with ``success=False`` and the error's text in ``message``.
        """
        stmt = sa.text(sql) if isinstance(sql, str) else sql
        try:
            with self.database.connection(write=True) as conn:
                result = conn.execute(stmt, dict(params or {}))
                # the drivers' -1 ("not counted": DDL, most SELECTs) is 0 rows affected, as in pytidb
                count = max(result.rowcount, 0) if result.rowcount is not None else 0
        except LookalikeError as exc:
            if raise_error:
                raise
            return ExecuteResult(rowcount=0, success=False, message=str(exc))
        return ExecuteResult(rowcount=count, success=True)

    def query(self, sql: str | Any, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run a query and return its rows (``.to_list()``, ``.scalar()``, ``.to_pandas()``...)."""
        stmt = sa.text(sql) if isinstance(sql, str) else sql
        # driver errors become LookalikeErrors in ``database.connection``, as for every other call
        with self.database.connection(write=False) as conn:
            result = conn.execute(stmt, dict(params or {}))
            rows = [dict(r._mapping) for r in result] if result.returns_rows else []
        return QueryResult(rows)


class TiDBClient(Client):
    """pytidb's name for the client, with pytidb's one different default: :meth:`open_table` returns
    None for a missing table (pytidb's example apps test for it), where :class:`Client` raises
    ``TableNotFoundError`` so a mistyped name fails where it is made."""

    open_table_if_missing: Literal["raise", "none"] = "none"
