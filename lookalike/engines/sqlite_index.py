"""The IVF vector index of the embedded engine: catalogue, files, upkeep and the index side of search.

With ``vector_index="on"`` (the default; ``sqlite:///photos.db?vector_index=off`` or
``connect(path, vector_index="off")`` turns it off) a column can also be searched through an
:class:`~lookalike.vectors.ivf.IVFIndex` (faiss, the ``ann`` extra), fed from the engine's change log
(:mod:`lookalike.engines.sqlite_log`):

* ``create_vector_index`` on a table with rows builds it at once; on an empty table (what
  ``VectorField(index=True)`` does) it records the wish, and the first search once ``min_rows`` rows
  (default 20,000; ``params["min_rows"]``, 0 = always) hold a vector builds it;
* ``vector_index="always"`` indexes every vector column whatever its size, asked or not (the test
  suites run this way); ``"off"`` keeps every search exact;
* the index is a file beside the database, ``<db file>.<table>.<column>.ivf``, described in
  ``_lookalike_indexes``. The file's own header says which change-log entry it reflects, so a
  process loads it and catches up; a missing, truncated or foreign file is rebuilt (warned once);
* searches go through :func:`lookalike.engines.planner.planned_search`: the index gives a candidate
  pool that is re-ranked exactly from the stored float32 vectors, a filter matching few rows is
  searched exactly, and a pool that comes up short is searched again exactly. A metric the index
  doesn't serve (or l1, which it never serves) is searched exactly, warned once.

:class:`IVFIndexes` holds one engine's indexes; :class:`~lookalike.engines.sqlite.SQLiteEngine`
delegates ``create_vector_index``, ``has_vector_index`` and the index half of ``vector_search`` to it.
"""

from __future__ import annotations

import json
import math
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
from sqlalchemy.engine import Connection

from lookalike.engines.base import SearchRequest
from lookalike.engines.planner import IndexScan
from lookalike.engines.sqlite_log import LOAD_BLOCK, raw_cursor, rows_to_arrays
from lookalike.errors import EngineError, MissingDependencyError
from lookalike.schema import TableSpec, normalize_metric
from lookalike.vectors.ivf import (
    FORMAT_VERSION,
    IVF_METRICS,
    MAX_NLIST,
    IndexFileError,
    IVFIndex,
    default_nlist,
    import_faiss,
    train_size,
)

if TYPE_CHECKING:
    from lookalike.engines.sqlite import SQLiteEngine

INDEXES = "_lookalike_indexes"
SCAN_PER_CANDIDATE = 8  # rows whose codes are scanned per candidate asked for with num_candidate
DEFAULT_MIN_ROWS = 20_000  # below this many rows exact search is fast enough: an index only costs
# lists probed at least; with the 4× exact re-rank, on CLIP-like data at 1M rows (4,096 lists):
# recall@10 0.929 at 8, 0.979 at 16, 0.998 at 32 (benchmarks/ann.py's data; scan grows with nprobe)
DEFAULT_NPROBE = 32
MIN_SCAN_ROWS = 2_048  # a probe looks at about this many rows at least (all of them in small tables)
SMALL_INDEX_ROWS = 1_000  # an index this small passes every row to the exact re-rank (codes
# trained on a few rows rank poorly, and re-ranking a thousand rows costs about a millisecond)
SHARE_PROBE = 256  # rows near the query a filter is tried on, to tell how much of the table it keeps
POST_FILTER_SCAN = 2  # lists probed on the post-filtered path, over the share-widened nprobe
POST_FILTER_POOL = 8  # passing rows re-ranked per result on the post-filtered path (see search)
POOL_FACTOR = 4  # candidates taken from the index per result, re-ranked exactly
_SAVE_AFTER = 1_000  # rows changed since the file was written before a search writes it again
_FILE_AHEAD = -2  # IVFCache.seq when its file is newer than the searching transaction's snapshot
# warnings point where they did while this code was part of the engine: one frame further up, past
# the engine method that delegates here
_WARN_STACKLEVEL = 5


def index_file_name(db_path: str, table: str, column: str) -> str:
    """``<db file>.<table>.<column>.ivf``, the names escaped so any name makes one safe file name."""

    def safe(name: str) -> str:
        return quote(name, safe="").replace(".", "%2E").replace("~", "%7E")

    return f"{db_path}.{safe(table)}.{safe(column)}.ivf"


@dataclass
class IndexPlan:
    """How (table, column) is to be indexed: from ``_lookalike_indexes``, or implied by ``always``."""

    metric: str
    params: dict[str, Any]
    file: str | None  # None: an in-memory database keeps its index in memory only
    built: bool  # the catalogue records a build (an explicit one: rebuilt whatever the size)
    min_rows: int
    declared: bool = False  # asked for (a catalogue row), not implied by ``vector_index="always"``

    @property
    def nprobe(self) -> int:
        """Lists probed per search (``params["nprobe"]``, else :data:`DEFAULT_NPROBE`)."""
        return int(self.params.get("nprobe", DEFAULT_NPROBE))


@dataclass
class IVFCache:
    """One (table, column)'s IVF index and how far through the change log it is."""

    metric: str
    index: IVFIndex | None  # None: not built or loaded yet
    seq: int
    max_rowid: int
    trained_rows: int  # the sample it was trained on: retrained once it holds far more
    lock: threading.RLock
    unsaved: int = 0  # rows changed since the file was written
    rebuilt: bool = False  # built since the file was written: write it at once


class IVFIndexes:
    """One SQLite engine's IVF indexes: their catalogue rows and files, the in-process copies kept up
    to date from the change log, and the index side of a search."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self.engine = engine
        self._ivfs: dict[tuple[str, str], IVFCache] = {}
        self._lock = threading.Lock()
        self._warned: set[tuple[str, ...]] = set()

    # ------------------------------------------------------------------ catalogue and files
    def setup(self, conn: Connection) -> None:
        """Create the catalogue table."""
        # seq/max_rowid/rows: what the last explicit build reflected (NULL: wished, not built yet);
        # the index file's own header is what a reader trusts, since another process may rewrite it
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {INDEXES} (tbl TEXT NOT NULL, col TEXT NOT NULL, "
            "metric TEXT NOT NULL, kind TEXT NOT NULL, params TEXT NOT NULL, file TEXT, seq INTEGER, "
            "max_rowid INTEGER, rows INTEGER, format INTEGER, PRIMARY KEY (tbl, col))"
        )

    def forget_table(self, conn: Connection, table: str) -> None:
        """The table was dropped: its catalogue rows and index files go too."""
        cols = [r[0] for r in conn.exec_driver_sql(f"SELECT col FROM {INDEXES} WHERE tbl = ?", (table,))]
        conn.exec_driver_sql(f"DELETE FROM {INDEXES} WHERE tbl = ?", (table,))
        self._remove_files(table, cols)

    def reset_table(self, conn: Connection, spec: TableSpec) -> None:
        """The table was emptied: its indexes are still asked for, but hold nothing."""
        # the catalogue row stays (the index is still asked for) but no longer records a build: a
        # reader that finds no file builds one without warning of a lost file
        conn.exec_driver_sql(
            f"UPDATE {INDEXES} SET seq = NULL, max_rowid = NULL, rows = NULL WHERE tbl = ?", (spec.name,)
        )
        self._remove_files(spec.name, list(spec.vectors))

    def _remove_files(self, table: str, columns: list[str]) -> None:
        """Delete index files: a reader that finds none rebuilds (the reset entry says so anyway)."""
        if self.engine.path == ":memory:":
            return
        for column in columns:
            Path(index_file_name(self.engine.path, table, column)).unlink(missing_ok=True)

    def drop(self, table: str | None = None, column: str | None = None) -> None:
        """Forget the in-process indexes (of one table, or one column): the next search reloads."""
        with self._lock:
            for key in list(self._ivfs):
                if (table is None or key[0] == table) and (column is None or key[1] == column):
                    del self._ivfs[key]

    def is_cached(self, table: str, column: str) -> bool:
        """True when this process holds (table, column)'s index entry (loaded or not)."""
        with self._lock:
            return (table, column) in self._ivfs

    # ------------------------------------------------------------------ what is indexed
    def _warn_once(self, key: tuple[str, ...], message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=_WARN_STACKLEVEL)

    def plan(self, conn: Connection, spec: TableSpec, column: str) -> IndexPlan | None:
        """How (table, column) is indexed, or None when it is searched exactly."""
        mode = self.engine.vector_index
        if mode == "off" or column not in spec.vectors:
            return None
        row = conn.exec_driver_sql(
            f"SELECT metric, params, seq FROM {INDEXES} WHERE tbl = ? AND col = ?", (spec.name, column)
        ).first()
        path = self.engine.path
        file = None if path == ":memory:" else index_file_name(path, spec.name, column)
        always = mode == "always"
        if row is not None:
            params = json.loads(row[1])
            built = row[2] is not None
            min_rows = 0 if built or always else int(params.get("min_rows", DEFAULT_MIN_ROWS))
            return IndexPlan(row[0], params, file, built, min_rows, declared=True)
        metric = spec.vectors[column].distance_metric
        if not always:
            return None
        if metric not in IVF_METRICS:
            self._warn_once(
                ("metric", spec.name, column, metric),
                f"{spec.name}.{column}: the IVF index serves {', '.join(IVF_METRICS)}; "
                f"{metric} searches stay exact",
            )
            return None
        return IndexPlan(metric, {}, file, False, 0)

    def for_search(
        self, conn: Connection, spec: TableSpec, request: SearchRequest
    ) -> tuple[IndexPlan | None, IVFCache | None]:
        """The plan and the up-to-date index a search of ``request.column`` uses: (None, None) when
        it is searched exactly; (plan, None) when indexed but not built yet (too few rows)."""
        plan = self.plan(conn, spec, request.column)
        if plan is not None and plan.metric != request.metric:
            self._warn_once(
                ("metric", spec.name, request.column, request.metric),
                f"{spec.name}.{request.column}: the vector index serves {plan.metric} distances; "
                f"{request.metric} searches are exact",
            )
            plan = None
        return plan, None if plan is None else self.fresh(conn, spec, request.column, plan)

    def warm_up(self, conn: Connection, spec: TableSpec, column: str) -> bool:
        """Load or build the index searches of the column's own metric use; False when they are
        exact (the caller loads the exact matrix instead)."""
        plan = self.plan(conn, spec, column)
        if plan is None or plan.metric != spec.vectors[column].distance_metric:
            return False
        self.fresh(conn, spec, column, plan)
        return True

    def exists(self, conn: Connection, spec: TableSpec, column: str) -> bool:
        """True when the column is indexed: an index asked for (built, or waiting for ``min_rows``
        rows, as TiDB's TiFlash builds a new index in the background) or built by ``"always"``."""
        plan = self.plan(conn, spec, column)
        if plan is None:
            return False
        if plan.declared:
            return True
        with self._lock:
            entry = self._ivfs.get((spec.name, column))
        if plan.built or (entry is not None and entry.index is not None):
            return True
        return plan.file is not None and Path(plan.file).exists()

    # ------------------------------------------------------------------ building and upkeep
    def create(
        self, conn: Connection, spec: TableSpec, column: str, metric: str, params: dict[str, Any]
    ) -> None:
        """Build the IVF index now when the column has vectors; on an empty table record the wish
        (built at a search once ``min_rows`` rows have one). ``vector_index="off"``: a no-op."""
        if self.engine.vector_index == "off":
            return
        metric = normalize_metric(metric)
        if metric not in IVF_METRICS:
            self._warn_once(
                ("metric", spec.name, column, metric),
                f"{spec.name}.{column}: the IVF index serves {', '.join(IVF_METRICS)}; "
                f"{metric} searches stay exact",
            )
            return
        cur = raw_cursor(conn)
        try:
            empty = self.engine.log.row_count(cur, spec) == 0
        finally:
            cur.close()
        if not empty:
            # a missing extra fails the call that asked for an index now; on an empty table (a
            # schema's index=True) the wish is recorded, and searches stay exact until faiss is there
            import_faiss()
        path = self.engine.path
        file = None if path == ":memory:" else index_file_name(path, spec.name, column)
        plan = IndexPlan(metric, dict(params), file, True, 0)
        self.drop(spec.name, column)
        cur = raw_cursor(conn)
        try:
            seq, max_rowid, _ = self.engine.log.position(cur, spec)
            entry = self._entry(spec, column, metric)
            with entry.lock:
                self._build(cur, spec, column, plan, entry, seq, max_rowid, retrain=True)
                if entry.index is not None:
                    self._save(entry, spec, column, plan, strict=True)
        finally:
            cur.close()
        built = entry.index is not None
        if not built and file is not None:
            Path(file).unlink(missing_ok=True)  # an index of other params or rows must not be loaded
        conn.exec_driver_sql(
            f"INSERT INTO {INDEXES} (tbl, col, metric, kind, params, file, seq, max_rowid, rows, format) "
            "VALUES (?, ?, ?, 'ivf', ?, ?, ?, ?, ?, ?) ON CONFLICT (tbl, col) DO UPDATE SET "
            "metric = excluded.metric, kind = excluded.kind, params = excluded.params, file = excluded.file, "
            "seq = excluded.seq, max_rowid = excluded.max_rowid, rows = excluded.rows, format = excluded.format",
            (
                spec.name,
                column,
                metric,
                json.dumps(params, sort_keys=True),
                None if file is None else os.path.basename(file),
                seq if built else None,
                max_rowid if built else None,
                len(entry.index) if entry.index is not None else None,
                FORMAT_VERSION,
            ),
        )

    def _entry(self, spec: TableSpec, column: str, metric: str) -> IVFCache:
        key = (spec.name, column)
        dims = spec.vectors[column].dimensions
        with self._lock:
            entry = self._ivfs.get(key)
            if entry is None or entry.metric != metric or (entry.index and entry.index.dimensions != dims):
                entry = IVFCache(metric, None, -1, 0, 0, threading.RLock())
                self._ivfs[key] = entry
            return entry

    def fresh(self, conn: Connection, spec: TableSpec, column: str, plan: IndexPlan) -> IVFCache | None:
        """The IVF index of (table, column) brought up to date inside ``conn``'s transaction: loaded
        from its file or built when needed; None while the column is to be searched exactly (also
        when faiss is not installed: a declared index must not make searches fail; warned once)."""
        try:
            return self._fresh(conn, spec, column, plan)
        except MissingDependencyError as exc:
            self._warn_once(("faiss",), f"{spec.name}.{column}: searched exactly, because {exc}")
            return None

    def _fresh(self, conn: Connection, spec: TableSpec, column: str, plan: IndexPlan) -> IVFCache | None:
        log = self.engine.log
        entry = self._entry(spec, column, plan.metric)
        cur = raw_cursor(conn)
        try:
            seq, max_rowid, pruned = log.position(cur, spec)
            with entry.lock:
                if entry.index is None and not self._load(entry, spec, column, plan, seq):
                    if entry.seq == _FILE_AHEAD or log.row_count(cur, spec) < max(plan.min_rows, 1):
                        return None
                    self._build(cur, spec, column, plan, entry, seq, max_rowid, retrain=True)
                elif entry.seq != seq or entry.max_rowid != max_rowid:
                    self._catch_up(cur, spec, column, plan, entry, (seq, max_rowid, pruned))
                if entry.index is None or not entry.index.trained:
                    return None
                # never from a write transaction: its changes may yet roll back, and a file that
                # holds them would claim change-log entries that other writers will number again
                writing = conn.get_execution_options().get("lookalike_write", False)
                due = entry.rebuilt or entry.unsaved >= max(_SAVE_AFTER, len(entry.index) // 20)
                if due and not writing:
                    self._save(entry, spec, column, plan, strict=False)
                return entry
        finally:
            cur.close()

    def _load(self, entry: IVFCache, spec: TableSpec, column: str, plan: IndexPlan, seq: int) -> bool:
        """Take the index from its file when the file is whole, built for this column, and not newer
        than this transaction's snapshot. A file that should be there and isn't usable is warned of
        once (the caller rebuilds it)."""
        entry.seq = -1
        if plan.file is None:
            return False
        path = Path(plan.file)
        if not path.exists() and not plan.built:
            return False  # never built: nothing lost
        expect = {"table": spec.name, "column": column, "dims": spec.vectors[column].dimensions}
        try:
            index, header = IVFIndex.load(path, {**expect, "metric": plan.metric})
        except IndexFileError as exc:
            self._warn_once(("file", plan.file, str(exc)), f"{exc.detail}; rebuilding it")
            return False
        if int(header.get("seq", -1)) > seq:
            # written by another process after this transaction's snapshot: it may hold rows this
            # snapshot can't see and lack rows it can; search exactly now, load it next time
            entry.seq = _FILE_AHEAD
            return False
        entry.index, entry.seq, entry.max_rowid = index, int(header["seq"]), int(header["max_rowid"])
        entry.trained_rows, entry.unsaved = int(header.get("trained_rows", len(index))), 0
        return True

    def _build(
        self,
        cur: Any,
        spec: TableSpec,
        column: str,
        plan: IndexPlan,
        entry: IVFCache,
        seq: int,
        max_rowid: int,
        *,
        retrain: bool,
    ) -> None:
        """(Re)build the index from every row in this snapshot, streamed in blocks; trained on a
        sample of :func:`~lookalike.vectors.ivf.train_size` rows (all rows when there are no more),
        or reusing its centroids."""
        t, c = self.engine.quote(spec.name), self.engine.quote(column)
        dims = spec.vectors[column].dimensions
        stream = True
        index = entry.index
        if retrain or index is None or not index.trained:
            bound = int(cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
            # lists for the table's rows, not the sample's
            nlist = int(plan.params.get("nlist") or default_nlist(bound))
            wanted = train_size(bound, nlist)
            if bound <= wanted:
                ids, sample = self.engine.log.load_all(cur, spec, column)
                stream = False  # the sample is every row: add it, no second pass
            else:  # about `wanted` rows, spread over the table
                rows = cur.execute(
                    f"SELECT rowid, {c} FROM {t} WHERE {c} IS NOT NULL AND (random() & 1048575) < ?",
                    (int(wanted / bound * 1048576),),
                ).fetchall()
                ids, sample = rows_to_arrays(rows, dims, spec.name, column)
            if not len(ids):
                entry.index, entry.seq, entry.max_rowid = None, -1, 0
                return
            index = IVFIndex.build(dims, plan.metric, sample, nlist)
            entry.trained_rows = len(ids)
            if not stream:
                index.add(ids, sample)
            del sample
        else:
            index.reset()
        if stream:
            cur.execute(f"SELECT rowid, {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY rowid")
            while rows := cur.fetchmany(LOAD_BLOCK):
                index.add(*rows_to_arrays(rows, dims, spec.name, column))
        entry.index, entry.seq, entry.max_rowid = index, seq, max_rowid
        entry.rebuilt = True

    def _catch_up(
        self,
        cur: Any,
        spec: TableSpec,
        column: str,
        plan: IndexPlan,
        entry: IVFCache,
        position: tuple[int, int, int],
    ) -> None:
        """Apply the change log since the index's entry: removes and re-adds for changed rows,
        adds for new ones; a reset or a pruned log rebuilds (reusing the centroids)."""
        seq, max_rowid, pruned = position
        index = entry.index
        assert index is not None  # the caller loaded or built it
        full, touched, since = self.engine.log.pending(cur, spec, entry.seq, entry.max_rowid, pruned)
        if full:
            self._build(cur, spec, column, plan, entry, seq, max_rowid, retrain=False)
        else:
            ids, data = self.engine.log.changed_rows(cur, spec, column, since, touched)
            # rows at or below the old top may be held already (re-read after a delete): replace them
            held = ids[ids <= entry.max_rowid]
            index.remove(np.union1d(np.asarray(touched, dtype=np.int64), held))
            index.add(ids, data)
            entry.unsaved += len(touched) + len(ids)
            entry.seq, entry.max_rowid = seq, max_rowid
        # the table has outgrown its lists (about 4·√rows of them: twice the lists is 4× the rows),
        # so each list holds too many rows for a fast probe: retrain, unless nlist was given
        fixed = "nlist" in plan.params or index.nlist >= MAX_NLIST
        if not fixed and default_nlist(len(index)) >= 2 * index.nlist:
            self._build(cur, spec, column, plan, entry, seq, max_rowid, retrain=True)

    def _save(self, entry: IVFCache, spec: TableSpec, column: str, plan: IndexPlan, *, strict: bool) -> None:
        """Write the index file; a failure (disk full) raises when ``strict``, else is warned of once
        and the index keeps serving from memory (the old file, if any, is untouched)."""
        if plan.file is None or entry.index is None:
            entry.rebuilt, entry.unsaved = False, 0
            return
        header = {
            "table": spec.name,
            "column": column,
            "seq": entry.seq,
            "max_rowid": entry.max_rowid,
            "trained_rows": entry.trained_rows,
            "rows": len(entry.index),
        }
        try:
            entry.index.save(plan.file, header)
        except OSError as exc:
            if strict:
                raise EngineError(f"cannot write the vector index file {plan.file!r}: {exc}") from exc
            self._warn_once(("save", plan.file), f"cannot write the vector index file {plan.file!r}: {exc}")
            entry.rebuilt, entry.unsaved = False, 0  # try again after as many changes, not every search
            return
        entry.rebuilt, entry.unsaved = False, 0

    # ------------------------------------------------------------------ search
    def filter_share(
        self,
        entry: IVFCache,
        plan: IndexPlan,
        request: SearchRequest,
        passing: Callable[[np.ndarray], np.ndarray],
    ) -> float | None:
        """The share of the rows nearest the query that pass a filter, measured on a probe of
        :data:`SHARE_PROBE` rows from the index; None when the index holds too few rows to tell."""
        with entry.lock:
            index = entry.index
            if index is None or len(index) < SHARE_PROBE * 8:
                return None
            ids = index.search_pool(request.vector, SHARE_PROBE, plan.nprobe)
        if len(ids) < SHARE_PROBE // 2:
            return None
        return len(passing(ids)) / len(ids)

    def search(
        self,
        conn: Connection,
        spec: TableSpec,
        request: SearchRequest,
        scan: IndexScan,
        entry: IVFCache,
        plan: IndexPlan,
        candidates: np.ndarray | None,
        *,
        post_filter: tuple[float, Callable[[np.ndarray], np.ndarray]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (row ids, distances) from a pool of the index's candidates (``POOL_FACTOR`` × k, or
        ``num_candidate``), re-ranked by the exact float64 distances of their stored vectors.

        ``post_filter``: (the share of rows a filter keeps, a function keeping the ids that pass it):
        the pool is taken from lists probed more widely by that share and then filtered."""
        k = request.limit
        pool = max(POOL_FACTOR * k, request.num_candidate or 0)
        if candidates is None and scan.post_filter:
            pool = max(pool, scan.pool)  # a distance range drops rows after the pool is taken
        if post_filter is not None:  # as many passing rows to re-rank as an unfiltered search has
            pool = max(pool, math.ceil(POST_FILTER_POOL * k / max(post_filter[0], 1e-3)))
        with entry.lock:
            index = entry.index
            assert index is not None  # the caller brought it up to date
            if len(index) <= SMALL_INDEX_ROWS:
                pool = max(pool, len(index))
            # probe enough lists to look at MIN_SCAN_ROWS rows: on a small table that is every
            # list (scanning a few thousand codes costs less than the query's own overhead); a
            # larger num_candidate widens the scan too, since a pool can only hold rows it scanned
            scan_rows = max(MIN_SCAN_ROWS, SCAN_PER_CANDIDATE * (request.num_candidate or 0))
            nprobe = max(plan.nprobe, math.ceil(index.nlist * scan_rows / max(len(index), 1)))
            if post_filter is not None:  # as many matching rows scanned as an unfiltered search scans
                nprobe = math.ceil(POST_FILTER_SCAN * nprobe / max(post_filter[0], 1e-3))
            if len(index) <= pool or (candidates is not None and len(candidates) <= pool):
                nprobe = index.nlist  # every (matching) row fits in the pool: look at them all
            ids = index.search_pool(request.vector, pool, min(nprobe, index.nlist), candidates)
        if post_filter is not None:
            ids = post_filter[1](ids)
        if not len(ids):
            return ids, np.empty(0, dtype=np.float64)
        matrix = self.engine.log.read_matrix(conn, spec, request.column, ids)
        return matrix.search(
            request.vector,
            request.metric,
            k,
            distance_min=request.distance_min,
            distance_max=request.distance_max,
        )
