"""The web server: a REST API (docs at ``/docs``) and a search page over one lookalike table.

``lookalike serve photos.db`` calls :func:`serve`; tests and embedding applications call
:func:`create_app` and run the app themselves. Needs the ``server`` extra
(``pip install 'lookalike[server]'``).

Safety: binds 127.0.0.1 by default; URL queries pass the SSRF guard (:mod:`lookalike.images.guard`)
unless ``allow_private_urls``, and connect only to the addresses it vetted; uploads are capped in bytes
and, from the header before decoding, in pixels; few images decode at once; requests sent by other
sites' pages are refused; images are served only for indexed items, by id; with a token (``token=`` or
``$LOOKALIKE_TOKEN``) every route but the page shell requires it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from typing import TYPE_CHECKING, Any

from lookalike.errors import MissingDependencyError
from lookalike.server.security import TOKEN_ENV

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lookalike.client import Client
    from lookalike.table import Table

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "TOKEN_ENV", "create_app", "serve"]

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
"""Uploads (and images fetched for URL queries) larger than this are refused with 413."""

log = logging.getLogger("lookalike.server")


def _need(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise MissingDependencyError("the web server", extra="server", package=module) from exc


def create_app(
    client_or_table: Client | Table,
    *,
    token: str | None = None,
    allow_private_urls: bool = False,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    **options: Any,
) -> FastAPI:
    """The FastAPI app over a table (or a client's ``"images"`` table; ``table=`` names another).

    See :func:`lookalike.server.app.create_app` for the other options (``fetcher``, ``item_fetcher``,
    ``thumbnail_cache_bytes``, ``allowed_hosts``).
    """
    _need("fastapi")
    _need("multipart")
    from lookalike.server.app import create_app as _create_app

    return _create_app(
        client_or_table,
        token=token,
        allow_private_urls=allow_private_urls,
        max_upload_bytes=max_upload_bytes,
        **options,
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    db: str,
    *,
    table: str = "images",
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    allow_private_urls: bool = False,
    model: str | None = None,
) -> None:
    """Open ``table`` in the database ``db`` and serve the API and the page until interrupted.

    ``token`` defaults to ``$LOOKALIKE_TOKEN``; ``model`` replaces the table's stored embedder with
    ``EmbeddingFunction(model)``. On a loopback address the Host header must name the loopback too,
    so a web page elsewhere cannot reach the server through DNS rebinding.
    """
    uvicorn = _need("uvicorn")
    import lookalike

    token = token or os.environ.get(TOKEN_ENV) or None
    client = lookalike.connect(db)
    embed_fn = lookalike.EmbeddingFunction(model) if model else None
    opened = client.open_table(table, embed_fn=embed_fn)
    allowed_hosts = None
    if _is_loopback(host):
        allowed_hosts = {"127.0.0.1", "localhost", "[::1]", "::1", host.lower()}
    elif token is None:
        log.warning("serving on %s without a token: anyone who can reach it can search the index", host)
    app = create_app(opened, token=token, allow_private_urls=allow_private_urls, allowed_hosts=allowed_hosts)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, server_header=False)
    finally:
        client.close()
