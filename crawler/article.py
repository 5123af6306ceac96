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
