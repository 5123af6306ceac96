"""A source's polls reuse their connection: a 304, a redirect and an error page are read
to their end (a few bytes) so that the connection goes back to the pool, where one left
unread would be closed and the next conditional GET would pay a new connection."""

from __future__ import annotations

import asyncio

import pytest

from crawler.collect.fetch import DRAIN_BYTES, Request, fetch, make_client
from crawler.core.errors import HTTPStatusError
from tests.feeds import Item, rss
from tests.servers import Page, Site


def request(site: Site, path: str, etag: str | None = None) -> Request:
    return Request("src", site.url(path), 10, "newswatch-test", 1 << 20, etag=etag)


def test_conditional_gets_answered_304_reuse_one_connection(site: Site) -> None:
    site.pages["/feed.xml"] = Page(rss([Item("One", site.url("/1"), "x", "g1")]),
                                   etag='"v1"')

    async def run() -> list[int]:
        async with make_client(allow_private_networks=True) as client:
            first = await fetch(client, request(site, "/feed.xml"))
            statuses = [first.status]
            for _ in range(3):
                answer = await fetch(client, request(site, "/feed.xml", first.headers["etag"]))
                statuses.append(answer.status)
            return statuses

    assert asyncio.run(run()) == [200, 304, 304, 304]
    assert len({hit.peer for hit in site.requests_to("/feed.xml")}) == 1


def test_a_redirect_and_an_error_page_leave_their_connection_reusable(site: Site) -> None:
    site.pages["/old.xml"] = Page(b"<html>moved</html>", "text/html", status=301,
                                  headers={"location": site.url("/feed.xml")})
    site.pages["/feed.xml"] = Page(rss([Item("One", site.url("/1"), "x", "g1")]))
    site.pages["/broken.xml"] = Page(b"<html>" + b"oops " * 200 + b"</html>", "text/html",
                                     status=503)

    async def run() -> None:
        async with make_client(allow_private_networks=True) as client:
            assert (await fetch(client, request(site, "/old.xml"))).status == 200
            with pytest.raises(HTTPStatusError):
                await fetch(client, request(site, "/broken.xml"))
            assert (await fetch(client, request(site, "/feed.xml"))).status == 200

    asyncio.run(run())
    assert len({hit.peer for hit in site.hits}) == 1


def test_a_large_unwanted_body_is_not_downloaded_to_keep_a_connection(site: Site) -> None:
    site.pages["/huge.xml"] = Page(b"x" * (DRAIN_BYTES * 8), "text/html", status=500)
    site.pages["/feed.xml"] = Page(rss([Item("One", site.url("/1"), "x", "g1")]))

    async def run() -> None:
        async with make_client(allow_private_networks=True) as client:
            with pytest.raises(HTTPStatusError):
                await fetch(client, request(site, "/huge.xml"))
            assert (await fetch(client, request(site, "/feed.xml"))).status == 200

    asyncio.run(run())
    assert len({hit.peer for hit in site.hits}) == 2  # that connection was given up
