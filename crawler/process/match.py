"""Which watch items an article mentions, where, and why. Pure, no I/O.

Text and watch terms are compared in one *folded* form (``fold``): compatibility
decomposition (NFKD, so everything NFKC equates is equal), case folding, combining marks
dropped (Latin diacritics, Arabic harakat, hamza and madda), Arabic-script letter variants
made one (yeh, kaf, gaf, heh and teh marbuta, alef forms), tatweel and zero-width
characters dropped, Persian and Arabic-Indic digits made ASCII, and white space, hyphens,
dashes and apostrophes all made one space (runs folded to one). The fold is a function of
each character, so a position in the folded text maps back to the original text.

All names, aliases and ``exclude`` phrases of every watch item are found in ONE pass of an
Aho-Corasick automaton over the folded text; hits must start and end on word boundaries
(in any script). The same pass does most of the folding: an article's text is taken as
UTF-8 after NFKC and a byte table for ASCII, and the automaton also holds *markers* for
everything else the fold changes. Text without markers (most English news) is folded and
searched in that one pass; text with markers has those characters replaced and is scanned
again. Only articles with hits go further: context terms are searched (a second
automaton), case-sensitive aliases are checked against the original text, and offsets are
mapped back to the original text to quote it.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar, overload

import ahocorasick_rs

from crawler.config import Alias, Config, ContextRule, WatchItem, WatchlistConfig
from crawler.core.article import Article

FIELDS = ("title", "summary", "text")
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
    the table above. ``_unfolded`` computes the same faster."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    for char in set(_CHANGED.findall(folded)):
        folded = folded.replace(char, _TABLE[char])
    return folded


@lru_cache(maxsize=1)
def _composed_table() -> tuple[dict[str, str], re.Pattern[str]]:
    """Every BMP character whose fold is not itself, with its fold. Built on first use:
    it lets ``_unfolded`` start from NFKC, which is nearly free on text that is already
    composed, instead of NFKD, which rewrites every decomposable letter."""
    table = {}
    for code in range(0x10000):
        if not 0xD800 <= code < 0xE000:
            char = chr(code)
            folded = _decomposed_fold(char)
            if folded != char:
                table[char] = folded
    return table, re.compile("[" + "".join(re.escape(c) for c in sorted(table)) + "]")


def _unfolded(text: str, casefold: bool = True) -> str:
    """The fold before space runs are made one space: one piece per original character."""
    if not casefold:
        folded = unicodedata.normalize("NFKD", text)
        for char in set(_CHANGED.findall(folded)):
            folded = folded.replace(char, _TABLE[char])
        return folded
    if text.isascii():
        return _ascii_folded(text.encode("ascii")).decode("ascii")
    table, changed = _composed_table()
    folded = unicodedata.normalize("NFKC", text).casefold()
    # one scan finds the few distinct characters to change; str.replace is C-fast
    for char in set(changed.findall(folded)):
        folded = folded.replace(char, table[char])
    return folded


_ASCII_FOLD = bytes.maketrans(bytes(range(128)), "".join(
    _TABLE.get(chr(b), chr(b)).lower() for b in range(128)).encode("ascii"))


def _ascii_folded(data: bytes) -> bytes:
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
    return _collapse(_unfolded(text, casefold))


@lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    return _unfolded(char)


@lru_cache(maxsize=1)
def _irregular() -> re.Pattern[str]:
    """Characters that do not fold to exactly one character (plus those whose position
    NFKD may change), found in one regex scan so alignment skips all the others."""
    chars = [c for c, folded in _composed_table()[0].items() if len(folded) != 1]
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
    it came from (plus one entry for the end). ``unfolded`` is ``_unfolded(text)`` when the
    caller has it already."""
    if unfolded is None:
        unfolded = _unfolded(text)
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


def _is_word(char: str) -> bool:
    return char.isalnum() or unicodedata.category(char)[0] == "M"


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """One mention: the watch item, the name or alias that fired, where it stands, and the
    context terms that let it count."""

    watchlist: str
    watch: str
    alias: str
    matched: str
    field: str
    start: int
    end: int
    snippet: str
    highlight: str = ""
    context: tuple[str, ...] = ()


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


# --- compiling -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Name:
    item: int
    alias: str
    cased: str | None  # the folded form with case kept, when the alias is case-sensitive


@dataclass(slots=True)
class _Item:
    watchlist: str
    config: WatchItem
    fields: frozenset[str]
    sources: frozenset[str] | None  # the watchlist's ``sources``: None is every source
    rules: list[tuple[str, ContextRule, dict[str, str]]]  # (kind, rule, folded → as written)


@lru_cache(maxsize=1)
def _markers() -> tuple[list[bytes], list[str]]:
    """Byte strings whose presence in NFKC text after ``_ascii_folded`` means it is not yet
    folded. First the characters (also returned) to replace by their fold: every non-ASCII
    BMP character that NFKC keeps and the fold changes. Then two spaces in a row: a run to
    collapse. Then lead bytes that send the text down the plain path: those of astral
    characters, which the table does not reach, and of U+A000-U+DFFF, whose 11,172 Hangul
    syllables the fold decomposes and would otherwise be as many markers."""
    table = _composed_table()[0]
    chars = [c for c in table if not c.isascii() and not "\ua000" <= c <= "\udfff"
             and unicodedata.normalize("NFKC", c) == c]
    plain = [bytes([b]) for b in (0xEA, 0xEB, 0xEC, 0xED, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4)]
    return [*(c.encode() for c in chars), b"  ", *plain], chars


def _collapse_bytes(data: bytes) -> bytes:
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data


_Hit = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class _Folded:
    """A text's fold as UTF-8 with space runs kept (``spaced``) and collapsed (``data``), and
    the byte offsets of phrases found in ``data`` (not yet checked for word boundaries)."""

    spaced: bytes
    data: bytes
    raw: list[_Hit]


@dataclass(slots=True)
class _Phrases:
    """Folded phrases, all found in one automaton pass over a text's fold.

    The same scan folds the text: after NFKC and the ASCII byte table, markers (see
    ``_markers``) report which other characters need folding; only texts with markers get
    those replaced and are scanned again. Most news text needs one scan."""

    phrases: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    engine: ahocorasick_rs.BytesAhoCorasick | None = None

    def add(self, phrase: str) -> int:
        if phrase not in self.ids:
            self.ids[phrase] = len(self.phrases)
            self.phrases.append(phrase)
        return self.ids[phrase]

    def build(self, *, folds: bool = True) -> None:
        """Compile the automaton; ``folds=False`` leaves out the markers, for phrases only
        ever looked for in text that is folded already."""
        patterns = [*(p.encode() for p in self.phrases), *(_markers()[0] if folds else ())]
        try:
            self.engine = ahocorasick_rs.BytesAhoCorasick(
                patterns, implementation=ahocorasick_rs.Implementation.DFA)
        except ValueError:  # too large for a DFA: the automaton picks a smaller form
            self.engine = ahocorasick_rs.BytesAhoCorasick(patterns)

    def scan(self, data: bytes) -> list[_Hit]:
        """Every occurrence of every pattern: (pattern id, start, end) in bytes."""
        assert self.engine is not None
        return self.engine.find_matches_as_indexes(data, overlapping=True)

    def fold(self, text: str) -> _Folded:
        """``text`` folded, and the phrases in it."""
        normal = text if text.isascii() else unicodedata.normalize("NFKC", text)
        data = _ascii_folded(normal.encode("utf-8", "surrogatepass"))
        raw = self.scan(data)
        size = len(self.phrases)
        fired = {i - size for i, _, _ in raw if i >= size}
        if not fired:
            return _Folded(data, data, raw)
        chars = _markers()[1]
        if max(fired) > len(chars):
            spaced = _unfolded(text).encode("utf-8", "surrogatepass")
        elif min(fired) < len(chars):
            table = _composed_table()[0]
            for marker in fired:
                if marker < len(chars):  # on str: replacing there is several times faster
                    normal = normal.replace(chars[marker], table[chars[marker]])
            spaced = _ascii_folded(normal.encode("utf-8", "surrogatepass"))
        else:  # only runs of spaces
            spaced = data
        data = _collapse_bytes(spaced)
        return _Folded(spaced, data, [h for h in self.scan(data) if h[0] < size])

    def find(self, data: bytes, raw: list[_Hit], folded: str | None = None,
             ) -> list[tuple[int, int, int]]:
        """(phrase id, start, end) of every word-bounded phrase in ``data``, a folded text,
        as character offsets into it (``folded`` is ``data`` decoded, when the caller has
        it); ``raw`` is what the scan found in ``data``."""
        size = len(self.phrases)
        raw = [h for h in raw if h[0] < size]
        if not raw:
            return []
        if folded is None:
            folded = data.decode("utf-8", "surrogatepass")
        if len(data) != len(folded):  # not ASCII: byte offsets → character offsets
            chars: dict[int, int] = {}
            last_byte = last_char = 0
            for offset in sorted({o for _, s, e in raw for o in (s, e)}):
                last_char += len(data[last_byte:offset].decode("utf-8", "surrogatepass"))
                last_byte = offset
                chars[offset] = last_char
            raw = [(p, chars[s], chars[e]) for p, s, e in raw]
        hits = []
        for phrase, start, end in raw:
            text = self.phrases[phrase]
            if _is_word(text[0]) and start > 0 and _is_word(folded[start - 1]):
                continue
            if _is_word(text[-1]) and end < len(folded) and _is_word(folded[end]):
                continue
            hits.append((phrase, start, end))
        return hits

    def find_folded(self, folded: str) -> list[tuple[int, int, int]]:
        """``find`` over text that is folded already."""
        if self.engine is None:
            return []
        data = folded.encode("utf-8", "surrogatepass")
        return self.find(data, self.scan(data), folded)


def _alias_parts(item: WatchItem) -> Iterable[tuple[str, bool]]:
    yield item.name, bool(item.case_sensitive)
    for alias in item.aliases:
        if isinstance(alias, Alias):
            sensitive = item.case_sensitive if alias.case_sensitive is None \
                else alias.case_sensitive
            yield alias.text, bool(sensitive)
        else:
            yield alias, bool(item.case_sensitive)


def _folded(phrase: str, casefold: bool = True) -> str:
    return fold(phrase, casefold=casefold).strip()


class Matcher:
    """Compiled once per config (``Matcher.for_config`` caches by config version);
    ``match`` is a pure function of the article."""

    _cache: ClassVar[dict[str, Matcher]] = {}

    def __init__(self, watchlists: Sequence[WatchlistConfig]) -> None:
        self._items: list[_Item] = []
        self._names = _Phrases()
        self._context = _Phrases()
        self._uses: dict[int, list[_Name]] = {}  # phrase id → names it stands for
        self._excludes: dict[int, list[int]] = {}  # phrase id → items it hides
        for watchlist in watchlists:
            for config in watchlist.items():
                index = len(self._items)
                rules = []
                for kind in ("all_of", "any_of", "none_of"):
                    rule = getattr(config, kind)
                    if rule is not None:
                        terms = {f: t for t in rule.terms if (f := _folded(t))}
                        for term in terms:
                            self._context.add(term)
                        rules.append((kind, rule, terms))
                self._items.append(_Item(
                    watchlist.name, config, frozenset(config.fields or FIELDS),
                    None if watchlist.sources is None else frozenset(watchlist.sources),
                    rules))
                seen: set[tuple[str, str | None]] = set()
                for alias, sensitive in _alias_parts(config):
                    phrase = _folded(alias)
                    cased = _folded(alias, casefold=False) if sensitive else None
                    if not phrase or (phrase, cased) in seen:
                        continue
                    seen.add((phrase, cased))
                    self._uses.setdefault(self._names.add(phrase), []).append(
                        _Name(index, alias, cased))
                for excluded in config.exclude or ():
                    phrase = _folded(excluded)
                    if phrase:
                        self._excludes.setdefault(self._names.add(phrase), []).append(index)
        self._names.build()
        if self._context.phrases:
            self._context.build(folds=False)

    @classmethod
    def for_config(cls, config: Config) -> Matcher:
        """The compiled matcher of this config version, built once per process."""
        matcher = cls._cache.get(config.version)
        if matcher is None:
            if len(cls._cache) >= 4:
                cls._cache.clear()
            matcher = cls._cache[config.version] = cls(config.watchlists)
        return matcher

    def match(self, article: Article) -> list[Match]:
        """The first counting mention of each watch item in each field."""
        scanned = {f: self._names.fold(t) for f in FIELDS if (t := getattr(article, f))}
        if not any(s.raw for s in scanned.values()):
            return []
        texts = {f: getattr(article, f) for f in scanned}
        folded = {f: s.data.decode("utf-8", "surrogatepass") for f, s in scanned.items()}
        hits: dict[str, list[tuple[int, int, int]]] = {}
        origins: dict[str, Sequence[int]] = {}
        for f, s in scanned.items():
            hits[f] = self._names.find(s.data, s.raw, folded[f])
            if not any(phrase in self._uses for phrase, _, _ in hits[f]):
                continue
            if len(s.data) == len(texts[f]) and texts[f].isascii():  # folded letter by letter
                origins[f] = range(len(s.data) + 1)
                continue
            again, origins[f] = aligned(texts[f], s.spaced.decode("utf-8", "surrogatepass"))
            if again != folded[f]:  # only for unusual mark sequences: trust the aligned
                folded[f], hits[f] = again, self._names.find_folded(again)
        terms: dict[str, list[tuple[str, int, int]]] | None = None
        found_matches: list[Match] = []
        for f in FIELDS:
            if f not in origins:
                continue
            text, normal, origin = texts[f], folded[f], origins[f]
            hidden: dict[int, list[tuple[int, int]]] = {}
            for phrase, start, end in hits[f]:
                for index in self._excludes.get(phrase, ()):
                    hidden.setdefault(index, []).append((start, end))
            done: set[int] = set()
            quoted: dict[tuple[int, int], tuple[str, str]] = {}
            for phrase, start, end in sorted(hits[f], key=lambda h: (h[1], -h[2])):
                for name in self._uses.get(phrase, ()):
                    item = self._items[name.item]
                    if name.item in done or f not in item.fields or (
                            item.sources is not None and article.source not in item.sources):
                        continue
                    if any(s <= start and end <= e for s, e in hidden.get(name.item, ())):
                        continue
                    first, last = origin[start], origin[end - 1] + 1
                    surface = text[first:last]
                    if name.cased is not None and _folded(surface, False) != name.cased:
                        continue
                    context: tuple[str, ...] = ()
                    if item.rules:
                        if terms is None:
                            terms = self._terms(folded)
                        explained = self._context_holds(item, f, normal, start, end, terms)
                        if explained is None:
                            continue
                        context = explained
                    done.add(name.item)
                    if (first, last) not in quoted:  # often several items share a mention
                        quoted[first, last] = excerpts(text, first, last)
                    found_matches.append(Match(
                        item.watchlist, item.config.name, name.alias, surface, f, first, last,
                        *quoted[first, last], context))
        return found_matches

    def _terms(self, folded: dict[str, str]) -> dict[str, list[tuple[str, int, int]]]:
        """Every context term's occurrences: term → [(field, start, end)]."""
        found: dict[str, list[tuple[str, int, int]]] = {}
        for f, normal in folded.items():
            for phrase, start, end in self._context.find_folded(normal):
                found.setdefault(self._context.phrases[phrase], []).append((f, start, end))
        return found

    @staticmethod
    def _context_holds(item: _Item, field_name: str, normal: str, start: int, end: int,
                       terms: dict[str, list[tuple[str, int, int]]],
                       ) -> tuple[str, ...] | None:
        """The context terms that satisfied the item's rules for this mention, or None when
        a rule fails."""
        first_word = normal.count(" ", 0, start)
        last_word = normal.count(" ", 0, max(start, end - 1))

        def near(term: str, within: int | None) -> bool:
            """Whether ``term`` occurs outside the mention, within ``within`` words of it
            (in the same field) when that is set, else in any of the item's fields."""
            for f, s, e in terms.get(term, ()):
                if f not in item.fields or (f == field_name and s >= start and e <= end):
                    continue
                if within is None:
                    return True
                if f == field_name:
                    t_first, t_last = normal.count(" ", 0, s), normal.count(" ", 0, e - 1)
                    if max(0, t_first - last_word, first_word - t_last) <= within:
                        return True
            return False

        explained: list[str] = []
        for kind, rule, written in item.rules:
            present = [t for t in written if near(t, rule.within)]
            if kind == "all_of" and len(present) < len(written):
                return None
            if kind == "any_of" and not present:
                return None
            if kind == "none_of" and present:
                return None
            suffix = f" (within {rule.within} words)" if rule.within else ""
            explained += [f"{kind}: {written[t]}{suffix}" for t in present]
        return tuple(explained)
