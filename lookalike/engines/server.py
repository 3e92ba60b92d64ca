"""The shared base of the database-server engines (PostgreSQL + pgvector, TiDB).

:class:`ServerEngine` holds what a server engine does the same way whatever its SQL dialect:

* connecting with retries and exponential backoff while the server is starting or briefly unreachable;
* a per-table cache of index definitions (short TTL, dropped on every DDL), so a search doesn't ask the
  catalogue for indexes each time;
* the search plan (:mod:`lookalike.engines.planner`): no index → exact; unfiltered → the index;
  filtered → count the rows the filter matches, search exactly when few do, else post-filter a
  candidate pool from the index sized from the filter's selectivity; whenever the index path yields
  fewer than ``limit`` rows, the search is re-run exactly, so no result is lost silently;
* the SQL of the exact top-k and of the post-filtered candidate pool, built from the dialect's
  distance expressions;
* vectors as text ``[1.0, 2.0, ...]`` in and out (:meth:`~ServerEngine.encode_vector`);
* turning result rows into dicts;
* running a full-text search from the dialect's statement (:meth:`~ServerEngine.text_search_statement`),
  with a raw query's syntax error reported as a :class:`~lookalike.errors.ConfigurationError`.

A dialect module subclasses it and fills in the hooks: ``_setup`` (after connecting),
``_is_transient``, ``_load_indexes``/``_find_index``, ``vector_type``, ``query_expr``,
``distance_expr`` (and ``order_expr`` when its index orders by another expression),
``count_matches`` and ``index_search``.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.types import UserDefinedType

from lookalike.engines.base import Engine, SearchRequest, TextSearchRequest, clamp_distance
from lookalike.engines.planner import IndexScan, PoolPolicy, Rows, planned_search
from lookalike.errors import ConfigurationError, ConnectionFailedError, EngineError
from lookalike.schema import TableSpec
from lookalike.vectors.base import vector_as_list

__all__ = ["ServerEngine", "TextVector", "parse_vector_text", "vector_text"]


# --------------------------------------------------------------------------- vectors as text


def vector_text(value: Any) -> str:
    """A vector (array, list or little-endian float32 bytes) as the text ``[1.0, 2.0, ...]``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = np.frombuffer(bytes(value), dtype="<f4")
    # str() of a list of Python floats is C-fast; each float32 round-trips exactly through its repr
    return str(np.asarray(value, dtype=np.float32).tolist())


def parse_vector_text(value: Any) -> Any:
    """The text ``[1.0, 2.0, ...]`` (str or bytes) back to a float32 array; arrays pass through."""
    if value is None or isinstance(value, np.ndarray):
        return value
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    if isinstance(value, str):
        body = value.strip()[1:-1]
        return np.array(body.split(","), dtype=np.float32) if body else np.empty(0, np.float32)
    return np.asarray(value, dtype=np.float32)


class TextVector(UserDefinedType[Any]):
    """A vector column type whose values travel as text; subclasses name the SQL type.

    The engine converts the values (:meth:`ServerEngine.encode_vector`/``decode_vector``), so the
    type itself only names the column in DDL and in casts.
    """

    cache_ok = True  # SQLAlchemy reads it from each class itself

    def __init__(self, dimensions: int | None = None) -> None:
        self.dimensions = dimensions


# --------------------------------------------------------------------------- the base engine


class ServerEngine(Engine):
    """Base class of the engines that talk to a database server with its own vector SQL."""

    index_by_default: ClassVar[bool] = True  # pytidb builds HNSW for cosine/l2 fields unless index=False

    index_cache_ttl_s: ClassVar[float] = 30.0
    """How long a table's index definitions are trusted before the catalogue is read again."""

    pool_overfetch: ClassVar[float] = 3.0
    """A post-filtered candidate pool holds about this many times the rows the filter should keep."""

    max_pool: ClassVar[int] = 10_000
    """Above this many candidates the index path costs more than an exact search."""

    exact_match_counts: ClassVar[bool] = True
    """True when :meth:`count_matches` counts rows (so 0 means none match), False for estimates."""

    def __init__(self, sa_engine: sa.Engine, *, exact_search_max_rows: int, safe_url: str = "") -> None:
        super().__init__(sa_engine)
        self.exact_search_max_rows = exact_search_max_rows
        self.safe_url = safe_url or sa_engine.url.render_as_string(hide_password=True)
        self._index_cache: dict[str, tuple[float, list[str]]] = {}
        self._index_lock = threading.Lock()

    # ------------------------------------------------------------------ connecting
    def _connect(self, attempts: int, backoff: float) -> None:
        """Connect and run :meth:`_setup`; on failure the connection pool is released."""
        try:
            self._retrying(self._setup, attempts, backoff)
        except BaseException:
            self.sa_engine.dispose()
            raise

    def _retrying(self, work: Callable[[Connection], Any], attempts: int, backoff: float) -> None:
        """Run ``work`` in a transaction, retrying transient connection errors with backoff."""
        attempts = max(1, attempts)
        for attempt in range(attempts):
            try:
                with self.sa_engine.connect() as conn, conn.begin():
                    work(conn)
                return
            except sa.exc.OperationalError as exc:
                transient = self._is_transient(exc)
                if not transient or attempt == attempts - 1:
                    err = self.translate_error(exc)
                    if transient and isinstance(err, ConnectionFailedError):
                        err.add_remark(f"(tried {attempts} times)")
                    raise err from exc
                time.sleep(backoff * (2**attempt))
            except sa.exc.SQLAlchemyError as exc:
                raise self.translate_error(exc) from exc

    @abstractmethod
    def _setup(self, conn: Connection) -> None:
        """Check the server's vector support once connected (and create the catalogue)."""

    @abstractmethod
    def _is_transient(self, exc: sa.exc.OperationalError) -> bool:
        """Whether a connection error is worth retrying (server starting, briefly unreachable)."""

    # ------------------------------------------------------------------ DDL
    def create_table(self, conn: Connection, spec: TableSpec) -> None:
        self._forget_indexes(spec.name)
        super().create_table(conn, spec)

    def drop_table(self, conn: Connection, name: str) -> None:
        self._forget_indexes(name)
        super().drop_table(conn, name)

    # ------------------------------------------------------------------ databases
    current_database_sql: ClassVar[str]
    """One row, one column: the database this connection uses."""
    list_databases_sql: ClassVar[str]
    """One column: every database a user may connect to."""
    max_database_name: ClassVar[int] = 63

    def check_database_name(self, name: Any) -> str:
        name = super().check_database_name(name)
        if len(name.encode()) > self.max_database_name:
            raise ConfigurationError(
                f"database name {name!r} is longer than {self.name}'s {self.max_database_name} bytes"
            )
        return name

    def database_ddl(self, action: str, name: str) -> str:
        """``CREATE DATABASE`` / ``DROP DATABASE IF EXISTS`` for ``name``, quoted for this dialect."""
        quoted = self.quote(self.check_database_name(name))
        return f"CREATE DATABASE {quoted}" if action == "create" else f"DROP DATABASE IF EXISTS {quoted}"

    def _run_outside_transaction(self, sql: str) -> list[Any]:
        """Database DDL can't run inside a transaction on PostgreSQL: an autocommit connection."""
        try:
            with self.sa_engine.connect() as conn:
                result = conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(sql)
                return [row[0] for row in result] if result.returns_rows else []
        except sa.exc.DBAPIError as exc:
            raise self.translate_error(exc) from exc

    def current_database(self) -> str | None:
        rows = self._run_outside_transaction(self.current_database_sql)
        return str(rows[0]) if rows and rows[0] is not None else None

    def list_databases(self) -> list[str]:
        return sorted(str(name) for name in self._run_outside_transaction(self.list_databases_sql))

    def create_database(self, name: str) -> None:
        self._run_outside_transaction(self.database_ddl("create", name))

    def drop_database(self, name: str) -> None:
        self._run_outside_transaction(self.database_ddl("drop", name))

    def reopen_options(self) -> dict[str, Any]:
        """The ``from_url`` keywords that carry this engine's settings to another database."""
        return {"exact_search_max_rows": self.exact_search_max_rows}

    def open_database(self, name: str) -> Engine:
        url = self.sa_engine.url.set(database=self.check_database_name(name))
        return type(self).from_url(url.render_as_string(hide_password=False), **self.reopen_options())

    # ------------------------------------------------------------------ index cache
    def _forget_indexes(self, table: str) -> None:
        with self._index_lock:
            self._index_cache.pop(table, None)

    def _indexes(self, conn: Connection, table: str) -> list[str]:
        """The table's vector index definitions, from the cache while it is fresh."""
        now = time.monotonic()
        with self._index_lock:
            hit = self._index_cache.get(table)
            if hit is not None and now - hit[0] < self.index_cache_ttl_s:
                return hit[1]
        found = self._load_indexes(conn, table)
        with self._index_lock:
            self._index_cache[table] = (now, found)
        return found

    @abstractmethod
    def _load_indexes(self, conn: Connection, table: str) -> list[str]:
        """Read the table's vector index definitions from the catalogue."""

    @abstractmethod
    def _find_index(self, conn: Connection, spec: TableSpec, column: str, metric: str | None) -> str | None:
        """The kind of index serving (column, metric), or None; ``metric=None`` means any metric."""

    def has_vector_index(self, conn: Connection, spec: TableSpec, column: str) -> bool:
        self._forget_indexes(spec.name)
        return self._find_index(conn, spec, column, None) is not None

    def has_vector_index_for(self, conn: Connection, spec: TableSpec, column: str, metric: str) -> bool:
        self._forget_indexes(spec.name)
        return self._find_index(conn, spec, column, metric) is not None

    # ------------------------------------------------------------------ vector values
    def encode_vector(self, value: Any) -> Any:
        """Vectors travel as text ``[1.0, 2.0, ...]``: every server parses it into its vector type."""
        return vector_text(value)

    def decode_vector(self, value: Any) -> list[float]:
        return vector_as_list(parse_vector_text(value))

    # ------------------------------------------------------------------ search plan
    def pool_policy(self) -> PoolPolicy:
        """The planner's numbers for this engine (read at each search: they may be changed)."""
        return PoolPolicy(
            exact_search_max_rows=self.exact_search_max_rows,
            pool_overfetch=self.pool_overfetch,
            max_pool=self.max_pool,
            exact_match_counts=self.exact_match_counts,
        )

    def plan_pool(self, k: int, matches: float, total: float, want: int = 0) -> int | None:
        """Candidate pool for a post-filtered index search, or None to search exactly."""
        return self.pool_policy().plan_pool(k, matches, total, want)

    def vector_search(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> Rows:
        index = self._find_index(conn, spec, request.column, request.metric)
        return planned_search(self, conn, spec, request, index, self.pool_policy())

    @abstractmethod
    def count_matches(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> tuple[float, float]:
        """(rows matching the filter, rows with a vector), counted or estimated."""

    def exact_search(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> Rows:
        """Exact top-k over every row that passes the filter, never answered by an index."""
        stmt = self.exact_statement(spec, request)
        return self._rows(conn.execute(stmt), self._names(spec, request), request.metric)

    @abstractmethod
    def index_search(
        self, conn: Connection, spec: TableSpec, request: SearchRequest, scan: IndexScan
    ) -> Rows:
        """Top-k from the candidates ``scan`` takes from the index, ranked by exact distance."""

    # ------------------------------------------------------------------ dialect SQL
    index_serves_filters: ClassVar[bool] = True
    """Whether the dialect's ANN index can answer a query that has a ``WHERE`` clause. When it can
    (pgvector), an exact search is fenced off the index by a subquery, and a candidate pool skips
    rows without a vector; when it can't (TiDB), the ``WHERE`` an exact search always has is fence
    enough, and candidates are taken with no ``WHERE`` at all."""

    @abstractmethod
    def query_expr(self, spec: TableSpec, request: SearchRequest) -> Any:
        """The request's query vector as a SQL expression of the column's vector type."""

    @abstractmethod
    def distance_expr(self, col: Any, metric: str, query: Any) -> Any:
        """The exact distance from ``col`` to ``query`` (a float; ``_distance`` in results)."""

    def order_expr(self, col: Any, metric: str, query: Any, scan: IndexScan) -> Any:
        """What a candidate scan orders by so the index serves it: by default ``_distance`` itself."""
        return sa.literal_column("_distance")

    def exact_statement(self, spec: TableSpec, request: SearchRequest) -> sa.Select[Any]:
        """Exact top-k: every row that passes the filter, by exact distance, ties by primary key."""
        table = spec.sa_table
        col = table.c[request.column]
        pk = table.c[spec.primary_key]
        dist = self.distance_expr(col, request.metric, self.query_expr(spec, request))
        names = self._names(spec, request)
        columns = [*[table.c[n] for n in names], pk.label("_lookalike_pk"), dist.label("_distance")]
        where = [] if request.where is None else [request.where]
        if not self.index_serves_filters:
            # the WHERE clause (always present) keeps the engine off its approximate index
            return (
                sa.select(*columns)
                .where(col.is_not(None), *self._range(dist, request), *where)
                .order_by(sa.literal_column("_distance"), pk)
                .limit(request.limit)
            )
        # OFFSET 0 keeps the subquery from being flattened, so an ANN index can't serve the ORDER BY
        inner = sa.select(*columns).where(col.is_not(None), *where).offset(0).subquery("exact")
        return (
            sa.select(inner)
            .where(*self._range(inner.c._distance, request))
            .order_by(inner.c._distance, inner.c._lookalike_pk)
            .limit(request.limit)
        )

    def post_filter_statement(
        self, spec: TableSpec, request: SearchRequest, scan: IndexScan
    ) -> sa.Select[Any]:
        """Top-``scan.pool`` candidates from the index (the filter left out, so the index serves the
        scan), then filtered, ranked by exact distance and cut to the limit."""
        table = spec.sa_table
        col = table.c[request.column]
        pk = table.c[spec.primary_key]
        query = self.query_expr(spec, request)
        dist = self.distance_expr(col, request.metric, query)
        cand = sa.select(pk.label("_lookalike_pk"), dist.label("_distance"))
        if self.index_serves_filters:
            cand = cand.where(col.is_not(None))  # a small table is scanned, not indexed: NULLs sort last
        sub = (
            cand.order_by(self.order_expr(col, request.metric, query, scan)).limit(scan.pool).subquery("cand")
        )
        # rows without a vector have no distance and are never results (they may enter the pool
        # where the scan can't skip them)
        conds = [sub.c._distance.is_not(None), *self._range(sub.c._distance, request)]
        if request.where is not None:
            conds.append(request.where)
        names = self._names(spec, request)
        return (
            sa.select(*[table.c[n] for n in names], sub.c._lookalike_pk, sub.c._distance)
            .select_from(table.join(sub, pk == sub.c._lookalike_pk))
            .where(*conds)
            .order_by(sub.c._distance, sub.c._lookalike_pk)
            .limit(request.limit)
        )

    # ------------------------------------------------------------------ full-text search
    def text_search_statement(self, spec: TableSpec, request: TextSearchRequest) -> sa.Select[Any]:
        """The dialect's full-text top-k: the requested columns plus ``_score``, best first."""
        raise EngineError(f"full-text search is not supported by the {self.name} engine")

    def text_search(self, conn: Connection, spec: TableSpec, request: TextSearchRequest) -> Rows:
        stmt = self.text_search_statement(spec, request)
        names = self._names(spec, request)
        try:
            result = conn.execute(stmt)
        except sa.exc.DBAPIError as exc:
            if not request.raw or isinstance(exc, sa.exc.OperationalError):
                raise  # translated by the transaction like any driver error
            orig = getattr(exc, "orig", None) or exc
            raise ConfigurationError(
                f"raw full-text query {request.query!r} was refused by {self.name}: {str(orig).strip()}"
            ) from exc
        return [
            {**{n: r._mapping[n] for n in names}, "_score": float(r._mapping["_score"] or 0.0)}
            for r in result
        ]

    # ------------------------------------------------------------------ statements and rows
    @staticmethod
    def _range(dist: Any, request: SearchRequest) -> list[Any]:
        """Conditions for the request's distance range on the expression ``dist``."""
        out = []
        if request.distance_min is not None:
            out.append(dist >= request.distance_min)
        if request.distance_max is not None:
            out.append(dist <= request.distance_max)
        return out

    def _rows(self, result: Any, names: list[str], metric: str) -> Rows:
        """Result rows as dicts of ``names`` plus ``_distance``."""
        out = []
        for r in result:
            m = r._mapping
            item = {n: m[n] for n in names}
            distance = np.asarray(self._distance_value(m["_distance"], metric), dtype=np.float64)
            item["_distance"] = float(clamp_distance(metric, distance))
            out.append(item)
        return out

    def _distance_value(self, value: Any, metric: str) -> float:
        """The ``_distance`` of one row as a float (dialects fix up their special values)."""
        return float(value)
