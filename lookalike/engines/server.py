"""The shared base of the database-server engines (PostgreSQL + pgvector, TiDB).

:class:`ServerEngine` holds what a server engine does the same way whatever its SQL dialect:

* connecting with retries and exponential backoff while the server is starting or briefly unreachable;
* a per-table cache of index definitions (short TTL, dropped on every DDL), so a search doesn't ask the
  catalogue for indexes each time;
* the search plan: no index → exact; unfiltered → the index; filtered → count the rows the filter
  matches, search exactly when few do, else post-filter a candidate pool from the index sized from the
  filter's selectivity; whenever the index path yields fewer than ``limit`` rows, the search is re-run
  exactly, so no result is lost silently;
* turning result rows into dicts.

A dialect module subclasses it and fills in the hooks: ``_setup`` (after connecting), ``_is_transient``,
``_load_indexes``/``_find_index``, ``_count_matches``, ``_exact_search`` and ``_ann_search``. Vectors
travel as text ``[1.0, 2.0, ...]`` through :class:`TextVector`.
"""

from __future__ import annotations

import math
import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.types import UserDefinedType

from lookalike.engines.base import Engine, SearchRequest, clamp_distance
from lookalike.errors import ConnectionFailedError
from lookalike.schema import TableSpec

__all__ = ["IndexScan", "Rows", "ServerEngine", "TextVector", "parse_vector_text", "vector_text"]

Rows = list[dict[str, Any]]
"""Search results: the requested columns plus ``_distance``, one dict a row."""


@dataclass(frozen=True)
class IndexScan:
    """How a search reads an ANN index: ``pool`` candidates from ``index`` (the dialect's name for
    the kind of index), with the filter applied after taking them (``post_filter``) or within."""

    index: str
    pool: int
    post_filter: bool


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
    """A vector column whose values travel as text; subclasses name the SQL type."""

    cache_ok = True  # SQLAlchemy reads it from each class itself

    def __init__(self, dimensions: int | None = None) -> None:
        self.dimensions = dimensions

    def bind_processor(self, dialect: sa.Dialect) -> Any:
        def process(value: Any) -> Any:
            return None if value is None else vector_text(value)

        return process

    def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Any:
        return parse_vector_text


# --------------------------------------------------------------------------- the base engine


class ServerEngine(Engine):
    """Base class of the engines that talk to a database server with its own vector SQL."""

    index_cache_ttl_s: ClassVar[float] = 30.0
    """How long a table's index definitions are trusted before the catalogue is read again."""

    pool_overfetch: ClassVar[float] = 3.0
    """A post-filtered candidate pool holds about this many times the rows the filter should keep."""

    max_pool: ClassVar[int] = 10_000
    """Above this many candidates the index path costs more than an exact search."""

    exact_match_counts: ClassVar[bool] = True
    """True when :meth:`_count_matches` counts rows (so 0 means none match), False for estimates."""

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
                        err = ConnectionFailedError(f"{err.message} (tried {attempts} times)")
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

    # ------------------------------------------------------------------ search plan
    def vector_search(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> Rows:
        k = request.limit
        want = int(request.extra.get("num_candidate") or 0)
        index = self._find_index(conn, spec, request.column, request.metric)
        if index is None:
            return self._exact_search(conn, spec, request)
        if not _filtered(request):
            rows = self._ann_search(conn, spec, request, IndexScan(index, max(k, want), post_filter=False))
        else:
            found = self._filtered_search(conn, spec, request, index, want)
            if found is None:
                return self._exact_search(conn, spec, request)
            rows = found
        if len(rows) >= k:
            return rows[:k]
        # the index path came up short (or fewer rows match at all): the exact answer is complete
        return self._exact_search(conn, spec, request)

    def _filtered_search(
        self, conn: Connection, spec: TableSpec, request: SearchRequest, index: str, want: int
    ) -> Rows | None:
        """A filtered search through the index, or None when an exact search is the better plan."""
        matches, total = self._count_matches(conn, spec, request)
        if matches == 0 and self.exact_match_counts:
            return []
        pool = self.plan_pool(request.limit, matches, total, want)
        if pool is None:
            return None
        return self._ann_search(conn, spec, request, IndexScan(index, pool, post_filter=True))

    def plan_pool(self, k: int, matches: float, total: float, want: int = 0) -> int | None:
        """Candidate pool for a post-filtered index search, or None to search exactly."""
        if matches <= self.exact_search_max_rows:
            return None
        pool = max(math.ceil(k * total / max(matches, 1) * self.pool_overfetch) + 20, want)
        return None if pool > self.max_pool else pool

    @abstractmethod
    def _count_matches(
        self, conn: Connection, spec: TableSpec, request: SearchRequest
    ) -> tuple[float, float]:
        """(rows matching the filter, rows with a vector), counted or estimated."""

    @abstractmethod
    def _exact_search(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> Rows:
        """Exact top-k over every row that passes the filter, never answered by an index."""

    @abstractmethod
    def _ann_search(self, conn: Connection, spec: TableSpec, request: SearchRequest, scan: IndexScan) -> Rows:
        """Top-k from the candidates ``scan`` takes from the index, ranked by exact distance."""

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
            item["_distance"] = float(
                clamp_distance(metric, np.float64(self._distance_value(m["_distance"], metric)))
            )
            out.append(item)
        return out

    def _distance_value(self, value: Any, metric: str) -> float:
        """The ``_distance`` of one row as a float (dialects fix up their special values)."""
        return float(value)


def _filtered(request: SearchRequest) -> bool:
    return request.where is not None or request.distance_min is not None or request.distance_max is not None
