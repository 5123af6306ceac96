"""Plain text from the markup a source gave, and the article body from its page. Pure.

Feed summaries and content are HTML fragments; matching and alerts read plain text. When
the article page was fetched (``Article.page_html``), trafilatura takes its main text
only (menus, "most read" boxes, related links and footers are dropped) with its title,
author and language; the page's ``rel=canonical`` and ``og:url`` feed dedup, and its
date metadata feeds :func:`crawler.process.dates.choose`.
"""

from __future__ import annotations

import copy
import dataclasses
import html
import json
import re
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import lxml.html
import trafilatura
from lxml import etree

from crawler.core.article import Article, Failed, FullText
from crawler.process import dates
from crawler.process.dedup import canonical_url, same_site

_BLOCK = frozenset({
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
    "blockquote", "section", "article", "header", "footer", "figure", "figcaption", "pre",
    "table", "hr", "dd", "dt",
})
_SKIP = frozenset({"script", "style", "noscript", "template", "iframe", "svg"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u202f\u2007]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")
#: Printable stand-ins for the joiners U+200C and U+200D, which trafilatura drops as
#: unprintable (سه‌شنبه would become سهشنبه): Kievan musical signs, which no news page
#: writes; any already in the page are removed first, so none can turn into a joiner.
#: C0 controls go too (lxml refuses them in a changed text; trafilatura drops them anyway).
_JOINERS = {"\u200c": "\U0001d1e8", "\u200d": "\U0001d1e9"}
_CONTROLS = [chr(c) for c in range(32) if chr(c) not in "\t\n\r"]
_PROTECT = str.maketrans({**dict.fromkeys([*_JOINERS.values(), *_CONTROLS]), **_JOINERS})
#: What a data table's cell does not hold.
_LAYOUT = " | ".join(f".//{tag}" for tag in (
    "table", "div", "h1", "h2", "h3", "ul", "ol", "article", "section", "main", "nav", "form"))
_RESTORE = str.maketrans({stand_in: joiner for joiner, stand_in in _JOINERS.items()})


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skipping += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML fragment: tags and scripts gone, entities decoded,
    paragraphs on their own lines, runs of spaces folded."""
    if "<" not in markup and "&" not in markup:
        text = markup
    else:
        parser = _TextParser()
        parser.feed(markup)
        parser.close()
        text = html.unescape("".join(parser.parts))
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n", text).strip()


def extract(article: Article, now: datetime) -> Article:
    """Fill ``title``, ``summary`` and ``text`` with plain text; ``text`` falls back to the
    summary when the source gave no content. With a fetched page, ``text`` is its body.
    An article already extracted from its page is returned as it is."""
    if isinstance(article.extraction, FullText) and not article.page_html:
        return article
    summary = html_to_text(article.summary_html)
    text = html_to_text(article.content_html) if article.content_html else summary
    article = dataclasses.replace(article, title=html_to_text(article.title),
                                  summary=summary, text=text)
    if article.page_html:
        article = _from_page(article, now)
    return dataclasses.replace(article, page_html="")


_DATE_META = ("article:published_time", "og:published_time", "datepublished",
              "date", "dc.date", "dc.date.issued", "pubdate", "publishdate",
              "sailthru.date", "parsely-pub-date", "publication_date")


def _from_page(article: Article, now: datetime) -> Article:
    url = article.final_url or article.link
    try:
        tree = lxml.html.document_fromstring(article.page_html)
    except (etree.ParserError, ValueError) as exc:
        return dataclasses.replace(article, extraction=Failed(f"unreadable HTML ({exc})"))
    document = trafilatura.bare_extraction(_protected(tree), url=url, with_metadata=True,
                                           include_comments=False, include_links=False,
                                           include_tables=True)
    body = _SPACES.sub(" ", _restored(getattr(document, "text", None))).strip()
    if not body:
        return dataclasses.replace(article,
                                   extraction=Failed("no article text found on the page"))
    title = _restored(getattr(document, "title", None)) or article.title
    for heading in (title, article.title):
        if heading and body.startswith(heading):
            body = body[len(heading):].lstrip()
            break
    alternates = [url]
    for found in (_attr(tree, '//link[@rel="canonical"]/@href'),
                  _attr(tree, '//meta[@property="og:url"]/@content')):
        if found:
            absolute = urljoin(url, found)
            # A canonical on another site, or on the home page (a common template
            # mistake), would merge unrelated articles: ignored.
            if (absolute.startswith(("http://", "https://")) and same_site(absolute, url)
                    and urlsplit(absolute).path not in ("", "/")):
                alternates.append(absolute)
    # Not trafilatura's date: it guesses from copyright lines and file names.
    page_date, has_time = _page_date(tree)
    published = dates.choose(now, page=page_date, page_has_time=has_time,
                             collected=article.published_at, url=dates.url_date(url))
    # The page's own canonical URL, else where the redirects ended.
    identity = canonical_url(alternates[1] if len(alternates) > 1 else url)
    return dataclasses.replace(
        article, url=identity, title=html_to_text(title) or article.title, text=body,
        author=_restored(getattr(document, "author", None)),
        language=(_attr(tree, "/html/@lang") or getattr(document, "language", None)
                  or "").split("-")[0].lower(),
        published_at=published, extraction=FullText(),
        alternates=tuple(dict.fromkeys((*article.alternates, article.url, *alternates))))


def _protected(tree: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """A copy of the page for trafilatura with the joiners swapped for their stand-ins,
    in text and attributes (``og:title`` is an attribute), and its layout tables made
    divs."""
    protected = copy.deepcopy(tree)
    _unlayout(protected)
    for node in protected.iter():
        if node.text and node.text != (text := node.text.translate(_PROTECT)):
            node.text = text
        if node.tail and node.tail != (tail := node.tail.translate(_PROTECT)):
            node.tail = tail
        for name, value in node.attrib.items():
            if value != (changed := value.translate(_PROTECT)):
                node.set(name, changed)
    return protected


def _unlayout(tree: lxml.html.HtmlElement) -> None:
    """Tables whose cells hold headings, paragraphs' containers, lists or other tables lay
    out a page (menu | article | sidebar): made divs, so that trafilatura drops their
    navigation as it does a div's, while it keeps data tables (delegations, results)."""
    for table in tree.xpath("//table"):
        rows = table.xpath("./tr | ./thead/tr | ./tbody/tr | ./tfoot/tr")
        cells = [cell for row in rows for cell in row if cell.tag in ("td", "th")]
        if any(cell.xpath(_LAYOUT) for cell in cells):
            for element in [table, *table.xpath("./thead | ./tbody | ./tfoot"), *rows,
                            *cells]:
                element.tag = "div"


def _restored(value: str | None) -> str:
    return (value or "").translate(_RESTORE)


def _attr(tree: lxml.html.HtmlElement, xpath: str) -> str:
    found = tree.xpath(xpath)
    return str(found[0]).strip() if found else ""


def _page_date(tree: lxml.html.HtmlElement) -> tuple[datetime | None, bool]:
    """The page's own publication date and whether it gave a time of day: meta tags,
    JSON-LD, ``<time datetime>``, then the text of a date element (Hijri included)."""
    values: list[str] = []
    for meta in tree.xpath("//meta[@content]"):
        name = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if name in _DATE_META:
            values.append(meta.get("content"))
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        try:
            data = json.loads(script)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            continue
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and isinstance(item.get("datePublished"), str):
                values.append(item["datePublished"])
    values += [str(v) for v in tree.xpath("//time/@datetime")]
    values += [" ".join(e.text_content().split()) for e in tree.xpath(
        '//time | //*[contains(@class, "date")] | //*[contains(@class, "time")]')][:10]
    for value in values:
        moment = dates.parse_date(value)
        if moment is not None:
            return moment, bool(re.search(r"\d:\d\d", value.translate(dates.DIGITS)))
    return None, False
