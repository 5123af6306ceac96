"""Full-text search: the indexed form of text, queries in FTS5 syntax, snippets. Pure.

The archive's FTS5 index holds the *comparable* form of each article's title, summary
and text: the matcher's folding (``crawler.process.fold``: NFKC, case folding, Latin
diacritics, plain apostrophes and hyphens, folded spaces, and Arabic-script letter
variants, tatweel, harakat, ZWNJ and digits made one), since FTS5's unicode61 tokenizer
folds none of the Arabic-script variants. Queries are folded the same way, so "احمد مسعود"
written with an Arabic yeh finds a Dari text written with a Persian one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crawler.core.article import Article
from crawler.process.fold import aligned, excerpts, fold

# A query: "phrases", operators, parentheses, or words (with an optional trailing *).
_QUERY = re.compile(r'"(?P<phrase>[^"]*)"(?P<pstar>\*)?|(?P<op>\bAND\b|\bOR\b|\bNOT\b)'
                    r"|(?P<paren>[()])|(?P<word>[^\s\"()*]+)(?P<star>\*)?")
_TOKEN = re.compile(r"\w+")
MARK_OPEN, MARK_CLOSE = "«", "»"


class QueryError(ValueError):
    """A search query FTS5 cannot read, in words a user understands."""


def comparable(text: str) -> str:
    """The form that is indexed and searched: exactly the matcher's folding."""
    return fold(text)


def document(article: Article) -> tuple[str, str, str]:
    """The comparable title, summary and text of an article, as indexed (the text is
    often the summary itself: it is normalised once)."""
    summary = comparable(article.summary)
    text = summary if article.text == article.summary else comparable(article.text)
    return comparable(article.title), summary, text


@dataclass(frozen=True, slots=True)
class Query:
    """A user's query as FTS5 ``MATCH`` text, and the terms to highlight."""

    fts: str
    terms: tuple[str, ...]


def parse_query(text: str) -> Query:
    """Translate ``"exact phrase"``, ``prefix*``, ``AND``/``OR``/``NOT`` and parentheses
    into FTS5 syntax over comparable text; every word is quoted, so punctuation in it
    (``intra-Afghan``) is a phrase of its words, never FTS5 syntax."""
    parts: list[str] = []
    terms: list[str] = []
    for found in _QUERY.finditer(text):
        if found.group("op"):
            if found.group("op") == "NOT" and parts and parts[-1] == "AND":
                parts.pop()  # FTS5's NOT is binary: "a AND NOT b" is "a NOT b"
            parts.append(found.group("op"))
        elif found.group("paren"):
            parts.append(found.group("paren"))
        else:
            raw = found.group("phrase") if found.group("phrase") is not None \
                else found.group("word")
            star = found.group("pstar") or found.group("star")
            words = _TOKEN.findall(comparable(raw))
            if not words:
                continue
            parts.append('"' + " ".join(words) + '"' + ("*" if star else ""))
            terms.append(" ".join(words) + ("*" if star else ""))
    if not terms:
        raise QueryError(f"nothing to search for in {text!r}: give a word or a \"phrase\"")
    return Query(" ".join(parts), tuple(terms))


def highlight(text: str, terms: tuple[str, ...]) -> str | None:
    """A snippet of ``text`` around the first of ``terms`` it contains, with the hit
    between « and »; None when no term occurs in it (as words)."""
    if not text:
        return None
    folded, origin = aligned(text)
    best: tuple[int, int] | None = None
    for term in terms:
        prefix = term.endswith("*")
        words = term.rstrip("*").split(" ")
        pattern = r"(?<!\w)" + r"\W+".join(map(re.escape, words)) + \
            (r"\w*" if prefix else r"(?!\w)")
        hit = re.search(pattern, folded)
        if hit and (best is None or hit.start() < best[0]):
            best = hit.span()
    if best is None:
        return None
    start, end = origin[best[0]], origin[best[1] - 1] + 1
    marked = text[:start] + MARK_OPEN + text[start:end] + MARK_CLOSE + text[end:]
    return excerpts(marked, start, end + len(MARK_OPEN) + len(MARK_CLOSE))[0]
