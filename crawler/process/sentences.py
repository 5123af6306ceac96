"""Sentences of article text: where they start and end, the lede, and the snippet of one
sentence with its mentions marked. Pure; alerts use it, and the web desk will.

A sentence ends at ``.``, ``!``, ``?``, the Arabic question mark ``؟``, the Urdu/Pashto
full stop ``۔`` or an ellipsis, followed by any closing quotes or brackets and then a
space or the end, and at every line break (paragraphs). A full stop after a single
letter (an initial, ``U.S.``) or a common title (``Mr.``, ``Gen.``) ends nothing.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

_END = re.compile(r"[.!?؟۔…]+[\"'”’»)\]]*(?=\s|$)|\n")
_NOT_AN_END = re.compile(
    r"(?:^|[\s.(\"'“‘«])(?:\w|mr|mrs|ms|dr|st|gen|col|lt|sgt|capt|prof|gov|sen|rep|"
    r"jr|sr|vs|etc|e\.g|i\.e)\.$", re.IGNORECASE)
LEDE_MAX = 300
SNIPPET_MAX = 400
ELLIPSIS = "…"


@lru_cache(maxsize=16)
def spans(text: str) -> tuple[tuple[int, int], ...]:
    """The sentences of ``text`` as (start, end) offsets, without surrounding space.

    Remembered for the last few texts: an alert asks for the sentences of one article's
    text once per watch item and channel."""
    found: list[tuple[int, int]] = []
    start = 0
    for end in _END.finditer(text):
        stop = end.end()
        if end.group() != "\n" and end.group().startswith(".") and \
                _NOT_AN_END.search(text[max(start, stop - 12):stop].rstrip("\"'”’»)]")):
            continue
        found.append((start, stop))
        start = stop
    found.append((start, len(text)))
    trimmed = []
    for a, b in found:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            trimmed.append((a, b))
    return tuple(trimmed)


def split(text: str) -> list[str]:
    """The sentences of ``text``."""
    return [text[a:b] for a, b in spans(text)]


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + ELLIPSIS


def lede(text: str, fallback: str = "", limit: int = LEDE_MAX) -> str | None:
    """The first sentences of ``text`` up to ``limit`` characters (the first one cut at a
    word if it alone is longer), else the ``fallback`` (the summary) so cut; None if both
    are empty."""
    chosen: list[str] = []
    # Only the head can matter: a sentence that starts past ``limit`` is never chosen,
    # and one cut at twice the limit is still too long to fit, as the whole one is.
    head = text.lstrip()[:2 * limit + 2]
    for sentence in split(" ".join(head.split("\n"))):
        if chosen and len(" ".join([*chosen, sentence])) > limit:
            break
        chosen.append(sentence)
        if len(sentence) >= limit:
            break
    if chosen:
        return _shorten(" ".join(chosen), limit)
    fallback = " ".join(fallback.split())
    return _shorten(fallback, limit) if fallback else None


Marks = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Snippet:
    """One sentence holding mentions, and each mention's [start, end) in ``text``."""

    text: str
    marks: tuple[tuple[int, int], ...]


def snippets(text: str, mentions: Iterable[tuple[int, int]],
             limit: int = SNIPPET_MAX) -> list[Snippet]:
    """One snippet per sentence of ``text`` holding any of ``mentions`` (offsets into
    ``text``), in text order, every mention in it marked. A sentence longer than
    ``limit`` is cut around its marks, with an ellipsis where it was cut."""
    sentences = spans(text)
    starts = [s for s, _ in sentences]
    wanted = sorted({(a, b) for a, b in mentions if 0 <= a < b <= len(text)})
    groups: list[tuple[int, int, list[tuple[int, int]]]] = []
    for a, b in wanted:
        lo, hi = _around(sentences, starts, a, b)
        if groups and lo < groups[-1][1]:  # the same sentence (or one it runs into)
            start, end, marks = groups.pop()
            lo, hi, marks = min(start, lo), max(end, hi), [*marks, (a, b)]
        else:
            marks = [(a, b)]
        groups.append((lo, hi, marks))
    return [_cut(text, (lo, hi), marks, limit) for lo, hi, marks in groups]


def _around(sentences: Sequence[tuple[int, int]], starts: Sequence[int],
            a: int, b: int) -> tuple[int, int]:
    """Where the sentence holding ``a`` starts and the one holding ``b`` ends (the
    mention itself where it stands outside every sentence, in the space between)."""
    first = bisect_right(starts, a) - 1
    lo = sentences[first][0] if first >= 0 and a < sentences[first][1] else a
    last = bisect_right(starts, b - 1) - 1
    hi = sentences[last][1] if last >= 0 and b <= sentences[last][1] else b
    return min(lo, a), max(hi, b)


def _cut(text: str, span: tuple[int, int], marks: Sequence[tuple[int, int]],
         limit: int) -> Snippet:
    start, end = span
    if end - start > limit:
        first, last = min(a for a, _ in marks), max(b for _, b in marks)
        room = max(0, limit - (last - first)) // 2
        lo, hi = max(start, first - room), min(end, last + room)
        if lo > start and (space := text.find(" ", lo, first)) >= 0:
            lo = space + 1
        if hi < end and (space := text.rfind(" ", last, hi)) >= 0:
            hi = space
        prefix = ELLIPSIS if lo > start else ""
        body = text[lo:hi] + (ELLIPSIS if hi < end else "")
        shift = lo - len(prefix)
        return Snippet(prefix + body, tuple(sorted({(a - shift, b - shift)
                                                    for a, b in marks})))
    return Snippet(text[start:end], tuple(sorted({(a - start, b - start) for a, b in marks})))


def normalise_marks(marks: Iterable[tuple[int, int]], length: int) -> Marks:
    """Marks sorted, inside the text, and overlapping ones joined, so markup nests."""
    spans = sorted((max(0, a), min(length, b)) for a, b in marks)
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple(merged)


def pieces(text: str, marks: Iterable[tuple[int, int]],
           ) -> tuple[tuple[tuple[str, str], ...], str]:
    """``text`` cut at its marks (normalised first): (text before, marked text) pairs, and
    the text after the last mark. Plain strings: whoever shows them escapes them, and
    wraps each marked one (``<mark>``)."""
    cut: list[tuple[str, str]] = []
    at = 0
    for a, b in normalise_marks(marks, len(text)):
        cut.append((text[at:a], text[a:b]))
        at = b
    return tuple(cut), text[at:]
