"""The embedded engine's change log and the vector blobs it points at, read through a raw cursor.

Both in-process structures of :mod:`lookalike.engines.sqlite` — the exact matrix cache there and the
IVF index of :mod:`lookalike.engines.sqlite_index` — are fed from the same place: the trigger-fed
``_lookalike_changes`` log, ``max(rowid)`` for inserts in id order, and the pruned mark in
``_lookalike_state``. This module reads those, and the float32 blobs of the rows they name, straight
from sqlite3 (past SQLAlchemy's per-row work) inside the caller's transaction.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from operator import itemgetter
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from lookalike.errors import EngineError
from lookalike.schema import TableSpec
from lookalike.vectors.exact import VectorMatrix

CHANGES = "_lookalike_changes"
STATE = "_lookalike_state"
FULL_RELOAD_TOUCHED = 50_000  # past this many changed rows, reloading everything is cheaper
LOAD_BLOCK = 8192  # rows per fetch when loading a matrix: bounded extra memory


def raw_cursor(conn: Connection) -> Any:
    """A cursor of the driver connection under ``conn``: indexes load straight from sqlite3, past
    SQLAlchemy's per-row work, inside ``conn``'s transaction."""
    raw = conn.connection.dbapi_connection
    if raw is None:  # cannot happen while the connection is checked out of the pool
        raise EngineError("sqlite: the connection has no driver connection")
    return raw.cursor()


def rows_to_arrays(rows: list[Any], dims: int, table: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(row ids, float32 matrix) of ``(rowid, blob)`` rows; rows whose blob is not a ``dims``-vector
    (written outside lookalike) are skipped with a warning."""
    ids = np.fromiter(map(itemgetter(0), rows), dtype=np.int64, count=len(rows))
    blob = b"".join(map(itemgetter(1), rows))
    if len(blob) != len(rows) * dims * 4:
        # some row holds a vector of another size (written outside lookalike): skip those rows
        good = [r for r in rows if isinstance(r[1], bytes) and len(r[1]) == dims * 4]
        bad = len(rows) - len(good)
        if bad:
            warnings.warn(
                f"{table}.{column}: {bad} stored vectors are not {dims}-dimensional float32 and are ignored",
                stacklevel=3,
            )
        ids = np.fromiter(map(itemgetter(0), good), dtype=np.int64, count=len(good))
        blob = b"".join(map(itemgetter(1), good))
    data = np.frombuffer(blob, dtype="<f4").reshape(-1, dims)
    return ids, data


class ChangeLog:
    """Reads of the change log and of a table's vectors, through a raw cursor of the caller's
    transaction (so all of them see one snapshot). ``quote`` is the engine's identifier quoting."""

    def __init__(self, quote: Callable[[str], str]) -> None:
        self.quote = quote

    def position(self, cur: Any, spec: TableSpec) -> tuple[int, int, int]:
        """(last change-log entry, largest row id, last pruned entry) in the current snapshot."""
        t = self.quote(spec.name)
        seq, max_rowid, pruned = cur.execute(
            f"SELECT (SELECT max(seq) FROM {CHANGES}), (SELECT max(rowid) FROM {t}), "
            f"(SELECT value FROM {STATE} WHERE key='pruned')"
        ).fetchone()
        return seq or 0, max_rowid or 0, pruned or 0

    def pending(
        self, cur: Any, spec: TableSpec, seq: int, max_rowid: int, pruned: int
    ) -> tuple[bool, list[int], int]:
        """What an index that reflects (``seq``, ``max_rowid``) must apply: (reload everything?,
        row ids to drop and re-read, re-read every row above this id)."""
        if seq < 0 or seq < pruned:
            return True, [], 0
        changes = cur.execute(
            f"SELECT rid, op FROM {CHANGES} WHERE tbl = ? AND seq > ? ORDER BY seq", (spec.name, seq)
        ).fetchall()
        if any(op == "reset" for _, op in changes) or len(changes) > FULL_RELOAD_TOUCHED:
            return True, [], 0
        dels = [rid for rid, op in changes if op == "d"]
        since = max_rowid
        if dels:
            since = min(since, min(dels) - 1)  # a deleted top rowid may have been reused
        return False, sorted({rid for rid, _ in changes}), since

    def row_count(self, cur: Any, spec: TableSpec) -> int:
        """Rows in the table, with or without a vector (cheap: no blob is read)."""
        return int(cur.execute(f"SELECT count(*) FROM {self.quote(spec.name)}").fetchone()[0])

    def load_all(self, cur: Any, spec: TableSpec, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Every vector of the column, read in blocks straight into one preallocated matrix."""
        dims = spec.vectors[column].dimensions
        t, c = self.quote(spec.name), self.quote(column)
        bound = int(cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # an upper bound, cheap
        ids = np.empty(bound, dtype=np.int64)
        data = np.empty((bound, dims), dtype=np.float32)
        n = 0
        cur.execute(f"SELECT rowid, {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY rowid")
        while rows := cur.fetchmany(LOAD_BLOCK):
            block_ids, block = rows_to_arrays(rows, dims, spec.name, column)
            m = len(block_ids)
            if n + m > len(ids):  # rows were added since the count (cannot happen in one snapshot)
                ids = np.resize(ids, n + m)
                data = np.resize(data, (n + m, dims))
            ids[n : n + m] = block_ids
            data[n : n + m] = block
            n += m
        return ids[:n], data[:n]

    def changed_rows(
        self, cur: Any, spec: TableSpec, column: str, since: int, touched: list[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows with a vector above ``since`` or among ``touched``, in row-id order."""
        t, c = self.quote(spec.name), self.quote(column)
        rows = cur.execute(
            f"SELECT rowid, {c} FROM {t} WHERE {c} IS NOT NULL AND "
            f"(rowid > ? OR rowid IN (SELECT value FROM json_each(?))) ORDER BY rowid",
            (since, json.dumps(touched)),
        ).fetchall()
        return rows_to_arrays(rows, spec.vectors[column].dimensions, spec.name, column)

    def read_matrix(self, conn: Connection, spec: TableSpec, column: str, ids: np.ndarray) -> VectorMatrix:
        """An exact matrix of just these rows' vectors, read by row id in one query."""
        t, c = self.quote(spec.name), self.quote(column)
        dims = spec.vectors[column].dimensions
        cur = raw_cursor(conn)
        try:
            rows = cur.execute(
                f"SELECT rowid, {c} FROM {t} WHERE rowid IN (SELECT value FROM json_each(?)) "
                f"AND {c} IS NOT NULL ORDER BY rowid",
                (json.dumps(np.asarray(ids).tolist()),),
            ).fetchall()
        finally:
            cur.close()
        matrix = VectorMatrix(dims)
        matrix.replace_all(*rows_to_arrays(rows, dims, spec.name, column))
        return matrix
