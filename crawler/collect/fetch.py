"""One HTTP fetcher for everything newswatch collects.

Per request: connect/read timeouts and a total deadline, a body cap, the User-Agent,
conditional GET, and the ``allow_private_networks`` rule checked on every address a
connection is about to use (so a redirect or a DNS answer cannot reach the LAN).
The transport is injectable; tests use a real one against 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from crawler.collect.decompress import ACCEPT_ENCODING, DecodeError, decoder
from crawler.collect.headers import parse_retry_after
from crawler.core.errors import (
    BlockedAddressError,
    BodyTooLargeError,
    FetchError,
    FetchTimeoutError,
    GoneError,
    HTTPStatusError,
    RedirectError,
)


class _Blocked(Exception):
    """Raised below httpx, where the source is not known; the fetcher names it."""


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries, if any: IPv4-mapped, NAT64 (64:ff9b::/96),
    6to4 (2002::/16) or IPv4-compatible (::a.b.c.d). Traffic to it may well reach that
    IPv4 address, so that is the one to judge."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        ip = _embedded_ipv4(ip) or ip
    return ip.is_global and not ip.is_multicast


def refusal(host: str, blocked: Sequence[str]) -> str:
    """Why ``host`` is not fetched, given the addresses it resolved to that are refused."""
    return (f"{host} resolves to {', '.join(blocked) or 'nothing'}, a loopback, private or "
            "link-local address; set allow_private_networks: true to allow it")


def url_problem(url: str) -> str | None:
    """Why the fetcher cannot take ``url``, or None. urllib refuses ``http://[::1`` and
    ports past 65535; httpx refuses hosts such as ``0177.0.0.2``, and takes a port past
    65535 that the socket then refuses with an OverflowError from deep in a task group."""
    try:
        urlsplit(url).port  # noqa: B018  (raises on a port out of range)
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        return str(exc) or type(exc).__name__
    return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host itself and connects only to addresses ``allowed`` accepts."""

    def __init__(self, allowed: Callable[[str], bool] = is_public_address) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allowed = allowed

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = [str(info[4][0]) for info in infos]
        blocked = [a for a in addresses if not self._allowed(a)]
        if blocked or not addresses:
            raise _Blocked(refusal(host, blocked))
        return await self._inner.connect_tcp(addresses[0], port, timeout=timeout,
                                             local_address=local_address,
                                             socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, connecting through a :class:`GuardedBackend`."""

    def __init__(self, allowed: Callable[[str], bool] = is_public_address) -> None:
        super().__init__()
        # httpx builds its pool without a way to pass a network backend; rebuild it with one.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), max_connections=100,
            max_keepalive_connections=20, keepalive_expiry=5.0,
            network_backend=GuardedBackend(allowed))


def make_client(*, allow_private_networks: bool,
                transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The collection client; ``transport`` replaces the network (and the address rule)."""
    if transport is None:
        transport = (httpx.AsyncHTTPTransport() if allow_private_networks
                     else GuardedTransport())
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)


MAX_REDIRECTS = 5
#: The most of an unwanted body (a redirect's, an error page's) read to keep its
#: connection for the next request.
DRAIN_BYTES = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})


@dataclass(frozen=True, slots=True)
class Response:
    """What a fetch brought back; ``body`` is empty for a 304.

    ``redirects`` lists each hop as (status, target URL), so the caller can tell a
    permanent move (every hop 301/308) from a temporary one.
    """

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    redirects: tuple[tuple[int, str], ...] = ()

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def moved_permanently_to(self) -> str | None:
        """The final URL when every redirect on the way was permanent."""
        if self.redirects and all(s in PERMANENT_REDIRECTS for s, _ in self.redirects):
            return self.url
        return None


FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, "
               "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


@dataclass(frozen=True, slots=True)
class Request:
    """One fetch, as the pipeline asks for it."""

    source: str
    url: str
    timeout: float
    user_agent: str
    max_bytes: int
    etag: str | None = None
    last_modified: str | None = None
    accept: str = FEED_ACCEPT
    #: False: a 3xx answer is returned as it is (its ``location`` header says where next),
    #: so the caller can check each hop (robots.txt) before following it.
    follow_redirects: bool = True


async def fetch(client: httpx.AsyncClient, request: Request) -> Response:
    """GET ``request.url`` within its deadline; raises a FetchError naming the source.

    The deadline covers every redirect hop and the whole body, so a server trickling
    one byte a second is cut off. Bodies are decompressed here with bounded output.
    """
    headers = {"User-Agent": request.user_agent, "Accept-Encoding": ACCEPT_ENCODING,
               "Accept": request.accept}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    try:
        async with asyncio.timeout(request.timeout):
            return await _follow(client, request, headers)
    except TimeoutError as exc:
        raise FetchTimeoutError(request.source, f"no complete answer from {request.url} "
                                f"within {request.timeout:g}s") from exc
    except httpx.TimeoutException as exc:
        raise FetchTimeoutError(request.source, f"timed out on {request.url}: "
                                f"{type(exc).__name__}") from exc
    except _Blocked as exc:
        raise BlockedAddressError(request.source, f"refused {request.url}: {exc}") from exc
    except httpx.ConnectError as exc:
        raise FetchError(request.source, f"cannot connect to {request.url}: "
                         f"{exc or type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(request.source, f"{type(exc).__name__} on {request.url}: "
                         f"{exc}") from exc


async def _follow(client: httpx.AsyncClient, request: Request,
                  headers: dict[str, str]) -> Response:
    url = request.url
    hops: list[tuple[int, str]] = []
    timeout = httpx.Timeout(request.timeout)
    while True:
        problem = url_problem(url)
        if problem:  # a link, or a redirect's location, that no request can be made to
            raise FetchError(request.source, f"cannot fetch {url}: {problem}")
        async with client.stream("GET", url, headers=headers, timeout=timeout,
                                 follow_redirects=False) as answer:
            status = answer.status_code
            answer_headers = {k.lower(): v for k, v in answer.headers.items()}
            location = answer.headers.get("location")
            if status in REDIRECT_STATUSES and location and not request.follow_redirects:
                await _drain(answer)
                return Response(url, status, answer_headers, b"", tuple(hops))
            if status in REDIRECT_STATUSES and location:
                target = urljoin(url, location)
                if target == request.url or any(target == h for _, h in hops):
                    raise RedirectError(request.source, f"redirect loop: {url} → {target}")
                if len(hops) == MAX_REDIRECTS:
                    raise RedirectError(request.source, f"more than {MAX_REDIRECTS} "
                                        f"redirects from {request.url}")
                hops.append((status, target))
                await _drain(answer)
                url = target
                continue
            if status == 304:
                await _drain(answer)
                return Response(url, 304, answer_headers, b"", tuple(hops))
            if not 200 <= status < 300:
                await _drain(answer)
                error = GoneError if status == 410 else HTTPStatusError
                raise error(request.source, status, url, parse_retry_after(
                    answer.headers.get("retry-after"), datetime.now(UTC)))
            body = await _read_bounded(answer, request, url)
            return Response(url, status, answer_headers, body, tuple(hops))


async def _drain(answer: httpx.Response) -> None:
    """Read the rest of an answer whose body is not wanted (a 304's is empty, a redirect's
    or an error page's small) so that its connection goes back to the pool: one left
    unread is closed, and the source's next poll, a conditional GET answered 304 most of
    the time, would pay a new connection. A body past ``DRAIN_BYTES`` is left unread
    (its connection closed) rather than downloaded for nothing."""
    read = 0
    async for raw in answer.aiter_raw():
        read += len(raw)
        if read > DRAIN_BYTES:
            return


async def _read_bounded(answer: httpx.Response, request: Request, url: str) -> bytes:
    """The decoded body, refused as soon as it would pass ``max_bytes`` (after decoding)."""
    declared = answer.headers.get("content-length", "")
    encoded = answer.headers.get("content-encoding")
    if not encoded and declared.isdigit() and int(declared) > request.max_bytes:
        raise _too_large(request, url)
    try:
        decode = decoder(encoded)
        chunks: list[bytes] = []
        size = 0
        async for raw in answer.aiter_raw():
            for piece in decode.feed(raw, request.max_bytes - size):
                size += len(piece)
                if size > request.max_bytes:
                    raise _too_large(request, url)
                chunks.append(piece)
    except DecodeError as exc:
        raise FetchError(request.source, f"{url}: {exc}") from exc
    return b"".join(chunks)


def _too_large(request: Request, url: str) -> BodyTooLargeError:
    return BodyTooLargeError(request.source, f"body of {url} is larger than the "
                             f"{request.max_bytes} byte cap after decompression "
                             "(max_bytes)")
