"""The runtime ``Source``: one enabled source with its defaults applied, as the collect
layer, the store and the pipeline see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from crawler.config.models import CrawlSpec, SourceConfig


@dataclass(frozen=True)
class Source:
    """A source with its defaults applied: what the pipeline polls."""

    name: str
    url: str
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
    def lease_seconds(self) -> float:
        """How long a claim on this source lasts: its budget and three fetch deadlines."""
        return self.budget + self.timeout * 3 + 60


def source_url(source: SourceConfig) -> str:
    """The address a source row keeps; when it changes, the source is due at once."""
    if source.feed:
        return source.feed
    if source.sitemap == "auto":
        return f"auto:{source.site}"
    if source.sitemap:
        return source.sitemap
    assert source.crawl is not None
    return " ".join(source.crawl.start)
