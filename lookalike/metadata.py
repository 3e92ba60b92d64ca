"""Filters over photo metadata (EXIF columns and tags) for searches, and tag facets.

::

    where = photo_filter(since="2023-06", until="2023-09", near="48.85,2.35", radius="5km",
                         camera="Pixel 7", tag="beach")
    table.search("sunset").filter(where).limit(20)

:func:`photo_filter` returns a dict filter (:mod:`lookalike.filters`) over the folder index's columns,
or ``None`` when nothing is asked, so it combines with other dict filters (``{"$and": [a, b]}``):

* ``since``/``until``: ``"2023"``, ``"2023-06"``, ``"2023-06-15"`` (or a ``date``/``datetime``);
  both ends are inclusive of the whole period named (``until="2023-09"`` keeps all of September).
  ``taken_at`` is ISO text in the wall-clock time of the place it was taken, so this is a text range.
* ``near`` + ``radius``: ``"48.85,2.35"`` and ``"5km"``, ``"500m"``, ``"3mi"`` (a bare number is km;
  without ``radius``, 1 km). The filter is the bounding box of the circle (latitude ± r, longitude
  ± r / cos(latitude), split in two across the ±180° meridian, unbounded in longitude near a pole),
  so it may keep pictures up to ~41 % farther than ``radius`` in the box's corners;
  :func:`within_radius` trims results to the exact great-circle distance.
* ``camera``: a case-insensitive substring of make and model together (the ``camera`` column holds
  them lowercased): ``"pixel 7"`` matches ``"Google"``/``"Pixel 7"`` and ``"Pixel 7 Pro"``.
* ``tag``: a whole word or phrase of the tags column (``"cat"`` matches ``"black cat"`` but not
  ``"category"``); a list asks for all of them.

Bad values raise :class:`~lookalike.errors.ConfigurationError` naming the option.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lookalike.errors import ConfigurationError
from lookalike.schema import tag_fields
from lookalike.tags import tags_of

if TYPE_CHECKING:
    from lookalike.table import Table

__all__ = [
    "distance_km",
    "parse_near",
    "parse_period",
    "parse_radius",
    "photo_filter",
    "tag_counts",
    "within_radius",
]

EARTH_RADIUS_KM = 6371.0088
"""The mean Earth radius (IUGG)."""
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180
DEFAULT_RADIUS_KM = 1.0
_UNITS = {"km": 1.0, "m": 0.001, "mi": 1.609344}
_PERIOD = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")
_TAG_WORD = re.compile(r"^[\w' &.-]+$")


def parse_period(value: Any, option: str = "since") -> tuple[str, str]:
    """The ISO text range ``[start, end)`` a year, month or day names (``"2023-06"`` →
    ``("2023-06-01", "2023-07-01")``); a ``datetime`` names that second, a ``date`` that day."""
    if isinstance(value, dt.datetime):
        start = value.replace(tzinfo=None, microsecond=0)
        return start.isoformat(), (start + dt.timedelta(seconds=1)).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat(), (value + dt.timedelta(days=1)).isoformat()
    match = _PERIOD.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ConfigurationError(
            f"--{option}: {value!r} is not a date; use YYYY, YYYY-MM or YYYY-MM-DD (e.g. 2023-06)"
        )
    year, month, day = (int(g) if g else None for g in match.groups())
    try:
        if month is None:
            return dt.date(year or 0, 1, 1).isoformat(), dt.date((year or 0) + 1, 1, 1).isoformat()
        if day is None:
            first = dt.date(year or 0, month, 1)
            nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
            return first.isoformat(), nxt.isoformat()
        day_date = dt.date(year or 0, month, day)
    except ValueError as exc:
        raise ConfigurationError(f"--{option}: {value!r} is not a real date ({exc})") from exc
    return day_date.isoformat(), (day_date + dt.timedelta(days=1)).isoformat()


def parse_near(value: Any) -> tuple[float, float]:
    """``"48.85,2.35"`` (or a pair) as (latitude, longitude) in degrees, checked."""
    parts: Sequence[Any]
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
    elif isinstance(value, Sequence):
        parts = list(value)
    else:
        parts = []
    try:
        lat, lon = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except (TypeError, ValueError):
        lat = lon = math.nan
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ConfigurationError(f"--near: {value!r} is not a position; use LAT,LON such as 48.85,2.35")
    if not -90 <= lat <= 90 or not -180 <= lon <= 180:
        raise ConfigurationError(f"--near: {value!r} is off the globe (latitude ±90, longitude ±180)")
    return lat, lon


def parse_radius(value: Any) -> float:
    """``"5km"``, ``"500m"``, ``"3mi"`` or a number of km, as km (positive, at most half the globe)."""
    km: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        km = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(km|m|mi)?\s*", value.lower())
        if match:
            km = float(match.group(1)) * _UNITS[match.group(2) or "km"]
    if km is None or not math.isfinite(km) or km <= 0:
        raise ConfigurationError(f"--radius: {value!r} is not a distance; use e.g. 5km, 500m or 3mi")
    if km > math.pi * EARTH_RADIUS_KM:
        raise ConfigurationError(f"--radius: {value!r} is more than half way round the Earth")
    return km


def photo_filter(
    since: Any = None,
    until: Any = None,
    near: Any = None,
    radius: Any = None,
    camera: str | None = None,
    tag: str | Sequence[str] | None = None,
    *,
    tags_column: str = "tags",
) -> dict[str, Any] | None:
    """A dict filter for pictures taken in a period, near a place, with a camera, carrying tags.

    See the module docstring for each option; ``None`` when no option is given.
    """
    parts: list[dict[str, Any]] = []
    taken: dict[str, str] = {}
    if since is not None:
        taken["$gte"] = parse_period(since, "since")[0]
    if until is not None:
        taken["$lt"] = parse_period(until, "until")[1]
    if "$gte" in taken and "$lt" in taken and taken["$gte"] >= taken["$lt"]:
        raise ConfigurationError(f"--since {since} is after --until {until}: no picture can match")
    if taken:
        parts.append({"taken_at": taken})
    if radius is not None and near is None:
        raise ConfigurationError("--radius needs --near (the place to measure from)")
    if near is not None:
        lat, lon = parse_near(near)
        parts.append(_box(lat, lon, DEFAULT_RADIUS_KM if radius is None else parse_radius(radius)))
    if camera is not None:
        key = " ".join(str(camera).lower().split()) if isinstance(camera, str) else ""
        if not key:
            raise ConfigurationError(f"--camera: {camera!r} names no camera")
        parts.append({"camera": {"$contains": key}})
    if tag is not None:
        for word in [tag] if isinstance(tag, str) else list(tag):
            parts.append(_tag_filter(word, tags_column))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _box(lat: float, lon: float, km: float) -> dict[str, Any]:
    """The bounding box of the circle of ``km`` around (lat, lon), as a dict filter."""
    dlat = km / KM_PER_DEGREE
    south, north = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    box: dict[str, Any] = {"gps_lat": {"$gte": south, "$lte": north}}
    if north >= 90.0 or south <= -90.0:
        return box  # the circle holds a pole: every longitude is in it
    dlon = dlat / math.cos(math.radians(max(abs(south), abs(north))))
    if dlon >= 180.0:
        return box
    west, east = lon - dlon, lon + dlon
    if west < -180.0:  # across the antimeridian: two ranges
        lon_filter: dict[str, Any] = {
            "$or": [{"gps_lon": {"$gte": west + 360.0}}, {"gps_lon": {"$lte": east}}]
        }
    elif east > 180.0:
        lon_filter = {"$or": [{"gps_lon": {"$gte": west}}, {"gps_lon": {"$lte": east - 360.0}}]}
    else:
        lon_filter = {"gps_lon": {"$gte": west, "$lte": east}}
    return {"$and": [box, lon_filter]}


def _tag_filter(tag: Any, column: str) -> dict[str, Any]:
    """A whole-word match in a ``"beach, sea, black cat"`` column, with LIKE patterns: the word
    starts the text or follows a space, and ends the text or comes before a comma or a space."""
    word = " ".join(tag.lower().split()) if isinstance(tag, str) else ""
    if not word or "," in word or "%" in word or "_" in word or not _TAG_WORD.match(word):
        raise ConfigurationError(f"--tag: {tag!r} is not a tag (words, without commas or wildcards)")
    patterns = [f"{before}{word}{after}" for before in ("", "% ") for after in ("", ",%", " %")]
    return {"$or": [{column: {"$like": p}} for p in patterns]}


# ---------------------------------------------------------------------- exact distance


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius) in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def within_radius(rows: Iterable[Mapping[str, Any]], near: Any, radius: Any = None) -> list[Any]:
    """The rows whose ``gps_lat``/``gps_lon`` lie within ``radius`` of ``near`` (exact distance):
    what trims a bounding-box filter's results to the circle."""
    lat, lon = parse_near(near)
    km = DEFAULT_RADIUS_KM if radius is None else parse_radius(radius)
    out = []
    for row in rows:
        rlat, rlon = row.get("gps_lat"), row.get("gps_lon")
        if rlat is not None and rlon is not None and distance_km(lat, lon, rlat, rlon) <= km:
            out.append(row)
    return out


# ---------------------------------------------------------------------- facets


def tag_counts(
    table: Table, limit: int = 50, *, column: str | None = None, filters: Any = None
) -> dict[str, int]:
    """The ``limit`` most frequent tags of ``table`` (tag → number of rows), most frequent first,
    ties by name: facets for a page or the REST API. ``filters`` restricts the rows counted."""
    from lookalike.filters import compile_filter

    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        raise ConfigurationError(f"limit must be a positive integer, got {limit!r}")
    t = table.spec.sa_table
    if column is None:
        declared = list(tag_fields(t))
        column = declared[0] if declared else "tags"
    if column not in t.c:
        raise ConfigurationError(f"table {table.name!r} has no tag column {column!r}")
    query = sa.select(t.c[column]).where(t.c[column].is_not(None))
    where = compile_filter(filters, t)
    if where is not None:
        query = query.where(where)
    counts: Counter[str] = Counter()
    with table.database.connection(write=False) as conn:
        for (text,) in conn.execute(query):
            counts.update(set(tags_of(text)))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return dict(ranked[:limit])
