"""The page's multi-example search in headless Chromium: select results, then "more like these" or
"less like this"; the request carries every selected item and the results change."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import lookalike

pytest.importorskip("fastapi")
pytest.importorskip("playwright.sync_api")

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

if not Path(CHROMIUM).exists():
    pytestmark = pytest.mark.skip(reason=NO_CHROMIUM)


def form_values(post_data: str, field: str) -> list[str]:
    """The values of a multipart field, in order."""
    return re.findall(rf'name="{field}"\r\n\r\n([^\r]*)\r\n', post_data)


def card_ids(pg: Any) -> dict[str, str]:
    return pg.evaluate(
        "() => Object.fromEntries(Array.from(document.querySelectorAll('#grid .card'))"
        ".map(c => [c.querySelector('.name').textContent, c.dataset.id]))"
    )


def pick(pg: Any, name: str) -> None:
    pg.locator("#grid .card", has_text=name).locator(".pick input").check()


def test_select_two_and_ask_for_more_like_these(page: Any, server: LiveServer) -> None:  # noqa: F811
    page.goto(server.url + "/")
    wait_state(page, "results")
    before = card_names(page)
    ids = card_ids(page)
    assert not page.locator("#select-bar").is_visible()
    pick(page, "red-waves.jpg")
    pick(page, "yellow-bokeh.jpg")
    assert page.inner_text("#select-count") == "2 selected"
    # picking is not opening: the grid is still the same browse page
    assert card_names(page) == before
    # browsing is no query to push away from
    assert page.locator("#less-like-these").is_disabled()
    with page.expect_request(lambda r: "/api/search/examples" in r.url) as request:
        page.click("#more-like-these")
    sent = request.value
    assert sent.method == "POST"
    assert sorted(form_values(sent.post_data, "positive_id")) == sorted(
        [ids["red-waves.jpg"], ids["yellow-bokeh.jpg"]]
    )
    assert form_values(sent.post_data, "negative_id") == []
    page.wait_for_function("() => document.querySelector('#query-label').textContent.startsWith('Like ')")
    wait_state(page, "results")
    label = page.inner_text("#query-label")
    assert "red-waves.jpg" in label and "yellow-bokeh.jpg" in label
    after = card_names(page)
    assert after != before
    # the picks themselves are left out; what comes first sits between red and yellow: orange
    assert "red-waves.jpg" not in after and "yellow-bokeh.jpg" not in after
    assert after[0].startswith("orange-")
    assert not page.locator("#select-bar").is_visible()  # the selection was used up
    wait_thumbnails(page)
    shot(page, "more-like-these")
    assert page.console_errors == []


def test_less_like_this_keeps_the_query_and_pushes_away(
    page: Any,  # noqa: F811
    server: LiveServer,  # noqa: F811
    table: lookalike.Table,  # noqa: F811
) -> None:
    page.goto(server.url + "/")
    wait_state(page, "results")
    page.fill("#q", "red")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelector('#query-label').textContent.includes('red')")
    wait_state(page, "results")
    first = card_names(page)
    ids = card_ids(page)
    pick(page, "purple-waves.jpg")
    assert page.inner_text("#less-like-these") == "Less like this"
    with page.expect_request(lambda r: "/api/search/examples" in r.url) as request:
        page.click("#less-like-these")
    sent = request.value.post_data
    assert form_values(sent, "positive_text") == ["red"]
    assert form_values(sent, "negative_id") == [ids["purple-waves.jpg"]]
    page.wait_for_function("() => document.querySelector('#query-label').textContent.includes('not like')")
    wait_state(page, "results")
    after = card_names(page)
    assert after != first and "purple-waves.jpg" not in after
    assert after[0].startswith("red-")  # still a search for red
    # the order is the library's for "red" minus that picture (the picture itself left out)
    purple_id = int(ids["purple-waves.jpg"])
    vector = table.query({"id": purple_id}, columns=["vec"]).to_list()[0]["vec"]
    hits = table.search(positive=["red"], negative=[vector]).limit(40).to_list()
    assert after == [Path(h["path"]).name for h in hits if h["id"] != purple_id]
    assert page.console_errors == []


def test_too_many_examples_say_so(page: Any, server: LiveServer) -> None:  # noqa: F811
    page.goto(server.url + "/")
    wait_state(page, "results")
    for name in card_names(page)[:17]:
        pick(page, name)
    assert page.inner_text("#select-count") == "17 selected"
    page.click("#more-like-these")
    wait_state(page, "error")
    message = page.inner_text("#search-message")
    assert "Too many examples" in message and "at most 16" in message
