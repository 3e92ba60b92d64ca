"""Indexing photo folders: what ``lookalike index`` does, as library calls.

::

    client = lookalike.connect("photos.db")
    report = index_paths(client, ["~/Pictures"])        # again later: only what changed is done
    print(report.added, report.skipped, report.removed, report.failures)

A folder index is a table with a standard schema (:func:`folder_schema`): ``id``, ``path`` (unique,
absolute), ``size``, ``mtime``, ``width``, ``height``, ``added_at``, the EXIF columns ``taken_at``,
``gps_lat``, ``gps_lon``, ``camera_make``, ``camera_model``, ``camera`` (make and model lowercased, for
filters) and ``orientation`` (:mod:`lookalike.images.exif`), the vector ``vec`` and, with a
multimodal model, ``tags``/``tag_scores``: each picture's top words of a vocabulary
(:mod:`lookalike.tags`), on by default (``tags=False`` leaves them out of a new table).

* **Older folder indexes** (made before the EXIF and tag columns) are upgraded when opened: the
  missing columns are added (``ALTER TABLE … ADD COLUMN``), the stored table description is
  updated, and the rows already there get their tags from their stored vectors (no inference) and
  their EXIF from the files' headers, once.
* **EXIF values that can't be right** (broken GPS, dates in the future or malformed) are stored as
  NULL and listed once per run in ``report.metadata_problems``, with one warning.

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
import types
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from lookalike.images.exif import read_photo_info
from lookalike.images.refs import is_url
from lookalike.paths import from_text, to_text
from lookalike.walk import DEFAULT_EXCLUDE, Found, ScanProblem, ScanResult, ScanStopped, scan_paths

if TYPE_CHECKING:
    from lookalike.client import Client
    from lookalike.embeddings.base import BaseEmbeddingFunction
    from lookalike.results import FailedItem
    from lookalike.session import Database
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

FOLDER_COLUMNS = (
    "id",
    "path",
    "size",
    "mtime",
    "width",
    "height",
    "added_at",
    "taken_at",
    "gps_lat",
    "gps_lon",
    "camera_make",
    "camera_model",
    "camera",
    "orientation",
    "vec",
    "tags",
    "tag_scores",
)
"""The columns of a folder index made now (``tags``/``tag_scores`` only with tags on)."""

EXIF_COLUMNS = ("taken_at", "gps_lat", "gps_lon", "camera_make", "camera_model", "camera", "orientation")
TAG_COLUMNS = ("tags", "tag_scores")
BACKFILL_ROWS = 500
"""Rows per transaction when an upgraded folder index fills its new columns for the rows it has."""

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
    metadata_problems: list[IndexFailure] = field(default_factory=list)
    """Files whose EXIF held values that can't be right (stored as NULL), one entry per file."""
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
            "metadata_problems": [{"path": f.path, "error": f.error} for f in self.metadata_problems],
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
        }


class _Stopped(BaseException):
    """Raised from a progress hook to abandon the chunk in flight (BaseException: no handler eats it)."""


# ---------------------------------------------------------------------- the table


def folder_schema(
    embed_fn: BaseEmbeddingFunction,
    table: str = DEFAULT_TABLE,
    *,
    tags: bool = True,
    vocabulary: str | os.PathLike[str] | list[str] | None = None,
    fulltext: bool = True,
) -> type[Any]:
    """The standard table model of a folder index, with ``vec`` filled from ``path`` by ``embed_fn``.

    ``tags`` adds ``tags``/``tag_scores`` (a multimodal model only: it scores pictures against words),
    from ``vocabulary`` (default: the built-in one; a file path is stored absolute). ``fulltext``
    marks ``tags`` for full-text search.
    """
    from lookalike.schema import Field, TableModel, TagsField

    annotations: dict[str, Any] = {
        "id": int | None,
        "path": str,
        "size": int | None,
        "mtime": float | None,
        "width": int | None,
        "height": int | None,
        "added_at": _dt.datetime | None,
        "taken_at": str | None,
        "gps_lat": float | None,
        "gps_lon": float | None,
        "camera_make": str | None,
        "camera_model": str | None,
        "camera": str | None,
        "orientation": int | None,
        "vec": list[float] | None,
    }
    namespace: dict[str, Any] = {
        "__tablename__": table,
        "__module__": __name__,
        "__annotations__": annotations,
        "id": Field(default=None, primary_key=True),
        "path": Field(unique=True),
        "size": Field(default=None),
        "mtime": Field(default=None),
        "width": Field(default=None),
        "height": Field(default=None),
        # a plain DateTime: SQLModel's own datetime type is stored in the table description as text,
        # which would bind datetimes as text when the table is opened again (refused by PostgreSQL)
        "added_at": Field(default=None, sa_type=sa.DateTime(timezone=True)),
        # ISO text: sorts by date on every engine and keeps the camera's UTC offset when it wrote one
        "taken_at": Field(default=None, sa_type=sa.Text),
        "gps_lat": Field(default=None),
        "gps_lon": Field(default=None),
        "camera_make": Field(default=None, sa_type=sa.Text),
        "camera_model": Field(default=None, sa_type=sa.Text),
        "camera": Field(default=None, sa_type=sa.Text),
        "orientation": Field(default=None),
        # "image": a path without an image suffix is still a picture, never a sentence
        "vec": embed_fn.VectorField(source_field="path", source_type="image"),
    }
    if tags and embed_fn.multimodal:
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = os.path.abspath(os.path.expanduser(os.fspath(vocabulary)))
        annotations["tags"] = str | None
        annotations["tag_scores"] = dict[str, float] | None
        namespace["tags"] = TagsField(
            "vec", top=5, vocabulary=vocabulary, scores_field="tag_scores", fulltext=fulltext
        )
        namespace["tag_scores"] = Field(default=None, sa_type=sa.JSON)
    name = "".join(p.capitalize() for p in table.replace("-", "_").split("_") if p) or "Images"
    # new_class picks TableModel's metaclass, as a class statement would
    return types.new_class(f"{name}Folder", (TableModel,), exec_body=lambda ns: ns.update(namespace))


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
    tags: bool = True,
    vocabulary: str | os.PathLike[str] | list[str] | None = None,
) -> Table:
    """Open the folder index ``table``, creating it with ``model`` (default: the library's) if needed.

    The model is loaded first (downloaded if need be), so a model that can't be had raises
    (:class:`~lookalike.errors.ModelNotFoundError`, ...) before anything is created. A table with
    vectors keeps the model it was made with; naming another is an error rather than a table of
    incomparable vectors. A table without vectors (a first run that failed) takes the model given.
    ``precision`` runs a local model at ``"int8"`` or ``"fp32"``; ``"auto"`` takes int8 for the known
    models (:func:`~lookalike.embeddings.model_files.list_models`) that have an int8 export, and leaves
    any other model at its own precision. Other providers have no precision and ignore it.
    ``tags``/``vocabulary``: see :func:`folder_schema`; they apply to a table made (or upgraded from
    an older version) now. A folder index from an older version gains the EXIF and tag columns here
    (see the module docstring).
    """
    from lookalike.embeddings import BaseEmbeddingFunction, EmbeddingFunction

    wanted = model if isinstance(model, BaseEmbeddingFunction) or model is None else EmbeddingFunction(model)
    if not client.has_table(table):
        embed = _ready(wanted if wanted is not None else EmbeddingFunction(), precision)
        schema = folder_schema(embed, table, tags=tags, vocabulary=vocabulary)
        return client.create_table(schema=schema, if_exists="skip")
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
        _check_vocabulary(tbl, vocabulary)
        if _upgrade_needed(tbl, stored, tags):
            tbl = _upgrade(client, tbl, stored, tags=tags, vocabulary=vocabulary)
        return tbl if embed is stored else client.open_table(table, embed_fn=embed)
    t = tbl.spec.sa_table
    with tbl.database.connection(write=False) as conn:
        vectors = conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.vec.is_not(None))).scalar()
    if vectors:
        held = stored.full_name if stored is not None else "another model"
        raise ConfigurationError(
            f"table {table!r} holds {vectors} vectors of {held}, and vectors of {wanted.full_name} "
            f"can't be compared with them: index into another table (--table NAME) or database "
            "(--db FILE), or leave the model out to keep using the table's"
        )
    # nothing to keep: a first run whose model never loaded left an empty table behind
    embed = _ready(wanted, precision)
    client.drop_table(table)
    _FailureLog.clear(client.database, table)
    schema = folder_schema(embed, table, tags=tags, vocabulary=vocabulary)
    return client.create_table(schema=schema, if_exists="skip")


# ---------------------------------------------------------------------- older folder indexes


def _check_vocabulary(tbl: Table, vocabulary: str | os.PathLike[str] | list[str] | None) -> None:
    """A vocabulary named for a table already tagged with another one is an error, not a silent mix."""
    from lookalike.schema import tag_fields

    spec = tag_fields(tbl.spec.sa_table).get("tags")
    if vocabulary is None or spec is None:
        return
    asked = (
        os.path.abspath(os.path.expanduser(os.fspath(vocabulary)))
        if isinstance(vocabulary, (str, os.PathLike))
        else [str(v) for v in vocabulary]
    )
    if asked != spec.vocabulary:
        raise ConfigurationError(
            f"table {tbl.name!r} is tagged with {'the built-in vocabulary' if spec.vocabulary is None else 'another vocabulary'}; "
            "index into another table (--table NAME) to tag with this one"
        )


def _upgrade_needed(tbl: Table, embed: BaseEmbeddingFunction | None, tags: bool) -> bool:
    columns = tbl.spec.sa_table.c
    if any(c not in columns for c in EXIF_COLUMNS):
        return True
    return tags and embed is not None and embed.multimodal and "tags" not in columns


def _upgrade(
    client: Client,
    tbl: Table,
    embed: BaseEmbeddingFunction | None,
    *,
    tags: bool,
    vocabulary: str | os.PathLike[str] | list[str] | None,
) -> Table:
    """Bring a folder index made by an older version up to today's columns, then fill them for the
    rows it holds (tags from stored vectors, EXIF from the files' headers).

    Columns are added with ``ALTER TABLE … ADD COLUMN`` (every engine has it; added columns are NULL
    in existing rows) and the stored description gains them, in one transaction.
    """
    from lookalike.schema import TableSpec

    if embed is None:
        raise ConfigurationError(f"table {tbl.name!r} has no stored model; name the model to index with")
    # the full-text mark is left for create_fts_index below: it builds the index over existing rows
    wanted = TableSpec.from_model(
        folder_schema(embed, tbl.name, tags=tags, vocabulary=vocabulary, fulltext=False)
    )
    have = tbl.spec.sa_table.c
    added = [col for col in wanted.sa_table.columns if col.name not in have]
    engine = tbl.database.engine
    desc = tbl.spec.describe()
    fresh = {c["name"]: c for c in wanted.describe()["columns"]}
    desc["columns"] = [*desc["columns"], *(fresh[c.name] for c in added)]
    for column in desc["columns"]:
        if column["name"] == "added_at":  # older versions described it as text (see folder_schema)
            column["type"] = "datetime"
    with tbl.database.connection(write=True) as conn:
        for col in added:
            # CreateColumn compiled by the connection: the column's name and type in its own dialect
            definition = sa.schema.CreateColumn(col).compile(conn)
            conn.execute(sa.text(f"ALTER TABLE {engine.quote(tbl.name)} ADD COLUMN {definition}"))
        engine.save_description(conn, TableSpec.from_description(desc, {"vec": embed}))
    upgraded = client.open_table(tbl.name, embed_fn=embed)  # the columns as stored now
    names = {c.name for c in added}
    if names & set(EXIF_COLUMNS):
        _backfill_exif(upgraded)
    if "tags" in names:
        _backfill_tags(upgraded)
        upgraded.create_fts_index("tags")
    return upgraded


def _backfill_tags(tbl: Table) -> None:
    """Tags for the rows that have a vector, from the stored vectors (a matrix product, no inference)."""
    from lookalike.ingest import Ingest

    ingest = Ingest(tbl.spec, tbl.database)
    with tbl.database.connection(write=False) as conn:
        ids, vectors = tbl.database.engine.read_vectors(conn, tbl.spec, "vec")
    for start in range(0, len(ids), BACKFILL_ROWS):
        rows = [(j, {"vec": v}) for j, v in enumerate(vectors[start : start + BACKFILL_ROWS])]
        ingest.fill_tags(rows)
        values = [
            {"_key": rid, "tags": row.get("tags"), "tag_scores": row.get("tag_scores")}
            for rid, (_, row) in zip(ids[start : start + BACKFILL_ROWS], rows)
        ]
        _update_rows(tbl, values)


def _backfill_exif(tbl: Table) -> None:
    """EXIF columns for the rows of local files (URL rows have none to read)."""
    t = tbl.spec.sa_table
    with tbl.database.connection(write=False) as conn:
        rows = [(rid, path) for rid, path in conn.execute(sa.select(t.c.id, t.c.path)) if not is_url(path)]
    for start in range(0, len(rows), BACKFILL_ROWS):
        values = []
        for rid, path in rows[start : start + BACKFILL_ROWS]:
            info = read_photo_info(from_text(path))
            values.append({"_key": rid, **{c: v for c, v in info.columns().items() if c in EXIF_COLUMNS}})
        _update_rows(tbl, values)


def _update_rows(tbl: Table, values: list[dict[str, Any]]) -> None:
    """Set derived columns of many rows by id in one statement (no vector or source changes, so the
    table's insert path has nothing to do)."""
    if not values:
        return
    t = tbl.spec.sa_table
    columns = [k for k in values[0] if k != "_key"]
    # bound under other names: SQLAlchemy keeps a column's own name for its SET clause
    stmt = (
        sa.update(t)
        .where(t.c.id == sa.bindparam("_key"))
        .values({c: sa.bindparam(f"v_{c}") for c in columns})
    )
    params = [{"_key": v["_key"], **{f"v_{c}": v[c] for c in columns}} for v in values]
    with tbl.database.connection(write=True) as conn:
        conn.execute(stmt, params)


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
                if exc.precision != "int8":  # anything but "no int8 export" is a real problem
                    raise
        precision = None
    embed = _at_precision(embed, precision)
    embed.ensure_ready("image")
    return embed


def _at_precision(embed: BaseEmbeddingFunction, precision: str | None) -> BaseEmbeddingFunction:
    """``embed`` running at ``precision`` when it is a local model with another one (else itself)."""
    if precision is None or embed.provider != "local":
        return embed
    if getattr(embed, "precision", precision) == precision:
        return embed
    from lookalike.embeddings.registry import build_from_config

    config = dict(embed.config())
    config["options"] = {**(config.get("options") or {}), "precision": precision}
    return build_from_config(config)


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

    def __init__(self, db: Database, table: str, settings: str) -> None:
        self.db = db
        self.table = table
        self.settings = settings
        with db.connection(write=True) as conn:
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
    def clear(db: Database, table: str) -> None:
        """Forget every failure of ``table`` (it was made anew)."""
        with db.connection(write=True) as conn:
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
        with self.db.connection(write=True) as conn:
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


# ---------------------------------------------------------------------- indexing: the steps
#
# index_paths runs these in order: check the arguments, load the model (open_folder_table), scan the
# paths (_scan), diff the files against the index (_read_index, _diff_index), detect renames among
# the new files and vanished rows (_detect_renames), write renames and removals (_apply_renames),
# plan the work left (_plan_work) and index it in committed chunks (_index_chunks).

_FailedFile = tuple[str, int | None, float | None, str]
"""A file that failed: (path, size, mtime, error), as the failure log stores it."""


@dataclass(frozen=True)
class _Work:
    """A file or URL to embed."""

    path: str  # as stored (text)
    fspath: str | None  # as opened; None for URLs
    size: int | None
    mtime: float | None
    replaces: Any = None  # the id of the row of the file's earlier content


@dataclass(frozen=True)
class _Indexed:
    """A row of the folder index, as the diff needs it."""

    id: Any
    path: str
    size: int | None
    mtime: float | None
    has_vector: bool


@dataclass
class _Diff:
    """How the files found compare with the index."""

    new: list[_Work] = field(default_factory=list)  # paths the index does not hold
    changed: list[_Work] = field(default_factory=list)  # other size or mtime, or no vector yet
    unchanged: int = 0  # same size and mtime, with a vector: skipped without being read
    gone: list[_Indexed] = field(default_factory=list)  # rows whose files were not found


@dataclass
class _Renames:
    """New files that are vanished rows' files under another name, and what is left on either side."""

    moved: list[tuple[_Work, Any]] = field(default_factory=list)  # (file, id of the row it takes)
    new: list[_Work] = field(default_factory=list)  # new files that are not renames
    gone: list[_Indexed] = field(default_factory=list)  # vanished rows no file took: to delete


class _Run:
    """One indexing run: its report, the progress hook and the stop check."""

    def __init__(
        self,
        table: str,
        on_progress: Callable[[IndexReport], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.report = IndexReport(table=table)
        self._metadata_noted: set[str] = set()
        self._on_progress = on_progress
        self._should_stop = should_stop
        self._started = time.monotonic()

    def tell(self) -> None:
        """Hand the report to the progress hook."""
        if self._on_progress is not None:
            self._on_progress(self.report)

    def enter(self, phase: str) -> None:
        """Start a phase, and say so."""
        self.report.phase = phase
        self.tell()

    def stop_requested(self) -> bool:
        return self._should_stop is not None and self._should_stop()

    def note_metadata(self, path: str, problems: Sequence[str]) -> None:
        """Remember a file's unusable EXIF values, once per run (a chunk written again one file at a
        time reads the file again)."""
        if problems and path not in self._metadata_noted:
            self._metadata_noted.add(path)
            self.report.metadata_problems.append(IndexFailure(path, "; ".join(problems)))

    def warn_metadata(self) -> None:
        """One warning for the run's unusable EXIF values (stored as NULL), naming the files."""
        found = self.report.metadata_problems
        if found:
            shown = "; ".join(str(f) for f in found[:5])
            more = f"; and {len(found) - 5} more files" if len(found) > 5 else ""
            warnings.warn(
                f"EXIF values stored as NULL in {len(found)} file(s): {shown}{more}",
                UserWarning,
                stacklevel=3,
            )

    def finish(self, *, stopped: bool = False) -> IndexReport:
        """The report, with the time taken (and whether the run stopped early)."""
        if stopped:
            self.report.stopped = True
        self.warn_metadata()
        self.report.seconds = time.monotonic() - self._started
        return self.report


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
    tags: bool = True,
    vocabulary: str | os.PathLike[str] | list[str] | None = None,
) -> IndexReport:
    """Index image files under ``paths`` (and URLs listed in ``urls_file``) into a folder table.

    Creates ``table`` with :func:`folder_schema` on first use (``model`` picks the embedding model:
    a ``"provider/model"`` name, a ``local/<directory>`` or a directory, or an embedding function;
    default the library's; ``precision`` runs a local one at ``"int8"``, ``"fp32"`` or ``"auto"``: see
    :func:`open_folder_table`). See the module docstring for the walk, incremental work, remembered
    failures and stops. ``on_progress(report)`` is called as work advances. Bad files don't stop the
    run: they are listed in ``report.failures``; unusable EXIF values in ``report.metadata_problems``.
    ``tags=False`` makes a new table without tags; ``vocabulary`` tags with your own phrases (a file,
    one a line, or a list) instead of the built-in ones. Raises :class:`ConfigurationError` for a path that
    doesn't exist, and the model's error (e.g. :class:`ModelNotFoundError`) before any file is read
    when the model can't be loaded.
    """
    run = _Run(table, on_progress, should_stop)
    roots = _roots(paths)
    if chunk_size <= 0:
        raise ConfigurationError(f"chunk_size must be positive, got {chunk_size!r}")
    urls = _read_urls(urls_file) if urls_file is not None else []
    run.tell()
    # the model loads here
    tbl = open_folder_table(client, table, model, precision=precision, tags=tags, vocabulary=vocabulary)
    run.report.table = tbl.name
    run.enter("scanning")
    scan = _scan(run, roots, recursive=recursive, exclude=exclude, follow_links=follow_links)
    if scan is None:
        return run.finish(stopped=True)  # nothing may be removed on a partial walk
    log = _FailureLog(tbl.database, tbl.name, _run_settings(tbl))
    new_failures = []
    for problem in scan.problems:
        failure = _note_problem(run.report, log, problem, retry_failed)
        if failure is not None:
            new_failures.append(failure)

    text_roots = [to_text(r) for r in roots]
    known = _read_index(tbl)
    diff = _diff_index(scan.files, known, text_roots, scan.unreadable)
    run.report.skipped += diff.unchanged
    run.enter("checking")
    try:
        renames = _detect_renames(tbl, diff.new, diff.gone, run.stop_requested)
    except _Stopped:
        return run.finish(stopped=True)  # before anything was written: the next run starts over
    _apply_renames(tbl, renames, run.report)

    todo = _plan_work([*renames.new, *diff.changed], urls, known, log, retry_failed, run.report)
    log.update(new_failures, _vanished_records(log, scan, text_roots))
    _index_chunks(tbl, todo, chunk_size, log, run)
    return run.finish()


def _roots(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The paths to index, absolute; a path that doesn't exist is a :class:`ConfigurationError`."""
    roots = [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]
    missing = [r for r in roots if not os.path.lexists(r)]
    if missing:
        raise ConfigurationError(f"no such file or folder: {to_text(missing[0])}")
    return roots


def _scan(
    run: _Run, roots: list[str], *, recursive: bool, exclude: Sequence[str], follow_links: bool
) -> ScanResult | None:
    """Walk ``roots`` (the report counts the files found as it goes); ``None`` when stopped."""

    def found(n: int) -> None:
        run.report.found = n
        run.tell()

    try:
        scan = scan_paths(
            roots,
            recursive=recursive,
            exclude=exclude,
            follow_links=follow_links,
            should_stop=run.stop_requested,
            on_found=found,
        )
    except ScanStopped:
        return None
    run.report.found = len(scan.files)
    run.report.skipped_entries = scan.summary()
    return scan


def _run_settings(tbl: Table) -> str:
    """What besides the file decides whether it indexes: the model and the pixel limit."""
    import json

    from lookalike.images import get_max_pixels

    embed = tbl.vector_field("vec").embed_fn
    identity = _model_identity(embed) if embed is not None else None
    text = json.dumps({"model": identity, "max_pixels": get_max_pixels()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _note_problem(
    report: IndexReport, log: _FailureLog, problem: ScanProblem, retry_failed: bool
) -> _FailedFile | None:
    """Report a problem of the walk; returns it for the failure log when it is new (or changed)."""
    old = None if retry_failed else log.unchanged(problem.path, problem.size, problem.mtime)
    if old is not None:
        report.known_failures.append(IndexFailure(problem.path, problem.error))
        return None
    report.failures.append(IndexFailure(problem.path, problem.error))
    return (problem.path, problem.size, problem.mtime, problem.error)


def _read_index(tbl: Table) -> dict[str, _Indexed]:
    """Every row of the folder index by path (without the vectors: only whether there is one)."""
    t = tbl.spec.sa_table
    query = sa.select(t.c.id, t.c.path, t.c.size, t.c.mtime, t.c.vec.is_not(None))
    with tbl.database.connection(write=False) as conn:
        return {
            path: _Indexed(rid, path, size, mtime, bool(has_vector))
            for rid, path, size, mtime, has_vector in conn.execute(query)
        }


def _diff_index(
    files: Iterable[Found], known: Mapping[str, _Indexed], roots: Sequence[str], unreadable: Sequence[str]
) -> _Diff:
    """Sort the files found into new, changed and unchanged, and find the rows whose files are gone.

    A row is gone only when its file lies under ``roots`` (text paths) and not under a folder that
    could not be read this time: what the walk did not see is not known to be gone. URL rows never are.
    """
    diff = _Diff()
    seen = set()
    for f in files:
        seen.add(f.path)
        row = known.get(f.path)
        if row is None:
            diff.new.append(_Work(f.path, f.fspath, f.size, f.mtime))
        elif row.size == f.size and row.mtime == f.mtime and row.has_vector:
            diff.unchanged += 1
        else:
            diff.changed.append(_Work(f.path, f.fspath, f.size, f.mtime, row.id))
    diff.gone = [
        row
        for path, row in known.items()
        if not is_url(path) and path not in seen and _under(path, roots) and not _under(path, unreadable)
    ]
    return diff


def _detect_renames(tbl: Table, new: list[_Work], gone: list[_Indexed], stop: Callable[[], bool]) -> _Renames:
    """Pair new files with vanished rows of the same size and content hash (the hash the ingest
    recorded for the row's source); each row goes to one file at most. Reads only the new files whose
    size matches a vanished row's. Raises :class:`_Stopped` when ``stop()`` says so (nothing written).
    """
    by_size: dict[int, list[_Indexed]] = {}
    for row in gone:
        if row.size is not None:
            by_size.setdefault(row.size, []).append(row)
    candidates = [(w, by_size[w.size]) for w in new if w.size is not None and w.size in by_size]
    if not candidates:
        return _Renames([], new, gone)
    recorded = tbl.source_info("vec")
    moved: list[tuple[_Work, Any]] = []
    taken: set[Any] = set()
    for w, rows in candidates:
        if stop():
            raise _Stopped
        digest = _file_hash(w.fspath or w.path)
        for row in rows:
            rec = recorded.get(str(row.id))
            if digest and rec is not None and rec.hash == digest and row.id not in taken:
                moved.append((w, row.id))
                taken.add(row.id)
                break
    paths = {w.path for w, _ in moved}
    return _Renames(
        moved, [w for w in new if w.path not in paths], [row for row in gone if row.id not in taken]
    )


def _apply_renames(tbl: Table, renames: _Renames, report: IndexReport) -> None:
    """Give each moved file its old row (and vector) and delete the rows left, in one transaction."""
    if renames.moved or renames.gone:
        with tbl.database.session():
            for w, rid in renames.moved:
                tbl.update({"path": w.path, "mtime": w.mtime, "vec": _vector_of(tbl, rid)}, {"id": rid})
            ids = [row.id for row in renames.gone]
            for start in range(0, len(ids), 500):
                tbl.delete({"id": {"$in": ids[start : start + 500]}})
    report.reused = len(renames.moved)
    report.removed = len(renames.gone)


def _vector_of(tbl: Table, rid: Any) -> Any:
    # update() re-embeds when the source column changes unless the vector is given: give it back
    t = tbl.spec.sa_table
    with tbl.database.connection(write=False) as conn:
        return conn.execute(sa.select(t.c.vec).where(t.c.id == rid)).scalar()


def _plan_work(
    files: list[_Work],
    urls: list[str],
    known: Mapping[str, _Indexed],
    log: _FailureLog,
    retry_failed: bool,
    report: IndexReport,
) -> list[_Work]:
    """The files and URLs to embed: URLs already indexed are skipped, and what failed before and
    hasn't changed since is counted in ``known_failures`` (unless ``retry_failed``)."""
    new_urls = [u for u in urls if u not in known]
    report.skipped += len(urls) - len(new_urls)
    todo = []
    for item in [*files, *(_Work(u, None, None, None) for u in new_urls)]:
        error = None if retry_failed else log.unchanged(item.path, item.size, item.mtime)
        if error is None:
            todo.append(item)
        else:
            report.known_failures.append(IndexFailure(item.path, error))
    return todo


def _vanished_records(log: _FailureLog, scan: ScanResult, roots: Sequence[str]) -> list[str]:
    """Recorded failures of files that are gone (or fine and out of the walk's reach now)."""
    seen = {f.path for f in scan.files}
    problem_paths = {p.path for p in scan.problems}
    return [
        p
        for p in log.recorded
        if not is_url(p)
        and p not in seen
        and p not in problem_paths
        and _under(p, roots)
        and not _under(p, scan.unreadable)
    ]


def _index_chunks(tbl: Table, todo: list[_Work], chunk_size: int, log: _FailureLog, run: _Run) -> None:
    """Embed and write ``todo`` in committed chunks, remembering each chunk's failures."""
    run.report.total = len(todo)
    run.enter("indexing")
    for start in range(0, len(todo), chunk_size):
        if run.stop_requested():
            run.report.stopped = True
            return
        chunk = todo[start : start + chunk_size]
        try:
            failed = _index_chunk(tbl, chunk, run)
        except _Stopped:
            run.report.stopped = True
            return
        log.update(failed, [w.path for w in chunk])
        run.tell()


def _index_chunk(tbl: Table, chunk: list[_Work], run: _Run) -> list[_FailedFile]:
    """Embed and write one chunk; returns its failures."""
    report = run.report
    rows = _chunk_rows(chunk, run)
    base = report.done

    def progress(done: int, _total: int) -> None:
        # finer than a chunk: a big model takes seconds per chunk, and the bar should move meanwhile
        report.done = base + min(done, len(chunk))
        run.tell()
        if run.stop_requested():
            raise _Stopped  # the chunk is rolled back; committed chunks stay

    replaced = [w.replaces for w in chunk if w.replaces is not None]
    try:
        # a changed file is a new picture: its old row (and vector) goes and a new one is embedded,
        # both in the chunk's one transaction, so a crash or a failed write leaves the old row indexed
        result = tbl.replace_rows(rows, replaced, on_error="skip", progress=progress)
    except SETUP_ERRORS:
        raise  # no single file causes these: stop the run with one message
    except LookalikeError as exc:
        report.done = base
        if len(chunk) == 1:
            w = chunk[0]
            report.failures.append(IndexFailure(w.path, _failure_text(exc)))
            report.done = base + 1
            return [(w.path, w.size, w.mtime, report.failures[-1].error)]
        # one item must never cost the others their place: write them one at a time
        return [f for w in chunk for f in _index_chunk(tbl, [w], run)]
    for item in result.failed:
        if isinstance(item.error, SETUP_ERRORS):  # a rejected API key fails every item alike
            raise item.error
    report.done = base + len(chunk)
    return _count_results(report, chunk, result.failed)


def _chunk_rows(chunk: list[_Work], run: _Run) -> list[dict[str, Any]]:
    """The rows to insert for a chunk (the vector is filled from ``path`` by the table's model; the
    pixel size and EXIF come from the file's header, which is all that is read here)."""
    now = _dt.datetime.now(_dt.timezone.utc)
    rows = []
    for w in chunk:
        row: dict[str, Any] = {"path": w.path, "size": w.size, "mtime": w.mtime, "added_at": now}
        if w.fspath is not None:
            info = read_photo_info(w.fspath)
            run.note_metadata(w.path, info.problems)
            row.update(info.columns())
        else:
            row.update(width=None, height=None)
        rows.append(row)
    return rows


def _count_results(
    report: IndexReport, chunk: list[_Work], failed_items: list[FailedItem]
) -> list[_FailedFile]:
    """Count a written chunk's files as added, updated or failed; returns the failures."""
    failed: list[_FailedFile] = []
    for item in failed_items:
        w = chunk[item.index]
        error = _failure_text(item.error)
        report.failures.append(IndexFailure(w.path, error))
        failed.append((w.path, w.size, w.mtime, error))
    failed_at = {item.index for item in failed_items}
    for i, w in enumerate(chunk):
        if i in failed_at:
            continue
        if w.replaces is None:
            report.added += 1
        else:
            report.updated += 1
    return failed


def _failure_text(exc: LookalikeError) -> str:
    """What went wrong, without where: the report names the file already."""
    return " ".join([exc.detail, *exc.remarks])
