"""Photo metadata from EXIF: when and where a picture was taken, with which camera, and its size.

:func:`read_photo_info` opens the file's header only (Pillow decodes no pixels for this) and reads:

* ``taken_at``: ``DateTimeOriginal`` (else ``DateTimeDigitized``) as ISO text, wall-clock time
  where the picture was taken, with its UTC offset from ``OffsetTimeOriginal``/``OffsetTime*`` when
  the camera wrote one (``"2023-06-15T14:03:22+02:00"``); ISO text sorts by date, so range filters
  are plain text comparisons on every engine;
* ``gps_lat``/``gps_lon``: decimal degrees (south and west negative);
* ``camera_make``/``camera_model``: as written, trimmed;
* ``orientation``: the EXIF value 1–8;
* ``width``/``height``: the pixel size of the stored image.

Values that can't be right become ``None`` and are listed in ``problems`` (a GPS rational with a zero
denominator, a latitude over 90°, a missing N/S or E/W reference, a date that is malformed or in the
future, an orientation outside 1–8), so the caller can report them once. A file without EXIF simply
has ``None`` everywhere but its size.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PhotoInfo", "read_photo_info"]

IFD_EXIF = 0x8769
IFD_GPS = 0x8825
MAKE, MODEL, ORIENTATION = 0x010F, 0x0110, 0x0112
DATETIME_ORIGINAL, DATETIME_DIGITIZED = 0x9003, 0x9004
OFFSET_TIME, OFFSET_TIME_ORIGINAL, OFFSET_TIME_DIGITIZED = 0x9010, 0x9011, 0x9012
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 1, 2, 3, 4

_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"^[+-](\d{2}):(\d{2})$")
EARLIEST_YEAR = 1826
"""No photograph is older (Niépce); an earlier EXIF year is a camera's unset clock or garbage."""
FUTURE_SLACK = dt.timedelta(days=1)
"""A taken-at date may run ahead of this machine's clock by a time-zone's worth before it is refused."""


@dataclass(frozen=True)
class PhotoInfo:
    """What a picture's header says about it (see the module docstring for each field)."""

    taken_at: str | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    orientation: int | None = None
    width: int | None = None
    height: int | None = None
    problems: tuple[str, ...] = field(default=())
    """Values found but unusable (stored as ``None``), in words."""

    @property
    def camera(self) -> str | None:
        """Make and model, lowercased, as one search key (``"google pixel 7"``); the make is not
        repeated when the model already starts with it (``"canon canon eos r5"`` → ``"canon eos r5"``)."""
        make = (self.camera_make or "").strip().lower()
        model = (self.camera_model or "").strip().lower()
        if make and model.startswith(make):
            make = ""
        text = " ".join(p for p in (make, model) if p)
        return " ".join(text.split()) or None

    def columns(self) -> dict[str, Any]:
        """The values as the folder index's columns."""
        return {
            "taken_at": self.taken_at,
            "gps_lat": self.gps_lat,
            "gps_lon": self.gps_lon,
            "camera_make": self.camera_make,
            "camera_model": self.camera_model,
            "camera": self.camera,
            "orientation": self.orientation,
            "width": self.width,
            "height": self.height,
        }


def read_photo_info(source: str | os.PathLike[str] | Any, *, now: dt.datetime | None = None) -> PhotoInfo:
    """The metadata of an image file (or an open PIL image); an unreadable file gives an empty one.

    ``now`` is the clock dates are checked against (default: this machine's, local time).
    """
    from PIL import Image

    try:
        if isinstance(source, Image.Image):
            return _from_image(source, now)
        with Image.open(source) as im:
            return _from_image(im, now)
    except Exception:  # an unreadable image is the embedder's to report, with a proper message
        return PhotoInfo()


def _from_image(im: Any, now: dt.datetime | None) -> PhotoInfo:
    width, height = int(im.size[0]), int(im.size[1])
    try:
        exif = im.getexif()
    except Exception:  # a damaged EXIF block: the picture is still fine
        return PhotoInfo(width=width, height=height, problems=("unreadable EXIF block",))
    if not exif:
        return PhotoInfo(width=width, height=height)
    problems: list[str] = []
    exif_ifd = _ifd(exif, IFD_EXIF)
    taken_at = _taken_at(exif_ifd, problems, now or dt.datetime.now())
    lat, lon = _gps(_ifd(exif, IFD_GPS), problems)
    orientation = exif.get(ORIENTATION)
    if orientation is not None and (not isinstance(orientation, int) or not 1 <= orientation <= 8):
        problems.append(f"orientation {orientation!r} is not 1-8")
        orientation = None
    return PhotoInfo(
        taken_at=taken_at,
        gps_lat=lat,
        gps_lon=lon,
        camera_make=_text(exif.get(MAKE)),
        camera_model=_text(exif.get(MODEL)),
        orientation=orientation,
        width=width,
        height=height,
        problems=tuple(problems),
    )


def _ifd(exif: Any, tag: int) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:  # a sub-IFD pointing nowhere
        return {}


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = " ".join(value.replace("\x00", " ").split())
    return text or None


def _taken_at(ifd: dict[int, Any], problems: list[str], now: dt.datetime) -> str | None:
    for date_tag, offset_tag in (
        (DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL),
        (DATETIME_DIGITIZED, OFFSET_TIME_DIGITIZED),
    ):
        raw = _text(ifd.get(date_tag))
        if raw is None:
            continue
        when = _parse_date(raw)
        if when is None:
            problems.append(f"date taken {raw!r} is malformed")
            return None
        if when.year < EARLIEST_YEAR:
            problems.append(f"date taken {raw!r} is before photography")
            return None
        if when > now.replace(tzinfo=None) + FUTURE_SLACK:
            problems.append(f"date taken {raw!r} is in the future")
            return None
        offset = _text(ifd.get(offset_tag)) or _text(ifd.get(OFFSET_TIME))
        iso = when.isoformat()
        if offset is not None:
            match = _OFFSET.match(offset)
            if match and int(match.group(1)) <= 14 and int(match.group(2)) < 60:
                iso += offset
            else:
                problems.append(f"time offset {offset!r} is malformed (the date is kept without it)")
        return iso
    return None


def _parse_date(raw: str) -> dt.datetime | None:
    match = _DATE.match(raw)
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        return dt.datetime(year, month, day, hour, minute, second)
    except ValueError:  # month 13, day 0, ...
        return None


def _gps(ifd: dict[int, Any], problems: list[str]) -> tuple[float | None, float | None]:
    if GPS_LAT not in ifd and GPS_LON not in ifd:
        return None, None
    lat = _coordinate(ifd.get(GPS_LAT), ifd.get(GPS_LAT_REF), "NS", 90.0, "latitude", problems)
    lon = _coordinate(ifd.get(GPS_LON), ifd.get(GPS_LON_REF), "EW", 180.0, "longitude", problems)
    if lat is None or lon is None:
        return None, None  # half a position is no position
    return lat, lon


def _coordinate(
    value: Any, ref: Any, refs: str, limit: float, what: str, problems: list[str]
) -> float | None:
    ref_text = _text(ref)
    if value is None:
        problems.append(f"GPS {what} is missing")
        return None
    if ref_text is None or ref_text.upper()[:1] not in refs:
        problems.append(f"GPS {what} has no {'/'.join(refs)} reference")
        return None
    parts = [_ratio(v) for v in (value if isinstance(value, (tuple, list)) else (value,))]
    if not parts or len(parts) > 3 or any(p is None for p in parts):
        problems.append(f"GPS {what} {_show(value)} is not a number (zero denominator?)")
        return None
    degrees, minutes, seconds = ([*(p for p in parts if p is not None), 0.0, 0.0])[:3]
    if minutes < 0 or minutes >= 60 or seconds < 0 or seconds >= 60 or degrees < 0:
        problems.append(f"GPS {what} {_show(value)} is out of range")
        return None
    decimal = degrees + minutes / 60 + seconds / 3600
    if decimal > limit:
        problems.append(f"GPS {what} {decimal:g} is over {limit:g}°")
        return None
    return -decimal if ref_text.upper()[:1] == refs[1] else decimal


def _ratio(value: Any) -> float | None:
    """A rational (Pillow's IFDRational, a (num, den) pair or a number) as a finite float, or None."""
    if isinstance(value, tuple) and len(value) == 2:
        num, den = value
        if not den:
            return None
        value = num / den
    denominator = getattr(value, "denominator", 1)
    if denominator == 0:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return out if math.isfinite(out) else None


def _show(value: Any) -> str:
    try:
        return "(" + ", ".join(f"{float(v):g}" for v in value) + ")"
    except Exception:
        return repr(value)
