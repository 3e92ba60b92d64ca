"""Errors as HTTP answers: every failure becomes ``{"error": {"code", "message", "status"}}``.

Routes raise :class:`ApiError` for what only HTTP knows (a bad id, a busy server); library errors
keep their own types and get their status from :data:`ERROR_STATUS`, by kind, never by their text.
:func:`install_error_handlers` puts the handlers on an app.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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

__all__ = ["ERROR_STATUS", "ApiError", "error_response", "install_error_handlers", "status_of"]


class ApiError(Exception):
    """An error a route answers with: HTTP status, a stable machine-readable code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


ERROR_STATUS: tuple[tuple[type[LookalikeError], int, str], ...] = (
    # Most specific first: the first class that matches decides the status.
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
)
"""``(error class, HTTP status, code)`` for library errors; any other one is ``500 "error"``."""

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def status_of(exc: LookalikeError) -> tuple[int, str]:
    """The HTTP status and code for a library error, by its class."""
    for cls, status, code in ERROR_STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "error"


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The API's error answer."""
    return JSONResponse(
        {"error": {"code": code, "message": message, "status": status}}, status_code=status, headers=headers
    )


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)  # registered for ApiError only
    return error_response(exc.status, exc.code, exc.message)


async def _library_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LookalikeError)  # registered for LookalikeError only
    status, code = status_of(exc)
    return error_response(status, code, str(exc))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's parameter checks, as one ``bad_request`` naming each bad parameter."""
    assert isinstance(exc, RequestValidationError)  # registered for RequestValidationError only
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg")))
    return error_response(400, "bad_request", "; ".join(parts) or "invalid request")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own answers (unknown path, wrong method) in the API's shape."""
    assert isinstance(exc, StarletteHTTPException)  # registered for HTTPException only
    code = _HTTP_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Only the type is told: a bug's message may hold paths or data the client must not see.
    return error_response(500, "internal_error", f"internal error ({type(exc).__name__})")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error ``app`` raises in the API's JSON error shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(LookalikeError, _library_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
