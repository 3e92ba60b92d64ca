"""Indexing photo folders: what ``lookalike index`` does, as library calls.

::

    client = lookalike.connect("photos.db")
    report = index_paths(client, ["~/Pictures"])        # again later: only what changed is done
    print(report.added, report.skipped, report.removed, report.failures)

A folder index is a table with a standard schema (:func:`folder_schema`): ``id``, ``path`` (unique,
absolute), ``size``, ``mtime``, ``width``, ``height``, ``added_at`` and the vector ``vec``. Indexing is
incremental:

* unchanged files (same size and modification time) are skipped without being read;
* a changed file is re-embedded (its row is replaced);
* a renamed or moved file keeps its row and vector: a new file whose size and content hash match a
  row whose file is gone is a rename (the hash comes from the source records the ingest writes for
  local models; with a remote provider there are none, and a renamed file is embedded again);
  copies of known content are served by the ingest's embedding cache, so neither runs the model;
* rows of deleted files are removed — only under the paths being indexed, and never under a folder
  that could not be read this time;
* work is committed in chunks: stopping (``should_stop`` returning True, or Ctrl-C) keeps every chunk
  committed so far, and the next run carries on from there.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lookalike.errors import ConfigurationError, LookalikeError, SchemaError
from lookalike.images.refs import IMAGE_SUFFIXES, is_url

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
    "scan_paths",
]

DEFAULT_TABLE = "images"
DEFAULT_EXCLUDE: tuple[str, ...] = (".*",)
"""Glob patterns skipped by default: hidden files and folders (``.thumbnails``, ``.git``, ...)."""

DEFAULT_CHUNK = 64
"""Files per committed chunk: small enough that a stop loses little, large enough to batch the model."""

FOLDER_COLUMNS = ("id", "path", "size", "mtime", "width", "height", "added_at", "vec")


@dataclass(frozen=True)
class IndexFailure:
    """A file, folder or URL that could not be indexed, and why."""

    path: str
    error: str

    def __str__(self) -> str:
        return f"{self.path}: {self.error}"


@dataclass
class IndexReport:
    """What an indexing run did. ``done``/``total`` count the files that needed work (for progress)."""

    table: str = DEFAULT_TABLE
    added: int = 0
    updated: int = 0
    reused: int = 0
    skipped: int = 0
    removed: int = 0
    failures: list[IndexFailure] = field(default_factory=list)
    total: int = 0
    done: int = 0
    stopped: bool = False
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        """How many files, folders or URLs failed."""
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
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
        }


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


def open_folder_table(
    client: Client, table: str = DEFAULT_TABLE, model: str | BaseEmbeddingFunction | None = None
) -> Table:
    """Open the folder index ``table``, creating it with ``model`` (default: the library's) if needed.

    An existing table keeps the model it was made with; naming another one is an error rather than a
    table of incomparable vectors.
    """
    from lookalike.embeddings import BaseEmbeddingFunction, EmbeddingFunction

    if client.has_table(table):
        tbl = client.open_table(table)
        missing = [c for c in ("path", "size", "mtime", "vec") if c not in tbl.spec.sa_table.c]
        if missing:
            raise SchemaError(
                f"table {table!r} is not a folder index (no column {missing[0]!r}); pick another table name"
            )
        stored = tbl.vector_field("vec").embed_fn
        if model is not None and stored is not None:
            wanted = model if isinstance(model, BaseEmbeddingFunction) else EmbeddingFunction(model)
            if wanted.config() != stored.config():
                raise ConfigurationError(
                    f"table {table!r} was indexed with {_model_label(stored)}, not {_model_label(wanted)}; "
                    "vectors of two models can't be mixed: use another table or database"
                )
        return tbl
    embed = model if isinstance(model, BaseEmbeddingFunction) else EmbeddingFunction(model)
    return client.create_table(schema=folder_schema(embed, table), if_exists="skip")


def _model_label(embed: BaseEmbeddingFunction) -> str:
    provider = getattr(embed, "provider", "python")
    name = str(embed.model_name)
    return f"{provider}/{name}" if provider != "python" else name


# ---------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class _Found:
    path: str
    size: int
    mtime: float


def _excluded(name: str, rel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in patterns)


def scan_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
) -> tuple[list[_Found], list[IndexFailure], list[str]]:
    """Image files under ``paths``: (files, failures, folders that could not be read).

    Patterns in ``exclude`` match a file or folder name, or its path relative to the root given.
    """
    found: dict[str, _Found] = {}
    failures: list[IndexFailure] = []
    unreadable: list[str] = []
    for raw in paths:
        root = os.path.abspath(os.path.expanduser(os.fspath(raw)))
        if os.path.isfile(root):
            _add_file(root, found, failures)
            continue
        for dirpath, files in _walk(root, recursive, exclude, failures, unreadable):
            for name in files:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root)
                if Path(name).suffix.lower() not in IMAGE_SUFFIXES or _excluded(name, rel, exclude):
                    continue
                _add_file(full, found, failures)
    return sorted(found.values(), key=lambda f: f.path), failures, unreadable


def _walk(
    root: str, recursive: bool, exclude: Sequence[str], failures: list[IndexFailure], unreadable: list[str]
) -> Iterator[tuple[str, list[str]]]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            # the folder's rows must survive this run: a folder we can't list is not an empty one
            unreadable.append(folder)
            failures.append(IndexFailure(folder, f"cannot read folder: {exc.strerror or exc}"))
            continue
        files = []
        for entry in sorted(entries, key=lambda e: e.name, reverse=True):
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                rel = os.path.relpath(entry.path, root)
                if recursive and not _excluded(entry.name, rel, exclude):
                    stack.append(entry.path)
            else:
                files.append(entry.name)
        yield folder, sorted(files)


def _add_file(path: str, found: dict[str, _Found], failures: list[IndexFailure]) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        failures.append(IndexFailure(path, f"cannot read file: {exc.strerror or exc}"))
        return
    found[path] = _Found(path, st.st_size, st.st_mtime)


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


# ---------------------------------------------------------------------- indexing


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


def index_paths(
    client: Client,
    paths: Iterable[str | os.PathLike[str]],
    *,
    table: str = DEFAULT_TABLE,
    model: str | BaseEmbeddingFunction | None = None,
    recursive: bool = True,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    urls_file: str | os.PathLike[str] | None = None,
    on_progress: Callable[[IndexReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> IndexReport:
    """Index image files under ``paths`` (and URLs listed in ``urls_file``) into a folder table.

    Creates ``table`` with :func:`folder_schema` on first use (``model`` picks the embedding model:
    a ``"provider/model"`` name, a ``local/<directory>``, or an embedding function; default the
    library's). Incremental — see the module docstring. ``on_progress(report)`` is called after each
    committed chunk; ``should_stop()`` is checked between chunks. Bad files don't stop the run: they
    are listed in ``report.failures``. Raises :class:`ConfigurationError` for a path that doesn't exist.
    """
    started = time.monotonic()
    roots = [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]
    missing = [r for r in roots if not os.path.exists(r)]
    if missing:
        raise ConfigurationError(f"no such file or folder: {missing[0]}")
    if chunk_size <= 0:
        raise ConfigurationError(f"chunk_size must be positive, got {chunk_size!r}")
    urls = _read_urls(urls_file) if urls_file is not None else []
    tbl = open_folder_table(client, table, model)
    report = IndexReport(table=tbl.name)

    found, failures, unreadable = scan_paths(roots, recursive=recursive, exclude=exclude)
    report.failures.extend(failures)
    t = tbl.spec.sa_table
    with client._conn(write=False) as conn:
        known = {
            r.path: r
            for r in conn.execute(sa.select(t.c.id, t.c.path, t.c.size, t.c.mtime, t.c.vec.is_not(None)))
        }

    seen = {f.path for f in found}
    new: list[_Found] = []
    changed: list[tuple[_Found, Any]] = []
    for f in found:
        row = known.get(f.path)
        if row is None:
            new.append(f)
        elif row.size == f.size and row.mtime == f.mtime and row[4]:
            report.skipped += 1
        else:
            changed.append((f, row.id))
    gone = [
        row
        for path, row in known.items()
        if not is_url(path) and path not in seen and _under(path, roots) and not _under(path, unreadable)
    ]

    # renames: a new file with the size and content of a vanished one takes over its row and vector
    renames: list[tuple[_Found, Any]] = []
    if gone and new:
        by_size: dict[int, list[Any]] = {}
        for row in gone:
            if row.size is not None:
                by_size.setdefault(row.size, []).append(row)
        candidates = [f for f in new if f.size in by_size]
        if candidates:
            info = tbl.source_info("vec")
            taken: set[Any] = set()
            for f in candidates:
                digest = _file_hash(f.path)
                for row in by_size[f.size]:
                    rec = info.get(str(row.id))
                    if digest and rec is not None and rec.hash == digest and row.id not in taken:
                        renames.append((f, row.id))
                        taken.add(row.id)
                        break
            gone = [row for row in gone if row.id not in taken]
            moved = {f.path for f, _ in renames}
            new = [f for f in new if f.path not in moved]
    if renames or gone:
        with client.session():
            for f, rid in renames:
                tbl.update({"path": f.path, "mtime": f.mtime, "vec": _vector_of(tbl, rid)}, {"id": rid})
            ids = [row.id for row in gone]
            for start in range(0, len(ids), 500):
                tbl.delete({"id": {"$in": ids[start : start + 500]}})
        report.reused = len(renames)
        report.removed = len(gone)

    new_urls = [u for u in urls if u not in known]
    report.skipped += len(urls) - len(new_urls)
    work: list[tuple[str, _Found | None, Any]] = [(f.path, f, None) for f in new]
    work += [(f.path, f, rid) for f, rid in changed]
    work += [(u, None, None) for u in new_urls]
    report.total = len(work)
    if on_progress is not None:
        on_progress(report)
    for start in range(0, len(work), chunk_size):
        if should_stop is not None and should_stop():
            report.stopped = True
            break
        _index_chunk(tbl, work[start : start + chunk_size], report, on_progress)
        if on_progress is not None:
            on_progress(report)
    report.seconds = time.monotonic() - started
    return report


def _vector_of(tbl: Table, rid: Any) -> Any:
    # update() re-embeds when the source column changes unless the vector is given: give it back
    t = tbl.spec.sa_table
    with tbl.client._conn(write=False) as conn:
        blob = conn.execute(sa.select(t.c.vec).where(t.c.id == rid)).scalar()
    return blob


def _index_chunk(
    tbl: Table,
    chunk: list[tuple[str, _Found | None, Any]],
    report: IndexReport,
    on_progress: Callable[[IndexReport], None] | None,
) -> None:
    now = _dt.datetime.now(_dt.timezone.utc)
    rows = []
    for path, f, _ in chunk:
        width, height = _header_size(path) if f is not None else (None, None)
        rows.append(
            {
                "path": path,
                "size": f.size if f else None,
                "mtime": f.mtime if f else None,
                "width": width,
                "height": height,
                "added_at": now,
            }
        )
    replaced = [rid for _, _, rid in chunk if rid is not None]
    if replaced:
        # a changed file is a new picture: its old row (and vector) goes, a new one is embedded
        tbl.delete({"id": {"$in": replaced}})
    base = report.done

    def progress(done: int, _total: int) -> None:
        # finer than a chunk: a big model takes seconds per chunk, and the bar should move meanwhile
        report.done = base + min(done, len(chunk))
        if on_progress is not None:
            on_progress(report)

    try:
        result = tbl.bulk_insert(rows, chunk_size=len(rows), on_error="skip", progress=progress)
    except LookalikeError as exc:  # the whole chunk failed (e.g. the model could not load)
        for path, _, _ in chunk:
            report.failures.append(IndexFailure(path, str(exc)))
        report.done = base + len(chunk)
        raise
    failed = {item.index for item in result.failed}
    for item in result.failed:
        report.failures.append(
            IndexFailure(chunk[item.index][0], _short_error(item.error, chunk[item.index][0]))
        )
    for i, (_, _, rid) in enumerate(chunk):
        if i in failed:
            continue
        if rid is None:
            report.added += 1
        else:
            report.updated += 1
    report.done = base + len(chunk)


def _short_error(exc: LookalikeError, path: str) -> str:
    msg = exc.message
    # the report names the file already
    if msg.startswith("item ") and "): " in msg:
        msg = msg.split("): ", 1)[1]
    if msg.startswith(f"{path}: "):
        msg = msg[len(path) + 2 :]
    return msg
