"""EXIF metadata: read from JPEGs written here with Pillow (good, missing and broken values), and
stored by the folder indexer (NULL for what can't be right, reported once per run)."""

from __future__ import annotations

import datetime as dt
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, TiffImagePlugin

import lookalike
from lookalike.folders import index_paths
from lookalike.images.exif import read_photo_info
from tests.toy_embedder import ToyEmbedder

R = TiffImagePlugin.IFDRational


def _jpeg(path: Path, *, ifd0: dict | None = None, exif: dict | None = None, gps: dict | None = None) -> Path:
    data = Image.Exif()
    for tag, value in (ifd0 or {}).items():
        data[tag] = value
    if exif:
        data[0x8769] = exif
    if gps:
        data[0x8825] = gps
    Image.new("RGB", (64, 48), (200, 80, 40)).save(path, exif=data)
    return path


PARIS = {1: "N", 2: (R(48, 1), R(51, 1), R(2400, 100)), 3: "E", 4: (R(2, 1), R(21, 1), R(0, 1))}


def test_a_full_exif_block(tmp_path: Path) -> None:
    path = _jpeg(
        tmp_path / "a.jpg",
        ifd0={0x010F: "Google", 0x0110: "Pixel 7", 0x0112: 6},
        exif={0x9003: "2023:06:15 14:03:22", 0x9011: "+02:00"},
        gps={**PARIS, 3: "W"},
    )
    info = read_photo_info(path)
    assert info.taken_at == "2023-06-15T14:03:22+02:00"
    assert info.gps_lat == pytest.approx(48 + 51 / 60 + 24 / 3600)
    assert info.gps_lon == pytest.approx(-(2 + 21 / 60))  # west is negative
    assert (info.camera_make, info.camera_model, info.camera) == ("Google", "Pixel 7", "google pixel 7")
    assert (info.orientation, info.width, info.height, info.problems) == (6, 64, 48, ())


def test_no_exif_means_nulls_and_no_problem(tmp_path: Path) -> None:
    Image.new("RGB", (30, 20), "blue").save(tmp_path / "plain.png")
    info = read_photo_info(tmp_path / "plain.png")
    assert info.columns() == {
        "taken_at": None,
        "gps_lat": None,
        "gps_lon": None,
        "camera_make": None,
        "camera_model": None,
        "camera": None,
        "orientation": None,
        "width": 30,
        "height": 20,
    }
    assert info.problems == ()
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    assert read_photo_info(tmp_path / "junk.jpg").width is None  # unreadable: the embedder reports it


@pytest.mark.parametrize(
    ("gps", "problem"),
    [
        ({**PARIS, 2: (R(48, 0), R(51, 1), R(24, 1))}, "GPS latitude .* is not a number"),
        ({**PARIS, 2: (R(95, 1), R(0, 1), R(0, 1))}, "GPS latitude 95 is over 90"),
        ({**PARIS, 4: (R(200, 1), R(0, 1), R(0, 1))}, "GPS longitude 200 is over 180"),
        ({k: v for k, v in PARIS.items() if k != 1}, "GPS latitude has no N/S reference"),
        ({k: v for k, v in PARIS.items() if k != 3}, "GPS longitude has no E/W reference"),
        ({**PARIS, 2: (R(48, 1), R(75, 1), R(0, 1))}, "out of range"),
        ({1: "N", 2: PARIS[2]}, "GPS longitude is missing"),
    ],
)
def test_broken_gps_is_null(tmp_path: Path, gps: dict, problem: str) -> None:
    info = read_photo_info(_jpeg(tmp_path / "gps.jpg", gps=gps))
    assert (info.gps_lat, info.gps_lon) == (None, None)  # half a position is no position
    assert len(info.problems) == 1
    assert re.search(problem, info.problems[0]), info.problems


@pytest.mark.parametrize(
    ("exif", "taken_at", "problem"),
    [
        ({0x9003: "2999:01:01 00:00:00"}, None, "in the future"),
        ({0x9003: "2023:13:40 10:00:00"}, None, "malformed"),
        ({0x9003: "    :  :     :  :  "}, None, "malformed"),
        ({0x9003: "0000:00:00 00:00:00"}, None, "malformed"),
        ({0x9003: "1700:01:01 00:00:00"}, None, "before photography"),
        ({0x9003: "2020:02:29 08:00:00", 0x9011: "+99:00"}, "2020-02-29T08:00:00", "offset"),
        ({0x9004: "2021:05:01 12:00:00", 0x9010: "-05:00"}, "2021-05-01T12:00:00-05:00", None),
    ],
)
def test_dates(tmp_path: Path, exif: dict, taken_at: str | None, problem: str | None) -> None:
    info = read_photo_info(_jpeg(tmp_path / "d.jpg", exif=exif), now=dt.datetime(2024, 1, 1))
    assert info.taken_at == taken_at
    if problem is None:
        assert info.problems == ()
    else:
        assert len(info.problems) == 1 and problem in info.problems[0]


def test_bad_orientation_and_camera_key(tmp_path: Path) -> None:
    info = read_photo_info(
        _jpeg(tmp_path / "o.jpg", ifd0={0x0112: 42, 0x010F: "Canon", 0x0110: "Canon EOS R5"})
    )
    assert info.orientation is None and "orientation 42" in info.problems[0]
    assert info.camera == "canon eos r5"  # the make is not said twice


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pics"
    folder.mkdir()
    _jpeg(
        folder / "good.jpg",
        ifd0={0x010F: "Google", 0x0110: "Pixel 7"},
        exif={0x9003: "2023:06:15 14:03:22"},
        gps=PARIS,
    )
    _jpeg(folder / "future.jpg", exif={0x9003: "2999:06:15 14:03:22"})
    _jpeg(folder / "badgps.jpg", gps={**PARIS, 2: (R(48, 0), R(1, 1), R(1, 1))})
    Image.new("RGB", (10, 10), "red").save(folder / "plain.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")  # fails: the chunk is redone file by file
    return folder


def test_folder_index_stores_exif_and_reports_problems_once(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    with lookalike.connect(tmp_path / "i.db") as client:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = index_paths(client, [folder], model=ToyEmbedder(), tags=False)
        rows: dict[str, Any] = {
            Path(r["path"]).name: r for r in client.open_table("images").query().to_list()
        }
    assert report.added == 4 and report.failed == 1
    good = rows["good.jpg"]
    assert good["taken_at"] == "2023-06-15T14:03:22" and good["camera"] == "google pixel 7"
    assert good["gps_lat"] == pytest.approx(48.8567, abs=1e-4) and good["gps_lon"] == pytest.approx(2.35)
    assert rows["future.jpg"]["taken_at"] is None
    assert rows["badgps.jpg"]["gps_lat"] is None and rows["badgps.jpg"]["gps_lon"] is None
    assert all(rows["plain.png"][c] is None for c in ("taken_at", "gps_lat", "camera", "orientation"))
    assert rows["plain.png"]["width"] == 10
    problems = {Path(f.path).name: f.error for f in report.metadata_problems}
    assert set(problems) == {"future.jpg", "badgps.jpg"}  # each file once, even after the chunk retry
    assert "future" in problems["future.jpg"] and "GPS latitude" in problems["badgps.jpg"]
    exif_warnings = [w for w in caught if "EXIF values stored as NULL" in str(w.message)]
    assert len(exif_warnings) == 1 and "future.jpg" in str(exif_warnings[0].message)
    assert report.to_dict()["metadata_problems"][0]["path"].endswith(".jpg")
