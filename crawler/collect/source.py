"""One source asked for what it has, the same way by a poll and by ``sources test``.

A feed is fetched in its host's turn (:class:`crawler.collect.politeness.Politeness`) with
the source's limits and parsed; a sitemap or crawl source's entry points (its sitemap,
the robots.txt that lists them for ``sitemap: auto``, or its start pages) are where its
crawl begins, and what ``sources test`` checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from crawler.collect import fetch
from crawler.collect.feeds import Feed, parse_feed
from crawler.collect.politeness import Politeness
from crawler.config import Source
from crawler.core.errors import HTTPStatusError


@dataclass(frozen=True, slots=True)
class FeedAnswer:
    """A feed fetched: the HTTP answer, and what it holds unless it was not modified."""

    response: fetch.Response
    feed: Feed | None


async def fetch_feed(client: httpx.AsyncClient, politeness: Politeness, source: Source,
                     url: str, etag: str | None = None,
                     last_modified: str | None = None) -> FeedAnswer:
    """The feed at ``url`` (the source's, or where it has moved); SourceError if it
    cannot be had or is no feed."""
    response = await fetch_feed_body(client, politeness, source, url, etag, last_modified)
    if response.not_modified:
        return FeedAnswer(response, None)
    return FeedAnswer(response, parse_feed(source.name, response.body, response.headers,
                                           response.url))


async def fetch_feed_body(client: httpx.AsyncClient, politeness: Politeness, source: Source,
                          url: str, etag: str | None = None,
                          last_modified: str | None = None) -> fetch.Response:
    """The answer at the feed URL ``url``, fetched in its host's turn, not yet parsed (the
    daemon parses in a worker process: ``crawler/app/workers.py``). A Retry-After holds
    the host back for every later fetch (page fetches too), not only this source's."""
    try:
        async with politeness.turn(url, source.delay, source.name):
            return await fetch.fetch(client, fetch.Request(
                source.name, url, source.timeout, source.user_agent, source.max_bytes, etag,
                last_modified))
    except HTTPStatusError as exc:
        if exc.retry_after is not None:
            await politeness.retry_after(url, exc.retry_after)
        raise


async def check_entries(client: httpx.AsyncClient, politeness: Politeness,
                        source: Source) -> fetch.Response:
    """Fetch each entry point of a sitemap or crawl source in its host's turn; the first
    one's answer, or SourceError naming the first that cannot be had."""
    answers = []
    for url in source.urls:
        async with politeness.turn(url, source.delay, source.name):
            answers.append(await fetch.fetch(client, fetch.Request(
                source.name, url, source.timeout, source.user_agent, source.max_bytes,
                accept=fetch.PAGE_ACCEPT)))
    return answers[0]
