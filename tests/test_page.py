"""The search page in a real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Screenshots go to ``test-artifacts/`` (git-ignored), at a phone's width (390 px) and a laptop's
(1280 px); the README's ``docs/screenshot.png`` comes from ``test_readme_screenshot`` through
``scripts/make_screenshot.py``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("playwright.sync_api")

from playwright import sync_api

import lookalike
from lookalike.server import create_app
from tests.helpers.http_server import LocalHTTPServer
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

NO_CHROMIUM = f"Chromium not found at {CHROMIUM}: the web page was NOT tested (apt-get install chromium)"
if not Path(CHROMIUM).exists():
    if os.environ.get("LOOKALIKE_REQUIRE_CHROMIUM"):  # CI: the page must be tested, not skipped
        raise RuntimeError(NO_CHROMIUM)
    # each page test shows as skipped (not one module-level skip), and conftest repeats it in the summary
    pytestmark = pytest.mark.skip(reason=NO_CHROMIUM)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = make_gallery(tmp_path_factory.mktemp("gallery"))
    # The exact copy sits in another folder, as a backup would: the page must show which is where.
    backup = files["red-sunset-copy"].parent / "backup"
    backup.mkdir()
    files["red-sunset-copy"] = files["red-sunset-copy"].rename(backup / files["red-sunset-copy"].name)
    return files


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


VIEWPORTS = {390: {"width": 390, "height": 844}, 1280: {"width": 1280, "height": 800}}


def open_page(browser: Any, width: int = 1280) -> tuple[Any, Any]:
    context = browser.new_context(viewport=VIEWPORTS[width])
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.console_errors = []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    return context, pg


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context, pg = open_page(browser)
    yield pg
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"page-{name}.png"))


def wait_state(page: Any, state: str) -> None:
    page.wait_for_function(f"() => document.body.dataset.state === {state!r}")


def card_names(page: Any, scope: str = "#grid") -> list[str]:
    return page.locator(f"{scope} .card .name").all_inner_texts()


def folders(page: Any, scope: str = "#grid") -> dict[str, tuple[str, str]]:
    """Each card's file name -> (the folder it shows, the folder's tooltip)."""
    pairs = page.evaluate(
        """scope => Array.from(document.querySelectorAll(scope + ' .card')).map(c => {
                const f = c.querySelector('.folder');
                return [c.querySelector('.name').textContent, [f.hidden ? '' : f.textContent, f.title]];
            })""",
        scope,
    )
    return {name: (text, title) for name, (text, title) in pairs}


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
    # README: _score is "higher is more similar"; the toy table's metric is cosine
    legend = page.locator("#score-legend")
    assert legend.is_visible()
    assert legend.inner_text() == (
        "Score = cosine similarity to the query: higher is more alike, 1.000 is identical."
    )
    img = page.locator("#grid .card img").first
    assert img.get_attribute("loading") == "lazy"
    wait_thumbnails(page)
    shot(page, "text-search")
    assert page.console_errors == []


def test_each_result_shows_its_folder(page: Any, server: LiveServer, gallery: dict[str, Path]) -> None:
    page.goto(server.url + "/")
    wait_state(page, "results")
    assert not page.locator("#score-legend").is_visible()  # browsing: no scores, no legend
    shown = folders(page)
    assert len(shown) == 20
    for path in gallery.values():
        assert shown[path.name] == (str(path.parent), str(path)), path.name
    assert str(gallery["red-sunset-copy"].parent).endswith("/backup")
    # a long folder keeps its last two folders whole and cuts the start short
    card = page.locator("#grid .card", has_text="red-sunset-copy.jpg")
    tail = card.locator(".dir-tail")
    assert tail.inner_text() == f"{gallery['red-sunset'].parent.name}/backup"
    assert tail.evaluate("el => el.scrollWidth <= el.clientWidth")
    head = card.locator(".dir-head")
    assert head.evaluate("el => getComputedStyle(el).textOverflow") == "ellipsis"


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


def test_duplicates_view_marks_the_keeper(page: Any, server: LiveServer, gallery: dict[str, Path]) -> None:
    page.goto(server.url + "/")
    wait_state(page, "results")
    page.fill("#q", "red")
    page.press("#q", "Enter")
    wait_state(page, "results")
    page.click("[data-view=dupes]")
    assert page.locator("#view-dupes").is_visible() and not page.locator("#view-search").is_visible()
    assert not page.locator("#q").is_visible()  # no stale search text over the duplicate groups
    assert "distance to the keeper" in page.inner_text("#dupes-legend")
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
    # which copy is where: the folders tell the backup from the original
    shown = folders(page, ".dupes-list")
    for name in ("red-sunset", "red-sunset-copy", "blue-bokeh", "blue-bokeh-small"):
        assert shown[gallery[name].name] == (str(gallery[name].parent), str(gallery[name])), name
    assert page.evaluate("location.hash") == "#duplicates"
    wait_thumbnails(page, 4, ".dupes-list")
    shot(page, "duplicates")
    page.click("[data-view=search]")
    assert page.locator("#q").is_visible() and page.input_value("#q") == "red"


def test_duplicates_show_how_each_copy_matches(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/#duplicates")
    with page.expect_request(lambda r: "/api/duplicates?" in r.url) as first:
        page.click("#dupes-form button[type=submit]")
    assert "similar=" not in first.value.url  # only identical files and same pictures by default
    page.wait_for_function("() => document.body.dataset.state === 'dupes'")
    with page.expect_request(lambda r: "/api/duplicates?" in r.url) as toggled:
        page.check("#similar")
    assert "similar=true" in toggled.value.url
    page.wait_for_function("() => document.body.dataset.state === 'dupes'")
    # whatever the server says about each group and member is what the page shows
    body = page.evaluate(
        "async () => (await fetch('/api/duplicates?offset=0&limit=20&exact=true&similar=true')).json()"
    )
    groups = page.locator(".group")
    assert groups.count() == len(body["groups"]) > 0
    for i, group in enumerate(body["groups"]):
        node = groups.nth(i)
        kind = node.locator("header .kind")
        assert kind.all_inner_texts() == ([group["kind"]] if group.get("kind") else [])
        notes = node.locator(".card").evaluate_all(
            "cards => cards.map(c => (c.querySelector('.note') || {}).textContent || '')"
        )
        wanted = [
            " · ".join(
                x for x in (m.get("match") if m.get("match") != "keeper" else "", m.get("detail")) if x
            )
            for m in group["members"]
        ]
        assert notes == wanted
    assert page.console_errors == []


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
    assert "lookalike serve --allow-private-urls" in page.inner_text("#search-message")
    shot(page, "error-url-refused")


def test_private_url_is_refused_before_any_request(
    page: Any, server: LiveServer, gallery: dict[str, Path]
) -> None:
    """The server runs without ``allow_private_urls``: the guard refuses private addresses before
    connecting, and the page says how to allow them."""
    with LocalHTTPServer() as host:
        host.add_bytes("/x.jpg", gallery["red-waves"].read_bytes(), "image/jpeg")
        page.goto(server.url + "/")
        wait_state(page, "results")
        for url in (f"http://127.0.0.1:{host.port}/x.jpg", "http://10.11.12.13/x.jpg"):
            page.fill("#q", url)
            page.press("#q", "Enter")
            page.wait_for_function(
                "url => document.body.dataset.state === 'error'"
                " && document.querySelector('#search-message').textContent.includes(url)",
                arg=url,
            )
            message = page.inner_text("#search-message")
            assert "That URL is not allowed" in message
            assert "private or local address" in message
            assert "--allow-private-urls" in message
        assert host.count() == 0  # nothing reached the private address


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


@pytest.mark.parametrize("width", [390, 1280])
def test_layout_fits_the_screen(browser: Any, server: LiveServer, width: int) -> None:
    context, page = open_page(browser, width)
    try:
        page.goto(server.url + "/")
        wait_state(page, "results")
        assert_fits(page, width)
        button = page.locator("#search-form button[type=submit]")
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORTS[width]["height"]
        # nothing covers the button: a click at its centre lands on it
        assert button.evaluate(
            "b => { const r = b.getBoundingClientRect();"
            " return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === b; }"
        )
        page.fill("#q", "green")
        button.click(no_wait_after=True)
        page.wait_for_function("() => document.querySelector('#query-label').textContent.includes('green')")
        wait_state(page, "results")
        assert card_names(page)[0].startswith("green-")
        assert page.locator("#score-legend").is_visible()
        assert_fits(page, width)
        wait_thumbnails(page)
        shot(page, f"search-{width}")

        page.click("[data-view=dupes]")
        page.fill("#threshold", "0.0001")
        page.click("#dupes-form button[type=submit]")
        page.wait_for_function("() => document.querySelectorAll('.group').length === 2")
        assert not page.locator("#q").is_visible()
        assert_fits(page, width)
        for control in page.locator("#dupes-form > *").all():
            b = control.bounding_box()
            assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= width
        wait_thumbnails(page, 4, ".dupes-list")
        shot(page, f"duplicates-{width}")
        assert page.console_errors == []
    finally:
        context.close()


def assert_fits(page: Any, width: int) -> None:
    """No horizontal scroll, and every card's name and folder stay inside the card."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    overflowing = page.evaluate(
        """() => Array.from(document.querySelectorAll('.card')).filter(c => c.offsetParent).flatMap(c => {
            const box = c.getBoundingClientRect();
            return Array.from(c.querySelectorAll('.name, .folder, .score')).filter(el => el.getClientRects().length)
                .filter(el => { const r = el.getBoundingClientRect();
                                return r.left < box.left - 0.5 || r.right > box.right + 0.5; })
                .map(el => c.querySelector('.name').textContent + ' ' + el.className);
        })"""
    )
    assert overflowing == []


def test_readme_screenshot(page: Any, server: LiveServer) -> None:
    """The README's picture: search results for "blue" at 1280 px, every thumbnail loaded.

    Written to test-artifacts/ on every run; ``python scripts/make_screenshot.py`` copies it into docs/
    (a test run never writes into the source tree).
    """
    page.goto(server.url + "/")
    wait_state(page, "results")
    page.fill("#q", "blue")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelector('#query-label').textContent.includes('blue')")
    wait_state(page, "results")
    wait_thumbnails(page, 18)
    page.mouse.move(0, 0)
    shot(page, "readme")
    picture = ARTIFACTS / "page-readme.png"
    assert picture.stat().st_size > 10_000 and picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_api_docs_render_from_the_package_offline(page: Any, server: LiveServer) -> None:
    # Anything not on this server is refused, as it would be offline: the docs must not need it.
    outside: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(server.url + "/docs")
    page.wait_for_selector("section.operation")
    assert page.locator("section.operation").count() >= 10
    assert "/api/search/image" in page.inner_text("#operations")
    assert outside == [] and page.console_errors == []


def test_another_sites_page_cannot_use_the_api(page: Any, server: LiveServer) -> None:
    seen: dict[str, int] = {}
    page.on("response", lambda r: r.url.startswith(server.url) and seen.__setitem__(r.url, r.status))
    with LocalHTTPServer() as other:  # another origin (another port), as any web page would be
        script = (
            "const form = new FormData();"
            "form.append('file', new Blob([new Uint8Array([137, 80, 78, 71])], {type: 'image/png'}), 'x.png');"
            f"fetch('{server.url}/api/search/image', {{method: 'POST', mode: 'no-cors', body: form}});"
            f"fetch('{server.url}/api/search?q=red', {{mode: 'no-cors'}});"
            f"const img = new Image(); img.src = '{server.url}/api/items/1/thumbnail';"
            "document.body.append(img);"
        )
        other.add_bytes("/evil.js", script.encode(), "text/javascript")
        other.add_bytes("/", b"<!doctype html><body><script src='/evil.js'></script></body>", "text/html")
        page.goto(other.url("/"))
        page.wait_for_function("() => true")
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        # The thumbnail's refusal is JSON, which the browser blocks before showing a response: the
        # picture simply does not load (it does when the server serves it).
        page.wait_for_function("() => document.querySelector('img').complete")
        assert page.evaluate("() => document.querySelector('img').naturalWidth") == 0
    assert sorted(seen.values()) == [403, 403], seen
