"""Politeness shared across daemons: two ``Politeness`` (two daemons, two owners, each
with its own database handle) over one database, fetching from one local host. The
server's own request log says what the host saw."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from crawler.app.hostturns import StoreTurns
from crawler.collect import politeness as polite
from crawler.collect.fetch import make_client
from crawler.collect.politeness import Politeness
from crawler.collect.source import fetch_feed_body
from crawler.config import Source
from crawler.core.clock import SystemClock
from crawler.core.errors import HostDeferredError, HTTPStatusError
from crawler.store import PostgresStore, SQLiteStore, Store
from crawler.store.threaded import ThreadedStore
from tests.postgres import fresh_database
from tests.servers import Page, Site

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
DELAY = 1.0
FEED = Page(b"<rss version='2.0'><channel><title>t</title></channel></rss>")


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file's path or a PostgreSQL DSN."""
    if request.param == "postgres":
        with fresh_database() as dsn:
            yield dsn
    else:
        yield str(tmp_path / "turns.db")


@contextlib.asynccontextmanager
async def daemons(database: str, count: int = 2,
                  hold: float = polite.HOLD_S) -> AsyncIterator[list[Politeness]]:
    """``count`` politeness states, each a daemon of its own on ``database``, holding a
    host ``hold`` seconds at a time."""
    stores: list[ThreadedStore] = []
    try:
        for _ in range(count):
            opened: Store = (PostgresStore(database) if database.startswith("postgresql:")
                             else SQLiteStore(database))
            stores.append(ThreadedStore(opened))
        yield [Politeness(StoreTurns(db, SystemClock(), f"daemon{n}"), hold)
               for n, db in enumerate(stores)]
    finally:
        for db in stores:
            db.shutdown()
            db.sync.close()


def source(url: str) -> Source:
    return Source("S", url, 600, 10, "newswatch-test", 100_000, delay=DELAY)


async def get(client: httpx.AsyncClient, polite_state: Politeness, url: str) -> None:
    """One request in the host's turn, as every fetch makes it."""
    async with polite_state.turn(url, DELAY, "S"):
        await client.get(url)


def gaps(site: Site) -> list[float]:
    starts = sorted(hit.at for hit in site.hits)
    return [b - a for a, b in itertools.pairwise(starts)]


@pytest.mark.slow
def test_two_daemons_keep_one_hosts_delay_between_them(database: str,
                                                       site: Site) -> None:
    async def main() -> None:
        site.pages["/feed"] = FEED
        async with daemons(database) as (one, two), \
                make_client(allow_private_networks=True) as client:
            await asyncio.gather(*(get(client, p, site.url("/feed"))
                                   for p in (one, two, one, two)))
        assert len(site.hits) == 4
        assert min(gaps(site)) >= DELAY, gaps(site)

    asyncio.run(main())


def test_a_long_retry_after_one_daemon_met_keeps_the_other_off_the_host(
  database: str, site: Site) -> None:
    async def main() -> None:
        site.pages["/feed"] = Page(b"slow down", status=429,
                                   headers={"retry-after": "3600"})
        site.pages["/other"] = FEED
        async with daemons(database) as (one, two), \
                make_client(allow_private_networks=True) as client:
            with pytest.raises(HTTPStatusError):
                await fetch_feed_body(client, one, source(site.url("/feed")), site.url("/feed"))
            with pytest.raises(HostDeferredError, match="Retry-After"):
                await fetch_feed_body(client, two, source(site.url("/other")),
                                      site.url("/other"))
        assert [hit.path for hit in site.hits] == ["/feed"]

    asyncio.run(main())


@pytest.mark.slow
def test_a_short_retry_after_is_waited_for_by_the_other_daemon(database: str,
                                                              site: Site) -> None:
    async def main() -> None:
        site.pages["/feed"] = Page(b"slow down", status=429, headers={"retry-after": "3"})
        site.pages["/other"] = FEED
        async with daemons(database) as (one, two), \
                make_client(allow_private_networks=True) as client:
            with pytest.raises(HTTPStatusError):
                await fetch_feed_body(client, one, source(site.url("/feed")), site.url("/feed"))
            await fetch_feed_body(client, two, source(site.url("/other")), site.url("/other"))
        assert [hit.path for hit in site.hits] == ["/feed", "/other"]
        assert gaps(site)[0] >= 3.0

    asyncio.run(main())


@pytest.mark.slow
def test_a_crawls_hold_keeps_the_other_daemons_pages_off_its_host(
  database: str, site: Site) -> None:
    async def main() -> None:
        # holds of 1 s renewed every third of it: a crawl of 2 s outlives its first hold
        site.pages["/page"] = FEED
        async with daemons(database, hold=1.0) as (crawler, fetcher), \
                make_client(allow_private_networks=True) as client:
            async with crawler.hold([site.url("/")], DELAY, "S"):
                waiting = asyncio.create_task(get(client, fetcher, site.url("/page")))
                await asyncio.sleep(2.0)
                assert not waiting.done() and site.hits == [], "held past its first hold"
                crawl_ended = asyncio.get_running_loop().time()
            await asyncio.wait_for(waiting, 30)
        [hit] = site.hits
        assert hit.at - crawl_ended >= DELAY

    asyncio.run(main())


def test_a_dead_daemons_hold_lapses(database: str, site: Site) -> None:
    site.pages["/feed"] = FEED

    async def main() -> None:
        async with daemons(database, 1) as [alive]:
            dead = SQLiteStore(database) if not database.startswith("postgresql:") \
                else PostgresStore(database)
            try:  # a daemon took the host, then was killed: nobody frees or renews it
                assert dead.take_host(site.url("/")[:-1], "dead", SystemClock().now(),
                                      timedelta(seconds=2)) is None
            finally:
                dead.close()
            async with make_client(allow_private_networks=True) as client:
                waiting = asyncio.create_task(get(client, alive, site.url("/feed")))
                await asyncio.sleep(0.5)
                assert site.hits == [], "held"
                await asyncio.wait_for(waiting, 30)

    asyncio.run(main())
    assert [hit.path for hit in site.hits] == ["/feed"]
