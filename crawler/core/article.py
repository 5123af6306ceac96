"""The one type that travels through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FullText:
    """The page's main body replaced the source's text."""

    def __str__(self) -> str:
        return "ok"


@dataclass(frozen=True, slots=True)
class FeedText:
    """Full text is off for the source: the text is what the source gave."""

    def __str__(self) -> str:
        return "off"


@dataclass(frozen=True, slots=True)
class Failed:
    """The page could not be had or held no article text; the source's text stands."""

    reason: str

    def __str__(self) -> str:
        return f"failed: {self.reason}"


#: How getting an article's full text went; ``str()`` is the form the database keeps.
Extraction = FullText | FeedText | Failed


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
    ``extraction`` says how that went (None: not tried, as for a text given by hand).
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
    extraction: Extraction | None = None
    alternates: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    """An item refused on its own, so that it cannot sink the rest of its feed.

    ``reason`` is a short fixed word (the metric's label): ``bad_link`` (a link no request
    can be made to), ``too_deep`` (nesting past the recursion limit) or ``internal_error``
    (a bug, logged with its traceback); ``detail`` says what was wrong.
    """

    link: str
    reason: str
    detail: str
