"""Photo filters and search modes for the API: what a request asks beyond its query, checked
against the table before anything runs.

The filters are :func:`lookalike.metadata.photo_filter`'s (``tag``, ``since``, ``until``, ``near``,
``radius``, ``camera``) over a folder index's columns; the modes are ``vector`` (the query's vector
alone), ``hybrid`` (vector and full-text search, fused) and ``fulltext`` (BM25 over the table's
full-text column, the tags on a folder index). A bad value, a filter over a column the table lacks and
a mode the table cannot run are each a 422 naming what is wrong; nothing here knows FastAPI.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from lookalike import Table
from lookalike.errors import ConfigurationError
from lookalike.metadata import photo_filter, within_radius
from lookalike.schema import tag_fields
from lookalike.server.errors_http import ApiError

__all__ = [
    "FILTER_COLUMNS",
    "MAX_POOL",
    "SEARCH_MODES",
    "PhotoFilters",
    "check_mode",
    "collect",
    "echo",
    "pick_tag_column",
    "pick_text_column",
    "supported",
]

SEARCH_MODES = ("vector", "hybrid", "fulltext")
"""What ``/api/search?mode=`` takes: the query's vector, vector + full-text fused, or full-text only."""

FILTER_COLUMNS: dict[str, tuple[str, ...]] = {
    "since": ("taken_at",),
    "until": ("taken_at",),
    "near": ("gps_lat", "gps_lon"),
    "camera": ("camera",),
}
"""The columns each photo filter reads (``tag`` reads the table's tag column, ``radius`` goes with
``near``): a folder index made by ``lookalike index`` has them all."""

MAX_POOL = 50_000
"""The most rows one page fetches while ``near`` trims a search's results to the circle."""

_OPTION = re.compile(r"--(tag|since|until|near|radius|camera)\b")


@dataclass(frozen=True)
class PhotoFilters:
    """The photo filters of one request, as sent (each ``None`` or empty when not asked)."""

    tag: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    near: str | None = None
    radius: str | None = None
    camera: str | None = None

    def given(self) -> dict[str, Any]:
        """The options asked for, as the answer's ``query["filters"]`` tells them."""
        out: dict[str, Any] = {"tag": list(self.tag)} if self.tag else {}
        for name in ("since", "until", "near", "radius", "camera"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def where(self, table: Table, tag_column: str | None) -> dict[str, Any] | None:
        """The dict filter for these options over ``table`` (None when none is asked).

        422 ``bad_photo_filter`` for a bad value (the library's message, naming the parameter) or a
        filter over a column the table does not have.
        """
        asked = self.given()
        if not asked:
            return None
        for name, value in asked.items():
            # no text column can hold them (PostgreSQL refuses NUL outright): a mistake, said as one
            if any(
                ord(ch) < 32 or ord(ch) == 127
                for v in ([value] if isinstance(value, str) else value)
                for ch in v
            ):
                raise ApiError(422, "bad_photo_filter", f"{name}: {value!r} holds a control character")
        columns = set(table.spec.sa_table.columns.keys())
        for name in asked:
            if name == "tag":
                if tag_column is None:
                    raise _unusable(table, name, "tag column")
                continue
            missing = [c for c in FILTER_COLUMNS.get(name, ()) if c not in columns]
            if missing:
                raise _unusable(table, name, "column" + "s" * (len(missing) > 1) + " " + ", ".join(missing))
        try:
            return photo_filter(
                since=self.since,
                until=self.until,
                near=self.near,
                radius=self.radius,
                camera=self.camera,
                tag=list(self.tag) or None,
                tags_column=tag_column or "tags",
            )
        except ConfigurationError as exc:
            raise ApiError(422, "bad_photo_filter", _OPTION.sub(r"\1", str(exc))) from exc

    def trim(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` within ``radius`` of ``near`` (the filter was the circle's bounding box)."""
        if self.near is None:
            return rows
        kept: list[dict[str, Any]] = within_radius(rows, self.near, self.radius)
        return kept


def _unusable(table: Table, option: str, what: str) -> ApiError:
    return ApiError(
        422,
        "bad_photo_filter",
        f"{option}: table {table.name!r} has no {what}, so it cannot be filtered by {option}; photo "
        "filters read the columns of a folder index made by lookalike index",
    )


def collect(
    fetch: Callable[[int], list[dict[str, Any]]],
    keep: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    want: int,
    *,
    start: int | None = None,
) -> list[dict[str, Any]]:
    """At least ``want`` rows that ``keep`` keeps, or all there are: ``fetch(n)`` returns the best
    ``n`` rows (first ``start``, default ``want``), and is asked for more (×4, up to
    :data:`MAX_POOL`) while ``keep`` drops too many."""
    n = max(want, start or want)
    while True:
        rows = fetch(n)
        kept = keep(rows)
        if len(kept) >= want or len(rows) < n or n >= MAX_POOL:
            return kept
        n = min(MAX_POOL, n * 4)


def pick_text_column(table: Table) -> str | None:
    """The full-text column hybrid and full-text searches use: a tag column with a full-text index
    first (a folder index's ``tags``), else the first full-text column; None without one."""
    fulltext = list(table.spec.fulltext)
    tagged = [name for name in tag_fields(table.spec.sa_table) if name in fulltext]
    names = tagged or fulltext
    return names[0] if names else None


def pick_tag_column(table: Table) -> str | None:
    """The table's tag column (declared with ``TagsField``, or a text column called ``tags``)."""
    declared = list(tag_fields(table.spec.sa_table))
    if declared:
        return declared[0]
    return "tags" if "tags" in table.spec.sa_table.columns.keys() else None


def check_mode(mode: str, table: Table, text_column: str | None) -> str:
    """``mode`` when the table can run it: 422 ``bad_mode`` for an unknown one, 422 ``no_fulltext``
    for ``hybrid``/``fulltext`` on a table without a full-text column."""
    if mode not in SEARCH_MODES:
        raise ApiError(
            422, "bad_mode", f"mode: {mode[:40]!r} is not a search mode; use one of {', '.join(SEARCH_MODES)}"
        )
    if mode != "vector" and text_column is None:
        raise ApiError(
            422,
            "no_fulltext",
            f"mode={mode} needs a full-text column, and table {table.name!r} has none: index a folder with "
            "lookalike index (its tags are searchable words), or build one with "
            "table.create_fts_index(column); mode=vector searches this table",
        )
    return mode


def echo(query: Mapping[str, Any], filters: PhotoFilters | None) -> dict[str, Any]:
    """The answer's ``query``: what was searched, with the filters when any were asked."""
    asked = filters.given() if filters is not None else {}
    return {**query, "filters": asked} if asked else dict(query)


def supported(table: Table, tag_column: str | None) -> list[str]:
    """The photo filters ``table`` can answer (the page shows only these)."""
    columns: Collection[str] = set(table.spec.sa_table.columns.keys())
    out = ["tag"] if tag_column is not None else []
    for name, needs in FILTER_COLUMNS.items():
        if all(c in columns for c in needs):
            out.append(name)
    if "near" in out:
        out.append("radius")
    return out
