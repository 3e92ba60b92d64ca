"""TiDB (self-hosted or TiDB Cloud): ``connect("tidb://user:pass@host:4000/db")``, ``mysql+pymysql://…``
or pytidb's keywords ``connect(host=..., port=4000, username=..., password=..., database=...)``.

Vectors are ``VECTOR(n)`` columns (≤ 16,383 dimensions), searched with ``VEC_COSINE_DISTANCE``,
``VEC_L2_DISTANCE``, ``VEC_NEGATIVE_INNER_PRODUCT`` and ``VEC_L1_DISTANCE``, so ``_distance`` means
the same as on the other engines. HNSW indexes (``CREATE VECTOR INDEX … USING HNSW``, on a TiFlash
replica) exist for cosine and L2 only; other metrics are searched exactly.

TiDB can't use a vector index when the query has a ``WHERE`` clause, so a filtered search either runs
exactly over the matching rows (when the filter is selective) or post-filters a candidate pool from the
index that is sized from the filter's selectivity; when that pool yields fewer than ``limit`` rows the
search is re-run exactly. No result is lost silently.

TiDB has no ``INSERT … RETURNING``: bulk inserts are multi-row ``INSERT`` statements and the ids of
rows without one are ``LAST_INSERT_ID() + i × @@auto_increment_increment``. TiDB (like MySQL with
``innodb_autoinc_lock_mode`` ≤ 1) allocates the ids of one multi-row statement consecutively; a table
using ``AUTO_RANDOM`` ids is not supported by this path.

Hosts under ``*.tidbcloud.com`` get TLS with certificate and host-name checks against the system's
CA store; ``enable_ssl=True/False`` overrides. Connections are pinged before use and recycled after
five minutes (TiDB Cloud closes idle ones).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlalchemy.dialects.mysql
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from lookalike.engines.base import SearchRequest, TextSearchRequest, missing_driver, query_words, redact_url
from lookalike.engines.planner import IndexScan, Rows
from lookalike.engines.server import ServerEngine, TextVector, vector_text
from lookalike.errors import (
    ConfigurationError,
    ConnectionFailedError,
    EngineError,
    LookalikeError,
    SchemaError,
)
from lookalike.schema import TableSpec, check_fts_parser

__all__ = [
    "TiDBConnectArgs",
    "TiDBEngine",
    "TiDBVector",
    "TiFlashReplica",
    "build_tidb_connection_url",
    "tidb_connect_args",
]

DISTANCE_FUNCTIONS = {
    "cosine": "VEC_COSINE_DISTANCE",
    "l2": "VEC_L2_DISTANCE",
    "inner_product": "VEC_NEGATIVE_INNER_PRODUCT",
    "l1": "VEC_L1_DISTANCE",
}
INDEXABLE_METRICS = ("cosine", "l2")
INSERT_BATCH_ROWS = 500
INSERT_BATCH_BYTES = 4 * 1024 * 1024  # well under TiDB's 6 MiB per-entry limit
_TRANSIENT_CODES = {2002, 2003, 2006, 2013, 1040, 1205}  # can't connect, gone away, too many, lock wait
_AUTH_CODES = {1045, 1044, 1698}


# --------------------------------------------------------------------------- column type


class TiDBVector(TextVector):
    """TiDB's ``VECTOR(n)``; values travel as text ``[1.0, 2.0, ...]``."""

    cache_ok = True  # SQLAlchemy reads it from each class itself

    def get_col_spec(self, **kw: Any) -> str:
        return f"VECTOR({self.dimensions})" if self.dimensions else "VECTOR"


# --------------------------------------------------------------------------- connection arguments


@dataclass
class TiDBConnectArgs:
    """What ``create_engine`` gets: the URL, the driver's arguments, and whether to create the database."""

    url: sa.URL
    connect_args: dict[str, Any] = field(default_factory=dict)
    ensure_db: bool = False

    @property
    def tls(self) -> bool:
        return bool(self.connect_args.get("ssl_verify_cert"))


def _system_ca() -> str | None:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None  # pymysql then loads the default store itself


def tidb_connect_args(
    url: str | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    username: str | None = None,
    password: str | None = None,
    database: str | None = None,
    enable_ssl: bool | None = None,
    ensure_db: bool = False,
) -> TiDBConnectArgs:
    """Turn a URL or pytidb's keywords into SQLAlchemy arguments (no connection is made).

    Keywords fill what the URL leaves out (a bare ``tidb://`` takes everything from them); pytidb's
    defaults apply last: ``localhost:4000``, user ``root``, no password, database ``test``.
    """
    text = url or "tidb://"
    try:
        parsed = sa.engine.make_url(text if "://" in text else f"tidb://{text}")
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"malformed TiDB URL {redact_url(text)!r}: {exc}") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in ("tidb", "mysql"):
        raise ConfigurationError(f"not a TiDB/MySQL URL: {redact_url(text)!r}")
    parsed = parsed.set(
        drivername=f"mysql+{driver or 'pymysql'}",
        host=parsed.host or host or "localhost",
        port=parsed.port or port or 4000,
        username=parsed.username or username or "root",
        password=parsed.password if parsed.password is not None else (password or None),
        database=parsed.database or database or "test",
    )
    query = dict(parsed.query)
    query.setdefault("charset", "utf8mb4")
    parsed = parsed.set(query=query)
    if enable_ssl is None:
        enable_ssl = (parsed.host or "").lower().endswith(".tidbcloud.com")
    connect_args: dict[str, Any] = {}
    if enable_ssl:
        connect_args = {"ssl_verify_cert": True, "ssl_verify_identity": True}
        ca = _system_ca()
        if ca:
            connect_args["ssl_ca"] = ca
    return TiDBConnectArgs(parsed, connect_args, ensure_db)


def build_tidb_connection_url(
    schema: str = "mysql+pymysql",
    host: str = "localhost",
    port: int = 4000,
    username: str = "root",
    password: str = "",
    database: str = "test",
    enable_ssl: bool | None = None,
) -> str:
    """pytidb's URL builder: ``mysql+pymysql://root@localhost:4000/test``; TLS for TiDB Cloud hosts."""
    if enable_ssl is None:
        enable_ssl = host.lower().endswith(".tidbcloud.com")
    query = {"ssl_verify_cert": "true", "ssl_verify_identity": "true"} if enable_ssl else {}
    url = sa.engine.URL.create(
        schema,
        username=username,
        password=password or None,
        host=host,
        port=port,
        database=database,
        query=query,
    )
    return url.render_as_string(hide_password=False)


class TiFlashReplica:
    """pytidb's handle on a table's TiFlash replicas (TiDB's columnar copies, which its vector and
    full-text indexes live in). TiDB only: on another database the calls raise :class:`EngineError`.

    ``create(bind)`` / ``drop(bind)`` run ``ALTER TABLE … SET TIFLASH REPLICA n`` (0 to drop);
    ``get_replication_progress(bind)`` reads ``information_schema.tiflash_replica``. ``bind`` is a
    SQLAlchemy engine or connection (``client.db_engine``). lookalike's TiDB engine adds a replica to
    each table it indexes by itself; this class is for code written against pytidb.
    """

    def __init__(self, table: Any, replica_count: int = 1) -> None:
        if isinstance(replica_count, bool) or not isinstance(replica_count, int) or replica_count < 0:
            raise ConfigurationError(f"replica_count must be a non-negative integer, got {replica_count!r}")
        self.table = table
        self.replica_count = replica_count

    def statement(self, count: int | None = None) -> str:
        """``ALTER TABLE <table> SET TIFLASH REPLICA <count>`` for this table (TiDB's quoting)."""
        name = sa.dialects.mysql.dialect().identifier_preparer.quote(self.table.name)
        return f"ALTER TABLE {name} SET TIFLASH REPLICA {self.replica_count if count is None else count}"

    def create(self, bind: sa.Engine | Connection) -> None:
        self._run(bind, self.statement())

    def drop(self, bind: sa.Engine | Connection) -> None:
        self._run(bind, self.statement(0))

    def get_replication_progress(self, bind: sa.Engine | Connection) -> dict[str, Any]:
        """``table_schema``, ``table_name``, ``replica_count``, ``location_labels``, ``available``,
        ``progress`` (0.0–1.0); a table with no replica has ``replica_count`` 0."""
        _check_tidb(bind)
        query = sa.text(
            "SELECT TABLE_SCHEMA, TABLE_NAME, REPLICA_COUNT, LOCATION_LABELS, AVAILABLE, PROGRESS "
            "FROM information_schema.tiflash_replica WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
        )
        with _connected(bind) as conn:
            row = conn.execute(query, {"t": self.table.name}).first()
            schema = row[0] if row is not None else conn.execute(sa.text("SELECT DATABASE()")).scalar()
        if row is None:
            return {
                "table_schema": schema,
                "table_name": self.table.name,
                "replica_count": 0,
                "location_labels": "",
                "available": False,
                "progress": 0.0,
            }
        return {
            "table_schema": row[0],
            "table_name": row[1],
            "replica_count": int(row[2]),
            "location_labels": row[3] or "",
            "available": bool(row[4]),
            "progress": float(row[5] or 0.0),
        }

    def _run(self, bind: sa.Engine | Connection, sql: str) -> None:
        _check_tidb(bind)
        with _connected(bind) as conn:
            conn.exec_driver_sql(sql)
            if isinstance(bind, sa.Engine):
                conn.commit()

    def __repr__(self) -> str:
        return f"TiFlashReplica({self.table.name!r}, replica_count={self.replica_count})"


def _check_tidb(bind: sa.Engine | Connection) -> None:
    if bind.dialect.name != "mysql":
        raise EngineError(f"TiFlash replicas exist on TiDB only, not on {bind.dialect.name}")


@contextmanager
def _connected(bind: sa.Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, sa.Engine):
        with bind.connect() as conn:
            yield conn
    else:
        yield bind


def _code(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", None) or exc
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _message(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[1], str):
        return args[1]
    return " ".join(str(orig).split())[:500]


# --------------------------------------------------------------------------- the engine


class TiDBEngine(ServerEngine):
    """TiDB with vector search (TiDB Cloud, or self-hosted TiDB ≥ 8.4 with TiFlash for indexes)."""

    name = "tidb"
    max_dimensions = 16_383
    supports_returning = False
    index_serves_filters = False  # TiDB uses a vector index only for a query with no WHERE clause

    def __init__(
        self,
        sa_engine: sa.Engine,
        *,
        exact_search_max_rows: int = 10_000,
        tiflash_replica: bool | None = None,
    ) -> None:
        super().__init__(sa_engine, exact_search_max_rows=exact_search_max_rows)
        host = (sa_engine.url.host or "").lower()
        self.is_serverless = host.endswith(".tidbcloud.com")
        """True on TiDB Cloud (pytidb's ``client.is_serverless``)."""
        # TiDB Cloud manages TiFlash replicas itself; self-hosted clusters need one per indexed table
        self.tiflash_replica = (
            (not host.endswith(".tidbcloud.com")) if tiflash_replica is None else tiflash_replica
        )
        self._increment: int | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_url(
        cls,
        url: str | None,
        *,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        database: str | None = None,
        enable_ssl: bool | None = None,
        ensure_db: bool = False,
        debug: bool | None = None,
        connect_retries: int = 3,
        retry_backoff_s: float = 0.25,
        exact_search_max_rows: int = 10_000,
        tiflash_replica: bool | None = None,
        **kwargs: Any,
    ) -> TiDBEngine:
        """Open TiDB; see :func:`tidb_connect_args` for the URL/keyword rules."""
        args = tidb_connect_args(
            url,
            host=host,
            port=port,
            username=username,
            password=password,
            database=database,
            enable_ssl=enable_ssl,
            ensure_db=ensure_db,
        )
        try:
            import pymysql  # noqa: F401
        except ImportError as exc:
            raise missing_driver(cls.name) from exc
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_recycle", 300)
        if debug:
            kwargs.setdefault("echo", True)
        connect_args = {**args.connect_args, **kwargs.pop("connect_args", {})}
        if args.ensure_db:
            cls._create_database(args, connect_args, connect_retries, retry_backoff_s)
        sa_engine = sa.create_engine(args.url, connect_args=connect_args, **kwargs)
        engine = cls(sa_engine, exact_search_max_rows=exact_search_max_rows, tiflash_replica=tiflash_replica)
        engine._connect(connect_retries, retry_backoff_s)
        return engine

    @classmethod
    def _create_database(
        cls, args: TiDBConnectArgs, connect_args: dict[str, Any], attempts: int, backoff: float
    ) -> None:
        name = args.url.database
        bare = sa.create_engine(args.url.set(database=None), connect_args=connect_args, pool_pre_ping=True)
        helper = cls(bare)
        try:
            quoted = bare.dialect.identifier_preparer.quote(str(name))
            helper._retrying(
                lambda conn: conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {quoted}"),
                attempts,
                backoff,
            )
        finally:
            bare.dispose()

    def _is_transient(self, exc: sa.exc.OperationalError) -> bool:
        return _code(exc) in _TRANSIENT_CODES

    def _setup(self, conn: Connection) -> None:
        try:
            with conn.begin_nested():
                conn.exec_driver_sql("SELECT VEC_DIMS(VEC_FROM_TEXT('[1]'))")
        except sa.exc.DBAPIError as exc:
            raise EngineError(
                f"the server at {self.safe_url} has no vector functions ({_message(exc)}): lookalike's "
                "tidb engine needs TiDB Cloud or TiDB 8.4 or newer (MySQL is not supported)"
            ) from exc
        self.ensure_catalog(conn)

    def translate_error(self, exc: BaseException) -> LookalikeError:
        code = _code(exc)
        text = _message(exc)
        where = f"TiDB at {self.safe_url}"
        if code in _AUTH_CODES:
            user = self.sa_engine.url.username
            return ConnectionFailedError(
                f"{where} refused the credentials of user {user!r}: wrong user name or password ({text})"
            )
        if code == 1049:
            return ConnectionFailedError(f"{where}: {text} (pass ensure_db=True to create it)")
        if code in _TRANSIENT_CODES and isinstance(exc, sa.exc.OperationalError):
            return ConnectionFailedError(f"cannot reach {where}: {text}")
        return EngineError(f"tidb: {text}" + (f" (error {code})" if code else ""))

    # ------------------------------------------------------------------ rows
    def _auto_increment_step(self, conn: Connection) -> int:
        if self._increment is None:
            self._increment = int(conn.exec_driver_sql("SELECT @@auto_increment_increment").scalar() or 1)
        return self._increment

    def insert_rows(self, conn: Connection, spec: TableSpec, rows: list[dict[str, Any]]) -> list[Any]:
        """Multi-row INSERTs; generated ids are ``LAST_INSERT_ID() + i × step`` (see module notes)."""
        if not rows:
            return []
        table = spec.sa_table
        pk = spec.primary_key
        ids: list[Any] = [None] * len(rows)
        for batches in plan_insert_batches(rows, pk).values():
            for batch in batches:
                values = [rows[i] for i in batch]
                result = conn.execute(sa.insert(table).values(values))
                if pk in values[0] and values[0][pk] is not None:
                    for i in batch:
                        ids[i] = rows[i][pk]
                    continue
                first: Any = result.lastrowid
                if not first:
                    first = conn.exec_driver_sql("SELECT LAST_INSERT_ID()").scalar()
                step = self._auto_increment_step(conn)
                for j, i in enumerate(batch):
                    ids[i] = int(first) + j * step
        return ids

    # ------------------------------------------------------------------ indexes
    def _load_indexes(self, conn: Connection, table: str) -> list[str]:
        return [
            str(r[0]).lower()
            for r in conn.execute(
                sa.text(
                    "SELECT EXPRESSION FROM information_schema.statistics "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND EXPRESSION IS NOT NULL"
                ),
                {"t": table},
            )
        ]

    def _find_index(self, conn: Connection, spec: TableSpec, column: str, metric: str | None) -> str | None:
        """``"hnsw"`` when a vector index serves (column, metric), else None."""
        metrics = [metric] if metric else list(INDEXABLE_METRICS)
        for expr in self._indexes(conn, spec.name):
            for m in metrics:
                if m in INDEXABLE_METRICS and re.search(
                    rf"{DISTANCE_FUNCTIONS[m].lower()}\(`?{re.escape(column.lower())}`?\)", expr
                ):
                    return "hnsw"
        return None

    def index_ddl(self, spec: TableSpec, column: str, metric: str, params: dict[str, Any]) -> list[str]:
        """The statements that build an HNSW index on ``column`` for ``metric``."""
        params = dict(params)
        algorithm = str(params.pop("algorithm", "hnsw")).lower()
        if algorithm != "hnsw":
            raise ConfigurationError(f"TiDB builds HNSW vector indexes, not {algorithm!r}")
        if params:
            raise ConfigurationError(f"TiDB's vector index takes no parameters, got {sorted(params)}")
        if metric not in INDEXABLE_METRICS:
            raise SchemaError(
                f"TiDB vector indexes support the cosine and l2 metrics only, not {metric!r}; "
                f"{metric} searches on {column!r} still work, exactly, without an index"
            )
        name = self.quote(f"vec_idx_{column}_{metric}"[:64])
        t = self.quote(spec.name)
        stmts = []
        if self.tiflash_replica:
            stmts.append(f"ALTER TABLE {t} SET TIFLASH REPLICA 1")
        stmts.append(
            f"CREATE VECTOR INDEX IF NOT EXISTS {name} ON {t} "
            f"(({DISTANCE_FUNCTIONS[metric]}({self.quote(column)}))) USING HNSW"
        )
        return stmts

    current_database_sql = "SELECT DATABASE()"
    list_databases_sql = "SHOW DATABASES"
    max_database_name = 64

    def reopen_options(self) -> dict[str, Any]:
        return {**super().reopen_options(), "tiflash_replica": self.tiflash_replica}

    def create_vector_index(
        self, conn: Connection, spec: TableSpec, column: str, metric: str, params: dict[str, Any]
    ) -> None:
        stmts = self.index_ddl(spec, column, metric, params)
        for sql in stmts:
            if sql.startswith("ALTER TABLE"):
                have = conn.execute(
                    sa.text(
                        "SELECT REPLICA_COUNT FROM information_schema.tiflash_replica "
                        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
                    ),
                    {"t": spec.name},
                ).scalar()
                if have:
                    continue
                try:
                    conn.exec_driver_sql(sql)
                except sa.exc.DBAPIError as exc:
                    raise EngineError(
                        f"a TiDB vector index needs a TiFlash replica of {spec.name!r} and setting one "
                        f"failed ({_message(exc)}): add TiFlash nodes to the cluster, or connect with "
                        "tiflash_replica=False if replicas are managed for you"
                    ) from exc
                continue
            conn.exec_driver_sql(sql)
        self._forget_indexes(spec.name)

    # ------------------------------------------------------------------ search
    def vector_type(self, dimensions: int) -> TypeEngine[Any]:
        return TiDBVector(dimensions)

    def query_expr(self, spec: TableSpec, request: SearchRequest) -> Any:
        return sa.func.VEC_FROM_TEXT(sa.literal(vector_text(request.vector), sa.Text))

    def distance_expr(self, col: Any, metric: str, query: Any) -> Any:
        return getattr(sa.func, DISTANCE_FUNCTIONS[metric])(col, query, type_=sa.Float)

    def count_statement(self, spec: TableSpec, request: SearchRequest) -> sa.Select[Any]:
        """(rows matching the filter, rows with a vector) in one scan."""
        table = spec.sa_table
        col = table.c[request.column]
        hit = (
            sa.func.sum(sa.case((request.where, 1), else_=0))
            if request.where is not None
            else sa.func.count()
        )
        return sa.select(hit, sa.func.count()).select_from(table).where(col.is_not(None))

    def count_matches(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> tuple[float, float]:
        matches, total = (int(v or 0) for v in conn.execute(self.count_statement(spec, request)).one())
        return matches, total

    def index_search(
        self, conn: Connection, spec: TableSpec, request: SearchRequest, scan: IndexScan
    ) -> Rows:
        # TiDB's index serves no query with a WHERE clause: candidates are always filtered afterwards
        stmt = self.post_filter_statement(spec, request, scan)
        return self._rows(conn.execute(stmt), self._names(spec, request), request.metric)

    def json_contains(self, column: Any, value: Any) -> Any:
        return sa.func.JSON_CONTAINS(column, sa.func.JSON_ARRAY(value)) == 1

    # ------------------------------------------------------------------ full-text search
    def fts_index_ddl(self, spec: TableSpec, column: str) -> str:
        """``ALTER TABLE ... ADD FULLTEXT INDEX`` with the column's parser (TiDB's analyzers choose
        the language by themselves: ``language=`` has no say here)."""
        text = spec.fulltext.get(column)
        parser = check_fts_parser(text.parser if text is not None else "MULTILINGUAL")
        name = self.quote(f"fts_idx_{column}"[:64])
        return (
            f"ALTER TABLE {self.quote(spec.name)} ADD FULLTEXT INDEX {name} ({self.quote(column)}) "
            f"WITH PARSER {parser} ADD_COLUMNAR_REPLICA_ON_DEMAND"
        )

    def create_fts_index(self, conn: Connection, spec: TableSpec, column: str, language: str | None) -> None:
        if self.has_fts_index(conn, spec, column):
            return  # TiDB has one full-text index per column, and no language setting to change
        conn.exec_driver_sql(self.fts_index_ddl(spec, column))

    def has_fts_index(self, conn: Connection, spec: TableSpec, column: str) -> bool:
        found = conn.execute(
            sa.text(
                "SELECT 1 FROM information_schema.tiflash_indexes WHERE TIDB_DATABASE = DATABASE() "
                "AND TIDB_TABLE = :t AND COLUMN_NAME = :c AND INDEX_KIND = 'FullText'"
            ),
            {"t": spec.name, "c": column},
        ).first()
        return found is not None

    def text_search_statement(self, spec: TableSpec, request: TextSearchRequest) -> sa.Select[Any]:
        """``FTS_MATCH_WORD(query, column)`` as the match and as ``_score`` (TiDB's BM25), best
        first. Words-only queries send the words joined by spaces (TiDB matches any of them)."""
        table = spec.sa_table
        text = request.query if request.raw else " ".join(query_words(request.query))
        match = sa.func.FTS_MATCH_WORD(
            sa.bindparam("fts_query", text, type_=sa.Text), table.c[request.column]
        )
        names = self._names(spec, request)
        stmt = sa.select(*[table.c[n] for n in names], match.label("_score")).where(match)
        if request.where is not None:
            stmt = stmt.where(request.where)
        return stmt.order_by(sa.desc(match), table.c[spec.primary_key]).limit(request.limit)


def plan_insert_batches(rows: list[dict[str, Any]], pk: str) -> dict[tuple[Any, ...], list[list[int]]]:
    """Row positions grouped by (key set, has an id), cut into statements of bounded size.

    One multi-row INSERT needs the same columns in every row; rows with and without ids go in separate
    statements so ``LAST_INSERT_ID()`` maps to the rows that got generated ids.
    """
    groups: dict[tuple[Any, ...], list[list[int]]] = {}
    sizes: dict[tuple[Any, ...], int] = {}
    for i, row in enumerate(rows):
        key = (frozenset(row), row.get(pk) is not None)
        batches = groups.setdefault(key, [[]])
        size = sum(
            len(v) * 12 if hasattr(v, "__len__") and not isinstance(v, str) else len(str(v))
            for v in row.values()
        )
        if batches[-1] and (
            len(batches[-1]) >= INSERT_BATCH_ROWS or sizes.get(key, 0) + size > INSERT_BATCH_BYTES
        ):
            batches.append([])
            sizes[key] = 0
        batches[-1].append(i)
        sizes[key] = sizes.get(key, 0) + size
    return groups
