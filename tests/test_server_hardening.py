"""The server after an attack run (issue 10): memory through uploads, other sites' pages, huge ids,
error messages that quoted file bytes. Real uvicorn servers, real files, a real server process.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")

import lookalike
from lookalike.server import create_app
from tests.test_server import ROOT, LiveServer, build_table, error_of, make_gallery


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_gallery(tmp_path_factory.mktemp("gallery"))


@pytest.fixture(scope="module")
def db(gallery: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("db") / "gallery.db"
    build_table(path, gallery).client.close()
    yield path


@pytest.fixture(scope="module")
def table(db: Path) -> Iterator[lookalike.Table]:
    from tests.toy_embedder import ToyEmbedder

    client = lookalike.connect(db)
    yield client.open_table("images", embed_fn=ToyEmbedder())
    client.close()


@pytest.fixture(scope="module")
def live(table: lookalike.Table) -> Iterator[LiveServer]:
    with LiveServer(create_app(table, allowed_origins={"https://app.example"})) as server:
        yield server


def huge_png(width: int = 10_000, height: int = 10_000) -> bytes:
    """A 1-bit PNG of ``width`` × ``height`` pixels: about 100 KB on the wire, 300 MB as RGB."""
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, "PNG", optimize=True)
    return out.getvalue()


# ---------------------------------------------------------------------- memory through uploads


def _memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


@pytest.fixture(scope="module")
def server_process(db: Path) -> Iterator[tuple[str, int]]:
    """``serve``-like: the app over the gallery in its own process, so its memory can be read."""
    if not Path("/proc/self/status").exists():
        pytest.skip("reads memory figures from /proc")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import lookalike, uvicorn\n"
        "from lookalike.server import create_app\n"
        "from tests.toy_embedder import ToyEmbedder\n"
        f"table = lookalike.connect({str(db)!r}).open_table('images', embed_fn=ToyEmbedder())\n"
        f"uvicorn.run(create_app(table), host='127.0.0.1', port={port}, log_level='warning')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/api/stats", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def test_concurrent_100_megapixel_uploads_are_refused_without_decoding(
    server_process: tuple[str, int], gallery: dict[str, Path]
) -> None:
    url, pid = server_process
    # Warm up: one real image search, so Pillow, numpy and the route are loaded before measuring.
    files = {"file": ("q.jpg", gallery["red-waves"].read_bytes(), "image/jpeg")}
    assert httpx.post(url + "/api/search/image", files=files, timeout=30).status_code == 200
    before = _memory_kb(pid)
    bomb = huge_png()
    assert len(bomb) < 200_000  # passes the byte cap easily

    def post(i: int) -> httpx.Response:
        return httpx.post(
            url + "/api/search/image", files={"file": (f"bomb{i}.png", bomb, "image/png")}, timeout=60
        )

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, range(4)))
    took = time.monotonic() - started
    after = _memory_kb(pid)
    for r in answers:
        assert r.status_code == 413, r.text
        assert error_of(r)["code"] == "too_many_pixels" and "10000×10000" in error_of(r)["message"]
    grew_mb = (after["VmHWM"] - before["VmHWM"]) / 1024
    print(
        f"4 × 100 MP PNG: {took:.2f} s, peak RSS {before['VmHWM'] / 1024:.0f} → {after['VmHWM'] / 1024:.0f} MB"
    )
    assert took < 10
    assert grew_mb < 100, f"the server's peak memory grew by {grew_mb:.0f} MB"
    # The server still works.
    assert httpx.post(url + "/api/search/image", files=files, timeout=30).status_code == 200


def test_query_pixel_cap_is_a_setting(table: lookalike.Table, gallery: dict[str, Path]) -> None:
    files = {"file": ("q.jpg", gallery["red-waves"].read_bytes(), "image/jpeg")}  # 360×270
    with LiveServer(create_app(table, max_query_pixels=360 * 270 - 1)) as server:
        r = httpx.post(server.url + "/api/search/image", files=files, timeout=30)
        assert r.status_code == 413 and error_of(r)["code"] == "too_many_pixels"
    with LiveServer(create_app(table, max_query_pixels=360 * 270)) as server:
        assert httpx.post(server.url + "/api/search/image", files=files, timeout=30).status_code == 200


# ---------------------------------------------------------------------- other sites' pages


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:3000"},  # another port on the same machine is another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "same-origin"},
    ],
)
def test_requests_from_other_sites_pages_are_refused(
    live: LiveServer, gallery: dict[str, Path], ids_by_name: dict[str, int], headers: dict[str, str]
) -> None:
    item = ids_by_name["red-waves"]
    upload = {"file": ("q.jpg", gallery["red-waves"].read_bytes(), "image/jpeg")}
    with httpx.Client(base_url=live.url, headers=headers, timeout=30) as client:
        answers = [
            client.post("/api/search/image", files=upload),
            client.get("/api/search", params={"q": "red"}),
            client.get("/api/search/url", params={"url": "http://example.com/x.jpg"}),
            client.get("/api/duplicates"),
            client.get(f"/api/items/{item}/similar"),
            client.get(f"/api/items/{item}/thumbnail"),
            client.get(f"/api/items/{item}/image"),
            client.get("/api/stats"),
            client.post("/", content=b"x"),
        ]
    for r in answers:
        assert r.status_code == 403, (r.request.url, r.text)
        assert error_of(r)["code"] == "cross_site"


def test_the_servers_own_pages_and_other_clients_get_through(
    live: LiveServer, gallery: dict[str, Path]
) -> None:
    upload = {"file": ("q.jpg", gallery["red-waves"].read_bytes(), "image/jpeg")}
    for headers in [
        {},  # curl, scripts: no browser headers
        {"Origin": live.url, "Sec-Fetch-Site": "same-origin"},  # the page itself
        {"Origin": live.url.upper()},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
        {"Origin": "https://app.example"},  # named in allowed_origins
    ]:
        r = httpx.post(live.url + "/api/search/image", files=upload, headers=headers, timeout=30)
        assert r.status_code == 200, (headers, r.text)
        assert httpx.get(live.url + "/api/search", params={"q": "red"}, headers=headers).status_code == 200
    # A link from another site to the page itself still opens it.
    assert httpx.get(live.url + "/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


# ---------------------------------------------------------------------- ids and error messages


@pytest.fixture(scope="module")
def ids_by_name(table: lookalike.Table) -> dict[str, int]:
    return {Path(r["path"]).stem: r["id"] for r in table.query().to_list()}


@pytest.mark.parametrize("suffix", ["", "/image", "/thumbnail", "/similar"])
def test_an_id_too_large_for_any_row_is_404(live: LiveServer, suffix: str) -> None:
    for item in ["99999999999999999999", "-99999999999999999999", "9223372036854775808"]:
        r = httpx.get(f"{live.url}/api/items/{item}{suffix}")
        assert r.status_code == 404, r.text
        assert error_of(r)["code"] == "not_found"


def test_ids_are_ascii_integers(live: LiveServer) -> None:
    for item in ["1_0", "%20 1", "١٢", "+1", "1e3"]:
        r = httpx.get(f"{live.url}/api/items/{item}")
        assert r.status_code == 400 and error_of(r)["code"] == "bad_id", (item, r.text)
    assert httpx.get(f"{live.url}/api/items/9223372036854775807").status_code == 404


def test_an_image_swapped_for_a_link_to_a_secret_is_not_quoted(
    tmp_path: Path, gallery: dict[str, Path]
) -> None:
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(gallery["green-waves"].read_bytes())
    table = build_table(tmp_path / "swap.db", {"photo": picture})
    secret = tmp_path / "passwd"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n")
    picture.unlink()
    picture.symlink_to(secret)
    item = table.query().to_list()[0]["id"]
    try:
        with LiveServer(create_app(table)) as server:
            for suffix in ("/thumbnail", "/image"):
                r = httpx.get(f"{server.url}/api/items/{item}{suffix}")
                assert r.status_code in (400, 404, 415), r.text
                assert "root:x" not in r.text and ":x:0" not in r.text and "daemon" not in r.text
                assert "not a recognised image format" in error_of(r)["message"] or suffix == "/image"
    finally:
        table.client.close()


def test_decodes_are_bounded_and_a_waiting_request_is_told_to_retry(
    table: lookalike.Table, gallery: dict[str, Path], ids_by_name: dict[str, int]
) -> None:
    app = create_app(table, max_decodes=1)
    backend = app.state.backend
    backend.decode_wait = 0.3
    upload = {"file": ("q.jpg", gallery["red-waves"].read_bytes(), "image/jpeg")}
    with LiveServer(app) as server:
        assert backend.decode_slots.acquire(timeout=1)  # a decode in progress holds the only slot
        try:
            r = httpx.post(server.url + "/api/search/image", files=upload, timeout=30)
            assert r.status_code == 503 and error_of(r)["code"] == "busy"
            thumb = httpx.get(f"{server.url}/api/items/{ids_by_name['blue-waves']}/thumbnail")
            assert thumb.status_code == 503
        finally:
            backend.decode_slots.release()
        assert httpx.post(server.url + "/api/search/image", files=upload, timeout=30).status_code == 200
