"""Real photo folders: symlink loops, outside links, non-UTF-8 names, broken files, stops, the first run."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import lookalike
from lookalike import ConfigurationError, ModelNotFoundError
from lookalike.embeddings import model_files
from lookalike.folders import folder_schema, index_paths
from lookalike.paths import from_text, to_text
from lookalike.walk import LOOP, OUTSIDE, SEEN_FILE, scan_paths
from tests.toy_embedder import COLOURS, ToyEmbedder

LATIN1_NAME = b"caf\xe9_\xff.jpg"  # not UTF-8: an old camera's or a Samba share's file name


def _image(path: Path | bytes, rgb: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    im = Image.new("RGB", size, rgb)
    if isinstance(path, bytes):
        with open(path, "wb") as fh:  # a bytes path: the name is kept byte for byte
            im.save(fh, format="JPEG")
    else:
        im.save(path)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A messy home folder: loops, a link outside, links to files, a dangling link, broken files."""
    pics = tmp_path / "pics"
    (pics / "trip" / "day1").mkdir(parents=True)
    _image(pics / "cat.jpg", COLOURS["orange"])
    _image(pics / "trip" / "beach.png", COLOURS["blue"])
    _image(pics / "trip" / "day1" / "tree.png", COLOURS["green"])
    os.symlink("..", pics / "loop")  # leads out of the root, to the folder above it
    os.symlink("..", pics / "trip" / "up")  # leads back to pics: a loop inside the root
    os.symlink("../..", pics / "trip" / "day1" / "upup")  # a second loop
    os.symlink("self", pics / "self")  # a link to itself (ELOOP)
    os.symlink("cat.jpg", pics / "alias.jpg")  # a second path to a file already indexed
    os.symlink("nowhere.jpg", pics / "gone.jpg")  # dangling
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _image(outside / "far.png", COLOURS["purple"])
    os.symlink(outside, pics / "ext")  # a folder outside the root
    os.symlink(outside / "far.png", pics / "far-link.png")  # a file outside the root: followed
    (pics / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    _image(os.fsencode(pics) + b"/" + LATIN1_NAME, COLOURS["red"])
    return pics


def _names(found: list) -> list[str]:
    return sorted(os.path.basename(f.fspath) for f in found)


def test_walk_enters_each_folder_once_and_reports_what_it_skipped(home: Path) -> None:
    started = time.monotonic()
    result = scan_paths([home])
    assert time.monotonic() - started < 5
    # every picture once: no pics/loop/pics/..., no trip/up/trip/..., alias.jpg is cat.jpg
    assert _names(result.files) == sorted(
        ["beach.png", "broken.jpg", "cat.jpg", os.fsdecode(LATIN1_NAME), "far-link.png", "tree.png"]
    )
    assert all(str(home) in f.fspath for f in result.files)
    assert result.skipped[LOOP] == 3  # trip/up, day1/upup, self
    assert result.skipped[OUTSIDE] == 2  # ext, loop (both lead out of pics)
    assert result.skipped[SEEN_FILE] == 1  # alias.jpg
    summary = result.summary()
    assert "3 symlink loops" in summary and "--follow-links" in summary and "\n" not in summary
    assert [(Path(p.path).name, p.error) for p in result.problems] == [("gone.jpg", "broken symlink")]


def test_follow_links_still_never_enters_a_folder_twice(home: Path) -> None:
    result = scan_paths([home], follow_links=True)
    names = _names(result.files)
    # far.png is reached as ext/far.png and through far-link.png: indexed once, under the path that isn't a link
    assert names.count("far-link.png") + names.count("far.png") == 1 and "far.png" in names
    assert len(names) == 6
    # loop -> .. is followed now, and walks back into pics: that is a loop, not a second walk
    assert result.skipped[LOOP] >= 3 and result.skipped[OUTSIDE] == 0


def test_a_file_found_by_two_paths_is_indexed_under_the_real_one(tmp_path: Path) -> None:
    _image(tmp_path / "b.png", COLOURS["red"])
    os.symlink("b.png", tmp_path / "a.png")  # first in name order, but a link
    os.link(tmp_path / "b.png", tmp_path / "c.png")  # a hard link: same inode
    result = scan_paths([tmp_path])
    assert _names(result.files) == ["b.png"] and result.skipped[SEEN_FILE] == 2


def test_index_a_messy_home_folder(tmp_path: Path, home: Path) -> None:
    client = lookalike.connect(tmp_path / "index.db")
    report = index_paths(client, [home], model=ToyEmbedder())
    assert report.added == 5  # cat, beach, tree, far-link, the Latin-1 name
    errors = {Path(f.path).name: f.error for f in report.failures}
    assert set(errors) == {"broken.jpg", "gone.jpg"}
    assert errors["gone.jpg"] == "broken symlink" and "JPEG" in errors["broken.jpg"]
    assert "symlink loop" in report.skipped_entries
    table = client.open_table("images")
    paths = [r["path"] for r in table.query().to_list()]
    assert len(paths) == len(set(paths)) == 5
    # the name that isn't UTF-8: stored as printable text, mapped back to the very same bytes
    latin = next(p for p in paths if "caf" in p)
    assert latin.endswith("caf\ufffdE9_\ufffdFF.jpg")
    assert os.fsencode(from_text(latin)) == os.fsencode(home) + b"/" + LATIN1_NAME
    hit = table.search(Image.new("RGB", (40, 30), COLOURS["red"])).limit(1).to_list()[0]
    assert hit["path"] == latin and hit["_score"] > 0.999  # its vector is its own picture's
    client.close()


def test_no_single_item_costs_its_chunk(tmp_path: Path) -> None:
    # a name that no text column could take used to lose the whole chunk: now every other file lands
    folder = tmp_path / "pics"
    folder.mkdir()
    for i, (name, rgb) in enumerate(COLOURS.items()):
        _image(folder / f"{i}-{name}.png", rgb)
    _image(os.fsencode(folder) + b"/\xff\xfe.jpg", COLOURS["white"])
    client = lookalike.connect(tmp_path / "index.db")
    report = index_paths(client, [folder], model=ToyEmbedder(), chunk_size=64)
    assert (report.added, report.failed) == (9, 0)
    client.close()


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_stored_paths_round_trip_any_file_name(name: bytes) -> None:
    path = os.fsdecode(b"/photos/" + name)
    text = to_text(path)
    text.encode("utf-8")  # storable in any text column
    assert from_text(text) == path
    if _utf8(name) and "\ufffd" not in path:
        assert text == path  # valid names are stored as they are
    else:
        assert text != path


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_ordinary_paths_are_stored_unchanged() -> None:
    for path in ["/a/b.jpg", "/фото/кот.jpg", "/写真/猫.png", "/x/emoji 🐈.webp"]:
        assert to_text(path) == path and from_text(path) == path
    assert to_text("/odd\ufffdname.jpg") == "/odd\ufffd\ufffdname.jpg"  # a literal U+FFFD is doubled
    assert from_text("/odd\ufffd\ufffdname.jpg") == "/odd\ufffdname.jpg"


# ---------------------------------------------------------------------- stops


def _many_folders(root: Path, folders: int = 300, per: int = 3) -> None:
    for i in range(folders):
        sub = root / f"f{i:04d}"
        sub.mkdir(parents=True)
        for j in range(per):
            (sub / f"{j}.jpg").write_bytes(b"")  # the walk reads no file


def test_a_stop_while_scanning_ends_the_walk_and_removes_nothing(tmp_path: Path) -> None:
    client = lookalike.connect(tmp_path / "index.db")
    pics = tmp_path / "pics"
    pics.mkdir()
    for name, rgb in COLOURS.items():
        _image(pics / f"{name}.png", rgb)
    index_paths(client, [pics], model=ToyEmbedder())
    _many_folders(pics / "more")
    calls = []

    def stop() -> bool:
        calls.append(1)
        return True

    report = index_paths(client, [pics], model=ToyEmbedder(), should_stop=stop)
    assert report.stopped and report.phase == "scanning" and len(calls) == 1
    assert client.open_table("images").rows() == 8  # a partial walk removes nothing
    client.close()


def test_the_walk_reports_files_found_while_it_goes(tmp_path: Path) -> None:
    _many_folders(tmp_path, folders=400)
    counts: list[int] = []
    result = scan_paths([tmp_path], on_found=counts.append)
    assert len(result.files) == 1200
    assert counts and counts == sorted(counts) and counts[-1] <= 1200


def test_a_stop_inside_a_chunk_abandons_it_at_once(tmp_path: Path) -> None:
    client = lookalike.connect(tmp_path / "index.db")
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(40):
        _image(pics / f"{i:02d}.png", (i * 6, 100, 200 - i * 4))
    state = {"stop": False}

    def progress(report: lookalike.IndexReport) -> None:
        if report.phase == "indexing" and report.done >= 5:
            state["stop"] = True  # as Ctrl-C would, in the middle of the first chunk

    report = index_paths(
        client,
        [pics],
        model=ToyEmbedder(),
        chunk_size=64,
        on_progress=progress,
        should_stop=lambda: state["stop"],
    )
    assert report.stopped and report.added == 0
    assert client.open_table("images").rows() == 0  # the chunk in flight was rolled back whole
    again = index_paths(client, [pics], model=ToyEmbedder())
    assert again.added == 40
    client.close()


# ---------------------------------------------------------------------- failures remembered


def test_known_failures_are_reported_apart_and_not_retried(tmp_path: Path) -> None:
    client = lookalike.connect(tmp_path / "index.db")
    pics = tmp_path / "pics"
    pics.mkdir()
    _image(pics / "ok.png", COLOURS["red"])
    broken = pics / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    os.symlink("missing.jpg", pics / "dangling.jpg")
    toy = ToyEmbedder()

    first = index_paths(client, [pics], model=toy)
    assert {Path(f.path).name for f in first.failures} == {"broken.jpg", "dangling.jpg"}
    second = index_paths(client, [pics], model=toy)
    assert second.failures == [] and {Path(f.path).name for f in second.known_failures} == {
        "broken.jpg",
        "dangling.jpg",
    }
    assert second.to_dict()["known_failed"] == 2

    later = time.time() + 10
    os.utime(broken, (later, later))  # changed (still broken): a new failure again
    third = index_paths(client, [pics], model=toy)
    assert [Path(f.path).name for f in third.failures] == ["broken.jpg"]

    retried = index_paths(client, [pics], model=toy, retry_failed=True)
    assert {Path(f.path).name for f in retried.failures} == {"broken.jpg", "dangling.jpg"}

    _image(broken, COLOURS["blue"])  # fixed
    (pics / "dangling.jpg").unlink()  # gone
    fixed = index_paths(client, [pics], model=toy)
    assert (fixed.added, fixed.failures, fixed.known_failures) == (1, [], [])
    broken.write_bytes(b"broken again")
    os.utime(broken, (later + 10, later + 10))
    assert [Path(f.path).name for f in index_paths(client, [pics], model=toy).failures] == ["broken.jpg"]
    client.close()


# ---------------------------------------------------------------------- the first run


def test_an_empty_table_takes_the_model_of_its_first_vectors(tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    _image(pics / "a.png", COLOURS["red"])
    client = lookalike.connect(tmp_path / "index.db")
    # what a first run with a model that never loaded left behind: a table and no vectors
    client.create_table(schema=folder_schema(ToyEmbedder(dimensions=8), "images"))
    report = index_paths(client, [pics], model=ToyEmbedder())
    assert report.added == 1
    assert client.open_table("images").vector_field("vec").dimensions == 16
    with pytest.raises(ConfigurationError, match=r"holds 1 vectors of toy.*--table NAME"):
        index_paths(client, [pics], model=ToyEmbedder(dimensions=8))
    client.close()


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("https://lookalike-test.invalid", "does not resolve"),  # no DNS answer for this name, ever
        ("http://127.0.0.1:9", "cannot connect"),  # the discard port: refused at once
    ],
)
def test_a_model_that_cannot_be_downloaded_fails_once_before_any_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str, reason: str
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # (an earlier test may have left the hub library offline)
    for var in model_files._PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(model_files, "_hub_checked", {})
    pics = tmp_path / "pics"
    pics.mkdir()
    _image(pics / "a.png", COLOURS["red"])
    client = lookalike.connect(tmp_path / "index.db")
    seen: list[str] = []
    with pytest.raises(ModelNotFoundError) as info:
        index_paths(client, [pics], model="local/clip-vit-b-32", on_progress=lambda r: seen.append(r.phase))
    message = str(info.value)
    assert reason in message and "lookalike models download clip-vit-b-32" in message
    assert "--model ./my-model" in message  # advice that works as written
    assert set(seen) == {"loading model"}  # no file was scanned or read
    assert not client.has_table("images")  # and no table was made for a model that never loaded
    client.close()


def test_a_folder_is_a_model_name(tmp_path: Path) -> None:
    from lookalike.embeddings.registry import split_model_name

    assert split_model_name(str(tmp_path)) == ("local", str(tmp_path))
    with pytest.raises(ConfigurationError, match="does not exist"):
        split_model_name(str(tmp_path / "nope"))
