"""``lookalike search`` with several terms (``"2:a dog" + ./pool.jpg - grass``), as a subprocess with the
tiny real model, compared with the library's own multi-example search on the same database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, TiffImagePlugin

import lookalike
from lookalike.examples import Example
from tests.test_cli import _index_json, folder, run  # noqa: F401  (folder is a fixture)

R = TiffImagePlugin.IFDRational
pytestmark = pytest.mark.skipif(
    not (Path(__file__).parent / "fixtures" / "tiny-clip").is_dir(),
    reason="tests/fixtures/tiny-clip (the tiny ONNX model) is absent",
)


@pytest.fixture
def indexed(folder: Path, tmp_path: Path) -> Path:  # noqa: F811
    assert _index_json(tmp_path, str(folder))[0] == 0
    return folder


def same(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> bool:
    """The same paths in the same order, with the same scores (to float32 rounding)."""
    return [p for p, _ in got] == [p for p, _ in want] and all(
        abs(a - b) < 1e-5 for (_, a), (_, b) in zip(got, want)
    )


def library_hits(cwd: Path, **query: object) -> list[tuple[str, float]]:
    client = lookalike.connect(cwd / "lookalike.db")
    try:
        hits = client.open_table("images").search(**query).limit(5).to_list()
    finally:
        client.close()
    return [(h["path"], h["_score"]) for h in hits]


def cli_hits(cwd: Path, *args: str) -> list[tuple[str, float]]:
    proc = run("search", "--json", "--limit", "5", *args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return [(h["path"], h["score"]) for h in json.loads(proc.stdout)]


def test_several_terms_are_one_query(indexed: Path, tmp_path: Path) -> None:
    p0, p3 = str(indexed / "p0.png"), str(indexed / "p3.png")
    got = cli_hits(tmp_path, "2:a red square", "+", p0, "-", p3)
    want = library_hits(
        tmp_path,
        positive=[Example("a red square", 2.0, "text"), Example(p0, 1.0, "image")],
        negative=[Example(p3, 1.0, "image")],
    )
    assert same(got, want)
    # the negative example pushes p3 away: it is not among the first hits it would lead otherwise
    assert p3 not in [p for p, _ in got[:1]]


def test_one_term_keeps_the_single_query_behaviour(indexed: Path, tmp_path: Path) -> None:
    # "2:cat" alone is the words "2:cat", exactly as before: no weight reading for a single term
    assert same(cli_hits(tmp_path, "2:cat"), library_hits(tmp_path, query="2:cat"))
    p1 = str(indexed / "p1.png")
    assert same(cli_hits(tmp_path, p1), library_hits(tmp_path, query=p1))


def test_text_flag_reads_every_term_as_words(indexed: Path, tmp_path: Path) -> None:
    p1 = str(indexed / "p1.png")
    got = cli_hits(tmp_path, "--text", "--", p1, "-", "a cat")
    want = library_hits(
        tmp_path, positive=[Example(p1, kind="text")], negative=[Example("a cat", kind="text")]
    )
    assert same(got, want)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a cat", "-"], "'-' at the end has no term after it"),
        (["a cat", "+", "+", "dog"], "two operators in a row"),
        (["golden", "retriever"], "no + or - between them"),
        (["0:cat", "+", "dog"], "weight must be above 0"),
        (["-", "grass"], "at least one positive example"),
        (["a cat", "-", "a cat"], "cancel each other out"),
    ],
)
def test_bad_terms_are_usage_errors(indexed: Path, tmp_path: Path, args: list[str], message: str) -> None:
    proc = run("search", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------------- photo filters on `search`


def _exif_jpeg(
    path: Path, colour: tuple[int, int, int], *, taken: str, camera: tuple[str, str], gps: dict
) -> None:
    data = Image.Exif()
    data[0x010F], data[0x0110] = camera
    data[0x8769] = {0x9003: taken}
    data[0x8825] = gps
    Image.new("RGB", (64, 48), colour).save(path, exif=data)


def _gps(lat: float, lon: float) -> dict:
    def dms(x: float) -> tuple:
        return (R(int(abs(x) * 10000), 10000), R(0, 1), R(0, 1))

    return {1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon)}


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Four pictures: Paris in June 2023 (Pixel 7), Lyon in August 2023 (Pixel 7 Pro), Paris in
    2021 (Canon), and one with no EXIF at all."""
    album = tmp_path / "photos"
    album.mkdir()
    _exif_jpeg(
        album / "paris.jpg",
        (200, 40, 40),
        taken="2023:06:15 10:00:00",
        camera=("Google", "Pixel 7"),
        gps=_gps(48.8566, 2.3522),
    )
    _exif_jpeg(
        album / "lyon.jpg",
        (40, 200, 40),
        taken="2023:08:02 18:30:00",
        camera=("Google", "Pixel 7 Pro"),
        gps=_gps(45.764, 4.8357),
    )
    _exif_jpeg(
        album / "old.jpg",
        (40, 40, 200),
        taken="2021:05:01 09:00:00",
        camera=("Canon", "EOS 5D"),
        gps=_gps(48.87, 2.33),
    )
    Image.new("RGB", (64, 48), (120, 120, 120)).save(album / "plain.png")
    assert _index_json(tmp_path, str(album))[0] == 0
    return album


def found(cwd: Path, *args: str) -> set[str]:
    return {Path(p).name for p, _ in cli_hits(cwd, *args)}


def test_photo_filters(photos: Path, tmp_path: Path) -> None:
    assert found(tmp_path, "--since", "2023-06", "--until", "2023-09", "a photo") == {"paris.jpg", "lyon.jpg"}
    assert found(tmp_path, "--until", "2022", "a photo") == {"old.jpg"}
    assert found(tmp_path, "--camera", "pixel 7", "a photo") == {"paris.jpg", "lyon.jpg"}
    assert found(tmp_path, "--camera", "Pixel 7 Pro", "a photo") == {"lyon.jpg"}
    # 5 km around Notre-Dame: the Paris pictures (the 2021 one is ~2.8 km away), not Lyon
    assert found(tmp_path, "--near", "48.853,2.349", "--radius", "5km", "a photo") == {"paris.jpg", "old.jpg"}
    assert found(tmp_path, "--near", "48.853,2.349", "--radius", "1km", "a photo") == {"paris.jpg"}
    # several filters, several terms and --filter JSON all together
    both = ("--camera", "pixel", "--filter", '{"width": 64}', "--since", "2023-07")
    assert found(tmp_path, *both, "a photo", "-", str(photos / "paris.jpg")) == {"lyon.jpg"}


def test_tag_filter_uses_the_tags_the_index_wrote(photos: Path, tmp_path: Path) -> None:
    client = lookalike.connect(tmp_path / "lookalike.db")
    try:
        rows = client.open_table("images").query(columns=["path", "tags"]).to_list()
    finally:
        client.close()
    tagged = {Path(r["path"]).name: r["tags"] for r in rows}
    word = next(t.strip() for t in (tagged["paris.jpg"] or "").split(",") if t.strip())
    want = {name for name, tags in tagged.items() if word in [t.strip() for t in (tags or "").split(",")]}
    assert "paris.jpg" in want
    assert found(tmp_path, "--tag", word, "a photo") == want


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2023-13"], "--since"),
        (["--until", "June"], "--until"),
        (["--since", "2023-09", "--until", "2023-06"], "no picture can match"),
        (["--near", "48.85"], "--near"),
        (["--near", "48.85,2.35", "--radius", "5 parsecs"], "--radius"),
        (["--radius", "5km"], "--radius needs --near"),
        (["--camera", "  "], "--camera"),
        (["--tag", "beach,sea"], "--tag"),
        (["--tag", "beach", "--where", "width > 10"], "--where cannot be combined"),
    ],
)
def test_bad_photo_filters_are_usage_errors(
    photos: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    proc = run("search", *args, "a photo", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
