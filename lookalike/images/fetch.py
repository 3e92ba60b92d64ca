"""Fetching image bytes over HTTP: timeouts, retries with backoff, a byte cap, bounded redirects.

With the SSRF guard on, connections are opened by :class:`GuardedNetwork`: it resolves the host once,
vets every address and connects to a vetted one, so a name that re-resolves to a private address
between the check and the connection (DNS rebinding) gets no request at all. TLS still verifies the
certificate against the URL's host name (SNI and the Host header are unchanged).
"""

from __future__ import annotations

import email.utils
import ipaddress
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from lookalike.errors import ConfigurationError, describe_item
from lookalike.images.guard import (
    AddressRefused,
    Resolver,
    check_url_allowed,
    is_public_address,
    resolve_host,
)
from lookalike.images.refs import ImageSourceError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "AddressRefused",
    "GuardedNetwork",
    "HttpFetcher",
    "default_fetcher",
    "sniff_html",
]

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Responses that are certainly not pictures; refused before reading their body.
_NOT_IMAGE_TYPES = ("text/html", "application/xhtml+xml", "application/json")


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("lookalike")
    except (ImportError, PackageNotFoundError):
        return "0"


DEFAULT_USER_AGENT = f"lookalike/{_version()} (+image search)"


def sniff_html(head: bytes) -> bool:
    """True when bytes start like an HTML page (error pages served with an image content type)."""
    text = head[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<meta"))


def _is_unknown_host(exc: BaseException) -> bool:
    """True when a connect error comes from DNS saying the name does not exist."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return current.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
        current = current.__cause__ or current.__context__
    return False


class GuardedNetwork(httpcore.NetworkBackend):
    """An httpcore network backend that connects only to addresses it has just vetted.

    ``connect_tcp`` resolves the host with ``resolve`` (the system resolver by default), and with
    ``guard`` refuses (:class:`AddressRefused`) when any address is not public, unless the host is one
    of ``allowed_hosts``. It then connects to those very addresses, in order: the address vetted is
    the address used, and nothing is sent anywhere else. TLS is layered on the returned stream by
    httpcore with the URL's host name, so certificates are verified as usual.
    """

    def __init__(
        self,
        *,
        resolve: Resolver | None = None,
        guard: bool = True,
        allowed_hosts: Collection[str] = (),
    ) -> None:
        self._resolve = resolve or resolve_host
        self._guard = guard
        self._allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self._inner = httpcore.SyncBackend()

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host`` (vetted when guarding)."""
        try:
            addresses = [str(ipaddress.ip_address(host.strip("[]")))]  # a literal is judged as written
        except ValueError:
            try:
                addresses = list(self._resolve(host, port))
            except (OSError, UnicodeError) as exc:
                raise httpcore.ConnectError(f"cannot resolve host {host!r}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"host {host!r} resolves to no address")
        if self._guard and host.lower() not in self._allowed_hosts:
            blocked = [a for a in addresses if not is_public_address(a)]
            if blocked:
                raise AddressRefused(
                    f"refused: host {host!r} is a private or local address ({', '.join(blocked)})", item=host
                )
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        """Connect to the first vetted address of ``host`` that answers."""
        error: Exception | None = None
        for address in self.addresses(host, port):
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # try the next address, as the system's connect would
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        """Refused: image URLs are fetched over TCP only."""
        raise httpcore.ConnectError("unix sockets are not used for image URLs")

    def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's retry backoff)."""
        self._inner.sleep(seconds)


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's transport, connecting through a :class:`GuardedNetwork` (httpx has no option for a
    network backend, so its connection pool is replaced by one that has ours)."""

    def __init__(self, network: GuardedNetwork, *, verify: ssl.SSLContext | bool) -> None:
        super().__init__(verify=verify, trust_env=False)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=network,
        )


class _Retry(Exception):
    """A failure worth another attempt; ``error`` is what to raise when attempts run out."""

    def __init__(self, error: ImageSourceError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _megabytes(n: int) -> str:
    return f"{n / 1_000_000:.0f} MB" if n >= 1_000_000 else f"{n} bytes"


class HttpFetcher:
    """Downloads image bytes; one instance (one connection pool) is safe to share across threads.

    ``timeout`` is httpx's connect/read/write/pool timeout; ``deadline`` caps one whole attempt (a server
    that trickles bytes cannot hold a worker forever). Connection errors, timeouts, 429 and 5xx are
    retried ``retries`` times with exponential backoff; a ``Retry-After`` up to ``max_retry_after``
    seconds is honoured, a longer one fails the item at once. Bodies over ``max_bytes`` are refused,
    by Content-Length up front and by counting while streaming. Redirects are followed by hand, at most
    ``max_redirects``, so that with ``allow_private=False`` every hop passes the SSRF guard
    (:mod:`lookalike.images.guard`), and connections go only to the addresses the guard vetted
    (:class:`GuardedNetwork`); ``allowed_hosts`` exempts named trusted hosts from it. ``resolve``
    replaces DNS, for the guard and for connecting (tests). ``verify`` is the TLS verification (an
    :class:`ssl.SSLContext`, or False). ``transport`` replaces the whole transport (then connections
    are only checked after the fact).
    """

    def __init__(
        self,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        deadline: float = 120.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = 5,
        user_agent: str = DEFAULT_USER_AGENT,
        allow_private: bool = True,
        allowed_hosts: Collection[str] = (),
        resolve: Resolver | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 0 or max_bytes <= 0 or max_redirects < 0:
            raise ValueError("retries and max_redirects must be >= 0 and max_bytes > 0")
        self.deadline = deadline
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self.allow_private = allow_private
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self._resolve = resolve
        self._sleep = sleep
        if transport is None and (not allow_private or resolve is not None):
            network = GuardedNetwork(resolve=resolve, guard=not allow_private, allowed_hosts=allowed_hosts)
            transport = _PinnedTransport(network, verify=verify)
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
            verify=verify,
            headers={"User-Agent": user_agent, "Accept": "image/*,*/*;q=0.8"},
            # A proxy from the environment would make every peer address the proxy's: the SSRF guard
            # needs direct connections.
            trust_env=allow_private,
        )

    def __enter__(self) -> HttpFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def fetch(self, url: str) -> bytes:
        """The body of ``url``; raises :class:`ImageSourceError` naming the URL on any failure."""
        if self._client.is_closed:
            raise ConfigurationError("this HttpFetcher is closed")
        attempt = 0
        while True:
            try:
                return self._fetch_once(url)
            except _Retry as retry:
                if attempt >= self.retries:
                    raise retry.error from retry.__cause__
                if retry.retry_after is not None:
                    if retry.retry_after > self.max_retry_after:
                        retry.error.add_remark(f"(server asked to retry after {retry.retry_after:.0f} s)")
                        raise retry.error from retry.__cause__
                    delay = retry.retry_after
                else:
                    # full jitter keeps many workers hitting one host from retrying in lockstep
                    delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
                self._sleep(delay)
                attempt += 1

    def _check(self, url: str, original: str, *, first: bool) -> None:
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as exc:  # e.g. "Invalid IPv6 URL"
            raise ImageSourceError(f"malformed URL {url!r}: {exc}", subject=original) from exc
        if scheme not in ("http", "https"):
            raise ImageSourceError(f"cannot follow a redirect to {scheme!r} URL {url}", subject=original)
        if not self.allow_private:
            try:
                check_url_allowed(url, resolve=self._resolve, allowed_hosts=self.allowed_hosts)
            except ImageSourceError as exc:
                error_type = AddressRefused if isinstance(exc, AddressRefused) else ImageSourceError
                if first:
                    raise error_type(exc.detail, subject=exc.subject, item=original) from exc
                # a redirect hop is named as part of the URL the caller gave
                raise error_type(f"redirect to {url}: {exc.detail}", subject=original) from exc

    def _check_peer(self, response: httpx.Response, url: str, original: str) -> None:
        """Refuse a connection that landed on a private address: a second line behind
        :class:`GuardedNetwork`, and the only one with a caller's own ``transport``."""
        if self.allow_private or (urlsplit(url).hostname or "").lower() in self.allowed_hosts:
            return
        stream: Any = response.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        if peer and not is_public_address(str(peer[0])):
            raise AddressRefused(f"refused: connected to private address {peer[0]}", subject=original)

    def _fetch_once(self, start: str) -> bytes:
        original = describe_item(start)  # long URLs are shortened in messages
        url = start
        seen = {url}
        started = time.monotonic()
        for _hop in range(self.max_redirects + 1):
            self._check(url, original, first=url == start)
            try:
                with self._client.stream("GET", url) as response:
                    self._check_peer(response, url, original)
                    status = response.status_code
                    if status in _REDIRECT_STATUSES and "location" in response.headers:
                        try:
                            url = urljoin(url, response.headers["location"])
                        except ValueError as exc:
                            raise ImageSourceError("malformed redirect", subject=original) from exc
                        if url in seen:
                            raise ImageSourceError(f"redirect loop (back to {url})", subject=original)
                        seen.add(url)
                        continue
                    return self._read_body(response, original, started)
            except AddressRefused as exc:
                if exc.subject is not None:
                    raise  # the peer check's: it names the URL already
                # GuardedNetwork's refusal names the host only: name the URL the caller gave
                detail = exc.detail if url == start else f"redirect to {url}: {exc.detail}"
                raise AddressRefused(detail, subject=original) from exc
            except httpx.ConnectError as exc:
                if _is_unknown_host(exc):  # a dead domain stays dead: don't retry
                    host = urlsplit(url).hostname
                    raise ImageSourceError(f"cannot resolve host {host!r}", subject=original) from exc
                raise _Retry(ImageSourceError(f"connection failed: {exc}", subject=original)) from exc
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
                detail = f": {exc}" if str(exc) else ""
                raise _Retry(ImageSourceError(f"{kind}{detail}", subject=original)) from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # bad URL, too many headers, decoding...
                raise ImageSourceError(f"download failed: {exc}", subject=original) from exc
        raise ImageSourceError(f"too many redirects (more than {self.max_redirects})", subject=original)

    def _read_body(self, response: httpx.Response, original: str, started: float) -> bytes:
        status = response.status_code
        if status >= 400 or status < 200 or status == 204:
            error = ImageSourceError(
                f"server answered {status} {response.reason_phrase}".rstrip(), subject=original
            )
            if status in _RETRY_STATUSES:
                raise _Retry(error, _parse_retry_after(response.headers.get("retry-after")))
            raise error
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type.startswith(_NOT_IMAGE_TYPES):
            raise ImageSourceError(f"served as {content_type}: not an image", subject=original)
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            raise ImageSourceError(
                f"too large ({_megabytes(int(length))}; the limit is {_megabytes(self.max_bytes)})",
                subject=original,
            )
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > self.max_bytes:
                raise ImageSourceError(
                    f"too large (over the {_megabytes(self.max_bytes)} limit)", subject=original
                )
            if time.monotonic() - started > self.deadline:
                raise _Retry(
                    ImageSourceError(f"download took longer than {self.deadline:g} s", subject=original)
                )
            chunks.append(chunk)
        body = b"".join(chunks)
        if sniff_html(body):
            raise ImageSourceError(
                f"served as {content_type or 'no content type'} but the body is an HTML page, not an image",
                subject=original,
            )
        return body


_default: HttpFetcher | None = None
_default_lock = threading.Lock()


def default_fetcher() -> HttpFetcher:
    """The shared fetcher used when none is passed (created on first use, default settings)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = HttpFetcher()
        return _default
