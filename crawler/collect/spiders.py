"""The Scrapy side of a crawl. Runs ONLY in a child process: ``python -m crawler.collect.spiders``.

The parent (``crawler/collect/crawl.py``) writes one JSON spec on stdin; this process crawls and
writes one event per line on stdout, as JSON: the types ``crawl.PageEvent`` (an article
page), ``ErrorEvent`` (a page not had), ``RetryAfterEvent`` (a host asked to wait) and
``DoneEvent`` (the crawl finished), which the parent parses back at the same boundary.

Spiders only collect: extraction, dedup and matching happen in the parent's pipeline.
Twisted's reactor lives and dies with this process, so it never meets the daemon's loop.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

from lxml import etree
from protego import Protego
from scrapy import Request, Spider, signals
from scrapy.crawler import CrawlerProcess
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from crawler.collect.crawl import (
    DoneEvent,
    ErrorEvent,
    Event,
    PageEvent,
    RetryAfterEvent,
)
from crawler.collect.decompress import DecodeError, decompress_capped
from crawler.collect.fetch import is_public_address, refusal
from crawler.collect.headers import parse_retry_after
from crawler.process import dates
from crawler.process.dedup import canonical_url, without_variant

_NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"
_SITEMAP_MAX_DEPTH = 3


def _local_name(tag: Any) -> str:
    """A tag without its namespace. Not etree.QName, which raises on the odd names
    (``<:``) that lxml's recover mode lets through."""
    return str(tag).rpartition("}")[2]


def emit(event: Event) -> None:
    sys.stdout.write(event.model_dump_json() + "\n")
    sys.stdout.flush()


@implementer(IHostnameResolver)
class PublicOnlyResolver:
    """Scrapy's resolver when private networks are not allowed: the reactor's own resolver,
    passing an answer on only when every address in it is public.

    Checking the very answer the connection uses leaves no gap for DNS rebinding, where a
    name resolves to a public address for a check and to a private one a moment later."""

    refused: ClassVar[dict[str, str]] = {}  # host → why, for the error and to stop retries

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.inner = reactor.nameResolver

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> PublicOnlyResolver:
        return cls(reactor)

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)

    def resolveHostName(self, resolutionReceiver: Any, hostName: str, portNumber: int = 0,
                        addressTypes: Any = None, transportSemantics: str = "TCP") -> Any:
        return self.inner.resolveHostName(_PublicOnly(resolutionReceiver, hostName), hostName,
                                          portNumber, addressTypes, transportSemantics)


@implementer(IResolutionReceiver)
class _PublicOnly:
    """Holds the addresses back until the answer is complete, then passes on all or none."""

    def __init__(self, receiver: Any, host: str) -> None:
        self.receiver, self.host = receiver, host
        self.addresses: list[Any] = []

    def resolutionBegan(self, resolution: Any) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: Any) -> None:
        self.addresses.append(address)

    def resolutionComplete(self) -> None:
        blocked = [a.host for a in self.addresses if not is_public_address(a.host)]
        if blocked:
            PublicOnlyResolver.refused[self.host] = refusal(self.host, blocked)
        else:
            for address in self.addresses:
                self.receiver.addressResolved(address)
        self.receiver.resolutionComplete()


class Guard:
    """Downloader middleware: no second try at a refused host, and Retry-After honoured."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> Guard:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        reason = PublicOnlyResolver.refused.get(urlsplit(request.url).hostname or "")
        if reason is not None:
            raise IgnoreRequest(reason)

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Response:
        value = response.headers.get(b"Retry-After")
        if response.status in (429, 503) and value:
            seconds = parse_retry_after(value.decode("latin-1"), datetime.now(UTC))
            if seconds is not None:
                emit(RetryAfterEvent(url=request.url, seconds=seconds))
                slots = self.crawler.engine.downloader.slots
                slot = slots.get(request.meta.get("download_slot", ""))
                if slot is not None:
                    slot.delay = max(slot.delay, min(seconds, 120.0))
        return response


class NewsSpider(Spider):
    """Sitemaps (news, plain, index, or those robots.txt lists) or listing pages."""

    name = "newswatch"

    def __init__(self, spec: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.known = set(spec.get("known", []))
        self.now = datetime.fromisoformat(spec["now"])
        self.oldest = self.now - timedelta(seconds=float(spec.get("max_age", 2 * 86400)))
        self.max_pages = int(spec.get("max_pages", 500))
        self.pages = 0
        self.follow = [re.compile(p) for p in spec.get("follow", [])]
        self.max_depth = int(spec.get("max_depth", 1))
        self.allowed_domains = sorted({urlsplit(u).hostname or "" for u in spec["entries"]})

    async def start(self) -> AsyncIterator[Request]:
        for url in self.spec["entries"]:
            meta = {"entry": url}  # kept through redirects and retries
            if self.spec["kind"] == "crawl":
                yield Request(url, self.parse_listing, errback=self.failed, meta=meta,
                              cb_kwargs={"depth": 0})
            elif self.spec["sitemap"] == "auto":
                yield Request(url, self.parse_robots, errback=self.failed, meta=meta)
            else:
                yield Request(url, self.parse_sitemap, errback=self.failed, meta=meta,
                              cb_kwargs={"level": 0})

    # --- sitemaps -----------------------------------------------------------------------

    def parse_robots(self, response: Response) -> Iterator[Request]:
        robots = Protego.parse(response.text if isinstance(response, TextResponse) else "")
        found = list(robots.sitemaps)
        if not found:
            self.error(response, "robots.txt lists no Sitemap: line")
        for url in found:
            yield Request(urljoin(response.url, url), self.parse_sitemap, errback=self.failed,
                          cb_kwargs={"level": 0})

    def parse_sitemap(self, response: Response, level: int) -> Iterator[Request]:
        """Entries of a sitemap or sitemap index. Not scrapy.utils.sitemap.Sitemap: it keeps
        only each entry's top-level text, losing news:title and news:publication_date."""
        body = response.body
        try:
            if body[:2] == b"\x1f\x8b":
                body = decompress_capped(body, "gzip", self.settings.getint("DOWNLOAD_MAXSIZE"))
            root = etree.fromstring(body, etree.XMLParser(resolve_entities=False,
                                                          no_network=True, recover=True))
        except (DecodeError, etree.XMLSyntaxError) as exc:
            self.error(response, f"not a sitemap: {exc}")
            return
        if root is None:
            self.error(response, "not a sitemap")
            return
        kind = _local_name(root.tag)
        for entry in root:
            if not isinstance(entry.tag, str):
                continue
            fields = {_local_name(c.tag): (c.text or "").strip()
                      for c in entry if isinstance(c.tag, str)}
            loc = urljoin(response.url, fields.get("loc", ""))
            if not loc.startswith(("http://", "https://")):
                continue
            news = entry.find(f"{_NEWS}news")
            title = news.findtext(f"{_NEWS}title", "").strip() if news is not None else ""
            when = dates.parse_date((news.findtext(f"{_NEWS}publication_date", "")
                                     if news is not None else "") or fields.get("lastmod"))
            if when is not None and when < self.oldest:
                continue
            if kind == "sitemapindex":
                if level < _SITEMAP_MAX_DEPTH:
                    yield Request(loc, self.parse_sitemap, errback=self.failed,
                                  cb_kwargs={"level": level + 1})
                continue
            request = self._article(loc, title, when, 1)
            if request is not None:
                yield request

    # --- listing pages ------------------------------------------------------------------

    def parse_listing(self, response: Response, depth: int) -> Iterator[Request]:
        if not isinstance(response, TextResponse):
            return
        for href in response.css("a::attr(href)").getall():
            url = urljoin(response.url, href.strip()).split("#", 1)[0]
            if not url.startswith(("http://", "https://")):
                continue
            if any(p.search(url) for p in self.follow):
                request = self._article(url, "", None, depth + 1)
            elif depth + 1 < self.max_depth:
                request = Request(url, self.parse_listing, errback=self.failed,
                                  cb_kwargs={"depth": depth + 1})
            else:
                request = None
            if request is not None:
                yield request

    # --- articles -----------------------------------------------------------------------

    def _article(self, url: str, title: str, when: datetime | None,
                 depth: int) -> Request | None:
        if {f"url:{canonical_url(url)}", f"url:{without_variant(url)}"} & self.known:
            return None
        if self.pages >= self.max_pages:
            return None
        self.pages += 1
        self.known.add(f"url:{canonical_url(url)}")
        return Request(url, self.parse_article, errback=self.failed, cb_kwargs={
            "title": title, "published": when.isoformat() if when else None, "depth": depth})

    def parse_article(self, response: Response, title: str, published: str | None,
                      depth: int) -> Iterator[Request]:
        if not isinstance(response, TextResponse):
            self.error(response, "not an HTML page")
            return
        emit(PageEvent(url=response.request.url if response.request else response.url,
                       final_url=response.url, html=response.text, title=title,
                       published=published))
        if self.spec["kind"] == "crawl" and depth < self.max_depth:
            yield from self.parse_listing(response, depth)

    def failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        url = request.url if request is not None else ""
        self.error(request, PublicOnlyResolver.refused.get(urlsplit(url).hostname or "")
                   or failure.getErrorMessage() or repr(failure.value))

    @staticmethod
    def error(got: Request | Response | None, reason: str) -> None:
        """Report a page not had; ``got`` is its request or its response (whose ``meta``
        is its request's)."""
        emit(ErrorEvent(url=got.url if got is not None else "", reason=reason,
                        entry=got.meta.get("entry") if got is not None else None))


def settings(spec: dict[str, Any]) -> dict[str, Any]:
    """Scrapy settings from the source's politeness and safety values."""
    return {
        "ROBOTSTXT_OBEY": bool(spec.get("robots_txt", True)),
        "ROBOTSTXT_PARSER": "scrapy.robotstxt.ProtegoRobotParser",
        "TELNETCONSOLE_ENABLED": False,
        "USER_AGENT": spec["user_agent"],
        "DOWNLOAD_MAXSIZE": int(spec["max_bytes"]),
        "DOWNLOAD_WARNSIZE": 0,
        "DOWNLOAD_TIMEOUT": float(spec["timeout"]),
        "DOWNLOAD_DELAY": float(spec["delay"]),
        "DOWNLOAD_DELAY_JITTER": 0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": max(float(spec["delay"]), 0.01),
        "AUTOTHROTTLE_MAX_DELAY": max(60.0, float(spec["delay"])),  # never below ours
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": int(spec["retries"]),
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "REDIRECT_MAX_TIMES": 5,
        "COOKIES_ENABLED": False,
        # the daemon's own clients ignore proxy variables too (trust_env=False); through a
        # proxy, the resolver would judge the proxy's address instead of the site's
        "HTTPPROXY_ENABLED": False,
        # Breadth-first, in the order the sitemap or listing gives (newest first, usually),
        # so a run cut short by its budget or max_pages has taken the newest pages.
        "DEPTH_PRIORITY": 1,
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        "DOWNLOADER_MIDDLEWARES": {"crawler.collect.spiders.Guard": 560},
        **({} if spec.get("allow_private_networks") else
           {"TWISTED_DNS_RESOLVER": "crawler.collect.spiders.PublicOnlyResolver"}),
        "LOG_LEVEL": "WARNING",
        "LOG_STDOUT": False,
    }


def main() -> None:
    """Read the spec on stdin (argv only names the source, for ``ps``), crawl, exit."""
    spec = json.loads(sys.stdin.read())
    process = CrawlerProcess(settings(spec))
    crawler = process.create_crawler(NewsSpider)
    requests = [0]

    def counted(*_: Any, **__: Any) -> None:
        requests[0] += 1

    crawler.signals.connect(counted, signal=signals.request_reached_downloader)
    process.crawl(crawler, spec=spec)
    process.start()
    emit(DoneEvent(requests=requests[0], finished_at=datetime.now(UTC).isoformat()))


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: Scrapy loads the resolver
    # and middleware by their crawler.collect.spiders path, and they share state with the spider.
    from crawler.collect import spiders

    spiders.main()
