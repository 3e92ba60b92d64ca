"""The ``lookalike`` command, run as a subprocess on generated image folders with the tiny real model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_duplicates import _scene

TINY_CLIP = Path(__file__).parent / "fixtures" / "tiny-clip"
MODEL = f"local/{TINY_CLIP}"
pytestmark = pytest.mark.skipif(
    not TINY_CLIP.is_dir(), reason="tests/fixtures/tiny-clip (the tiny ONNX model) is absent"
)


def run(
    *args: str, cwd: Path, timeout: float = 60, env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    """``lookalike ARGS`` in ``cwd`` (the default ./lookalike.db lives there)."""
    env = env or {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    env.pop("LOOKALIKE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "lookalike.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _noise(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Six distinct pictures, one byte-identical copy, one sub-folder."""
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for i in range(6):
        # shapes on a background: pictures the tiny model keeps well apart (random noise it does not)
        _scene(rng, 96).save(photos / ("sub" if i >= 4 else ".") / f"p{i}.png")
    shutil.copy(photos / "p0.png", photos / "p0-copy.png")
    return photos


def _index_json(cwd: Path, *args: str) -> tuple[int, dict]:
    proc = run("index", *args, "--model", MODEL, "--json", cwd=cwd)
    return proc.returncode, json.loads(proc.stdout)


# ---------------------------------------------------------------------- help and usage errors


COMMANDS = [
    [],
    ["index"],
    ["search"],
    ["dupes"],
    ["serve"],
    ["info"],
    ["copy"],
    ["models"],
    ["models", "list"],
    ["models", "download"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "lookalike")
def test_help_for_every_command(command: list[str], tmp_path: Path) -> None:
    proc = run(*command, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout and len(proc.stdout.splitlines()) > 3


def test_unknown_command_and_flag_are_usage_errors(tmp_path: Path) -> None:
    assert run("frobnicate", cwd=tmp_path).returncode == 2
    bad_flag = run("search", "cat", "--no-such-flag", cwd=tmp_path)
    assert bad_flag.returncode == 2 and "no-such-flag" in bad_flag.stderr
    assert run("search", "cat", "--limit", "0", cwd=tmp_path).returncode == 2


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    proc = run("index", str(tmp_path / "nowhere"), "--model", MODEL, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"lookalike: no such file or folder: {tmp_path / 'nowhere'}"
    assert not (tmp_path / "lookalike.db").exists()  # refused before touching anything


def test_library_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.db").write_text("not a database")
    proc = run("search", "a cat", "--db", "bad.db", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("lookalike: cannot open SQLite database 'bad.db': file is not a database")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    debug = run("--debug", "search", "a cat", "--db", "bad.db", cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ConnectionFailedError" in debug.stderr


# ---------------------------------------------------------------------- index


def test_index_reindex_rename_delete(folder: Path, tmp_path: Path) -> None:
    rc, first = _index_json(tmp_path, str(folder))
    assert rc == 0 and (first["added"], first["failed"]) == (7, 0)

    rc, again = _index_json(tmp_path, str(folder))
    assert rc == 0 and (again["added"], again["skipped"]) == (0, 7)

    (folder / "p1.png").rename(folder / "sub" / "renamed.png")
    rc, renamed = _index_json(tmp_path, str(folder))
    # the rename reuses the row and its vector: nothing was embedded
    assert rc == 0 and (renamed["reused"], renamed["added"], renamed["removed"]) == (1, 0, 0)

    (folder / "p2.png").unlink()
    rc, deleted = _index_json(tmp_path, str(folder))
    assert rc == 0 and (deleted["removed"], deleted["skipped"]) == (1, 6)

    human = run("index", str(folder), cwd=tmp_path)
    assert human.returncode == 0 and "6 unchanged" in human.stdout and "0 failed" in human.stdout


def test_corrupt_image_among_good_ones(folder: Path, tmp_path: Path) -> None:
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    errors = tmp_path / "errors.jsonl"
    proc = run("index", str(folder), "--model", MODEL, "--errors", str(errors), cwd=tmp_path)
    assert proc.returncode == 1
    assert "7 added" in proc.stdout and "1 failed" in proc.stdout
    assert str(folder / "broken.jpg") in proc.stderr
    (failure,) = [json.loads(line) for line in errors.read_text().splitlines()]
    assert failure["path"] == str(folder / "broken.jpg") and failure["error"]


_SIMULATE_UNREADABLE = """
import os
_blocked = os.environ["LOOKALIKE_TEST_UNREADABLE"]
_real_scandir = os.scandir


def _scandir(path="."):
    if os.path.abspath(os.fspath(path)) == _blocked:
        raise PermissionError(13, "Permission denied", os.fspath(path))
    return _real_scandir(path)


os.scandir = _scandir
"""


def test_unreadable_folder(folder: Path, tmp_path: Path) -> None:
    """A folder that can't be listed is reported (exit 1), the rest is indexed, its rows are kept."""
    assert _index_json(tmp_path, str(folder))[0] == 0
    blocked = folder / "sub"
    extra: dict = {}
    if os.geteuid() == 0:
        # root lists any folder whatever its mode: make the subprocess's scandir fail the way the OS
        # would for an unreadable folder (a sitecustomize module, so the real CLI code path runs)
        hook = tmp_path / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(_SIMULATE_UNREADABLE)
        root = str(Path(__file__).parent.parent)
        extra["env"] = {
            **os.environ,
            "PYTHONPATH": f"{hook}{os.pathsep}{root}",
            "LOOKALIKE_TEST_UNREADABLE": str(blocked),
        }
    else:
        os.chmod(blocked, 0o000)
    try:
        proc = run("index", str(folder), "--json", cwd=tmp_path, **extra)
    finally:
        os.chmod(blocked, 0o755)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert [f["path"] for f in report["failures"]] == [str(blocked)]
    assert "denied" in report["failures"][0]["error"].lower()
    # the two pictures in the unreadable folder keep their rows
    assert report["removed"] == 0 and report["skipped"] == 5
    info = json.loads(run("info", "--json", cwd=tmp_path).stdout)
    assert info["tables"][0]["rows"] == 7


def test_ctrl_c_stops_cleanly_and_keeps_committed_work(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    big = tmp_path / "big"
    big.mkdir()
    total = 240
    for i in range(total):
        _noise(rng, 320, 240).save(big / f"n{i:03d}.jpg", quality=90)
    db = tmp_path / "lookalike.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lookalike.cli", "index", str(big), "--model", MODEL, "--chunk-size", "4"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )

    def committed() -> int:
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                return conn.execute("SELECT count(*) FROM images").fetchone()[0]
        except sqlite3.Error:
            return 0

    deadline = time.monotonic() + 60
    while committed() == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    kept = committed()
    if proc.returncode == 0 and kept == total:
        pytest.skip("indexing finished before the interrupt arrived")
    assert proc.returncode == 130, err
    assert "stopping…" in err and "stopped early" in out
    assert 0 < kept < total
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # every committed row is whole: its vector is there
        assert conn.execute("SELECT count(*) FROM images WHERE vec IS NULL").fetchone()[0] == 0
    rc, rest = _index_json(tmp_path, str(big))
    assert rc == 0 and rest["skipped"] == kept and rest["added"] == total - kept


# ---------------------------------------------------------------------- search, dupes, info


def test_search_by_text_path_and_json(folder: Path, tmp_path: Path) -> None:
    assert _index_json(tmp_path, str(folder))[0] == 0

    text = run("search", "a photo of a dog", "--limit", "3", cwd=tmp_path)
    assert text.returncode == 0
    lines = text.stdout.strip().splitlines()
    assert len(lines) == 3
    rank, score, path = lines[0].split(maxsplit=2)
    assert rank == "1" and -1 <= float(score) <= 1 and Path(path).is_file()

    by_image = run("search", str(folder / "p3.png"), "--json", "--limit", "2", cwd=tmp_path)
    hits = json.loads(by_image.stdout)
    assert by_image.returncode == 0 and [h["rank"] for h in hits] == [1, 2]
    assert hits[0]["path"] == str(folder / "p3.png") and hits[0]["score"] == pytest.approx(1, abs=1e-4)
    assert set(hits[0]) >= {"rank", "score", "distance", "id", "path", "width", "height"}

    filtered = run(
        "search",
        str(folder / "p3.png"),
        "--image",
        "--json",
        "--filter",
        '{"width": {"$gt": 1000}}',
        cwd=tmp_path,
    )
    assert filtered.returncode == 0 and json.loads(filtered.stdout) == []
    assert run("search", "x", "--text", "--image", cwd=tmp_path).returncode == 2
    assert run("search", "x", "--filter", "{oops", cwd=tmp_path).returncode == 2
    missing = run("search", str(folder / "gone.png"), "--image", cwd=tmp_path)
    assert missing.returncode == 1 and "gone.png" in missing.stderr


def test_dupes_json_lists_groups_and_deletes_nothing(folder: Path, tmp_path: Path) -> None:
    Image.open(folder / "p3.png").resize((48, 48), Image.BILINEAR).save(folder / "p3-small.png")
    assert _index_json(tmp_path, str(folder))[0] == 0
    proc = run("dupes", "--json", cwd=tmp_path)
    assert proc.returncode == 0
    groups = json.loads(proc.stdout)
    names = sorted(sorted(Path(m["path"]).name for m in g["members"]) for g in groups)
    assert names == [["p0-copy.png", "p0.png"], ["p3-small.png", "p3.png"]]
    small = next(g for g in groups if any("p3" in m["path"] for m in g["members"]))
    keeper = next(m for m in small["members"] if m["id"] == small["keeper"])
    assert Path(keeper["path"]).name == "p3.png"  # the larger picture is suggested
    assert next(g for g in groups if g["exact"])["max_distance"] == 0
    human = run("dupes", cwd=tmp_path)
    assert "keep" in human.stdout and "nothing was deleted" in human.stderr
    info = json.loads(run("info", "--json", cwd=tmp_path).stdout)
    assert info["tables"][0]["rows"] == 8


def test_dupes_shows_kind_labels_folders_and_similar_shots(tmp_path: Path) -> None:
    from tests.helpers.scenes import TRANSFORMS, Scene, burst_shot, encode, first_shot

    photos = tmp_path / "photos"
    (photos / "backup").mkdir(parents=True)
    scene = Scene(13)  # its copies and burst shots sit within 0.03 of the original for the tiny model
    original = encode(first_shot(scene), "JPEG")
    (photos / "s13.jpg").write_bytes(original)
    (photos / "backup" / "s13-small.jpg").write_bytes(TRANSFORMS["resize50"][0](original, "JPEG", 13)[0])
    for k in (1, 2):
        (photos / f"s13-burst{k}.jpg").write_bytes(encode(burst_shot(scene, k), "JPEG"))
    assert _index_json(tmp_path, str(photos))[0] == 0

    human = run("dupes", cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("group 1: same picture, 2 images, diameter 0.0")
    assert lines[1].split()[0] == "keep" and lines[1].endswith(f"s13.jpg  480x360  in {photos}")
    assert "same picture (resized)" in lines[2] and lines[2].endswith(f"240x180  in {photos / 'backup'}")
    assert "burst" not in human.stdout  # similar shots only with --similar

    with_similar = run("dupes", "--similar", cwd=tmp_path)
    assert with_similar.returncode == 0
    assert "similar" in with_similar.stdout and "s13-burst" in with_similar.stdout
    assert "similar shots" in with_similar.stderr

    groups = json.loads(run("dupes", "--similar", "--json", cwd=tmp_path).stdout)
    (group,) = groups
    assert group["kind"] == "similar" and 0 < group["diameter"] <= 0.03
    matches = {Path(m["path"]).name: (m["match"], m["detail"]) for m in group["members"]}
    assert matches["s13.jpg"] == ("keeper", "")
    assert matches["s13-small.jpg"] == ("same picture", "resized")
    assert {v for k, v in matches.items() if "burst" in k} == {("similar", "")}


def test_info(folder: Path, tmp_path: Path) -> None:
    empty = run("info", cwd=tmp_path)
    assert empty.returncode == 2 and "no index at lookalike.db" in empty.stderr
    assert not (tmp_path / "lookalike.db").exists()
    assert _index_json(tmp_path, str(folder))[0] == 0
    proc = run("info", cwd=tmp_path)
    assert proc.returncode == 0
    assert "images: 7 rows" in proc.stdout and "sqlite" in proc.stdout and "tiny-clip" in proc.stdout
    data = json.loads(run("info", "--json", cwd=tmp_path).stdout)
    assert data["engine"] == "sqlite"
    (table,) = data["tables"]
    assert table["name"] == "images" and table["vectors"]["vec"]["dimensions"] == 16


def test_models_list(tmp_path: Path) -> None:
    proc = run("models", "list", "--json", cwd=tmp_path)
    assert proc.returncode == 0
    names = [m["name"] for m in json.loads(proc.stdout)]
    assert "clip-vit-b-32" in names
    assert "local/clip-vit-b-32" in run("models", "list", cwd=tmp_path).stdout


@pytest.fixture
def indexed(folder: Path, tmp_path: Path) -> Iterator[Path]:
    assert _index_json(tmp_path, str(folder))[0] == 0
    yield tmp_path


def test_copy_to_another_database(indexed: Path) -> None:
    proc = run("copy", "--to", str(indexed / "backup.db"), cwd=indexed)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(run("info", "--db", str(indexed / "backup.db"), "--json", cwd=indexed).stdout)
    assert data["tables"][0]["rows"] == 7
