"""The FastAPI app: :func:`create_app` wires the routes, error handlers and guards over one table.

The parts live in their own modules: :mod:`~lookalike.server.backend` (the library calls),
:mod:`~lookalike.server.routes` (the HTTP routes), :mod:`~lookalike.server.errors_http` (errors as
JSON answers, see ``ERROR_STATUS``) and :mod:`~lookalike.server.security` (the guards).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles

from lookalike import Client, Table, __version__
from lookalike.images import HttpFetcher
from lookalike.server import DEFAULT_MAX_UPLOAD_BYTES
from lookalike.server.backend import DEFAULT_MAX_DECODES, DEFAULT_MAX_QUERY_PIXELS, Backend
from lookalike.server.errors_http import ApiError, install_error_handlers
from lookalike.server.routes import STATIC_DIR, document_item_ids, router
from lookalike.server.security import BodyLimit, HostGuard, OriginGuard, PathGuard, TokenGuard
from lookalike.server.thumbnails import DEFAULT_CACHE_BYTES

__all__ = [
    "DEFAULT_MAX_DECODES",
    "DEFAULT_MAX_QUERY_PIXELS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "ApiError",
    "create_app",
]


class _App(FastAPI):
    """FastAPI whose schema says what the table's ids look like (only the backend knows)."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            backend: Backend = self.state.backend
            self.openapi_schema = document_item_ids(super().openapi(), integer=backend.pk_is_int)
        return self.openapi_schema


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")  # ?token= must not leak
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.url.path.startswith("/api/") and "cache-control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


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
    app = _App(
        title="lookalike",
        version=__version__,
        summary="Find images that look alike, by image or by words, and find duplicates.",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(bearer)] if backend.token else [],  # documents the token in the schema
    )
    app.state.backend = backend
    install_error_handlers(app)
    app.middleware("http")(_security_headers)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Added last runs first: refuse '..', then unknown hosts, then other sites' pages, then check the
    # token, then cap bodies.
    app.add_middleware(BodyLimit, limit=max_upload_bytes + 64 * 1024)
    app.add_middleware(TokenGuard, token=backend.token)
    app.add_middleware(OriginGuard, origins=allowed_origins)
    if allowed_hosts:
        app.add_middleware(HostGuard, hosts=allowed_hosts)
    app.add_middleware(PathGuard)
    return app
