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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx

from crawler.errors import (
    BlockedAddressError,
    BodyTooLargeError,
    FetchError,
    FetchTimeoutError,
    HTTPStatusError,
)


class _Blocked(Exception):
    """Raised below httpx, where the source is not known; the fetcher names it."""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


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
            raise _Blocked(f"{host} resolves to {', '.join(blocked) or 'nothing'}, a "
                           "loopback, private or link-local address; set "
                           "allow_private_networks: true to allow it")
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
    return httpx.AsyncClient(transport=transport, follow_redirects=True, max_redirects=5,
                             trust_env=False)


@dataclass(frozen=True, slots=True)
class Response:
    """What a fetch brought back; ``body`` is empty for a 304."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def not_modified(self) -> bool:
        return self.status == 304


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
    #: False: a 3xx answer is returned as it is (its ``location`` header says where next).
    follow_redirects: bool = True


async def fetch(client: httpx.AsyncClient, request: Request) -> Response:
    """GET ``request.url`` within its deadline; raises a FetchError naming the source."""
    headers = {"User-Agent": request.user_agent, "Accept": request.accept}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    try:
        async with asyncio.timeout(request.timeout):
            return await _get(client, request, headers)
    except TimeoutError as exc:
        raise FetchTimeoutError(request.source, f"no complete answer from {request.url} "
                                f"within {request.timeout:g}s") from exc
    except httpx.TimeoutException as exc:
        raise FetchTimeoutError(request.source, f"timed out on {request.url}: "
                                f"{type(exc).__name__}") from exc
    except _Blocked as exc:
        raise BlockedAddressError(request.source, f"refused {request.url}: {exc}") from exc
    except httpx.TooManyRedirects as exc:
        raise FetchError(request.source, f"redirect loop or more than 5 redirects from "
                         f"{request.url}") from exc
    except httpx.ConnectError as exc:
        raise FetchError(request.source, f"cannot connect to {request.url}: "
                         f"{exc or type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(request.source, f"{type(exc).__name__} on {request.url}: "
                         f"{exc}") from exc


async def _get(client: httpx.AsyncClient, request: Request,
               headers: dict[str, str]) -> Response:
    timeout = httpx.Timeout(request.timeout)
    async with client.stream("GET", request.url, headers=headers, timeout=timeout,
                             follow_redirects=request.follow_redirects) as answer:
        final_url = str(answer.url)
        answer_headers = {k.lower(): v for k, v in answer.headers.items()}
        if answer.status_code == 304 or (answer.is_redirect and not request.follow_redirects):
            return Response(final_url, answer.status_code, answer_headers, b"")
        if not 200 <= answer.status_code < 300:
            raise HTTPStatusError(request.source, answer.status_code, final_url,
                                  retry_after=retry_after(answer.headers.get("retry-after")))
        declared = answer.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > request.max_bytes:
            raise _too_large(request, final_url)
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.aiter_bytes():
            size += len(chunk)
            if size > request.max_bytes:
                raise _too_large(request, final_url)
            chunks.append(chunk)
        return Response(final_url, answer.status_code, answer_headers, b"".join(chunks))


def _too_large(request: Request, url: str) -> BodyTooLargeError:
    return BodyTooLargeError(request.source, f"body of {url} is larger than the "
                             f"{request.max_bytes} byte cap (max_bytes)")


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
