"""The search page in a real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Screenshots go to ``test-artifacts/`` (git-ignored); the README's ``docs/screenshot.png`` is written
by ``test_readme_screenshot``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("playwright.sync_api")

from playwright import sync_api

import lookalike
from lookalike.server import create_app
from tests.test_server import TOKEN, LiveServer, build_table, make_gallery

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("LOOKALIKE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not Path(CHROMIUM).exists():
    if os.environ.get("LOOKALIKE_REQUIRE_CHROMIUM"):  # CI: the page must be tested, not skipped
        raise RuntimeError(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_gallery(tmp_path_factory.mktemp("gallery"))


@pytest.fixture(scope="module")
def table(gallery: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[lookalike.Table]:
    t = build_table(tmp_path_factory.mktemp("db") / "gallery.db", gallery)
    yield t
    t.client.close()


@pytest.fixture(scope="module")
def server(table: lookalike.Table) -> Iterator[LiveServer]:
    with LiveServer(create_app(table)) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.console_errors = []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    yield pg
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"page-{name}.png"))


def wait_state(page: Any, state: str) -> None:
    page.wait_for_function(f"() => document.body.dataset.state === {state!r}")


def card_names(page: Any, scope: str = "#grid") -> list[str]:
    return page.locator(f"{scope} .card .name").all_inner_texts()


def wait_thumbnails(page: Any, n: int = 6, scope: str = "#grid") -> None:
    page.wait_for_function(
        f"() => Array.from(document.querySelectorAll('{scope} img')).slice(0, {n})"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )


def test_type_a_query_and_see_results(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    wait_state(page, "results")  # the index is browsable before any query
    assert len(card_names(page)) == 20
    assert "20 images" in page.inner_text("#stats")
    page.fill("#q", "red")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelector('#query-label').textContent.includes('red')")
    wait_state(page, "results")
    names = card_names(page)
    assert [n.split("-")[0] for n in names[:3]] == ["red", "red", "red"]
    scores = [float(s) for s in page.locator("#grid .score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    img = page.locator("#grid .card img").first
    assert img.get_attribute("loading") == "lazy"
    wait_thumbnails(page)
    shot(page, "text-search")
    assert page.console_errors == []


def test_upload_an_image_and_see_it_first(page: Any, server: LiveServer, gallery: dict[str, Path]) -> None:
    page.goto(server.url + "/")
    wait_state(page, "results")
    page.set_input_files("#file", str(gallery["green-waves"]))
    page.wait_for_function("() => document.querySelector('#query-label').textContent.includes('green-waves')")
    wait_state(page, "results")
    assert card_names(page)[0] == "green-waves.jpg"
    assert "first" in (page.locator("#grid .card").first.get_attribute("class") or "")
    assert page.locator("#query-thumb").is_visible()  # the uploaded picture is shown as the query
    wait_thumbnails(page)
    shot(page, "upload")


def test_paste_and_drop_an_image(page: Any, server: LiveServer, gallery: dict[str, Path]) -> None:
    page.goto(server.url + "/")
    wait_state(page, "results")
    data = list(gallery["yellow-bokeh"].read_bytes())
    for event in ("paste", "drop"):
        page.evaluate(
            """([bytes, event]) => {
                const dt = new DataTransfer();
                dt.items.add(new File([new Uint8Array(bytes)], 'clip.jpg', {type: 'image/jpeg'}));
                const ev = event === 'paste'
                    ? new ClipboardEvent('paste', {clipboardData: dt, bubbles: true})
                    : new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true});
                document.body.dispatchEvent(ev);
            }""",
            [data, event],
        )
        page.wait_for_function(
            "() => document.querySelector('#query-label').textContent.includes('clip.jpg')"
        )
        wait_state(page, "results")
        assert card_names(page)[0] == "yellow-bokeh.jpg", event
        page.click("#clear-query")
        wait_state(page, "results")


def test_open_more_like_this(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    wait_state(page, "results")
    page.locator("#grid .card", has_text="orange-waves.jpg").click()
    page.wait_for_function(
        "() => document.querySelector('#query-label').textContent.includes('orange-waves')"
    )
    wait_state(page, "results")
    names = card_names(page)
    assert "orange-waves.jpg" not in names and len(names) == 19
    assert {names[0], names[1]} == {"orange-bokeh.jpg", "orange-sunset.jpg"}
    wait_thumbnails(page)
    shot(page, "more-like-this")


def test_duplicates_view_marks_the_keeper(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    wait_state(page, "results")
    page.click("[data-view=dupes]")
    assert page.locator("#view-dupes").is_visible() and not page.locator("#view-search").is_visible()
    page.fill("#threshold", "0.0001")
    page.click("#dupes-form button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('.group').length === 2")
    groups = page.locator(".group")
    seen = set()
    for i in range(groups.count()):
        group = groups.nth(i)
        names = group.locator(".name").all_inner_texts()
        seen.add(frozenset(names))
        assert [b.upper() for b in group.locator(".badge").all_inner_texts()] == ["KEEP"]
        assert "keeper" in (group.locator(".card").first.get_attribute("class") or "")
    assert seen == {
        frozenset({"red-sunset.jpg", "red-sunset-copy.jpg"}),
        frozenset({"blue-bokeh.jpg", "blue-bokeh-small.jpg"}),
    }
    assert page.evaluate("location.hash") == "#duplicates"
    wait_thumbnails(page, 4, ".dupes-list")
    shot(page, "duplicates")


def test_error_states_say_what_happened(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    wait_state(page, "results")
    page.set_input_files(
        "#file", files=[{"name": "fake.png", "mimeType": "image/png", "buffer": b"no pixels here"}]
    )
    wait_state(page, "error")
    message = page.inner_text("#search-message")
    assert "not an image" in message and "fake.png" in message
    shot(page, "error-not-an-image")
    page.fill("#q", "http://169.254.169.254/latest/meta-data/")
    page.press("#q", "Enter")
    page.wait_for_function(
        "() => document.querySelector('#search-message').textContent.includes('not allowed')"
    )
    assert "private or local address" in page.inner_text("#search-message")
    shot(page, "error-url-refused")


def test_empty_index_says_so(page: Any, browser: Any, tmp_path: Path) -> None:
    empty = build_table(tmp_path / "empty.db", {})
    with LiveServer(create_app(empty)) as live:
        page.goto(live.url + "/")
        wait_state(page, "empty")
        assert "No images indexed yet" in page.inner_text("#search-message")
        page.fill("#q", "red")
        page.press("#q", "Enter")
        page.wait_for_function(
            "() => document.querySelector('#search-message').textContent.includes('No matches')"
        )
        page.click("[data-view=dupes]")
        page.wait_for_function(
            "() => document.querySelector('#dupes-message').textContent.includes('No duplicates')"
        )
    empty.client.close()


def test_token_is_asked_for_and_kept_in_memory(page: Any, table: lookalike.Table) -> None:
    with LiveServer(create_app(table, token=TOKEN)) as live:
        page.goto(live.url + "/")
        dialog = page.locator("#token-dialog")
        dialog.wait_for(state="visible")
        page.fill("#token-input", TOKEN)
        page.click("#token-form button[type=submit]")
        wait_state(page, "results")
        assert len(card_names(page)) == 20
        wait_thumbnails(page)  # <img> requests carry ?token=
        src = page.locator("#grid .card img").first.get_attribute("src") or ""
        assert src.endswith(f"token={TOKEN}")
        stored = page.evaluate(
            "JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie"
        )
        assert TOKEN not in stored
        page.reload()  # memory only: asked again
        dialog.wait_for(state="visible")


def test_readme_screenshot(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    wait_state(page, "results")
    page.fill("#q", "blue")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelector('#query-label').textContent.includes('blue')")
    wait_state(page, "results")
    wait_thumbnails(page, 18)
    page.mouse.move(0, 0)
    (ROOT / "docs").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "docs" / "screenshot.png"))
    shot(page, "readme")
