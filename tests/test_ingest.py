"""The rows-in pipeline (lookalike.ingest): what a bad item's error says, field by field.

Errors are data: ``index``, ``item``, ``column`` and ``detail`` say what failed and where, and the text
is built from them. These tests pin both, for each kind of bad item, in ``insert()`` and in
``bulk_insert()`` with ``on_error="raise"`` (a :class:`BulkInsertError` wrapping the error) and
``on_error="skip"`` (a :class:`FailedItem` holding it).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lookalike
from lookalike import (
    AuthenticationError,
    BulkInsertError,
    FailedItem,
    Field,
    ImageInputError,
    InsertResult,
    LookalikeError,
    SchemaError,
    TableModel,
    VectorError,
    VectorField,
)
from lookalike.copy import copy_table
from lookalike.errors import describe_item
from lookalike.ingest import Ingest
from tests.toy_embedder import ToyEmbedder

BULK = "bulk_insert failed, nothing of its chunk was written: "


def _vectors(client: lookalike.Client) -> lookalike.Table:
    class Vec(TableModel):
        __tablename__ = "vecs"
        id: int = Field(primary_key=True)
        label: str = Field(default="none")
        vec: list[float] | None = VectorField(dimensions=3)

    return client.create_table(schema=Vec, if_exists="overwrite")


def _images(client: lookalike.Client, toy: ToyEmbedder) -> lookalike.Table:
    class Img(TableModel):
        __tablename__ = "imgs"
        id: int = Field(primary_key=True)
        uri: str | None = Field(default=None)
        vec: list[float] | None = toy.VectorField(source_field="uri")

    return client.create_table(schema=Img, if_exists="overwrite")


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff not really a jpeg")
    return path


def _fields(err: LookalikeError) -> tuple[Any, ...]:
    return (err.index, err.item, err.column, err.detail, err.remarks)


# ---------------------------------------------------------------------- one item per kind of fault

NON_DICT = 42
UNKNOWN = {"colour": "red"}
SHORT = {"vec": [1.0, 2.0]}
NAN = {"vec": [1.0, float("nan"), 0.0]}

CASES = [
    # (bad item, error class, detail, the error's item, its column)
    (NON_DICT, SchemaError, "42 is neither a dict nor a model instance", 42, None),
    (UNKNOWN, SchemaError, "unknown column 'colour' for table 'vecs'", UNKNOWN, None),
    (SHORT, VectorError, "vector for [1.0, 2.0] has 2 dimensions, expected 3", [1.0, 2.0], "vec"),
    (NAN, VectorError, "vector for [1.0, nan, 0.0] contains NaN or Inf", NAN["vec"], "vec"),
]
IDS = ["non-dict", "unknown-column", "wrong-dimension", "nan"]


def _same_item(a: Any, b: Any) -> bool:
    return repr(a) == repr(b)  # NaN != NaN, and a dict holding NaN compares unequal to itself


@pytest.mark.parametrize(("bad", "cls", "detail", "item", "column"), CASES, ids=IDS)
def test_insert_names_the_fault(
    sqlite_client: lookalike.Client, bad: Any, cls: type, detail: str, item: Any, column: str | None
) -> None:
    t = _vectors(sqlite_client)
    with pytest.raises(cls) as info:
        t.insert(bad)
    err = info.value
    assert err.index is None and _same_item(err.item, item) and err.column == column
    assert err.detail == detail and err.remarks == []
    assert str(err) == (f"column {column!r}: {detail}" if column else detail)
    assert err.message == str(err)
    assert t.rows() == 0


@pytest.mark.parametrize(("bad", "cls", "detail", "item", "column"), CASES, ids=IDS)
def test_bulk_insert_raise_names_the_fault(
    sqlite_client: lookalike.Client, bad: Any, cls: type, detail: str, item: Any, column: str | None
) -> None:
    t = _vectors(sqlite_client)
    with pytest.raises(BulkInsertError) as info:
        t.bulk_insert([{"vec": [1.0, 0.0, 0.0]}, bad])
    err = info.value
    where = f"item 1 ({describe_item(item)})" + (f", column {column!r}" if column else "")
    assert err.index == 1 and _same_item(err.item, item) and err.column == column
    assert err.detail == detail and err.remarks == []
    assert str(err) == f"{BULK}{where}: {detail}"
    # the error that stopped it is kept whole, with the same fields, on .error and __cause__
    assert isinstance(err.error, cls) and err.__cause__ is err.error
    assert _fields(err.error)[0] == 1 and err.error.detail == detail and err.error.column == column
    assert str(err) == BULK + str(err.error)
    assert t.rows() == 0  # nothing of the chunk


@pytest.mark.parametrize(("bad", "cls", "detail", "item", "column"), CASES, ids=IDS)
def test_bulk_insert_skip_names_the_fault(
    sqlite_client: lookalike.Client, bad: Any, cls: type, detail: str, item: Any, column: str | None
) -> None:
    t = _vectors(sqlite_client)
    res = t.bulk_insert([{"vec": [1.0, 0.0, 0.0]}, bad, {"vec": [0.0, 1.0, 0.0]}], on_error="skip")
    assert isinstance(res, InsertResult) and [r["id"] for r in res] == [1, 2] and t.rows() == 2
    [failed] = res.failed
    assert isinstance(failed, FailedItem) and isinstance(failed.error, cls)
    assert failed.index == 1 and failed.item == describe_item(bad)
    err = failed.error
    where = f"item 1 ({describe_item(item)})" + (f", column {column!r}" if column else "")
    assert err.index == 1 and _same_item(err.item, item) and err.column == column
    assert err.detail == detail and err.remarks == []
    assert str(err) == f"{where}: {detail}"
    assert str(failed) == str(err)  # the failed item's text is its error's


# ---------------------------------------------------------------------- an image that fails to embed


def test_image_that_fails_in_insert(sqlite_client: lookalike.Client, toy: ToyEmbedder, broken: Path) -> None:
    t = _images(sqlite_client, toy)
    with pytest.raises(ImageInputError) as info:
        t.insert({"uri": str(broken)})
    err = info.value
    # the embedder names the source it could not read (item 0 of the one-item batch) and the column
    assert (err.index, err.item, err.column, err.remarks) == (0, str(broken), "vec", [])
    assert "JPEG file could not be decoded" in err.detail
    assert str(err) == f"item 0 ({broken}), column 'vec': {err.detail}"
    assert t.rows() == 0


def test_image_that_fails_in_bulk_insert_raise(
    sqlite_client: lookalike.Client, toy: ToyEmbedder, broken: Path, colour_images: dict[str, Path]
) -> None:
    t = _images(sqlite_client, toy)
    items = [{"uri": str(colour_images["red"])}, {"uri": None}, {"uri": str(broken)}]
    with pytest.raises(BulkInsertError) as info:
        t.bulk_insert(items)
    err = info.value
    # index 2 of the input, though it was the second image the embedder saw
    assert (err.index, err.item, err.column, err.remarks) == (2, str(broken), "vec", [])
    assert "JPEG file could not be decoded" in err.detail
    assert str(err) == f"{BULK}item 2 ({broken}), column 'vec': {err.detail}"
    assert isinstance(err.error, ImageInputError) and str(err) == BULK + str(err.error)
    assert t.rows() == 0


def test_image_that_fails_in_bulk_insert_skip(
    sqlite_client: lookalike.Client, toy: ToyEmbedder, broken: Path, colour_images: dict[str, Path]
) -> None:
    t = _images(sqlite_client, toy)
    items = [{"uri": str(colour_images["red"])}, {"uri": None}, {"uri": str(broken)}]
    res = t.bulk_insert(items, on_error="skip", chunk_size=2)  # the bad item is item 0 of chunk 2
    assert [r["id"] for r in res] == [1, 2] and t.rows() == 2
    [failed] = res.failed
    err = failed.error
    assert (failed.index, failed.item) == (2, describe_item(items[2]))
    assert isinstance(err, ImageInputError)
    assert (err.index, err.item, err.column, err.remarks) == (2, str(broken), "vec", [])
    assert str(failed) == str(err) == f"item 2 ({broken}), column 'vec': {err.detail}"


def test_copies_of_a_bad_image_each_name_their_own_item(
    sqlite_client: lookalike.Client, toy: ToyEmbedder, broken: Path, tmp_path: Path
) -> None:
    """Identical bytes are embedded once; when that fails, each copy still gets its own error."""
    t = _images(sqlite_client, toy)
    again = tmp_path / "again.jpg"
    shutil.copy(broken, again)
    res = t.bulk_insert([{"uri": str(broken)}, {"uri": str(again)}], on_error="skip")
    assert len(res) == 0
    first, second = res.failed
    assert first.error is not second.error
    assert (first.index, first.error.index, first.error.item) == (0, 0, str(broken))
    assert (second.index, second.error.index, second.error.item) == (1, 1, str(again))
    assert str(second).startswith(f"item 1 ({again}), column 'vec': ")
    assert type(second.error) is type(first.error) and second.error.detail == first.error.detail
    assert second.error.__cause__ is first.error.__cause__


# ---------------------------------------------------------------------- the pipeline's own rules


def test_dict_rows_get_the_model_defaults(sqlite_client: lookalike.Client) -> None:
    t = _vectors(sqlite_client)
    ingest = Ingest(t.spec, t.database)
    assert ingest.defaults == {"label": "none"}  # not the primary key, not a default of None
    assert ingest.row({"vec": [1.0, 0.0, 0.0]}) == {"vec": [1.0, 0.0, 0.0], "label": "none"}
    assert ingest.row({"id": None, "label": "x"}) == {"label": "x"}  # an empty key is the database's
    row = t.insert({"vec": [1.0, 0.0, 0.0]})
    assert row["label"] == "none" and t.get(row["id"]).label == "none"


def test_replace_rows_swaps_rows_in_one_chunk(sqlite_client: lookalike.Client) -> None:
    t = _vectors(sqlite_client)
    old = t.bulk_insert([{"label": "a", "vec": [1.0, 0.0, 0.0]}, {"label": "b", "vec": [0.0, 1.0, 0.0]}])
    seen: list[tuple[int, int]] = []
    res = t.replace_rows(
        [{"label": "a2", "vec": [1.0, 1.0, 0.0]}, {"label": "bad", "vec": [1.0]}],
        [old[0]["id"]],
        on_error="skip",
        progress=lambda d, n: seen.append((d, n)),
    )
    assert [r["label"] for r in res] == ["a2"] and [f.index for f in res.failed] == [1]
    assert sorted(r["label"] for r in t.query()) == ["a2", "b"]
    assert seen[-1] == (2, 2)
    with pytest.raises(BulkInsertError, match="item 1"):
        t.replace_rows([{"label": "c"}, {"label": "bad", "vec": [1.0]}], [old[1]["id"]])
    assert sorted(r["label"] for r in t.query()) == ["a2", "b"]  # a failed chunk deletes nothing either


def test_copy_checks_the_vectors_it_writes(sqlite_client: lookalike.Client, tmp_path: Path) -> None:
    """copy_table writes through the pipeline: a vector that does not fit the column is refused."""
    src = _vectors(sqlite_client)
    src.bulk_insert([{"label": str(i), "vec": [1.0, float(i), 0.0]} for i in range(5)])
    src.insert({"label": "none"})  # no vector, and no source to make one from
    dst_client = lookalike.connect(tmp_path / "dst.db")
    try:
        dst = copy_table(src, dst_client, name="copied", batch_size=2)
        assert [(r["id"], r["label"]) for r in dst.query(order_by="id")] == [
            (r["id"], r["label"]) for r in src.query(order_by="id")
        ]
        got = {r["id"]: r["vec"] for r in dst.query()}
        for r in src.query():
            if r["vec"] is None:
                assert got[r["id"]] is None
            else:
                assert np.array_equal(np.asarray(got[r["id"]]), np.asarray(r["vec"]))
        # a stored vector the column cannot hold (written behind the library's back) stops the copy
        sqlite_client.execute("UPDATE vecs SET vec = :b WHERE id = 3", {"b": np.ones(2, "<f4").tobytes()})
        with pytest.raises(BulkInsertError) as info:
            copy_table(src, dst_client, name="copied_again", batch_size=2)
        assert info.value.index == 2 and info.value.column == "vec"  # the third row copied
        assert "has 2 dimensions, expected 3" in info.value.detail
        assert dst_client.open_table("copied_again").rows() == 2  # the batches before it landed
    finally:
        dst_client.close()


class _RejectedKey(ToyEmbedder):
    """An embedder whose provider turns the API key down: no single item is at fault."""

    def embed_images(self, images: list, *, purpose: str) -> np.ndarray:
        raise AuthenticationError("the API key was rejected (HTTP 401)")


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_an_error_about_the_whole_call_is_not_blamed_on_an_item(
    sqlite_client: lookalike.Client, colour_images: dict[str, Path], on_error: str
) -> None:
    """A rejected key stops bulk work with that error as it is (no ``item 0`` in a BulkInsertError),
    even with ``on_error="skip"``, and nothing of the chunk is written."""
    table = _images(sqlite_client, _RejectedKey())
    items = [{"uri": str(p)} for p in colour_images.values()]
    with pytest.raises(AuthenticationError) as caught:
        table.bulk_insert(items, on_error=on_error)  # type: ignore[arg-type]
    assert not isinstance(caught.value, BulkInsertError)
    assert caught.value.index is None and str(caught.value) == "the API key was rejected (HTTP 401)"
    assert table.rows() == 0
