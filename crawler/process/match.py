"""Which watch items an article mentions, where, and why. Pure, no I/O.

Text and watch terms are compared in one *folded* form (``crawler.process.fold``).

All names, aliases and ``exclude`` phrases of every watch item are found in ONE pass of an
Aho-Corasick automaton over the folded text; hits must start and end on word boundaries
(in any script), but a prefix (``guarant*``) may end inside a word, and takes it whole.
The same pass does most of the folding: an article's text is taken as UTF-8 after NFKC and
a byte table for ASCII, and the automaton also holds *markers* for everything else the
fold changes. Text without markers (most English news) is folded and searched in that one
pass; text with markers has those characters replaced and is scanned again. Only articles
with hits go further: context terms are searched (a second automaton), case-sensitive
aliases are checked against the original text, and offsets are mapped back to the
original text to quote it. Context rules read every field unless a rule names its own.
``Matcher.explain`` also says which mentions did not count and why; ``Matcher.match``,
the pipeline's, collects none of that.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple, overload

import ahocorasick_rs

from crawler.config import FIELDS, Alias, Config, ContextRule, WatchItem, WatchlistConfig
from crawler.core.article import Article
from crawler.process.fold import (
    aligned,
    ascii_folded,
    collapse_bytes,
    composed_table,
    excerpts,
    fold,
    fold_markers,
    is_word,
    spaced_fold,
)

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


@dataclass(frozen=True, slots=True)
class Miss:
    """A mention that was found but did not count, and why: the ``rule`` that stopped it
    (``exclude``, ``none_of``, ``all_of``, ``any_of``, ``fields`` or ``case``), with the
    ``terms`` concerned (the vetoing or the missing ones)."""

    watchlist: str
    watch: str
    alias: str
    matched: str
    field: str
    start: int
    end: int
    snippet: str
    highlight: str
    rule: str
    terms: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """What ``Matcher.explain`` found: the matches, and for each watch item that matched
    nowhere, its first mention in each field that did not count."""

    matches: list[Match]
    misses: list[Miss]


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
    # (kind, rule, the fields it reads, folded term → as written)
    rules: list[tuple[str, ContextRule, frozenset[str], dict[str, str]]]


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
    """Folded phrases, all found in one automaton pass over a text's fold. A phrase
    ending in ``*`` is a prefix: the automaton looks for it without the star, and a hit may
    end inside a word, which it then takes whole.

    The same scan folds the text: after NFKC and the ASCII byte table, markers (see
    ``fold_markers``) report which other characters need folding; only texts with markers get
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
        patterns = [*((p[:-1] if p[-1] == "*" else p).encode() for p in self.phrases),
                    *(fold_markers()[0] if folds else ())]
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
        data = ascii_folded(normal.encode("utf-8", "surrogatepass"))
        raw = self.scan(data)
        size = len(self.phrases)
        fired = {i - size for i, _, _ in raw if i >= size}
        if not fired:
            return _Folded(data, data, raw)
        chars = fold_markers()[1]
        if max(fired) > len(chars):
            spaced = spaced_fold(text).encode("utf-8", "surrogatepass")
        elif min(fired) < len(chars):
            table = composed_table()[0]
            for marker in fired:
                if marker < len(chars):  # on str: replacing there is several times faster
                    normal = normal.replace(chars[marker], table[chars[marker]])
            spaced = ascii_folded(normal.encode("utf-8", "surrogatepass"))
        else:  # only runs of spaces
            spaced = data
        data = collapse_bytes(spaced)
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
        size = len(folded)
        for phrase, start, end in raw:
            text = self.phrases[phrase]
            if is_word(text[0]) and start > 0 and is_word(folded[start - 1]):
                continue
            if text[-1] == "*":  # a prefix: it takes the rest of the word it starts
                while end < size and is_word(folded[end]):
                    end += 1
            elif is_word(text[-1]) and end < size and is_word(folded[end]):
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
    """The phrase as the automaton looks for it; a ``*`` that folding left after no word
    (after a tatweel, say) ends nothing, so it is dropped."""
    folded = fold(phrase, casefold=casefold).strip()
    if folded[-1:] == "*" and (len(folded) < 2 or not is_word(folded[-2])):
        return folded[:-1].strip()
    return folded


class Matcher:
    """Compiled once per config (``Matcher.for_config`` caches by config version);
    ``match`` is a pure function of the article."""

    _cache: ClassVar[dict[str, Matcher]] = {}
    _building: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, watchlists: Sequence[WatchlistConfig]) -> None:
        self._items: list[_Item] = []
        self._names = _Phrases()
        self._context = _Phrases()
        self._uses: dict[int, list[_Name]] = {}  # phrase id → names it stands for
        self._excludes: dict[int, list[tuple[int, str]]] = {}  # phrase id → (item, as written)
        for watchlist in watchlists:
            for config in watchlist.items():
                index = len(self._items)
                rules = []
                for kind in ("all_of", "any_of", "none_of"):
                    for rule in getattr(config, kind) or ():
                        terms = {f: t for t in rule.terms if (f := _folded(t))}
                        for term in terms:
                            self._context.add(term)
                        rules.append((kind, rule, frozenset(rule.fields or FIELDS), terms))
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
                        self._excludes.setdefault(self._names.add(phrase), []).append(
                            (index, excluded))
        self._names.build()
        if self._context.phrases:
            self._context.build(folds=False)

    @classmethod
    def for_config(cls, config: Config) -> Matcher:
        """The compiled matcher of this config version, built once per process."""
        return cls.for_version(config.version, config.watchlists)

    @overload
    @classmethod
    def for_version(cls, version: str, watchlists: Sequence[WatchlistConfig]) -> Matcher: ...

    @overload
    @classmethod
    def for_version(cls, version: str, watchlists: None = None) -> Matcher | None: ...

    @classmethod
    def for_version(cls, version: str,
                    watchlists: Sequence[WatchlistConfig] | None = None) -> Matcher | None:
        """The matcher compiled for ``version``, built from ``watchlists`` on first use in
        this process; None when it is not built yet and no watchlists are given (a worker
        process asks for them only then: ``crawler/app/workers.py``). Threads asking at
        once (polls matching in threads) wait for one build, not make one each."""
        with cls._building:
            matcher = cls._cache.get(version)
            if matcher is None and watchlists is not None:
                if len(cls._cache) >= 2:  # 10,000 items take 200 MB: the running version
                    cls._cache.clear()    # and the one before (a poll in flight, a reload)
                matcher = cls._cache[version] = cls(watchlists)
            return matcher

    def match(self, article: Article, *, every: bool = False) -> list[Match]:
        """The first counting mention of each watch item in each field; with ``every``,
        all of them (an alert marks every mention in its snippets)."""
        return self._match(article, None, every)

    def explain(self, article: Article) -> Explanation:
        """``match``, and the mentions that did not count, for a user asking why: for each
        watch item that matched nowhere, its first mention in each field and the rule that
        stopped it. Costs the normal path nothing."""
        misses: list[tuple[int, Miss]] = []
        found = self._match(article, misses, False)
        matched = {(m.watchlist, m.watch) for m in found}
        first: dict[tuple[int, str], Miss] = {}
        for index, miss in misses:
            if (miss.watchlist, miss.watch) not in matched:
                first.setdefault((index, miss.field), miss)
        return Explanation(found, list(first.values()))

    def _match(self, article: Article, misses: list[tuple[int, Miss]] | None,
               every: bool) -> list[Match]:
        """``match``; with ``misses``, also every mention that did not count, and why."""
        scanned: dict[str, _Folded] = {
            f: self._names.fold(t) for f in FIELDS if (t := getattr(article, f))}
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
            hidden: dict[int, list[tuple[int, int, str]]] = {}
            for phrase, start, end in hits[f]:
                for index, excluded in self._excludes.get(phrase, ()):
                    hidden.setdefault(index, []).append((start, end, excluded))
            done: set[int] = set()
            taken: dict[int, list[tuple[int, int]]] = {}  # with every: the spans counted
            quoted: dict[tuple[int, int], tuple[str, str]] = {}
            for phrase, start, end in sorted(hits[f], key=lambda h: (h[1], -h[2])):
                for name in self._uses.get(phrase, ()):
                    item = self._items[name.item]
                    if (name.item in done and not every) or (
                            item.sources is not None and article.source not in item.sources):
                        continue
                    if any(s < end and start < e for s, e in taken.get(name.item, ())):
                        continue  # a shorter alias inside a mention already counted
                    first, last = origin[start], origin[end - 1] + 1
                    surface = text[first:last]
                    failed: _Failed | None = None
                    if f not in item.fields:
                        failed = _Failed("fields", (), f"in the {f}; the item looks only in "
                                         + ", ".join(sorted(item.fields)))
                    elif name.item in hidden and (inside := [
                            p for s, e, p in hidden[name.item] if s <= start and end <= e]):
                        failed = _Failed("exclude", (inside[0],),
                                         f"inside the excluded {inside[0]!r}")
                    elif name.cased is not None and not _same_case(surface, name.cased):
                        failed = _Failed("case", (name.alias,),
                                         f"not written {name.alias!r} (case-sensitive)")
                    context: tuple[str, ...] = ()
                    if failed is None and item.rules:
                        if terms is None:
                            terms = self._terms(folded)
                        explained = self._context_holds(item, f, normal, start, end, terms)
                        if isinstance(explained, _Failed):
                            failed = explained
                        else:
                            context = explained
                    if failed is not None:
                        if misses is not None:
                            if (first, last) not in quoted:
                                quoted[first, last] = excerpts(text, first, last)
                            misses.append((name.item, Miss(
                                item.watchlist, item.config.name, name.alias, surface, f,
                                first, last, *quoted[first, last], failed.kind, failed.terms,
                                failed.reason)))
                        continue
                    done.add(name.item)
                    taken.setdefault(name.item, []).append((start, end))
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
                       ) -> tuple[str, ...] | _Failed:
        """The context terms that satisfied the item's rules for this mention, or the rule
        that failed (its kind, the terms concerned, and why)."""
        first_word = normal.count(" ", 0, start)
        last_word = normal.count(" ", 0, max(start, end - 1))

        def near(term: str, within: int | None, fields: frozenset[str]) -> bool:
            """Whether ``term`` occurs outside the mention, within ``within`` words of it
            (in the same field) when that is set, else in any of the rule's fields."""
            for f, s, e in terms.get(term, ()):
                if f not in fields or (f == field_name and s >= start and e <= end):
                    continue
                if within is None:
                    return True
                if f == field_name:
                    t_first, t_last = normal.count(" ", 0, s), normal.count(" ", 0, e - 1)
                    if max(0, t_first - last_word, first_word - t_last) <= within:
                        return True
            return False

        explained: list[str] = []
        for kind, rule, fields, written in item.rules:
            present = [t for t in written if near(t, rule.within, fields)]
            suffix = f" (within {rule.within} words)" if rule.within else ""
            if kind == "all_of" and len(present) < len(written):
                missing = tuple(written[t] for t in written if t not in present)
                return _Failed("all_of", missing, f"all_of: no {', '.join(missing)}{suffix}")
            if kind == "any_of" and not present:
                wanted = tuple(written.values())
                return _Failed("any_of", wanted, f"any_of: none of {', '.join(wanted)}"
                               f"{suffix}")
            if kind == "none_of" and present:
                vetoes = tuple(written[t] for t in present)
                return _Failed("none_of", vetoes, f"none_of: {', '.join(vetoes)}{suffix}")
            explained += [f"{kind}: {written[t]}{suffix}" for t in present]
        return tuple(explained)


class _Failed(NamedTuple):
    """What stopped a mention: the rule's kind, the terms concerned, and why."""

    kind: str
    terms: tuple[str, ...]
    reason: str


def _same_case(surface: str, cased: str) -> bool:
    """Whether a case-sensitive alias is written as in the text (a prefix, up to its star)."""
    written = _folded(surface, False)
    return written.startswith(cased[:-1]) if cased[-1] == "*" else written == cased
