"""The FastAPI app: REST routes over one :class:`~lookalike.Table`, and the static search page.

Each route parses its parameters, makes one library call and shapes the answer; library errors become
JSON errors ``{"error": {"code", "message", "status"}}`` with the status their kind calls for (see
``_ERROR_STATUS``). Routes are plain ``def`` functions, so FastAPI runs them in its thread pool and
the event loop stays free while a model embeds or a thumbnail decodes.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import os
import re
import threading
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import sqlalchemy as sa
from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from lookalike._json import to_jsonable
from lookalike.client import Client
from lookalike.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionFailedError,
    EmbeddingError,
    EngineError,
    FilterError,
    ImageInputError,
    LookalikeError,
    ModelNotFoundError,
    ProviderError,
    SchemaError,
    TableNotFoundError,
    VectorError,
)
from lookalike.images import HttpFetcher, ImageSource, image_size, read_source, sniff_format
from lookalike.server import DEFAULT_MAX_UPLOAD_BYTES
from lookalike.server.security import BodyLimit, HostGuard, OriginGuard, PathGuard, TokenGuard
from lookalike.server.thumbnails import DEFAULT_CACHE_BYTES, THUMBNAIL_SIZES, LRUCache, make_thumbnail
from lookalike.table import Table

__all__ = [
    "DEFAULT_MAX_DECODES",
    "DEFAULT_MAX_QUERY_PIXELS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "ApiError",
    "create_app",
]

MAX_PAGE_SIZE = 200
DEFAULT_MAX_QUERY_PIXELS = 50_000_000
"""Query images (uploads, URLs) whose header claims more pixels are refused before decoding (413).

A query is shrunk to the model's input (a few hundred pixels a side), so this is far above any use;
it is below the library's own cap because a full decode costs 3-7 bytes a pixel and anyone who can
reach the server chooses the picture. 50 MP still covers phone cameras' full-resolution modes.
"""
DEFAULT_MAX_DECODES = 2
"""Images decoded at once for queries and thumbnails; more requests wait their turn."""
DECODE_WAIT_SECONDS = 30.0
"""How long a request waits for a decode slot before it is answered 503."""
_INT64 = (-(2**63), 2**63 - 1)  # what an integer primary key can hold, in every engine
_INT_ID = re.compile(r"-?[0-9]+")
MAX_OFFSET = 10_000
STATIC_DIR = Path(__file__).parent / "static"

# Most specific first: the first class that matches decides the status.
_ERROR_STATUS: list[tuple[type[LookalikeError], int, str]] = [
    (TableNotFoundError, 404, "table_not_found"),
    (AuthenticationError, 502, "provider_auth_failed"),
    (ProviderError, 502, "provider_failed"),
    (ModelNotFoundError, 500, "model_not_found"),
    (EmbeddingError, 500, "embedding_failed"),
    (ImageInputError, 400, "bad_image"),
    (VectorError, 400, "bad_vector"),
    (FilterError, 400, "bad_filter"),
    (SchemaError, 400, "bad_request"),
    (ConfigurationError, 400, "bad_request"),
    (ConnectionFailedError, 503, "database_unavailable"),
    (EngineError, 500, "database_error"),
]

_MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "ICO": "image/x-icon",
    "JPEG2000": "image/jp2",
    "AVIF": "image/avif",
    "HEIF": "image/heic",
}
_IMAGE_COLUMN_NAMES = (
    "path",
    "image_path",
    "image",
    "image_uri",
    "image_url",
    "uri",
    "url",
    "file",
    "filename",
)

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
}


class ApiError(Exception):
    """An error a route answers with: HTTP status, a stable machine-readable code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# ---------------------------------------------------------------------- response models


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. 'not_found', 'not_an_image'")
    message: str = Field(description="what happened, for people")
    status: int


class ErrorBody(BaseModel):
    error: ErrorDetail


class Hit(BaseModel):
    id: Any
    name: str = Field(description="a short display name (the file name of the image)")
    score: float | None = Field(None, description="similarity, higher is more alike")
    distance: float | None = Field(None, description="distance in the column's metric, smaller is nearer")
    metadata: dict[str, Any] = Field(description="the row's columns, vectors left out")
    thumbnail_url: str
    image_url: str


class SearchPage(BaseModel):
    query: dict[str, Any]
    offset: int
    limit: int
    has_more: bool
    results: list[Hit]


class ItemsPage(BaseModel):
    total: int
    offset: int
    limit: int
    has_more: bool
    results: list[Hit]


class DuplicateMember(Hit):
    keeper: bool
    match: str = Field(
        description='how this member relates to the keeper: "keeper", "identical file", "same picture" or "similar"'
    )
    detail: str = Field(
        description='what changed, e.g. "resized, format change" (empty when unknown; "vectors only (…)" '
        "when the pixels could not be compared)"
    )


class DuplicateGroup(BaseModel):
    keeper: Any = Field(description="the id of the suggested keeper (listed first)")
    size: int
    exact: bool = Field(description="every member has the same content")
    kind: str = Field(description='the weakest member match: "identical file", "same picture" or "similar"')
    diameter: float = Field(description="the largest cosine distance between any two members")
    reason: str
    members: list[DuplicateMember]


class DuplicatesPage(BaseModel):
    threshold: float | None
    exact: bool
    similar: bool
    total_groups: int
    offset: int
    limit: int
    has_more: bool
    groups: list[DuplicateGroup]


class Stats(BaseModel):
    table: str
    rows: int
    primary_key: str
    columns: list[str]
    vector_column: str
    dimensions: int | None
    metric: str
    model: str | None
    multimodal: bool
    engine: str
    image_column: str | None
    duplicates_available: bool
    thumbnails: dict[str, int]
    token_required: bool
    version: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 415, 500, 502, 503)
}


# ---------------------------------------------------------------------- the library side


class Backend:
    """What the routes share: the table, its columns, the fetchers and the caches."""

    def __init__(
        self,
        table: Table,
        *,
        token: str | None,
        allow_private_urls: bool,
        max_upload_bytes: int,
        fetcher: HttpFetcher | None,
        item_fetcher: HttpFetcher | None,
        thumbnail_cache_bytes: int,
        max_query_pixels: int = DEFAULT_MAX_QUERY_PIXELS,
        max_decodes: int = DEFAULT_MAX_DECODES,
    ) -> None:
        self.table = table
        self.max_query_pixels = max_query_pixels
        # Decoding is where memory goes (a 50 MP picture is 150 MB as RGB): bound how many run at once.
        self.decode_slots = threading.BoundedSemaphore(max_decodes)
        self.decode_wait = DECODE_WAIT_SECONDS
        self.token = token
        self.max_upload_bytes = max_upload_bytes
        self.vec = _pick_vector_column(table)
        self.pk = table.primary_key
        self.pk_is_int = _is_integer(table.spec.sa_table.c[self.pk])
        self.columns = [c for c in table.spec.sa_table.columns.keys() if c not in table.spec.vectors]
        self.image_column = _pick_image_column(table, self.vec.source_field)
        # URLs from web clients go through the SSRF guard; indexed items were put there by the owner.
        self.fetcher = fetcher or HttpFetcher(
            allow_private=allow_private_urls, max_bytes=max_upload_bytes, retries=1, deadline=30.0
        )
        self.item_fetcher = item_fetcher or HttpFetcher(retries=1, deadline=30.0)
        self.thumbnails = LRUCache(thumbnail_cache_bytes, weigh=len)
        self.query_vectors = LRUCache(256)  # paging through one query embeds it once
        self.duplicate_scans = LRUCache(4)

    # -------------------------------------------------------------- ids and rows
    def parse_id(self, raw: str) -> Any:
        """The id in the key column's type: 400 when it is not an integer, 404 when no row can have it."""
        if self.pk_is_int:
            # int() would also take "1_0", " 7" and other scripts' digits; ids are written in ASCII.
            if not _INT_ID.fullmatch(raw):
                raise ApiError(400, "bad_id", f"item ids are integers, got {raw[:40]!r}")
            value = int(raw)
            if not _INT64[0] <= value <= _INT64[1]:
                # The database cannot even compare with it (OverflowError), and no row can hold it.
                raise ApiError(404, "not_found", f"no item with id {raw[:40]} in table {self.table.name!r}")
            return value
        return raw

    @contextlib.contextmanager
    def decoding(self) -> Iterator[None]:
        """Hold one of the decode slots while decoding (503 when none frees up in time)."""
        if not self.decode_slots.acquire(timeout=self.decode_wait):
            raise ApiError(503, "busy", "the server is decoding other images; try again shortly")
        try:
            yield
        finally:
            self.decode_slots.release()

    def row(self, item_id: Any, *, with_vector: bool = False) -> dict[str, Any]:
        """The item's columns (and its vector with ``with_vector``); 404 for an unknown id."""
        columns = [*self.columns, self.vec.name] if with_vector else self.columns
        rows = self.table.query({self.pk: item_id}, limit=1, columns=columns).to_list()
        if not rows:
            raise ApiError(404, "not_found", f"no item with id {item_id!r} in table {self.table.name!r}")
        return rows[0]

    def hit(self, row: Mapping[str, Any]) -> dict[str, Any]:
        item_id = row[self.pk]
        ref = quote(str(item_id), safe="")
        distance = row.get("_distance")
        score = row.get("_score")
        source = row.get(self.image_column) if self.image_column else None
        return {
            "id": to_jsonable(item_id),
            "name": _display_name(source, item_id),
            "score": None if score is None else float(score),
            "distance": None if distance is None else float(distance),
            "metadata": {k: to_jsonable(v) for k, v in row.items() if not k.startswith("_")},
            "thumbnail_url": f"/api/items/{ref}/thumbnail",
            "image_url": f"/api/items/{ref}/image",
        }

    # -------------------------------------------------------------- searching
    def search_page(
        self, vector: np.ndarray, offset: int, limit: int, query: dict[str, Any], exclude: Any = None
    ) -> dict[str, Any]:
        """One page of nearest rows; ``exclude`` drops the query item itself from "more like this"."""
        extra = 1 if exclude is not None else 0
        rows = self.table.search(vector=vector).vector_column(self.vec.name).limit(offset + limit + 1 + extra)
        found = [r for r in rows.to_list() if exclude is None or r[self.pk] != exclude]
        page = found[offset : offset + limit]
        return {
            "query": query,
            "offset": offset,
            "limit": limit,
            "has_more": len(found) > offset + limit,
            "results": [self.hit(r) for r in page],
        }

    def query_vector(self, key: tuple[str, str], make: Any) -> np.ndarray:
        """The embedded query, reused when the same query pages on (``make()`` embeds it)."""
        vector = self.query_vectors.get(key)
        if vector is None:
            vector = make()
            self.query_vectors.put(key, vector)
        return vector

    def embed(self, **query: Any) -> np.ndarray:
        return self.table.search(**query).vector_column(self.vec.name).query_vector()

    def item_vector(self, item_id: Any) -> tuple[dict[str, Any], np.ndarray]:
        """The item's columns and its vector (400 when it has none)."""
        row = self.row(item_id, with_vector=True)
        value = row.pop(self.vec.name)
        if value is None:
            raise ApiError(
                400, "no_vector", f"item {item_id!r} has no vector (its image could not be embedded)"
            )
        return row, np.asarray(value, dtype=np.float32)

    # -------------------------------------------------------------- images
    def image_ref(self, item_id: Any) -> Any:
        """What the item's image column holds (a path, URL, bytes...); 404 when there is none."""
        if self.image_column is None:
            raise ApiError(404, "no_image", f"table {self.table.name!r} has no image column")
        value = self.row(item_id).get(self.image_column)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ApiError(404, "no_image", f"item {item_id!r} has no image")
        return value

    def item_source(self, item_id: Any, ref: Any) -> ImageSource:
        """The bytes of an indexed item's image (read from the table's value, never a client's path)."""
        try:
            return read_source(ref, fetcher=self.item_fetcher)
        except ImageInputError as exc:
            raise ApiError(
                404, "image_unavailable", f"the image of item {item_id!r} is unavailable: {exc}"
            ) from exc

    def decode_query_image(self, data: bytes, name: str) -> bytes:
        """Check uploaded or downloaded bytes (415 when they are not a picture at all, 413 when their
        header claims more than ``max_query_pixels``) and return them.

        The embedder decodes them itself, exactly as it decodes a path to the same file when indexing
        (JPEG draft scale included), so an upload of an indexed file finds that file at distance 0.
        """
        if not data:
            raise ApiError(400, "empty_image", f"{name}: empty (0 bytes), not an image")
        fmt = sniff_format(data)
        if fmt == "unknown" or fmt.startswith("!"):
            what = "an unrecognised format" if fmt == "unknown" else fmt[1:]
            raise ApiError(
                415,
                "not_an_image",
                f"{name} is not an image ({what}); send a JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF or HEIC picture",
            )
        # Judged from the header, before anything is decoded: a 100 KB PNG can claim 100 MP. Refusing
        # (rather than decoding smaller) keeps the bytes the embedder sees the uploaded ones.
        _, (width, height) = image_size(data, name=name)
        if width * height > self.max_query_pixels:
            raise ApiError(
                413,
                "too_many_pixels",
                f"{name} is {width}×{height} ({width * height / 1e6:.0f} MP); query images may have at "
                f"most {self.max_query_pixels / 1e6:g} MP, send a smaller copy",
            )
        return data

    # -------------------------------------------------------------- duplicates
    def duplicate_groups(self, threshold: float | None, exact: bool, similar: bool = False) -> list[Any]:
        """The table's duplicate groups (with ``similar`` shots too); a scan is reused until the row
        count changes."""
        key = (threshold, exact, similar, self.table.rows())
        groups = self.duplicate_scans.get(key)
        if groups is None:
            groups = list(
                self.table.find_duplicates(threshold=threshold, exact=exact, limit=None, similar=similar)
            )
            self.duplicate_scans.put(key, groups)
        return groups

    def group_json(self, group: Any) -> dict[str, Any]:
        """A :class:`~lookalike.duplicates.DuplicateGroup` (keeper first) as JSON, members as hits."""
        members = []
        for item_id, row, distance, match, detail in zip(
            group.ids, group.rows, group.keeper_distances, group.labels, group.details
        ):
            hit = self.hit({**row, self.pk: item_id, "_distance": distance})
            hit["keeper"] = item_id == group.keeper
            hit["match"] = match
            hit["detail"] = detail
            members.append(hit)
        return {
            "keeper": to_jsonable(group.keeper),
            "size": len(members),
            "exact": bool(group.exact),
            "kind": group.kind,
            "diameter": round(float(group.diameter), 6),
            "reason": group.reason,
            "members": members,
        }


def _pick_vector_column(table: Table) -> Any:
    vectors = list(table.vector_columns.values())
    if not vectors:
        raise ConfigurationError(f"table {table.name!r} has no vector column: there is nothing to search")
    # several vector columns: search the one filled from images by a multimodal model
    for vec in vectors:
        if vec.embed_fn is not None and getattr(vec.embed_fn, "multimodal", False) and vec.source_field:
            return vec
    return vectors[0]


def _pick_image_column(table: Table, source_field: str | None) -> str | None:
    names = table.spec.sa_table.columns.keys()
    if source_field and source_field in names:
        return source_field
    return next((n for n in _IMAGE_COLUMN_NAMES if n in names), None)


def _is_integer(column: sa.Column[Any]) -> bool:
    try:
        return issubclass(column.type.python_type, int)
    except NotImplementedError:
        return False


def _display_name(source: Any, item_id: Any) -> str:
    if isinstance(source, str) and source and not source.startswith("data:"):
        tail = source.rstrip("/").split("?", 1)[0].replace("\\", "/").rsplit("/", 1)[-1]
        if tail:
            return tail
    return f"#{item_id}"


def _error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "status": status}}, status_code=status, headers=headers
    )


def _version() -> str:
    from lookalike import __version__

    return __version__


# ---------------------------------------------------------------------- the app


def create_app(
    client_or_table: Client | Table,
    *,
    table: str = "images",
    token: str | None = None,
    allow_private_urls: bool = False,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    fetcher: HttpFetcher | None = None,
    item_fetcher: HttpFetcher | None = None,
    thumbnail_cache_bytes: int = DEFAULT_CACHE_BYTES,
    allowed_hosts: Collection[str] | None = None,
    allowed_origins: Collection[str] = (),
    max_query_pixels: int = DEFAULT_MAX_QUERY_PIXELS,
    max_decodes: int = DEFAULT_MAX_DECODES,
) -> FastAPI:
    """The web app for one table: the REST API under ``/api``, docs at ``/docs``, the page at ``/``.

    ``client_or_table`` is a :class:`~lookalike.Table`, or a :class:`~lookalike.Client` whose table
    ``table`` is opened. With ``token`` every route but the page shell requires it. URL queries are
    fetched by ``fetcher`` (default: an :class:`~lookalike.images.HttpFetcher` whose SSRF guard refuses
    private addresses unless ``allow_private_urls``); ``item_fetcher`` reads indexed items that are URLs.
    Uploads over ``max_upload_bytes`` are refused with 413, and so are query images whose header
    claims more than ``max_query_pixels``; at most ``max_decodes`` images decode at once. ``allowed_hosts``
    limits the Host header (``serve`` sets it on loopback binds, against DNS rebinding). Requests sent
    by another site's page are refused with 403 (:class:`~lookalike.server.security.OriginGuard`);
    ``allowed_origins`` names origins trusted anyway.
    """
    if isinstance(client_or_table, Client):
        client_or_table = client_or_table.open_table(table)
    if max_upload_bytes <= 0:
        raise ConfigurationError(f"max_upload_bytes must be positive, got {max_upload_bytes!r}")
    if max_query_pixels <= 0 or max_decodes <= 0:
        raise ConfigurationError("max_query_pixels and max_decodes must be positive")
    backend = Backend(
        client_or_table,
        token=token or None,
        allow_private_urls=allow_private_urls,
        max_upload_bytes=max_upload_bytes,
        fetcher=fetcher,
        item_fetcher=item_fetcher,
        thumbnail_cache_bytes=thumbnail_cache_bytes,
        max_query_pixels=max_query_pixels,
        max_decodes=max_decodes,
    )
    bearer = HTTPBearer(auto_error=False, description="the server's token (`lookalike serve --token`)")
    app = FastAPI(
        title="lookalike",
        version=_version(),
        summary="Find images that look alike, by image or by words, and find duplicates.",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(bearer)] if backend.token else [],
    )
    app.state.backend = backend

    # -------------------------------------------------------------- errors
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(LookalikeError)
    async def _library_error(request: Request, exc: LookalikeError) -> JSONResponse:
        for cls, status, code in _ERROR_STATUS:
            if isinstance(exc, cls):
                return _error_response(status, code, str(exc))
        return _error_response(500, "error", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg")))
        return _error_response(400, "bad_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return _error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error_response(500, "internal_error", f"internal error ({type(exc).__name__})")

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")  # ?token= must not leak
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.url.path.startswith("/api/") and "cache-control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response

    # -------------------------------------------------------------- the API
    Offset = Query(0, ge=0, le=MAX_OFFSET, description="results to skip")
    Limit = Query(24, ge=1, le=MAX_PAGE_SIZE, description="results per page")
    # Documented, not validated by FastAPI: parse_id gives the clearer "bad_id" error. The schema must
    # say what the route accepts, or clients (and schema-driven fuzzers) send ids it cannot take.
    ItemId = PathParam(
        description="the item's id (its primary key)",
        json_schema_extra={"pattern": r"^-?[0-9]+$"} if backend.pk_is_int else None,
    )

    @app.get("/api/stats", response_model=Stats, tags=["index"], responses=_ERRORS)
    def stats() -> dict[str, Any]:
        """How many items the table holds, its columns, model and metric."""
        embed_fn = backend.vec.embed_fn
        return {
            "table": backend.table.name,
            "rows": backend.table.rows(),
            "primary_key": backend.pk,
            "columns": backend.columns,
            "vector_column": backend.vec.name,
            "dimensions": backend.vec.dimensions,
            "metric": backend.vec.distance_metric,
            "model": getattr(embed_fn, "model_name", None),
            "multimodal": bool(getattr(embed_fn, "multimodal", False)),
            "engine": backend.table.client.engine.name,
            "image_column": backend.image_column,
            "duplicates_available": True,
            "thumbnails": backend.thumbnails.stats(),
            "token_required": backend.token is not None,
            "version": _version(),
        }

    @app.get("/api/items", response_model=ItemsPage, tags=["items"], responses=_ERRORS)
    def list_items(offset: int = Offset, limit: int = Limit) -> dict[str, Any]:
        """Browse the indexed items in id order."""
        rows = backend.table.query(
            order_by=backend.pk, limit=limit + 1, offset=offset, columns=backend.columns
        ).to_list()
        return {
            "total": backend.table.rows(),
            "offset": offset,
            "limit": limit,
            "has_more": len(rows) > limit,
            "results": [backend.hit(r) for r in rows[:limit]],
        }

    @app.get("/api/items/{item_id}", response_model=Hit, tags=["items"], responses=_ERRORS)
    def get_item(item_id: str = ItemId) -> dict[str, Any]:
        """One item's metadata (its columns, vectors left out)."""
        return backend.hit(backend.row(backend.parse_id(item_id)))

    @app.get(
        "/api/items/{item_id}/image",
        tags=["items"],
        response_class=Response,
        responses={**_ERRORS, 200: {"description": "the image file", "content": {"image/*": {}}}},
    )
    def get_image(item_id: str = ItemId) -> Response:
        """The original image of an indexed item (only ever by id, never by a path)."""
        key_id = backend.parse_id(item_id)
        data = backend.item_source(key_id, backend.image_ref(key_id)).data
        if data is None:
            raise ApiError(415, "not_an_image", "this item's image is not stored as a file")
        media_type = _MEDIA_TYPES.get(sniff_format(data))
        if media_type is None:
            raise ApiError(415, "not_an_image", f"the file of item {item_id!r} is not an image any more")
        return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})

    @app.get(
        "/api/items/{item_id}/thumbnail",
        tags=["items"],
        response_class=Response,
        responses={**_ERRORS, 200: {"description": "a JPEG thumbnail", "content": {"image/jpeg": {}}}},
    )
    def get_thumbnail(
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
        key_id = backend.parse_id(item_id)
        ref = backend.image_ref(key_id)
        key = (key_id, str(ref), size)  # a re-indexed item with a new file gets a new thumbnail
        data = backend.thumbnails.get(key)
        if data is None:
            source = backend.item_source(key_id, ref)
            with backend.decoding():
                data = make_thumbnail(source, size)
            backend.thumbnails.put(key, data)
        etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
        return Response(
            data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400", "ETag": etag}
        )

    @app.get("/api/items/{item_id}/similar", response_model=SearchPage, tags=["search"], responses=_ERRORS)
    def similar(item_id: str = ItemId, offset: int = Offset, limit: int = Limit) -> dict[str, Any]:
        """More like this: the items nearest to an indexed item (the item itself left out)."""
        key_id = backend.parse_id(item_id)
        row, vector = backend.item_vector(key_id)
        query = {"kind": "item", "id": to_jsonable(key_id), "item": backend.hit(row)}
        return backend.search_page(vector, offset, limit, query, exclude=key_id)

    @app.get("/api/search", response_model=SearchPage, tags=["search"], responses=_ERRORS)
    def search_text(
        q: str = Query(
            ...,
            min_length=1,
            max_length=1000,
            description="what to look for, in words",
            json_schema_extra={"pattern": r"\S"},  # documented: not only spaces (the route says why)
        ),
        offset: int = Offset,
        limit: int = Limit,
    ) -> dict[str, Any]:
        """Search by text ("a red bicycle")."""
        text = q.strip()
        if not text:
            raise ApiError(400, "bad_request", "the query is empty")
        vector = backend.query_vector(("text", text), lambda: backend.embed(text=text))
        return backend.search_page(vector, offset, limit, {"kind": "text", "q": text})

    @app.post("/api/search/image", response_model=SearchPage, tags=["search"], responses=_ERRORS)
    def search_image(
        file: UploadFile = File(..., description="the picture to search with"),
        offset: int = Offset,
        limit: int = Limit,
    ) -> dict[str, Any]:
        """Search with an uploaded image (multipart field ``file``)."""
        data = file.file.read(backend.max_upload_bytes + 1)
        if len(data) > backend.max_upload_bytes:
            raise ApiError(
                413, "too_large", f"upload too large: the limit is {backend.max_upload_bytes} bytes"
            )
        name = os.path.basename(file.filename or "") or "upload"
        key = ("image", hashlib.sha256(data).hexdigest())

        def make() -> np.ndarray:
            with backend.decoding():
                return backend.embed(image=backend.decode_query_image(data, f"upload {name!r}"))

        vector = backend.query_vector(key, make)
        return backend.search_page(vector, offset, limit, {"kind": "image", "name": name, "sha256": key[1]})

    @app.get("/api/search/url", response_model=SearchPage, tags=["search"], responses=_ERRORS)
    def search_url(
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
        url = url.strip()
        if not url.lower().startswith(("http://", "https://")):
            raise ApiError(400, "bad_url", f"{url!r}: only http and https URLs can be searched")

        def make() -> np.ndarray:
            try:
                data = backend.fetcher.fetch(url)
            except ImageInputError as exc:
                code = "url_refused" if "refused" in exc.message else "fetch_failed"
                message = exc.message
                if code == "url_refused" and "private" in message:
                    # The library's message names no CLI flag; here the flag is the way out.
                    message += (
                        ". This server does not fetch private or local addresses; start it with "
                        "lookalike serve --allow-private-urls (allow_private_urls=True in Python) to allow them"
                    )
                raise ApiError(400, code, message) from exc
            with backend.decoding():
                return backend.embed(image=backend.decode_query_image(data, url))

        vector = backend.query_vector(("url", url), make)
        return backend.search_page(vector, offset, limit, {"kind": "url", "url": url})

    @app.get("/api/duplicates", response_model=DuplicatesPage, tags=["duplicates"], responses=_ERRORS)
    def duplicates(
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
        groups = backend.duplicate_groups(threshold, exact, similar)
        shaped = [backend.group_json(g) for g in groups[offset : offset + limit]]
        return {
            "threshold": threshold,
            "exact": exact,
            "similar": similar,
            "total_groups": len(groups),
            "offset": offset,
            "limit": limit,
            "has_more": len(groups) > offset + limit,
            "groups": shaped,
        }

    # -------------------------------------------------------------- docs and the page
    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        # The reference is rendered by our own static/docs.js (no CDN: works offline, strict CSP).
        # TokenGuard has checked the token already; pass it on so the page can load the schema.
        given = request.query_params.get("token")
        suffix = f"?token={quote(given, safe='')}" if given and backend.token else ""
        page = (STATIC_DIR / "docs.html").read_text(encoding="utf-8")
        page = page.replace("{{openapi_url}}", html.escape(f"/openapi.json{suffix}", quote=True))
        return HTMLResponse(page, headers={**PAGE_HEADERS, "Cache-Control": "no-store"})

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={**PAGE_HEADERS, "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Outermost first: refuse '..', then unknown hosts, then other sites' pages, then check the token,
    # then cap bodies.
    app.add_middleware(BodyLimit, limit=max_upload_bytes + 64 * 1024)
    app.add_middleware(TokenGuard, token=backend.token)
    app.add_middleware(OriginGuard, origins=allowed_origins)
    if allowed_hosts:
        app.add_middleware(HostGuard, hosts=allowed_hosts)
    app.add_middleware(PathGuard)
    return app
