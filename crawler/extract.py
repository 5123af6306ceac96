"""Plain text from the markup a source gave. Pure, no I/O.

Feed summaries and content are HTML fragments; matching and alerts read plain text.
(Full-page extraction of article bodies plugs in here later.)
"""

from __future__ import annotations

import dataclasses
import html
import re
from html.parser import HTMLParser

from crawler.article import Article

_BLOCK = frozenset({
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
    "blockquote", "section", "article", "header", "footer", "figure", "figcaption", "pre",
    "table", "hr", "dd", "dt",
})
_SKIP = frozenset({"script", "style", "noscript", "template", "iframe", "svg"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u202f\u2007]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")


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


def extract(article: Article) -> Article:
    """Fill ``title``, ``summary`` and ``text`` with plain text; ``text`` falls back to the
    summary when the source gave no content."""
    summary = html_to_text(article.summary_html)
    text = html_to_text(article.content_html) if article.content_html else summary
    return dataclasses.replace(article, title=html_to_text(article.title), summary=summary,
                               text=text)
