"""The runtime ``Source``: one enabled source with its defaults applied, as the collect
layer, the store and the pipeline see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin

from crawler.config.models import CrawlSpec, SourceConfig


@dataclass(frozen=True)
class Source:
    """A source with its defaults applied: what the pipeline polls.

    ``key`` is its identity, which its database row keeps: when it changes in the config
    the source starts afresh (due at once, validators and redirects forgotten). It is no
    address; ``urls`` are where a poll (and ``sources test``) fetches.
    """

    name: str
    key: str
    interval: float
    timeout: float
    user_agent: str
    max_bytes: int
    respect_cache_hints: bool = True
    kind: Literal["feed", "sitemap", "crawl"] = "feed"
    full_text: bool = True
    delay: float = 1.0
    retries: int = 2
    robots_txt: bool = True
    budget: float = 600.0
    max_age: float = 2 * 86400.0
    sitemap: str | None = None
    site: str | None = None
    crawl: CrawlSpec | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        """Where collection starts: the feed, the sitemap, the robots.txt that lists the
        sitemaps (``sitemap: auto``), or the start pages of a crawl."""
        if self.crawl is not None:
            return tuple(self.crawl.start)
        if self.sitemap == "auto":
            assert self.site is not None
            return (urljoin(self.site, "/robots.txt"),)
        return (self.sitemap or self.key,)


def source_key(source: SourceConfig) -> str:
    """The identity a source row keeps (see ``Source.key``): the feed or sitemap URL,
    ``auto:`` and the site, or the start pages joined by a space. These are the values
    rows have always kept, so existing rows keep their state."""
    if source.feed:
        return source.feed
    if source.sitemap == "auto":
        return f"auto:{source.site}"
    if source.sitemap:
        return source.sitemap
    assert source.crawl is not None
    return " ".join(source.crawl.start)
