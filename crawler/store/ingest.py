"""One poll's articles placed and planned, the same for every backend
(``Store.add_articles``); the backend gives the reads and writes (``Batch``).

A poll may bring one article or thousands; the statements per poll stay the same. All
reads come first, one query each for every article of the batch (dedup keys, story
candidates, the stories they lead to, the alerts those sent, the mutes in force); then
each article is placed and planned in Python, in order, seeing the articles before it
in the batch as stored ones (a copy joins a story the same poll started; an alert
planned for one copy counts as sent for the next); then each table gets one write
(``Rows``). Ids are chosen before the rows are written (``Batch.ids``): a story names
its first article and the article its story.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from crawler.core.clock import iso, parse_iso
from crawler.process import stories
from crawler.process.script import script
from crawler.store.records import (
    Muted,
    NewArticle,
    OutboxRow,
    Planner,
    StoredArticle,
    StoryContext,
    StoryRules,
    outbox_row,
    story_subject,
)

MuteRow = tuple[str, str | None, str, int | None]
"""A mute in force: kind, watchlist, target, story id."""


@dataclass(frozen=True, slots=True)
class Rows:
    """Every row one poll writes, table by table, ready for one write each."""

    started: list[tuple[int, str, str | None, str, str, int, int, str, int]]
    """New stories: id, key, title, first seen, last seen, articles, outlets, script,
    first article's id."""
    articles: list[tuple[Any, ...]]
    """id, url, link, guid, source, title, summary, text, author, language, extraction,
    published_at, fetched_at, story_id, similarity, similar_to."""
    keys: list[tuple[str, int]]
    matches: list[tuple[Any, ...]]
    """article_id, story_id, watchlist, watch, alias, matched, field, start, end,
    snippet, highlight, context (JSON), config_version, created_at."""
    joined: list[tuple[str, int, int, int]]
    """Stored stories joined: last seen, articles added, outlets, id."""
    signatures: list[tuple[int, bytes, int]]
    bands: list[tuple[int, int]]
    """(band key, article id), in key order."""
    indexed: list[tuple[int, str, str, str]]
    """(article id, comparable title, summary, text) for the full-text index."""
    outbox: list[dict[str, Any]]
    """Outbox rows with their ``id``; a key queued already stays as it was."""
    items: list[tuple[str, str, int]]
    """(watchlist, watch, outbox id) of each queued alert."""


class Batch(Protocol):
    """What ``add`` needs of a backend, inside its write transaction."""

    def known_keys(self, keys: Collection[str]) -> set[str]:
        """Which of these dedup keys are stored."""

    def article_ids(self, count: int) -> list[int]:
        """Ids for this many new articles."""

    def story_ids(self, count: int) -> list[int]:
        """Ids for this many new stories."""

    def outbox_ids(self, count: int) -> list[int]:
        """Ids for this many new outbox rows."""

    def bands(self, keys: Sequence[int]) -> list[tuple[int, int]]:
        """(band key, article id) stored for these band keys (sorted): the
        ``stories.CANDIDATES_PER_BAND`` most recent articles under each key, oldest
        first."""

    def candidates(self, ids: Collection[int], since: datetime,
                   ) -> list[tuple[int, bytes, int, int]]:
        """(article id, signature, shingles, story id) of those articles with a story,
        fetched since ``since``."""

    def lock_stories(self, ids: Collection[int]) -> None:
        """Hold these stored stories until the commit, before what they were alerted for
        is read: two batches joining one story from different band keys then plan in
        turn (a backend whose write lock covers the whole database does nothing)."""

    def stories(self, ids: Collection[int]) -> list[tuple[int, str, int, str]]:
        """(id, key, articles, first seen) of these stories."""

    def story_sources(self, ids: Collection[int]) -> list[tuple[int, str]]:
        """(story id, source) distinct, each story's sources in the order of their first
        article."""

    def story_alerts(self, ids: Collection[int]) -> list[tuple[int, str, str, str]]:
        """(story id, channel, watchlist, watch) its alerts named."""

    def story_outbox_keys(self, ids: Collection[int]) -> set[str]:
        """The outbox keys queued for the articles of these stories."""

    def mutes(self, now: datetime, stories: Collection[int], sources: Collection[str],
              watches: Collection[str]) -> list[MuteRow]:
        """The mutes in force at ``now`` for these stories, sources and watch items."""

    def write(self, rows: Rows) -> None:
        """Every row of the batch: one write per table."""


@dataclass(slots=True)
class _Story:
    """A story as the batch sees it: stored before, or started by an article of it."""

    id: int
    key: str
    first_seen_at: datetime
    articles: int = 0
    sources: dict[str, None] = field(default_factory=dict)  # distinct, first seen first
    alerted: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    added: int = 0  # articles of this batch in it
    first: NewArticle | None = None  # started here, by this article
    first_id: int = 0


@dataclass(frozen=True, slots=True)
class _Placed:
    """One article with its id and story, and what its story looked like when it came."""

    new: NewArticle
    id: int
    story: _Story
    placement: stories.Placement | None
    articles: int
    sources: tuple[str, ...]


def add(db: Batch, batch: Sequence[NewArticle], now: datetime, config_version: str,
        plan: Planner, rules: StoryRules) -> list[StoredArticle]:
    """Store the articles of ``batch`` none of whose keys is stored or claimed by an
    earlier article of the batch; inside the caller's write transaction."""
    taken = db.known_keys({k for new in batch for k in new.keys})
    kept: list[NewArticle] = []
    for new in batch:
        if taken.isdisjoint(new.keys):
            kept.append(new)
            taken.update(new.keys)
    if not kept:
        return []
    placed = _place(db, kept, db.article_ids(len(kept)), now, rules)
    sent = _stored_stories(db, placed)
    muted = _mutes(db, placed, now)
    stored: list[StoredArticle] = []
    queued: list[tuple[OutboxRow, int]] = []
    for p in placed:
        story = p.story
        alerted = story.alerted if p.placement is not None and p.new.matches else {}
        context = StoryContext(story.id, story.key, p.articles, len(p.sources),
                               story.first_seen_at,
                               {c: frozenset(pairs) for c, pairs in alerted.items()},
                               p.sources, muted(p) if p.new.matches else Muted())
        rows = plan(p.new.article, p.new.matches, context)
        for row in rows:
            if row.key not in sent:  # as INSERT OR IGNORE did: a key is queued once
                sent.add(row.key)
                queued.append((row, p.id))
                if row.items:
                    story.alerted.setdefault(row.channel, set()).update(row.items)
        stored.append(StoredArticle(p.new.article, p.id, story.id, rows, p.new.matches))
    db.write(_rows(placed, queued, db.outbox_ids(len(queued)) if queued else [], now,
                   config_version))
    return stored


def _place(db: Batch, kept: Sequence[NewArticle], article_ids: Sequence[int],
           now: datetime, rules: StoryRules) -> list[_Placed]:
    """Each article in the story ``stories.place`` chooses among the recent stored
    articles sharing a band key with it and the articles before it in the batch, or in
    a story of its own. A story started here has a stand-in id (negative) until the
    placing is done, then as many ids are taken as stories were started: no id is
    spent on a story that was not made."""
    by_band, candidates = _candidates(db, {b for new in kept for b in new.fingerprint.bands},
                                      now, rules)
    known: dict[int, _Story] = {}
    first_seen, started = parse_iso(iso(now)), 0
    decided: list[tuple[NewArticle, int, _Story, stories.Placement | None]] = []
    for article_id, new in zip(article_ids, kept, strict=False):
        fp = new.fingerprint
        sharing = {i for b in fp.bands if b in by_band for i in by_band[b]}
        placement = stories.place(fp, [candidates[i] for i in sorted(sharing)
                                       if i in candidates], rules.threshold)
        if placement is None:
            started += 1
            story = _Story(-started, story_subject(new.article.url), first_seen,
                           first=new, first_id=article_id)
            known[story.id] = story
        else:
            story = known.setdefault(placement.story_id, _Story(placement.story_id, "",
                                                                first_seen))
        if fp.signature:
            candidates[article_id] = stories.Candidate(article_id, story.id, fp.signature,
                                                       fp.shingles)
            for b in fp.bands:
                recent = by_band.setdefault(b, [])
                recent.append(article_id)
                if len(recent) > stories.CANDIDATES_PER_BAND:  # as ``Batch.bands`` keeps them
                    del recent[0]
        decided.append((new, article_id, story, placement))
    begun = [s for s in known.values() if s.first is not None]
    for story, story_id in zip(begun, db.story_ids(len(begun)) if begun else [],
                               strict=True):
        story.id = story_id
    stored = [s for s in known.values() if s.first is None]
    _load(db, stored, {s.id for s in stored} & {
        p.story_id for new, _, _, p in decided if p is not None and new.matches})
    placed = []
    for new, article_id, story, placement in decided:
        story.articles += 1
        story.added += 1
        story.sources.setdefault(new.article.source)
        placed.append(_Placed(new, article_id, story, placement, story.articles,
                              tuple(story.sources)))
    return placed


def _candidates(db: Batch, bands: Collection[int], now: datetime, rules: StoryRules,
                ) -> tuple[dict[int, list[int]], dict[int, stories.Candidate]]:
    """The stored articles sharing one of ``bands``: by band key, and those recent enough
    and in a story as candidates (each read once, however many bands it shares)."""
    by_band: dict[int, list[int]] = {}
    if not bands:
        return by_band, {}
    for key, article_id in db.bands(sorted(bands)):
        by_band.setdefault(key, []).append(article_id)
    ids = {i for found in by_band.values() for i in found}
    return by_band, {other: stories.Candidate(other, story_id, signature, shingles)
                     for other, signature, shingles, story_id in
                     db.candidates(ids, now - rules.window)} if ids else {}


def _load(db: Batch, stored: Sequence[_Story], alerted: set[int]) -> None:
    """Fill in the stored stories the batch joins: key, counts, first seen, sources (in
    the order of their first article) and, for ``alerted``, what each channel's alerts
    named."""
    if not stored:
        return
    by_id = {s.id: s for s in stored}
    db.lock_stories(sorted(by_id))
    for story_id, key, articles, first_seen_at in db.stories(list(by_id)):
        story = by_id[story_id]
        story.key, story.articles = key, articles
        story.first_seen_at = parse_iso(first_seen_at)
    for story_id, source in db.story_sources(list(by_id)):
        by_id[story_id].sources.setdefault(source)
    if alerted:
        for story_id, channel, watchlist, watch in db.story_alerts(alerted):
            by_id[story_id].alerted.setdefault(channel, set()).add((watchlist, watch))


def _stored_stories(db: Batch, placed: Sequence[_Placed]) -> set[str]:
    """The outbox keys already queued for the stored stories the batch's matching
    articles join: a key planned again is not queued again, and names nothing new."""
    joined = {p.story.id for p in placed
              if p.placement is not None and p.new.matches and p.story.first is None}
    return db.story_outbox_keys(joined) if joined else set()


def _mutes(db: Batch, placed: Sequence[_Placed], now: datetime) -> _MuteLookup:
    """The mutes in force now for the stories, sources and watch items of the batch's
    matching articles, read once."""
    matching = [p for p in placed if p.new.matches]
    found: list[MuteRow] = []
    if matching:
        found = db.mutes(now, {p.story.id for p in matching},
                         {p.new.article.source for p in matching},
                         {m.watch for p in matching for m in p.new.matches})
    return _MuteLookup(found)


class _MuteLookup:
    """The mutes read for a batch, per article."""

    def __init__(self, rows: Sequence[MuteRow]) -> None:
        self.stories = {story_id for kind, _, _, story_id in rows if kind == "story"}
        self.sources = {target for kind, _, target, _ in rows if kind == "source"}
        self.watches = [(watchlist, target) for kind, watchlist, target, _ in rows
                        if kind == "watch"]

    def __call__(self, p: _Placed) -> Muted:
        watches = {m.watch for m in p.new.matches}
        return Muted(p.story.id in self.stories, p.new.article.source in self.sources,
                     frozenset(w for w in self.watches if w[1] in watches))


def _rows(placed: Sequence[_Placed], queued: Sequence[tuple[OutboxRow, int]],
          outbox_ids: Sequence[int], now: datetime, config_version: str) -> Rows:
    """Every row of the batch, table by table."""
    at = iso(now)
    touched = {p.story.id: p.story for p in placed}.values()
    signed = [p for p in placed if p.new.fingerprint.signature]
    return Rows(
        started=[(s.id, s.key, a.title, at, at, s.articles, len(s.sources),
                  script(a.title, a.summary, language=a.language), s.first_id)
                 for s in touched if s.first is not None for a in (s.first.article,)],
        articles=[(p.id, a.url, a.link, a.guid, a.source, a.title, a.summary, a.text,
                   a.author or None, a.language or None,
                   None if a.extraction is None else str(a.extraction),
                   iso(a.published_at) if a.published_at else None, at, p.story.id,
                   p.placement.score if p.placement else None,
                   p.placement.similar_to if p.placement else None)
                  for p in placed for a in (p.new.article,)],
        keys=[(k, p.id) for p in placed for k in p.new.keys],
        matches=[(p.id, p.story.id, m.watchlist, m.watch, m.alias, m.matched, m.field,
                  m.start, m.end, m.snippet, m.highlight,
                  json.dumps(list(m.context), ensure_ascii=False), config_version, at)
                 for p in placed for m in p.new.matches],
        joined=[(at, s.added, len(s.sources), s.id) for s in touched if s.first is None],
        signatures=[(p.id, p.new.fingerprint.signature, p.new.fingerprint.shingles)
                    for p in signed],
        # in key order: each page of the index is then visited once per poll, not once
        # per key that lands on it, in whatever order the cache allows
        bands=sorted((b, p.id) for p in signed for b in p.new.fingerprint.bands),
        indexed=[(p.id, *p.new.indexed) for p in placed],
        outbox=[{"id": n, **outbox_row(row, now, article_id)}
                for n, (row, article_id) in zip(outbox_ids, queued, strict=True)],
        items=[(w, watch, n) for n, (row, _) in zip(outbox_ids, queued, strict=True)
               for w, watch in row.items],
    )
