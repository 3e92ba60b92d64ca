"""Indexing photo folders: what ``lookalike index`` does, as library calls.

::

    client = lookalike.connect("photos.db")
    report = index_paths(client, ["~/Pictures"])        # again later: only what changed is done
    print(report.added, report.skipped, report.removed, report.failures)

A folder index is a table with a standard schema (:func:`folder_schema`): ``id``, ``path`` (unique,
absolute), ``size``, ``mtime``, ``width``, ``height``, ``added_at`` and the vector ``vec``.

* **The model comes first.** It is loaded (downloaded if need be) before any file is read, so a model
  that can't be had is one error, not one per picture, and no table is made for it. An empty table
  takes the model of its first vectors.
* **The walk** (:mod:`lookalike.walk`) enters each folder once whatever the links, keeps links to
  folders outside the root out unless ``follow_links=True``, reports broken links, and stores names
  that are not UTF-8 losslessly (:mod:`lookalike.paths`).
* **Incremental:** unchanged files (same size and modification time) are skipped without being read;
  a changed file is re-embedded; a renamed or moved file keeps its row and vector (a new file whose
  size and content hash match a row whose file is gone; the hash comes from the source records the
  ingest writes for local models); copies of known content are served by the embedding cache; rows
  of deleted files are removed, only under the paths being indexed and never under a folder that
  could not be read this time.
* **Failures are remembered** (in ``_lookalike_failures``, with the file's size and mtime): a file
  that failed before and hasn't changed is not tried again and is counted in ``known_failures``, so
  ``failures`` holds only new problems. ``retry_failed=True`` tries them all again.
* **Stops** (``should_stop()`` returning True, or Ctrl-C) are honoured within a fraction of a second in
  every phase; every chunk committed so far is kept, and the next run carries on from there.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lookalike.errors import (
    AuthenticationError,
    ConfigurationError,
    LookalikeError,
    MissingDependencyError,
    ModelNotFoundError,
    SchemaError,
)
from lookalike.images.refs import is_url
from lookalike.paths import to_text
from lookalike.walk import DEFAULT_EXCLUDE, ScanProblem, ScanStopped, scan_paths

if TYPE_CHECKING:
    from lookalike.client import Client
    from lookalike.embeddings.base import BaseEmbeddingFunction
    from lookalike.table import Table

__all__ = [
    "DEFAULT_EXCLUDE",
    "DEFAULT_TABLE",
    "FOLDER_COLUMNS",
    "IndexFailure",
    "IndexReport",
    "folder_schema",
    "index_paths",
    "open_folder_table",
    "same_model",
    "scan_paths",
]

DEFAULT_TABLE = "images"

DEFAULT_CHUNK = 64
"""Files per committed chunk: small enough that a stop loses little, large enough to batch the model."""

FOLDER_COLUMNS = ("id", "path", "size", "mtime", "width", "height", "added_at", "vec")

SETUP_ERRORS = (ModelNotFoundError, AuthenticationError, MissingDependencyError)
"""Errors that no single file causes: the run stops with them instead of failing every file."""


@dataclass(frozen=True)
class IndexFailure:
    """A file, folder or URL that could not be indexed, and why."""

    path: str
    error: str

    def __str__(self) -> str:
        return f"{self.path}: {self.error}"


@dataclass
class IndexReport:
    """What an indexing run did. ``done``/``total`` count the files that needed work (for progress).

    ``failures`` are new problems (or changed files that failed again); ``known_failures`` are files
    that failed before and haven't changed since (not tried again unless ``retry_failed=True``).
    ``phase`` is ``"loading model"``, ``"scanning"`` (``found`` counts files so far), ``"checking"``
    (renames) or ``"indexing"``. ``skipped_entries`` says in one line what the walk passed over and why.
    """

    table: str = DEFAULT_TABLE
    added: int = 0
    updated: int = 0
    reused: int = 0
    skipped: int = 0
    removed: int = 0
    failures: list[IndexFailure] = field(default_factory=list)
    known_failures: list[IndexFailure] = field(default_factory=list)
    total: int = 0
    done: int = 0
    found: int = 0
    phase: str = "loading model"
    skipped_entries: str = ""
    stopped: bool = False
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        """How many files, folders or URLs failed for the first time (or again after a change)."""
        return len(self.failures)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (``lookalike index --json``)."""
        return {
            "table": self.table,
            "added": self.added,
            "updated": self.updated,
            "reused": self.reused,
            "skipped": self.skipped,
            "removed": self.removed,
            "failed": self.failed,
            "failures": [{"path": f.path, "error": f.error} for f in self.failures],
            "known_failed": len(self.known_failures),
            "known_failures": [{"path": f.path, "error": f.error} for f in self.known_failures],
            "skipped_entries": self.skipped_entries,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
        }


class _Stopped(BaseException):
    """Raised from a progress hook to abandon the chunk in flight (BaseException: no handler eats it)."""


# ---------------------------------------------------------------------- the table


def folder_schema(embed_fn: BaseEmbeddingFunction, table: str = DEFAULT_TABLE) -> type[Any]:
    """The standard table model of a folder index, with ``vec`` filled from ``path`` by ``embed_fn``."""
    from lookalike.schema import Field, TableModel

    namespace: dict[str, Any] = {
        "__tablename__": table,
        "__module__": __name__,
        "__annotations__": {
            "id": int | None,
            "path": str,
            "size": int | None,
            "mtime": float | None,
            "width": int | None,
            "height": int | None,
            "added_at": _dt.datetime | None,
            "vec": list[float] | None,
        },
        "id": Field(default=None, primary_key=True),
        "path": Field(unique=True),
        "size": Field(default=None),
        "mtime": Field(default=None),
        "width": Field(default=None),
        "height": Field(default=None),
        "added_at": Field(default=None),
        # "image": a path without an image suffix is still a picture, never a sentence
        "vec": embed_fn.VectorField(source_field="path", source_type="image"),
    }
    name = "".join(p.capitalize() for p in table.replace("-", "_").split("_") if p) or "Images"
    return type(TableModel)(f"{name}Folder", (TableModel,), namespace)


# options that change how fast or where a model runs, not its vectors (int8 stays within cosine 0.999
# of fp32 on the models measured, see the README): a table indexed with one accepts the others
_RUNTIME_OPTIONS = frozenset({"precision", "threads", "providers", "batch_size", "cache_dir", "timeout"})


def same_model(a: BaseEmbeddingFunction, b: BaseEmbeddingFunction) -> bool:
    """Whether two embedders give comparable vectors (same model; precision and threads may differ)."""
    return _model_identity(a) == _model_identity(b)


def _model_identity(embed: BaseEmbeddingFunction) -> dict[str, Any]:
    config = dict(embed.config())
    options = {k: v for k, v in (config.pop("options", None) or {}).items() if k not in _RUNTIME_OPTIONS}
    return {**config, "options": options}


def open_folder_table(
    client: Client,
    table: str = DEFAULT_TABLE,
    model: str | BaseEmbeddingFunction | None = None,
    *,
    precision: str | None = None,
) -> Table:
    """Open the folder index ``table``, creating it with ``model`` (default: the library's) if needed.

    The model is loaded first (downloaded if need be), so a model that can't be had raises
    (:class:`~lookalike.errors.ModelNotFoundError`, ...) before anything is created. A table with
    vectors keeps the model it was made with; naming another is an error rather than a table of
    incomparable vectors. A table without vectors (a first run that failed) takes the model given.
    ``precision`` runs a local model at ``"int8"`` or ``"fp32"``; ``"auto"`` takes int8 for the known
    models (:func:`~lookalike.embeddings.model_files.list_models`) that have an int8 export, and leaves
    any other model at its own precision. Other providers have no precision and ignore it.
    """
    from lookalike.embeddings import BaseEmbeddingFunction, EmbeddingFunction

    wanted = model if isinstance(model, BaseEmbeddingFunction) or model is None else EmbeddingFunction(model)
    if not client.has_table(table):
        embed = _ready(wanted if wanted is not None else EmbeddingFunction(), precision)
        return client.create_table(schema=folder_schema(embed, table), if_exists="skip")
    tbl = client.open_table(table)
    missing = [c for c in ("path", "size", "mtime", "vec") if c not in tbl.spec.sa_table.c]
    if missing:
        raise SchemaError(
            f"table {table!r} is not a folder index (no column {missing[0]!r}); pick another table name"
        )
    stored = tbl.vector_field("vec").embed_fn
    if wanted is None or (stored is not None and same_model(wanted, stored)):
        if stored is None:
            raise ConfigurationError(f"table {table!r} has no stored model; name the model to index with")
        # index with the settings asked for (e.g. int8); the stored model stays the table's
        embed = _ready(wanted or stored, precision)
        return tbl if embed is stored else client.open_table(table, embed_fn=embed)
    t = tbl.spec.sa_table
    with client._conn(write=False) as conn:
        vectors = conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.vec.is_not(None))).scalar()
    if vectors:
        held = _model_label(stored) if stored is not None else "another model"
        raise ConfigurationError(
            f"table {table!r} holds {vectors} vectors of {held}, and vectors of {_model_label(wanted)} "
            f"can't be compared with them: index into another table (--table NAME) or database "
            "(--db FILE), or leave the model out to keep using the table's"
        )
    # nothing to keep: a first run whose model never loaded left an empty table behind
    embed = _ready(wanted, precision)
    client.drop_table(table)
    _FailureLog.clear(client, table)
    return client.create_table(schema=folder_schema(embed, table), if_exists="skip")


def _ready(embed: BaseEmbeddingFunction, precision: str | None) -> BaseEmbeddingFunction:
    """``embed`` at ``precision``, loaded (so a model that can't be had fails here, once)."""
    if precision == "auto":
        # int8 where it was measured within cosine 0.999 of fp32: the known CLIP/SigLIP exports
        # (README, Models); a folder or another repo keeps its own precision (fp32 unless asked)
        source = getattr(embed, "source", None) if getattr(embed, "provider", None) == "local" else None
        if getattr(source, "known", None) is not None:
            try:
                int8 = _at_precision(embed, "int8")
                int8.ensure_ready("image")
                return int8
            except ModelNotFoundError as exc:
                if "_quantized" not in str(exc):  # anything but "no int8 export" is a real problem
                    raise
        precision = None
    embed = _at_precision(embed, precision)
    embed.ensure_ready("image")
    return embed


def _at_precision(embed: BaseEmbeddingFunction, precision: str | None) -> BaseEmbeddingFunction:
    """``embed`` running at ``precision`` when it is a local model with another one (else itself)."""
    if precision is None or getattr(embed, "provider", None) != "local":
        return embed
    if getattr(embed, "precision", precision) == precision:
        return embed
    from lookalike.embeddings.registry import build_from_config

    config = dict(embed.config())
    config["options"] = {**(config.get("options") or {}), "precision": precision}
    return build_from_config(config)


def _model_label(embed: BaseEmbeddingFunction) -> str:
    provider = getattr(embed, "provider", "python")
    name = str(embed.model_name)
    return f"{provider}/{name}" if provider != "python" else name


# ---------------------------------------------------------------------- remembered failures

_META = sa.MetaData()
_FAILURES = sa.Table(
    "_lookalike_failures",
    _META,
    # a hash key: paths can be longer than the indexable key lengths of some engines
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("tbl", sa.String(255), nullable=False, index=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger),
    sa.Column("mtime", sa.Float),
    sa.Column("error", sa.Text, nullable=False),
    # the model and pixel limit of the run: with other settings a file deserves another try
    sa.Column("settings", sa.String(64), nullable=False),
)


class _FailureLog:
    """Failures of earlier runs, keyed by path, with the size and mtime the file had then."""

    def __init__(self, client: Client, table: str, settings: str) -> None:
        self.client = client
        self.table = table
        self.settings = settings
        with client._conn(write=True) as conn:
            _META.create_all(conn, checkfirst=True)
            rows = conn.execute(
                sa.select(
                    _FAILURES.c.path,
                    _FAILURES.c.size,
                    _FAILURES.c.mtime,
                    _FAILURES.c.error,
                    _FAILURES.c.settings,
                ).where(_FAILURES.c.tbl == table)
            )
            records = list(rows)
        self.known: dict[str, tuple[int | None, float | None, str]] = {
            r.path: (r.size, r.mtime, r.error) for r in records if r.settings == settings
        }
        self.recorded = {r.path for r in records}  # any settings: what update() may have to delete

    @staticmethod
    def clear(client: Client, table: str) -> None:
        """Forget every failure of ``table`` (it was made anew)."""
        with client._conn(write=True) as conn:
            _META.create_all(conn, checkfirst=True)
            conn.execute(_FAILURES.delete().where(_FAILURES.c.tbl == table))

    def _key(self, path: str) -> str:
        return hashlib.sha256(f"{self.table}\0{path}".encode("utf-8", "surrogatepass")).hexdigest()

    def unchanged(self, path: str, size: int | None, mtime: float | None) -> str | None:
        """The earlier error when ``path`` failed before with the same size and mtime."""
        old = self.known.get(path)
        return old[2] if old is not None and old[0] == size and old[1] == mtime else None

    def update(self, failed: Sequence[tuple[str, int | None, float | None, str]], ok: Iterable[str]) -> None:
        """Remember new failures and forget paths that are fine (or gone) now."""
        forget = [p for p in ok if p in self.recorded]
        keys = [self._key(p) for p in forget] + [self._key(p) for p, *_ in failed]
        if not keys:
            return
        with self.client._conn(write=True) as conn:
            for start in range(0, len(keys), 500):
                conn.execute(_FAILURES.delete().where(_FAILURES.c.key.in_(keys[start : start + 500])))
            if failed:
                conn.execute(
                    _FAILURES.insert(),
                    [
                        {
                            "key": self._key(p),
                            "tbl": self.table,
                            "path": p,
                            "size": s,
                            "mtime": m,
                            "error": e,
                            "settings": self.settings,
                        }
                        for p, s, m, e in failed
                    ],
                )
        for p in forget:
            self.known.pop(p, None)
            self.recorded.discard(p)
        for p, s, m, e in failed:
            self.known[p] = (s, m, e)
            self.recorded.add(p)


# ---------------------------------------------------------------------- helpers


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _file_hash(path: str) -> str | None:
    """sha256 of the file's bytes, as the ingest records it (None when the file can't be read)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _header_size(path: str) -> tuple[int | None, int | None]:
    """Pixel size from the file header (cheap: PIL reads the first bytes only)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except Exception:  # the embedder reports unreadable images with a proper message
        return None, None


def _read_urls(urls_file: str | os.PathLike[str]) -> list[str]:
    try:
        text = Path(urls_file).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read URL list {os.fspath(urls_file)!r}: {exc.strerror or exc}"
        ) from exc
    urls = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not is_url(line):
            raise ConfigurationError(f"{os.fspath(urls_file)!r}: {line[:80]!r} is not an http(s) URL")
        urls.append(line)
    return list(dict.fromkeys(urls))


# ---------------------------------------------------------------------- indexing


@dataclass(frozen=True)
class _Work:
    path: str  # as stored (text)
    fspath: str | None  # as opened; None for URLs
    size: int | None
    mtime: float | None
    replaces: Any = None  # the id of the row of the file's earlier content


def index_paths(
    client: Client,
    paths: Iterable[str | os.PathLike[str]],
    *,
    table: str = DEFAULT_TABLE,
    model: str | BaseEmbeddingFunction | None = None,
    recursive: bool = True,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    follow_links: bool = False,
    urls_file: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    precision: str | None = None,
    on_progress: Callable[[IndexReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> IndexReport:
    """Index image files under ``paths`` (and URLs listed in ``urls_file``) into a folder table.

    Creates ``table`` with :func:`folder_schema` on first use (``model`` picks the embedding model:
    a ``"provider/model"`` name, a ``local/<directory>`` or a directory, or an embedding function;
    default the library's; ``precision`` runs a local one at ``"int8"``, ``"fp32"`` or ``"auto"``: see
    :func:`open_folder_table`). See the module docstring for the walk, incremental work, remembered
    failures and stops. ``on_progress(report)`` is called as work advances. Bad files don't stop the
    run: they are listed in ``report.failures``. Raises :class:`ConfigurationError` for a path that
    doesn't exist, and the model's error (e.g. :class:`ModelNotFoundError`) before any file is read
    when the model can't be loaded.
    """
    started = time.monotonic()
    roots = [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]
    missing = [r for r in roots if not os.path.lexists(r)]
    if missing:
        raise ConfigurationError(f"no such file or folder: {to_text(missing[0])}")
    if chunk_size <= 0:
        raise ConfigurationError(f"chunk_size must be positive, got {chunk_size!r}")
    urls = _read_urls(urls_file) if urls_file is not None else []
    stop = should_stop or (lambda: False)
    report = IndexReport(table=table)

    def tell() -> None:
        if on_progress is not None:
            on_progress(report)

    tell()
    # the model loads here, before any file is read
    tbl = open_folder_table(client, table, model, precision=precision)
    report.table = tbl.name
    report.phase = "scanning"
    tell()

    def found(n: int) -> None:
        report.found = n
        tell()

    try:
        scan = scan_paths(
            roots,
            recursive=recursive,
            exclude=exclude,
            follow_links=follow_links,
            should_stop=stop,
            on_found=found,
        )
    except ScanStopped:
        # nothing may be removed on a partial walk: what wasn't seen isn't gone
        report.stopped = True
        report.seconds = time.monotonic() - started
        return report
    report.found = len(scan.files)
    report.skipped_entries = scan.summary()
    log = _FailureLog(client, tbl.name, _run_settings(tbl))
    new_failures: list[tuple[str, int | None, float | None, str]] = []
    for problem in scan.problems:
        _note_failure(report, log, problem, retry_failed, new_failures)

    text_roots = [to_text(r) for r in roots]
    t = tbl.spec.sa_table
    with client._conn(write=False) as conn:
        known = {
            r.path: r
            for r in conn.execute(sa.select(t.c.id, t.c.path, t.c.size, t.c.mtime, t.c.vec.is_not(None)))
        }
    seen = {f.path for f in scan.files}
    new: list[_Work] = []
    changed: list[_Work] = []
    for f in scan.files:
        row = known.get(f.path)
        if row is None:
            new.append(_Work(f.path, f.fspath, f.size, f.mtime))
        elif row.size == f.size and row.mtime == f.mtime and row[4]:
            report.skipped += 1
        else:
            changed.append(_Work(f.path, f.fspath, f.size, f.mtime, row.id))
    gone = [
        row
        for path, row in known.items()
        if not is_url(path)
        and path not in seen
        and _under(path, text_roots)
        and not _under(path, scan.unreadable)
    ]
    report.phase = "checking"
    tell()
    try:
        new, gone = _apply_renames_and_removals(tbl, new, gone, report, stop)
    except _Stopped:
        report.stopped = True
        report.seconds = time.monotonic() - started
        return report

    new_urls = [u for u in urls if u not in known]
    report.skipped += len(urls) - len(new_urls)
    work = [*new, *changed, *(_Work(u, None, None, None) for u in new_urls)]
    todo = []
    for item in work:
        error = None if retry_failed else log.unchanged(item.path, item.size, item.mtime)
        if error is None:
            todo.append(item)
        else:
            report.known_failures.append(IndexFailure(item.path, error))
    # records of files that are gone (or fine and out of the walk's reach now) are dropped
    problem_paths = {p.path for p in scan.problems}
    vanished = [
        p
        for p in log.recorded
        if not is_url(p)
        and p not in seen
        and p not in problem_paths
        and _under(p, text_roots)
        and not _under(p, scan.unreadable)
    ]
    log.update(new_failures, vanished)
    report.phase = "indexing"
    report.total = len(todo)
    tell()
    for start in range(0, len(todo), chunk_size):
        if stop():
            report.stopped = True
            break
        chunk = todo[start : start + chunk_size]
        try:
            failed = _index_chunk(tbl, chunk, report, tell, stop)
        except _Stopped:
            report.stopped = True
            break
        log.update(failed, [w.path for w in chunk])
        tell()
    report.seconds = time.monotonic() - started
    return report


def _run_settings(tbl: Table) -> str:
    """What besides the file decides whether it indexes: the model and the pixel limit."""
    import json

    from lookalike.images import get_max_pixels

    embed = tbl.vector_field("vec").embed_fn
    identity = _model_identity(embed) if embed is not None else None
    text = json.dumps({"model": identity, "max_pixels": get_max_pixels()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _note_failure(
    report: IndexReport,
    log: _FailureLog,
    problem: ScanProblem,
    retry_failed: bool,
    new_failures: list[tuple[str, int | None, float | None, str]],
) -> None:
    old = None if retry_failed else log.unchanged(problem.path, problem.size, problem.mtime)
    if old is not None:
        report.known_failures.append(IndexFailure(problem.path, problem.error))
        return
    report.failures.append(IndexFailure(problem.path, problem.error))
    new_failures.append((problem.path, problem.size, problem.mtime, problem.error))


def _apply_renames_and_removals(
    tbl: Table, new: list[_Work], gone: list[Any], report: IndexReport, stop: Callable[[], bool]
) -> tuple[list[_Work], list[Any]]:
    """Give vanished rows to new files with the same size and content hash; delete the rest."""
    renames: list[tuple[_Work, Any]] = []
    if gone and new:
        by_size: dict[int, list[Any]] = {}
        for row in gone:
            if row.size is not None:
                by_size.setdefault(row.size, []).append(row)
        candidates = [w for w in new if w.size in by_size]
        if candidates:
            info = tbl.source_info("vec")
            taken: set[Any] = set()
            for w in candidates:
                if stop():
                    raise _Stopped  # before anything was written: the next run starts over cleanly
                digest = _file_hash(w.fspath or w.path)
                for row in by_size[w.size]:  # type: ignore[index]
                    rec = info.get(str(row.id))
                    if digest and rec is not None and rec.hash == digest and row.id not in taken:
                        renames.append((w, row.id))
                        taken.add(row.id)
                        break
            gone = [row for row in gone if row.id not in taken]
            moved = {w.path for w, _ in renames}
            new = [w for w in new if w.path not in moved]
    if renames or gone:
        client = tbl.client
        with client.session():
            for w, rid in renames:
                tbl.update({"path": w.path, "mtime": w.mtime, "vec": _vector_of(tbl, rid)}, {"id": rid})
            ids = [row.id for row in gone]
            for start in range(0, len(ids), 500):
                tbl.delete({"id": {"$in": ids[start : start + 500]}})
        report.reused = len(renames)
        report.removed = len(gone)
    return new, gone


def _vector_of(tbl: Table, rid: Any) -> Any:
    # update() re-embeds when the source column changes unless the vector is given: give it back
    t = tbl.spec.sa_table
    with tbl.client._conn(write=False) as conn:
        blob = conn.execute(sa.select(t.c.vec).where(t.c.id == rid)).scalar()
    return blob


def _index_chunk(
    tbl: Table,
    chunk: list[_Work],
    report: IndexReport,
    tell: Callable[[], None],
    stop: Callable[[], bool],
) -> list[tuple[str, int | None, float | None, str]]:
    """Embed and write one chunk; returns its failures as (path, size, mtime, error)."""
    now = _dt.datetime.now(_dt.timezone.utc)
    rows = []
    for w in chunk:
        width, height = _header_size(w.fspath) if w.fspath is not None else (None, None)
        rows.append(
            {
                "path": w.path,
                "size": w.size,
                "mtime": w.mtime,
                "width": width,
                "height": height,
                "added_at": now,
            }
        )
    base = report.done

    def progress(done: int, _total: int) -> None:
        # finer than a chunk: a big model takes seconds per chunk, and the bar should move meanwhile
        report.done = base + min(done, len(chunk))
        tell()
        if stop():
            raise _Stopped  # the chunk is rolled back; committed chunks stay

    replaced = [w.replaces for w in chunk if w.replaces is not None]
    try:
        # a changed file is a new picture: its old row (and vector) goes and a new one is embedded,
        # both in the chunk's one transaction, so a crash or a failed write leaves the old row indexed
        result = tbl._replace_chunk(rows, replaced, on_error="skip", progress=progress)
    except SETUP_ERRORS:
        raise  # no single file causes these: stop the run with one message
    except LookalikeError as exc:
        report.done = base
        if len(chunk) == 1:
            report.failures.append(IndexFailure(chunk[0].path, _short_error(exc, chunk[0].path)))
            report.done = base + 1
            return [(chunk[0].path, chunk[0].size, chunk[0].mtime, report.failures[-1].error)]
        # one item must never cost the others their place: write them one at a time
        failed: list[tuple[str, int | None, float | None, str]] = []
        for w in chunk:
            failed += _index_chunk(tbl, [w], report, tell, stop)
        return failed
    for item in result.failed:
        if isinstance(item.error, SETUP_ERRORS):  # a rejected API key fails every item alike
            raise item.error
    failed_at = {item.index for item in result.failed}
    failed = []
    for item in result.failed:
        w = chunk[item.index]
        error = _short_error(item.error, w.path)
        report.failures.append(IndexFailure(w.path, error))
        failed.append((w.path, w.size, w.mtime, error))
    for i, w in enumerate(chunk):
        if i in failed_at:
            continue
        if w.replaces is None:
            report.added += 1
        else:
            report.updated += 1
    report.done = base + len(chunk)
    return failed


def _short_error(exc: LookalikeError, path: str) -> str:
    msg = exc.message
    # the report names the file already
    if msg.startswith("item ") and "): " in msg:
        msg = msg.split("): ", 1)[1]
    if msg.startswith(f"{path}: "):
        msg = msg[len(path) + 2 :]
    return msg
