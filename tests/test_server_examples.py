"""``POST /api/search/examples``: several examples (item ids, words, uploads) in one search, through
FastAPI's TestClient over the real app, compared with the library's multi-example search."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient

import lookalike
from lookalike.server import create_app
from lookalike.server.backend import MAX_EXAMPLES
from lookalike.server.routes import search_examples
from tests.test_server import MAX_UPLOAD, build_table, make_gallery

URL = "/api/search/examples"


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_gallery(tmp_path_factory.mktemp("gallery"))


@pytest.fixture(scope="module")
def table(gallery: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[lookalike.Table]:
    t = build_table(tmp_path_factory.mktemp("db") / "gallery.db", gallery)
    yield t
    t.client.close()


@pytest.fixture(scope="module")
def web(table: lookalike.Table) -> TestClient:
    # a low pixel cap so that a gallery picture (360×270) is "too many pixels" when sent as one
    return TestClient(create_app(table, max_upload_bytes=MAX_UPLOAD, max_query_pixels=50_000))


@pytest.fixture(scope="module")
def ids(table: lookalike.Table) -> dict[str, int]:
    return {Path(r["path"]).stem: r["id"] for r in table.query().to_list()}


def stored(table: lookalike.Table, item_id: int) -> np.ndarray:
    return np.asarray(table.query({"id": item_id}, columns=["vec"]).to_list()[0]["vec"])


def expected_names(table: lookalike.Table, leave_out: set[int] = frozenset(), **examples: Any) -> list[str]:
    hits = table.search(**examples).limit(40).to_list()
    return [Path(h["path"]).stem for h in hits if h["id"] not in leave_out]


def names(body: dict[str, Any]) -> list[str]:
    return [Path(h["name"]).stem for h in body["results"]]


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == response.status_code, body
    return body["error"]


def test_two_items_are_one_query(web: TestClient, table: lookalike.Table, ids: dict[str, int]) -> None:
    a, b = ids["red-waves"], ids["yellow-bokeh"]
    r = web.post(URL, data={"positive_id": [str(a), str(b)]}, params={"limit": 30})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == {
        "kind": "examples",
        "positive": [{"kind": "item", "id": a}, {"kind": "item", "id": b}],
        "negative": [],
    }
    want = expected_names(table, {a, b}, positive=[stored(table, a), stored(table, b)])
    assert names(body) == want and len(want) == 18  # the two examples themselves are left out
    kept = web.post(
        URL, data={"positive_id": [str(a), str(b)]}, params={"include_examples": True, "limit": 30}
    )
    assert names(kept.json()) == expected_names(table, positive=[stored(table, a), stored(table, b)])
    assert {"red-waves", "yellow-bokeh"} <= set(names(kept.json()))


def test_items_words_and_uploads_mix(
    web: TestClient, table: lookalike.Table, ids: dict[str, int], gallery: dict[str, Path]
) -> None:
    small = io.BytesIO()
    Image.open(gallery["green-waves"]).resize((120, 90)).save(small, "PNG")
    upload = small.getvalue()
    r = web.post(
        URL,
        data={
            "positive_id": [str(ids["blue-sunset"])],
            "positive_text": ["purple"],
            "negative_text": ["red"],
        },
        files=[("negative_image", ("green.png", upload, "image/png"))],
        params={"limit": 40},
    )
    assert r.status_code == 200, r.text
    query = r.json()["query"]
    assert query["positive"] == [{"kind": "item", "id": ids["blue-sunset"]}, {"kind": "text", "q": "purple"}]
    assert [q["kind"] for q in query["negative"]] == ["text", "image"]
    assert query["negative"][1]["name"] == "green.png"
    want = expected_names(
        table,
        {ids["blue-sunset"]},
        positive=[stored(table, ids["blue-sunset"]), "purple"],
        negative=["red", Image.open(io.BytesIO(upload))],
    )
    assert names(r.json()) == want


def test_pages_follow_each_other(web: TestClient, ids: dict[str, int]) -> None:
    data = {"positive_id": [str(ids["orange-sunset"])], "negative_text": ["blue"]}
    whole = web.post(URL, data=data, params={"limit": 10}).json()
    first = web.post(URL, data=data, params={"limit": 4}).json()
    second = web.post(URL, data=data, params={"limit": 4, "offset": 4}).json()
    assert names(first) + names(second) == names(whole)[:8]
    assert first["has_more"] is True


def test_too_many_examples_is_422(web: TestClient, ids: dict[str, int]) -> None:
    many = [str(i) for i in list(ids.values())[:12]]
    r = web.post(URL, data={"positive_id": many, "negative_text": ["a", "b", "c", "d", "e"]})
    assert r.status_code == 422
    err = error_of(r)
    assert err["code"] == "too_many_examples" and f"at most {MAX_EXAMPLES}" in err["message"]
    assert "17 examples" in err["message"]
    ok = web.post(URL, data={"positive_id": many, "negative_text": ["a", "b", "c", "d"]})
    assert ok.status_code == 200, ok.text
    # the cap is documented (status and number) in the schema
    operation = web.get("/openapi.json").json()["paths"][URL]["post"]
    assert "422" in operation["responses"]
    assert f"at most {MAX_EXAMPLES} in all" in (search_examples.__doc__ or "")
    assert re.search(rf"at most {MAX_EXAMPLES}\b", operation["description"])


def test_uploads_count_towards_the_cap_before_they_are_read(
    web: TestClient, gallery: dict[str, Path]
) -> None:
    tiny = io.BytesIO()
    Image.new("RGB", (4, 4)).save(tiny, "PNG")
    files = [("positive_image", (f"{i}.png", tiny.getvalue(), "image/png")) for i in range(MAX_EXAMPLES + 1)]
    r = web.post(URL, files=files)
    assert r.status_code == 422 and error_of(r)["code"] == "too_many_examples"


def test_no_positive_example_is_refused(web: TestClient, ids: dict[str, int]) -> None:
    for data in ({}, {"negative_id": [str(ids["red-waves"])]}, {"negative_text": ["grass"]}):
        r = web.post(URL, data=data)
        assert r.status_code == 400, data
        assert "at least one positive example" in error_of(r)["message"]


def test_hostile_uploads_are_refused(web: TestClient, gallery: dict[str, Path]) -> None:
    fake = web.post(URL, files=[("positive_image", ("x.png", b"not a picture", "image/png"))])
    assert fake.status_code == 415 and error_of(fake)["code"] == "not_an_image"
    empty = web.post(URL, files=[("positive_image", ("e.png", b"", "image/png"))])
    assert empty.status_code == 400 and error_of(empty)["code"] == "empty_image"
    big = gallery["red-sunset"].read_bytes()  # 360×270: over this app's 50,000-pixel cap
    pixels = web.post(
        URL, data={"positive_text": ["red"]}, files=[("negative_image", ("b.jpg", big, "image/jpeg"))]
    )
    assert pixels.status_code == 413 and error_of(pixels)["code"] == "too_many_pixels"
    # several uploads share one request's size limit
    half = b"\xff\xd8\xff" + b"\0" * (MAX_UPLOAD // 2)
    files = [("positive_image", (f"{i}.jpg", half, "image/jpeg")) for i in range(3)]
    too_large = web.post(URL, files=files)
    assert too_large.status_code == 413 and error_of(too_large)["code"] == "too_large"


def test_bad_ids_and_words_are_refused(web: TestClient, ids: dict[str, int]) -> None:
    unknown = web.post(URL, data={"positive_id": ["999999"]})
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "not_found"
    bad = web.post(URL, data={"positive_id": ["../etc"]})
    assert bad.status_code == 400 and error_of(bad)["code"] == "bad_id"
    blank = web.post(URL, data={"positive_text": ["   "]})
    assert blank.status_code == 400 and "text example" in error_of(blank)["message"]
    long = web.post(URL, data={"positive_text": ["x" * 1001]})
    assert long.status_code == 400
    same = str(ids["red-waves"])
    cancel = web.post(URL, data={"positive_id": [same], "negative_id": [same]})
    assert cancel.status_code == 400 and "cancel each other out" in error_of(cancel)["message"]
