"""Tags, photo filters and hybrid search in the REST API, over a folder index made as ``lookalike
index`` makes one (tags from the toy model, EXIF from the files), on every engine.

Each answer is held to a reference computed here: the stored tags counted, the EXIF values written
into the files, exact distances, and the library's own full-text and hybrid searches. Tag *quality*
cannot be judged with a toy model; these tests hold the mechanism.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, TiffImagePlugin

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient

import lookalike
from lookalike.metadata import distance_km, photo_filter
from lookalike.server import create_app
from lookalike.tags import tags_of
from tests.helpers.http_server import LocalHTTPServer
from tests.test_server import build_table, make_gallery
from tests.toy_embedder import COLOURS, ToyEmbedder

R = TiffImagePlugin.IFDRational
TABLE = "photos_tags"
PARIS = (48.8566, 2.3522)
KM_LAT = 111.195  # km per degree of latitude (mean Earth radius)
# 5 km box around Paris: a corner point is inside the box but 5.66 km away (outside the circle)
CORNER = (PARIS[0] + 4 / KM_LAT, PARIS[1] + 4 / (KM_LAT * math.cos(math.radians(PARIS[0] + 4 / KM_LAT))))
# name -> (colour, date taken, (make, model), (lat, lon))
PHOTOS: dict[str, tuple[str, str | None, tuple[str, str] | None, tuple[float, float] | None]] = {
    "paris": ("red", "2023:06:15 14:03:22", ("Google", "Pixel 7"), PARIS),
    "versailles": ("orange", "2023:09:30 10:00:00", ("Google", "Pixel 7 Pro"), (48.8049, 2.1204)),
    "london": ("blue", "2023:10:01 09:00:00", ("Canon", "EOS R5"), (51.5072, -0.1276)),
    "beach": ("yellow", "2022:12:31 23:00:00", ("Apple", "iPhone 13"), None),
    "field": ("green", None, None, None),
    "night": ("black", "2023:07:04 22:00:00", ("Google", "Pixel 7"), (PARIS[0] + 3 / KM_LAT, PARIS[1])),
    "corner": ("white", "2023:08:20 08:00:00", ("Canon", "EOS R5"), CORNER),
    "plum": ("purple", "2024:01:05 12:00:00", None, None),
}
VOCABULARY = [
    "red apple",
    "orange sunset",
    "yellow beach",
    "green field",
    "blue sea",
    "purple flower",
    "black night",
    "white snow",
    "city street",
    "old tower",
    "sandy beach",
]


def _dms(x: float) -> tuple[Any, Any, Any]:
    x = abs(x)
    d = int(x)
    m = int((x - d) * 60)
    return R(d, 1), R(m, 1), R(round(((x - d) * 60 - m) * 60 * 10_000), 10_000)


def write_photos(folder: Path) -> dict[str, Path]:
    """One JPEG per entry of :data:`PHOTOS`, its colour filling it and its EXIF as listed."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (colour, taken, camera, place) in PHOTOS.items():
        exif = Image.Exif()
        if camera:
            exif[0x010F], exif[0x0110] = camera
        if taken:
            exif[0x8769] = {0x9003: taken}
        if place:
            lat, lon = place
            exif[0x8825] = {
                1: "N" if lat >= 0 else "S",
                2: _dms(lat),
                3: "E" if lon >= 0 else "W",
                4: _dms(lon),
            }
        path = folder / f"{name}.jpg"
        Image.new("RGB", (64, 48), COLOURS[colour]).save(path, quality=95, exif=exif)
        out[name] = path
    return out


def index_photos(
    client: lookalike.Client, folder: Path, vocabulary: list[str] = VOCABULARY
) -> lookalike.Table:
    """The folder index ``lookalike index`` would make, with the toy model and a small vocabulary."""
    lookalike.index_paths(client, [folder], table=TABLE, model=ToyEmbedder(), vocabulary=vocabulary)
    return client.open_table(TABLE)


@pytest.fixture
def photos(client: lookalike.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> lookalike.Table:
    monkeypatch.setenv("LOOKALIKE_CACHE_DIR", str(tmp_path / "cache"))  # tag vectors stay in the test
    write_photos(tmp_path / "photos")
    return index_photos(client, tmp_path / "photos")


@pytest.fixture(scope="module")
def sqlite_photos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lookalike.Table]:
    """One SQLite folder index for the tests of bad input."""
    where = tmp_path_factory.mktemp("tags")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOOKALIKE_CACHE_DIR", str(where / "cache"))
        client = lookalike.connect(where / "photos.db")
        write_photos(where / "photos")
        table = index_photos(client, where / "photos")
    yield table
    client.close()


@pytest.fixture(scope="module")
def web(sqlite_photos: lookalike.Table) -> TestClient:
    return TestClient(create_app(sqlite_photos))


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A table without tags, EXIF or a full-text column (id, path, vec)."""
    where = tmp_path_factory.mktemp("plain")
    table = build_table(where / "plain.db", make_gallery(where / "gallery"))
    yield TestClient(create_app(table))
    table.client.close()


def names(body: dict[str, Any]) -> list[str]:
    return [Path(h["name"]).stem for h in body["results"]]


def stems(rows: list[dict[str, Any]]) -> list[str]:
    return [Path(r["path"]).stem for r in rows]


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == response.status_code, body
    return body["error"]


def tagged(table: lookalike.Table, tag: str) -> set[str]:
    """Reference: the pictures whose stored tags hold ``tag``."""
    return {Path(r["path"]).stem for r in table.query().to_list() if tag in tags_of(r["tags"])}


def get(web: TestClient, path: str, **params: Any) -> dict[str, Any]:
    r = web.get(path, params={"limit": 48, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# ---------------------------------------------------------------------- every engine


def test_tag_facets_and_tag_filters_on_every_route(photos: lookalike.Table) -> None:
    web = TestClient(create_app(photos))
    rows = photos.query().to_list()
    counts = Counter(t for r in rows for t in tags_of(r["tags"]))
    assert all(len(tags_of(r["tags"])) == 5 for r in rows)  # a folder index keeps each picture's top 5
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    facets = get(web, "/api/tags", limit=50)
    assert facets == {"column": "tags", "tags": [{"tag": t, "count": n} for t, n in ranked]}
    assert get(web, "/api/tags", limit=3)["tags"] == [{"tag": t, "count": n} for t, n in ranked[:3]]
    stats = get(web, "/api/stats")
    assert (stats["tag_column"], stats["fulltext_column"]) == ("tags", "tags")
    assert set(stats["photo_filters"]) == {"tag", "since", "until", "near", "radius", "camera"}

    # a tag that some pictures carry and others not narrows every list of results to those
    tag = next(t for t, n in ranked if 1 < n < len(rows))
    want = tagged(photos, tag)
    where = photo_filter(tag=tag)
    browse = get(web, "/api/items", tag=tag)
    assert set(names(browse)) == want and browse["total"] == len(want)
    text = get(web, "/api/search", q="red", tag=tag)
    assert text["query"] == {"kind": "text", "q": "red", "filters": {"tag": [tag]}}
    assert names(text) == stems(photos.search("red").filter(where).limit(48).to_list())
    first = next(r for r in rows if Path(r["path"]).stem in want)
    similar = get(web, f"/api/items/{first['id']}/similar", tag=tag)
    assert set(names(similar)) == want - {Path(first["path"]).stem}
    upload = io.BytesIO()
    Image.new("RGB", (40, 30), COLOURS["red"]).save(upload, "PNG")
    r = web.post(
        "/api/search/image", params={"tag": tag, "limit": 48}, files={"file": ("q.png", upload.getvalue())}
    )
    assert r.status_code == 200 and set(names(r.json())) == want
    r = web.post("/api/search/examples", params={"tag": tag}, data={"positive_text": ["red", "blue"]})
    assert (
        r.status_code == 200
        and set(names(r.json())) == want
        and r.json()["query"]["filters"] == {"tag": [tag]}
    )
    # two tags: pictures carrying both
    other = next(t for t, _ in ranked if t != tag)
    both = get(web, "/api/items", tag=[tag, other])
    assert set(names(both)) == want & tagged(photos, other)


def test_dates_cameras_and_places_on_every_engine(photos: lookalike.Table) -> None:
    web = TestClient(create_app(photos))
    summer = get(web, "/api/items", since="2023-06", until="2023-09")
    assert set(names(summer)) == {"paris", "night", "corner", "versailles"} and summer["total"] == 4
    assert set(names(get(web, "/api/items", until="2022"))) == {"beach"}
    assert set(names(get(web, "/api/items", since="2023-10-01"))) == {"london", "plum"}
    pixel = get(web, "/api/search", q="red", camera="pixel 7")
    assert set(names(pixel)) == {"paris", "night", "versailles"} and names(pixel)[0] == "paris"
    assert set(names(get(web, "/api/items", camera="  Pixel   7 PRO "))) == {"versailles"}
    # near: the bounding box holds the corner picture, the exact distance leaves it out
    near = f"{PARIS[0]},{PARIS[1]}"
    assert distance_km(*PARIS, *CORNER) > 5 > distance_km(*PARIS, PARIS[0] + 3 / KM_LAT, PARIS[1])
    close = get(web, "/api/search", q="blue", near=near, radius="5km")
    assert set(names(close)) == {"paris", "night"}
    browse = get(web, "/api/items", near=near, radius="5km")
    assert set(names(browse)) == {"paris", "night"} and browse["total"] == 2
    assert set(names(get(web, "/api/items", near=near, radius="20km"))) == {
        "paris",
        "night",
        "corner",
        "versailles",
    }
    assert set(names(get(web, "/api/items", near=near))) == {"paris"}  # 1 km unless told
    # filters combine: in the summer, near Paris, with a Pixel 7
    combined = get(web, "/api/items", since="2023-07", near=near, radius="20km", camera="pixel 7")
    assert set(names(combined)) == {"night", "versailles"}


def test_hybrid_and_fulltext_search_over_the_tags(photos: lookalike.Table) -> None:
    web = TestClient(create_app(photos))
    # a word of a tag that only some pictures carry, in no other tag: full-text search finds exactly
    # those pictures (the toy model tags by colour: "red apple" goes to the reddish ones)
    phrase, tag = "apple", "red apple"
    carriers = tagged(photos, tag)
    assert 0 < len(carriers) < len(PHOTOS)
    words = get(web, "/api/search", q=phrase, mode="fulltext")
    assert words["query"] == {"kind": "text", "q": phrase, "mode": "fulltext"}
    assert set(names(words)) == carriers
    lib = photos.search(phrase, search_type="fulltext").text_column("tags").limit(49).to_list()
    assert names(words) == stems(lib)[:48]
    assert all(h["distance"] is None and h["score"] > 0 for h in words["results"])
    # hybrid: the library's fused order (vector search and full-text search over the tags)
    hybrid = get(web, "/api/search", q=phrase, mode="hybrid")
    lib = photos.search(phrase, search_type="hybrid").text_column("tags").limit(49).to_list()
    assert names(hybrid) == stems(lib)[:48] and len(names(hybrid)) == len(PHOTOS)
    scores = [h["score"] for h in hybrid["results"]]
    assert scores == sorted(scores, reverse=True)
    # the pictures carrying the words rank above those that only the vector search found
    assert set(names(hybrid)[: len(carriers)]) == carriers
    # filters apply to both halves of a hybrid search
    filtered = get(web, "/api/search", q=phrase, mode="hybrid", camera="pixel 7")
    assert set(names(filtered)) == {"paris", "night", "versailles"}
    vector = get(web, "/api/search", q=phrase, mode="vector")
    assert vector["query"] == {"kind": "text", "q": phrase}
    assert names(vector) == stems(photos.search(phrase).limit(48).to_list())


# ---------------------------------------------------------------------- paging and URLs


def test_near_pages_are_consecutive(web: TestClient) -> None:
    near = f"{PARIS[0]},{PARIS[1]}"
    whole = get(web, "/api/search", q="red", near=near, radius="20km")
    assert len(whole["results"]) == 4 and whole["has_more"] is False
    pages = [get(web, "/api/search", q="red", near=near, radius="20km", offset=i, limit=1) for i in range(4)]
    assert [names(p)[0] for p in pages] == names(whole)
    assert [p["has_more"] for p in pages] == [True, True, True, False]
    items = [get(web, "/api/items", near=near, radius="20km", offset=i, limit=3) for i in (0, 3)]
    assert names(items[0]) + names(items[1]) == names(get(web, "/api/items", near=near, radius="20km"))
    assert items[0]["has_more"] is True and items[1]["has_more"] is False and items[0]["total"] == 4


def test_url_search_takes_the_filters(sqlite_photos: lookalike.Table, tmp_path: Path) -> None:
    photo = write_photos(tmp_path / "again")["london"]
    with LocalHTTPServer() as host:
        host.add_bytes("/london.jpg", photo.read_bytes(), "image/jpeg")
        web = TestClient(create_app(sqlite_photos, allow_private_urls=True))
        r = web.get("/api/search/url", params={"url": host.url("/london.jpg"), "camera": "canon"})
    assert r.status_code == 200, r.text
    assert names(r.json()) == ["london", "corner"]  # the Canon pictures, the same one first
    assert r.json()["query"]["filters"] == {"camera": "canon"}


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("params", "names_it"),
    [
        ({"since": "June 2023"}, "since: 'June 2023' is not a date"),
        ({"since": "2023-13"}, "since"),
        ({"until": "2023-02-30"}, "until: '2023-02-30' is not a real date"),
        ({"since": "2023-09", "until": "2023-06"}, "since 2023-09 is after until 2023-06"),
        ({"radius": "5km"}, "radius needs near"),
        ({"near": "48.85"}, "near: '48.85' is not a position"),
        ({"near": "95,2"}, "near: '95,2' is off the globe"),
        ({"near": "48.85,2.35", "radius": "5 parsecs"}, "radius: '5 parsecs' is not a distance"),
        ({"near": "48.85,2.35", "radius": "-1km"}, "radius"),
        ({"camera": "   "}, "camera: '   ' names no camera"),
        ({"tag": "50%"}, "tag: '50%' is not a tag"),
        ({"tag": ""}, "tag"),
        ({"camera": "pixel\x007"}, "camera: 'pixel\\x007' holds a control character"),
    ],
)
def test_bad_photo_filters_are_422_naming_the_parameter(
    web: TestClient, params: dict[str, str], names_it: str
) -> None:
    for path, query in (
        ("/api/search", {"q": "red"}),
        ("/api/items", {}),
        ("/api/items/1/similar", {}),
        ("/api/search/url", {"url": "http://x.test/a.jpg"}),
    ):
        r = web.get(path, params={**query, **params})
        assert r.status_code == 422, (path, r.text)
        error = error_of(r)
        assert error["code"] == "bad_photo_filter" and names_it in error["message"], error
        assert "--" not in error["message"]  # the API's parameters, not the CLI's options
    r = web.post("/api/search/examples", params=params, data={"positive_text": ["red"]})
    assert r.status_code == 422 and names_it in error_of(r)["message"]
    r = web.post("/api/search/image", params=params, files={"file": ("x.png", b"not even read")})
    assert r.status_code == 422 and names_it in error_of(r)["message"]  # before the upload is decoded


def test_unknown_mode_is_422(web: TestClient) -> None:
    for mode in ("semantic", "HYBRID", ""):
        r = web.get("/api/search", params={"q": "red", "mode": mode})
        assert r.status_code == 422, r.text
        error = error_of(r)
        assert error["code"] == "bad_mode" and "vector, hybrid, fulltext" in error["message"]


def test_a_table_without_tags_or_exif_says_what_is_missing(plain: TestClient) -> None:
    for mode in ("hybrid", "fulltext"):
        r = plain.get("/api/search", params={"q": "red", "mode": mode})
        assert r.status_code == 422
        error = error_of(r)
        assert error["code"] == "no_fulltext" and f"mode={mode} needs a full-text column" in error["message"]
        assert "table 'images' has none" in error["message"]
    for params, missing in [
        ({"since": "2023"}, "column taken_at"),
        ({"near": "48.85,2.35"}, "columns gps_lat, gps_lon"),
        ({"camera": "pixel"}, "column camera"),
        ({"tag": "beach"}, "tag column"),
    ]:
        r = plain.get("/api/items", params=params)
        assert r.status_code == 422
        error = error_of(r)
        assert error["code"] == "bad_photo_filter" and f"has no {missing}" in error["message"], error
    # no tags is no facets, not an error
    assert plain.get("/api/tags").json() == {"column": None, "tags": []}
    stats = plain.get("/api/stats").json()
    assert (stats["tag_column"], stats["fulltext_column"], stats["photo_filters"]) == (None, None, [])
    assert plain.get("/api/search", params={"q": "red", "mode": "vector"}).status_code == 200


@pytest.mark.parametrize("limit", ["0", "501", "many"])
def test_bad_facet_limits_are_400(web: TestClient, limit: str) -> None:
    r = web.get("/api/tags", params={"limit": limit})
    assert r.status_code == 400 and error_of(r)["code"] == "bad_request" and "limit" in error_of(r)["message"]


def test_the_schema_documents_filters_modes_and_facets(web: TestClient) -> None:
    schema = web.get("/openapi.json").json()
    search = schema["paths"]["/api/search"]["get"]
    params = {p["name"]: p for p in search["parameters"]}
    assert {"tag", "since", "until", "near", "radius", "camera", "mode"} <= set(params)
    assert params["mode"]["schema"]["enum"] == ["vector", "hybrid", "fulltext"]
    assert "422" in search["responses"]
    for path, method in [
        ("/api/items", "get"),
        ("/api/items/{item_id}/similar", "get"),
        ("/api/search/url", "get"),
        ("/api/search/image", "post"),
        ("/api/search/examples", "post"),
    ]:
        operation = schema["paths"][path][method]
        assert {"tag", "since", "camera"} <= {p["name"] for p in operation["parameters"]}, path
        assert "422" in operation["responses"], path
    assert schema["paths"]["/api/tags"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/TagFacets"}
