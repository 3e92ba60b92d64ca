"""PostgreSQL with pgvector: ``connect("postgresql://user:pass@host/db")``.

Vectors are ``vector(n)`` columns (exact float32 storage, up to 16,000 dimensions); JSON fields are
``jsonb`` so dict filters can reach into them. Searches use pgvector's operators (``<=>`` cosine,
``<->`` L2, ``<#>`` negative inner product, ``<+>`` L1 from 0.7.0, ``l1_distance()`` before), so
``_distance`` means the same as on the embedded engine.

The installed pgvector version is read on connect and only what it has is used:

* HNSW indexes on ``vector`` take at most 2,000 dimensions; from 0.7.0 wider columns (≤ 4,000) are
  indexed through a ``halfvec`` expression and results are re-ranked with exact distances.
* A filtered search never loses results to the index. From 0.8.0 the index scan is iterative
  (``hnsw.iterative_scan = strict_order``); before, the filter's matches are counted: few matches are
  searched exactly, many are found by widening the index's candidate pool until enough pass. Whenever
  the index path yields fewer than ``limit`` rows, the search is re-run exactly.
* The HNSW search beam (``hnsw.ef_search``) grows with ``limit``: ``max(100, 4 × limit)`` unless a
  query names one with ``num_candidate``. pgvector's own default of 40 gives recall@10 of 0.90 on
  20,000 random 32-d unit vectors; 100 gives 0.99 (``benchmarks/engines.py --ef-sweep``).
* Exact searches fence the distance inside a subquery (``OFFSET 0``) so the planner can't answer them
  from an approximate index.

Bulk inserts use binary ``COPY`` with ids taken from the table's sequence, so ``bulk_insert`` of
precomputed vectors runs near the speed of a raw ``COPY``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
import time
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeEngine

from lookalike.engines.base import SearchRequest, TextSearchRequest, missing_driver, query_words, redact_url
from lookalike.engines.planner import IndexScan, PoolPolicy, Rows, is_filtered
from lookalike.engines.server import ServerEngine, TextVector, vector_text
from lookalike.errors import (
    ConfigurationError,
    ConnectionFailedError,
    EngineError,
    LookalikeError,
    MissingDependencyError,
    SchemaError,
)
from lookalike.schema import TableSpec, bind_vector_codec

__all__ = ["PGVector", "PostgresEngine", "postgres_sa_url"]

TOTAL_ESTIMATE_TTL_S = 5.0
"""How long a table's row estimate serves the planner before it is asked again."""
INDEX_DIMS_VECTOR = 2_000  # pgvector: HNSW/IVFFlat on vector
INDEX_DIMS_HALFVEC = 4_000  # pgvector ≥ 0.7.0: HNSW on halfvec
MAX_EF_SEARCH = 1_000  # pgvector's upper bound for hnsw.ef_search
DEFAULT_EF_SEARCH = (
    100  # the least beam: recall@10 0.99 on 20k random 32-d unit vectors (pgvector's 40: 0.90)
)
FTS_DEFAULT_CONFIG = "simple"  # no stemming, no stop words: the same words as the embedded engine finds
EF_PER_RESULT = 4  # and at least this many candidates per row asked for (benchmarks/engines.py --ef-sweep)


def default_ef_search(limit: int) -> int:
    """The ``hnsw.ef_search`` a search of ``limit`` rows gets unless it names one (``num_candidate``).

    HNSW's recall falls as ``limit`` approaches the beam: the beam grows with ``limit``.
    """
    return min(MAX_EF_SEARCH, max(DEFAULT_EF_SEARCH, EF_PER_RESULT * limit))


COPY_MIN_ROWS = 32  # below this, one INSERT ... RETURNING is as fast as COPY

_OPS = {"cosine": "<=>", "l2": "<->", "inner_product": "<#>", "l1": "<+>"}
_OPCLASS = {"cosine": "cosine", "l2": "l2", "inner_product": "ip", "l1": "l1"}
_PARAMS = {"m", "ef_construction", "maintenance_work_mem", "algorithm"}

# connection problems worth retrying (the server may be starting or briefly unreachable)
_TRANSIENT = (
    "connection refused",
    "no such file or directory",
    "could not connect",
    "timeout expired",
    "timed out",
    "the database system is starting up",
    "the database system is shutting down",
    "too many connections",
    "server closed the connection",
    "connection reset",
    "could not translate host name",
    "network is unreachable",
)


# --------------------------------------------------------------------------- column types


class PGVector(TextVector):
    """pgvector's ``vector(n)`` (or ``halfvec(n)``); values travel as text ``[1.0, 2.0, ...]``."""

    cache_ok = True  # SQLAlchemy reads it from each class itself

    def __init__(self, dimensions: int | None = None, kind: str = "vector") -> None:
        super().__init__(dimensions)
        self.kind = kind

    def get_col_spec(self, **kw: Any) -> str:
        return f"{self.kind}({self.dimensions})" if self.dimensions else self.kind


# --------------------------------------------------------------------------- URLs


def postgres_sa_url(url: str) -> sa.URL:
    """``postgresql://``/``postgres://`` → SQLAlchemy's psycopg 3 URL; an explicit driver is kept."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"malformed PostgreSQL URL {redact_url(url)!r}: {exc}") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in ("postgresql", "postgres"):
        raise ConfigurationError(f"not a PostgreSQL URL: {redact_url(url)!r}")
    return parsed.set(drivername=f"postgresql+{driver or 'psycopg'}")


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return " ".join(line.strip() for line in text.splitlines() if line.strip())[:500]


# --------------------------------------------------------------------------- the engine


def _forget_settings(conn: Connection, *args: Any) -> None:
    conn.info.pop("lookalike_settings", None)  # a rollback undid our SETs


def _listen_for_rollbacks(sa_engine: sa.Engine) -> None:
    event.listen(sa_engine, "rollback", _forget_settings)
    event.listen(sa_engine, "rollback_savepoint", _forget_settings)


class PostgresEngine(ServerEngine):
    """PostgreSQL + pgvector."""

    name = "postgresql"
    max_dimensions = 16_000  # pgvector's storage limit for vector and halfvec
    pool_overfetch: ClassVar[float] = 4.0
    max_pool: ClassVar[int] = MAX_EF_SEARCH  # the pool comes from one index scan of ef_search rows
    exact_match_counts: ClassVar[bool] = False  # the planner's estimate

    def __init__(
        self,
        sa_engine: sa.Engine,
        *,
        exact_search_max_rows: int = 20_000,
        safe_url: str = "",
    ) -> None:
        super().__init__(sa_engine, exact_search_max_rows=exact_search_max_rows, safe_url=safe_url)
        self.pgvector_version: tuple[int, ...] = (0, 0, 0)
        # (table, column) -> (when, estimated rows with a vector): the planner asks before every
        # search, and an EXPLAIN costs about as much as a small index search
        self._totals: dict[tuple[str, str], tuple[float, float]] = {}
        self._async_engine: Any = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_url(
        cls,
        url: str | None,
        *,
        connect_retries: int = 3,
        retry_backoff_s: float = 0.25,
        exact_search_max_rows: int = 20_000,
        **kwargs: Any,
    ) -> PostgresEngine:
        """Open ``postgresql://…``; retries a refused connection ``connect_retries`` times.

        ``exact_search_max_rows``: a filtered search whose filter matches at most this many rows is
        answered exactly (pgvector < 0.8). Other keyword arguments go to ``sqlalchemy.create_engine``.
        """
        if not url:
            raise ConfigurationError("a PostgreSQL URL is required, e.g. postgresql://user:pass@host/db")
        sa_url = postgres_sa_url(url)
        driver = sa_url.drivername.partition("+")[2]
        other_driver = None if driver == "psycopg" else driver  # the registry names psycopg's package
        try:
            if driver == "psycopg":
                import psycopg  # noqa: F401
            elif driver == "psycopg2":
                import psycopg2  # noqa: F401
        except ImportError as exc:
            raise missing_driver(cls.name, package=other_driver) from exc
        kwargs.setdefault("pool_pre_ping", True)
        try:
            sa_engine = sa.create_engine(sa_url, **kwargs)
        except ImportError as exc:  # a driver SQLAlchemy imports itself (another +driver in the URL)
            raise missing_driver(cls.name, package=other_driver) from exc

        _listen_for_rollbacks(sa_engine)
        engine = cls(
            sa_engine,
            exact_search_max_rows=exact_search_max_rows,
            safe_url=sa_url.render_as_string(hide_password=True),
        )
        engine._connect(connect_retries, retry_backoff_s)
        return engine

    def async_engine(self) -> Any:
        """SQLAlchemy's ``AsyncEngine`` on psycopg's async driver for this database (made once), with
        this engine's vector codec and listeners, so its connections run this engine's code through
        SQLAlchemy's greenlet bridge (``AsyncConnection.run_sync``). Needs ``greenlet`` (the
        ``postgres`` extra installs it)."""
        if self._async_engine is None:
            try:
                import greenlet  # noqa: F401  (SQLAlchemy's asyncio bridge)
                from sqlalchemy.ext.asyncio import create_async_engine
            except ImportError as exc:
                raise MissingDependencyError("the async driver", "postgres", package="greenlet") from exc
            url = self.sa_engine.url.set(drivername="postgresql+psycopg_async")
            made = create_async_engine(url, pool_pre_ping=True)
            bind_vector_codec(made.sync_engine.dialect, self)
            _listen_for_rollbacks(made.sync_engine)
            self._async_engine = made
        return self._async_engine

    def take_async_engine(self) -> Any:
        """The engine :meth:`async_engine` made (None if none), forgotten here: the caller disposes
        of it (``await engine.dispose()``), as only a coroutine can."""
        made, self._async_engine = self._async_engine, None
        return made

    def _is_transient(self, exc: sa.exc.OperationalError) -> bool:
        return any(t in _short(exc).lower() for t in _TRANSIENT)

    def _setup(self, conn: Connection) -> None:
        """Enable pgvector (or say how) and read its version."""
        version = conn.exec_driver_sql(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).scalar()
        if version is None:
            db = conn.exec_driver_sql("SELECT current_database()").scalar()
            try:
                with conn.begin_nested():
                    conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
            except sa.exc.DBAPIError as exc:
                raise self._extension_error(exc, str(db)) from exc
            version = conn.exec_driver_sql(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).scalar()
        self.pgvector_version = _version_tuple(str(version))
        self.ensure_catalog(conn)

    def _extension_error(self, exc: BaseException, database: str) -> EngineError:
        text = _short(exc)
        low = text.lower()
        if "permission denied" in low or "must be superuser" in low or "must be owner" in low:
            return EngineError(
                f"the pgvector extension is not enabled in database {database!r} and this user may not "
                f"enable it ({text}). Ask a superuser or the database owner to run "
                f"'CREATE EXTENSION vector;' in {database!r}, then connect again"
            )
        if "not available" in low or "control file" in low or "could not open" in low:
            return EngineError(
                "the pgvector extension is not installed on this PostgreSQL server "
                f"({text}). Install pgvector (https://github.com/pgvector/pgvector#installation, e.g. "
                "apt install postgresql-16-pgvector) and run 'CREATE EXTENSION vector;' in "
                f"{database!r}"
            )
        return EngineError(f"could not enable the pgvector extension in {database!r}: {text}")

    def translate_error(self, exc: BaseException) -> LookalikeError:
        text = _short(exc)
        low = text.lower()
        where = f"PostgreSQL at {self.safe_url}"
        if "password authentication failed" in low or "authentication failed" in low:
            user = self.sa_engine.url.username or "(default user)"
            return ConnectionFailedError(f"{where} refused the credentials of user {user!r}: wrong password")
        if "no password supplied" in low:
            return ConnectionFailedError(f"{where} wants a password and the URL has none")
        if re.search(r'role ".*" does not exist', low):
            return ConnectionFailedError(f"{where}: {text}")
        if re.search(r'database ".*" does not exist', low):
            return ConnectionFailedError(f"{where}: {text} (create it first, e.g. createdb)")
        if isinstance(exc, sa.exc.OperationalError) and any(t in low for t in _TRANSIENT):
            return ConnectionFailedError(f"cannot reach {where}: {text}")
        if isinstance(exc, sa.exc.OperationalError) and "connection" in low:
            return ConnectionFailedError(f"{where}: {text}")
        if getattr(getattr(exc, "orig", None), "sqlstate", None) == "22003":  # numeric_value_out_of_range
            # MySQL's and TiDB's wording, so code written for pytidb that looks for it still finds it
            return EngineError(f"postgresql: Out of range value: {text}")
        return EngineError(f"postgresql: {text}")

    # ------------------------------------------------------------------ version gates
    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.pgvector_version))

    def _has(self, *version: int) -> bool:
        return self.pgvector_version >= version

    # ------------------------------------------------------------------ DDL
    def create_table(self, conn: Connection, spec: TableSpec) -> None:
        # jsonb, not json: it has the containment operator and path lookups index well
        for col in spec.sa_table.columns:
            variants = getattr(col.type, "_variant_mapping", {})  # a model's table created again
            if (
                isinstance(col.type, sa.JSON)
                and not isinstance(col.type, JSONB)
                and "postgresql" not in variants
            ):
                col.type = col.type.with_variant(JSONB(), "postgresql")
        self._forget_totals(spec.name)
        super().create_table(conn, spec)

    def drop_table(self, conn: Connection, name: str) -> None:
        self._forget_totals(name)
        super().drop_table(conn, name)

    def truncate(self, conn: Connection, spec: TableSpec) -> None:
        self._forget_totals(spec.name)
        conn.exec_driver_sql(f"TRUNCATE {self.quote(spec.name)}")

    def _forget_totals(self, table: str) -> None:
        """A table made, emptied or dropped: its row estimate is asked again at the next search."""
        for key in [k for k in self._totals if k[0] == table]:
            self._totals.pop(key, None)

    # ------------------------------------------------------------------ rows
    def insert_rows(self, conn: Connection, spec: TableSpec, rows: list[dict[str, Any]]) -> list[Any]:
        if not rows:
            return []
        pk = spec.primary_key
        ids: list[Any] | None = None
        if len(rows) >= COPY_MIN_ROWS and conn.dialect.driver == "psycopg":
            ids = self._copy_rows(conn, spec, rows)
        if ids is None:
            ids = super().insert_rows(conn, spec, rows)
        given = [r[pk] for r in rows if r.get(pk) is not None]
        if given and all(isinstance(v, int) and not isinstance(v, bool) for v in given):
            self._advance_sequence(conn, spec, max(given))
        return ids

    def _sequence(self, conn: Connection, spec: TableSpec) -> str | None:
        return conn.execute(
            sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
            {"t": self.quote(spec.name), "c": spec.primary_key},
        ).scalar()

    def _advance_sequence(self, conn: Connection, spec: TableSpec, top: int) -> None:
        """Explicit ids don't move PostgreSQL's sequence; move it so later inserts don't collide."""
        seq = self._sequence(conn, spec)
        if seq is None or top < 1:
            return
        conn.execute(
            sa.text(
                "SELECT setval(CAST(:s AS regclass), :m) "
                "WHERE COALESCE(pg_sequence_last_value(CAST(:s AS regclass)), 0) < :m"
            ),
            {"s": seq, "m": top},
        )

    def _copy_rows(self, conn: Connection, spec: TableSpec, rows: list[dict[str, Any]]) -> list[Any] | None:
        """Binary COPY; returns the ids, or None to use INSERT (unsupported column type or value)."""
        table = spec.sa_table
        pk = spec.primary_key
        present = {k for r in rows for k in r}
        ids: list[Any] = [r.get(pk) for r in rows]
        missing = [i for i, v in enumerate(ids) if v is None]
        if missing:
            present.add(pk)
        names = [c.name for c in table.columns if c.name in present]
        try:
            with conn.begin_nested():
                if missing:
                    seq = self._sequence(conn, spec)
                    if seq is None:
                        return None
                    new_ids = sorted(
                        conn.execute(
                            sa.text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)"),
                            {"s": seq, "n": len(missing)},
                        ).scalars()
                    )
                    for i, new_id in zip(missing, new_ids):
                        ids[i] = new_id
                oids: dict[str, int] = dict(
                    conn.execute(
                        sa.text(
                            "SELECT a.attname, a.atttypid FROM pg_attribute a WHERE a.attrelid = "
                            "CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"
                        ),
                        {"t": self.quote(spec.name)},
                    ).all()
                )
                types: list[int] = []
                columns: list[list[Any]] = []  # column-major: vectors are encoded a whole chunk at once
                for name in names:
                    values = ids if name == pk else [r.get(name) for r in rows]
                    oid = int(oids[name])
                    if name in spec.vectors:
                        # declared bytea: binary COPY carries raw bytes, which the server reads with
                        # the column's own receive function (vector_recv)
                        types.append(_BYTEA)
                        columns.append(_binary_vectors(values, spec.vectors[name].dimensions))
                        continue
                    proc = table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
                    if oid in (_JSONB, _JSON):
                        types.append(_BYTEA)
                        prefix = b"\x01" if oid == _JSONB else b""  # jsonb_recv: version 1 + text
                        columns.append([_json_bytes(proc, v, prefix) for v in values])
                    else:
                        types.append(oid)
                        columns.append([proc(v) for v in values] if proc is not None else values)
                column_sql = ", ".join(self.quote(n) for n in names)
                raw = conn.connection.dbapi_connection
                assert raw is not None
                # psycopg's cursor is a context manager; the generic DBAPI type does not say so
                with raw.cursor() as cur:  # type: ignore[attr-defined]
                    sql = f"COPY {self.quote(spec.name)} ({column_sql}) FROM STDIN (FORMAT BINARY)"
                    with cur.copy(sql) as copy:
                        copy.set_types(types)
                        for row in zip(*columns):
                            copy.write_row(row)
        except sa.exc.SQLAlchemyError:
            return None  # rolled back to the savepoint: INSERT will report the real problem
        except Exception as exc:  # psycopg data/adaptation errors raised outside SQLAlchemy
            if type(exc).__module__.startswith("psycopg") or isinstance(exc, (TypeError, ValueError)):
                return None
            raise
        return ids

    # ------------------------------------------------------------------ indexes
    def _load_indexes(self, conn: Connection, table: str) -> list[str]:
        return [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t"
                ),
                {"t": table},
            )
            if " USING hnsw " in r[0]
        ]

    def _find_index(self, conn: Connection, spec: TableSpec, column: str, metric: str | None) -> str | None:
        """``"vector"`` or ``"halfvec"`` when an HNSW index serves (column, metric), else None."""
        col = re.escape(self.quote(column))
        ops = _OPCLASS[metric] if metric else r"\w+"
        for d in self._indexes(conn, spec.name):
            if re.search(rf"\({col} vector_{ops}_ops", d):
                return "vector"
            if re.search(rf"\(\({col}\)::halfvec\(\d+\)\) halfvec_{ops}_ops", d):
                return "halfvec"
        return None

    def index_name(self, table: str, column: str, metric: str) -> str:
        name = f"{table}_{column}_{_OPCLASS[metric]}_hnsw"
        if len(name) > 63:  # PostgreSQL truncates identifiers at 63 bytes: keep names distinct
            digest = hashlib.sha1(name.encode()).hexdigest()[:8]
            name = f"{name[:54]}_{digest}"
        return name

    current_database_sql = "SELECT current_database()"
    list_databases_sql = "SELECT datname FROM pg_database WHERE NOT datistemplate"

    def can_index_by_default(self, spec: TableSpec, column: str) -> bool:
        """pgvector indexes up to 2,000 dimensions, 4,000 through halfvec from 0.7.0; wider columns
        stay exact without an error unless an index was asked for."""
        dims = spec.vectors[column].dimensions
        return dims <= INDEX_DIMS_VECTOR or (dims <= INDEX_DIMS_HALFVEC and self._has(0, 7, 0))

    def create_vector_index(
        self, conn: Connection, spec: TableSpec, column: str, metric: str, params: dict[str, Any]
    ) -> None:
        params = dict(params)
        unknown = set(params) - _PARAMS
        if unknown:
            raise ConfigurationError(
                f"unknown HNSW index parameter(s) {sorted(unknown)}; known: {sorted(_PARAMS)}"
            )
        algorithm = str(params.pop("algorithm", "hnsw")).lower()
        if algorithm != "hnsw":
            raise ConfigurationError(f"the postgresql engine builds HNSW indexes, not {algorithm!r}")
        dims = spec.vectors[column].dimensions
        installed = f"pgvector {self.version_text} is installed"
        if metric == "l1" and not self._has(0, 7, 0):
            raise SchemaError(
                f"an HNSW index for the l1 metric needs pgvector 0.7.0 or newer ({installed}); "
                "l1 searches still work, exactly, without one"
            )
        if dims <= INDEX_DIMS_VECTOR:
            target = self.quote(column)
            opclass = f"vector_{_OPCLASS[metric]}_ops"
        elif dims <= INDEX_DIMS_HALFVEC:
            if not self._has(0, 7, 0):
                raise SchemaError(
                    f"vector column {column!r} has {dims} dimensions: pgvector indexes vector columns "
                    f"of at most {INDEX_DIMS_VECTOR:,} dimensions, and up to {INDEX_DIMS_HALFVEC:,} "
                    f"through halfvec from pgvector 0.7.0 ({installed}). Searches on it stay exact"
                )
            target = f"(({self.quote(column)})::halfvec({dims}))"
            opclass = f"halfvec_{_OPCLASS[metric]}_ops"
        else:
            raise SchemaError(
                f"vector column {column!r} has {dims} dimensions: pgvector indexes at most "
                f"{INDEX_DIMS_HALFVEC:,} (as halfvec). Searches on it stay exact"
            )
        with_parts = []
        for key in ("m", "ef_construction"):
            if key in params:
                value = params[key]
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise ConfigurationError(f"HNSW {key} must be a positive integer, got {value!r}")
                with_parts.append(f"{key} = {value}")
        if "maintenance_work_mem" in params:
            # the build is much faster when the graph fits in memory
            conn.execute(
                sa.text("SELECT set_config('maintenance_work_mem', :v, true)"),
                {"v": str(params["maintenance_work_mem"])},
            )
        name = self.quote(self.index_name(spec.name, column, metric))
        with_sql = f" WITH ({', '.join(with_parts)})" if with_parts else ""
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {name} ON {self.quote(spec.name)} "
            f"USING hnsw ({target} {opclass}){with_sql}"
        )
        self._forget_indexes(spec.name)

    # ------------------------------------------------------------------ search
    def vector_type(self, dimensions: int) -> TypeEngine[Any]:
        return PGVector(dimensions)

    def pool_policy(self) -> PoolPolicy:
        # from 0.8.0 the index scan is iterative (strict_order): it keeps going until `limit` rows
        # pass the filter, in distance order, so a filtered search needs no candidate pool
        return replace(super().pool_policy(), filters_in_index=self._has(0, 8, 0), small_tables_exact=True)

    def _distance(self, col: Any, metric: str, query: Any, *, index_order: bool = False) -> Any:
        if metric == "l1" and not self._has(0, 7, 0):
            return sa.func.l1_distance(col, query, type_=sa.Float)  # exact; <+> arrived in 0.7.0
        raw = col.op(_OPS[metric], return_type=sa.Float)(query)
        if metric == "cosine" and not index_order:
            # pgvector's cosine distance of a zero vector is NaN, which sorts after every number and
            # fails every range test; the embedded engine says 1 (no similarity), so say 1 here too.
            # An index-ordered scan keeps the bare operator, the only form the index can serve.
            # a SQL constant, not a bound float: compiled with literal binds (compiled_vector_query_sql)
            # a Python NaN would print as the bare word ``nan``
            nan = sa.literal_column("'NaN'::float8", sa.Float)
            return sa.func.coalesce(sa.func.nullif(raw, nan), 1.0, type_=sa.Float)
        return raw

    def distance_expr(self, col: Any, metric: str, query: Any) -> Any:
        return self._distance(col, metric, query)

    def order_expr(self, col: Any, metric: str, query: Any, scan: IndexScan) -> Any:
        """The bare operator the HNSW index serves (through a halfvec cast for a halfvec index)."""
        if scan.index == "halfvec":
            half = PGVector(col.type.dimensions, "halfvec")
            return sa.cast(col, half).op(_OPS[metric], return_type=sa.Float)(sa.cast(query, half))
        return self._distance(col, metric, query, index_order=True)

    def query_expr(self, spec: TableSpec, request: SearchRequest) -> Any:
        dims = spec.vectors[request.column].dimensions
        return sa.cast(sa.literal(vector_text(request.vector), sa.Text), PGVector(dims))

    def _set(self, conn: Connection, name: str, value: str) -> None:
        """A session setting, sent only when it changes (saves a round trip per search).

        Session-level, not LOCAL, so the value cached on the connection stays true across
        transactions; a rollback undoes a SET, so the cache is cleared on rollback.
        """
        cache = conn.info.setdefault("lookalike_settings", {})
        if cache.get(name) == value:
            return
        conn.execute(sa.text("SELECT set_config(:n, :v, false)"), {"n": name, "v": value})
        cache[name] = value

    def count_matches(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> tuple[float, float]:
        """The planner's estimate of (rows matching the filter, rows with a vector): no table scan.

        A wrong estimate only costs speed: few matches are searched exactly, and an index search that
        comes up short is re-run exactly.
        """
        key = (spec.name, request.column)
        now = time.monotonic()
        cached = self._totals.get(key)
        if cached is not None and now - cached[0] < TOTAL_ESTIMATE_TTL_S:
            total = cached[1]
        else:
            total = max(self._estimate(conn, spec, request.column, None), 1.0)
            self._totals[key] = (now, total)
        if request.where is None:
            return total, total
        return self._estimate(conn, spec, request.column, request.where), total

    def _estimate(self, conn: Connection, spec: TableSpec, column: str, where: Any) -> float:
        """PostgreSQL's planner estimate of the rows with a vector in ``column`` that pass ``where``."""
        table = spec.sa_table
        stmt = sa.select(sa.literal(1)).select_from(table).where(table.c[column].is_not(None))
        if where is not None:
            stmt = stmt.where(where)
        # executed as a statement, not as compiled text with raw parameters: SQLAlchemy then
        # expands $in lists and runs the bind processors (a JSON path must become an array)
        plan = conn.execute(_Explain(stmt)).scalar()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        if not plan:
            raise EngineError("postgresql: EXPLAIN returned no plan")
        return float(plan[0]["Plan"]["Plan Rows"])

    def index_search(
        self, conn: Connection, spec: TableSpec, request: SearchRequest, scan: IndexScan
    ) -> Rows:
        """Candidates in index order (``pool`` of them), filtered, then ranked by exact distance."""
        pool = scan.pool
        # the beam: the caller's num_candidate, else sized from limit; a post-filtered pool is deep,
        # and a wider beam keeps its candidates accurate
        ef = max(request.num_candidate or default_ef_search(request.limit), pool)
        if scan.post_filter:
            ef = max(ef, 2 * pool)
        if scan.index == "halfvec":
            pool = max(pool, 2 * request.limit)  # halfvec order is approximate: re-rank a wider pool
        if is_filtered(request) and not scan.post_filter:
            # only planned when the scan is iterative (pool_policy): it stops once `limit` rows pass
            self._set(conn, "hnsw.iterative_scan", "strict_order")
        self._set(conn, "hnsw.ef_search", str(min(MAX_EF_SEARCH, ef)))
        scan = replace(scan, pool=pool)
        if scan.post_filter:
            stmt = self.post_filter_statement(spec, request, scan)
        else:
            stmt = self._index_statement(spec, request, scan)
        return self._rows(conn.execute(stmt), self._names(spec, request), request.metric)

    def _index_statement(self, spec: TableSpec, request: SearchRequest, scan: IndexScan) -> sa.Select[Any]:
        """The filter inside the index scan (no filter, or an iterative scan), ``pool`` candidates
        taken in index order, then ranked by exact distance."""
        table = spec.sa_table
        col = table.c[request.column]
        pk = table.c[spec.primary_key]
        query = self.query_expr(spec, request)
        dist = self.distance_expr(col, request.metric, query)
        names = self._names(spec, request)
        inner = sa.select(
            *[table.c[n] for n in names], pk.label("_lookalike_pk"), dist.label("_distance")
        ).where(col.is_not(None))  # a small table is scanned, not indexed: NULLs sort last
        if request.where is not None:
            inner = inner.where(request.where)
        if request.distance_min is not None or request.distance_max is not None:
            inner = inner.where(*self._range(dist, request))
        order = self.order_expr(col, request.metric, query, scan)
        sub = inner.order_by(order).limit(scan.pool).subquery("ann")
        return sa.select(sub).order_by(sub.c._distance, sub.c._lookalike_pk).limit(request.limit)

    def _distance_value(self, value: Any, metric: str) -> float:
        d = float(value) if value is not None else float("nan")
        if math.isnan(d) and metric == "cosine":
            return 1.0  # pgvector gives NaN for a zero vector; the embedded engine says 1 (no similarity)
        return d

    # ------------------------------------------------------------------ full-text search
    def fts_index_name(self, table: str, column: str) -> str:
        name = f"{table}_{column}_fts"
        if len(name) > 63:  # PostgreSQL truncates identifiers at 63 bytes: keep names distinct
            name = f"{name[:54]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
        return name

    @staticmethod
    def fts_config(spec: TableSpec, column: str, language: str | None = None) -> str:
        """The text search configuration of ``column`` (``simple`` unless a language was set), as a
        SQL literal: it is written into the index expression, and a query must repeat it exactly for
        the index to serve it, so it can't be a bound parameter. Only plain names reach here."""
        text = spec.fulltext.get(column)
        name = language or (text.language if text is not None else None) or FTS_DEFAULT_CONFIG
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ConfigurationError(
                f"full-text language must be a plain name such as 'english', got {name!r}"
            )
        return f"'{name}'::regconfig"

    def tsvector_sql(self, spec: TableSpec, column: str, language: str | None = None) -> str:
        """The indexed expression: the column's words (NULL as no words) under its configuration."""
        config = self.fts_config(spec, column, language)
        return f"to_tsvector({config}, coalesce({self.quote(column)}, ''))"

    def create_fts_index(self, conn: Connection, spec: TableSpec, column: str, language: str | None) -> None:
        """A GIN index over ``to_tsvector(config, column)`` (an expression index: the table gains no
        column); ``language`` is a text search configuration of the server (``None``: ``simple``)."""
        name = language or FTS_DEFAULT_CONFIG
        known = conn.execute(sa.text("SELECT 1 FROM pg_ts_config WHERE cfgname = :n"), {"n": name}).first()
        if known is None:
            have = conn.execute(sa.text("SELECT cfgname FROM pg_ts_config ORDER BY 1")).scalars().all()
            raise ConfigurationError(
                f"PostgreSQL has no text search configuration {name!r}; it has: {', '.join(have)}"
            )
        index = self.quote(self.fts_index_name(spec.name, column))
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")  # rebuilt: the language may change
        conn.exec_driver_sql(
            f"CREATE INDEX {index} ON {self.quote(spec.name)} USING gin ({self.tsvector_sql(spec, column, name)})"
        )

    def has_fts_index(self, conn: Connection, spec: TableSpec, column: str) -> bool:
        found = conn.execute(
            sa.text(
                "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t "
                "AND indexname = :i"
            ),
            {"t": spec.name, "i": self.fts_index_name(spec.name, column)},
        ).first()
        return found is not None

    def tsquery(self, spec: TableSpec, request: TextSearchRequest) -> Any:
        """The query: raw, ``to_tsquery``; else one ``plainto_tsquery`` per word, ORed (``||``), each
        word a bound parameter, so the text never becomes tsquery syntax."""
        config: sa.ColumnClause[Any] = sa.literal_column(self.fts_config(spec, request.column))
        if request.raw:
            return sa.func.to_tsquery(config, sa.bindparam("fts_query", request.query, type_=sa.Text))
        parts = [
            sa.func.plainto_tsquery(config, sa.bindparam(f"fts_w{i}", word, type_=sa.Text))
            for i, word in enumerate(query_words(request.query))
        ]
        query: Any = parts[0]
        for part in parts[1:]:
            query = query.op("||")(part)
        return query

    def text_search_statement(self, spec: TableSpec, request: TextSearchRequest) -> sa.Select[Any]:
        """Rows whose words match, by ``ts_rank(..., 1)`` (term frequency over 1 + log(length))."""
        table = spec.sa_table
        vector: sa.ColumnClause[Any] = sa.literal_column(self.tsvector_sql(spec, request.column))
        query = self.tsquery(spec, request)
        score = sa.func.ts_rank(vector, query, 1, type_=sa.Float)
        names = self._names(spec, request)
        stmt = sa.select(*[table.c[n] for n in names], score.label("_score")).where(vector.op("@@")(query))
        if request.where is not None:
            stmt = stmt.where(request.where)
        return stmt.order_by(sa.literal_column("_score").desc(), table.c[spec.primary_key]).limit(
            request.limit
        )

    # ------------------------------------------------------------------ JSON
    def json_contains(self, column: Any, value: Any) -> Any:
        return sa.cast(column, JSONB).op("@>")(sa.cast(sa.literal(json.dumps([value]), sa.Text), JSONB))


class _Explain(sa.sql.expression.Executable, sa.sql.expression.ClauseElement):
    """``EXPLAIN (FORMAT JSON) <select>``, executed like any statement."""

    inherit_cache = False

    def __init__(self, stmt: Any) -> None:
        self.stmt = stmt


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.stmt, **kw)


_BYTEA, _JSON, _JSONB = 17, 114, 3802  # PostgreSQL's fixed type oids


def _binary_vectors(values: list[Any], dims: int) -> list[bytes | None]:
    """pgvector's binary input for a chunk of vectors, converted to big-endian in one numpy call."""
    present = [i for i, v in enumerate(values) if v is not None]
    out: list[bytes | None] = [None] * len(values)
    if not present:
        return out
    mat = np.stack([_as_f32(values[i]) for i in present]).astype(">f4")
    if mat.shape[1] != dims:
        raise ValueError(f"vectors have {mat.shape[1]} dimensions, the column {dims}")
    head = struct.pack(">hh", dims, 0)
    buf = mat.tobytes()
    step = dims * 4
    for j, i in enumerate(present):
        out[i] = head + buf[j * step : (j + 1) * step]
    return out


def _as_f32(value: Any) -> np.ndarray:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(value), dtype="<f4")
    return np.asarray(value, dtype=np.float32)


def _json_bytes(proc: Any, value: Any, prefix: bytes) -> bytes | None:
    """The JSON text SQLAlchemy would send (its processor may wrap it in psycopg's ``Jsonb``)."""
    out = proc(value) if proc is not None else json.dumps(value)
    if out is not None and not isinstance(out, str):
        if hasattr(out, "obj"):
            dumps = getattr(out, "dumps", None) or json.dumps
            out = dumps(out.obj)
        else:
            out = json.dumps(out)
    return None if out is None else prefix + out.encode()
