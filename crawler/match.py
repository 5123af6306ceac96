"""Which watch items an article mentions, and where. Pure, no I/O.

Text and names are compared after the same normalisation: NFKC, case folding,
typographic apostrophes and hyphens made plain, runs of white space folded to one.
Names match as whole words; an occurrence inside one of the item's ``exclude`` phrases
does not count. Offsets always point into the original text, so alerts quote it as written.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from crawler.article import Article
from crawler.config import WatchItem, WatchlistConfig

FIELDS = ("title", "summary", "text")
SNIPPET_CONTEXT = 70

_PLAIN = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u02bc": "'", "\u2032": "'", "`": "'",
    "\u00b4": "'", "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2015": "-", "\u2212": "-", "\ufe63": "-", "\uff0d": "-", "\u00ad": "",
})


def normalize(text: str) -> tuple[str, list[int]]:
    """The comparable form of ``text`` and, for each of its characters, the index of the
    original character it came from (plus one entry for the end)."""
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char.isspace():
            if out and out[-1] == " ":
                continue
            folded = " "
        else:
            folded = unicodedata.normalize("NFKC", char.translate(_PLAIN)).casefold()
            folded = folded.translate(_PLAIN)
        out.append(folded)
        origin.extend([index] * len(folded))
    origin.append(len(text))
    return "".join(out), origin


def _comparable(phrase: str) -> str:
    return normalize(phrase.strip())[0]


def _phrases_pattern(phrases: Sequence[str]) -> re.Pattern[str] | None:
    forms = sorted({_comparable(p) for p in phrases if _comparable(p)}, key=len, reverse=True)
    if not forms:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, forms)) + r")(?!\w)")


@dataclass(frozen=True, slots=True)
class Match:
    """One mention: the watch item, the name or alias that fired, and where it stands."""

    watchlist: str
    watch: str
    alias: str
    matched: str
    field: str
    start: int
    end: int
    snippet: str


@dataclass(frozen=True, slots=True)
class _Compiled:
    watchlist: str
    item: WatchItem
    names: re.Pattern[str] | None
    excludes: re.Pattern[str] | None
    alias_of: dict[str, str]


def snippet(text: str, start: int, end: int, context: int = SNIPPET_CONTEXT) -> str:
    """The mention with some text either side, on one line, cut at word boundaries."""
    left = max(0, start - context)
    right = min(len(text), end + context)
    while left > 0 and not text[left - 1].isspace() and start - left < context + 20:
        left -= 1
    while right < len(text) and not text[right].isspace() and right - end < context + 20:
        right += 1
    piece = " ".join(text[left:right].split())
    return ("…" if left > 0 else "") + piece + ("…" if right < len(text) else "")


class Matcher:
    """Compiled once per config; ``match`` is a pure function of the article."""

    def __init__(self, watchlists: Sequence[WatchlistConfig]) -> None:
        self._items = [
            _Compiled(
                watchlist.name, item,
                _phrases_pattern([item.name, *item.aliases]),
                _phrases_pattern(item.exclude),
                {_comparable(n): n for n in reversed([item.name, *item.aliases])},
            )
            for watchlist in watchlists
            for item in watchlist.watch
        ]

    def match(self, article: Article) -> list[Match]:
        found: list[Match] = []
        for field in FIELDS:
            original = getattr(article, field)
            if not original:
                continue
            normal, origin = normalize(original)
            for compiled in self._items:
                hit = self._first(compiled, normal)
                if hit is None:
                    continue
                start, end = origin[hit.start()], origin[hit.end() - 1] + 1
                found.append(Match(
                    compiled.watchlist, compiled.item.name,
                    compiled.alias_of.get(hit.group(0), compiled.item.name),
                    original[start:end], field, start, end, snippet(original, start, end)))
        return found

    @staticmethod
    def _first(compiled: _Compiled, normal: str) -> re.Match[str] | None:
        if compiled.names is None:
            return None
        hidden = ([m.span() for m in compiled.excludes.finditer(normal)]
                  if compiled.excludes else [])
        for hit in compiled.names.finditer(normal):
            if not any(s <= hit.start() and hit.end() <= e for s, e in hidden):
                return hit
        return None
