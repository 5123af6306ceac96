"""The fold: one comparable form of text for matching, search and stories. Pure, no I/O.

``fold`` applies compatibility decomposition (NFKD, so everything NFKC equates is equal),
case folding, drops combining marks (Latin diacritics, Arabic harakat, hamza and madda),
makes Arabic-script letter variants one (yeh, kaf, gaf, heh and teh marbuta, alef forms),
drops tatweel and zero-width characters, makes Persian and Arabic-Indic digits ASCII, and
makes white space, hyphens, dashes and apostrophes all one space (runs folded to one). The
fold is a function of each character, so a position in the folded text maps back to the
original text (``aligned``), and a mention can be quoted from it (``excerpts``).

The matcher folds articles as UTF-8 bytes: ``ascii_folded`` is a byte table for ASCII, and
``fold_markers`` are the byte strings that show what else is left to fold.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import overload

SNIPPET_CONTEXT = 70
HIGHLIGHT = ("**", "**")

# --- the fold --------------------------------------------------------------------------------

_SEPARATORS = (
    "-'`\u00b4\u02b9\u02bb\u02bc\u2018\u2019\u201b\u2032"  # apostrophes
    "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"  # hyphens and dashes
)
_ARABIC = {
    **dict.fromkeys("\u064a\u0649\u06d0\u06cd\u06d2", "\u06cc"),  # yeh forms → Farsi yeh
    **dict.fromkeys("\u0643\u06aa", "\u06a9"),  # Arabic kaf → keheh
    "\u06ab": "\u06af",  # Pashto gaf → gaf
    **dict.fromkeys("\u0629\u06c1\u06be\u06c3\u06d5", "\u0647"),  # heh forms, teh marbuta
    **dict.fromkeys("\u0671\u0672\u0673", "\u0627"),  # alef forms NFKD leaves alone
    **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
    **{chr(0x06F0 + d): str(d) for d in range(10)},  # Persian digits
}
_LATIN = {"ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ł": "l", "ı": "i", "æ": "ae", "œ": "oe"}
_DROPPED = (
    "\u00ad\u0640\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d"
    "\u202e\u2060\u2061\u2062\u2063\u2064\ufeff"  # soft hyphen, tatweel, zero-width, bidi
)


def _build_fold_table() -> dict[str, str]:
    """Every BMP character the fold changes after NFKD and casefold, and its folded form.

    Combining marks (canonical combining class > 0) are dropped outright, so the order in
    which NFKD puts them does not matter and the fold stays a per-character function."""
    table: dict[str, str] = {}
    for code in range(0x10000):
        char = chr(code)
        if unicodedata.combining(char):
            table[char] = ""
        elif char.isspace():
            table[char] = " "
    table.update(dict.fromkeys(_DROPPED, ""))
    table.update(dict.fromkeys(_SEPARATORS, " "))
    table.update(_ARABIC)
    table.update(_LATIN)
    table.pop(" ", None)
    return table


_TABLE = _build_fold_table()
_CHANGED = re.compile("[" + "".join(re.escape(c) for c in sorted(_TABLE)) + "]")


def _decomposed_fold(text: str) -> str:
    """The definition of the fold before space runs are collapsed: NFKD, casefold, then
    the table above. ``spaced_fold`` computes the same faster."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    for char in set(_CHANGED.findall(folded)):
        folded = folded.replace(char, _TABLE[char])
    return folded


@lru_cache(maxsize=1)
def composed_table() -> tuple[dict[str, str], re.Pattern[str]]:
    """Every BMP character whose fold is not itself, with its fold. Built on first use:
    it lets ``spaced_fold`` start from NFKC, which is nearly free on text that is already
    composed, instead of NFKD, which rewrites every decomposable letter."""
    table = {}
    for code in range(0x10000):
        if not 0xD800 <= code < 0xE000:
            char = chr(code)
            folded = _decomposed_fold(char)
            if folded != char:
                table[char] = folded
    return table, re.compile("[" + "".join(re.escape(c) for c in sorted(table)) + "]")


def spaced_fold(text: str, casefold: bool = True) -> str:
    """The fold before space runs are made one space: one piece per original character."""
    if not casefold:
        folded = unicodedata.normalize("NFKD", text)
        for char in set(_CHANGED.findall(folded)):
            folded = folded.replace(char, _TABLE[char])
        return folded
    if text.isascii():
        return ascii_folded(text.encode("ascii")).decode("ascii")
    table, changed = composed_table()
    folded = unicodedata.normalize("NFKC", text).casefold()
    # one scan finds the few distinct characters to change; str.replace is C-fast
    for char in set(changed.findall(folded)):
        folded = folded.replace(char, table[char])
    return folded


_ASCII_FOLD = bytes.maketrans(bytes(range(128)), "".join(
    _TABLE.get(chr(b), chr(b)).lower() for b in range(128)).encode("ascii"))


def ascii_folded(data: bytes) -> bytes:
    """The fold of every ASCII byte of UTF-8 ``data`` (lower case; white space, hyphens and
    apostrophes made spaces); other bytes are left as they are."""
    return data.translate(_ASCII_FOLD)


def _collapse(text: str) -> str:
    while "  " in text:
        text = text.replace("  ", " ")
    return text


def fold(text: str, *, casefold: bool = True) -> str:
    """The folded form of ``text`` (see the module docstring); ``casefold=False`` keeps
    letter case, for case-sensitive aliases."""
    return _collapse(spaced_fold(text, casefold))


@lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    return spaced_fold(char)


@lru_cache(maxsize=1)
def _irregular() -> re.Pattern[str]:
    """Characters that do not fold to exactly one character (plus those whose position
    NFKD may change), found in one regex scan so alignment skips all the others."""
    chars = [c for c, folded in composed_table()[0].items() if len(folded) != 1]
    return re.compile("[" + "".join(map(re.escape, chars)) + "\\u0345\\ud800-\\udfff"
                      "\\U00010000-\\U0010ffff]")


_RUNS = re.compile("  +")


class _Origin(Sequence[int]):
    """Index of the original character each folded character came from, computed on
    demand from the irregular characters and the collapsed space runs."""

    def __init__(self, text: str, unfolded: str, size: int,
                 irregular: list[tuple[int, str]]) -> None:
        self._size, self._end = size, len(text)
        self._pos: list[int] = []
        self._starts: list[int] = []
        self._stops: list[int] = []
        self._shifts: list[int] = []
        shift = 0
        for pos, char in irregular:
            width = len(_fold_char(char))
            self._pos.append(pos)
            self._starts.append(pos + shift)
            self._stops.append(pos + shift + width)
            shift += width - 1
            self._shifts.append(shift)
        self._kept: list[int] = []
        self._removed: list[int] = []
        removed = 0
        for run in _RUNS.finditer(unfolded):
            self._kept.append(run.start() - removed)
            removed += run.end() - run.start() - 1
            self._removed.append(removed)

    def __len__(self) -> int:
        return self._size + 1

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[int]: ...

    def __getitem__(self, index: int | slice) -> int | Sequence[int]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index <= self._size:
            raise IndexError(index)
        if index == self._size:
            return self._end
        runs = bisect.bisect_left(self._kept, index)
        at = index + (self._removed[runs - 1] if runs else 0)
        k = bisect.bisect_right(self._starts, at) - 1
        if k >= 0 and at < self._stops[k]:
            return self._pos[k]
        return at - (self._shifts[k] if k >= 0 else 0)


def aligned(text: str, unfolded: str | None = None) -> tuple[str, Sequence[int]]:
    """``fold(text)`` and, for each of its characters, the index of the original character
    it came from (plus one entry for the end). ``unfolded`` is ``spaced_fold(text)`` when the
    caller has it already."""
    if unfolded is None:
        unfolded = spaced_fold(text)
    folded = _collapse(unfolded)
    if text.isascii() and len(folded) == len(text):
        return folded, range(len(text) + 1)
    irregular = [(m.start(), m.group()) for m in _irregular().finditer(text)]
    if not any(c == "\u0345" or (ord(c) > 0xFFFF and unicodedata.combining(c))
               for _, c in irregular):
        return folded, _Origin(text, unfolded, len(folded), irregular)
    return _aligned_by_character(text)


def _aligned_by_character(text: str) -> tuple[str, list[int]]:
    """The slow, plain form of ``aligned``, for text where NFKD reorders marks."""
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for piece in _fold_char(char):
            if piece == " " and out and out[-1] == " ":
                continue
            out.append(piece)
            origin.append(index)
    origin.append(len(text))
    return "".join(out), origin


def is_word(char: str) -> bool:
    return char.isalnum() or unicodedata.category(char)[0] == "M"


# --- quoting -------------------------------------------------------------------------------


_WORD_TAIL = re.compile(r"\S*$")
_WORD_HEAD = re.compile(r"\S*")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def excerpts(text: str, start: int, end: int,
             context: int = SNIPPET_CONTEXT) -> tuple[str, str]:
    """The mention with about ``context`` characters either side, on one line, cut at word
    boundaries (a word is cut after 20 more characters): as it stands, and with the mention
    between ``**`` marks."""
    floor, ceiling = max(0, start - context - 20), min(len(text), end + context + 20)
    tail = _WORD_TAIL.search(text, floor, max(0, start - context))
    head = _WORD_HEAD.match(text, min(len(text), end + context), ceiling)
    assert tail is not None and head is not None  # both match the empty string
    left, right = tail.start(), head.end()
    before = "…" if left > 0 else ""
    after = "…" if right < len(text) else ""
    parts = [text[a:b].replace("\x01", "").replace("\x02", "")
             for a, b in ((left, start), (start, end), (end, right))]
    marked = _one_line(parts[0] + "\x01" + parts[1] + "\x02" + parts[2])
    plain = marked.replace("\x01", "").replace("\x02", "")
    shown = marked.replace("\x01", HIGHLIGHT[0]).replace("\x02", HIGHLIGHT[1])
    return before + plain + after, before + shown + after


def excerpt_span(plain: str, shown: str) -> tuple[int, int] | None:
    """Where the mention stands in ``plain``, given the pair ``excerpts`` made: the one
    way of taking the two ``HIGHLIGHT`` marks out of ``shown`` that leaves ``plain`` (the
    text may hold ``**`` itself). None for a pair ``excerpts`` did not make."""
    opening, closing = HIGHLIGHT
    if len(shown) != len(plain) + len(opening) + len(closing):
        return None
    start = shown.find(opening)
    while start >= 0 and shown[:start] == plain[:start]:
        rest = shown[start + len(opening):]
        end = rest.find(closing)
        while end >= 0:
            if rest[:end] + rest[end + len(closing):] == plain[start:]:
                return start, start + end
            end = rest.find(closing, end + 1)
        start = shown.find(opening, start + 1)
    return None


# --- the byte fold -------------------------------------------------------------------------


@lru_cache(maxsize=1)
def fold_markers() -> tuple[list[bytes], list[str]]:
    """Byte strings whose presence in NFKC text after ``ascii_folded`` means it is not yet
    folded. First the characters (also returned) to replace by their fold: every non-ASCII
    BMP character that NFKC keeps and the fold changes. Then two spaces in a row: a run to
    collapse. Then lead bytes that send the text down the plain path: those of astral
    characters, which the table does not reach, and of U+A000-U+DFFF, whose 11,172 Hangul
    syllables the fold decomposes and would otherwise be as many markers."""
    table = composed_table()[0]
    chars = [c for c in table if not c.isascii() and not "\ua000" <= c <= "\udfff"
             and unicodedata.normalize("NFKC", c) == c]
    plain = [bytes([b]) for b in (0xEA, 0xEB, 0xEC, 0xED, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4)]
    return [*(c.encode() for c in chars), b"  ", *plain], chars


def collapse_bytes(data: bytes) -> bytes:
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data
