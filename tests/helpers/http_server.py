"""A real threaded HTTP server on 127.0.0.1 for tests: routes are callables, requests are recorded.

Usage::

    with LocalHTTPServer() as server:
        server.add_bytes("/cat.jpg", jpeg_bytes, content_type="image/jpeg")
        server.add_redirect("/old", "/cat.jpg")

        @server.route("/v1/embeddings", methods=["POST"])
        def embeddings(request: Request) -> Response:
            return Response.json({"data": [...]})

        httpx.get(server.url("/cat.jpg"))
        assert server.count("/cat.jpg") == 1

or take the ``http_server`` pytest fixture (import it into the test module or a conftest).
A handler gets a :class:`Request` and returns a :class:`Response`, ``bytes``, ``str`` or a JSON-able
``dict``/``list``. An exception in a handler answers 500 and is kept in ``server.errors``.
"""

from __future__ import annotations

import json
import mimetypes
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer as _ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = ["Handler", "LocalHTTPServer", "Request", "Response", "http_server"]


class ThreadingHTTPServer(_ThreadingHTTPServer):
    """The stdlib server with a listen backlog that concurrent clients don't overflow."""

    request_queue_size = 128


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    time: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Response:
    """What to answer. A ``bytes`` body is sent with Content-Length unless ``send_length`` is False; an
    iterable body is streamed, chunked when ``chunked`` is True, else delimited by closing the connection.
    ``delay`` waits before the status line; ``chunk_delay`` between body chunks (a trickling server)."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    content_type: str | None = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    send_length: bool = True
    chunked: bool = False
    delay: float = 0.0
    chunk_delay: float = 0.0

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """A JSON response."""
        return cls(status, json.dumps(obj).encode(), "application/json", dict(headers or {}))

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
        """A text response."""
        return cls(status, text.encode(), content_type)


Handler = Callable[[Request], "Response | bytes | str | dict[str, Any] | list[Any] | None"]


@dataclass
class _Route:
    path: str
    handler: Handler
    methods: frozenset[str] | None
    prefix: bool


def _as_response(value: Any) -> Response:
    if isinstance(value, Response):
        return value
    if value is None:
        return Response(204, b"", None)
    if isinstance(value, (bytes, bytearray)):
        return Response(200, bytes(value))
    if isinstance(value, str):
        return Response.text(value)
    if isinstance(value, (dict, list)):
        return Response.json(value)
    raise TypeError(f"handler returned {type(value).__name__}; return a Response, bytes, str, dict or list")


class LocalHTTPServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 (a free port unless ``port`` is given)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self._httpd = ThreadingHTTPServer((host, port), self._make_handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def start(self) -> LocalHTTPServer:
        """Start serving in a background thread."""
        if self._thread is None:
            # a short poll interval keeps stop() (and so every test's teardown) fast
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="test-http",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; handlers blocked in :meth:`add_hang` routes are released."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- routes ----------------------------------------------------------------------------------------

    def route(
        self,
        path: str,
        handler: Handler | None = None,
        *,
        methods: Sequence[str] | None = None,
        prefix: bool = False,
    ) -> Any:
        """Register ``handler`` for ``path`` (exact, or every path under it with ``prefix=True``).

        ``methods`` limits the HTTP methods (all when None). Usable as a decorator. The latest
        registration for a path wins, so a test can replace a route.
        """

        def register(fn: Handler) -> Handler:
            methods_set = frozenset(m.upper() for m in methods) if methods else None
            with self._lock:
                self._routes.insert(0, _Route(path, fn, methods_set, prefix))
            return fn

        return register(handler) if handler is not None else register

    def add_response(self, path: str, response: Response, *, methods: Sequence[str] | None = None) -> None:
        """Always answer ``path`` with ``response``."""
        self.route(path, lambda _request: response, methods=methods)

    def add_bytes(
        self,
        path: str,
        body: bytes,
        content_type: str | None = "application/octet-stream",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        send_length: bool = True,
    ) -> None:
        """Serve fixed bytes with a chosen content type and status."""
        self.add_response(path, Response(status, body, content_type, dict(headers or {}), send_length))

    def add_file(self, path: str, file: str | Path, content_type: str | None = None) -> None:
        """Serve a file (read at each request), content type guessed from its name unless given."""
        guessed = content_type or mimetypes.guess_type(str(file))[0] or "application/octet-stream"
        self.route(path, lambda _request: Response(200, Path(file).read_bytes(), guessed))

    def add_json(self, path: str, obj: Any, *, status: int = 200) -> None:
        """Serve a JSON document."""
        self.add_response(path, Response.json(obj, status))

    def add_status(
        self, path: str, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        """Answer with a bare status (404, 500...)."""
        self.add_response(path, Response(status, body, "text/plain", dict(headers or {})))

    def add_redirect(self, path: str, location: str, status: int = 302) -> None:
        """Redirect ``path`` to ``location`` (relative or absolute); two that point at each other loop."""
        self.add_response(path, Response(status, b"", None, {"Location": location}))

    def add_sequence(self, path: str, responses: Sequence[Response]) -> None:
        """Answer successive requests with successive responses; the last one repeats."""
        state = {"i": 0}
        lock = threading.Lock()

        def handler(_request: Request) -> Response:
            with lock:
                i = min(state["i"], len(responses) - 1)
                state["i"] += 1
            return responses[i]

        self.route(path, handler)

    def add_hang(self, path: str, seconds: float = 60.0) -> None:
        """Accept the request and never answer (until ``seconds`` pass or the server stops)."""

        def handler(_request: Request) -> Response:
            self._stopping.wait(seconds)
            return Response(503, b"", None)

        self.route(path, handler)

    def add_large(self, path: str, size: int, *, send_length: bool = True, chunk: int = 64 * 1024) -> None:
        """Serve ``size`` bytes of JPEG-looking data, streamed, with or without Content-Length."""

        def body() -> Iterator[bytes]:
            sent = 0
            block = b"\xff\xd8\xff\xe0" + b"\0" * (chunk - 4)
            while sent < size:
                piece = block[: min(chunk, size - sent)]
                sent += len(piece)
                yield piece

        def handler(_request: Request) -> Response:
            headers = {"Content-Length": str(size)} if send_length else {}
            return Response(200, body(), "image/jpeg", headers, chunked=False)

        self.route(path, handler)

    # -- inspection ------------------------------------------------------------------------------------

    def count(self, path: str | None = None, method: str | None = None) -> int:
        """How many requests arrived (for ``path`` and ``method``, when given)."""
        return len(self.requests_to(path, method))

    def requests_to(self, path: str | None = None, method: str | None = None) -> list[Request]:
        """The recorded requests (for ``path`` and ``method``, when given), oldest first."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (path is None or r.path == path) and (method is None or r.method == method.upper())
            ]

    def reset(self) -> None:
        """Forget recorded requests and errors (routes stay)."""
        with self._lock:
            self.requests.clear()
            self.errors.clear()

    # -- serving ---------------------------------------------------------------------------------------

    def _find(self, path: str, method: str) -> tuple[_Route | None, bool]:
        """The route for ``path``/``method``, and whether some route matched the path at all."""
        with self._lock:
            routes = list(self._routes)
        path_matched = False
        for route in routes:
            if path == route.path or (route.prefix and path.startswith(route.path)):
                path_matched = True
                if route.methods is None or method in route.methods:
                    return route, True
        return None, path_matched

    def _make_handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self._read_body(),
                    time=time.monotonic(),
                )
                with server._lock:
                    server.requests.append(request)
                route, path_matched = server._find(request.path, request.method)
                if route is None:
                    response = Response(405 if path_matched else 404, b"", "text/plain")
                else:
                    try:
                        response = _as_response(route.handler(request))
                    except Exception as exc:  # surfaced to the test through server.errors
                        server.errors.append(exc)
                        response = Response(500, repr(exc).encode(), "text/plain")
                try:
                    self._send(response)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (byte cap, timeout): fine

            def _send(self, response: Response) -> None:
                if response.delay:
                    server._stopping.wait(response.delay)
                self.send_response(response.status)
                headers = dict(response.headers)
                if response.content_type is not None and "Content-Type" not in headers:
                    headers["Content-Type"] = response.content_type
                body = response.body
                no_body = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
                if isinstance(body, (bytes, bytearray)):
                    if response.send_length:
                        headers.setdefault("Content-Length", str(len(body)))
                    else:
                        headers["Connection"] = "close"
                        self.close_connection = True
                    chunks: Iterable[bytes] = [bytes(body)]
                else:
                    if response.chunked:
                        headers["Transfer-Encoding"] = "chunked"
                    elif "Content-Length" not in headers:
                        headers["Connection"] = "close"
                        self.close_connection = True
                    chunks = body
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if no_body:
                    return
                for chunk in chunks:
                    if response.chunk_delay:
                        if server._stopping.wait(response.chunk_delay):
                            self.close_connection = True
                            return
                    if response.chunked and not isinstance(body, (bytes, bytearray)):
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    else:
                        self.wfile.write(chunk)
                if response.chunked and not isinstance(body, (bytes, bytearray)):
                    self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        return _Handler


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """A started :class:`LocalHTTPServer`, stopped after the test."""
    with LocalHTTPServer() as server:
        yield server
