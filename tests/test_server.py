"""The REST API, over HTTP against a real uvicorn server on 127.0.0.1 (see ``LiveServer``).

The table is a small gallery of generated pictures (six colours × three scenes, an exact copy and a
resized copy) embedded by :class:`~tests.toy_embedder.ToyEmbedder`, so "red" finds the red pictures.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")

import uvicorn

import lookalike
from lookalike import Field, TableModel
from lookalike.images import HttpFetcher
from lookalike.images.guard import resolve_host
from lookalike.server import create_app
from tests.helpers.http_server import LocalHTTPServer
from tests.toy_embedder import COLOURS, ToyEmbedder

ROOT = Path(__file__).resolve().parents[1]
GALLERY_COLOURS = ("red", "orange", "yellow", "green", "blue", "purple")
SCENES = ("sunset", "bokeh", "waves")
MAX_UPLOAD = 256 * 1024
TOKEN = "s3cret-t0ken"

# ---------------------------------------------------------------------- pictures


def _mix(a: tuple[int, ...], b: tuple[int, ...], t: float) -> tuple[int, ...]:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def scene(
    rgb: tuple[int, int, int], kind: str, *, size: tuple[int, int] = (360, 270), seed: int = 0
) -> Image.Image:
    """A picture in one dominant colour: a ``sunset`` landscape, ``bokeh`` lights or ``waves``."""
    w, h = size
    rng = np.random.default_rng(seed)
    white, black = (255, 255, 255), (0, 0, 0)
    if kind == "sunset":
        top, bottom = np.array(_mix(rgb, white, 0.55), float), np.array(_mix(rgb, black, 0.1), float)
        t = np.linspace(0, 1, h)[:, None, None]
        sky = np.repeat(top * (1 - t) + bottom * t, w, axis=1)
        im = Image.fromarray(sky.astype(np.uint8))
        draw = ImageDraw.Draw(im)
        cx, cy, r = w * 0.62, h * 0.42, h * 0.16
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_mix(rgb, white, 0.8))
        for k, (shade, base, amp) in enumerate([(0.35, 0.62, 18), (0.55, 0.74, 14), (0.75, 0.86, 10)]):
            xs = np.arange(0, w + 8, 8)
            ys = h * base + amp * np.sin(xs / w * 6.28 * (1 + k * 0.7) + rng.uniform(0, 6.28))
            ridge = list(zip(xs.tolist(), ys.tolist()))
            draw.polygon([(0, h), *ridge, (w, h)], fill=_mix(rgb, black, shade))
        return im
    if kind == "bokeh":
        im = Image.new("RGB", size, _mix(rgb, black, 0.55))
        layer = Image.new("RGBA", size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        for _ in range(38):
            x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(8, 38)
            fill = (*_mix(rgb, white, rng.uniform(0.05, 0.6)), int(rng.uniform(90, 200)))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
        layer = layer.filter(ImageFilter.GaussianBlur(2.2))
        im.paste(layer, (0, 0), layer)
        return im
    t = np.linspace(0, 1, h)[:, None]
    xs = np.linspace(0, 1, w)[None, :]
    wave = 0.5 + 0.5 * np.sin((t * 9 + 0.35 * np.sin(xs * 7 + rng.uniform(0, 6))) * 6.28)
    light, dark = np.array(_mix(rgb, white, 0.35), float), np.array(_mix(rgb, black, 0.3), float)
    arr = dark * (1 - wave[..., None]) + light * wave[..., None]
    return Image.fromarray(arr.astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))


def jpeg(im: Image.Image, quality: int = 88) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality)
    return out.getvalue()


def make_gallery(folder: Path) -> dict[str, Path]:
    """Write the gallery's JPEGs: ``<colour>-<scene>.jpg``, an exact copy and a resized copy."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for i, colour in enumerate(GALLERY_COLOURS):
        for j, kind in enumerate(SCENES):
            path = folder / f"{colour}-{kind}.jpg"
            path.write_bytes(jpeg(scene(COLOURS[colour], kind, seed=i * 3 + j)))
            files[path.stem] = path
    copy = folder / "red-sunset-copy.jpg"
    copy.write_bytes(files["red-sunset"].read_bytes())
    files[copy.stem] = copy
    small = folder / "blue-bokeh-small.jpg"
    small.write_bytes(jpeg(Image.open(files["blue-bokeh"]).resize((180, 135)), quality=70))
    files[small.stem] = small
    return files


def build_table(db: Path, files: dict[str, Path], name: str = "images") -> lookalike.Table:
    """The ``images`` table over ``files`` (id, path, vec) embedded by the toy embedder."""
    toy = ToyEmbedder()

    class Picture(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        path: str = Field()
        vec: list[float] = toy.VectorField(source_field="path", source_type="image")

    client = lookalike.connect(db)
    table = client.create_table(schema=Picture, if_exists="overwrite")
    table.bulk_insert([{"path": str(p)} for p in files.values()])
    return table


# ---------------------------------------------------------------------- a real server


class LiveServer:
    """Runs an ASGI app with uvicorn in a thread, on a socket bound to 127.0.0.1 by the OS."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


FAKE_DNS = {
    "evil.test": ["10.0.0.7"],
    "meta.test": ["169.254.169.254"],
    "mixed.test": ["93.184.216.34", "127.0.0.1"],
}


def fake_resolve(host: str, port: int) -> list[str]:
    """DNS for the guard: a few made-up names, the system resolver for the rest (localhost)."""
    return FAKE_DNS.get(host) or resolve_host(host, port)


@pytest.fixture
def image_host() -> Iterator[LocalHTTPServer]:
    """A real HTTP server on 127.0.0.1 that plays the web: pictures, redirects, errors."""
    with LocalHTTPServer() as server:
        yield server


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_gallery(tmp_path_factory.mktemp("gallery"))


@pytest.fixture(scope="module")
def table(gallery: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[lookalike.Table]:
    t = build_table(tmp_path_factory.mktemp("db") / "gallery.db", gallery)
    yield t
    t.client.close()


@pytest.fixture(scope="module")
def ids(table: lookalike.Table) -> dict[str, int]:
    """Item ids by picture name."""
    return {Path(r["path"]).stem: r["id"] for r in table.query().to_list()}


@pytest.fixture(scope="module")
def live(table: lookalike.Table) -> Iterator[LiveServer]:
    # The guard is the real one; "localhost" is the one host trusted, so the test's image server
    # (on 127.0.0.1, named "localhost") can serve a picture and redirect to a private address.
    fetcher = HttpFetcher(allow_private=False, allowed_hosts={"localhost"}, resolve=fake_resolve, retries=0)
    app = create_app(table, max_upload_bytes=MAX_UPLOAD, fetcher=fetcher)
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def api(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == response.status_code
    assert body["error"]["message"]
    return body["error"]


def names(page: dict[str, Any]) -> list[str]:
    return [Path(h["name"]).stem for h in page["results"]]


# ---------------------------------------------------------------------- routes


def test_stats_describe_the_index(api: httpx.Client, gallery: dict[str, Path]) -> None:
    stats = api.get("/api/stats").json()
    assert stats["rows"] == len(gallery) == 20
    assert stats["table"] == "images"
    assert stats["columns"] == ["id", "path"]
    assert (stats["vector_column"], stats["dimensions"], stats["metric"]) == ("vec", 16, "cosine")
    assert stats["model"] == "toy" and stats["multimodal"] is True
    assert stats["image_column"] == "path"
    assert stats["token_required"] is False


def test_openapi_docs_list_every_route(api: httpx.Client) -> None:
    docs = api.get("/docs")
    assert docs.status_code == 200 and '<script src="/static/docs.js">' in docs.text
    # Everything the docs load comes from this server: they work offline, under the strict CSP.
    assert "http://" not in docs.text and "https://" not in docs.text
    csp = docs.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "default-src 'self';" in csp
    assert api.get("/static/docs.js").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/api/stats",
        "/api/items",
        "/api/items/{item_id}",
        "/api/items/{item_id}/image",
        "/api/items/{item_id}/thumbnail",
        "/api/items/{item_id}/similar",
        "/api/search",
        "/api/search/image",
        "/api/search/url",
        "/api/duplicates",
    }
    assert "post" in paths["/api/search/image"]


def test_items_are_paged(api: httpx.Client) -> None:
    first = api.get("/api/items", params={"limit": 8}).json()
    second = api.get("/api/items", params={"offset": 8, "limit": 8}).json()
    last = api.get("/api/items", params={"offset": 16, "limit": 8}).json()
    assert first["total"] == 20 and first["has_more"] and second["has_more"] and not last["has_more"]
    ids = [h["id"] for page in (first, second, last) for h in page["results"]]
    assert ids == sorted(ids) and len(set(ids)) == 20


def test_item_metadata(api: httpx.Client, ids: dict[str, int], gallery: dict[str, Path]) -> None:
    item = api.get(f"/api/items/{ids['green-waves']}").json()
    assert item["id"] == ids["green-waves"]
    assert item["name"] == "green-waves.jpg"
    assert item["metadata"] == {"id": ids["green-waves"], "path": str(gallery["green-waves"])}
    assert "vec" not in item["metadata"]
    assert item["thumbnail_url"] == f"/api/items/{ids['green-waves']}/thumbnail"


def test_image_is_the_indexed_file(api: httpx.Client, ids: dict[str, int], gallery: dict[str, Path]) -> None:
    r = api.get(f"/api/items/{ids['purple-bokeh']}/image")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.content == gallery["purple-bokeh"].read_bytes()


def test_thumbnail_is_small_and_cached(api: httpx.Client, ids: dict[str, int]) -> None:
    before = api.get("/api/stats").json()["thumbnails"]
    r = api.get(f"/api/items/{ids['yellow-sunset']}/thumbnail", params={"size": 128})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    im = Image.open(io.BytesIO(r.content))
    assert im.format == "JPEG" and max(im.size) == 128 and im.size == (128, 96)
    mean = np.asarray(im.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)
    assert mean[0] > mean[2] + 40 and mean[1] > mean[2] + 40  # still yellow
    again = api.get(f"/api/items/{ids['yellow-sunset']}/thumbnail", params={"size": 128})
    assert again.content == r.content and again.headers["etag"] == r.headers["etag"]
    after = api.get("/api/stats").json()["thumbnails"]
    assert after["entries"] == before["entries"] + 1
    assert after["hits"] == before["hits"] + 1
    assert after["bytes"] <= after["max_bytes"]


def test_thumbnail_size_must_be_a_known_one(api: httpx.Client, ids: dict[str, int]) -> None:
    r = api.get(f"/api/items/{ids['red-waves']}/thumbnail", params={"size": 4000})
    assert r.status_code == 400 and error_of(r)["code"] == "bad_size"


def test_text_search_finds_the_red_pictures(api: httpx.Client) -> None:
    page = api.get("/api/search", params={"q": "red", "limit": 3}).json()
    assert page["query"] == {"kind": "text", "q": "red"}
    assert [n.split("-")[0] for n in names(page)] == ["red", "red", "red"]
    scores = [h["score"] for h in page["results"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1
    assert page["results"][0]["distance"] == pytest.approx(1 - scores[0], abs=1e-6)


def test_search_pages_are_consecutive(api: httpx.Client) -> None:
    whole = api.get("/api/search", params={"q": "blue", "limit": 10}).json()
    first = api.get("/api/search", params={"q": "blue", "limit": 5}).json()
    second = api.get("/api/search", params={"q": "blue", "offset": 5, "limit": 5}).json()
    assert names(first) + names(second) == names(whole)
    tail = api.get("/api/search", params={"q": "blue", "offset": 15, "limit": 10}).json()
    assert len(tail["results"]) == 5 and not tail["has_more"] and first["has_more"]


def test_upload_search_finds_the_same_picture_first(api: httpx.Client, gallery: dict[str, Path]) -> None:
    data = gallery["green-bokeh"].read_bytes()
    r = api.post("/api/search/image", files={"file": ("query.jpg", data, "image/jpeg")}, params={"limit": 4})
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["query"]["kind"] == "image" and page["query"]["name"] == "query.jpg"
    assert names(page)[0] == "green-bokeh"
    assert page["results"][0]["distance"] == pytest.approx(0, abs=1e-5)
    assert all(n.startswith("green") for n in names(page)[:3])


def test_more_like_this_leaves_the_item_out(api: httpx.Client, ids: dict[str, int]) -> None:
    page = api.get(f"/api/items/{ids['orange-waves']}/similar", params={"limit": 5}).json()
    assert page["query"]["kind"] == "item" and page["query"]["id"] == ids["orange-waves"]
    assert "orange-waves" not in names(page)
    assert names(page)[:2] == ["orange-bokeh", "orange-sunset"] or set(names(page)[:2]) == {
        "orange-bokeh",
        "orange-sunset",
    }
    rest = api.get(f"/api/items/{ids['orange-waves']}/similar", params={"offset": 5, "limit": 50}).json()
    assert len(page["results"]) + len(rest["results"]) == 19 and not rest["has_more"]


def test_duplicate_groups_mark_the_keeper(api: httpx.Client, ids: dict[str, int]) -> None:
    r = api.get("/api/duplicates", params={"threshold": 0.0001})
    assert r.status_code == 200, r.text
    page = r.json()
    groups = {frozenset(Path(m["name"]).stem for m in g["members"]): g for g in page["groups"]}
    assert set(groups) == {
        frozenset({"red-sunset", "red-sunset-copy"}),
        frozenset({"blue-bokeh", "blue-bokeh-small"}),
    }
    for g in page["groups"]:
        keepers = [m for m in g["members"] if m["keeper"]]
        assert len(keepers) == 1 and keepers[0]["id"] == g["keeper"] == g["members"][0]["id"]
        assert g["size"] == 2 and keepers[0]["distance"] == 0
    small = groups[frozenset({"blue-bokeh", "blue-bokeh-small"})]
    assert small["keeper"] == ids["blue-bokeh"]  # the bigger picture is the one to keep
    assert groups[frozenset({"red-sunset", "red-sunset-copy"})]["exact"] is True
    one = api.get("/api/duplicates", params={"threshold": 0.0001, "limit": 1}).json()
    assert len(one["groups"]) == 1 and one["has_more"] and one["total_groups"] == 2


def test_duplicates_say_why_members_are_grouped(api: httpx.Client) -> None:
    """Each member's match to the keeper and what changed; each group's kind and diameter; similar
    shots (same colour, another scene for the toy embedder) only with ``similar=true``."""
    page = api.get("/api/duplicates", params={"threshold": 0.02}).json()
    assert page["similar"] is False
    by_names = {tuple(Path(m["name"]).stem for m in g["members"]): g for g in page["groups"]}
    assert set(by_names) == {("red-sunset", "red-sunset-copy"), ("blue-bokeh", "blue-bokeh-small")}
    copy = by_names[("red-sunset", "red-sunset-copy")]
    assert copy["kind"] == "identical file" and copy["diameter"] == pytest.approx(0, abs=1e-6)
    assert [(m["match"], m["detail"]) for m in copy["members"]] == [("keeper", ""), ("identical file", "")]
    small = by_names[("blue-bokeh", "blue-bokeh-small")]
    assert small["kind"] == "same picture" and 0 <= small["diameter"] <= 0.02
    pairs = [(m["match"], m["detail"]) for m in small["members"]]
    assert pairs == [("keeper", ""), ("same picture", "resized")]

    wide = api.get("/api/duplicates", params={"threshold": 0.02, "similar": True, "limit": 50}).json()
    assert wide["similar"] is True
    matches = {Path(m["name"]).stem: m["match"] for g in wide["groups"] for m in g["members"]}
    assert matches["blue-bokeh-small"] == "same picture" and matches["red-sunset-copy"] == "identical file"
    assert matches["blue-waves"] == "similar"  # the same colour, another scene: only with similar
    assert all(g["diameter"] <= 0.02 + 1e-6 for g in wide["groups"])
    assert any(g["kind"] == "similar" for g in wide["groups"])


# ---------------------------------------------------------------------- URL queries and the SSRF guard


def test_url_search_downloads_the_picture(
    api: httpx.Client, image_host: LocalHTTPServer, gallery: dict[str, Path]
) -> None:
    image_host.add_bytes("/pics/blue.jpg", gallery["blue-waves"].read_bytes(), "image/jpeg")
    url = f"http://localhost:{image_host.port}/pics/blue.jpg"
    r = api.get("/api/search/url", params={"url": url, "limit": 3})
    assert r.status_code == 200, r.text
    assert names(r.json())[0] == "blue-waves"
    assert r.json()["query"] == {"kind": "url", "url": url}
    assert image_host.count("/pics/blue.jpg") == 1
    again = api.get("/api/search/url", params={"url": url, "offset": 3, "limit": 3})
    assert again.status_code == 200 and image_host.count("/pics/blue.jpg") == 1  # paging reuses the query


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/pics/red.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/pics/red.jpg",
        "http://[::ffff:127.0.0.1]:{port}/pics/red.jpg",
        "http://10.1.2.3/x.jpg",
        "http://evil.test/x.jpg",  # resolves to 10.0.0.7
        "http://meta.test/latest/meta-data/",  # resolves to the metadata address
        "http://mixed.test/x.jpg",  # one public and one loopback address
    ],
)
def test_url_to_a_private_address_is_refused(
    api: httpx.Client, image_host: LocalHTTPServer, url: str
) -> None:
    image_host.add_bytes("/pics/red.jpg", b"\xff\xd8\xff" + b"\0" * 64, "image/jpeg")
    r = api.get("/api/search/url", params={"url": url.format(port=image_host.port)})
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "url_refused" and "private or local address" in err["message"]
    assert image_host.count() == 0


def test_redirect_to_a_private_address_is_refused(
    api: httpx.Client, image_host: LocalHTTPServer, gallery: dict[str, Path]
) -> None:
    image_host.add_bytes("/pics/red.jpg", gallery["red-waves"].read_bytes(), "image/jpeg")
    image_host.add_redirect("/go", f"http://127.0.0.1:{image_host.port}/pics/red.jpg")
    image_host.add_redirect("/meta", "http://169.254.169.254/latest/meta-data/")
    for path in ("/go", "/meta"):
        r = api.get("/api/search/url", params={"url": f"http://localhost:{image_host.port}{path}"})
        assert r.status_code == 400
        err = error_of(r)
        assert err["code"] == "url_refused" and "redirect to" in err["message"]
    assert image_host.count("/go") == 1 and image_host.count("/meta") == 1
    assert image_host.count("/pics/red.jpg") == 0  # the private target was never fetched


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x.jpg", "/etc/passwd", "gopher://x"]
)
def test_url_must_be_http(api: httpx.Client, url: str) -> None:
    r = api.get("/api/search/url", params={"url": url})
    assert r.status_code == 400 and error_of(r)["code"] == "bad_url"


def test_url_that_is_not_an_image(api: httpx.Client, image_host: LocalHTTPServer) -> None:
    image_host.add_bytes("/doc.pdf", b"%PDF-1.7\n" + b"x" * 100, "application/octet-stream")
    image_host.add_bytes("/page", b"<!doctype html><p>hi</p>", "text/html")
    image_host.add_status("/gone.jpg", 404)
    r = api.get("/api/search/url", params={"url": f"http://localhost:{image_host.port}/doc.pdf"})
    assert r.status_code == 415 and "PDF" in error_of(r)["message"]
    r = api.get("/api/search/url", params={"url": f"http://localhost:{image_host.port}/page"})
    assert r.status_code == 400 and "not an image" in error_of(r)["message"]
    r = api.get("/api/search/url", params={"url": f"http://localhost:{image_host.port}/gone.jpg"})
    assert r.status_code == 400 and error_of(r)["code"] == "fetch_failed" and "404" in error_of(r)["message"]


def test_allow_private_urls_lets_local_addresses_through(
    table: lookalike.Table, image_host: LocalHTTPServer, gallery: dict[str, Path]
) -> None:
    image_host.add_bytes("/pics/purple.jpg", gallery["purple-sunset"].read_bytes(), "image/jpeg")
    url = f"http://127.0.0.1:{image_host.port}/pics/purple.jpg"
    with LiveServer(create_app(table, allow_private_urls=True)) as server:
        r = httpx.get(f"{server.url}/api/search/url", params={"url": url, "limit": 1}, timeout=30)
    assert r.status_code == 200 and names(r.json()) == ["purple-sunset"]
    with LiveServer(create_app(table)) as server:  # the default: refused
        r = httpx.get(f"{server.url}/api/search/url", params={"url": url, "limit": 1}, timeout=30)
    assert r.status_code == 400 and error_of(r)["code"] == "url_refused"


# ---------------------------------------------------------------------- bad input


def test_upload_that_is_not_an_image_is_415(api: httpx.Client) -> None:
    for filename, data, what in [
        ("notes.txt", b"just some words, not a picture", "unrecognised format"),
        ("scan.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF document"),
        ("page.png", b"<!DOCTYPE html><html><body>hi</body></html>", "HTML page"),
    ]:
        r = api.post("/api/search/image", files={"file": (filename, data, "image/png")})
        assert r.status_code == 415, r.text
        err = error_of(r)
        assert err["code"] == "not_an_image" and filename in err["message"] and what in err["message"]


def test_upload_of_a_corrupt_image_is_400(api: httpx.Client) -> None:
    r = api.post(
        "/api/search/image", files={"file": ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png")}
    )
    assert r.status_code == 400 and error_of(r)["code"] == "bad_image"
    r = api.post("/api/search/image", files={"file": ("empty.jpg", b"", "image/jpeg")})
    assert r.status_code == 400 and "empty" in error_of(r)["message"]


def test_upload_without_a_file_is_400(api: httpx.Client) -> None:
    r = api.post("/api/search/image", data={"something": "else"})
    assert r.status_code == 400 and "file" in error_of(r)["message"]


def test_oversize_upload_is_413(api: httpx.Client) -> None:
    # a real JPEG (bytes after its end marker are ignored by decoders) just over the cap: the route refuses it
    picture = jpeg(scene(COLOURS["red"], "waves"))
    big = picture + b"\0" * (MAX_UPLOAD + 1000 - len(picture))
    r = api.post("/api/search/image", files={"file": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 413 and error_of(r)["code"] == "too_large"
    # far over the cap: refused from Content-Length, before the body is read
    huge = b"\xff\xd8\xff" + b"\0" * (4 * MAX_UPLOAD)
    r = api.post("/api/search/image", files={"file": ("huge.jpg", huge, "image/jpeg")})
    assert r.status_code == 413 and "limit" in error_of(r)["message"]


def test_streamed_oversize_body_is_413(live: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:  # chunked, no Content-Length: counted while it streams
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n\xff\xd8\xff'
        for _ in range(40):
            yield b"\0" * 32 * 1024

    with httpx.Client(base_url=live.url) as client:
        r = client.post(
            "/api/search/image", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
        )
    assert r.status_code == 413


def test_unknown_id_is_404(api: httpx.Client) -> None:
    for path in ("", "/image", "/thumbnail", "/similar"):
        r = api.get(f"/api/items/987654{path}")
        assert r.status_code == 404, path
        err = error_of(r)
        assert err["code"] == "not_found" and "987654" in err["message"]


def test_item_whose_file_is_gone_is_404(tmp_path: Path, gallery: dict[str, Path]) -> None:
    table = build_table(tmp_path / "gone.db", {"red-waves": gallery["red-waves"]})
    gone = table.insert({"path": str(tmp_path / "deleted.jpg"), "vec": [0.25] * 16})["id"]
    with LiveServer(create_app(table)) as server:
        for route in ("image", "thumbnail"):
            r = httpx.get(f"{server.url}/api/items/{gone}/{route}")
            assert r.status_code == 404 and error_of(r)["code"] == "image_unavailable"
            assert "no such file" in error_of(r)["message"]
        assert (
            httpx.get(f"{server.url}/api/items/{gone}/similar").json()["results"][0]["name"]
            == "red-waves.jpg"
        )
    table.client.close()


def test_id_of_the_wrong_type_is_400(api: httpx.Client) -> None:
    r = api.get("/api/items/abc")
    assert r.status_code == 400 and error_of(r)["code"] == "bad_id"


@pytest.mark.parametrize(
    "path",
    [
        "/api/items/..%2F..%2Fetc%2Fpasswd/image",
        "/api/items/%2e%2e/image",
        "/api/items/%252e%252e%252fsecret/thumbnail",
        "/api/items/..%5C..%5Cwindows/image",
        "/static/..%2F..%2Fserver%2Fapp.py",
        "/api/items/1/thumbnail?size=..%2F..%2Fetc",
        "/api/items?offset=../../etc",
    ],
)
def test_dot_dot_in_a_path_parameter_is_refused(api: httpx.Client, path: str) -> None:
    r = api.get(path)
    assert r.status_code == 400
    assert error_of(r)["code"] == "bad_path"


def test_literal_dot_dot_in_the_request_line_is_refused(live: LiveServer) -> None:
    # httpx would normalise "/../" away; send the raw request line.
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall(
            b"GET /static/../../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400") and b"bad_path" in answer and b"root:" not in answer


def test_bad_parameters_are_400_with_a_message(api: httpx.Client) -> None:
    r = api.get("/api/search", params={"q": "red", "limit": 0})
    assert r.status_code == 400 and "limit" in error_of(r)["message"]
    r = api.get("/api/search")
    assert r.status_code == 400 and "q" in error_of(r)["message"]
    r = api.get("/api/search", params={"q": "   "})
    assert r.status_code == 400
    r = api.get("/api/duplicates", params={"threshold": 5})
    assert r.status_code == 400 and "threshold" in error_of(r)["message"]
    r = api.get("/api/nothing-here")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"


# ---------------------------------------------------------------------- the token


@pytest.fixture(scope="module")
def locked(table: lookalike.Table) -> Iterator[LiveServer]:
    with LiveServer(create_app(table, token=TOKEN)) as server:
        yield server


@pytest.mark.parametrize(
    "path",
    [
        "/api/stats",
        "/api/items",
        "/api/items/1",
        "/api/items/1/thumbnail",
        "/api/search?q=red",
        "/api/duplicates",
        "/docs",
        "/openapi.json",
    ],
)
def test_token_is_required_on_every_route(locked: LiveServer, path: str) -> None:
    r = httpx.get(locked.url + path)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert error_of(r)["code"] == "unauthorized"
    wrong = httpx.get(locked.url + path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong token" in error_of(wrong)["message"]
    ok = httpx.get(locked.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200, ok.text
    by_query = httpx.get(locked.url + path + ("&" if "?" in path else "?") + f"token={TOKEN}")
    assert by_query.status_code == 200


def test_token_guards_uploads_before_reading_them(locked: LiveServer, gallery: dict[str, Path]) -> None:
    files = {"file": ("q.jpg", gallery["red-waves"].read_bytes(), "image/jpeg")}
    assert httpx.post(f"{locked.url}/api/search/image", files=files).status_code == 401
    r = httpx.post(
        f"{locked.url}/api/search/image", files=files, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 200 and names(r.json())[0] == "red-waves"


def test_page_shell_loads_without_the_token(locked: LiveServer) -> None:
    page = httpx.get(locked.url + "/")
    assert page.status_code == 200 and "<title>lookalike</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(locked.url + "/static/app.js").status_code == 200
    assert httpx.get(locked.url + "/api/stats").status_code == 401


def test_docs_pass_the_token_on_to_the_schema(locked: LiveServer) -> None:
    docs = httpx.get(locked.url + "/docs", params={"token": TOKEN})
    assert docs.status_code == 200 and f"/openapi.json?token={TOKEN}" in docs.text
    schema = httpx.get(locked.url + "/openapi.json", params={"token": TOKEN}).json()
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


# ---------------------------------------------------------------------- serve(), the CLI's entry point


def test_create_app_opens_a_clients_table(table: lookalike.Table) -> None:
    client = lookalike.connect(table.client.engine.sa_engine.url.database)
    with LiveServer(create_app(client)) as server:  # the "images" table by default
        assert httpx.get(server.url + "/api/stats").json()["rows"] == 20
    with pytest.raises(lookalike.TableNotFoundError, match="nope"):
        create_app(client, table="nope")
    client.close()


def test_serve_binds_loopback_reads_the_token_from_the_environment(
    table: lookalike.Table, tmp_path: Path
) -> None:
    db = table.client.engine.sa_engine.url.database
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LOOKALIKE_TOKEN": "from-env", "PYTHONPATH": str(ROOT)}
    code = f"from lookalike.server import serve; serve({db!r}, port={port})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(url + "/api/stats", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "serve() did not start"
                time.sleep(0.1)
        assert r.status_code == 401
        ok = httpx.get(url + "/api/stats", headers={"Authorization": "Bearer from-env"})
        assert ok.status_code == 200 and ok.json()["rows"] == 20
        # DNS rebinding: a page on another origin that resolves to 127.0.0.1 sends its own Host
        rebound = httpx.get(
            url + "/api/stats", headers={"Host": "attacker.example", "Authorization": "Bearer from-env"}
        )
        assert rebound.status_code == 400 and error_of(rebound)["code"] == "bad_host"
        assert httpx.get(f"http://localhost:{port}/", timeout=5).status_code == 200
        listening = [
            line for line in Path("/proc/net/tcp").read_text().splitlines()[1:] if f":{port:04X} " in line
        ]
        assert listening and all(line.split()[1].startswith("0100007F:") for line in listening)
    finally:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------------- the tiny real model


TINY_CLIP = ROOT / "tests" / "fixtures" / "tiny-clip"


def test_tiny_clip_model_serves_searches(
    tmp_path: Path, gallery: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tokenizers")
    if not (TINY_CLIP / "onnx").is_dir():
        pytest.skip("tiny CLIP fixture not present")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embed = lookalike.EmbeddingFunction(f"local/{TINY_CLIP}")

    class Clipped(TableModel):
        __tablename__ = "clipped"
        id: int = Field(primary_key=True)
        path: str = Field()
        vec: list[float] = embed.VectorField(source_field="path", source_type="image")

    client = lookalike.connect(tmp_path / "clip.db")
    table = client.create_table(schema=Clipped, if_exists="overwrite")
    table.bulk_insert(
        [{"path": str(gallery[n])} for n in ("red-sunset", "green-waves", "blue-bokeh", "yellow-waves")]
    )
    with LiveServer(create_app(table)) as server, httpx.Client(base_url=server.url, timeout=60) as api:
        files = {"file": ("q.jpg", gallery["blue-bokeh"].read_bytes(), "image/jpeg")}
        page = api.post("/api/search/image", files=files).json()
        assert names(page)[0] == "blue-bokeh" and page["results"][0]["distance"] == pytest.approx(0, abs=1e-4)
        text = api.get("/api/search", params={"q": "a photo of a sunset"}).json()
        assert len(text["results"]) == 4
        assert api.get("/api/stats").json()["dimensions"] == 16
    client.close()
