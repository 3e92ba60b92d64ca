"""The ``lookalike`` command: a thin shell over the library.

Each command builds the library object, makes one library call and prints the result; names mirror
the library (``index`` → :func:`lookalike.folders.index_paths`, ``search`` → ``Table.search``,
``dupes`` → :func:`lookalike.duplicates.find_duplicates`, ``copy`` → ``lookalike.copy_table``,
``serve`` → :func:`lookalike.server.serve`).

Exit codes: 0 success; 1 some items failed (``index``: new failures only) or the library reported an
error; 2 a usage error (bad flag, missing path, unknown name, no index yet — the library's
:class:`~lookalike.ConfigurationError`); 3 the model could not be set up (not downloadable, no API key,
a missing extra: nothing was indexed); 130 stopped by Ctrl-C (work committed so far is kept). Errors
are one line on stderr; ``--debug`` shows tracebacks.

Imports are lazy so that ``lookalike search`` from a cold process loads only what it needs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

import typer
from typer import core as _typer_core

if TYPE_CHECKING:
    from lookalike.client import Client
    from lookalike.folders import IndexReport

EXIT_CODES_HELP = (
    "Exit codes: 0 ok · 1 some items failed · 2 usage error or no index yet · "
    "3 the model could not be set up · 130 stopped by Ctrl-C (committed work is kept)."
)


def _tidy_help() -> None:
    """Keep typer from printing a type after flags and arguments (``--json <bool>``, ``<list[Path]>``).

    Those read as if a flag took a value; options that do take one show their metavar instead.
    """
    option_type = _typer_core.TyperOption.display_type_rich

    def option(self: Any, ctx: Any) -> str | None:
        return None if self.is_flag else option_type(self, ctx)

    # typer has no setting for this: patching its two help renderers is the point (hence the ignores)
    _typer_core.TyperOption.display_type_rich = option  # type: ignore[method-assign]
    _typer_core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]


_tidy_help()

app = typer.Typer(
    name="lookalike",
    help="Find images that look alike — by image or by words — and find duplicates.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
models_app = typer.Typer(help="List and download embedding models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

DEFAULT_DB = "lookalike.db"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SETUP, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

_state = {"debug": bool(os.environ.get("LOOKALIKE_DEBUG"))}
T = TypeVar("T")

DbOption = typer.Option(
    DEFAULT_DB, "--db", metavar="FILE|URL", help="Database file or URL (postgresql://…, tidb://…)."
)
TableOption = typer.Option("images", "--table", "-t", metavar="NAME", help="Table name.")
MaxPixelsOption = typer.Option(
    None,
    "--max-pixels",
    metavar="N",
    help="Refuse images over N pixels (e.g. 300M; default 178M): a guard against decompression bombs.",
)
JsonOption = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


# ---------------------------------------------------------------------- plumbing


def _err(message: str) -> None:
    print(f"lookalike: {message}", file=sys.stderr)


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    _err(message)
    raise typer.Exit(code)


def _call(fn: Callable[[], T], hint: Callable[[Exception], str] | None = None) -> T:
    """Run a library call; turn library errors into one line and an exit code.

    ``hint(exc)`` may add advice that only makes sense on the command line.
    """
    from lookalike.errors import ConfigurationError, LookalikeError
    from lookalike.folders import SETUP_ERRORS

    try:
        return fn()
    except LookalikeError as exc:
        if _state["debug"]:
            raise
        message = str(exc) + (hint(exc) if hint is not None else "")
        if isinstance(exc, SETUP_ERRORS):
            _fail(message, EXIT_SETUP)
        _fail(message, EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_FAILED)


def _set_max_pixels(value: str | None) -> None:
    if value is None:
        return
    from lookalike.images import set_max_pixels

    text = value.strip().upper().removesuffix("P")
    scale = 1_000_000 if text.endswith("M") else 1
    try:
        pixels = int(float(text.removesuffix("M")) * scale)
    except ValueError:
        _fail(f"--max-pixels takes a number of pixels such as 300M or 300000000, not {value!r}")
    if pixels <= 0:
        _fail(f"--max-pixels must be positive, got {value!r}")
    set_max_pixels(pixels)


def _connect(db: str) -> Any:
    import lookalike

    return _call(lambda: lookalike.connect(db))


def _local_db(db: str) -> Path | None:
    """The file behind ``--db`` when it names a SQLite file (``None`` for server URLs)."""
    if db.startswith("sqlite:///"):
        return Path(db.removeprefix("sqlite:///")).expanduser()
    if "://" in db:
        return None
    return Path(db).expanduser()


def _require_index(db: str) -> None:
    """Commands that only read must not create an empty database where there is none."""
    path = _local_db(db)
    if path is not None and not path.exists():
        _fail(f"no index at {db} — run `lookalike index <folder>` first, or pass --db")


def _open(db: str, table: str) -> Any:
    _require_index(db)
    client = _connect(db)
    if not _call(lambda: client.has_table(table)):
        tables = _call(client.list_tables)
        known = f" (tables here: {', '.join(tables)})" if tables else ""
        client.close()
        _fail(f"no table {table!r} in {db} — run `lookalike index <folder>` first, or pass --table{known}")
    return client, _call(lambda: client.open_table(table))


def _json_default(value: Any) -> Any:
    from lookalike._json import to_jsonable

    return to_jsonable(value, by_attribute=True)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_json_default, ensure_ascii=False) + "\n")


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Find images that look alike — by image or by words — and find duplicates."""
    from lookalike.images import set_pixel_limit_advice

    if debug:
        _state["debug"] = True
    # the library's errors then give its advice in command-line terms (a flag, not a Python call)
    set_pixel_limit_advice("raise it with --max-pixels N")


# ---------------------------------------------------------------------- index


class Precision(str, Enum):
    auto = "auto"
    int8 = "int8"
    fp32 = "fp32"


@app.command(epilog=EXIT_CODES_HELP)
def index(
    paths: list[Path] = typer.Argument(None, metavar="PATH", help="Image files or folders to index."),
    db: str = DbOption,
    table: str = TableOption,
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        metavar="MODEL",
        help="Embedding model: local/clip-vit-b-32 (default), another local/<name>, a folder holding "
        "a model's files (./my-clip), or jina_ai/…",
    ),
    precision: Precision = typer.Option(
        Precision.auto,
        "--precision",
        help="Local models: int8 (faster; vectors within cosine 0.999 of fp32 on ViT-B/32), fp32, or "
        "auto: int8 for the known models (lookalike models list), fp32 for a folder or other repo.",
    ),
    recursive: bool = typer.Option(True, "--recursive/--no-recursive", help="Descend into sub-folders."),
    follow_links: bool = typer.Option(
        False, "--follow-links", help="Follow links to folders outside the folders given (like find -L)."
    ),
    exclude: list[str] = typer.Option(
        None, "--exclude", "-x", metavar="GLOB", help="Skip files/folders matching this glob (repeatable)."
    ),
    urls: Path | None = typer.Option(
        None, "--urls", metavar="FILE", help="A file with one image URL per line."
    ),
    errors: Path | None = typer.Option(
        None, "--errors", metavar="FILE", help="Write the failures to this file (JSON lines)."
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Try again the files that failed before and haven't changed."
    ),
    max_pixels: str | None = MaxPixelsOption,
    chunk_size: int = typer.Option(64, "--chunk-size", min=1, metavar="N", help="Files per committed chunk."),
    tags: bool = typer.Option(
        True, "--tags/--no-tags", help="Give a new index each picture's top words (tags), from the model."
    ),
    vocabulary: Path | None = typer.Option(
        None,
        "--vocabulary",
        metavar="FILE",
        help="Tag with these phrases (one a line) instead of the built-in ones.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Index image folders (incremental: unchanged files are skipped, renames reuse vectors).

    Files that failed before and haven't changed are counted as known failures and not tried again;
    the exit code is 1 only for new failures.
    """
    from lookalike.folders import DEFAULT_EXCLUDE, index_paths

    _check_index_inputs(paths or [], urls)
    _set_max_pixels(max_pixels)
    progress = _IndexProgress(enabled=not as_json)
    report = _run_index(
        db,
        progress,
        lambda client, should_stop: index_paths(
            client,
            [str(p) for p in paths or []],
            table=table,
            model=model,
            precision=precision.value,
            recursive=recursive,
            follow_links=follow_links,
            exclude=(*DEFAULT_EXCLUDE, *(exclude or [])),
            urls_file=urls,
            retry_failed=retry_failed,
            on_progress=progress.update,
            should_stop=should_stop,
            chunk_size=chunk_size,
            tags=tags,
            vocabulary=vocabulary,
        ),
    )
    _finish_index(report, errors, as_json)


def _check_index_inputs(paths: list[Path], urls: Path | None) -> None:
    """Usage errors ``index`` can tell before connecting: nothing to index, or a path that isn't there."""
    if not paths and urls is None:
        _fail("give at least one PATH or --urls FILE")
    for p in paths:
        if not os.path.lexists(p):
            _fail(f"no such file or folder: {_printable(p)}")
    if urls is not None and not urls.is_file():
        _fail(f"no such URL list: {urls}")


class _StopOnSigint:
    """Ctrl-C asks ``index`` to stop after the chunk in flight; a second one aborts at once."""

    def __init__(self, progress: _IndexProgress) -> None:
        self.progress = progress
        self._requested = False
        self._previous: Any = None

    def requested(self) -> bool:
        """Whether Ctrl-C was pressed (the library's ``should_stop``)."""
        return self._requested

    def _on_sigint(self, _sig: int, _frame: Any) -> None:
        # while the model loads there is nothing to keep: stop at once
        if self._requested or self.progress.phase == "loading model":
            raise KeyboardInterrupt
        self._requested = True
        self.progress.note("stopping… (Ctrl-C again to abort at once)")

    def __enter__(self) -> _StopOnSigint:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: Any) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _run_index(db: str, progress: _IndexProgress, run: Callable[[Client, Callable[[], bool]], T]) -> T:
    """Connect to ``db`` and call ``run(client, should_stop)`` with the progress shown and Ctrl-C
    handled; the client is closed after. A database file this call created is removed again when
    the model could not be set up, so no empty database is mistaken for an index later.
    """
    local = _local_db(db)
    fresh = local if local is not None and not local.exists() else None
    client = _connect(db)
    try:
        with _StopOnSigint(progress) as stop, progress:
            return _call(lambda: run(client, stop.requested))
    except KeyboardInterrupt:
        _err("aborted; chunks committed before the interrupt are kept")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except typer.Exit as exc:
        if fresh is not None and exc.exit_code == EXIT_SETUP:
            client.close()
            _discard_database(fresh)
        raise
    finally:
        if not client.closed:
            client.close()


def _finish_index(report: IndexReport, errors: Path | None, as_json: bool) -> NoReturn:
    """Write the failures to ``errors``, print the report and exit with the run's code."""
    if errors is not None and (report.failures or report.known_failures):
        with open(errors, "w", encoding="utf-8") as fh:
            for known, items in ((False, report.failures), (True, report.known_failures)):
                for f in items:
                    fh.write(json.dumps({"path": f.path, "error": f.error, "known": known}) + "\n")
    if as_json:
        _print_json(report.to_dict())
    else:
        _print_index_summary(report)
    if report.stopped:
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_FAILED if report.failures else EXIT_OK)


def _discard_database(path: Path) -> None:
    """Remove a SQLite file this command created (and its journal files)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _printable(path: Any) -> str:
    """A path as text a terminal can print (names that aren't UTF-8 get replacement characters)."""
    from lookalike.paths import to_text

    return to_text(os.fspath(path))


class _IndexProgress:
    """What ``index`` is doing, on stderr while there is a terminal: model, walk, then a progress bar.

    The rate is the average since indexing began, shown once there are two seconds to average over
    (a first reading after one cached item would claim thousands of images a second). The columns fit
    80 characters, total included.
    """

    def __init__(self, enabled: bool, console: Any = None) -> None:
        self.enabled = enabled and (console is not None or sys.stderr.isatty())
        self.console = console
        self.phase = "loading model"
        self._progress: Any = None
        self._task: Any = None
        self._started: float | None = None

    def __enter__(self) -> _IndexProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=16),
                TextColumn("{task.fields[count]}"),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[failed]}"),
                console=self.console or Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("loading model", total=None, count="", rate="", failed="")
        return self

    def note(self, message: str) -> None:
        """A line above the bar (or on stderr)."""
        if self._progress is not None:
            self._progress.console.print(message)
        else:
            _err(message)

    def update(self, report: IndexReport) -> None:
        self.phase = report.phase
        if self._progress is None:
            return
        import time

        fields: dict[str, Any] = {"count": "", "rate": "", "failed": ""}
        if report.phase == "scanning":
            description, total, completed = "scanning", None, 0
            fields["count"] = f"{report.found:,} files"
        elif report.phase == "checking":
            description, total, completed = "checking", None, 0
            fields["count"] = f"{report.found:,} files"
        elif report.phase == "indexing":
            description, total, completed = "indexing", report.total or 1, report.done
            fields["count"] = f"{report.done:,}/{report.total:,}"
            now = time.monotonic()
            if self._started is None:
                self._started = now
            elapsed = now - self._started
            if elapsed >= 2.0 and report.done:
                fields["rate"] = f"{report.done / elapsed:.1f} img/s"
            if report.failed:
                fields["failed"] = f"{report.failed} failed"
        else:
            description, total, completed = report.phase, None, 0
        self._progress.update(self._task, description=description, total=total, completed=completed, **fields)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def _print_index_summary(report: IndexReport) -> None:
    parts = [
        f"{report.added} added",
        f"{report.updated} updated",
        f"{report.reused} renamed (vectors reused)",
        f"{report.skipped} unchanged",
        f"{report.removed} removed",
        f"{report.failed} failed",
    ]
    print(f"{report.table}: " + ", ".join(parts) + f" in {report.seconds:.1f} s")
    if report.skipped_entries:
        print(report.skipped_entries)
    if report.known_failures:
        n = len(report.known_failures)
        print(
            f"{n} known failure{'s' if n != 1 else ''} (unchanged since they failed; --retry-failed "
            "tries them again)"
        )
    if report.stopped:
        print("stopped early: the chunks committed so far are kept; run the command again to finish")
    if report.failures:
        print(f"failures ({report.failed}):", file=sys.stderr)
        for f in report.failures[:20]:
            print(f"  {f.path}: {f.error}", file=sys.stderr)
        if report.failed > 20:
            print(f"  … and {report.failed - 20} more (use --errors FILE)", file=sys.stderr)


# ---------------------------------------------------------------------- search


# the photo filters of `search` (lookalike.metadata.photo_filter)
TagOption = typer.Option(
    None, "--tag", metavar="WORDS", help="Only pictures tagged with these words (repeatable: all of them)."
)
SinceOption = typer.Option(
    None, "--since", metavar="DATE", help="Only pictures taken on or after YYYY, YYYY-MM or YYYY-MM-DD."
)
UntilOption = typer.Option(
    None, "--until", metavar="DATE", help="Only pictures taken up to the end of YYYY, YYYY-MM or YYYY-MM-DD."
)
NearOption = typer.Option(
    None, "--near", metavar="LAT,LON", help="Only pictures taken near this place, e.g. 48.85,2.35."
)
RadiusOption = typer.Option(
    None, "--radius", metavar="DISTANCE", help="How near for --near: 5km, 500m, 3mi (default 1km)."
)
CameraOption = typer.Option(
    None, "--camera", metavar="NAME", help='Only pictures from this camera (make or model, e.g. "Pixel 7").'
)


@app.command()
def search(
    terms: list[str] = typer.Argument(
        ...,
        metavar="QUERY...",
        help="Words, an image path or an image URL; or several terms joined by + and -, each with an "
        'optional weight: "2:golden retriever" + ./pool.jpg - grass (put -- before a term that '
        "starts with -).",
    ),
    db: str = DbOption,
    table: str = TableOption,
    limit: int = typer.Option(10, "--limit", "-n", min=1, metavar="N", help="How many results."),
    filter: str | None = typer.Option(
        None,
        "--filter",
        metavar="JSON",
        help='Keep rows matching a JSON object, e.g. \'{"width": {"$gt": 1000}}\'.',
    ),
    where: str | None = typer.Option(
        None, "--where", metavar="SQL", help="Keep rows matching an SQL condition, e.g. 'width > 1000'."
    ),
    as_json: bool = JsonOption,
    text: bool = typer.Option(
        False, "--text", help="Read every term as words, even if it looks like a path."
    ),
    image: bool = typer.Option(False, "--image", help="Read every term as an image path or URL."),
    tag: list[str] = TagOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    near: str | None = NearOption,
    radius: str | None = RadiusOption,
    camera: str | None = CameraOption,
    max_pixels: str | None = MaxPixelsOption,
) -> None:
    """Search by words or by example image; shows rank, score and path.

    Several terms make one query: "+" adds an example, "-" pushes away from one, and "N:" weighs a
    term (a term that is an existing file or a URL is an image, anything else words).

    Photo filters (--tag, --since/--until, --near/--radius, --camera) read the columns a folder
    index stores; --near keeps only pictures within the radius, so fewer than --limit may show.
    """
    if text and image:
        _fail("--text and --image exclude each other")
    photo = {"tag": tag or None, "since": since, "until": until, "near": near, "radius": radius}
    condition = _photo_condition(_search_condition(filter, where), {**photo, "camera": camera})
    _set_max_pixels(max_pixels)
    client, tbl = _open(db, table)
    builder = _search_builder(tbl, terms, "text" if text else "image" if image else None)
    builder = _call(lambda: builder.limit(limit))
    if condition is not None:
        builder = _call(lambda: builder.filter(condition))
    query = terms[0] if len(terms) == 1 else " ".join(terms)
    hits = _call(builder.to_list, hint=lambda exc: _words_hint(exc, query) if not image else "")
    client.close()
    if near is not None:  # the filter was the circle's bounding box: keep what lies in the circle
        from lookalike.metadata import within_radius

        hits = _call(lambda: within_radius(hits, near, radius))
    _print_hits(tbl, hits, as_json)


def _print_hits(tbl: Any, hits: list[dict[str, Any]], as_json: bool) -> None:
    """Search results as JSON, or one line each: rank, score and the row's label."""
    label = _label_column(tbl)
    if as_json:
        _print_json(
            [
                {"rank": i, "score": h["_score"], "distance": h["_distance"], **_public(h)}
                for i, h in enumerate(hits, 1)
            ]
        )
        return
    if not hits:
        print("no results", file=sys.stderr)
        return
    for i, h in enumerate(hits, 1):
        print(f"{i:>3}  {h['_score']:.4f}  {h.get(label, h.get(tbl.primary_key))}")


def _search_condition(filter: str | None, where: str | None) -> Any:
    """The ``--filter`` JSON object or the ``--where`` SQL (they exclude each other), or None."""
    if filter is not None and where is not None:
        _fail("--filter and --where exclude each other: write the whole condition in one of them")
    if filter is None:
        return where
    try:
        parsed = json.loads(filter)
    except json.JSONDecodeError as exc:
        _fail(f"--filter is not valid JSON: {exc.msg} at character {exc.pos}")
    if not isinstance(parsed, dict):
        # a JSON string would reach the library as raw SQL: that is what --where is for
        _fail('--filter takes a JSON object such as \'{"width": {"$gt": 1000}}\'; use --where for SQL')
    return parsed


def _photo_condition(condition: Any, options: dict[str, Any]) -> Any:
    """``condition`` and the photo filters (:func:`lookalike.metadata.photo_filter`) together."""
    if all(v is None for v in options.values()):
        return condition
    from lookalike.metadata import photo_filter

    photo = _call(lambda: photo_filter(**options))
    if photo is None or condition is None:
        return photo if condition is None else condition
    if isinstance(condition, str):
        # SQL text and a dict filter cannot be joined without compiling either: ask for JSON
        _fail("--where cannot be combined with --tag/--since/--until/--near/--camera: use --filter JSON")
    return {"$and": [condition, photo]}


def _search_builder(tbl: Any, terms: list[str], force: Literal["text", "image"] | None) -> Any:
    """``tbl.search(...)`` for the terms: one term as before, several through :func:`parse_terms`."""
    if len(terms) == 1:  # one term: exactly the single-query search (no + - or N: reading)
        query = terms[0]
        if force == "text":
            return _call(lambda: tbl.search(text=query))
        if force == "image":
            return _call(lambda: tbl.search(image=query))
        return _call(lambda: tbl.search(query), hint=lambda exc: _words_hint(exc, query))
    from lookalike.examples import parse_terms

    positive, negative = _call(lambda: parse_terms(terms, force=force))
    return _call(lambda: tbl.search(positive=positive, negative=negative))


def _words_hint(exc: Exception, query: str) -> str:
    """A query read as a missing file may have been meant as words."""
    from lookalike.errors import ImageInputError

    if isinstance(exc, ImageInputError) and isinstance(
        exc.__cause__, (FileNotFoundError, NotADirectoryError)
    ):
        return f"; to search for the words {query!r}, add --text"
    return ""


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _label_column(tbl: Any) -> str:
    """The column that names a row for people: ``path``, else the vector's source, else the key."""
    cols = tbl.spec.sa_table.c
    if "path" in cols:
        return "path"
    for vec in tbl.spec.vectors.values():
        if vec.source_field:
            return vec.source_field
    return tbl.primary_key


# ---------------------------------------------------------------------- dupes


class Keeper(str, Enum):
    largest = "largest"
    oldest = "oldest"
    newest = "newest"
    smallest_file = "smallest_file"
    largest_file = "largest_file"


@app.command()
def dupes(
    db: str = DbOption,
    table: str = TableOption,
    threshold: float | None = typer.Option(
        None, "--threshold", help="Cosine distance for near-duplicates (default: the model's)."
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="At most this many groups."),
    keeper: Keeper = typer.Option(Keeper.largest, "--keeper", help="Which member to suggest keeping."),
    exhaustive: bool = typer.Option(False, "--exhaustive", help="Compare every pair (exact, slower)."),
    similar: bool = typer.Option(
        False, "--similar", help="Also show similar shots (same scene, another shot), not only copies."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Group copies of the same picture, say how each differs, and suggest one to keep. Nothing is deleted.

    Each group shows its kind (identical files, same picture, similar) and diameter (the largest
    distance between any two members); each member its match to the kept one and what changed
    (resized, re-encoded, cropped, mirrored, format change, brighter/darker), then its folder.
    """
    from lookalike.duplicates import find_duplicates

    client, tbl = _open(db, table)
    groups = _call(
        lambda: find_duplicates(
            tbl,
            threshold=threshold,
            limit=limit,
            keeper=keeper.value,
            exhaustive=True if exhaustive else None,
            similar=similar,
        )
    )
    client.close()
    if as_json:
        _print_json([g.to_dict() for g in groups])
        return
    label = _label_column(tbl)

    def where(value: Any) -> tuple[str, str]:
        # name and folder apart: which copy lives in which folder is what a person decides on
        text = str(value)
        if "/" in text.replace(os.sep, "/") and "://" not in text:
            folder, name = os.path.split(text)
            return name, f"in {folder or os.sep}"
        return text, ""

    for n, g in enumerate(groups, 1):
        kind = "identical files" if g.kind == "identical file" else g.kind
        print(f"group {n}: {kind}, {len(g)} images, diameter {g.diameter:.4f}")
        tags = ["keep"] + [f"{m} ({d})" if d else m for m, d in zip(g.labels[1:], g.details[1:])]
        width = max(len(t) for t in tags)
        for row, dist, tag in zip(g.rows, g.keeper_distances, tags):
            size = f"{row['width']}x{row['height']}" if row.get("width") and row.get("height") else ""
            name, folder = where(row.get(label))
            dist_text = f"d={dist:.4f}" if tag != "keep" else ""
            print(f"  {tag:<{width}}  {dist_text:<8}  {name}  {size}  {folder}".rstrip())
    extra = sum(len(g) - 1 for g in groups)
    noun = "duplicates or similar shots" if similar else "duplicates"
    print(f"{len(groups)} groups, {extra} {noun} (nothing was deleted)", file=sys.stderr)


# ---------------------------------------------------------------------- info / models / copy / serve


@app.command()
def info(db: str = DbOption, as_json: bool = JsonOption) -> None:
    """Tables, row counts, models and the engine of a database."""
    _require_index(db)
    client = _connect(db)
    out: dict[str, Any] = {"database": db, "engine": client.engine.name, "tables": []}
    for name in _call(client.list_tables):
        entry: dict[str, Any] = {"name": name}
        try:
            tbl = client.open_table(name)
        except Exception as exc:  # a table lookalike didn't make, or an embedder that can't load here
            entry["error"] = str(exc).splitlines()[0]
            out["tables"].append(entry)
            continue
        entry["rows"] = _call(tbl.rows)
        entry["vectors"] = {
            col: {
                "dimensions": vec.dimensions,
                "metric": vec.distance_metric,
                "model": vec.embed_fn.full_name if vec.embed_fn is not None else None,
            }
            for col, vec in tbl.spec.vectors.items()
        }
        out["tables"].append(entry)
    client.close()
    if as_json:
        _print_json(out)
        return
    print(f"database: {db} ({out['engine']})")
    if not out["tables"]:
        print("no tables")
    for t in out["tables"]:
        if "error" in t:
            print(f"  {t['name']}: {t['error']}")
            continue
        print(f"  {t['name']}: {t['rows']} rows")
        for col, v in t["vectors"].items():
            print(f"    {col}: {v['dimensions']}-d {v['metric']}, model {v['model'] or '(none)'}")


@models_app.command("list")
def models_list(as_json: bool = JsonOption) -> None:
    """Models known by a short name (any Hugging Face repo id or local directory works too)."""
    from lookalike.embeddings.model_files import downloaded, list_models

    models = [{**m.as_dict(), "downloaded": downloaded(m.alias)} for m in list_models()]
    if as_json:
        _print_json(models)
        return
    for m in models:
        have = ", ".join(f"{p} {size / 1e6:,.0f} MB" for p, size in m["downloaded"].items())
        state = f"downloaded ({have})" if have else "not downloaded"
        print(f"local/{m['name']:<18} {m['dimensions']:>4}-d  {m['license']:<10} {state}")
        print(f"    {m['description']}")


@models_app.command("download")
def models_download(
    name: str = typer.Argument(..., help="A model alias, Hugging Face repo id or directory."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or int8."),
) -> None:
    """Download a model's files into the cache (for offline use later)."""
    from lookalike.embeddings.model_files import download_model

    name = name.removeprefix("local/")
    path = _call(lambda: download_model(name, precision=precision))
    print(path)


@app.command()
def copy(
    to: str = typer.Option(..., "--to", help="Destination database file or URL."),
    db: str = DbOption,
    table: str = TableOption,
    name: str | None = typer.Option(None, "--name", help="Destination table name (default: the same)."),
) -> None:
    """Copy a table (rows, vectors, model configuration) to another database."""
    from lookalike import copy_table

    client, tbl = _open(db, table)
    dst = _connect(to)
    copied = _call(lambda: copy_table(tbl, dst, name=name))
    rows = _call(copied.rows)
    print(f"copied {table} → {to} ({copied.name}, {rows} rows)")
    dst.close()
    client.close()


@app.command()
def serve(
    db: str = DbOption,
    table: str = TableOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    token: str | None = typer.Option(
        None, "--token", envvar="LOOKALIKE_TOKEN", help="Require this bearer token (env LOOKALIKE_TOKEN)."
    ),
    allow_private_urls: bool = typer.Option(
        False, "--allow-private-urls", help="Let searches fetch URLs on private networks."
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Replace the table's stored model."),
    max_pixels: str | None = MaxPixelsOption,
) -> None:
    """Serve the web page and API over a table."""
    try:
        from lookalike.server import serve as run_server
    except ImportError as exc:
        _fail(f"the web server needs extra packages: pip install 'lookalike[server]' ({exc})", EXIT_SETUP)
    client, _ = _open(db, table)  # no index yet: say so, and make no empty database
    client.close()
    _set_max_pixels(max_pixels)
    _call(
        lambda: run_server(
            db=db,
            table=table,
            host=host,
            port=port,
            token=token,
            allow_private_urls=allow_private_urls,
            model=model,
        )
    )


def main() -> None:
    """Entry point of the ``lookalike`` command."""
    app()


if __name__ == "__main__":
    main()
