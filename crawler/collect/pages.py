"""Fetch the article page of each new item, politely, for full-text extraction.

Every page goes through :class:`crawler.collect.politeness.Politeness` (robots.txt, one request
at a time per host, the delay, ``Retry-After``) and through :func:`crawler.collect.fetch.fetch`
(deadline, size cap, the private-address rule). A page that cannot be had leaves the
article as the feed gave it, with the reason in ``Article.extraction``; it never stops
the other articles or the source.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from urllib.parse import urljoin

import httpx
from w3lib.encoding import html_to_unicode

from crawler.collect import fetch
from crawler.collect.politeness import MAX_WAIT_S, Politeness
from crawler.config import Source
from crawler.core.article import Article, Failed, FeedText
from crawler.core.errors import FetchError, HTTPStatusError

log = logging.getLogger(__name__)

#: Pages fetched at once for one source (different hosts; one host is always serial).
PARALLEL_HOSTS = 4
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def fetch_pages(client: httpx.AsyncClient, politeness: Politeness, source: Source,
                      articles: Sequence[Article]) -> list[Article | Exception]:
    """Each article with its page attached (``page_html``, ``final_url``), or with
    ``extraction`` saying why not; in the same order. Stops fetching at the source's
    budget: the rest keep the feed's text. A page that raised (a bug, or what no check
    foresaw) is its exception in the list, for the caller to refuse that item alone."""
    if not source.full_text:
        return [dataclasses.replace(a, extraction=FeedText()) for a in articles]
    deadline = time.monotonic() + source.budget
    limit = asyncio.Semaphore(PARALLEL_HOSTS)

    async def one(article: Article) -> Article:
        if article.page_html:
            return article
        async with limit:
            if time.monotonic() >= deadline:
                return dataclasses.replace(article, extraction=Failed("source budget spent"))
            reason = await _page(client, politeness, source, article, deadline)
        if isinstance(reason, Article):
            return reason
        log.info("no full text for %s: %s", article.link, reason,
                 extra={"source": source.name})
        return dataclasses.replace(article, extraction=Failed(reason))

    found: list[Article | Exception] = []
    for result in await asyncio.gather(*(one(a) for a in articles), return_exceptions=True):
        if not isinstance(result, (Article, Exception)):
            raise result  # cancelled or interrupted: not this item's doing
        found.append(result)
    return found


async def _page(client: httpx.AsyncClient, politeness: Politeness, source: Source,
                article: Article, deadline: float) -> Article | str:
    """The page, following redirects one hop at a time so that every hop takes its
    host's turn and is checked against that host's robots.txt."""
    url = article.link
    for _ in range(MAX_REDIRECTS + 1):
        if source.robots_txt:
            refused = await politeness.allowed(client, source.name, url, source.user_agent,
                                               source.timeout)
            if refused:
                return f"{refused} ({url})" if url != article.link else refused
        answer = await _get(client, politeness, source, url, deadline)
        if isinstance(answer, str):
            return answer
        location = answer.headers.get("location")
        if answer.status in REDIRECTS and location:
            url = urljoin(answer.url, location)
            if not url.startswith(("http://", "https://")):
                return f"redirect to {url}, which is not a web page"
            continue
        if "html" not in answer.headers.get("content-type", "text/html").lower():
            return f"{answer.url} is not an HTML page ({answer.headers.get('content-type')})"
        return dataclasses.replace(article, page_html=decode(answer), final_url=answer.url)
    return f"more than {MAX_REDIRECTS} redirects from {article.link}"


async def _get(client: httpx.AsyncClient, politeness: Politeness, source: Source, url: str,
               deadline: float) -> fetch.Response | str:
    """One URL, without following redirects; 5xx and 429 retried, Retry-After honoured."""
    attempt = 0
    while True:
        try:
            delay = max(source.delay, politeness.crawl_delay(url, source.user_agent) or 0.0)
            async with politeness.turn(url, delay, source.name):
                return await fetch.fetch(client, fetch.Request(
                    source.name, url, source.timeout, source.user_agent, source.max_bytes,
                    accept=fetch.PAGE_ACCEPT, follow_redirects=False))
        except HTTPStatusError as exc:
            retryable = exc.status == 429 or exc.status >= 500
            if exc.retry_after is not None:
                await politeness.retry_after(url, exc.retry_after)
            wait = exc.retry_after if exc.retry_after is not None else 2.0 ** attempt
            if (not retryable or attempt >= source.retries or wait > MAX_WAIT_S
                    or time.monotonic() + wait >= deadline):
                return exc.message
            # A Retry-After is waited for by the host's next turn; otherwise back off here.
            await asyncio.sleep(0 if exc.retry_after is not None else wait)
            attempt += 1
        except FetchError as exc:
            return exc.message


def decode(answer: fetch.Response) -> str:
    """The page as a browser reads it: BOM, then the HTTP charset, then ``<meta charset>``
    or ``http-equiv``, then valid UTF-8 (a page cut at the size cap may end mid
    character), then Firefox's guess from the bytes and the host's top-level domain
    (w3lib). Older Dari and Pashto sites declare windows-1256 only in ``<meta>``."""
    return html_to_unicode(answer.headers.get("content-type"), answer.body,
                           url=answer.url)[1]
