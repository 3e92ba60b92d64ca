"""The steps of a folder index run, each alone, on real trees and a real index.

``index_paths`` is tested end to end in test_folders.py; here the diff against the index and the
rename detection are pinned on their own: which files are new, changed, unchanged or gone, and
which new files take a vanished row (and its vector) instead of being embedded again.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

import lookalike
from lookalike.folders import (
    IndexReport,
    _apply_renames,
    _detect_renames,
    _Diff,
    _diff_index,
    _read_index,
    _Stopped,
    index_paths,
)
from lookalike.table import Table
from lookalike.walk import scan_paths
from tests.toy_embedder import COLOURS, ToyEmbedder


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Eight pictures of distinct colours, half of them in ``trip/``."""
    folder = tmp_path / "photos"
    (folder / "trip").mkdir(parents=True)
    for i, (name, rgb) in enumerate(COLOURS.items()):
        where = folder / "trip" if i % 2 else folder
        Image.new("RGB", (40 + i, 30), rgb).save(where / f"{name}.png")
    return folder


@pytest.fixture
def client(tmp_path: Path):
    c = lookalike.connect(tmp_path / "index.db")
    yield c
    c.close()


def _indexed(client: lookalike.Client, *roots: Path) -> Table:
    report = index_paths(client, list(roots), model=ToyEmbedder())
    assert report.failed == 0 and report.added > 0
    return client.open_table("images")


def _diff(tbl: Table, *roots: Path, unreadable: tuple[str, ...] = ()) -> _Diff:
    scan = scan_paths(roots)
    return _diff_index(scan.files, _read_index(tbl), [str(r) for r in roots], list(unreadable))


def _ids(tbl: Table) -> dict[str, int]:
    return {Path(r["path"]).name: r["id"] for r in tbl.query().to_list()}


def _names(items: list) -> list[str]:
    return sorted(Path(w.path).name for w in items)


# ---------------------------------------------------------------------- the diff


def test_read_index_holds_every_row_without_its_vector(client: lookalike.Client, photos: Path) -> None:
    tbl = _indexed(client, photos)
    known = _read_index(tbl)
    assert sorted(Path(p).name for p in known) == sorted(f"{n}.png" for n in COLOURS)
    red = known[str(photos / "red.png")]
    st = os.stat(photos / "red.png")
    assert (red.id, red.size, red.mtime, red.has_vector) == (
        _ids(tbl)["red.png"],
        st.st_size,
        st.st_mtime,
        True,
    )


def test_diff_sorts_files_into_new_changed_unchanged_and_gone(client: lookalike.Client, photos: Path) -> None:
    tbl = _indexed(client, photos)
    ids = _ids(tbl)
    Image.new("RGB", (9, 9), (1, 2, 3)).save(photos / "trip" / "new.png")
    (photos / "blue.png").unlink()
    Image.new("RGB", (64, 64), COLOURS["green"]).save(photos / "red.png")  # new content, same name
    later = time.time() + 5
    os.utime(photos / "red.png", (later, later))
    os.utime(photos / "trip" / "orange.png", (later, later))  # touched only: still changed

    diff = _diff(tbl, photos)
    assert _names(diff.new) == ["new.png"] and diff.new[0].replaces is None
    assert _names(diff.changed) == ["orange.png", "red.png"]
    assert {Path(w.path).name: w.replaces for w in diff.changed} == {
        "orange.png": ids["orange.png"],
        "red.png": ids["red.png"],
    }
    red = next(w for w in diff.changed if w.path.endswith("red.png"))
    assert (red.size, red.mtime) == (os.stat(photos / "red.png").st_size, later)
    assert diff.unchanged == 5
    assert [(Path(r.path).name, r.id) for r in diff.gone] == [("blue.png", ids["blue.png"])]


def test_a_row_without_a_vector_is_changed_not_unchanged(client: lookalike.Client, photos: Path) -> None:
    tbl = _indexed(client, photos)
    tbl.update({"vec": None}, {"path": str(photos / "red.png")})
    diff = _diff(tbl, photos)
    assert _names(diff.changed) == ["red.png"] and diff.unchanged == 7
    assert diff.new == [] and diff.gone == []


def test_only_rows_under_the_roots_can_be_gone(
    client: lookalike.Client, photos: Path, tmp_path: Path
) -> None:
    sibling = tmp_path / "photos-old"  # its name starts with the root's: still not under it
    sibling.mkdir()
    Image.new("RGB", (12, 12), (9, 9, 9)).save(sibling / "old.png")
    tbl = _indexed(client, photos, sibling)
    (sibling / "old.png").unlink()
    (photos / "red.png").unlink()
    (photos / "trip" / "orange.png").unlink()

    diff = _diff(tbl, photos / "trip")  # the sub-folder alone: rows of the folder above stay
    assert [Path(r.path).name for r in diff.gone] == ["orange.png"]
    diff = _diff(tbl, photos)
    assert sorted(Path(r.path).name for r in diff.gone) == ["orange.png", "red.png"]


def test_rows_under_an_unreadable_folder_are_not_gone(client: lookalike.Client, photos: Path) -> None:
    tbl = _indexed(client, photos)
    shutil.rmtree(photos / "trip")
    (photos / "red.png").unlink()
    diff = _diff(tbl, photos, unreadable=(str(photos / "trip"),))
    assert [Path(r.path).name for r in diff.gone] == ["red.png"]
    diff = _diff(tbl, photos)
    assert len(diff.gone) == 5


def test_url_rows_are_never_gone(client: lookalike.Client, photos: Path) -> None:
    tbl = _indexed(client, photos)
    tbl.insert({"path": "https://example.com/cat.jpg", "vec": [0.25] * 16})
    known = _read_index(tbl)
    assert "https://example.com/cat.jpg" in known
    diff = _diff_index([], known, ["https:"], [])  # even a root the URL's text starts with
    assert diff.gone == []


# ---------------------------------------------------------------------- renames


def _renames(tbl: Table, root: Path, stop=lambda: False):
    diff = _diff(tbl, root)
    return diff, _detect_renames(tbl, diff.new, diff.gone, stop)


def test_a_moved_file_takes_its_old_row(client: lookalike.Client, photos: Path) -> None:
    tbl = _indexed(client, photos)
    ids = _ids(tbl)
    (photos / "red.png").rename(photos / "trip" / "crimson.png")
    (photos / "blue.png").unlink()
    Image.new("RGB", (9, 9), (1, 2, 3)).save(photos / "fresh.png")

    diff, renames = _renames(tbl, photos)
    assert _names(diff.new) == ["crimson.png", "fresh.png"]
    assert [(Path(w.path).name, rid) for w, rid in renames.moved] == [("crimson.png", ids["red.png"])]
    assert _names(renames.new) == ["fresh.png"]
    assert [Path(r.path).name for r in renames.gone] == ["blue.png"]


def test_same_size_other_content_is_not_a_rename(client: lookalike.Client, photos: Path) -> None:
    tbl = _indexed(client, photos)
    data = bytearray((photos / "red.png").read_bytes())
    data[-1] ^= 0xFF  # the same size, other bytes
    (photos / "red.png").unlink()
    (photos / "impostor.png").write_bytes(bytes(data))

    _, renames = _renames(tbl, photos)
    assert renames.moved == []
    assert _names(renames.new) == ["impostor.png"]
    assert [Path(r.path).name for r in renames.gone] == ["red.png"]


def test_a_vanished_row_goes_to_one_new_file_only(client: lookalike.Client, photos: Path) -> None:
    tbl = _indexed(client, photos)
    ids = _ids(tbl)
    shutil.copyfile(photos / "red.png", photos / "copy-a.png")
    shutil.copyfile(photos / "red.png", photos / "copy-b.png")
    (photos / "red.png").unlink()

    _, renames = _renames(tbl, photos)
    assert [rid for _, rid in renames.moved] == [ids["red.png"]]
    assert len(renames.new) == 1 and renames.gone == []
    assert {Path(renames.moved[0][0].path).name, Path(renames.new[0].path).name} == {
        "copy-a.png",
        "copy-b.png",
    }


def test_vanished_copies_go_to_as_many_new_files(client: lookalike.Client, photos: Path) -> None:
    shutil.copyfile(photos / "red.png", photos / "red-again.png")
    tbl = _indexed(client, photos)
    ids = _ids(tbl)
    for name in ("red.png", "red-again.png"):
        (photos / name).rename(photos / "trip" / name)

    _, renames = _renames(tbl, photos)
    assert sorted(rid for _, rid in renames.moved) == sorted([ids["red.png"], ids["red-again.png"]])
    assert renames.new == [] and renames.gone == []


def test_a_stop_ends_rename_detection_before_any_file_is_read(client: lookalike.Client, photos: Path) -> None:
    tbl = _indexed(client, photos)
    (photos / "red.png").rename(photos / "trip" / "crimson.png")
    with pytest.raises(_Stopped):
        _renames(tbl, photos, stop=lambda: True)
    # nothing of the same size vanished: no file to read, so nothing to stop
    (photos / "trip" / "crimson.png").rename(photos / "red.png")
    Image.new("RGB", (9, 9), (1, 2, 3)).save(photos / "fresh.png")
    _, renames = _renames(tbl, photos, stop=lambda: True)
    assert renames.moved == [] and _names(renames.new) == ["fresh.png"]


def test_applying_renames_keeps_rows_and_vectors_and_deletes_the_rest(
    client: lookalike.Client, photos: Path
) -> None:
    tbl = _indexed(client, photos)
    before = {r["id"]: r for r in tbl.query().to_list()}
    red_id = _ids(tbl)["red.png"]
    (photos / "red.png").rename(photos / "trip" / "crimson.png")
    (photos / "blue.png").unlink()

    _, renames = _renames(tbl, photos)
    report = IndexReport()
    _apply_renames(tbl, renames, report)
    assert (report.reused, report.removed) == (1, 1)
    after = {r["id"]: r for r in tbl.query().to_list()}
    assert set(after) == set(before) - {_id for _id, r in before.items() if r["path"].endswith("blue.png")}
    assert after[red_id]["path"] == str(photos / "trip" / "crimson.png")
    assert after[red_id]["vec"] == before[red_id]["vec"]
    assert after[red_id]["mtime"] == os.stat(photos / "trip" / "crimson.png").st_mtime
