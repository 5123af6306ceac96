"""The one type that travels through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Article:
    """An item as collected, then filled in by extraction.

    ``url`` is the canonical URL (the article's identity); ``link`` is what the source gave.
    ``summary_html`` and ``content_html`` are the source's markup; ``summary`` and ``text``
    are the plain text that extraction derives from them and that matching reads.

    Full text: ``page_html`` is the article page as fetched (from ``final_url``, after
    redirects); extraction replaces ``text`` with the page's main body only, fills
    ``author`` and ``language``, and adds the URLs the page names for itself
    (``rel=canonical``, ``og:url``) to ``alternates``, which dedup also keys on.
    ``extraction`` says how that went: ``ok``, ``off``, or why it failed.
    """

    source: str
    url: str
    link: str
    title: str
    guid: str | None = None
    published_at: datetime | None = None
    summary_html: str = ""
    content_html: str = ""
    summary: str = ""
    text: str = ""
    page_html: str = ""
    final_url: str = ""
    author: str = ""
    language: str = ""
    extraction: str = ""
    alternates: tuple[str, ...] = ()
