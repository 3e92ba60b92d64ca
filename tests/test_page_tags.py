"""The page's tag facets, search mode and photo filters in headless Chromium, over a folder index made
as ``lookalike index`` makes one (tags from the toy model, EXIF from the files).

Facets show the stored tags with their counts; a chip narrows the results and the request carries
``tag=``; "Words + pictures" sends ``mode=hybrid``; the date and camera inputs send their filters;
tag names and typed values are shown as text, never as markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import lookalike

pytest.importorskip("fastapi")
pytest.importorskip("playwright.sync_api")

from lookalike.server import create_app
from lookalike.tags import tags_of
from tests.test_page import (  # noqa: F401  (browser, gallery, page, server and table are fixtures)
    CHROMIUM,
    NO_CHROMIUM,
    browser,
    card_names,
    gallery,
    page,
    server,
    shot,
    table,
    wait_state,
    wait_thumbnails,
)
from tests.test_server import LiveServer
from tests.test_server_tags import PHOTOS, VOCABULARY, index_photos, write_photos

if not Path(CHROMIUM).exists():
    pytestmark = pytest.mark.skip(reason=NO_CHROMIUM)

MARKUP_TAG = '<img src=x onerror="window.__xss=1"> red'  # "red": the toy model gives it to the red picture


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lookalike.Table]:
    where = tmp_path_factory.mktemp("page-tags")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOOKALIKE_CACHE_DIR", str(where / "cache"))
        client = lookalike.connect(where / "photos.db")
        write_photos(where / "photos")
        table = index_photos(client, where / "photos", vocabulary=[*VOCABULARY, MARKUP_TAG])
    yield table
    client.close()


@pytest.fixture(scope="module")
def site(photos: lookalike.Table) -> Iterator[LiveServer]:
    with LiveServer(create_app(photos)) as live:
        yield live


def query_of(request: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query, keep_blank_values=True)


def ranked_tags(photos: lookalike.Table) -> list[tuple[str, int]]:
    counts = Counter(t for r in photos.query().to_list() for t in tags_of(r["tags"]))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def chips(pg: Any) -> list[tuple[str, str]]:
    return [
        tuple(pair)
        for pair in pg.evaluate(
            "() => Array.from(document.querySelectorAll('#facets .facet'))"
            ".map(c => [c.firstElementChild.textContent, c.querySelector('.count').textContent])"
        )
    ]


def api_names(site: LiveServer, path: str, **params: Any) -> list[str]:
    r = httpx.get(site.url + path, params={"limit": 48, **params}, timeout=30)
    assert r.status_code == 200, r.text
    return [h["name"] for h in r.json()["results"]]


def test_facets_appear_and_a_chip_narrows_the_results(
    page: Any,  # noqa: F811
    site: LiveServer,
    photos: lookalike.Table,
) -> None:
    page.goto(site.url + "/")
    wait_state(page, "results")
    assert len(card_names(page)) == len(PHOTOS)
    page.wait_for_selector("#facets .facet")
    ranked = ranked_tags(photos)
    assert chips(page) == [(t, str(n)) for t, n in ranked[:20]]
    tag, _ = next((t, n) for t, n in ranked if 1 < n < len(PHOTOS) and t != MARKUP_TAG)
    chip = page.locator(f'#facets .facet[data-tag="{tag}"]')
    assert chip.get_attribute("aria-pressed") == "false"
    with page.expect_request(lambda r: "/api/items?" in r.url) as request:
        chip.click()
    assert query_of(request.value)["tag"] == [tag]
    wait_state(page, "results")
    rows = photos.query(order_by="id").to_list()
    want = [Path(r["path"]).name for r in rows if tag in tags_of(r["tags"])]
    assert card_names(page) == want  # browsing: those pictures, in id order
    assert chip.get_attribute("aria-pressed") == "true"
    assert page.locator("#clear-filters").is_visible()
    wait_thumbnails(page, n=len(want))
    shot(page, "tag-facets")
    # a text search keeps the tag; the order is the API's
    page.fill("#q", "red")
    with page.expect_request(lambda r: "/api/search?" in r.url) as request:
        page.press("#q", "Enter")
    sent = query_of(request.value)
    assert sent["tag"] == [tag] and sent["q"] == ["red"] and "mode" not in sent
    page.wait_for_function("() => document.querySelector('#query-label').textContent.includes('red')")
    wait_state(page, "results")
    assert card_names(page) == api_names(site, "/api/search", q="red", tag=tag)
    # clicking the chip again clears it
    with page.expect_request(lambda r: "/api/search?" in r.url) as request:
        chip.click()
    assert "tag" not in query_of(request.value)
    wait_state(page, "results")
    assert chip.get_attribute("aria-pressed") == "false"
    assert card_names(page) == api_names(site, "/api/search", q="red")
    assert len(card_names(page)) == len(PHOTOS)
    assert page.console_errors == []


def test_words_and_pictures_sends_mode_hybrid(page: Any, site: LiveServer) -> None:  # noqa: F811
    page.goto(site.url + "/")
    wait_state(page, "results")
    assert page.locator("#mode").is_visible()
    page.select_option("#mode", "hybrid")
    page.fill("#q", "apple")
    with page.expect_request(lambda r: "/api/search?" in r.url) as request:
        page.press("#q", "Enter")
    assert query_of(request.value)["mode"] == ["hybrid"]
    page.wait_for_function("() => document.querySelector('#query-label').textContent.includes('apple')")
    wait_state(page, "results")
    assert card_names(page) == api_names(site, "/api/search", q="apple", mode="hybrid")
    assert "fused" in page.inner_text("#score-legend")
    shot(page, "hybrid")
    # back to pictures only: the same words, searched again by their vector alone
    with page.expect_request(lambda r: "/api/search?" in r.url) as request:
        page.select_option("#mode", "vector")
    assert "mode" not in query_of(request.value)
    wait_state(page, "results")
    assert card_names(page) == api_names(site, "/api/search", q="apple")
    assert "cosine similarity" in page.inner_text("#score-legend")
    assert page.console_errors == []


def test_date_and_camera_filters(page: Any, site: LiveServer) -> None:  # noqa: F811
    page.goto(site.url + "/")
    wait_state(page, "results")
    for field in ("#since", "#until", "#camera", "#near", "#radius"):
        assert page.locator(field).is_visible(), field
    page.fill("#since", "2023-06")
    page.fill("#until", "2023-09")
    with page.expect_request(lambda r: "/api/items?" in r.url) as request:
        page.press("#until", "Enter")
    sent = query_of(request.value)
    assert (sent["since"], sent["until"]) == (["2023-06"], ["2023-09"]) and "camera" not in sent
    wait_state(page, "results")
    assert sorted(card_names(page)) == ["corner.jpg", "night.jpg", "paris.jpg", "versailles.jpg"]
    page.fill("#camera", "Pixel 7")
    with page.expect_request(lambda r: "/api/items?" in r.url) as request:
        page.click("#filter-apply")
    assert query_of(request.value)["camera"] == ["Pixel 7"]
    wait_state(page, "results")
    assert sorted(card_names(page)) == ["night.jpg", "paris.jpg", "versailles.jpg"]
    page.fill("#near", "48.8566,2.3522")
    page.fill("#radius", "5km")
    page.click("#filter-apply")
    page.wait_for_function("() => document.querySelectorAll('#grid .card').length === 2")
    assert sorted(card_names(page)) == ["night.jpg", "paris.jpg"]
    shot(page, "photo-filters")
    with page.expect_request(lambda r: "/api/items?" in r.url) as request:
        page.click("#clear-filters")
    assert set(query_of(request.value)) == {"offset", "limit"}
    wait_state(page, "results")
    assert len(card_names(page)) == len(PHOTOS) and page.input_value("#camera") == ""
    assert page.console_errors == []


def test_bad_filters_and_markup_are_shown_as_text(page: Any, site: LiveServer) -> None:  # noqa: F811
    page.goto(site.url + "/")
    wait_state(page, "results")
    page.wait_for_selector("#facets .facet")
    # a tag holding markup is a chip's text, not an element
    assert MARKUP_TAG in [name for name, _ in chips(page)]
    assert page.locator("#facets img").count() == 0
    typed = '<img src=x onerror="window.__xss=1">'
    page.fill("#since", typed)
    page.press("#since", "Enter")
    wait_state(page, "error")
    message = page.inner_text("#search-message")
    assert "That filter cannot be used" in message and f"since: {typed!r} is not a date" in message
    assert page.locator("#search-message img").count() == 0
    page.fill("#since", "")
    page.fill("#radius", "2km")
    page.press("#radius", "Enter")
    page.wait_for_function(
        "() => document.querySelector('#search-message').textContent.includes('radius needs near')"
    )
    assert page.evaluate("() => window.__xss") is None


def test_a_table_without_tags_or_exif_shows_no_filters(page: Any, server: LiveServer) -> None:  # noqa: F811
    page.goto(server.url + "/")
    wait_state(page, "results")
    assert not page.locator("#filters").is_visible()
    assert not page.locator("#facets").is_visible()
    assert page.console_errors == []
