"""``Database``: one engine plus the transaction a ``session()`` holds open.

This is the seam the layers above the engine share. ``Table``, searches, ingest, copies and folder
indexes ask it for a connection (``connection(write=)``) and never reach into ``Client``: inside
``client.session()`` every call joins the session's transaction, outside it each call gets its own.
Driver errors raised while a connection is in use become :class:`~lookalike.errors.LookalikeError`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

from lookalike.engines.base import Engine
from lookalike.errors import ConfigurationError, LookalikeError

__all__ = ["Database"]


class Database:
    """An engine and its session state; ``Client`` owns one and hands it to each ``Table``."""

    def __init__(self, engine: Engine) -> None:
        self._engine: Engine | None = engine
        self._session: contextvars.ContextVar[Connection | None] = contextvars.ContextVar(
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
    def session(self) -> Iterator[Connection]:
        """One transaction for every call inside: committed at the end, rolled back on an exception.

        Nested sessions join the outer one.
        """
        outer = self._session.get()
        if outer is not None:
            yield outer
            return
        engine = self.engine
        errors = engine.caught_errors
        with engine.sa_engine.connect() as conn:
            conn = conn.execution_options(lookalike_write=True)
            token = self._session.set(conn)
            try:
                trans = conn.begin()
            except errors as exc:
                self._session.reset(token)
                raise engine.translate_error(exc) from exc
            try:
                yield conn
            except BaseException:
                trans.rollback()
                engine.notify_reset()
                raise
            else:
                try:
                    trans.commit()
                except errors as exc:
                    engine.notify_reset()
                    raise engine.translate_error(exc) from exc
            finally:
                self._session.reset(token)

    @contextmanager
    def connection(self, *, write: bool) -> Iterator[Connection]:
        """The session's connection, or a fresh transaction when no session is open."""
        engine = self.engine
        conn = self._session.get()
        if conn is not None:
            try:
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
