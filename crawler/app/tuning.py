"""Mutes and feedback: what users teach newswatch, one use case for the CLI and the desk.

**Mutes** silence a story, a watch item or a source on every channel. They live in the
database; the store reads those in force inside the transaction that stores an article
(``StoryContext.muted``) and the pipeline drops the silenced matches before the alert
planner sees them. Making a mute marks the alerts it silences that wait to be sent
(pending, held for a digest, between retries) ``muted``: never sent, even after an
unmute. For a watch item, that is an alert whose article matched only muted items.

**Feedback** (``propose``): "this article's match of this watch item is not relevant"
becomes a proposed rule for the item, an ``exclude`` phrase from the words around the
mention as the text wrote them, or a ``none_of`` term distinctive of the article. Each
candidate is replayed with the real matcher over the item's stored matches; a rule is
proposed only if it removes the marked match and at most ``SAFE_SHARE`` of the others.

**Learned rules** live in the database as an overlay on the YAML watchlists (``config/``
is read-only to the daemon, and several daemons share one database): ``overlay`` adds
them to the items they name wherever watchlists are compiled (the pipeline, ``check``,
``match``, ``backtest``), and ``export`` writes them as YAML to fold into
``watchlists.yaml``.

Nothing here prints or parses a command line: the CLI (``crawler/cli/tuning.py``) and the
web desk call these functions with the user's name and the time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from crawler.config import FIELDS, Config, ContextRule, WatchItem, WatchlistConfig
from crawler.core.article import Article
from crawler.core.errors import NewswatchError
from crawler.process.dedup import canonical_url
from crawler.process.fold import fold
from crawler.process.match import Match, Matcher
from crawler.store import FoundArticle, LearnedRule, Mute, Store
from crawler.store.records import RuleKind

#: A proposed rule may remove at most this share of the item's other matches.
SAFE_SHARE = 0.2
#: How far back ``propose`` replays by default.
BACKTEST_SPAN = timedelta(days=90)
#: How many distinctive words ``propose`` tries as ``none_of`` terms.
TERMS_TRIED = 15

_WORD = re.compile(r"\w+(?:[\u200c\u200d'’-]\w+)*")
_SENTENCE_END = re.compile(r"[.!?؟।\n]")


class TuningError(NewswatchError):
    """A mute or feedback request that cannot be done; the message says why, for a user."""


# --- looking up -----------------------------------------------------------------------------


def find_article(store: Store, url: str) -> FoundArticle:
    """The stored article at ``url`` (any of its URLs, canonicalised as the pipeline
    does)."""
    found = store.find_article(canonical_url(url.strip()))
    if found is None:
        raise TuningError(f"no stored article has the URL {url}")
    return found


def _items_named(config: Config, watch: str, watchlist: str | None) -> list[str]:
    """The watchlists having a watch item ``watch`` (only ``watchlist``, when given)."""
    return [w.name for w in config.watchlists if (watchlist is None or w.name == watchlist)
            and any(i.name == watch for i in w.watch)]


# --- mutes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Muting:
    """A mute made: its id, what it concerns, and how many waiting alerts it muted."""

    id: int
    mute: Mute
    alerts_muted: int
    title: str = ""


def mute_story(store: Store, url: str, by: str, now: datetime,
               duration: timedelta | None = None) -> Muting:
    """Mute the story of the article at ``url``, until undone or for ``duration``."""
    found = find_article(store, url)
    if found.story is None:
        raise TuningError(f"{url} belongs to no story (stored before stories were kept)")
    mute = Mute("story", found.story, by, now, now + duration if duration else None,
                article_url=found.article.url)
    mute_id, muted = store.add_mute(mute)
    return Muting(mute_id, mute, muted, found.article.title)


def mute_watch(config: Config, store: Store, watch: str, by: str, now: datetime,
               duration: timedelta, watchlist: str | None = None,
               article_url: str | None = None) -> Muting:
    """Mute a watch item (in every watchlist that has it, or in ``watchlist``) for
    ``duration``: its matches alert nobody meanwhile. ``article_url``: the article that
    prompted it, kept with the mute."""
    if not _items_named(config, watch, watchlist):
        raise TuningError(f"no watch item named {watch!r}"
                          + (f" in watchlist {watchlist!r}" if watchlist else ""))
    return _timed(store, Mute("watch", watch, by, now, now + duration, watchlist,
                              _canonical(article_url)), duration)


def mute_source(config: Config, store: Store, source: str, by: str, now: datetime,
                duration: timedelta, article_url: str | None = None) -> Muting:
    """Mute every alert of one source's articles for ``duration``."""
    if source not in {s.name for s in config.sources}:
        raise TuningError(f"no source named {source!r}")
    return _timed(store, Mute("source", source, by, now, now + duration,
                              article_url=_canonical(article_url)), duration)


def _canonical(url: str | None) -> str | None:
    return canonical_url(url.strip()) if url else None


def _timed(store: Store, mute: Mute, duration: timedelta) -> Muting:
    if duration <= timedelta(0):
        raise TuningError("a mute of a watch item or a source needs a duration (--for 24h)")
    mute_id, muted = store.add_mute(mute)
    return Muting(mute_id, mute, muted)


def unmute(store: Store, mute_id: int, by: str, now: datetime) -> bool:
    """End a mute from now on; whether it was in force. What it muted stays muted."""
    return store.end_mute(mute_id, now, by)


# --- learned rules as an overlay --------------------------------------------------------------


def _same(a: str, b: str) -> bool:
    return fold(a) == fold(b)


def _with_rules(item: WatchItem, rules: Iterable[LearnedRule]) -> WatchItem:
    """``item`` (defaults applied) with the learned rules added; a term it has already
    is not added twice. Learned ``none_of`` terms are one more rule, over the whole
    article: they say what the article is about, wherever it says so."""
    exclude = list(item.exclude or [])
    none_of = list(item.none_of or [])
    learned: list[str] = []
    for rule in rules:
        if rule.kind == "exclude" and not any(_same(rule.term, e) for e in exclude):
            exclude.append(rule.term)
        elif rule.kind == "none_of" and not any(
                _same(rule.term, t) for t in [*_terms(none_of), *learned]):
            learned.append(rule.term)
    if learned:
        none_of.append(ContextRule(terms=learned))
    return item.model_copy(update={"exclude": exclude or None, "none_of": none_of or None})


def _terms(rules: Iterable[ContextRule] | None) -> list[str]:
    return [t for r in rules or () for t in r.terms]


def _by_item(rules: Iterable[LearnedRule]) -> dict[tuple[str, str], list[LearnedRule]]:
    grouped: dict[tuple[str, str], list[LearnedRule]] = {}
    for rule in rules:
        grouped.setdefault((rule.watchlist, rule.watch), []).append(rule)
    return grouped


def overlay_watchlists(watchlists: Iterable[WatchlistConfig],
                       rules: Sequence[LearnedRule]) -> list[WatchlistConfig]:
    """The watchlists with each learned rule added to the item it names. A rule naming
    an item the YAML no longer has does nothing (``check`` says so)."""
    grouped = _by_item(rules)
    tuned = []
    for watchlist in watchlists:
        if not any((watchlist.name, i.name) in grouped for i in watchlist.watch):
            tuned.append(watchlist)
            continue
        tuned.append(watchlist.model_copy(update={"watch": [
            _with_rules(i.resolved(watchlist.defaults), grouped[watchlist.name, i.name])
            if (watchlist.name, i.name) in grouped else i for i in watchlist.watch]}))
    return tuned


def overlay(config: Config, rules: Sequence[LearnedRule]) -> Config:
    """``config`` with the learned rules added, under its own version (so a compiled
    matcher is cached per config and set of rules)."""
    if not rules:
        return config
    digest = hashlib.sha256(repr([(r.id, r.watchlist, r.watch, r.kind, r.term)
                                  for r in rules]).encode()).hexdigest()[:8]
    return dataclasses.replace(config, version=f"{config.version}+rules.{digest}",
                               watchlists=tuple(overlay_watchlists(config.watchlists, rules)))


def rule_states(config: Config, rules: Sequence[LearnedRule]) -> list[tuple[LearnedRule, str]]:
    """Each rule and what it does on this config: ``applied``, ``in watchlists.yaml``
    already (remove it), or ``no such watch item`` (the YAML dropped or renamed it)."""
    items = {(w.name, i.name): i.resolved(w.defaults) for w in config.watchlists
             for i in w.watch}
    states = []
    for rule in rules:
        item = items.get((rule.watchlist, rule.watch))
        if item is None:
            states.append((rule, "no such watch item"))
            continue
        present = item.exclude or [] if rule.kind == "exclude" else _terms(item.none_of)
        states.append((rule, "in watchlists.yaml" if any(_same(rule.term, t)
                                                         for t in present) else "applied"))
    return states


def vetoes(watchlists: Sequence[WatchlistConfig], rules: Sequence[LearnedRule],
           article: Article) -> list[tuple[Match, LearnedRule]]:
    """The matches the YAML watchlists make that a learned rule takes away, each with
    the rule that does (what ``match`` shows)."""
    grouped = _by_item(rules)
    found = []
    by_name = {w.name: w for w in watchlists}
    for match in Matcher(watchlists).match(article):
        for rule in grouped.get((match.watchlist, match.watch), ()):
            if not _matches(_single(by_name[match.watchlist], match.watch, rule), article):
                found.append((match, rule))
                break
    return found


def _single(watchlist: WatchlistConfig, watch: str,
            rule: LearnedRule | None = None) -> Matcher:
    """A matcher of one watch item (defaults applied, with ``rule`` added): items are
    matched independently, so this is what the whole watchlist does for it."""
    item = next(i.resolved(watchlist.defaults) for i in watchlist.watch if i.name == watch)
    if rule is not None:
        item = _with_rules(item, [rule])
    return Matcher([watchlist.model_copy(update={"watch": [item]})])


def _matches(matcher: Matcher, article: Article) -> Match | None:
    return next(iter(matcher.match(article)), None)


def export(config: Config, rules: Sequence[LearnedRule]) -> str:
    """The learned rules as YAML to fold into ``watchlists.yaml``: each watchlist with a
    rule, and each of its items with a rule written out whole with the rules added (each
    learned term marked by a comment). It is a valid ``watchlists.yaml`` by itself."""
    grouped = _by_item(rules)
    document = CommentedMap()
    lists = CommentedSeq()
    for watchlist in config.watchlists:
        items = [i for i in watchlist.watch if (watchlist.name, i.name) in grouped]
        if not items:
            continue
        entry = CommentedMap(name=watchlist.name)
        if watchlist.channels:
            entry["channels"] = list(watchlist.channels)
        if watchlist.sources is not None:
            entry["sources"] = list(watchlist.sources)
        watch = CommentedSeq()
        for item in items:
            mine = grouped[watchlist.name, item.name]
            tuned = _with_rules(item.resolved(watchlist.defaults), mine)
            dumped = CommentedMap(tuned.model_dump(mode="json", exclude_none=True,
                                                   exclude_defaults=True))
            dumped["name"] = item.name
            dumped.move_to_end("name", last=False)
            if dumped.get("exclude") is not None:
                dumped["exclude"] = _marked(dumped["exclude"], mine, "exclude")
            for written in dumped.get("none_of") or ():
                written["terms"] = _marked(written["terms"], mine, "none_of")
            watch.append(dumped)
        entry["watch"] = watch
        lists.append(entry)
    document["watchlists"] = lists
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    text = io.StringIO()
    text.write(f"# {len(rules)} learned rule(s) from the database (newswatch rules export).\n"
               "# Replace these watch items in watchlists.yaml by the ones below, then\n"
               "# `newswatch rules remove ID` each rule: check shows which are folded in.\n")
    yaml.dump(document, text)
    return text.getvalue()


def _marked(terms: list[str], mine: Sequence[LearnedRule], kind: str) -> CommentedSeq:
    """``terms`` with each learned one marked by a comment saying where it came from."""
    seq = CommentedSeq(terms)
    for n, term in enumerate(terms):
        rule = next((r for r in mine if r.kind == kind and _same(r.term, term)), None)
        if rule is not None:
            seq.yaml_add_eol_comment(_origin(rule), n)
    return seq


def _origin(rule: LearnedRule) -> str:
    return (f"learned rule {rule.id}, by {rule.created_by}, "
            f"{rule.created_at.date().isoformat()}"
            + (f", from {rule.article_url}" if rule.article_url else ""))


# --- feedback -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Effect:
    """What a rule would have done over the item's stored matches: whether it removes
    the marked one, and which of the ``others`` it removes too."""

    rule: LearnedRule
    removes_marked: bool
    others: int
    removed: tuple[str, ...]  # URLs of the other articles it would no longer match

    @property
    def share(self) -> float:
        return len(self.removed) / self.others if self.others else 0.0

    @property
    def safe(self) -> bool:
        return self.removes_marked and len(self.removed) <= SAFE_SHARE * self.others

    def as_dict(self) -> dict[str, Any]:
        return {"watchlist": self.rule.watchlist, "watch": self.rule.watch,
                "kind": self.rule.kind, "term": self.rule.term,
                "removes_marked": self.removes_marked, "others": self.others,
                "removed": len(self.removed), "share": round(self.share, 3),
                "removed_urls": list(self.removed), "safe": self.safe}


@dataclass(frozen=True, slots=True)
class Proposal:
    """The answer to "not relevant": the marked match, the rule proposed (None: no safe
    rule was found), the other safe rules found, and every candidate tried."""

    article: FoundArticle
    match: Match
    since: datetime
    rule: Effect | None
    alternatives: tuple[Effect, ...]
    tried: tuple[Effect, ...]


def _matched_before(store: Store, watchlist: WatchlistConfig, watch: str, start: datetime,
                    marked: Article) -> list[Article]:
    """The item's other stored matches since ``start`` that it still matches today (the
    YAML or a learned rule may have changed since): what a rule is measured against."""
    matcher = _single(watchlist, watch)
    return [a for a, _ in store.archive(start, watch=(watchlist.name, watch))
            if a.url != marked.url and _matches(matcher, a)]


def _effect(watchlist: WatchlistConfig, rule: LearnedRule, marked: Article,
            before: Sequence[Article]) -> Effect:
    """``rule`` added to its item, replayed over the marked article and ``before``."""
    matcher = _single(watchlist, rule.watch, rule)
    if _matches(matcher, marked) is not None:
        return Effect(rule, False, len(before), ())
    return Effect(rule, True, len(before),
                  tuple(a.url for a in before if _matches(matcher, a) is None))


def propose(config: Config, store: Store, url: str, watch: str, by: str, now: datetime,
            *, watchlist: str | None = None, since: timedelta = BACKTEST_SPAN) -> Proposal:
    """A rule that stops ``watch`` matching the article at ``url``, safe by the backtest
    over the item's stored matches since ``now - since``; see the module docstring."""
    found = find_article(store, url)
    if found.pruned:
        raise TuningError(f"the text of {url} was pruned (retention): nothing to learn from")
    names = _items_named(config, watch, watchlist)
    if len(names) > 1:
        names = [n for n in names if (n, watch) in found.matched] or names
    if not names:
        raise TuningError(f"no watch item named {watch!r}"
                          + (f" in watchlist {watchlist!r}" if watchlist else ""))
    if len(names) > 1:
        raise TuningError(f"watch item {watch!r} is in several watchlists "
                          f"({', '.join(names)}): say which one")
    tuned = {w.name: w for w in overlay_watchlists(config.watchlists, store.rules())}[names[0]]
    marked = _matches(_single(tuned, watch), found.article)
    if marked is None:
        raise TuningError(f"{found.article.url} does not match {watch!r} now: the "
                          "watchlist or a learned rule leaves it out already")
    start = now - since
    before = _matched_before(store, tuned, watch, start, found.article)
    tried = tuple(_effect(tuned, LearnedRule(tuned.name, watch, kind, term, by, now,
                                             found.article.url), found.article, before)
                  for kind, term in _candidates(found.article, marked, before, tuned, watch))
    # the fewest other matches removed; on a tie, the order tried (exclude first)
    safe = sorted((e for e in tried if e.safe), key=lambda e: len(e.removed))
    return Proposal(found, marked, start, safe[0] if safe else None, tuple(safe[1:]), tried)


def evaluate(config: Config, store: Store, rule: LearnedRule, url: str, now: datetime,
             since: timedelta = BACKTEST_SPAN) -> Effect:
    """The backtest of any rule (say, one a user edited) for the article at ``url``."""
    found = find_article(store, url)
    watchlist = next((w for w in overlay_watchlists(config.watchlists, store.rules())
                      if w.name == rule.watchlist), None)
    if watchlist is None or not any(i.name == rule.watch for i in watchlist.watch):
        raise TuningError(f"no watch item named {rule.watch!r} in watchlist "
                          f"{rule.watchlist!r}")
    return _effect(watchlist, rule, found.article, _matched_before(
        store, watchlist, rule.watch, now - since, found.article))


def apply(store: Store, effect: Effect) -> int:
    """Keep a proposed (or edited) rule in the database: the daemon's next batch, and
    ``once``, ``match`` and ``backtest`` use it from now on. Returns the rule's id."""
    if not effect.removes_marked:
        raise TuningError("this rule does not remove the marked match")
    note = (f"removed the marked match and {len(effect.removed)} of {effect.others} "
            "other stored match(es)")
    return store.add_rule(dataclasses.replace(effect.rule, note=note))


def _candidates(article: Article, marked: Match, others: Sequence[Article],
                watchlist: WatchlistConfig, watch: str) -> list[tuple[RuleKind, str]]:
    """Exclude phrases around the mention (shortest first), then the article's most
    distinctive words as ``none_of`` terms."""
    found: list[tuple[RuleKind, str]] = [("exclude", p) for p in _phrases(article, marked)]
    item = next(i for i in watchlist.watch if i.name == watch)
    own = {w for name in [item.name, *(a if isinstance(a, str) else a.text
                                       for a in item.aliases)]
           for w in fold(name).split()}
    found += [("none_of", t) for t in _distinctive(article, others, own)]
    return found


def _phrases(article: Article, marked: Match) -> list[str]:
    """The mention with one or two words before or after it, as the text wrote them
    (the shortest first), never across the end of a sentence."""
    text = getattr(article, marked.field)
    words = list(_WORD.finditer(text))
    before = [w for w in words if w.end() <= marked.start][-2:]
    after = [w for w in words if w.start() >= marked.end][:2]
    spans = []
    for back, ahead in ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0)):
        if back > len(before) or ahead > len(after):
            continue
        if back + ahead == 1 and len((before[-1] if back else after[0]).group()) < 3:
            continue  # "Massoud of", "دوستم را": a particle says nothing of the context
        first = before[-back].start() if back else marked.start
        last = after[ahead - 1].end() if ahead else marked.end
        spans.append((first, last))
    phrases = []
    for first, last in spans:
        phrase = text[first:last]
        if _SENTENCE_END.search(phrase):
            continue
        phrase = " ".join(phrase.split())
        if phrase not in phrases:
            phrases.append(phrase)
    return phrases


def _words(article: Article) -> Counter[str]:
    """The article's words as written, counted by their folded form (first spelling)."""
    counts: Counter[str] = Counter()
    for f in FIELDS:
        for word in _WORD.findall(getattr(article, f) or ""):
            counts[word] += 1
    return counts


def _distinctive(article: Article, others: Sequence[Article], own: set[str]) -> list[str]:
    """Words frequent in this article and rare in the item's other matched articles
    (in at most ``SAFE_SHARE`` of them), not part of the item's own names."""
    spelled: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for word, n in _words(article).items():
        key = fold(word)
        if len(key) < 4 or key.isdigit() or key in own:
            continue
        spelled.setdefault(key, word)
        counts[key] += n
    if not counts:
        return []
    seen: Counter[str] = Counter()
    for other in others:
        seen.update({fold(w) for w in _words(other)} & counts.keys())
    title = {fold(w) for w in _WORD.findall(article.title)}
    limit = SAFE_SHARE * len(others)
    ranked = sorted((k for k in counts if seen[k] <= limit),
                    key=lambda k: (seen[k], -(counts[k] + 2 * (k in title)), k))
    return [spelled[k] for k in ranked[:TERMS_TRIED]]
