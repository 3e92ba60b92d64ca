"""The embedded engine: a SQLite file, with exact vector search in-process.

Vectors are float32 blobs in the table itself. Search runs with numpy over a contiguous matrix per
(table, vector column) (a :class:`~lookalike.vectors.base.VectorIndex`), loaded with one query and
kept in sync with every writer, including other processes on the same file:

* inserts in id order are found by ``max(rowid)`` moving past what the matrix holds;
* updates of vector columns, deletes and out-of-order inserts are logged by triggers into
  ``_lookalike_changes``; a reader applies the log entries newer than the last one it saw;
* truncating, dropping or re-creating a table logs a ``reset``, and the matrix is reloaded.

The file runs in WAL mode with a busy timeout, and writes take the write lock up front
(``BEGIN IMMEDIATE``), so a second process writing while the first searches never surfaces
"database is locked" under normal load. No SQLite extension is loaded: many Pythons can't.

**The IVF index.** With ``vector_index="on"`` (the default) or ``"always"`` a column can also be
searched through an IVF index (faiss, the ``ann`` extra) fed from the same change log: its catalogue,
files, upkeep and the index side of search live in :mod:`lookalike.engines.sqlite_index`, and the
reads of the change log that both share in :mod:`lookalike.engines.sqlite_log`.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from lookalike.engines.base import Engine, SearchRequest, TextSearchRequest
from lookalike.engines.planner import IndexScan, PoolPolicy, Rows, planned_search
from lookalike.engines.sqlite_fts import SQLiteFullText
from lookalike.engines.sqlite_index import IndexPlan, IVFCache, IVFIndexes
from lookalike.engines.sqlite_log import CHANGES, STATE, ChangeLog, raw_cursor
from lookalike.errors import ConfigurationError, ConnectionFailedError, EngineError, LookalikeError
from lookalike.schema import TableSpec, VectorType
from lookalike.vectors.base import VectorIndex, float32_blobs
from lookalike.vectors.exact import VectorMatrix

VECTOR_INDEX_MODES = ("off", "on", "always")
DEFAULT_VECTOR_INDEX = "on"  # an index is built when asked for (create_vector_index, index=True)
# a filter matching at most this many rows is searched exactly; more go through the index restricted
# to the matching ids (at 100k rows, a 10 % filter: 14 ms that way, recall 1.0; 66 ms reading the
# 10k rows' vectors by id)
EXACT_SEARCH_MAX_ROWS = 1_000
_URL_OPTIONS = ("vector_index", "exact_search_max_rows")
PAGE_SIZE = 16_384  # bytes per page of a new database file (SQLite's default is 4,096)
POST_FILTER_MIN_SHARE = 0.05  # a filter keeping at least this share is applied to the index's pool
_READ_MATCHES_MAX = 20_000  # a filter matching at most this many rows reads just their vectors
_PRUNE_EVERY = 64  # write transactions between checks of the change log's size
_KEEP_CHANGES = 20_000  # log entries kept after a prune
_PRUNE_AT = 100_000  # prune when the log holds more than this
BUSY_TIMEOUT_S = 30.0
MMAP_BYTES = 1 << 34  # reads of big tables go through the page cache without copies (SQLite caps it)
_ROWID: sa.ColumnClause[int] = sa.literal_column("rowid", sa.Integer)


def sqlite_path(url: str | os.PathLike[str] | None) -> str:
    """``None`` → ``./lookalike.db``; ``sqlite:///x.db``/``file:x.db``/a path → the file; ``:memory:``."""
    if url is None:
        return "lookalike.db"
    text = os.fspath(url)
    if text in (":memory:", "sqlite://", "sqlite:///:memory:"):
        return ":memory:"
    for prefix in ("sqlite+pysqlite:///", "sqlite:///", "file://", "file:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return os.path.expanduser(text)


def split_url_options(
    url: str | os.PathLike[str] | None,
) -> tuple[str | os.PathLike[str] | None, dict[str, str]]:
    """``sqlite:///x.db?vector_index=on`` → (``sqlite:///x.db``, {"vector_index": "on"}).

    Only ``sqlite://`` URLs carry options (a plain path may contain ``?``); an unknown option is
    refused rather than taken as part of the file name."""
    if url is None or not isinstance(url, str) or not url.startswith("sqlite") or "?" not in url:
        return url, {}
    base, query = url.split("?", 1)
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_URL_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"unknown SQLite URL option(s) {', '.join(unknown)}; known: {', '.join(_URL_OPTIONS)}"
        )
    return base, options


_DATABASE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
_SQLITE_HEADER = b"SQLite format 3\x00"


def _is_sqlite_file(path: Path) -> bool:
    """A SQLite database file (an empty file is one SQLite has not written to yet)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
    except OSError:
        return False
    return head in (b"", _SQLITE_HEADER)


@dataclass
class _Cache:
    """One (table, vector column)'s index and how far through the change log it is."""

    index: VectorIndex
    seq: int  # the change log's last entry applied
    max_rowid: int  # the largest row id seen (inserts in id order are not logged)
    lock: threading.RLock


class SQLiteEngine(Engine):
    """Embedded engine on one SQLite file (or ``:memory:``)."""

    name = "sqlite"
    max_dimensions = 65_536
    driver_errors = (sqlite3.Error,)  # the matrix loads through a raw cursor, past SQLAlchemy

    def __init__(
        self,
        sa_engine: sa.Engine,
        path: str,
        *,
        vector_index: str = DEFAULT_VECTOR_INDEX,
        exact_search_max_rows: int = EXACT_SEARCH_MAX_ROWS,
    ) -> None:
        super().__init__(sa_engine)
        if vector_index not in VECTOR_INDEX_MODES:
            raise ConfigurationError(
                f"vector_index must be one of {', '.join(VECTOR_INDEX_MODES)}, got {vector_index!r}"
            )
        self.path = path
        self.vector_index = vector_index
        """"off": exact search only; "on": indexes that were asked for; "always": every vector column."""
        self.exact_search_max_rows = int(exact_search_max_rows)
        self._caches: dict[tuple[str, str], _Cache] = {}
        self._caches_lock = threading.Lock()
        self._writes = 0
        self.log = ChangeLog(self.quote)
        """Reads of the change log and of stored vectors, shared with the IVF indexes."""
        self.indexes = IVFIndexes(self)
        """The IVF indexes of this database's vector columns (catalogue, files, upkeep)."""
        self.fts = SQLiteFullText(self.quote)
        """The FTS5 full-text indexes of this database's text columns."""

    @classmethod
    def from_url(cls, url: str | os.PathLike[str] | None, **kwargs: Any) -> SQLiteEngine:
        """Open the file; ``vector_index`` and ``exact_search_max_rows`` come from the URL's query
        (``sqlite:///x.db?vector_index=on``) or keyword arguments, the rest go to SQLAlchemy."""
        url, options = split_url_options(url)
        options.update({k: kwargs.pop(k) for k in _URL_OPTIONS if k in kwargs})
        try:
            index_options: dict[str, Any] = {
                "vector_index": str(options.get("vector_index", DEFAULT_VECTOR_INDEX)),
                "exact_search_max_rows": int(options.get("exact_search_max_rows", EXACT_SEARCH_MAX_ROWS)),
            }
        except ValueError as exc:
            raise ConfigurationError(f"exact_search_max_rows must be an integer: {exc}") from exc
        path = sqlite_path(url)
        if path == ":memory:":
            sa_engine = sa.create_engine(
                "sqlite+pysqlite://",
                connect_args={"check_same_thread": False},
                poolclass=StaticPool,
                **kwargs,
            )
        else:
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConnectionFailedError(
                    f"cannot open database {path!r}: folder {str(parent)!r} does not exist"
                )
            if Path(path).is_dir():
                raise ConnectionFailedError(f"cannot open database {path!r}: it is a directory")
            sa_engine = sa.create_engine(
                sa.engine.URL.create("sqlite+pysqlite", database=path),
                connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
                **kwargs,
            )
        memory = path == ":memory:"

        @event.listens_for(sa_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # the driver must not open transactions by itself: we emit BEGIN (IMMEDIATE for writes)
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            # LIKE (so $like and $contains) is case-sensitive, as on PostgreSQL and TiDB
            cur.execute("PRAGMA case_sensitive_like=ON")
            if not memory:
                # only a new, empty file takes it (an existing one keeps its own): with 4 KiB pages
                # a 512-d float32 row (2 KiB and a little) fills a page alone, doubling the file
                # and the bytes a filter's table scan reads; 16 KiB pages hold seven such rows
                cur.execute(f"PRAGMA page_size={PAGE_SIZE}")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            cur.close()

        @event.listens_for(sa_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("lookalike_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        try:
            engine = cls(sa_engine, path, **index_options)
        except LookalikeError:
            sa_engine.dispose()
            raise
        try:
            with engine.begin(write=True) as conn:
                engine.setup(conn)
        except LookalikeError:
            sa_engine.dispose()
            raise
        return engine

    def translate_error(self, exc: BaseException) -> LookalikeError:
        """Every message names the database file: a user with several can't act on "disk is full"."""
        orig = getattr(exc, "orig", None) or exc
        text = str(orig)
        where = f"SQLite database {self.path!r}"
        if "unable to open database" in text or "file is not a database" in text:
            return ConnectionFailedError(f"cannot open {where}: {text}")
        if "database is locked" in text:
            return EngineError(
                f"{where} stayed locked by another writer for more than {BUSY_TIMEOUT_S:.0f} s"
            )
        if "readonly database" in text:
            return EngineError(f"{where} is read-only: {text} (open a writable copy to change it)")
        if "database or disk is full" in text:
            return EngineError(f"{where} is full: {text} (free space on its disk, or lift its size limit)")
        if "malformed" in text or (isinstance(orig, sqlite3.DatabaseError) and "corrupt" in text):
            return EngineError(
                f"{where} is damaged: {text} (restore it from a backup, or re-create it; "
                "'sqlite3 FILE .recover' may save its rows)"
            )
        return EngineError(f"{where}: {text}")

    def insert_rows(self, conn: Connection, spec: TableSpec, rows: list[dict[str, Any]]) -> list[Any]:
        """Plain ``executemany`` when SQLite assigns the integer ids (they are consecutive under our
        write lock); the portable RETURNING path otherwise."""
        pk = spec.sa_table.c[spec.primary_key]
        keys = set(rows[0]) if rows else set()
        if (
            not rows
            or not isinstance(pk.type, sa.Integer)
            or pk.name in keys
            or any(set(r) != keys for r in rows)
        ):
            return super().insert_rows(conn, spec, rows)
        # straight to the driver: SQLAlchemy's per-row bookkeeping costs more than SQLite's insert
        names = list(rows[0])
        dialect = self.sa_engine.dialect
        sql = (
            f"INSERT INTO {self.quote(spec.name)} ({', '.join(self.quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        # column by column, by name (rows with the same keys may list them in another order): a
        # vector column is encoded as one array when it can be, not row by row
        columns: list[list[Any]] = []
        for name in names:
            col_type = spec.sa_table.c[name].type
            values = [row[name] for row in rows]
            if isinstance(col_type, VectorType):  # float32 blobs, as Engine.encode_vector makes them
                values = float32_blobs(values)
            # other types: the dialect's own binding (SQLite stores dates, decimals... its own way)
            elif (proc := col_type.dialect_impl(dialect).bind_processor(dialect)) is not None:
                values = [None if v is None else proc(v) for v in values]
            columns.append(values)
        conn.exec_driver_sql(sql, list(zip(*columns)))
        last = int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar() or 0)
        first = last - len(rows) + 1
        t = self.quote(spec.name)
        found = conn.exec_driver_sql(
            f"SELECT count(*) FROM {t} WHERE rowid BETWEEN ? AND ?", (first, last)
        ).scalar()
        if found != len(rows):  # cannot happen while we hold the write lock; refuse rather than guess
            raise EngineError(
                f"sqlite: inserted {len(rows)} rows into {spec.name!r} but could not read back their ids"
            )
        return list(range(first, last + 1))

    # ------------------------------------------------------------------ set-up and DDL
    def setup(self, conn: Connection) -> None:
        self.ensure_catalog(conn)
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {CHANGES} (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "tbl TEXT NOT NULL, rid INTEGER, op TEXT NOT NULL)"
        )
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {CHANGES}_tbl ON {CHANGES}(tbl, seq)")
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {STATE} (key TEXT PRIMARY KEY, value INTEGER)")
        self.indexes.setup(conn)

    def _log_reset(self, conn: Connection, table: str) -> None:
        conn.exec_driver_sql(f"INSERT INTO {CHANGES}(tbl, rid, op) VALUES (?, NULL, 'reset')", (table,))
        self._drop_caches(table)

    def after_create(self, conn: Connection, spec: TableSpec) -> None:
        self._log_reset(conn, spec.name)
        if not spec.vectors:
            return
        t = self.quote(spec.name)
        lit = "'" + spec.name.replace("'", "''") + "'"
        watched = ", ".join(self.quote(c) for c in [*spec.vectors, spec.primary_key])
        for suffix, body in (
            (
                "ins",
                f"AFTER INSERT ON {t} WHEN NEW.rowid < (SELECT max(rowid) FROM {t}) BEGIN "
                f"INSERT INTO {CHANGES}(tbl, rid, op) VALUES ({lit}, NEW.rowid, 'u'); END",
            ),
            (
                "upd",
                f"AFTER UPDATE OF {watched} ON {t} BEGIN "
                f"INSERT INTO {CHANGES}(tbl, rid, op) SELECT {lit}, OLD.rowid, 'd' WHERE OLD.rowid <> NEW.rowid; "
                f"INSERT INTO {CHANGES}(tbl, rid, op) VALUES ({lit}, NEW.rowid, 'u'); END",
            ),
            (
                "del",
                f"AFTER DELETE ON {t} BEGIN INSERT INTO {CHANGES}(tbl, rid, op) VALUES ({lit}, OLD.rowid, 'd'); END",
            ),
        ):
            trigger = self.quote(f"_lookalike_{spec.name}_{suffix}")
            conn.exec_driver_sql(f"CREATE TRIGGER {trigger} {body}")

    def drop_table(self, conn: Connection, name: str) -> None:
        super().drop_table(conn, name)
        self._log_reset(conn, name)
        self.indexes.forget_table(conn, name)
        self.fts.drop_table(conn, name)

    def truncate(self, conn: Connection, spec: TableSpec) -> None:
        # one reset entry instead of a trigger firing per row
        triggers = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name=?", (spec.name,)
        ).all()
        for name, _ in triggers:
            conn.exec_driver_sql(f"DROP TRIGGER {self.quote(name)}")
        conn.execute(sa.delete(spec.sa_table))
        for _, sql in triggers:
            conn.exec_driver_sql(sql)
        self.fts.truncate(conn, spec)  # its triggers were off during the DELETE
        self._log_reset(conn, spec.name)
        self.indexes.reset_table(conn, spec)

    def after_write(self, conn: Connection) -> None:
        """Keep the change log short; readers that fell behind a prune reload fully."""
        self._writes += 1
        if self._writes % _PRUNE_EVERY:
            return
        count = conn.exec_driver_sql(f"SELECT count(*) FROM {CHANGES}").scalar() or 0
        if count <= _PRUNE_AT:
            return
        top = conn.exec_driver_sql(f"SELECT max(seq) FROM {CHANGES}").scalar() or 0
        cut = top - _KEEP_CHANGES
        conn.exec_driver_sql(f"DELETE FROM {CHANGES} WHERE seq <= ?", (cut,))
        conn.exec_driver_sql(
            f"INSERT INTO {STATE}(key, value) VALUES ('pruned', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
            (cut,),
        )

    # ------------------------------------------------------------------ index cache
    def _drop_caches(self, table: str | None = None) -> None:
        with self._caches_lock:
            for key in list(self._caches):
                if table is None or key[0] == table:
                    del self._caches[key]
        self.indexes.drop(table)

    def notify_reset(self) -> None:
        self._drop_caches()

    def _new_index(self, spec: TableSpec, column: str) -> VectorIndex:
        """An empty index for (table, column): the exact matrix (the seam for an ANN index chosen
        from ``spec.vectors[column].index``/``index_params``)."""
        return VectorMatrix(spec.vectors[column].dimensions)

    def _fresh_index(self, conn: Connection, spec: TableSpec, column: str) -> _Cache:
        """The cached index for (table, column), brought up to date inside ``conn``'s transaction."""
        key = (spec.name, column)
        dims = spec.vectors[column].dimensions
        cur = raw_cursor(conn)
        try:
            seq, max_rowid, pruned = self.log.position(cur, spec)
            with self._caches_lock:
                entry = self._caches.get(key)
                if entry is None or entry.index.dimensions != dims:
                    entry = _Cache(self._new_index(spec, column), -1, 0, threading.RLock())
                    self._caches[key] = entry
            with entry.lock:
                if entry.seq == seq and entry.max_rowid == max_rowid:
                    return entry
                full, touched, since = self.log.pending(cur, spec, entry.seq, entry.max_rowid, pruned)
                if full:
                    ids, data = self.log.load_all(cur, spec, column)
                    entry.index.replace_all(ids, data)
                else:
                    if touched:
                        entry.index.remove(np.asarray(touched, dtype=np.int64))
                    entry.index.upsert(*self.log.changed_rows(cur, spec, column, since, touched))
                entry.seq, entry.max_rowid = seq, max_rowid
                return entry
        finally:
            cur.close()

    def prefetch(self, spec: TableSpec, column: str) -> threading.Thread | None:
        """Load a cold matrix (or IVF index) in a thread while the caller embeds the query (a cold
        CLI search otherwise pays model load and matrix load one after the other)."""
        if self.path == ":memory:" or column not in spec.vectors:
            return None  # one shared connection: no second reader
        with self._caches_lock:
            warm = (spec.name, column) in self._caches
        if warm or self.indexes.is_cached(spec.name, column):
            return None  # warm: the refresh is cheap

        def load() -> None:
            try:
                with self.begin(write=False) as conn:
                    if not self.indexes.warm_up(conn, spec, column):
                        self._fresh_index(conn, spec, column)
            except Exception:  # the search itself will report any problem
                pass

        thread = threading.Thread(target=load, name="lookalike-prefetch", daemon=True)
        thread.start()
        return thread

    # ------------------------------------------------------------------ databases: sibling files
    # pytidb's database calls map onto one folder: database "photos" is the file photos.db beside
    # this one, so a name must be a safe file name (letters, digits, "_" and "-"; no path parts)

    def _folder(self) -> Path:
        if self.path == ":memory:":
            raise ConfigurationError(
                "an in-memory SQLite database has no sibling databases; open a file to use databases"
            )
        return Path(self.path).expanduser().resolve().parent

    def check_database_name(self, name: Any) -> str:
        name = super().check_database_name(name)
        if not _DATABASE_NAME.fullmatch(name):
            raise ConfigurationError(
                f"database name {name!r} is not a safe file name: use 1-64 letters, digits, '_' or '-' "
                "(the embedded engine keeps database NAME in the file NAME.db beside the current one)"
            )
        return name

    def database_file(self, name: str) -> Path:
        """The file that holds database ``name``: ``<folder of the current file>/<name>.db``."""
        return self._folder() / f"{self.check_database_name(name)}.db"

    def current_database(self) -> str | None:
        """The current file's name without its extension (None for ``:memory:``)."""
        return None if self.path == ":memory:" else Path(self.path).stem

    def list_databases(self) -> list[str]:
        """The current database and every SQLite ``NAME.db`` file beside it with a safe NAME."""
        names = {str(self.current_database())}
        for file in self._folder().glob("*.db"):
            if _DATABASE_NAME.fullmatch(file.stem) and _is_sqlite_file(file):
                names.add(file.stem)
        return sorted(names)

    def create_database(self, name: str) -> None:
        """A new ``NAME.db`` beside this file, set up as :meth:`from_url` sets up any new file."""
        file = self.database_file(name)
        if file.exists():
            raise EngineError(f"cannot create database {name!r}: {str(file)!r} already exists")
        self.open_database(name).close()

    def drop_database(self, name: str) -> None:
        """Delete ``NAME.db`` with its WAL, shared-memory and IVF index files (missing: a no-op)."""
        file = self.database_file(name)
        if file.exists() and not _is_sqlite_file(file):
            raise EngineError(f"cannot drop database {name!r}: {str(file)!r} is not a SQLite database")
        extra = [Path(f"{file}{suffix}") for suffix in ("-wal", "-shm", "-journal")]
        for path in [file, *extra, *file.parent.glob(f"{file.name}.*.ivf")]:
            path.unlink(missing_ok=True)

    def open_database(self, name: str) -> Engine:
        """An engine with this one's settings on ``NAME.db`` (created if missing)."""
        return SQLiteEngine.from_url(
            str(self.database_file(name)),
            vector_index=self.vector_index,
            exact_search_max_rows=self.exact_search_max_rows,
        )

    # ------------------------------------------------------------------ the IVF index
    def create_vector_index(
        self, conn: Connection, spec: TableSpec, column: str, metric: str, params: dict[str, Any]
    ) -> None:
        """Build the IVF index now when the column has vectors; on an empty table record the wish
        (built at a search once ``min_rows`` rows have one). ``vector_index="off"``: a no-op."""
        self.indexes.create(conn, spec, column, metric, params)

    def has_vector_index(self, conn: Connection, spec: TableSpec, column: str) -> bool:
        """True when an IVF index of the column exists (built, in a file, or in memory)."""
        return self.indexes.exists(conn, spec, column)

    # ------------------------------------------------------------------ full-text search (sqlite_fts)
    def create_fts_index(self, conn: Connection, spec: TableSpec, column: str, language: str | None) -> None:
        """An FTS5 index of ``column`` kept in step by triggers, filled from the rows it has."""
        self.fts.create(conn, spec, column, language)

    def has_fts_index(self, conn: Connection, spec: TableSpec, column: str) -> bool:
        return self.fts.exists(conn, spec, column)

    def text_search(
        self, conn: Connection, spec: TableSpec, request: TextSearchRequest
    ) -> list[dict[str, Any]]:
        """Top rows by BM25 (``_score = -bm25()``, higher is better)."""
        return self.fts.search(conn, spec, request, self._names(spec, request))

    # ------------------------------------------------------------------ reads and search
    def read_vectors(self, conn: Connection, spec: TableSpec, column: str) -> tuple[list[Any], np.ndarray]:
        """The cached index's rows, copied under its lock (no second read of the blobs), with row ids
        mapped to primary keys; in row-id (insertion) order."""
        entry = self._fresh_index(conn, spec, column)
        with entry.lock:
            rowids, data = entry.index.snapshot()
        pk = spec.sa_table.c[spec.primary_key]
        stmt = sa.select(_ROWID, pk).select_from(spec.sa_table)
        key_of = {rowid: key for rowid, key in conn.execute(stmt)}
        return [key_of[rowid] for rowid in rowids.tolist()], np.asarray(data, dtype=np.float32)

    def pool_policy(self) -> PoolPolicy:
        """The planner's numbers (read at each search: ``exact_search_max_rows`` may be changed)."""
        return PoolPolicy(exact_search_max_rows=self.exact_search_max_rows)

    def vector_search(
        self, conn: Connection, spec: TableSpec, request: SearchRequest
    ) -> list[dict[str, Any]]:
        plan, entry = self.indexes.for_search(conn, spec, request)
        hooks = _SQLiteSearch(self, plan, entry)
        if entry is None:
            return hooks.exact_search(conn, spec, request)
        return planned_search(hooks, conn, spec, request, "ivf", self.pool_policy())

    def _candidate_ids(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> np.ndarray:
        # no "vector IS NOT NULL" here: it would read every candidate row's blob; the index only
        # holds non-null vectors and ignores other ids
        stmt = sa.select(_ROWID).select_from(spec.sa_table).where(request.where)
        # straight from the driver's cursor: SQLAlchemy's per-row objects cost more than the query
        # itself when a filter matches 100k rows
        rows = conn.execute(stmt).cursor.fetchall()
        return np.fromiter(map(itemgetter(0), rows), dtype=np.int64, count=len(rows))

    def _exact_search(
        self,
        conn: Connection,
        spec: TableSpec,
        request: SearchRequest,
        candidates: np.ndarray | None,
        *,
        read_matches: bool,
    ) -> Rows:
        """Exact top-k through the cached matrix; with ``read_matches``, a filter matching few rows
        reads just their vectors while no matrix is loaded (an indexed column never needs one)."""
        if candidates is not None and not len(candidates):
            return []
        lo, hi = request.distance_min, request.distance_max
        with self._caches_lock:
            loaded = (spec.name, request.column) in self._caches
        if read_matches and candidates is not None and len(candidates) <= _READ_MATCHES_MAX and not loaded:
            matrix = self.log.read_matrix(conn, spec, request.column, candidates)
            ids, dists = matrix.search(
                request.vector, request.metric, request.limit, distance_min=lo, distance_max=hi
            )
        else:
            entry = self._fresh_index(conn, spec, request.column)
            with entry.lock:
                ids, dists = entry.index.search(
                    request.vector,
                    request.metric,
                    request.limit,
                    candidate_ids=candidates,
                    distance_min=lo,
                    distance_max=hi,
                )
        return self._result_rows(conn, spec, request, ids, dists)

    def _result_rows(
        self, conn: Connection, spec: TableSpec, request: SearchRequest, ids: np.ndarray, dists: np.ndarray
    ) -> Rows:
        """The requested columns of the rows ``ids`` (in that order) with their distances."""
        if not len(ids):
            return []
        table = spec.sa_table
        names = self._names(spec, request)
        stmt = sa.select(*[table.c[n] for n in names], _ROWID.label("_lookalike_rowid")).where(
            _ROWID.in_([int(i) for i in ids])
        )
        found = {r._mapping["_lookalike_rowid"]: r._mapping for r in conn.execute(stmt)}
        out = []
        for rid, dist in zip(ids.tolist(), dists.tolist()):
            row = found.get(rid)
            if row is None:  # deleted between the index refresh and this read
                continue
            item = {n: row[n] for n in names}
            item["_distance"] = float(dist)
            out.append(item)
        return out

    def json_contains(self, column: Any, value: Any) -> Any:
        # an element test on arrays only (json_each also walks an object's values and yields a
        # scalar itself), with JSON types kept apart: json_each gives true as 1 and "1" as 1 too
        each = sa.func.json_each(column).table_valued("value", "type")
        if isinstance(value, bool):
            match = each.c.type == ("true" if value else "false")
        elif isinstance(value, (int, float)):
            match = sa.and_(each.c.type.in_(["integer", "real"]), each.c.value == value)
        elif isinstance(value, str):
            match = sa.and_(each.c.type == "text", each.c.value == value)
        elif value is None:
            match = each.c.type == "null"
        else:
            match = each.c.value == value
        found = sa.select(sa.literal(1)).select_from(each).where(match).exists()
        return sa.and_(sa.func.json_type(column) == "array", found)


class _SQLiteSearch:
    """The planner's three hooks for one search on the embedded engine: the filter's row ids are
    read once and shared by the count, the index search and the exact search.

    A filter that keeps a large share of the rows near the query (:data:`POST_FILTER_MIN_SHARE`,
    measured on a probe of the index) is not read as ids at all: the index proposes a pool widened
    by that share, and the filter is applied to the pool's rows only (reading 100k ids of a 10 %
    filter over a million rows costs more than the whole search)."""

    def __init__(self, engine: SQLiteEngine, plan: IndexPlan | None, entry: IVFCache | None) -> None:
        self.engine = engine
        self.plan = plan
        self.entry = entry
        self._candidates: np.ndarray | None = None
        self._read = False
        self._share: float | None = None  # set: the post-filtered path, with the measured share

    def candidates(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> np.ndarray | None:
        """Row ids passing the filter (None without a filter)."""
        if request.where is None:
            return None
        if not self._read:
            self._candidates = self.engine._candidate_ids(conn, spec, request)
            self._read = True
        return self._candidates

    def passing(
        self, conn: Connection, spec: TableSpec, request: SearchRequest, ids: np.ndarray
    ) -> np.ndarray:
        """Those of ``ids`` whose rows pass the filter."""
        if not len(ids):
            return ids
        # the ids as one JSON parameter: a list of thousands of parameters costs more to compile
        value: sa.ColumnClause[int] = sa.literal_column("value", sa.Integer)
        listed = sa.select(value).select_from(sa.func.json_each(sa.bindparam("_ids")))
        where = sa.and_(_ROWID.in_(listed.scalar_subquery()), request.where)
        stmt = sa.select(_ROWID).select_from(spec.sa_table).where(where)
        rows = conn.execute(stmt, {"_ids": json.dumps(ids.tolist())}).cursor.fetchall()
        return np.fromiter(map(itemgetter(0), rows), dtype=np.int64, count=len(rows))

    def exact_search(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> Rows:
        candidates = self.candidates(conn, spec, request)
        return self.engine._exact_search(conn, spec, request, candidates, read_matches=self.plan is not None)

    def index_search(
        self, conn: Connection, spec: TableSpec, request: SearchRequest, scan: IndexScan
    ) -> Rows:
        assert self.entry is not None and self.plan is not None  # the planner runs this only with an index
        indexes = self.engine.indexes
        if self._share is not None:
            found, dists = indexes.search(
                conn, spec, request, scan, self.entry, self.plan, None,
                post_filter=(self._share, lambda ids: self.passing(conn, spec, request, ids)),
            )  # fmt: skip
            if len(found) >= request.limit:
                return self.engine._result_rows(conn, spec, request, found, dists)
            # short (the matching rows sit outside the probed lists): search among the filter's ids
        candidates = self.candidates(conn, spec, request)
        found, dists = indexes.search(conn, spec, request, scan, self.entry, self.plan, candidates)
        return self.engine._result_rows(conn, spec, request, found, dists)

    def count_matches(self, conn: Connection, spec: TableSpec, request: SearchRequest) -> tuple[float, float]:
        total = len(self.entry.index) if self.entry is not None and self.entry.index is not None else 0
        if request.where is not None and self.entry is not None and self.plan is not None and not self._read:
            share = self.engine.indexes.filter_share(
                self.entry, self.plan, request, lambda ids: self.passing(conn, spec, request, ids)
            )
            if share is not None and share >= POST_FILTER_MIN_SHARE:
                self._share = share
                return share * total, float(total)
        candidates = self.candidates(conn, spec, request)
        return float(total if candidates is None else len(candidates)), float(total)
