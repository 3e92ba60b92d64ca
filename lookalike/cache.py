"""The embedding cache and the per-row record of image sources.

Both live in the database next to the tables (engine-neutral SQL):

* ``_lookalike_embeddings``: vectors keyed by *content hash + model key*, where the model key covers the
  provider, model, options and :data:`PREPROCESS_VERSION`. Inserting the same bytes twice, or under a
  new name (a renamed file), runs no inference.
* ``_lookalike_sources``: for each row's image source, its content hash, pixel size and byte size.
  Exact duplicates are rows sharing a hash; the pixel size picks the keeper of a duplicate group.

This module is storage only: what a source's hash and size are is :mod:`lookalike.images.info`'s, and
the cache's interface is the :class:`~lookalike.embeddings.base.EmbeddingCache` protocol, which the
embedders use without importing this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lookalike.embeddings import base as embeddings_base
from lookalike.images.info import SourceInfo, source_info

if TYPE_CHECKING:
    from lookalike.embeddings.base import BaseEmbeddingFunction

__all__ = [
    "EMBEDDINGS",
    "PREPROCESS_VERSION",
    "SOURCES",
    "EmbeddingCache",
    "SourceInfo",
    "create_tables",
    "forget_rows",
    "forget_table",
    "model_key",
    "read_sources",
    "record_sources",
    "source_info",
]

PREPROCESS_VERSION = "1"
"""Bump when image decoding/preprocessing changes in a way that changes vectors."""

_META = sa.MetaData()
EMBEDDINGS = sa.Table(
    "_lookalike_embeddings",
    _META,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("vector", sa.LargeBinary(length=2**24), nullable=False),
)
SOURCES = sa.Table(
    "_lookalike_sources",
    _META,
    sa.Column("tbl", sa.String(255), primary_key=True),
    sa.Column("col", sa.String(255), primary_key=True),
    sa.Column("rid", sa.String(255), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False, index=True),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    sa.Column("nbytes", sa.BigInteger),
)


def create_tables(conn: Connection) -> None:
    """Create the cache tables if missing."""
    _META.create_all(conn, checkfirst=True)


def model_key(embed_fn: BaseEmbeddingFunction) -> str:
    """A short key for "this model with these options and this preprocessing"."""
    config = embed_fn.config()
    text = json.dumps({"c": config, "p": PREPROCESS_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class EmbeddingCache(embeddings_base.EmbeddingCache):
    """Vectors by content hash for one model; new vectors are written with the rows they belong to.

    Implements the embedders' :class:`~lookalike.embeddings.base.EmbeddingCache` protocol (``lookup``,
    ``remember``); :meth:`flush` writes what was remembered inside the caller's transaction.
    """

    def __init__(
        self, read: Callable[[], AbstractContextManager[Connection]], embed_fn: BaseEmbeddingFunction
    ) -> None:
        self._read = read  # a context manager factory giving a read connection
        self._model = model_key(embed_fn)
        self._dims = embed_fn.dimensions
        self.pending: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def _key(self, content_hash: str) -> str:
        return f"{content_hash}:{self._model}"

    def lookup(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors for these hashes (pending ones included)."""
        found: dict[str, np.ndarray] = {h: self.pending[h] for h in hashes if h in self.pending}
        wanted = sorted({self._key(h) for h in hashes if h not in found})
        if wanted:
            with self._read() as conn:
                rows = conn.execute(
                    sa.select(EMBEDDINGS.c.key, EMBEDDINGS.c.vector).where(EMBEDDINGS.c.key.in_(wanted))
                )
                for key, blob in rows:
                    vec = np.frombuffer(blob, dtype="<f4")
                    if self._dims is None or len(vec) == self._dims:
                        found[key.split(":", 1)[0]] = vec
        self.hits += len(found)
        self.misses += len(set(hashes)) - len(found)
        return found

    def remember(self, content_hash: str, vector: np.ndarray) -> None:
        """Keep a new vector until :meth:`flush` writes it (lookups see it at once)."""
        self.pending[content_hash] = np.asarray(vector, dtype=np.float32)

    def flush(self, conn: Connection) -> None:
        """Write the vectors computed since the last flush (inside the caller's transaction)."""
        if not self.pending:
            return
        keys = {self._key(h): v for h, v in self.pending.items()}
        existing = {
            r[0] for r in conn.execute(sa.select(EMBEDDINGS.c.key).where(EMBEDDINGS.c.key.in_(list(keys))))
        }
        rows = [{"key": k, "vector": v.astype("<f4").tobytes()} for k, v in keys.items() if k not in existing]
        if rows:
            conn.execute(sa.insert(EMBEDDINGS), rows)
        self.pending.clear()


def record_sources(conn: Connection, table: str, column: str, items: list[tuple[Any, SourceInfo]]) -> None:
    """Remember each row's source hash and size (replacing what was there)."""
    if not items:
        return
    rids = [str(pk) for pk, _ in items]
    cond = (SOURCES.c.tbl == table) & (SOURCES.c.col == column)
    for start in range(0, len(rids), 500):
        conn.execute(sa.delete(SOURCES).where(cond, SOURCES.c.rid.in_(rids[start : start + 500])))
    conn.execute(
        sa.insert(SOURCES),
        [
            {
                "tbl": table,
                "col": column,
                "rid": str(pk),
                "hash": info.hash,
                "width": info.width,
                "height": info.height,
                "nbytes": info.nbytes,
            }
            for pk, info in items
        ],
    )


def read_sources(conn: Connection, table: str, column: str | None = None) -> dict[str, SourceInfo]:
    """Recorded sources of a table's rows, by primary key (as text)."""
    cond = SOURCES.c.tbl == table
    if column is not None:
        cond = cond & (SOURCES.c.col == column)
    stmt = sa.select(
        SOURCES.c.rid, SOURCES.c.hash, SOURCES.c.width, SOURCES.c.height, SOURCES.c.nbytes
    ).where(cond)
    return {r[0]: SourceInfo(r[1], r[2], r[3], r[4]) for r in conn.execute(stmt)}


def forget_table(conn: Connection, table: str) -> None:
    """Drop a table's source records (when the table is dropped or truncated)."""
    conn.execute(sa.delete(SOURCES).where(SOURCES.c.tbl == table))


def forget_rows(
    conn: Connection, table: sa.Table, primary_key: str, where: Any, column: str | None = None
) -> None:
    """Drop the source records of the rows of ``table`` matching ``where`` (all rows when None),
    of one vector ``column`` or of all; call it before the rows themselves go, in their transaction.

    A record left behind would be inherited by a later row that reuses the id (SQLite reuses the
    highest rowid), which would then pass for a byte-identical copy of a picture it is not.
    """
    if where is None and column is None:
        forget_table(conn, table.name)
        return
    # records are keyed by the id as text (see record_sources): match them with the same rendering
    rids = sa.select(sa.cast(table.c[primary_key], sa.String))
    if where is not None:
        rids = rids.where(where)
    cond = (SOURCES.c.tbl == table.name) & SOURCES.c.rid.in_(rids.scalar_subquery())
    if column is not None:
        cond = cond & (SOURCES.c.col == column)
    conn.execute(sa.delete(SOURCES).where(cond))
