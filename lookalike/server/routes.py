"""The API's routes: an :class:`~fastapi.APIRouter` of plain functions over the app's :class:`Backend`.

Each route parses its parameters, makes one :class:`Backend` call and shapes the HTTP answer. The
backend comes from ``app.state.backend`` through :func:`get_backend`, so the routes are module-level
functions that can be mounted on any app (or called directly with a backend). Routes are plain ``def``
functions, so FastAPI runs them in its thread pool and the event loop stays free while a model embeds
or a thumbnail decodes.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, Response

from lookalike.server.backend import MAX_TAGS, Backend, ExampleInputs, media_type_of
from lookalike.server.errors_http import ApiError
from lookalike.server.models import (
    ERROR_RESPONSES,
    EXAMPLES_RESPONSES,
    SEARCH_RESPONSES,
    DuplicatesPage,
    Hit,
    ItemsPage,
    SearchPage,
    Stats,
    TagFacets,
)
from lookalike.server.photos import SEARCH_MODES, PhotoFilters
from lookalike.server.thumbnails import THUMBNAIL_SIZES

__all__ = [
    "ITEM_ID_PATTERN",
    "MAX_OFFSET",
    "MAX_PAGE_SIZE",
    "PAGE_HEADERS",
    "STATIC_DIR",
    "document_item_ids",
    "get_backend",
    "photo_filters",
    "router",
]

MAX_PAGE_SIZE = 200
MAX_OFFSET = 10_000
STATIC_DIR = Path(__file__).parent / "static"
ITEM_ID_PATTERN = r"^-?[0-9]+$"
"""What an integer item id looks like; :func:`document_item_ids` puts it in the schema."""

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
}


async def get_backend(request: Request) -> Backend:
    """The app's :class:`Backend` (``app.state.backend``), for ``Depends``."""
    backend: Backend = request.app.state.backend
    return backend


BackendDep = Annotated[Backend, Depends(get_backend)]

router = APIRouter()

Offset = Query(0, ge=0, le=MAX_OFFSET, description="results to skip")
Limit = Query(24, ge=1, le=MAX_PAGE_SIZE, description="results per page")
# Documented, not validated by FastAPI: parse_id gives the clearer "bad_id" error. The pattern (for
# integer keys) is added by document_item_ids, as only the app knows the table's key type.
ItemId = PathParam(description="the item's id (its primary key)")


def photo_filters(
    tag: list[str] = Query(
        [], description="only pictures tagged with this word or phrase (repeat: all of them)"
    ),
    since: str | None = Query(
        None, max_length=40, description="taken on or after: YYYY, YYYY-MM or YYYY-MM-DD"
    ),
    until: str | None = Query(None, max_length=40, description="taken on or before (the whole period named)"),
    near: str | None = Query(None, max_length=80, description="taken near LAT,LON, e.g. 48.85,2.35"),
    radius: str | None = Query(
        None, max_length=40, description="how near for near: 5km, 500m, 3mi (default 1km)"
    ),
    camera: str | None = Query(None, max_length=200, description='camera make or model, e.g. "Pixel 7"'),
) -> PhotoFilters:
    """The photo filters of a request (:func:`lookalike.metadata.photo_filter`), for ``Depends``.

    They read a folder index's columns; a bad value or a column the table lacks is a 422
    ``bad_photo_filter``. The values are checked by the backend, not here: the library's messages say
    what a date or a distance looks like.
    """
    return PhotoFilters(tuple(tag), since, until, near, radius, camera)


Filters = Annotated[PhotoFilters, Depends(photo_filters)]
NO_FILTERS = PhotoFilters()  # what a route called directly (not through FastAPI) filters by: nothing


def document_item_ids(schema: dict[str, Any], *, integer: bool) -> dict[str, Any]:
    """Add :data:`ITEM_ID_PATTERN` to every ``item_id`` path parameter of an OpenAPI ``schema`` when
    the keys are integers.

    The schema must say what the routes accept, or clients (and schema-driven fuzzers) send ids they
    cannot take.
    """
    if integer:
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "path" and parameter.get("name") == "item_id":
                        parameter["schema"]["pattern"] = ITEM_ID_PATTERN
    return schema


# ---------------------------------------------------------------------- the index and its items


@router.get("/api/stats", response_model=Stats, tags=["index"], responses=ERROR_RESPONSES)
def stats(backend: BackendDep) -> dict[str, Any]:
    """How many items the table holds, its columns, model and metric."""
    return backend.stats()


@router.get("/api/items", response_model=ItemsPage, tags=["items"], responses=SEARCH_RESPONSES)
def list_items(
    backend: BackendDep, filters: Filters = NO_FILTERS, offset: int = Offset, limit: int = Limit
) -> dict[str, Any]:
    """Browse the indexed items in id order (with photo filters, those they keep)."""
    return backend.items_page(offset, limit, filters=filters)


@router.get("/api/tags", response_model=TagFacets, tags=["index"], responses=ERROR_RESPONSES)
def tag_facets(
    backend: BackendDep,
    limit: int = Query(50, ge=1, le=MAX_TAGS, description="how many tags, most frequent first"),
) -> dict[str, Any]:
    """Tag facets: the most frequent tags and how many pictures carry each (an empty list when the
    table has no tags). Tags come from the model itself, so their quality is the model's."""
    return backend.tags_page(limit)


@router.get("/api/items/{item_id}", response_model=Hit, tags=["items"], responses=ERROR_RESPONSES)
def get_item(backend: BackendDep, item_id: str = ItemId) -> dict[str, Any]:
    """One item's metadata (its columns, vectors left out)."""
    return backend.hit(backend.row(backend.parse_id(item_id)))


@router.get(
    "/api/items/{item_id}/image",
    tags=["items"],
    response_class=Response,
    responses={**ERROR_RESPONSES, 200: {"description": "the image file", "content": {"image/*": {}}}},
)
def get_image(backend: BackendDep, item_id: str = ItemId) -> Response:
    """The original image of an indexed item (only ever by id, never by a path)."""
    data = backend.image_file(backend.parse_id(item_id))
    media_type = media_type_of(data)
    if media_type is None:
        raise ApiError(415, "not_an_image", f"the file of item {item_id!r} is not an image any more")
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get(
    "/api/items/{item_id}/thumbnail",
    tags=["items"],
    response_class=Response,
    responses={**ERROR_RESPONSES, 200: {"description": "a JPEG thumbnail", "content": {"image/jpeg": {}}}},
)
def get_thumbnail(
    backend: BackendDep,
    item_id: str = ItemId,
    size: int = Query(
        256,
        description=f"longest side in pixels, one of {list(THUMBNAIL_SIZES)}",
        json_schema_extra={"enum": list(THUMBNAIL_SIZES)},  # documented; the route says "bad_size"
    ),
) -> Response:
    """A JPEG thumbnail of an indexed item (made once, then served from a bounded cache)."""
    if size not in THUMBNAIL_SIZES:
        raise ApiError(400, "bad_size", f"size must be one of {list(THUMBNAIL_SIZES)}, got {size}")
    data = backend.thumbnail(backend.parse_id(item_id), size)
    etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400", "ETag": etag}
    )


# ---------------------------------------------------------------------- searching


@router.get(
    "/api/items/{item_id}/similar", response_model=SearchPage, tags=["search"], responses=SEARCH_RESPONSES
)
def similar(
    backend: BackendDep,
    filters: Filters = NO_FILTERS,
    item_id: str = ItemId,
    offset: int = Offset,
    limit: int = Limit,
) -> dict[str, Any]:
    """More like this: the items nearest to an indexed item (the item itself left out)."""
    return backend.similar_page(backend.parse_id(item_id), offset, limit, filters=filters)


@router.get("/api/search", response_model=SearchPage, tags=["search"], responses=SEARCH_RESPONSES)
def search_text(
    backend: BackendDep,
    filters: Filters = NO_FILTERS,
    q: str = Query(
        ...,
        min_length=1,
        max_length=1000,
        description="what to look for, in words",
        json_schema_extra={"pattern": r"\S"},  # documented: not only spaces (the route says why)
    ),
    mode: str = Query(
        "vector",
        description="vector: by the words' meaning; hybrid: that and full-text search over the table's "
        "full-text column (a folder index's tags), fused; fulltext: full-text search alone",
        json_schema_extra={"enum": list(SEARCH_MODES)},  # documented; the route says "bad_mode"
    ),
    offset: int = Offset,
    limit: int = Limit,
) -> dict[str, Any]:
    """Search by text ("a red bicycle"); ``mode=hybrid`` also matches the words in the tags."""
    return backend.text_page(q, offset, limit, mode=mode, filters=filters)


@router.post("/api/search/image", response_model=SearchPage, tags=["search"], responses=SEARCH_RESPONSES)
def search_image(
    backend: BackendDep,
    filters: Filters = NO_FILTERS,
    file: UploadFile = File(..., description="the picture to search with"),
    offset: int = Offset,
    limit: int = Limit,
) -> dict[str, Any]:
    """Search with an uploaded image (multipart field ``file``)."""
    # One byte over the limit is enough to know it is too large; the rest is never read.
    data = file.file.read(backend.max_upload_bytes + 1)
    return backend.upload_page(data, file.filename, offset, limit, filters=filters)


@router.post("/api/search/examples", response_model=SearchPage, tags=["search"], responses=EXAMPLES_RESPONSES)
def search_examples(
    backend: BackendDep,
    filters: Filters = NO_FILTERS,
    positive_id: list[str] = Form([], description="ids of items to look like (their stored vectors)"),
    negative_id: list[str] = Form([], description="ids of items to look unlike"),
    positive_text: list[str] = Form([], description="words to look like"),
    negative_text: list[str] = Form([], description="words to look unlike"),
    positive_image: list[UploadFile] = File([], description="pictures to look like"),
    negative_image: list[UploadFile] = File([], description="pictures to look unlike"),
    include_examples: bool = Query(False, description="keep the items given as examples in the results"),
    offset: int = Offset,
    limit: int = Limit,
) -> dict[str, Any]:
    """Search with several examples at once: "more like these, less like those" (multipart form).

    Each field may repeat; at least one positive example is needed, and at most 16 in all
    (422 ``too_many_examples``). Uploads share the request's size limit. Items given as examples are
    left out of the results unless ``include_examples``.
    """
    count = len(positive_id) + len(negative_id) + len(positive_text) + len(negative_text)
    count += len(positive_image) + len(negative_image)
    backend.check_example_count(count)  # before a byte of any upload is read

    def side(ids: list[str], texts: list[str], files: list[UploadFile]) -> ExampleInputs:
        # one byte over the limit is enough to know an upload is too large; the rest is never read
        images = [(f.file.read(backend.max_upload_bytes + 1), f.filename) for f in files]
        return ExampleInputs(ids=ids, texts=texts, images=images)

    positive = side(positive_id, positive_text, positive_image)
    negative = side(negative_id, negative_text, negative_image)
    return backend.examples_page(positive, negative, offset, limit, include_examples, filters=filters)


@router.get("/api/search/url", response_model=SearchPage, tags=["search"], responses=SEARCH_RESPONSES)
def search_url(
    backend: BackendDep,
    filters: Filters = NO_FILTERS,
    url: str = Query(
        ...,
        min_length=1,
        max_length=4096,
        description="an http(s) URL of a picture",
        json_schema_extra={"pattern": r"^\s*[Hh][Tt][Tt][Pp][Ss]?://"},  # the route says "bad_url"
    ),
    offset: int = Offset,
    limit: int = Limit,
) -> dict[str, Any]:
    """Search with the picture at a URL. Private, loopback, link-local and metadata addresses are
    refused (the resolved address, and again after every redirect) unless the server allows them."""
    return backend.url_page(url, offset, limit, filters=filters)


@router.get("/api/duplicates", response_model=DuplicatesPage, tags=["duplicates"], responses=ERROR_RESPONSES)
def duplicates(
    backend: BackendDep,
    threshold: float | None = Query(
        None, ge=0, le=2, description="largest cosine distance inside a group (default: the library's)"
    ),
    exact: bool = Query(True, description="also group byte-identical files"),
    similar: bool = Query(False, description="also show similar shots (same scene, another shot)"),
    offset: int = Query(0, ge=0, description="groups to skip"),
    limit: int = Query(20, ge=1, le=MAX_PAGE_SIZE, description="groups per page"),
) -> dict[str, Any]:
    """Groups of copies of one picture, each with the one to keep marked and every member's match
    to it (identical file, same picture, or with ``similar`` also similar shots) and what changed."""
    return backend.duplicates_page(threshold, exact, similar, offset, limit)


# ---------------------------------------------------------------------- docs and the page


@router.get("/docs", include_in_schema=False)
def docs(request: Request, backend: BackendDep) -> HTMLResponse:
    """The API reference page."""
    # The reference is rendered by our own static/docs.js (no CDN: works offline, strict CSP).
    # TokenGuard has checked the token already; pass it on so the page can load the schema.
    given = request.query_params.get("token")
    suffix = f"?token={quote(given, safe='')}" if given and backend.token else ""
    page = (STATIC_DIR / "docs.html").read_text(encoding="utf-8")
    page = page.replace("{{openapi_url}}", html.escape(f"/openapi.json{suffix}", quote=True))
    return HTMLResponse(page, headers={**PAGE_HEADERS, "Cache-Control": "no-store"})


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    """The search page."""
    return FileResponse(STATIC_DIR / "index.html", headers={**PAGE_HEADERS, "Cache-Control": "no-cache"})
