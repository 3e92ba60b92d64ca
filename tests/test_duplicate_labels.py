"""Why two images are grouped: the pixel check's labels on generated copies and burst shots.

Pictures come from tests/helpers/scenes.py (structured scenes, their copies, burst shots); the
end-to-end tests index them with the tiny real CLIP model into SQLite in a temp dir.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import lookalike
from lookalike.duplicates import IDENTICAL_FILE, SAME_PICTURE, SIMILAR, find_duplicates
from lookalike.folders import index_paths
from lookalike.images.compare import compare_prints, pixel_print
from tests.helpers.scenes import SUFFIX, TRANSFORMS, Scene, burst_shot, encode, first_shot

TINY_CLIP = Path(__file__).parent / "fixtures" / "tiny-clip"
needs_model = pytest.mark.skipif(not TINY_CLIP.is_dir(), reason="tests/fixtures/tiny-clip is absent")
# scenes 13 and 11 keep all their copies and burst shots within 0.15 of each other with the tiny
# model (13: within 0.03), and ~0.5 from each other: one vector group per scene at threshold 0.15
THRESHOLD = 0.15


def _expected(name: str, original_format: str, copy_format: str) -> str:
    return "format change" if name == "reencode" and original_format != copy_format else TRANSFORMS[name][1]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_pixel_check_labels_each_transform_and_burst(fmt: str) -> None:
    for seed in (3, 4, 5):
        scene = Scene(seed)
        original = encode(first_shot(scene), fmt)
        po = pixel_print(original)
        for name, (make, _) in TRANSFORMS.items():
            data, out_fmt = make(original, fmt, seed)
            match = compare_prints(po, pixel_print(data))
            assert match.label == SAME_PICTURE, (seed, name, match)
            assert _expected(name, fmt, out_fmt) in match.details, (seed, name, match)
            if name in ("mirror", "crop5"):  # geometry is only reported where it happened
                assert ("mirrored" in match.details) == (name == "mirror")
                assert ("cropped" in match.details) == (name == "crop5")
        for k in (1, 2):
            match = compare_prints(po, pixel_print(encode(burst_shot(scene, k), fmt)))
            assert match.label == SIMILAR, (seed, k, match)
        assert compare_prints(po, pixel_print(original)).label == IDENTICAL_FILE


def test_pixel_check_reads_relative_brightness_both_ways() -> None:
    scene = Scene(6)
    original = encode(first_shot(scene), "PNG")
    brighter, _ = TRANSFORMS["bright15"][0](original, "PNG", 6)
    assert "brighter" in compare_prints(pixel_print(original), pixel_print(brighter)).details
    assert "darker" in compare_prints(pixel_print(brighter), pixel_print(original)).details


def _write_family(folder: Path, seed: int, fmt: str, burst_size: tuple[int, int] | None = None) -> None:
    """An original, its seven copies, a byte-identical copy and two burst shots, named s<seed>-*."""
    scene = Scene(seed)
    original = encode(first_shot(scene), fmt)
    (folder / f"s{seed}{SUFFIX[fmt]}").write_bytes(original)
    (folder / f"s{seed}-copy{SUFFIX[fmt]}").write_bytes(original)
    for name, (make, _) in TRANSFORMS.items():
        data, out_fmt = make(original, fmt, seed)
        (folder / f"s{seed}-{name}{SUFFIX[out_fmt]}").write_bytes(data)
    for k in (1, 2):
        shot = burst_shot(scene, k, burst_size) if burst_size else burst_shot(scene, k)
        (folder / f"s{seed}-burst{k}{SUFFIX[fmt]}").write_bytes(encode(shot, fmt))


@pytest.fixture(scope="module")
def photos_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two scenes' families indexed with the tiny model; scene 11's burst shots are bigger than its
    original (so a keeper policy blind to labels would keep a burst shot)."""
    if not TINY_CLIP.is_dir():
        pytest.skip("tests/fixtures/tiny-clip is absent")
    root = tmp_path_factory.mktemp("labels")
    folder = root / "photos"
    folder.mkdir()
    _write_family(folder, 13, "JPEG")
    _write_family(folder, 11, "PNG", burst_size=(640, 480))
    client = lookalike.connect(root / "photos.db")
    report = index_paths(client, [folder], model=f"local/{TINY_CLIP}")
    client.close()
    assert report.added == 2 * 11 and not report.failures
    return root / "photos.db"


def _stem(row: dict) -> str:
    return Path(row["path"]).stem


def _keep_original(rows: list[dict]) -> object:
    """A keeper callable: the scene's original where it is in the group, else the first row."""
    return next((r["id"] for r in rows if "-" not in _stem(r)), rows[0]["id"])


@needs_model
def test_copies_are_labelled_with_what_changed(photos_db: Path) -> None:
    client = lookalike.connect(photos_db)
    groups = find_duplicates(
        client.open_table("images"), threshold=THRESHOLD, similar=True, keeper=_keep_original
    )
    client.close()
    (group,) = [g for g in groups if _stem(g.rows[0]) == "s13"]
    assert group.labels[0] == "keeper" and group.details[0] == ""
    got = {
        _stem(r).split("-", 1)[1]: (label, detail)
        for r, label, detail in zip(group.rows[1:], group.labels[1:], group.details[1:])
    }
    assert got["copy"] == (IDENTICAL_FILE, "")
    for name in TRANSFORMS:
        label, detail = got[name]
        assert label == SAME_PICTURE, (name, label, detail)
        assert _expected(name, "JPEG", "PNG" if name == "format" else "JPEG") in detail.split(", "), (
            name,
            detail,
        )
    assert got["burst1"][0] == got["burst2"][0] == SIMILAR
    assert group.kind == SIMILAR  # the weakest member's label
    assert group.diameter <= THRESHOLD
    as_dict = group.to_dict()
    assert as_dict["kind"] == SIMILAR and as_dict["diameter"] == pytest.approx(group.diameter, abs=1e-6)
    assert [m["match"] for m in as_dict["members"]] == group.labels
    assert [m["detail"] for m in as_dict["members"]] == group.details


@needs_model
def test_default_leaves_similar_shots_out_and_keeps_an_original(photos_db: Path) -> None:
    client = lookalike.connect(photos_db)
    table = client.open_table("images")
    default = find_duplicates(table, threshold=THRESHOLD)
    with_similar = find_duplicates(table, threshold=THRESHOLD, similar=True)
    client.close()
    default_members = {_stem(r) for g in default for r in g.rows}
    assert not any("burst" in name for name in default_members)
    assert all(label in ("keeper", IDENTICAL_FILE, SAME_PICTURE) for g in default for label in g.labels)
    assert all(g.kind in (IDENTICAL_FILE, SAME_PICTURE) for g in default)
    similar_members = {_stem(r): label for g in with_similar for r, label in zip(g.rows, g.labels)}
    assert {"s13-burst1", "s13-burst2", "s11-burst1", "s11-burst2"} <= set(similar_members)
    assert all(similar_members[f"s{s}-burst{k}"] == SIMILAR for s in (11, 13) for k in (1, 2))
    # scene 11's burst shots have the most pixels; "largest" still keeps a picture that has copies
    for groups in (default, with_similar):
        s11 = next(g for g in groups if any(_stem(r).startswith("s11") for r in g.rows))
        assert "burst" not in _stem(s11.rows[0])
        assert s11.rows[0]["width"] == 480  # the largest of the copies (all 480 wide but the crop/resize)
    # every copy of scene 13 is found by default, in one group
    s13 = [g for g in default if any(_stem(r).startswith("s13") for r in g.rows)]
    assert len(s13) == 1 and len(s13[0]) == 9


@needs_model
def test_a_missing_file_falls_back_to_vectors(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    original = encode(first_shot(Scene(13)), "JPEG")
    (folder / "a.jpg").write_bytes(original)
    data, _ = TRANSFORMS["resize50"][0](original, "JPEG", 13)
    (folder / "a-small.jpg").write_bytes(data)
    client = lookalike.connect(tmp_path / "photos.db")
    index_paths(client, [folder], model=f"local/{TINY_CLIP}")
    table = client.open_table("images")
    (group,) = find_duplicates(table, threshold=0.03)
    assert group.labels == ["keeper", SAME_PICTURE] and group.details[1] == "resized"
    shutil.move(folder / "a-small.jpg", tmp_path / "elsewhere.jpg")
    (group,) = find_duplicates(table, threshold=0.03)  # no crash: the vectors alone speak
    assert group.labels[1] == SAME_PICTURE and group.details[1] == "vectors only (missing file)"
    (folder / "a.jpg").write_bytes(b"not a picture any more")
    (group,) = find_duplicates(table, threshold=0.03)
    assert group.details[1].startswith("vectors only (")
    client.close()
