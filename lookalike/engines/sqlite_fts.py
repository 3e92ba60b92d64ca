"""Full-text search on the embedded engine: one SQLite FTS5 index per (table, text column).

Each index is an *external-content* FTS5 table (it stores only the index, and reads the words from
the user's table), named ``_lookalike_fts_<len(table)>_<table>_<column>``: the length makes the name
unambiguous (``a_b``+``c`` and ``a``+``b_c`` differ), and the ``_lookalike`` prefix keeps it, and the
shadow tables FTS5 makes beside it, out of ``list_tables`` and away from user names.

Three triggers keep it in step with every writer, other processes included (insert; delete; update
of the text or primary key column, which may move the row id). Building an index on a table with
rows fills it (FTS5's ``rebuild``). The engine's ``truncate`` drops a table's triggers around its
``DELETE``, so it empties each index with FTS5's ``delete-all`` (:meth:`SQLiteFullText.truncate`);
``drop_table`` drops the indexes (:meth:`SQLiteFullText.drop_table`).

**Words.** The ``unicode61`` tokenizer with ``remove_diacritics 2``: words are runs of Unicode
letters and digits, case-folded, with accents folded everywhere in a word (so "café" finds "cafe"
and "Ångström" finds "angstrom"; mode 2 also folds the accents mode 1 misses on combined letters).
``language="english"`` puts the Porter stemmer in front ("boots" finds "boot", "running" finds "run").

**Ranking.** FTS5's ``bm25()`` (k1 = 1.2, b = 0.75) is negative, better rows more negative;
``_score`` is its negation, so higher is better like every other ``_score``.

**Common words: a shortcut with the same answer.** FTS5 scores every row matching *any* query word,
so a query holding a word found in most rows ranks most of the table (at 100k Zipf-worded rows, ~1 µs
a row: most of the search's time). A word's part of a row's score is at most ``idf × (k1 + 1)``, and
a common word's IDF is small (under ``COMMON_IDF`` = 1: found in more than ~27% of the rows; FTS5
floors it to 1e-6 at half the rows). So a words query holding common and rarer words (when all are
common: words in at least half the rows, with the floored IDF, and others) first ranks the rows
matching its rarer words only, keeps the best ``4 × limit + 40``, scores those that could
still reach the top with every word (:meth:`SQLiteFullText.bm25_scores`, FTS5's formula in FTS5's
order of operations, so the very same floats), and checks that no row left out could beat the k-th:
its score is under (its rarer-word score, at most the last kept one's) + Σ common ``idf × (k1 + 1)``.
When the check fails, when the rarer words find fewer than ``limit`` rows, for queries of only common
or only rarer words, raw queries and searches inside a write transaction (``client.session()``), the
full query runs. Either way the rows and ``_score`` values are those of the full query (ties by row
id). Rows-per-word counts (``count(*)`` of a one-word ``MATCH``) are cached per index while its
marker holds: the schema version and the index's averages and structure records, which every
committed write rewrites (one primary-key lookup per search).

**Availability.** Most Python builds link an SQLite with FTS5, but not all (some minimal or old
builds lack it). :func:`fts5_available` tries it once in a throw-away in-memory database, and every
full-text call on a build without it raises an :class:`~lookalike.errors.EngineError` saying so.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lookalike.engines.base import TextSearchRequest, query_words
from lookalike.errors import ConfigurationError, EngineError, SchemaError
from lookalike.schema import TableSpec

__all__ = ["FTS_PREFIX", "LANGUAGES", "SQLiteFullText", "fts5_available", "fts5_match_query"]

FTS_PREFIX = "_lookalike_fts_"
_BASE_TOKENIZER = "unicode61 remove_diacritics 2"
LANGUAGES: dict[str | None, str] = {
    None: _BASE_TOKENIZER,
    "simple": _BASE_TOKENIZER,
    "english": f"porter {_BASE_TOKENIZER}",
    "en": f"porter {_BASE_TOKENIZER}",
    "porter": f"porter {_BASE_TOKENIZER}",
}
"""``language=`` → FTS5 tokenizer. SQLite ships one stemmer (Porter's, for English)."""
_FTS5_RESERVED = frozenset({"rank", "rowid"})  # FTS5's own column names: not usable for an indexed column


@functools.cache
def fts5_available() -> bool:
    """Whether this Python's SQLite has FTS5 (tried once, in a private in-memory database)."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("CREATE VIRTUAL TABLE temp.probe USING fts5(words)")
        return True
    except sqlite3.Error:
        return False
    finally:
        probe.close()


def _require_fts5() -> None:
    if not fts5_available():
        raise EngineError(
            f"full-text search on the embedded engine needs SQLite's FTS5, and this Python's SQLite "
            f"{sqlite3.sqlite_version} was built without it: use a Python whose sqlite3 module has FTS5 "
            "(python.org, Homebrew, conda and most Linux distributions' builds do), or a PostgreSQL database"
        )


def fts5_match_query(query: str) -> str:
    """The FTS5 ``MATCH`` expression for a words-only query: each word a quoted string, ORed.

    Words hold only letters and digits (:func:`query_words`), so no quote or operator can get in;
    ``NEAR``, ``AND``, ``OR`` and ``NOT`` become quoted words, which FTS5 takes literally."""
    return _match_words(query_words(query))


def _match_words(words: list[str]) -> str:
    return " OR ".join(f'"{word}"' for word in words)


def fts5_idf(rows: int, hits: int) -> float:
    """FTS5's ``bm25()`` IDF of a word found in ``hits`` of ``rows`` rows: ``log((N - n + 0.5) /
    (n + 0.5))``, floored at 1e-6 (a word in at least half the rows)."""
    idf = math.log((rows - hits + 0.5) / (hits + 0.5))
    return idf if idf > 0.0 else _FLOOR


def _varint_at(data: bytes, at: int) -> tuple[int, int]:
    """The SQLite varint at ``data[at:]`` (big-endian 7-bit groups; a 9th byte gives 8 bits) and
    where the next one starts; (0, at) past the end."""
    value = 0
    for i, byte in enumerate(data[at : at + 9]):
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    return value, len(data)


def _varint(data: bytes) -> int:
    return _varint_at(data, 0)[0]


_K1, _B, _FLOOR = 1.2, 0.75, 1e-6  # FTS5's bm25() constants, and its floor for a word's IDF
_MARK = "\x01"  # highlight()'s marker, counted to get a word's count in a row
COMMON_IDF = 1.0
"""Words whose IDF is under this (found in more than ~27% of the rows) are *common*: a search holding
rarer words too tries the shortcut (module docstring) that leaves them out of the first pass."""
_MAX_CACHED_WORDS = 50_000  # per index; a cache that grows past it starts again


@dataclass
class _WordCounts:
    """Rows per query word in one FTS5 index, valid while the index's ``marker`` is unchanged."""

    marker: bytes
    rows: int
    tokens: int
    hits: dict[str, int] = field(default_factory=dict)


class SQLiteFullText:
    """The FTS5 indexes of one database (the engine's ``fts`` attribute)."""

    def __init__(self, quote: Callable[[str], str]) -> None:
        self.quote = quote
        self._counts: dict[str, _WordCounts] = {}  # FTS5 table name -> its word counts
        self._counts_lock = threading.Lock()

    @staticmethod
    def index_name(table: str, column: str) -> str:
        """The FTS5 table indexing ``table.column``."""
        return f"{FTS_PREFIX}{len(table)}_{table}_{column}"

    def _indexes_of(self, conn: Connection, table: str) -> list[str]:
        """The FTS5 tables indexing columns of ``table`` (found by their name's prefix)."""
        prefix = self.index_name(table, "")
        rows = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, ?) = ? "
            "AND sql LIKE 'CREATE VIRTUAL TABLE%'",
            (len(prefix), prefix),
        ).all()
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ DDL
    def create(self, conn: Connection, spec: TableSpec, column: str, language: str | None) -> None:
        """(Re)build the index of ``column``: the FTS5 table, its triggers, and its rows."""
        _require_fts5()
        if language not in LANGUAGES:
            known = ", ".join(repr(k) for k in LANGUAGES if k)
            raise ConfigurationError(
                f"the embedded engine's full-text search knows the languages {known} (or None), "
                f"not {language!r}"
            )
        if column.lower() in _FTS5_RESERVED:
            raise SchemaError(f"SQLite's FTS5 cannot index a column named {column!r}; rename it")
        fts = self.index_name(spec.name, column)
        q, t, c = self.quote(fts), self.quote(spec.name), self.quote(column)
        self._drop(conn, fts)
        content = spec.name.replace("'", "''")
        conn.exec_driver_sql(
            f"CREATE VIRTUAL TABLE {q} USING fts5({c}, content='{content}', content_rowid='rowid', "
            f"tokenize='{LANGUAGES[language]}')"
        )
        pk = self.quote(spec.primary_key)
        add = f"INSERT INTO {q}(rowid, {c}) VALUES (NEW.rowid, NEW.{c});"
        remove = f"INSERT INTO {q}({q}, rowid, {c}) VALUES ('delete', OLD.rowid, OLD.{c});"
        watched = c if column == spec.primary_key else f"{c}, {pk}"
        for suffix, body in (
            ("ai", f"AFTER INSERT ON {t} BEGIN {add} END"),
            ("ad", f"AFTER DELETE ON {t} BEGIN {remove} END"),
            ("au", f"AFTER UPDATE OF {watched} ON {t} BEGIN {remove} {add} END"),
        ):
            conn.exec_driver_sql(f"CREATE TRIGGER {self.quote(f'{fts}_{suffix}')} {body}")
        conn.exec_driver_sql(f"INSERT INTO {q}({q}) VALUES ('rebuild')")

    def _drop(self, conn: Connection, fts: str) -> None:
        self._forget(fts)
        for suffix in ("ai", "ad", "au"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {self.quote(f'{fts}_{suffix}')}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.quote(fts)}")

    def exists(self, conn: Connection, spec: TableSpec, column: str) -> bool:
        """True when ``column`` has an FTS5 index."""
        found = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (self.index_name(spec.name, column),),
        ).first()
        return found is not None

    def truncate(self, conn: Connection, spec: TableSpec) -> None:
        """Empty the table's indexes (after a ``DELETE`` that ran without their triggers)."""
        for fts in self._indexes_of(conn, spec.name):
            q = self.quote(fts)
            conn.exec_driver_sql(f"INSERT INTO {q}({q}) VALUES ('delete-all')")
            self._forget(fts)

    def drop_table(self, conn: Connection, name: str) -> None:
        """Drop the indexes of a table being dropped (its triggers go with the table)."""
        for fts in self._indexes_of(conn, name):
            self._drop(conn, fts)

    # ------------------------------------------------------------------ search
    def statement(
        self, spec: TableSpec, request: TextSearchRequest, names: list[str], match: str | None = None
    ) -> sa.Select[Any]:
        """Top-k rows by BM25 among those matching the query and the filter, ties by row id.

        ``match`` replaces the request's own ``MATCH`` expression (the rarer words, for the
        shortcut); each row also carries its row id as ``_lookalike_rowid``.
        The top k are picked from the FTS5 table alone (joined to the table only to apply a filter),
        and only those k rows are read for their columns: a common word matches most rows, and
        reading each matching row (vectors and all) before the cut cost ~3x the search at 100k."""
        table = spec.sa_table
        fts = self.quote(self.index_name(spec.name, request.column))
        fts_table: sa.ColumnClause[Any] = sa.literal_column(fts)
        fts_rowid: sa.ColumnClause[Any] = sa.literal_column(f"{fts}.rowid")
        if match is None:
            match = request.query if request.raw else fts5_match_query(request.query)
        rank = sa.func.bm25(fts_table)
        rowid: sa.ColumnClause[Any] = sa.literal_column(f"{self.quote(spec.name)}.rowid")
        top = (
            sa.select(fts_rowid.label("rid"), rank.label("rank"))
            .select_from(sa.table(self.index_name(spec.name, request.column)))
            .where(fts_table.op("MATCH")(sa.bindparam("fts_query", match, type_=sa.Text)))
        )
        if request.where is not None:
            top = top.join(table, fts_rowid == rowid).where(request.where)
        hits = top.order_by(rank, fts_rowid).limit(request.limit).subquery("_lookalike_hits")
        return (
            sa.select(
                *[table.c[n] for n in names],
                (-hits.c.rank).label("_score"),
                hits.c.rid.label("_lookalike_rowid"),
            )
            .select_from(table)
            .join(hits, hits.c.rid == rowid)
            .order_by(hits.c.rank, hits.c.rid)
        )

    def search(
        self, conn: Connection, spec: TableSpec, request: TextSearchRequest, names: list[str]
    ) -> list[dict[str, Any]]:
        """Rows of ``names`` plus ``_score`` (``-bm25``, higher is better)."""
        _require_fts5()
        if not self.exists(conn, spec, request.column):
            raise SchemaError(
                f"column {request.column!r} of {spec.name!r} has no full-text index in this database; "
                f"build it with table.create_fts_index({request.column!r})"
            )
        # not in a write transaction (a session): its own uncommitted writes are not yet in the
        # bookkeeping records that tell whether cached counts are current
        if not request.raw and not conn.get_execution_options().get("lookalike_write", False):
            found = self.rare_words_search(conn, spec, request, names)
            if found is not None:
                return found
        return [row for _, row in self._run(conn, spec, request, names, None)]

    def _run(
        self,
        conn: Connection,
        spec: TableSpec,
        request: TextSearchRequest,
        names: list[str],
        match: str | None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """(row id, row) pairs, best first."""
        stmt = self.statement(spec, request, names, match)
        try:
            result = conn.execute(stmt)
        except sa.exc.OperationalError as exc:
            if not request.raw:
                raise
            raise ConfigurationError(
                f"raw full-text query {request.query!r} is not valid FTS5 syntax: {exc.orig}"
            ) from exc
        return [
            (
                int(r._mapping["_lookalike_rowid"]),
                {**{n: r._mapping[n] for n in names}, "_score": float(r._mapping["_score"])},
            )
            for r in result
        ]

    # ------------------------------------------------------------------ the common-words shortcut
    def rare_words_search(
        self, conn: Connection, spec: TableSpec, request: TextSearchRequest, names: list[str]
    ) -> list[dict[str, Any]] | None:
        """The full query's exact answer found through its rarer words only, or None when the
        shortcut does not apply or cannot prove its answer (then the full query runs).

        The rows matching the rarer words (IDF >= COMMON_IDF; when there are none, those whose IDF
        is not floored) are ranked by them, and the best
        ``4 × limit + 40`` taken. A row's common words add less than ``bound`` = Σ idf × (k1 + 1)
        to its score, so the fetched rows that could reach the k-th best are scored in full (as
        :func:`bm25_score` does: FTS5's own arithmetic, so the scores are the same floats), and the
        answer stands when no row left out (its rarer-word score at most the last fetched one's,
        or 0 for a row holding only common words) plus ``bound`` reaches the k-th full score."""
        words = query_words(request.query)
        stats = self.word_counts(conn, spec, request.column, words)
        idf = [fts5_idf(stats.rows, stats.hits[w]) for w in words]
        # the rarer words: IDF at least COMMON_IDF, or, when all are common, all but the floored ones
        rare = [w for w, x in zip(words, idf) if x >= COMMON_IDF] or [
            w for w, x in zip(words, idf) if x > _FLOOR
        ]
        if not rare or len(rare) == len(words):
            return None
        pool = 4 * request.limit + 40
        limited = dataclasses.replace(request, limit=pool)
        ranked = self._run(conn, spec, limited, names, _match_words(rare))
        if len(ranked) < request.limit:
            return None  # the common words alone may find the rest
        slack = 1 + 1e-9  # floating-point rounding, far below any score gap that matters
        bound = sum(x for x, w in zip(idf, words) if w not in rare) * (_K1 + 1) * slack
        least = ranked[request.limit - 1][1]["_score"]  # the k-th full score is at least this
        contenders = [(rowid, row) for rowid, row in ranked if row["_score"] + bound >= least]
        floor = ranked[-1][1]["_score"] if len(ranked) == pool else 0.0
        most = sorted((row["_score"] for _, row in contenders), reverse=True)[request.limit - 1] + bound
        if floor + bound >= most:
            return None  # the k-th full score is at most ``most``: the check below would fail
        fts = self.index_name(spec.name, request.column)
        full = self.bm25_scores(conn, fts, request.column, words, idf, stats, [r for r, _ in contenders])
        best = sorted(contenders, key=lambda pair: (-full[pair[0]], pair[0]))[: request.limit]
        if floor + bound >= full[best[-1][0]]:
            return None  # a row not fetched might still rank among the best: run the full query
        return [{**row, "_score": full[rowid]} for rowid, row in best]

    def bm25_scores(
        self,
        conn: Connection,
        fts: str,
        column: str,
        words: list[str],
        idf: list[float],
        stats: _WordCounts,
        rowids: list[int],
    ) -> dict[int, float]:
        """``-bm25()`` of the query ``words`` (ORed) for the rows ``rowids``, computed as FTS5's
        bm25 computes it (same formula, same order of operations): each word's count in a row from
        ``highlight()`` (the markers it adds, less any already in the text), the row's length from
        the index's ``_docsize`` table."""
        if not rowids:
            return {}
        q, ids = self.quote(fts), ",".join(str(int(r)) for r in rowids)  # integers: safe inline
        sizes = conn.exec_driver_sql(f"SELECT id, sz FROM {self.quote(fts + '_docsize')} WHERE id IN ({ids})")
        length = {int(rid): float(_varint(bytes(sz))) for rid, sz in sizes}
        mark = f"SELECT rowid, highlight({q}, 0, ?, ''), {self.quote(column)} FROM {q} WHERE {q} MATCH ? AND rowid IN ({ids})"
        counts: list[dict[int, float]] = []
        for word in words:
            found = conn.exec_driver_sql(mark, (_MARK, f'"{word}"'))
            counts.append({int(rid): float(m.count(_MARK) - (t or "").count(_MARK)) for rid, m, t in found})
        avgdl = stats.tokens / stats.rows
        out = {}
        for rowid in rowids:
            d, score = length.get(rowid, 0.0), 0.0
            for x, tf in zip(idf, counts):
                f = tf.get(rowid, 0.0)
                score += x * ((f * (_K1 + 1.0)) / (f + _K1 * (1 - _B + _B * d / avgdl)))
            out[rowid] = score
        return out

    def word_counts(self, conn: Connection, spec: TableSpec, column: str, words: list[str]) -> _WordCounts:
        """How many rows of the index of ``column`` hold each of ``words``, how many rows it has and
        their words in all: from the cache while the index is unchanged, else counted (and cached)."""
        fts = self.index_name(spec.name, column)
        marker, rows, tokens = self._index_state(conn, fts)
        with self._counts_lock:
            counts = self._counts.get(fts)
            if counts is None or counts.marker != marker or len(counts.hits) > _MAX_CACHED_WORDS:
                counts = self._counts[fts] = _WordCounts(marker, rows, tokens)
            missing = [w for w in dict.fromkeys(words) if w not in counts.hits]
        q = self.quote(fts)
        count = f"SELECT count(*) FROM {q} WHERE {q} MATCH ?"
        found = {w: int(conn.exec_driver_sql(count, (f'"{w}"',)).scalar_one()) for w in missing}
        with self._counts_lock:
            counts.hits.update(found)
            return _WordCounts(counts.marker, counts.rows, counts.tokens, dict(counts.hits))

    def _forget(self, fts: str) -> None:
        """Drop the cached counts of an index being rebuilt, emptied or dropped here (another
        process's such change shows in the index's records)."""
        with self._counts_lock:
            self._counts.pop(fts, None)

    def _index_state(self, conn: Connection, fts: str) -> tuple[bytes, int, int]:
        """The index's change marker, row count and word count.

        The marker is the database's schema version (a table dropped and made again changes it) and
        the index's averages and structure records (FTS5's ``_data`` ids 1 and 10, both rewritten
        by every committed write); the averages record is two varints, rows and words."""
        version = int(conn.exec_driver_sql("PRAGMA schema_version").scalar_one())
        found = conn.exec_driver_sql(f"SELECT id, block FROM {self.quote(fts + '_data')} WHERE id IN (1, 10)")
        blocks: dict[int, bytes] = {int(row[0]): bytes(row[1] or b"") for row in found}
        averages, structure = blocks.get(1, b""), blocks.get(10, b"")
        marker = b"%d:%d:" % (version, len(averages)) + averages + structure
        rows, used = _varint_at(averages, 0)
        tokens, _ = _varint_at(averages, used)
        return marker, rows, tokens
