"""The server's guards, as plain ASGI middleware: the token, the request body cap, ``../`` in paths,
the Host header, and requests sent by other sites' pages.

They run before FastAPI routing, so every route (the API, ``/docs``, ``/openapi.json``) is covered,
including ones added later. Only the page shell (``/`` and ``/static/*``, which hold no data) is
served without the token, so that the page can ask for it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_ENV = "LOOKALIKE_TOKEN"
"""Environment variable read by :func:`lookalike.server.serve` when no token is passed."""

PUBLIC_PATHS = ("/", "/index.html", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)

# Query parameters that carry free text or a URL rather than a path (a URL may hold "../" legitimately).
_NOT_PATH_PARAMS = frozenset({"q", "url", "token"})


async def send_json_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    """Answer with the server's JSON error shape, from ASGI middleware (no FastAPI available there)."""
    body = json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
    ]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def has_dot_segment(value: str) -> bool:
    """True when ``value`` (after percent-decoding, twice) holds a ``..`` path segment."""
    for _ in range(2):  # "%252e%252e%252f" decodes to "%2e%2e%2f", then to "../"
        value = unquote(value)
    parts = value.replace("\\", "/").split("/")
    return any(part.strip() == ".." for part in parts)


class PathGuard:
    """Refuse (400) any request whose path, or a path-like query parameter, holds a ``..`` segment.

    Items are only ever addressed by id, so ``..`` never has a legitimate use; refusing it up front
    keeps traversal tricks away from every route, static files included.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or b""
            paths = [scope.get("path", ""), raw_path.decode("latin-1")]
            query = (scope.get("query_string") or b"").decode("latin-1")
            params = [v for k, v in parse_qsl(query, keep_blank_values=True) if k not in _NOT_PATH_PARAMS]
            if any(has_dot_segment(p) for p in paths + params):
                await send_json_error(send, 400, "bad_path", "'..' is not allowed in paths or parameters")
                return
        await self.app(scope, receive, send)


class TokenGuard:
    """Require ``Authorization: Bearer <token>`` (or ``?token=<token>``, for ``<img src>``) when set."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    def _public(self, path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)

    def _given(self, scope: Scope) -> bytes | None:
        for name, value in scope.get("headers") or []:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    return credentials.strip()
        query = (scope.get("query_string") or b"").decode("latin-1")
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "token":
                return value.encode("latin-1")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or self._public(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        given = self._given(scope)
        if given is None or not hmac.compare_digest(given, self.token):
            message = "a token is required" if given is None else "wrong token"
            await send_json_error(
                send,
                401,
                "unauthorized",
                f"{message}: send 'Authorization: Bearer <token>' or add ?token=<token>",
                headers={"WWW-Authenticate": 'Bearer realm="lookalike"'},
            )
            return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Answer 413 once a request body passes ``limit`` bytes, by Content-Length or while it streams.

    Starlette's multipart parser would otherwise spool an upload of any size to disk before a route
    sees it. The refused body is read and dropped (up to ``drain_bytes``) before answering, so that a
    client still sending it reads the 413 rather than a connection reset.
    """

    def __init__(self, app: ASGIApp, limit: int, methods: Collection[str] = ("POST", "PUT", "PATCH")) -> None:
        self.app = app
        self.limit = limit
        self.methods = frozenset(methods)
        self.drain_bytes = max(4 * limit, 16 * 1024 * 1024)

    async def _refuse(self, receive: Receive, send: Send) -> None:
        budget = self.drain_bytes
        while budget > 0:  # beyond the budget the connection is closed on the client
            message = await receive()
            if message["type"] != "http.request":
                break
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        text = f"upload too large: the limit is {_human(self.limit)}"
        await send_json_error(send, 413, "too_large", text, headers={"Connection": "close"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in self.methods:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or []:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(receive, send)
                return
        seen = 0
        exceeded = False
        answered = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def checked_send(message: Message) -> None:
            # A body parser that catches our error answers 400 ("error parsing the body"): say 413 instead.
            nonlocal answered
            if exceeded:
                if message["type"] == "http.response.start" and not answered:
                    answered = True
                    await self._refuse(receive, send)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, checked_send)
        except _TooLarge:
            if not answered:
                answered = True
                await self._refuse(receive, send)


class HostGuard:
    """Refuse requests whose Host header is not one of ``hosts`` (blocks DNS rebinding to a local server)."""

    def __init__(self, app: ASGIApp, hosts: Collection[str]) -> None:
        self.app = app
        self.hosts = frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = ""
            for name, value in scope.get("headers") or []:
                if name == b"host":
                    host = value.decode("latin-1").lower()
                    break
            hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if hostname not in self.hosts:
                await send_json_error(send, 400, "bad_host", f"unexpected Host header {host!r}")
                return
        await self.app(scope, receive, send)


def _human(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.0f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.0f} KiB"
    return f"{n} bytes"


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _host_and_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    """``("host", port)`` from ``host[:port]``, the port defaulted by scheme; None when malformed."""
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port or _DEFAULT_PORTS.get(scheme, 80)


class OriginGuard:
    """Refuse (403) requests that another site's page sent: ``Origin`` naming another origin, or
    ``Sec-Fetch-Site: cross-site`` / ``same-site``.

    A server on 127.0.0.1 is reachable from every page the user opens; without this any of them could
    post uploads or start searches and duplicate scans (a browser sends a "simple" cross-origin POST
    without asking first). It applies to every ``/api/`` route and to any request that is not a GET,
    HEAD or OPTIONS: the API has no cross-site use, and guarding all of it means a costly route added
    later cannot be forgotten. ``same-site`` is refused too, because another port on the same host
    (``localhost:3000``) is the same site. Clients that are not browsers send neither header and pass;
    so does a top-level visit to the page. ``origins`` names extra trusted origins
    (``"https://app.example"``).
    """

    def __init__(self, app: ASGIApp, origins: Collection[str] = ()) -> None:
        self.app = app
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    def _guarded(self, scope: Scope) -> bool:
        return scope.get("path", "").startswith("/api/") or scope.get("method") not in _SAFE_METHODS

    def _refusal(self, scope: Scope) -> str | None:
        headers = {name: value.decode("latin-1") for name, value in scope.get("headers") or []}
        origin = headers.get(b"origin")
        if origin is not None:
            origin = origin.strip().rstrip("/").lower()
            if origin in self.origins:
                return None
            parts = urlsplit(origin) if "://" in origin else None
            own = _host_and_port(headers.get(b"host", ""), scope.get("scheme", "http"))
            theirs = _host_and_port(parts.netloc, parts.scheme) if parts else None
            if own is None or theirs is None or own != theirs:
                return f"requests from other sites' pages are refused (Origin {origin!r})"
            return None
        site = headers.get(b"sec-fetch-site", "").strip().lower()
        if site in ("cross-site", "same-site"):
            return f"requests from other sites' pages are refused (Sec-Fetch-Site: {site})"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._guarded(scope):
            refusal = self._refusal(scope)
            if refusal is not None:
                # The body is left unread: close the connection rather than read what we refuse.
                await send_json_error(send, 403, "cross_site", refusal, headers={"Connection": "close"})
                return
        await self.app(scope, receive, send)
