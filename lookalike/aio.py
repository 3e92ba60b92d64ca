"""``await connect_async(url) -> AsyncClient``: the client, table and search surface as awaitables.

::

    client = await lookalike.connect_async("photos.db")
    table = await client.open_table("photos")
    hits = await table.search("orange tabby cat").filter({"album": "pets"}).limit(5).to_list()
    await client.close()

Building a search stays synchronous (``.limit(3).filter(...)`` only copies a builder); the calls that
reach the database, an embedder or a reranker are coroutines.

**How it runs.** Each :class:`AsyncClient` owns one bounded worker pool (a
``concurrent.futures.ThreadPoolExecutor`` of ``max_workers`` threads, 4 by default) and runs the
synchronous library calls in it, as ``loop.run_in_executor`` does (submitted to the pool and awaited
through ``asyncio.wrap_future``, so ``close()`` can wait for each call): the event loop never
blocks, a burst of requests queues for a worker instead of starting a thread each, and the process
holds at most ``max_workers`` threads for this client. A call sees the caller's context variables.

- **SQLite**: the embedded engine already serialises writers and lets readers run at once (WAL, its
  own locks on the in-memory matrices), so workers share one engine. An in-memory database is one
  shared connection, so its client gets a single worker.
- **PostgreSQL** goes through the same pool, on psycopg's synchronous driver, by default.
  ``connect_async(url, async_driver=True)`` runs a vector search's SQL on psycopg's async driver
  instead: the query is embedded in a worker, then the engine's own planner and SQL run on an async
  connection through SQLAlchemy's greenlet bridge (``AsyncConnection.run_sync``), one code path for
  both clients, so a search waiting on the database holds no thread. It is not the default: for
  fast local queries it is no faster (200 concurrent searches of 5,000 rows, five runs: 0.53–0.72 s,
  against 0.52–0.63 s through 4 workers), as the planner's Python then runs on the event loop's one
  thread; it suits many concurrent slow queries on a distant server. Reranked, full-text and hybrid searches
  and every other call use the pool. With the pool, concurrency is bounded by ``max_workers``; at
  the default, 4 workers need at most 8 connections (a hybrid search holds two), within
  SQLAlchemy's default pool of 5 plus 10 overflow, so no worker waits for a connection.

The threads a client adds are its ``max_workers`` workers, plus, while a call runs, the short-lived
helper some calls start inside their worker (a hybrid search's full-text half; a cold SQLite vector
matrix loading while a text query is embedded): at most one per worker.

Not offered as awaitables: ``session()`` (its transaction belongs to one thread's connection, and a
task's awaits hop between workers). Run such work in one worker with :meth:`AsyncClient.run_sync`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from lookalike.builder import SearchBuilder
from lookalike.client import Client
from lookalike.errors import ConfigurationError
from lookalike.hybrid import concurrent_reads
from lookalike.results import ExecuteResult, InsertResult, QueryResult
from lookalike.search import Search
from lookalike.table import Table

if TYPE_CHECKING:
    from sqlmodel import SQLModel

    from lookalike.embeddings.base import BaseEmbeddingFunction
    from lookalike.images import SourceInfo
    from lookalike.results import ColumnInfo
    from lookalike.schema import TableSpec, VectorSpec
    from lookalike.search import VectorColumns
    from lookalike.types import OnError, Progress

__all__ = ["DEFAULT_MAX_WORKERS", "AsyncClient", "AsyncSearch", "AsyncTable", "connect_async"]

DEFAULT_MAX_WORKERS = 4
"""Worker threads an :class:`AsyncClient` runs library calls in unless told."""

T = TypeVar("T")


async def connect_async(
    url: str | os.PathLike[str] | None = None,
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    async_driver: bool = False,
    **kwargs: Any,
) -> AsyncClient:
    """Open a database as :func:`lookalike.connect` does and return an :class:`AsyncClient`.

    ``max_workers`` bounds the threads the client runs calls in (see :mod:`lookalike.aio`); the other
    arguments are :func:`lookalike.connect`'s. Connecting runs in a worker too (a server engine may
    retry a refused connection).
    """
    _check_workers(max_workers)
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="lookalike-async")
    try:
        loop = asyncio.get_running_loop()
        call = functools.partial(Client.connect, url, **kwargs)
        client = await loop.run_in_executor(pool, contextvars.copy_context().run, call)
    except BaseException:
        pool.shutdown(wait=False)
        raise
    return AsyncClient(client, max_workers=max_workers, async_driver=async_driver, _pool=pool)


def _check_workers(max_workers: Any) -> int:
    if isinstance(max_workers, bool) or not isinstance(max_workers, (int, np.integer)) or max_workers < 1:
        raise ConfigurationError(f"max_workers must be a positive integer, got {max_workers!r}")
    return int(max_workers)


class AsyncClient:
    """A :class:`~lookalike.Client` whose calls are awaitables, run in this client's worker pool.

    Get one from :func:`connect_async`, or wrap an open client: ``AsyncClient(lookalike.connect(url))``
    (closing the async client closes it). Use ``async with`` or ``await client.close()``.
    """

    def __init__(
        self,
        client: Client,
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        async_driver: bool = False,
        _pool: ThreadPoolExecutor | None = None,
    ) -> None:
        workers = _check_workers(max_workers)
        if not isinstance(client, Client):
            raise ConfigurationError(f"AsyncClient wraps a lookalike Client, got {type(client).__name__}")
        if not concurrent_reads(client.database):
            workers = 1  # one shared connection (in-memory SQLite) must not serve two threads at once
        if _pool is None or workers != max_workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lookalike-async")
        self._client = client
        self._pool = _pool
        self.async_driver = bool(async_driver)
        """PostgreSQL: vector searches run their SQL on psycopg's async driver (see the module)."""
        self.max_workers = workers
        """Threads this client runs calls in (1 for an in-memory database)."""
        self._closing = False
        self._running: set[Future[Any]] = set()

    # ------------------------------------------------------------------ running calls
    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker, with the caller's context variables."""
        if self._closing:
            raise ConfigurationError("this lookalike async client is closed")
        running = self._pool.submit(contextvars.copy_context().run, fn, *args, **kwargs)
        # the worker's own future, not the awaiting task's: a cancelled task cannot stop a thread, so
        # close() must still wait for the call it started
        self._running.add(running)
        running.add_done_callback(self._running.discard)
        return await asyncio.wrap_future(running)

    async def _execute(self, builder: SearchBuilder[Any]) -> QueryResult:
        """Run a search: on PostgreSQL a vector search's SQL goes through psycopg's async driver (the
        query is embedded in a worker first); anything else runs in a worker."""
        make = getattr(self._client.engine, "async_engine", None) if self.async_driver else None
        if make is None or not isinstance(builder, Search) or builder.reranks:
            return await self._call(builder.execute)
        aengine = make()
        if builder.needs_embedding:
            vector = await self._call(builder.query_vector)  # a model or an HTTP API: it blocks
        else:
            vector = builder.query_vector()  # a given vector, only checked
        search = builder.vector(vector)
        database = self._client.database

        def run(conn: Any) -> QueryResult:
            # the same planner and SQL as the sync client, on the async driver's connection
            with database.session(provided_session=conn):
                return search.execute()

        if self._closing:
            raise ConfigurationError("this lookalike async client is closed")
        async with aengine.connect() as aconn:
            return await aconn.run_sync(run)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(client, *args, **kwargs)`` with the synchronous :class:`~lookalike.Client` in one
        worker: for work that must stay on one thread, such as a ``client.session()``."""
        return await self._call(fn, self._client, *args, **kwargs)

    @property
    def sync_client(self) -> Client:
        """The synchronous client underneath (its calls block; use them from a worker only)."""
        return self._client

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has begun."""
        return self._closing

    async def close(self) -> None:
        """Wait for the calls in flight, close the database and stop the workers; further calls raise.

        Closing twice is a no-op.
        """
        if self._closing:
            return
        self._closing = True
        running = list(self._running)
        if running:
            await asyncio.gather(*(asyncio.wrap_future(f) for f in running), return_exceptions=True)
        loop = asyncio.get_running_loop()
        take = getattr(self._client.engine, "take_async_engine", None)
        made = take() if take is not None else None
        try:
            if made is not None:
                await made.dispose()  # PostgreSQL's async-driver connections
            await loop.run_in_executor(self._pool, self._client.close)
        finally:
            self._pool.shutdown(wait=False)  # every worker is idle now: they exit at once

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closing else self._client.engine.name
        return f"<lookalike.AsyncClient {state} workers={self.max_workers}>"

    # ------------------------------------------------------------------ tables
    async def create_table(
        self, *, schema: type[SQLModel], if_exists: Literal["raise", "overwrite", "skip"] = "raise"
    ) -> AsyncTable:
        """See :meth:`lookalike.Client.create_table`."""
        table = await self._call(self._client.create_table, schema=schema, if_exists=if_exists)
        return AsyncTable(table, self)

    async def open_table(
        self,
        name: str,
        *,
        embed_fn: BaseEmbeddingFunction | None = None,
        if_missing: Literal["raise", "none"] | None = None,
    ) -> AsyncTable | None:
        """See :meth:`lookalike.Client.open_table` (None for a missing table with ``if_missing="none"``)."""
        table = await self._call(self._client.open_table, name, embed_fn=embed_fn, if_missing=if_missing)
        return None if table is None else AsyncTable(table, self)

    async def drop_table(self, name: str, if_not_exists: Literal["raise", "skip"] = "raise") -> None:
        """See :meth:`lookalike.Client.drop_table`."""
        await self._call(self._client.drop_table, name, if_not_exists)

    async def list_tables(self) -> list[str]:
        """See :meth:`lookalike.Client.list_tables`."""
        return await self._call(self._client.list_tables)

    table_names = list_tables

    async def has_table(self, name: str) -> bool:
        """See :meth:`lookalike.Client.has_table`."""
        return await self._call(self._client.has_table, name)

    # ------------------------------------------------------------------ raw SQL
    async def execute(
        self, sql: str | Any, params: Mapping[str, Any] | None = None, raise_error: bool = True
    ) -> ExecuteResult:
        """See :meth:`lookalike.Client.execute`."""
        return await self._call(self._client.execute, sql, params, raise_error)

    async def query(self, sql: str | Any, params: Mapping[str, Any] | None = None) -> QueryResult:
        """See :meth:`lookalike.Client.query`."""
        return await self._call(self._client.query, sql, params)

    # ------------------------------------------------------------------ databases
    async def current_database(self) -> str | None:
        """See :meth:`lookalike.Client.current_database`."""
        return await self._call(self._client.current_database)

    async def list_databases(self) -> list[str]:
        """See :meth:`lookalike.Client.list_databases`."""
        return await self._call(self._client.list_databases)

    async def has_database(self, name: str) -> bool:
        """See :meth:`lookalike.Client.has_database`."""
        return await self._call(self._client.has_database, name)

    async def create_database(self, name: str, if_exists: Literal["raise", "skip"] = "raise") -> None:
        """See :meth:`lookalike.Client.create_database`."""
        await self._call(self._client.create_database, name, if_exists)

    async def drop_database(self, name: str) -> None:
        """See :meth:`lookalike.Client.drop_database`."""
        await self._call(self._client.drop_database, name)

    async def use_database(self, name: str, *, ensure_db: bool = False) -> None:
        """See :meth:`lookalike.Client.use_database` (tables opened before must be opened again)."""
        await self._call(self._client.use_database, name, ensure_db=ensure_db)


class AsyncTable:
    """A :class:`~lookalike.Table` whose database calls are awaitables (from :class:`AsyncClient`).

    What reads only the table's definition (``name``, ``columns()``, ``vector_field()``…) stays a plain
    attribute or call; :meth:`search` returns an :class:`AsyncSearch`.
    """

    def __init__(self, table: Table, client: AsyncClient) -> None:
        self._table = table
        self._client = client

    # ------------------------------------------------------------------ description (no I/O)
    @property
    def sync_table(self) -> Table:
        """The synchronous table underneath."""
        return self._table

    @property
    def client(self) -> AsyncClient:
        """The async client this table was opened with."""
        return self._client

    @property
    def name(self) -> str:
        """The table's name in the database."""
        return self._table.name

    @property
    def table_model(self) -> Any:
        """The model class."""
        return self._table.table_model

    @property
    def spec(self) -> TableSpec:
        """The table's definition."""
        return self._table.spec

    @property
    def primary_key(self) -> str:
        """The primary key column's name."""
        return self._table.primary_key

    @property
    def vector_columns(self) -> VectorColumns:
        """See :attr:`lookalike.Table.vector_columns`."""
        return self._table.vector_columns

    def vector_field(self, name: str | None = None) -> VectorSpec:
        """See :meth:`lookalike.Table.vector_field`."""
        return self._table.vector_field(name)

    def columns(self) -> list[ColumnInfo]:
        """See :meth:`lookalike.Table.columns` (read from the definition: no database call)."""
        return self._table.columns()

    def __repr__(self) -> str:
        return f"<lookalike.AsyncTable {self.name!r}>"

    # ------------------------------------------------------------------ rows in
    async def insert(self, data: Any) -> Any:
        """See :meth:`lookalike.Table.insert`."""
        return await self._client._call(self._table.insert, data)

    async def bulk_insert(
        self,
        data: Iterable[Any],
        *,
        chunk_size: int | None = None,
        on_error: OnError = "raise",
        progress: Progress | None = None,
    ) -> InsertResult:
        """See :meth:`lookalike.Table.bulk_insert` (``progress`` is called from a worker thread)."""
        return await self._client._call(
            self._table.bulk_insert, data, chunk_size=chunk_size, on_error=on_error, progress=progress
        )

    async def replace_rows(
        self,
        items: Sequence[Any],
        replaces: Sequence[Any],
        *,
        on_error: OnError = "raise",
        progress: Progress | None = None,
    ) -> InsertResult:
        """See :meth:`lookalike.Table.replace_rows`."""
        return await self._client._call(
            self._table.replace_rows, items, replaces, on_error=on_error, progress=progress
        )

    async def save(self, data: Any) -> Any:
        """See :meth:`lookalike.Table.save`."""
        return await self._client._call(self._table.save, data)

    async def update(self, values: Mapping[str, Any], filters: Any = None) -> int:
        """See :meth:`lookalike.Table.update`."""
        return await self._client._call(self._table.update, values, filters)

    async def delete(self, filters: Any = None) -> int:
        """See :meth:`lookalike.Table.delete`."""
        return await self._client._call(self._table.delete, filters)

    async def truncate(self) -> None:
        """See :meth:`lookalike.Table.truncate`."""
        await self._client._call(self._table.truncate)

    # ------------------------------------------------------------------ rows out
    async def get(self, id: Any) -> Any:
        """See :meth:`lookalike.Table.get`."""
        return await self._client._call(self._table.get, id)

    async def query(
        self,
        filters: Any = None,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        *,
        columns: Sequence[str] | None = None,
    ) -> QueryResult:
        """See :meth:`lookalike.Table.query`."""
        return await self._client._call(self._table.query, filters, order_by, limit, offset, columns=columns)

    async def rows(self) -> int:
        """See :meth:`lookalike.Table.rows`."""
        return await self._client._call(self._table.rows)

    count = rows

    async def source_info(self, column: str | None = None) -> dict[str, SourceInfo]:
        """See :meth:`lookalike.Table.source_info`."""
        return await self._client._call(self._table.source_info, column)

    # ------------------------------------------------------------------ search and indexes
    def search(self, query: Any = None, search_type: str = "vector", **kwargs: Any) -> AsyncSearch:
        """See :meth:`lookalike.Table.search`; chain as there, then await ``to_list()`` and friends."""
        return AsyncSearch(self._table.search(query, search_type, **kwargs), self._client)

    async def create_vector_index(
        self,
        column: str | None = None,
        *,
        metric: str | None = None,
        skip_existing: bool = True,
        **params: Any,
    ) -> None:
        """See :meth:`lookalike.Table.create_vector_index`."""
        await self._client._call(
            self._table.create_vector_index, column, metric=metric, skip_existing=skip_existing, **params
        )

    async def has_vector_index(self, column: str | None = None) -> bool:
        """See :meth:`lookalike.Table.has_vector_index`."""
        return await self._client._call(self._table.has_vector_index, column)

    async def create_fts_index(
        self, column: str, *, language: str | None = None, skip_existing: bool = True
    ) -> None:
        """See :meth:`lookalike.Table.create_fts_index`."""
        await self._client._call(
            self._table.create_fts_index, column, language=language, skip_existing=skip_existing
        )

    async def has_fts_index(self, column: str) -> bool:
        """See :meth:`lookalike.Table.has_fts_index`."""
        return await self._client._call(self._table.has_fts_index, column)

    async def find_duplicates(self, **options: Any) -> list[Any]:
        """See :meth:`lookalike.Table.find_duplicates`."""
        return await self._client._call(self._table.find_duplicates, **options)


class AsyncSearch:
    """A search builder whose configuring calls stay synchronous and whose results are awaitables.

    Every configuring method of the wrapped builder (``filter``, ``limit``, ``select``, ``rerank``,
    ``vector_column``, ``fusion``…) works as on :class:`~lookalike.Search`, and returns an
    ``AsyncSearch``; ``execute``, ``to_list``, ``to_pydantic``, ``to_pandas``, ``to_arrow``,
    ``to_polars``, ``to_rows``, ``query_vector`` and ``compiled_vector_query_sql`` are coroutines.
    """

    def __init__(self, builder: SearchBuilder[Any], client: AsyncClient) -> None:
        self._builder = builder
        self._client = client

    @property
    def sync_search(self) -> SearchBuilder[Any]:
        """The synchronous builder underneath."""
        return self._builder

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # private and dunder names are the builder's own
            raise AttributeError(name)
        attr = getattr(self._builder, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def configure(*args: Any, **kwargs: Any) -> Any:
            out = attr(*args, **kwargs)
            return AsyncSearch(out, self._client) if isinstance(out, SearchBuilder) else out

        return configure

    def __repr__(self) -> str:
        return f"<Async{self._builder!r}>"

    async def execute(self) -> QueryResult:
        """Run the search (see :meth:`lookalike.builder.SearchBuilder.execute`)."""
        return await self._client._execute(self._builder)

    async def to_list(self) -> list[dict[str, Any]]:
        """Hits as dicts, best first."""
        return (await self.execute()).to_list()

    async def to_rows(self) -> list[tuple[Any, ...]]:
        """Hits as tuples."""
        return (await self.execute()).to_rows()

    async def to_pydantic(self, model: type | bool | None = None, *, with_score: bool = True) -> list[Any]:
        """Hits as pytidb gives them (see :meth:`lookalike.builder.SearchBuilder.to_pydantic`)."""
        return await self._client._call(self._builder.to_pydantic, model, with_score=with_score)

    async def to_pandas(self) -> Any:
        """Hits as a pandas DataFrame."""
        return (await self.execute()).to_pandas()

    async def to_arrow(self) -> Any:
        """Hits as a ``pyarrow.Table`` (vector columns as fixed-size float32 lists)."""
        return await self._client._call(self._builder.to_arrow)

    async def to_polars(self) -> Any:
        """Hits as a ``polars.DataFrame``."""
        return await self._client._call(self._builder.to_polars)

    async def query_vector(self) -> Any:
        """The query as a vector (a vector search only; embedding it runs in a worker)."""
        return await self._client._call(self._method("query_vector"))

    async def compiled_vector_query_sql(self) -> str | None:
        """See :meth:`lookalike.Search.compiled_vector_query_sql`."""
        return await self._client._call(self._method("compiled_vector_query_sql"))

    def _method(self, name: str) -> Callable[[], Any]:
        method = getattr(self._builder, name, None)
        if method is None:
            raise ConfigurationError(
                f"{name}() is a vector search's; this is a {type(self._builder).__name__}"
            )
        return method
