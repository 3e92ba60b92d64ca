"""Photo filters (dates, places, cameras, tags) on every engine, against a reference computed here."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import lookalike
from lookalike.errors import ConfigurationError
from lookalike.metadata import (
    distance_km,
    parse_near,
    parse_period,
    parse_radius,
    photo_filter,
    tag_counts,
    within_radius,
)
from lookalike.schema import Field, TableModel

ROWS: list[dict[str, Any]] = [
    {
        "name": "paris",
        "taken_at": "2023-06-15T14:03:22+02:00",
        "gps_lat": 48.8566,
        "gps_lon": 2.3522,
        "camera": "google pixel 7",
        "tags": "city street, tower, bridge",
    },
    {
        "name": "versailles",
        "taken_at": "2023-09-30T23:59:59",
        "gps_lat": 48.8049,
        "gps_lon": 2.1204,
        "camera": "google pixel 7 pro",
        "tags": "palace, garden, fountain",
    },
    {
        "name": "london",
        "taken_at": "2023-10-01T00:00:00",
        "gps_lat": 51.5072,
        "gps_lon": -0.1276,
        "camera": "canon eos r5",
        "tags": "black cat, city street",
    },
    {
        "name": "fiji",
        "taken_at": "2022-12-31T23:00:00",
        "gps_lat": -17.7134,
        "gps_lon": 179.9,
        "camera": "apple iphone 13",
        "tags": "beach, sea, sand",
    },
    {
        "name": "samoa",
        "taken_at": "2023-05-31T12:00:00",
        "gps_lat": -17.75,
        "gps_lon": -179.95,
        "camera": None,
        "tags": "category, sea",
    },
    {"name": "nowhere", "taken_at": None, "gps_lat": None, "gps_lon": None, "camera": None, "tags": None},
]


class Photos(TableModel):
    __tablename__ = "photos_meta"
    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None)
    taken_at: str | None = Field(default=None, sa_type=sa.Text)
    gps_lat: float | None = Field(default=None)
    gps_lon: float | None = Field(default=None)
    camera: str | None = Field(default=None, sa_type=sa.Text)
    tags: str | None = Field(default=None, sa_type=sa.Text)


@pytest.fixture
def photos(client: lookalike.Client) -> Iterator[lookalike.Table]:
    table = client.create_table(schema=Photos, if_exists="overwrite")
    table.bulk_insert(ROWS)
    yield table


def _names(table: lookalike.Table, where: Any) -> set[str]:
    return {r["name"] for r in table.query(where).to_list()}


def test_periods_are_whole_and_inclusive(photos: lookalike.Table) -> None:
    assert _names(photos, photo_filter(since="2023-06", until="2023-09")) == {"paris", "versailles"}
    assert _names(photos, photo_filter(since="2023")) == {"paris", "versailles", "london", "samoa"}
    assert _names(photos, photo_filter(until="2022-12-31")) == {"fiji"}
    assert _names(photos, photo_filter(since="2023-10-01", until="2023-10-01")) == {"london"}
    assert parse_period("2023-12") == ("2023-12-01", "2024-01-01")
    assert parse_period("2024-02-29") == ("2024-02-29", "2024-03-01")


def test_camera_is_a_case_insensitive_substring(photos: lookalike.Table) -> None:
    assert _names(photos, photo_filter(camera="Pixel 7")) == {"paris", "versailles"}
    assert _names(photos, photo_filter(camera="  PIXEL   7 PRO ")) == {"versailles"}
    assert _names(photos, photo_filter(camera="Canon")) == {"london"}


def test_tags_match_whole_words(photos: lookalike.Table) -> None:
    assert _names(photos, photo_filter(tag="cat")) == {"london"}  # not "category"
    assert _names(photos, photo_filter(tag="Sea")) == {"fiji", "samoa"}
    assert _names(photos, photo_filter(tag="city street")) == {"paris", "london"}
    assert _names(photos, photo_filter(tag="street")) == {"paris", "london"}  # a word of a tag
    assert _names(photos, photo_filter(tag=["sea", "sand"])) == {"fiji"}
    assert _names(photos, photo_filter(tag="garden", camera="pixel")) == {"versailles"}


def test_near_across_the_antimeridian_and_exact_trim(photos: lookalike.Table) -> None:
    assert _names(photos, photo_filter(near="48.85,2.35", radius="5km")) == {"paris"}
    box = photos.query(photo_filter(near="48.85,2.35", radius="25km")).to_list()
    assert {r["name"] for r in box} == {"paris", "versailles"}
    assert {r["name"] for r in within_radius(box, "48.85,2.35", "25km")} == {"paris", "versailles"}
    assert [r["name"] for r in within_radius(box, "48.85,2.35", "10km")] == ["paris"]
    assert _names(photos, photo_filter(near="-17.72,179.95", radius="30mi")) == {"fiji", "samoa"}
    assert _names(photos, photo_filter(near="89.9,0", radius="100km")) == set()  # a pole: no crash


@settings(max_examples=40, deadline=None)
@given(
    lat=st.floats(-85, 85),
    lon=st.floats(-180, 180),
    km=st.floats(0.5, 3000),
    plat=st.floats(-89, 89),
    plon=st.floats(-180, 180),
)
def test_the_box_holds_the_circle(lat: float, lon: float, km: float, plat: float, plon: float) -> None:
    """Whatever lies within the radius (reference: haversine) passes the box (evaluated here on the
    filter dict), and the box is no wider than needed in latitude."""
    where = photo_filter(near=(lat, lon), radius=km)
    inside = distance_km(lat, lon, plat, plon) <= km
    if inside:
        assert _match(where, {"gps_lat": plat, "gps_lon": plon})
    if abs(plat - lat) * math.pi * 6371.0088 / 180 > km * 1.0001:
        assert not _match(where, {"gps_lat": plat, "gps_lon": plon})


def _match(where: Any, row: dict[str, float]) -> bool:
    """A tiny evaluator of the dict filters photo_filter makes (the reference for the box)."""
    if "$and" in where:
        return all(_match(w, row) for w in where["$and"])
    if "$or" in where:
        return any(_match(w, row) for w in where["$or"])
    ops = {"$gte": lambda a, b: a >= b, "$lte": lambda a, b: a <= b}
    return all(ops[op](row[col], v) for col, cond in where.items() for op, v in cond.items())


def test_tag_counts(photos: lookalike.Table) -> None:
    expected = Counter(t.strip() for r in ROWS if r["tags"] for t in r["tags"].split(","))
    counts = tag_counts(photos, limit=3)
    assert list(counts.items()) == [("city street", 2), ("sea", 2), ("beach", 1)]
    assert tag_counts(photos, limit=100) == dict(sorted(expected.items(), key=lambda kv: (-kv[1], kv[0])))
    assert tag_counts(photos, filters={"name": "london"}) == {"black cat": 1, "city street": 1}


def test_no_option_is_no_filter() -> None:
    assert photo_filter() is None
    assert parse_radius("500m") == pytest.approx(0.5) and parse_radius("3mi") == pytest.approx(4.828032)
    assert parse_radius(2) == 2.0 and parse_near(" 48.85 , 2.35 ") == (48.85, 2.35)


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"since": "June 2023"}, "--since"),
        ({"since": "2023-13"}, "--since"),
        ({"until": "2023-02-30"}, "--until"),
        ({"since": "2023-09", "until": "2023-06"}, "--since"),
        ({"near": "48.85"}, "--near"),
        ({"near": "north,east"}, "--near"),
        ({"near": "95,2"}, "--near"),
        ({"near": "48.85,2.35", "radius": "5 parsecs"}, "--radius"),
        ({"near": "48.85,2.35", "radius": "-5km"}, "--radius"),
        ({"near": "48.85,2.35", "radius": "0m"}, "--radius"),
        ({"near": "48.85,2.35", "radius": "30000km"}, "--radius"),
        ({"radius": "5km"}, "--radius"),
        ({"camera": "   "}, "--camera"),
        ({"tag": "50%"}, "--tag"),
        ({"tag": "a, b"}, "--tag"),
        ({"tag": ""}, "--tag"),
    ],
)
def test_bad_values_name_the_option(options: dict[str, Any], option: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(option)):
        photo_filter(**options)


def test_tag_counts_bad_input(photos: lookalike.Table) -> None:
    with pytest.raises(ConfigurationError, match="no tag column 'labels'"):
        tag_counts(photos, column="labels")
    with pytest.raises(ConfigurationError, match="limit"):
        tag_counts(photos, limit=0)
