"""Folder indexing as library calls: incremental, renames reuse vectors, deletes, stops, bad inputs."""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lookalike
from lookalike import AuthenticationError, ConfigurationError
from lookalike.folders import FOLDER_COLUMNS, folder_schema, index_paths, scan_paths
from tests.toy_embedder import COLOURS, ToyEmbedder


@pytest.fixture
def photos(tmp_path: Path) -> Path:
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


def _paths(client: lookalike.Client) -> set[str]:
    return {Path(r["path"]).name for r in client.open_table("images").query().to_list()}


def test_index_then_reindex_skips_unchanged(client: lookalike.Client, photos: Path) -> None:
    toy = ToyEmbedder()
    first = index_paths(client, [photos], model=toy)
    assert (first.added, first.skipped, first.failed) == (8, 0, 0)
    rows = client.open_table("images").query().to_list()
    assert {r["width"] for r in rows} == set(range(40, 48)) and all(r["height"] == 30 for r in rows)
    assert all(Path(r["path"]).is_absolute() for r in rows)

    calls = dict(toy.calls)
    again = index_paths(client, [photos], model=toy)
    assert (again.added, again.skipped, again.removed) == (0, 8, 0)
    assert toy.calls == calls  # nothing was read or embedded


def test_rename_reuses_the_row_and_vector(client: lookalike.Client, photos: Path) -> None:
    toy = ToyEmbedder()
    index_paths(client, [photos], model=toy)
    table = client.open_table("images")
    before = table.query({"path": str(photos / "red.png")}).to_list()[0]
    (photos / "red.png").rename(photos / "trip" / "crimson.png")
    calls = dict(toy.calls)

    report = index_paths(client, [photos], model=toy)
    assert (report.reused, report.added, report.removed) == (1, 0, 0)
    assert toy.calls == calls  # the model did not run
    after = table.query({"path": str(photos / "trip" / "crimson.png")}).to_list()[0]
    assert after["id"] == before["id"] and after["vec"] == before["vec"]
    assert table.rows() == 8


def test_deleted_and_changed_files(client: lookalike.Client, photos: Path) -> None:
    toy = ToyEmbedder()
    index_paths(client, [photos], model=toy)
    (photos / "blue.png").unlink()
    Image.new("RGB", (64, 64), COLOURS["green"]).save(photos / "red.png")  # new content, same name
    later = time.time() + 5
    os.utime(photos / "red.png", (later, later))

    report = index_paths(client, [photos], model=toy)
    assert (report.removed, report.updated, report.skipped) == (1, 1, 6)
    table = client.open_table("images")
    assert "blue.png" not in _paths(client)
    red = table.query({"path": str(photos / "red.png")}).to_list()[0]
    assert (red["width"], red["height"]) == (64, 64)
    green = table.query({"path": str(photos / "trip" / "green.png")}).to_list()[0]
    assert red["vec"] == pytest.approx(green["vec"], abs=1e-6)  # re-embedded from the new pixels


def test_only_rows_under_the_indexed_paths_are_removed(client: lookalike.Client, photos: Path) -> None:
    toy = ToyEmbedder()
    index_paths(client, [photos], model=toy)
    # indexing only the sub-folder must not drop the rows of the folder above it
    report = index_paths(client, [photos / "trip"], model=toy)
    assert report.removed == 0 and client.open_table("images").rows() == 8


def test_unreadable_folder_keeps_its_rows(
    client: lookalike.Client, photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toy = ToyEmbedder()
    index_paths(client, [photos], model=toy)
    real_scandir = os.scandir

    def scandir(path):  # as root, chmod can't make a folder unreadable: simulate the error
        if Path(path) == photos / "trip":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = index_paths(client, [photos], model=toy)
    assert report.removed == 0 and client.open_table("images").rows() == 8
    assert [f.path for f in report.failures] == [str(photos / "trip")]
    assert "Permission denied" in report.failures[0].error


def test_corrupt_image_is_reported_and_the_rest_indexed(client: lookalike.Client, photos: Path) -> None:
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    report = index_paths(client, [photos], model=ToyEmbedder())
    assert report.added == 8
    assert [Path(f.path).name for f in report.failures] == ["broken.jpg"]


def test_exclude_and_non_recursive(photos: Path) -> None:
    (photos / ".thumbnails").mkdir()
    Image.new("RGB", (8, 8)).save(photos / ".thumbnails" / "t.png")
    (photos / "notes.txt").write_text("not an image")
    names = lambda found: sorted(Path(f.path).name for f in found)  # noqa: E731
    everything = scan_paths([photos]).files
    assert len(everything) == 8  # hidden folders and non-images are skipped
    top = scan_paths([photos], recursive=False).files
    assert names(top) == ["black.png", "blue.png", "red.png", "yellow.png"]
    no_trip = scan_paths([photos], exclude=(".*", "trip")).files
    assert names(no_trip) == names(top)
    no_red = scan_paths([photos], exclude=(".*", "red.*")).files  # exclude replaces the default
    assert "red.png" not in names(no_red) and len(no_red) == 7


def test_should_stop_keeps_committed_chunks(client: lookalike.Client, photos: Path) -> None:
    toy = ToyEmbedder()
    added = [0]
    report = index_paths(
        client,
        [photos],
        model=toy,
        chunk_size=3,
        on_progress=lambda r: added.__setitem__(0, r.added),
        should_stop=lambda: added[0] >= 3,  # stop once the first chunk is committed
    )
    assert report.stopped and report.added == 3 and report.total == 8
    assert client.open_table("images").rows() == 3
    rest = index_paths(client, [photos], model=toy)
    assert (rest.added, rest.skipped) == (5, 3)


def test_bad_inputs(client: lookalike.Client, photos: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such file or folder"):
        index_paths(client, [tmp_path / "missing"], model=ToyEmbedder())
    urls = tmp_path / "urls.txt"
    urls.write_text("https://example.com/a.jpg\nnot a url\n")
    with pytest.raises(ConfigurationError, match="not an http"):
        index_paths(client, [photos], model=ToyEmbedder(), urls_file=urls)
    index_paths(client, [photos], model=ToyEmbedder())
    with pytest.raises(ConfigurationError, match="holds 8 vectors of"):
        index_paths(client, [photos], model=ToyEmbedder(dimensions=8))


def test_folder_schema_columns() -> None:
    model = folder_schema(ToyEmbedder(), "pics")
    assert model.__tablename__ == "pics"
    assert list(model.__table__.columns.keys()) == list(FOLDER_COLUMNS)
    assert FOLDER_COLUMNS[:7] == ("id", "path", "size", "mtime", "width", "height", "added_at")
    assert model.__table__.c.path.unique
    untagged = folder_schema(ToyEmbedder(), "pics", tags=False)
    assert list(untagged.__table__.columns.keys()) == [c for c in FOLDER_COLUMNS if not c.startswith("tag")]


class _KeyRejected(ToyEmbedder):
    """A model whose provider turns the key down once indexing starts (after the table exists)."""

    def __init__(self) -> None:
        super().__init__()
        self.reject = False

    def embed_images(self, images: list, *, purpose: str) -> np.ndarray:
        if self.reject:
            raise AuthenticationError("the API key was rejected (HTTP 401)")
        return super().embed_images(images, purpose=purpose)


def test_a_setup_error_mid_run_stops_with_one_message(client: lookalike.Client, photos: Path) -> None:
    """A rejected key fails every file alike: the run stops with that error, files aren't blamed."""
    model = _KeyRejected()
    index_paths(client, [photos / "trip"], model=model)
    model.reject = True
    with pytest.raises(AuthenticationError, match="API key was rejected") as caught:
        index_paths(client, [photos], model=model, chunk_size=4)
    assert not isinstance(caught.value, lookalike.BulkInsertError)
    failures = client.query("SELECT count(*) AS n FROM _lookalike_failures").scalar()
    assert failures == 0  # nothing is remembered as a bad file


def _old_folder_schema(embed: ToyEmbedder) -> type:
    """The folder index as versions before EXIF and tags made it (these eight columns)."""
    from lookalike.schema import Field, TableModel

    class Images(TableModel):
        __tablename__ = "images"
        id: int | None = Field(default=None, primary_key=True)
        path: str = Field(unique=True)
        size: int | None = Field(default=None)
        mtime: float | None = Field(default=None)
        width: int | None = Field(default=None)
        height: int | None = Field(default=None)
        added_at: datetime.datetime | None = Field(default=None)
        vec: list[float] | None = embed.VectorField(source_field="path", source_type="image")

    return Images


def test_an_older_folder_index_is_upgraded_in_place(engine_url: str, tmp_path: Path) -> None:
    """A database made before EXIF and tags gains the columns; its rows get tags from their stored
    vectors (no inference) and EXIF from the files, and are not indexed again."""
    from lookalike.folders import EXIF_COLUMNS

    folder = tmp_path / "pics"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Google", "Pixel 7"
    exif[0x8769] = {0x9003: "2023:06:15 14:03:22"}
    Image.new("RGB", (40, 30), COLOURS["red"]).save(folder / "red.jpg", exif=exif)
    Image.new("RGB", (40, 30), COLOURS["blue"]).save(folder / "blue.png")
    old = lookalike.connect(engine_url)
    old.drop_table("images", if_not_exists="skip")
    table = old.create_table(schema=_old_folder_schema(ToyEmbedder()))
    for p in sorted(folder.iterdir()):
        st = p.stat()
        table.insert({"path": str(p), "size": st.st_size, "mtime": st.st_mtime, "width": 40, "height": 30})
    old.close()

    client = lookalike.connect(engine_url)
    try:
        toy = ToyEmbedder()
        report = index_paths(client, [folder], model=toy)
        assert (report.added, report.skipped) == (0, 2) and toy.calls["images"] == 0
        upgraded = client.open_table("images")
        assert list(upgraded.spec.sa_table.c.keys())[:8] == [*FOLDER_COLUMNS[:7], "vec"]
        assert set(EXIF_COLUMNS) | {"tags", "tag_scores"} <= set(upgraded.spec.sa_table.c.keys())
        rows = {Path(r["path"]).name: r for r in upgraded.query().to_list()}
        assert rows["red.jpg"]["taken_at"] == "2023-06-15T14:03:22"
        assert rows["red.jpg"]["camera"] == "google pixel 7" and rows["blue.png"]["camera"] is None
        assert rows["red.jpg"]["tags"].startswith("red ") and rows["blue.png"]["tags"].startswith("blue ")
        hits = upgraded.search("red", search_type="fulltext").text_column("tags").limit(5).to_list()
        assert [Path(h["path"]).name for h in hits] == ["red.jpg"]  # the added column is searchable
        new = folder / "green.png"
        Image.new("RGB", (40, 30), COLOURS["green"]).save(new)
        again = index_paths(client, [folder], model=toy)
        assert again.added == 1, again.failures
        assert client.open_table("images").query({"path": str(new)}).to_list()[0]["tags"].startswith("green ")
    finally:
        client.drop_table("images", if_not_exists="skip")
        client.close()
