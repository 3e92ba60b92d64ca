"""A server-side request forgery (SSRF) guard for URLs that users hand to a server.

A web server that fetches user-supplied image URLs must not be turned into a proxy for the machine's
own network: loopback services, the cloud metadata endpoint (169.254.169.254), private subnets.
:func:`check_url_allowed` resolves the host and refuses the URL when *any* address it resolves to is
not a public unicast address. :class:`~lookalike.images.fetch.HttpFetcher` calls it on the first URL
and on every redirect hop, and checks the address it really connected to as well.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection
from urllib.parse import urlsplit

from lookalike.images.refs import ImageSourceError

__all__ = ["AddressRefused", "Resolver", "check_url_allowed", "is_public_address", "resolve_host"]

Resolver = Callable[[str, int], list[str]]
"""Turns ``(host, port)`` into the IP address strings it resolves to."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# 100.64.0.0/10 (carrier-grade NAT) is shared address space, not globally routable, and Python's
# is_private does not cover it in every version: refuse it explicitly.
_EXTRA_BLOCKED = (ipaddress.ip_network("100.64.0.0/10"),)


class AddressRefused(ImageSourceError):
    """The guard refused a URL (or a connection) because its host is a private or local address."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6), via the system resolver."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def is_public_address(address: str | IPAddress) -> bool:
    """True for a globally routable unicast address; False for loopback, private, link-local & co."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and friends reach IPv4 hosts: judge the IPv4 address inside.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return is_public_address(embedded)
        if ip.teredo is not None:
            return False
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or ip.is_reserved
        or not ip.is_global
    ):
        return False
    return not any(ip in net for net in _EXTRA_BLOCKED if ip.version == net.version)


def check_url_allowed(
    url: str,
    *,
    resolve: Resolver | None = None,
    allowed_hosts: Collection[str] = (),
) -> None:
    """Raise :class:`ImageSourceError` unless ``url`` is http(s) and its host is public.

    A private or local host raises :class:`AddressRefused`. ``resolve`` replaces the system resolver (tests use it to stand in for DNS). Hosts named in
    ``allowed_hosts`` (exact, case-insensitive) skip the address check: an explicit opt-in for a trusted
    internal image server. Everything else must resolve only to public addresses.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ImageSourceError("only http and https URLs can be fetched", subject=url)
    host = parts.hostname
    if not host:
        raise ImageSourceError("URL has no host", subject=url)
    if host.lower() in {h.lower() for h in allowed_hosts}:
        return
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise ImageSourceError("bad port in URL", subject=url) from exc
    try:
        addresses = [str(ipaddress.ip_address(host))]  # a literal address is judged as written
    except ValueError:
        try:
            addresses = (resolve or resolve_host)(host, port)
        except (OSError, UnicodeError) as exc:
            raise ImageSourceError(f"cannot resolve host {host!r}", subject=url) from exc
    if not addresses:
        raise ImageSourceError(f"host {host!r} resolves to no address", subject=url)
    blocked = [a for a in addresses if not is_public_address(a)]
    if blocked:
        raise AddressRefused(
            f"refused: host {host!r} is a private or local address ({', '.join(blocked)})", subject=url
        )
