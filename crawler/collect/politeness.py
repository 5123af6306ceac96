"""How newswatch treats other people's servers, in one place for every fetch it makes.

The httpx page fetcher (``crawler/collect/pages.py``) and the Scrapy crawls
(``crawler/collect/crawl.py``) both go through one :class:`Politeness` per process: one
request at a time per host, a delay between two requests to a host, a pause while a
host's ``Retry-After`` lasts, and robots.txt read with protego (Scrapy's default parser
too). A crawl holds its hosts for as long as it runs, so the page fetcher never hits
them at the same time; the crawl reports the ``Retry-After`` answers it met, and they
apply to later page fetches.

Given :class:`HostTurns` (the daemon gives the database's, ``crawler/app/hostturns.py``),
the turns are shared by every daemon on the database: a host's turn is taken there too,
held while the request (or the whole crawl) runs, renewed every third of its hold, and
freed with the delay after, and a ``Retry-After`` is written there, so N daemons never fetch
from one host faster than one would. The asyncio lock per host stays, so only one
coroutine per process asks the database for a host. A turn further off than
``MAX_WAIT_S`` (a long ``Retry-After``) is not waited for: the request is not made
(``HostDeferredError``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from protego import Protego

from crawler.collect import fetch
from crawler.core.errors import FetchError, HostDeferredError, HTTPStatusError

log = logging.getLogger(__name__)

ROBOTS_TTL_S = 3600.0
ROBOTS_MAX_BYTES = 512 * 1024
#: A Retry-After longer than this is not waited for within a run: the host is skipped.
MAX_WAIT_S = 120.0
#: robots.txt ``Crawl-delay`` is kept up to this; a larger (or infinite) one would stop
#: every fetch from the host, its first included.
MAX_CRAWL_DELAY_S = 60.0
#: A turn taken in the shared turns lasts this long unless renewed, and is renewed every
#: third of it while its request or crawl runs: a daemon that dies holding a host
#: (SIGKILL, a lost machine) keeps the others from it for at most that. The daemon gives
#: its ``daemon.lease`` instead, so a host is taken over with the rest of its work.
HOLD_S = 60.0
#: How often a host another daemon holds is asked for again (it frees it when done).
HELD_RETRY_S = 0.25
#: The longest a request waits for its turn while other daemons hold its host: longer
#: than a crawl's budget (10 minutes by default), so only a stuck holder reaches it.
MAX_HELD_WAIT_S = 3600.0


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True, slots=True)
class Busy:
    """Why the shared turns did not give a host: ``wait`` seconds until its next turn may
    start (its delay, Crawl-delay or Retry-After), and whether another daemon holds it
    now (``held``: its request or crawl runs, and it frees the host when done)."""

    wait: float
    held: bool = False


class HostTurns(Protocol):
    """Turns at hosts that several daemons share (every time is the implementation's
    clock: across machines, clocks kept in step by NTP). Hosts are ``host_of`` keys;
    times are seconds from now."""

    async def take(self, host: str, hold: float) -> Busy | None:
        """Hold ``host`` for ``hold`` seconds (None), or why not."""

    async def renew(self, hosts: Sequence[str], hold: float) -> None:
        """Hold ``hosts`` (held already) ``hold`` seconds more."""

    async def free(self, host: str, delay: float) -> None:
        """The request or crawl at ``host`` ended: the next starts ``delay`` later."""

    async def defer(self, host: str, seconds: float) -> None:
        """No request to ``host`` before ``seconds`` from now (Retry-After)."""


@dataclass
class _Host:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    robots_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    not_before: float = 0.0
    robots: Protego | None = None
    robots_error: str | None = None
    robots_until: float = 0.0


class Politeness:
    """Per-host state shared by every fetch of one process, and through ``turns`` (when
    given) by every daemon, each turn there held ``hold`` seconds at a time. Times here
    are monotonic."""

    def __init__(self, turns: HostTurns | None = None, hold: float = HOLD_S) -> None:
        self._hosts: dict[str, _Host] = {}
        self._turns = turns
        self._hold = hold

    def _host(self, url: str) -> _Host:
        return self._hosts.setdefault(host_of(url), _Host())

    @asynccontextmanager
    async def turn(self, url: str, delay: float, source: str = "") -> AsyncIterator[None]:
        """Wait for this host's turn (no other request to it, its delay and any Retry-After
        over), then hold it while the caller makes one request (or runs a crawl).

        HostDeferredError (for ``source``) instead when the turn is more than
        ``MAX_WAIT_S`` away."""
        key = host_of(url)
        host = self._host(url)
        async with host.lock:
            wait = host.not_before - time.monotonic()
            if wait > MAX_WAIT_S:
                raise HostDeferredError(source, f"{key} asked to wait {wait:.0f}s more "
                                        "(Retry-After); not fetched now")
            if wait > 0:
                await asyncio.sleep(wait)
            renewing = None
            if self._turns is not None:
                await self._take(key, source)
                renewing = asyncio.create_task(self._renew(key))
            try:
                yield
            finally:
                host.not_before = max(host.not_before, time.monotonic() + delay)
                if renewing is not None:
                    renewing.cancel()
                    await self._free(key, delay)

    async def _take(self, key: str, source: str) -> None:
        """Wait (bounded) until the shared turns give this process ``key``."""
        assert self._turns is not None
        deadline = time.monotonic() + MAX_HELD_WAIT_S
        while (busy := await self._turns.take(key, self._hold)) is not None:
            if busy.wait > MAX_WAIT_S:
                raise HostDeferredError(source, f"{key} asked to wait {busy.wait:.0f}s "
                                        "more (Retry-After); not fetched now")
            if time.monotonic() >= deadline:
                raise HostDeferredError(source, f"{key} held by another daemon for more "
                                        f"than {MAX_HELD_WAIT_S:g}s; not fetched now")
            await asyncio.sleep(max(busy.wait, HELD_RETRY_S) if busy.held else busy.wait)

    async def _renew(self, key: str) -> None:
        """Renew this process's hold on ``key`` every third of it until cancelled."""
        assert self._turns is not None
        while True:
            await asyncio.sleep(self._hold / 3)
            try:
                await self._turns.renew([key], self._hold)
            except Exception as exc:  # the hold lapses at worst; the request goes on
                log.warning("cannot renew the turn at %s: %s", key, exc)

    async def _free(self, key: str, delay: float) -> None:
        """Give ``key`` back with its delay; a failure leaves the hold to lapse."""
        assert self._turns is not None
        try:
            await asyncio.shield(self._turns.free(key, delay))
        except Exception as exc:
            log.warning("cannot free the turn at %s (it lapses within %gs): %s", key,
                        self._hold, exc)

    @asynccontextmanager
    async def hold(self, urls: Iterable[str], delay: float,
                   source: str = "") -> AsyncIterator[None]:
        """Hold several hosts at once (a crawl), in a fixed order so holders never deadlock."""
        async with AsyncExitStack() as stack:
            for host in sorted({host_of(u) for u in urls}):
                await stack.enter_async_context(self.turn(host + "/", delay, source))
            yield

    async def retry_after(self, url: str, seconds: float) -> None:
        """The host asked for a pause: no request to it before ``seconds`` from now (by
        any daemon, with shared turns)."""
        host = self._host(url)
        host.not_before = max(host.not_before, time.monotonic() + seconds)
        if self._turns is not None:
            try:
                await self._turns.defer(host_of(url), seconds)
            except Exception as exc:  # this process still waits for it
                log.warning("cannot share the Retry-After of %s: %s", host_of(url), exc)

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
                    async with self.turn(robots_url, 0.0, source):
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
