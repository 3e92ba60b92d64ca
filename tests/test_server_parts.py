"""The web server's parts, each alone: the error handlers on a bare app, the :class:`Backend` on a small
real table (SQLite file, toy embedder), the router without ``create_app``, and ``create_app``'s wiring.

The whole server over HTTP is tested in test_server.py; these tests pin what each part owns.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

import lookalike
import lookalike.errors as errors
from lookalike import Field, TableModel
from lookalike.images import HttpFetcher
from lookalike.server import create_app, routes
from lookalike.server.backend import Backend
from lookalike.server.errors_http import ERROR_STATUS, ApiError, install_error_handlers, status_of
from tests.helpers.http_server import LocalHTTPServer
from tests.test_server import build_table, make_gallery
from tests.toy_embedder import ToyEmbedder

# ---------------------------------------------------------------------- error handlers, on a bare app

LIBRARY_ERRORS: list[tuple[errors.LookalikeError, int, str]] = [
    (errors.TableNotFoundError("no table 'photos'"), 404, "table_not_found"),
    (errors.SchemaError("unknown column 'colour'"), 400, "bad_request"),
    (errors.ColumnChoiceError("table 'pics' has more than one vector column"), 400, "bad_request"),
    (errors.AuthenticationError("key rejected", status_code=401), 502, "provider_auth_failed"),
    (errors.ProviderError("rate limited", status_code=429), 502, "provider_failed"),
    (errors.ModelNotFoundError("no model 'x'"), 500, "model_not_found"),
    (errors.EmbeddingError("the model failed"), 500, "embedding_failed"),
    (errors.ImageInputError("not a recognised image format", item="a.jpg"), 400, "bad_image"),
    (errors.VectorError("expected 16 dimensions, got 3"), 400, "bad_vector"),
    (errors.FilterError("unknown operator '$near'"), 400, "bad_filter"),
    (errors.ConfigurationError("limit must be positive"), 400, "bad_request"),
    (errors.MissingDependencyError("the web server", extra="server"), 400, "bad_request"),
    (errors.ConnectionFailedError("server down"), 503, "database_unavailable"),
    (errors.EngineError("disk I/O error"), 500, "database_error"),
    # No entry of its own: the generic answer.
    (errors.BulkInsertError(errors.VectorError("NaN in vector"), index=3, item="b.jpg"), 500, "error"),
    (errors.LookalikeError("something else"), 500, "error"),
]


def bare_app(raise_: Any) -> TestClient:
    """A FastAPI app with only the error handlers and two routes: one raises ``raise_``, one validates."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise raise_

    @app.get("/count")
    def count(n: int = Query(..., ge=1)) -> dict[str, int]:
        return {"n": n}

    return TestClient(app, raise_server_exceptions=False)


def test_every_library_error_type_is_covered() -> None:
    classes = {
        getattr(errors, name)
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), errors.LookalikeError)
    }
    assert classes == {type(exc) for exc, _, _ in LIBRARY_ERRORS}


@pytest.mark.parametrize(("exc", "status", "code"), LIBRARY_ERRORS, ids=lambda v: type(v).__name__)
def test_a_library_error_becomes_its_status_and_code(
    exc: errors.LookalikeError, status: int, code: str
) -> None:
    assert status_of(exc) == (status, code)
    r = bare_app(exc).get("/boom")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": {"code": code, "message": str(exc), "status": status}}


def test_a_library_error_message_carries_its_structured_context() -> None:
    exc = errors.VectorError("expected 16 dimensions, got 3", item="photo.jpg", index=2, column="vec")
    exc.add_remark("(checked before writing)")
    body = bare_app(exc).get("/boom").json()
    assert body["error"]["message"] == (
        "item 2 (photo.jpg), column 'vec': expected 16 dimensions, got 3 (checked before writing)"
    )


def test_the_status_table_lists_subclasses_before_their_bases() -> None:
    classes = [cls for cls, _, _ in ERROR_STATUS]
    for i, cls in enumerate(classes):
        assert not any(issubclass(cls, earlier) for earlier in classes[:i]), cls


def test_an_api_error_keeps_its_status_and_code() -> None:
    r = bare_app(ApiError(503, "busy", "try again shortly")).get("/boom")
    assert r.status_code == 503
    assert r.json() == {"error": {"code": "busy", "message": "try again shortly", "status": 503}}


def test_validation_errors_name_the_parameter() -> None:
    client = bare_app(RuntimeError())
    r = client.get("/count", params={"n": 0})
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "bad_request",
        "message": "n: Input should be greater than or equal to 1",
        "status": 400,
    }
    missing = client.get("/count").json()["error"]
    assert missing["code"] == "bad_request" and missing["message"] == "n: Field required"


def test_unknown_paths_and_methods_answer_in_the_same_shape() -> None:
    client = bare_app(RuntimeError())
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json()["error"] == {
        "code": "not_found",
        "message": "Not Found",
        "status": 404,
    }
    r = client.post("/count")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["allow"] == "GET"  # the handler keeps the exception's headers


def test_an_unexpected_error_tells_only_its_type() -> None:
    r = bare_app(KeyError("/home/alice/secret.db")).get("/boom")
    assert r.status_code == 500
    assert r.json() == {
        "error": {"code": "internal_error", "message": "internal error (KeyError)", "status": 500}
    }
    assert "secret" not in r.text


# ---------------------------------------------------------------------- the backend, on a real table


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_gallery(tmp_path_factory.mktemp("gallery"))


@pytest.fixture(scope="module")
def table(gallery: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[lookalike.Table]:
    t = build_table(tmp_path_factory.mktemp("db") / "parts.db", gallery)
    yield t
    t.client.close()


@pytest.fixture(scope="module")
def ids(table: lookalike.Table) -> dict[str, int]:
    return {Path(r["path"]).stem: r["id"] for r in table.query().to_list()}


@pytest.fixture
def backend(table: lookalike.Table) -> Iterator[Backend]:
    """A fresh backend (empty caches) whose client URLs may be local: no guard in the way of tests."""
    b = Backend(table, max_upload_bytes=256 * 1024, fetcher=HttpFetcher(allow_private=True, retries=0))
    yield b
    b.fetcher.close()
    b.item_fetcher.close()


def stems(page: dict[str, Any]) -> list[str]:
    return [Path(h["name"]).stem for h in page["results"]]


def api_error(call: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call(*args)
    return info.value


def test_backend_describes_the_table(backend: Backend, gallery: dict[str, Path]) -> None:
    stats = backend.stats()
    assert stats["rows"] == len(gallery) == 20
    assert (stats["table"], stats["primary_key"], stats["columns"]) == ("images", "id", ["id", "path"])
    assert (stats["vector_column"], stats["dimensions"], stats["metric"]) == ("vec", 16, "cosine")
    assert (stats["model"], stats["multimodal"], stats["engine"]) == ("toy", True, "sqlite")
    assert stats["image_column"] == "path" and stats["duplicates_available"] is True
    assert stats["token_required"] is False and stats["version"] == lookalike.__version__


@pytest.mark.parametrize(
    "options",
    [
        {"max_upload_bytes": 0},
        {"max_upload_bytes": 1, "max_decodes": 0},
        {"max_upload_bytes": 1, "max_query_pixels": -1},
    ],
)
def test_backend_refuses_limits_that_are_not_positive(
    table: lookalike.Table, options: dict[str, int]
) -> None:
    with pytest.raises(errors.ConfigurationError, match="must be positive"):
        Backend(table, **options)


def test_ids_are_parsed_in_the_key_type(backend: Backend, ids: dict[str, int]) -> None:
    assert backend.parse_id(str(ids["red-waves"])) == ids["red-waves"]
    for raw in ("1_0", " 7", "abc", "٣"):  # "٣" is an Arabic-Indic digit: int() takes it, ids don't
        err = api_error(backend.parse_id, raw)
        assert (err.status, err.code) == (400, "bad_id")
    err = api_error(backend.parse_id, "9" * 30)  # beyond int64: no row can hold it
    assert (err.status, err.code) == (404, "not_found")
    err = api_error(backend.row, 10**6)
    assert (err.status, err.code) == (404, "not_found") and "'images'" in err.message


def test_items_are_paged_in_id_order(backend: Backend) -> None:
    first = backend.items_page(0, 5)
    assert first["total"] == 20 and first["has_more"] is True
    listed = [h["id"] for h in first["results"]]
    assert listed == sorted(listed) and len(listed) == 5
    assert first["results"][0]["thumbnail_url"] == f"/api/items/{listed[0]}/thumbnail"
    last = backend.items_page(18, 5)
    assert len(last["results"]) == 2 and last["has_more"] is False


def test_text_search_embeds_a_query_once_across_pages(backend: Backend) -> None:
    toy = backend.vec.embed_fn
    assert isinstance(toy, ToyEmbedder)
    before = toy.calls["texts"]
    page = backend.text_page("  red ", 0, 3)
    assert page["query"] == {"kind": "text", "q": "red"} and page["has_more"] is True
    assert all(s.startswith("red") for s in stems(page))
    second = backend.text_page("red", 3, 3)
    assert not set(stems(second)) & set(stems(page))
    assert toy.calls["texts"] == before + 1
    err = api_error(backend.text_page, "   ", 0, 3)
    assert (err.status, err.code) == (400, "bad_request")


def test_similar_leaves_the_item_out_and_finds_its_copy(backend: Backend, ids: dict[str, int]) -> None:
    page = backend.similar_page(ids["red-sunset"], 0, 3)
    assert page["query"]["kind"] == "item" and page["query"]["id"] == ids["red-sunset"]
    assert "red-sunset" not in stems(page)
    assert stems(page)[0] == "red-sunset-copy" and page["results"][0]["distance"] == pytest.approx(
        0, abs=1e-6
    )


def test_an_upload_finds_its_own_file(backend: Backend, gallery: dict[str, Path]) -> None:
    data = gallery["blue-waves"].read_bytes()
    page = backend.upload_page(data, "/tmp/../q.jpg", 0, 2)
    assert page["query"]["name"] == "q.jpg" and len(page["query"]["sha256"]) == 64
    assert stems(page)[0] == "blue-waves" and page["results"][0]["distance"] == pytest.approx(0, abs=1e-6)


def test_query_images_are_checked_before_decoding(backend: Backend) -> None:
    err = api_error(backend.upload_page, b"x" * (backend.max_upload_bytes + 1), "big.jpg", 0, 1)
    assert (err.status, err.code) == (413, "too_large")
    err = api_error(backend.upload_page, b"%PDF-1.7\n" + b"x" * 50, "doc.pdf", 0, 1)
    assert (err.status, err.code) == (415, "not_an_image") and "PDF" in err.message
    err = api_error(backend.decode_query_image, b"", "upload 'e.jpg'")
    assert (err.status, err.code) == (400, "empty_image")
    out = io.BytesIO()
    Image.new("RGB", (200, 100)).save(out, "PNG")
    backend.max_query_pixels = 10_000
    err = api_error(backend.decode_query_image, out.getvalue(), "upload 'wide.png'")
    assert (err.status, err.code) == (413, "too_many_pixels") and "200×100" in err.message


def test_urls_are_fetched_and_failures_say_which_kind(backend: Backend, gallery: dict[str, Path]) -> None:
    with LocalHTTPServer() as host:
        host.add_bytes("/purple.jpg", gallery["purple-sunset"].read_bytes(), "image/jpeg")
        host.add_status("/gone.jpg", 404)
        page = backend.url_page(f" {host.url('/purple.jpg')} ", 0, 1)
        assert page["query"] == {"kind": "url", "url": host.url("/purple.jpg")}
        assert stems(page) == ["purple-sunset"]
        err = api_error(backend.url_page, host.url("/gone.jpg"), 0, 1)
        assert (err.status, err.code) == (400, "fetch_failed") and "404" in err.message
    err = api_error(backend.url_page, "ftp://example.com/x.jpg", 0, 1)
    assert (err.status, err.code) == (400, "bad_url")


def test_a_refused_address_says_how_to_allow_it(table: lookalike.Table) -> None:
    guarded = Backend(table, max_upload_bytes=1024)  # the default fetcher: private addresses refused
    try:
        err = api_error(guarded.url_page, "http://10.1.2.3/x.jpg", 0, 1)  # a literal: no DNS, no connection
    finally:
        guarded.fetcher.close()
        guarded.item_fetcher.close()
    assert (err.status, err.code) == (400, "url_refused")
    assert "private or local address" in err.message and "lookalike serve --allow-private-urls" in err.message


def test_item_images_and_thumbnails(backend: Backend, gallery: dict[str, Path], ids: dict[str, int]) -> None:
    item = ids["green-bokeh"]
    assert backend.image_file(item) == gallery["green-bokeh"].read_bytes()
    thumb = backend.thumbnail(item, 128)
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.format == "JPEG" and max(im.size) == 128
    assert backend.thumbnail(item, 128) is thumb  # the second one comes from the cache
    stats = backend.thumbnails.stats()
    assert (stats["entries"], stats["hits"], stats["misses"], stats["bytes"]) == (1, 1, 1, len(thumb))


def test_items_without_an_image_are_404(tmp_path: Path) -> None:
    toy = ToyEmbedder()

    class Note(TableModel):
        __tablename__ = "notes"
        id: int = Field(primary_key=True)
        text: str = Field()
        vec: list[float] = toy.VectorField()  # vectors given, no column they come from

    client = lookalike.connect(tmp_path / "notes.db")
    try:
        notes = client.create_table(schema=Note)
        notes.insert({"id": 1, "text": "red", "vec": np.ones(16, dtype=np.float32)})
        backend = Backend(notes, max_upload_bytes=1024)
        assert backend.image_column is None and backend.pk_is_int
        err = api_error(backend.image_file, 1)
        assert (err.status, err.code) == (404, "no_image")
        assert backend.hit(backend.row(1))["name"] == "#1"
    finally:
        client.close()


def test_duplicate_groups_put_the_keeper_first(backend: Backend, ids: dict[str, int]) -> None:
    page = backend.duplicates_page(None, True, False, 0, 10)
    assert page["total_groups"] >= 1 and not page["has_more"]
    group = next(g for g in page["groups"] if ids["red-sunset"] in [m["id"] for m in g["members"]])
    members = {Path(m["name"]).stem for m in group["members"]}
    assert {"red-sunset", "red-sunset-copy"} <= members
    assert group["members"][0]["keeper"] is True and group["keeper"] == group["members"][0]["id"]
    assert sum(m["keeper"] for m in group["members"]) == 1
    assert group["size"] == len(group["members"])
    assert backend.duplicate_groups(None, True) is backend.duplicate_groups(None, True)  # one scan reused
    json.dumps(page)  # plain JSON all the way down


# ---------------------------------------------------------------------- the router, without create_app


def test_route_functions_take_the_backend_as_an_argument(backend: Backend, ids: dict[str, int]) -> None:
    page = routes.list_items(backend, offset=0, limit=2)
    assert len(page["results"]) == 2
    hit = routes.get_item(backend, item_id=str(ids["orange-waves"]))
    assert Path(hit["name"]).stem == "orange-waves"
    response = routes.get_image(backend, item_id=str(ids["orange-waves"]))
    assert response.media_type == "image/jpeg"


def test_the_router_serves_from_the_backend_on_app_state(backend: Backend) -> None:
    app = FastAPI()
    app.state.backend = backend
    install_error_handlers(app)
    app.include_router(routes.router)
    client = TestClient(app)
    assert client.get("/api/stats").json()["rows"] == 20
    r = client.get("/api/items/abc")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_id"


def test_item_ids_are_documented_by_key_type() -> None:
    schema = {
        "paths": {"/a/{item_id}": {"get": {"parameters": [{"in": "path", "name": "item_id", "schema": {}}]}}}
    }
    assert routes.document_item_ids(json.loads(json.dumps(schema)), integer=False) == schema
    patterned = routes.document_item_ids(schema, integer=True)
    assert patterned["paths"]["/a/{item_id}"]["get"]["parameters"][0]["schema"] == {
        "pattern": routes.ITEM_ID_PATTERN
    }


# ---------------------------------------------------------------------- create_app's wiring


def test_create_app_wires_backend_guards_and_headers(table: lookalike.Table) -> None:
    app = create_app(table, token="t0k")
    assert isinstance(app.state.backend, Backend) and app.state.backend.table is table
    client = TestClient(app)
    r = client.get("/api/stats")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = client.get("/api/stats", headers={"Authorization": "Bearer t0k"})
    assert r.status_code == 200 and r.json()["rows"] == 20 and r.json()["token_required"] is True
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    schema = client.get("/openapi.json", params={"token": "t0k"}).json()
    item_id = schema["paths"]["/api/items/{item_id}"]["get"]["parameters"][0]
    assert item_id["name"] == "item_id" and item_id["schema"]["pattern"] == routes.ITEM_ID_PATTERN
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    r = client.get("/api/items/..%2f..%2fetc", headers={"Authorization": "Bearer t0k"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_path"


def test_create_app_opens_a_clients_table_and_checks_its_options(tmp_path: Path) -> None:
    toy = ToyEmbedder()

    class Tagged(TableModel):
        __tablename__ = "tagged"
        key: str = Field(primary_key=True)
        vec: list[float] = toy.VectorField()

    client = lookalike.connect(tmp_path / "tagged.db")
    try:
        client.create_table(schema=Tagged).insert({"key": "a", "vec": np.ones(16, dtype=np.float32)})
        with pytest.raises(errors.TableNotFoundError):
            create_app(client)  # the default table, "images", is not there
        with pytest.raises(errors.ConfigurationError, match="max_upload_bytes"):
            create_app(client, table="tagged", max_upload_bytes=0)
        web = TestClient(create_app(client, table="tagged"))
        assert web.get("/api/items/a").json()["id"] == "a"
        schema = web.get("/openapi.json").json()
        item_id = schema["paths"]["/api/items/{item_id}"]["get"]["parameters"][0]
        assert "pattern" not in item_id["schema"]  # text keys: any id may be sent
    finally:
        client.close()
