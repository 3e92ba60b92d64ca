"""``Database``: one engine plus the transaction a ``session()`` holds open.

This is the seam the layers above the engine share. ``Table``, searches, ingest, copies and folder
indexes ask it for a connection (``connection(write=)``) and never reach into ``Client``: inside
``client.session()`` every call joins the session's transaction, outside it each call gets its own.
Driver errors raised while a connection is in use become :class:`~lookalike.errors.LookalikeError`.
:class:`Session` is what ``client.session()`` yields: ``commit()``, ``rollback()`` and ``execute()`` on
that transaction, or on a SQLAlchemy session the caller provided.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session as OrmSession

from lookalike.engines.base import Engine
from lookalike.errors import ConfigurationError, LookalikeError

__all__ = ["Database", "Session"]


class Session:
    """The transaction ``client.session()`` holds open: calls inside the block join it.

    ``commit()`` and ``rollback()`` end the work so far and start a fresh transaction on the same
    connection, as a SQLAlchemy ``Session`` does; whatever is pending when the block ends is
    committed (rolled back on an exception). A session joined from ``provided_session=`` belongs to
    its owner: the block neither commits nor closes it, but ``commit()`` / ``rollback()`` here act on it.
    """

    def __init__(self, engine: Engine, connection: Connection | None, owner: Any = None) -> None:
        self._engine = engine
        self._connection = connection  # None: ask the provided ORM session each time
        self._owner = owner  # a provided SQLAlchemy Session or Connection: it owns the transaction
        self._trans: Any = None if owner is not None or connection is None else connection.begin()

    @property
    def connection(self) -> Connection:
        """The SQLAlchemy connection every call in the session uses."""
        if self._connection is not None:
            return self._connection
        # an ORM session hands out a new connection after its commit()/rollback(): never keep one
        conn: Connection = self._owner.connection()
        # joined writes must take SQLite's write lock up front, as the client's own sessions do
        return conn.execution_options(lookalike_write=True)

    def execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> Any:
        """Run a statement in the session (a SQLAlchemy ``Result``); ``str`` is taken as SQL text."""
        stmt = sa.text(statement) if isinstance(statement, str) else statement
        return self.connection.execute(stmt, dict(params or {}))

    def commit(self) -> None:
        """Make the work so far permanent; later calls run in a new transaction."""
        errors = self._engine.caught_errors
        try:
            if self._owner is not None:
                self._owner.commit()
            elif self._trans is not None:
                self._trans.commit()
                self._trans = self.connection.begin()
        except errors as exc:
            self._engine.notify_reset()
            raise self._engine.translate_error(exc) from exc

    def rollback(self) -> None:
        """Undo the work since the session began or last committed; later calls run in a new one."""
        if self._owner is not None:
            self._owner.rollback()
        elif self._trans is not None:
            if self._trans.is_active:
                self._trans.rollback()
            self._trans = self.connection.begin()
        self._engine.notify_reset()  # caches may hold rows that never committed

    def _finish(self, ok: bool) -> None:
        """End of the ``with`` block: commit (or roll back) what is pending, if the session is ours."""
        if self._trans is None:
            return
        if not ok:
            if self._trans.is_active:
                self._trans.rollback()
            self._engine.notify_reset()
        elif self._trans.is_active:
            self._trans.commit()


class Database:
    """An engine and its session state; ``Client`` owns one and hands it to each ``Table``."""

    def __init__(self, engine: Engine) -> None:
        self._engine: Engine | None = engine
        self._session: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
            f"lookalike_session_{id(self)}", default=None
        )

    @property
    def engine(self) -> Engine:
        """The storage engine (raises once the database is closed)."""
        if self._engine is None:
            raise ConfigurationError("this lookalike client is closed")
        return self._engine

    @property
    def closed(self) -> bool:
        return self._engine is None

    def close(self) -> None:
        """Release the engine's connections; further calls raise."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    @property
    def in_session(self) -> bool:
        """True inside ``session()`` (in this thread or task)."""
        return self._session.get() is not None

    @contextmanager
    def session(self, provided_session: Any = None) -> Iterator[Session]:
        """One transaction for every call inside: committed at the end, rolled back on an exception.

        Nested sessions join the outer one. ``provided_session`` (a SQLAlchemy ``Session`` or
        ``Connection`` on this database, or a :class:`Session`) is joined instead of a new one.
        """
        outer = self._session.get()
        if provided_session is None and outer is not None:
            yield outer
            return
        if provided_session is not None:
            with self._joined(provided_session) as joined:
                yield joined
            return
        engine = self.engine
        errors = engine.caught_errors
        with engine.sa_engine.connect() as conn:
            conn = conn.execution_options(lookalike_write=True)
            try:
                session = Session(engine, conn)
            except errors as exc:
                raise engine.translate_error(exc) from exc
            token = self._session.set(session)
            try:
                yield session
            except BaseException:
                session._finish(ok=False)
                raise
            else:
                try:
                    session._finish(ok=True)
                except errors as exc:
                    engine.notify_reset()
                    raise engine.translate_error(exc) from exc
            finally:
                self._session.reset(token)

    @contextmanager
    def _joined(self, provided: Any) -> Iterator[Session]:
        """Calls inside use ``provided``'s connection; its owner commits and closes it."""
        engine = self.engine
        if isinstance(provided, Session):
            session = provided
        else:
            if isinstance(provided, Connection):
                conn: Connection | None = provided.execution_options(lookalike_write=True)
                bind: Any = provided.engine
            elif isinstance(provided, OrmSession):
                conn, bind = None, provided.get_bind()
            else:
                raise ConfigurationError(
                    f"provided_session must be a SQLAlchemy Session or Connection, got {type(provided).__name__}"
                )
            if not _same_database(getattr(bind, "url", None), engine.sa_engine.url):
                raise ConfigurationError("provided_session is connected to another database than this client")
            session = Session(engine, conn, owner=provided)
        token = self._session.set(session)
        try:
            yield session
        finally:
            self._session.reset(token)

    @contextmanager
    def connection(self, *, write: bool) -> Iterator[Connection]:
        """The session's connection, or a fresh transaction when no session is open."""
        engine = self.engine
        session = self._session.get()
        if session is not None:
            conn = session.connection
            try:
                # each call is atomic inside the session, as a statement is in MySQL/TiDB: a failed one
                # is undone alone, and on PostgreSQL it no longer aborts the whole transaction
                with conn.begin_nested():
                    yield conn
            except LookalikeError:
                raise
            except engine.caught_errors as exc:
                raise engine.translate_error(exc) from exc
            return
        with engine.begin(write=write) as conn:
            yield conn
            if write:
                engine.after_write(conn)


def _same_database(a: Any, b: sa.URL) -> bool:
    """Whether URL ``a`` reaches the database of ``b``, through any driver (psycopg's async one too)."""
    if not isinstance(a, sa.URL):
        return False
    backend = b.get_backend_name()
    return a.get_backend_name() == backend and a.set(drivername=backend) == b.set(drivername=backend)
