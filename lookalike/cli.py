"""The ``lookalike`` command: a thin shell over the library.

Each command builds the library object, makes one library call and prints the result; names mirror
the library (``index`` → :func:`lookalike.folders.index_paths`, ``search`` → ``Table.search``,
``dupes`` → :func:`lookalike.duplicates.find_duplicates`, ``copy`` → ``lookalike.copy_table``,
``serve`` → :func:`lookalike.server.serve`).

Exit codes: 0 success; 1 some items failed or the library reported an error; 2 a usage error (bad
flag, missing path, unknown name — the library's :class:`~lookalike.ConfigurationError`); 130 stopped
by Ctrl-C (work committed so far is kept). Errors are one line on stderr; ``--debug`` shows tracebacks.

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
from typing import Any, NoReturn, TypeVar

import typer

app = typer.Typer(
    name="lookalike",
    help="Find images that look alike — by image or by words — and find duplicates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
models_app = typer.Typer(help="List and download embedding models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

DEFAULT_DB = "lookalike.db"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_state = {"debug": bool(os.environ.get("LOOKALIKE_DEBUG"))}
T = TypeVar("T")

DbOption = typer.Option(DEFAULT_DB, "--db", help="Database file or URL (postgresql://…, tidb://…).")
TableOption = typer.Option("images", "--table", "-t", help="Table name.")
JsonOption = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


# ---------------------------------------------------------------------- plumbing


def _err(message: str) -> None:
    print(f"lookalike: {message}", file=sys.stderr)


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    _err(message)
    raise typer.Exit(code)


def _call(fn: Callable[[], T]) -> T:
    """Run a library call; turn library errors into one line and an exit code."""
    from lookalike.errors import ConfigurationError, LookalikeError, MissingDependencyError

    try:
        return fn()
    except LookalikeError as exc:
        if _state["debug"]:
            raise
        usage = isinstance(exc, ConfigurationError) and not isinstance(exc, MissingDependencyError)
        _fail(str(exc), EXIT_USAGE if usage else EXIT_FAILED)


def _connect(db: str) -> Any:
    import lookalike

    return _call(lambda: lookalike.connect(db))


def _open(db: str, table: str) -> Any:
    client = _connect(db)
    return client, _call(lambda: client.open_table(table))


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return str(value)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_json_default, ensure_ascii=False) + "\n")


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Find images that look alike — by image or by words — and find duplicates."""
    if debug:
        _state["debug"] = True


# ---------------------------------------------------------------------- index


@app.command()
def index(
    paths: list[Path] = typer.Argument(None, help="Image files or folders to index."),
    db: str = DbOption,
    table: str = TableOption,
    model: str | None = typer.Option(
        None, "--model", "-m", help="Embedding model (default local/clip-vit-b-32; local/<dir> works)."
    ),
    recursive: bool = typer.Option(True, "--recursive/--no-recursive", help="Descend into sub-folders."),
    exclude: list[str] = typer.Option(
        None, "--exclude", "-x", help="Skip files/folders matching this glob (repeatable)."
    ),
    urls: Path | None = typer.Option(None, "--urls", help="A file with one image URL per line."),
    errors: Path | None = typer.Option(
        None, "--errors", help="Write the failures to this file (JSON lines)."
    ),
    chunk_size: int = typer.Option(64, "--chunk-size", min=1, help="Files per committed chunk."),
    as_json: bool = JsonOption,
) -> None:
    """Index image folders (incremental: unchanged files are skipped, renames reuse vectors)."""
    from lookalike.folders import DEFAULT_EXCLUDE, index_paths

    if not paths and urls is None:
        _fail("give at least one PATH or --urls FILE")
    for p in paths or []:
        if not p.exists():
            _fail(f"no such file or folder: {p}")
    if urls is not None and not urls.is_file():
        _fail(f"no such URL list: {urls}")
    client = _connect(db)
    stop = {"requested": False}

    def on_sigint(_sig: int, _frame: Any) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        _err("stopping after the current chunk (Ctrl-C again to abort it)…")

    previous = signal.signal(signal.SIGINT, on_sigint)
    progress = _IndexProgress(enabled=not as_json)
    try:
        with progress:
            report = _call(
                lambda: index_paths(
                    client,
                    [str(p) for p in paths or []],
                    table=table,
                    model=model,
                    recursive=recursive,
                    exclude=(*DEFAULT_EXCLUDE, *(exclude or [])),
                    urls_file=urls,
                    on_progress=progress.update,
                    should_stop=lambda: stop["requested"],
                    chunk_size=chunk_size,
                )
            )
    except KeyboardInterrupt:
        _err("aborted; chunks committed before the interrupt are kept")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        client.close()
    if errors is not None and report.failures:
        with open(errors, "w", encoding="utf-8") as fh:
            for f in report.failures:
                fh.write(json.dumps({"path": f.path, "error": f.error}) + "\n")
    if as_json:
        _print_json(report.to_dict())
    else:
        _print_index_summary(report)
    if report.stopped:
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_FAILED if report.failures else EXIT_OK)


class _IndexProgress:
    """A rich progress bar on stderr (counts, rate, ETA) while there is a terminal to draw on."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _IndexProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]indexing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[counts]}"),
                console=Console(stderr=True),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("index", total=None, rate="", counts="")
        return self

    def update(self, report: Any) -> None:
        if self._progress is None:
            return
        task = self._progress.tasks[0]
        speed = task.speed
        self._progress.update(
            self._task,
            total=report.total or None,
            completed=report.done,
            rate=f"{speed:.1f} img/s" if speed else "",
            counts=f"added {report.added} · skipped {report.skipped} · failed {report.failed}",
        )

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def _print_index_summary(report: Any) -> None:
    parts = [
        f"{report.added} added",
        f"{report.updated} updated",
        f"{report.reused} renamed (vectors reused)",
        f"{report.skipped} unchanged",
        f"{report.removed} removed",
        f"{report.failed} failed",
    ]
    print(f"{report.table}: " + ", ".join(parts) + f" in {report.seconds:.1f} s")
    if report.stopped:
        print("stopped early: the chunks committed so far are kept; run the command again to finish")
    if report.failures:
        print(f"failures ({report.failed}):", file=sys.stderr)
        for f in report.failures[:20]:
            print(f"  {f.path}: {f.error}", file=sys.stderr)
        if report.failed > 20:
            print(f"  … and {report.failed - 20} more (use --errors FILE)", file=sys.stderr)


# ---------------------------------------------------------------------- search


@app.command()
def search(
    query: str = typer.Argument(..., help="Words, an image path or an image URL."),
    db: str = DbOption,
    table: str = TableOption,
    limit: int = typer.Option(10, "--limit", "-n", min=1, help="How many results."),
    filter: str | None = typer.Option(
        None, "--filter", help='A JSON filter, e.g. \'{"width": {"$gt": 1000}}\'.'
    ),
    as_json: bool = JsonOption,
    text: bool = typer.Option(False, "--text", help="Treat QUERY as words, even if it looks like a path."),
    image: bool = typer.Option(False, "--image", help="Treat QUERY as an image path or URL."),
) -> None:
    """Search by words or by example image; shows rank, score and path."""
    if text and image:
        _fail("--text and --image exclude each other")
    filters = None
    if filter is not None:
        try:
            filters = json.loads(filter)
        except json.JSONDecodeError as exc:
            _fail(f"--filter is not valid JSON: {exc.msg} at character {exc.pos}")
    client, tbl = _open(db, table)
    if text:
        builder = _call(lambda: tbl.search(text=query))
    elif image:
        builder = _call(lambda: tbl.search(image=query))
    else:
        builder = _call(lambda: tbl.search(query))
    builder = _call(lambda: builder.limit(limit))
    if filters is not None:
        builder = _call(lambda: builder.filter(filters))
    hits = _call(builder.to_list)
    client.close()
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
    as_json: bool = JsonOption,
) -> None:
    """Group exact and near-duplicate images and suggest one to keep. Nothing is deleted."""
    from lookalike.duplicates import find_duplicates

    client, tbl = _open(db, table)
    groups = _call(
        lambda: find_duplicates(
            tbl,
            threshold=threshold,
            limit=limit,
            keeper=keeper.value,
            exhaustive=True if exhaustive else None,
        )
    )
    client.close()
    if as_json:
        _print_json([g.to_dict() for g in groups])
        return
    label = _label_column(tbl)
    for n, g in enumerate(groups, 1):
        kind = "identical files" if g.exact else f"max distance {g.max_distance:.4f}"
        print(f"group {n}: {len(g)} images, {kind}")
        for row, dist in zip(g.rows, g.keeper_distances):
            size = f"  {row['width']}x{row['height']}" if row.get("width") and row.get("height") else ""
            tag = "keep" if row.get(tbl.primary_key) == g.keeper else f"dupe d={dist:.4f}"
            print(f"  {tag:<14} {row.get(label)}{size}")
    extra = sum(len(g) - 1 for g in groups)
    print(f"{len(groups)} groups, {extra} duplicates (nothing was deleted)", file=sys.stderr)


# ---------------------------------------------------------------------- info / models / copy / serve


@app.command()
def info(db: str = DbOption, as_json: bool = JsonOption) -> None:
    """Tables, row counts, models and the engine of a database."""
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
                "model": _model_name(vec.embed_fn),
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


def _model_name(embed: Any) -> str | None:
    if embed is None:
        return None
    provider = getattr(embed, "provider", "python")
    name = str(embed.model_name)
    return f"{provider}/{name}" if provider != "python" else name


@models_app.command("list")
def models_list(as_json: bool = JsonOption) -> None:
    """Models known by a short name (any Hugging Face repo id or local directory works too)."""
    from lookalike.embeddings.model_files import list_models

    models = [m.as_dict() for m in list_models()]
    if as_json:
        _print_json(models)
        return
    for m in models:
        print(f"local/{m['name']:<18} {m['dimensions']:>4}-d  {m['license']:<10} {m['description']}")


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
    import lookalike

    copy_table = getattr(lookalike, "copy_table", None)
    if copy_table is None:
        try:
            from lookalike.copy import copy_table
        except ImportError:
            _fail("this version of lookalike has no copy_table", EXIT_FAILED)
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
) -> None:
    """Serve the web page and API over a table."""
    try:
        from lookalike.server import serve as run_server
    except ImportError as exc:
        _fail(f"the web server needs extra packages: pip install 'lookalike[server]' ({exc})", EXIT_FAILED)
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
