"""Articles from a feed body: RSS 0.9x/1.0/2.0 and Atom via feedparser, JSON Feed 1.x.

Bytes and headers come from the fetcher; feedparser never touches the network here.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
from feedparser.encodings import convert_to_utf8

from crawler.collect.fetch import url_problem
from crawler.collect.xmlsafe import refuse_entities
from crawler.core.article import Article, Rejected
from crawler.core.errors import ParseError
from crawler.process import dates
from crawler.process.dedup import canonical_url

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Feed:
    """A parsed feed: its items, how long it asks readers to wait (RSS ``ttl``), and
    the items refused alone (a link no request can be made to)."""

    articles: list[Article]
    ttl: float | None = None
    rejected: list[Rejected] = field(default_factory=list)


def parse_feed(source: str, body: bytes, headers: Mapping[str, str], url: str) -> Feed:
    """Every item with a web link, in feed order, and those whose link no request can be
    made to, rejected alone; ParseError if the body is no feed at all."""
    content_type = headers.get("content-type", "").lower()
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if "json" in content_type or stripped.startswith(b"{"):
        return _feed(_parse_json_feed(source, stripped, url))
    return _parse_xml_feed(source, body, headers, url)


def _article(source: str, base: str, link: Any, **fields: Any) -> Article | Rejected | None:
    """The item as an Article; None when it has no web link (not an article), Rejected
    when its link is one no request can be made to (``http://h:99999/``)."""
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        absolute = urljoin(base, link.strip())
    except ValueError as exc:  # an unclosed IPv6 bracket
        return Rejected(link.strip(), "bad_link", str(exc))
    if not absolute.startswith(("http://", "https://")):
        return None
    problem = url_problem(absolute)
    if problem:
        return Rejected(absolute, "bad_link", problem)
    return Article(source=source, url=canonical_url(absolute), link=absolute, **fields)


def _feed(items: list[Article | Rejected | None], ttl: float | None = None) -> Feed:
    return Feed([i for i in items if isinstance(i, Article)], ttl,
                [i for i in items if isinstance(i, Rejected)])


def _parse_xml_feed(source: str, body: bytes, headers: Mapping[str, str], url: str) -> Feed:
    response_headers = {k.lower(): v for k, v in headers.items()}
    response_headers.setdefault("content-location", url)
    # Judge the very bytes feedparser's parsers will read: it re-decodes the body first
    # (UTF-7, say), which can bring a declaration the raw bytes do not show.
    refuse_entities(source, convert_to_utf8(response_headers, body, {}))
    try:
        # The markup is never shown as markup, only made plain text (crawler.process.extract
        # drops scripts, styles and the like): feedparser's sanitising and link resolving
        # inside it would change nothing that is kept, and took 60% of its parse.
        parsed = feedparser.parse(body, response_headers=response_headers,
                                  sanitize_html=False, resolve_relative_uris=False)
    except (ValueError, RecursionError) as exc:  # its lenient parser on &#2000000;, say
        raise ParseError(source, f"not a readable feed: {exc}") from exc
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        reason = parsed.get("bozo_exception") or "no RSS, Atom or JSON feed found"
        raise ParseError(source, f"not a readable feed: {reason}")
    benign = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    if parsed.bozo and not isinstance(parsed.get("bozo_exception"), benign):
        log.warning("feed is not well-formed, keeping the %d items read: %s",
                    len(parsed.entries), parsed.get("bozo_exception"),
                    extra={"source": source})
    articles = []
    for entry in parsed.entries:
        content = entry.get("content") or []
        articles.append(_article(
            source, url, entry.get("link") or _guid_link(entry),
            title=entry.get("title", ""),
            guid=entry.get("id") or None,
            published_at=dates.first((entry.get("published"), dict.get(entry, "updated")))
            or _struct_time(entry.get("published_parsed") or entry.get("updated_parsed")),
            summary_html=entry.get("summary", ""),
            content_html=content[0].get("value", "") if content else "",
        ))
    ttl = str(parsed.feed.get("ttl", "")).strip()
    return _feed(articles, float(ttl) * 60 if ttl.isdigit() else None)


def _guid_link(entry: Mapping[str, Any]) -> str | None:
    guid = entry.get("id")
    return guid if isinstance(guid, str) and guid.startswith(("http://", "https://")) else None


def _struct_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, TypeError):
        return None


MAX_JSON_DEPTH = 64  # no JSON Feed needs more; the json module gives up near 1,000


def _parse_json_feed(source: str, body: bytes, url: str) -> list[Article | Rejected | None]:
    try:
        document = json.loads(body)
    except RecursionError:
        try:  # one item nested too deep: read the rest, that value as null
            document = json.loads(capped_depth(body.decode("utf-8"), MAX_JSON_DEPTH))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ParseError(source, f"not a readable JSON Feed: {exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(source, f"not a readable JSON Feed: {exc}") from exc
    version = document.get("version", "") if isinstance(document, dict) else ""
    if not str(version).startswith("https://jsonfeed.org/version/1"):
        raise ParseError(source, "JSON body is not a JSON Feed 1.x (no jsonfeed.org version)")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(source, "JSON Feed has no 'items' list")
    articles: list[Article | Rejected | None] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        link = item.get("url") or item.get("external_url")
        articles.append(_article(
            source, url, _whole(link) if isinstance(link, str) else link,
            title=_whole(str(item.get("title") or "")),
            guid=_whole(str(item["id"])) if item.get("id") not in (None, "") else None,
            published_at=dates.first(_strings(item.get("date_published"),
                                              item.get("date_modified"))),
            summary_html=_whole(str(item.get("summary") or "")),
            content_html=_whole(str(item.get("content_html") or item.get("content_text")
                                    or "")),
        ))
    return articles


_SURROGATE = re.compile("[\ud800-\udfff]")


def _whole(text: str) -> str:
    """``text`` with each lone surrogate as U+FFFD. JSON may escape half a pair
    (``\\ud800``), which json.loads keeps and no UTF-8 encoder (the database's, the
    webhook's) accepts; a whole pair was already joined into one character."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def capped_depth(text: str, limit: int) -> str:
    """JSON text with every array or object nested deeper than ``limit`` replaced by
    ``null``, so that one hostile item cannot make a whole document unreadable. Text that
    is not JSON stays not JSON (an unclosed value is cut, and the parser says so)."""
    kept: list[str] = []
    depth, start, skipping_at = 0, 0, 0
    in_string = escaped = False
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth == limit + 1 and not skipping_at:
                kept += [text[start:i], "null"]
                skipping_at = depth
        elif char in "]}":
            if skipping_at and depth == skipping_at:
                start, skipping_at = i + 1, 0
            depth -= 1
    if not skipping_at:
        kept.append(text[start:])
    return "".join(kept)


def _strings(*values: Any) -> list[str]:
    """The values that are strings: a JSON Feed's fields may hold anything."""
    return [v for v in values if isinstance(v, str)]
