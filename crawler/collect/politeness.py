"""How newswatch treats other people's servers, in one place for every fetch it makes.

The httpx page fetcher (``crawler/collect/pages.py``) and the Scrapy crawls
(``crawler/collect/crawl.py``) both go through one :class:`Politeness` per process: one
request at a time per host, a delay between two requests to a host, a pause while a
host's ``Retry-After`` lasts, and robots.txt read with protego (Scrapy's default parser
too). A crawl holds its hosts for as long as it runs, so the page fetcher never hits
them at the same time; the crawl reports the ``Retry-After`` answers it met, and they
apply to later page fetches.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from protego import Protego

from crawler.collect import fetch
from crawler.core.errors import FetchError, HTTPStatusError

ROBOTS_TTL_S = 3600.0
ROBOTS_MAX_BYTES = 512 * 1024
#: A Retry-After longer than this is not waited for within a run: the host is skipped.
MAX_WAIT_S = 120.0
#: robots.txt ``Crawl-delay`` is kept up to this; a larger (or infinite) one would stop
#: every fetch from the host, its first included.
MAX_CRAWL_DELAY_S = 60.0


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass
class _Host:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    robots_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    not_before: float = 0.0
    robots: Protego | None = None
    robots_error: str | None = None
    robots_until: float = 0.0


class Politeness:
    """Per-host state shared by every fetch of one process. Times are monotonic."""

    def __init__(self) -> None:
        self._hosts: dict[str, _Host] = {}

    def _host(self, url: str) -> _Host:
        return self._hosts.setdefault(host_of(url), _Host())

    @asynccontextmanager
    async def turn(self, url: str, delay: float) -> AsyncIterator[None]:
        """Wait for this host's turn (no other request to it, its delay and any Retry-After
        over), then hold it while the caller makes one request."""
        host = self._host(url)
        async with host.lock:
            wait = host.not_before - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                host.not_before = max(host.not_before, time.monotonic() + delay)

    @asynccontextmanager
    async def hold(self, urls: Iterable[str], delay: float) -> AsyncIterator[None]:
        """Hold several hosts at once (a crawl), in a fixed order so holders never deadlock."""
        async with AsyncExitStack() as stack:
            for host in sorted({host_of(u) for u in urls}):
                await stack.enter_async_context(self.turn(host + "/", delay))
            yield

    def retry_after(self, url: str, seconds: float) -> None:
        """The host asked for a pause: no request to it before ``seconds`` from now."""
        host = self._host(url)
        host.not_before = max(host.not_before, time.monotonic() + seconds)

    async def allowed(self, client: httpx.AsyncClient, source: str, url: str,
                      user_agent: str, timeout: float) -> str | None:
        """None when robots.txt lets ``user_agent`` fetch ``url``, else the reason not to.

        A missing robots.txt (4xx) allows everything; one that cannot be read (5xx, network
        errors) allows nothing until it can, as RFC 9309 asks.
        """
        host = self._host(url)
        async with host.robots_lock:  # one fetch of robots.txt per host at a time
            if time.monotonic() >= host.robots_until:
                robots_url = host_of(url) + "/robots.txt"
                host.robots, host.robots_error = None, None
                try:
                    async with self.turn(robots_url, 0.0):
                        answer = await fetch.fetch(client, fetch.Request(
                            source, robots_url, timeout, user_agent, ROBOTS_MAX_BYTES,
                            accept="text/plain, */*;q=0.5"))
                    host.robots = Protego.parse(answer.body.decode("utf-8", "replace"))
                except HTTPStatusError as exc:
                    if 400 <= exc.status < 500 and exc.status != 429:
                        host.robots = Protego.parse("")
                    else:
                        host.robots_error = f"robots.txt unreadable ({exc.message})"
                except FetchError as exc:
                    host.robots_error = f"robots.txt unreadable ({exc.message})"
                host.robots_until = time.monotonic() + (ROBOTS_TTL_S if host.robots else 60.0)
        if host.robots is None:
            return host.robots_error or "robots.txt unreadable"
        if not host.robots.can_fetch(url, user_agent):
            return "robots.txt disallows it"
        return None

    def crawl_delay(self, url: str, user_agent: str) -> float | None:
        """The host's robots.txt ``Crawl-delay`` for us (at most ``MAX_CRAWL_DELAY_S``),
        once robots.txt was read."""
        host = self._host(url)
        asked = host.robots.crawl_delay(user_agent) if host.robots else None
        if asked is None:
            return None
        return min(asked, MAX_CRAWL_DELAY_S) if math.isfinite(asked) else MAX_CRAWL_DELAY_S
