"""One poll's articles stored in a fixed number of statements (``Articles.add_articles``).

A poll may bring one article or thousands; the statements per poll stay the same. All
reads come first, one query each for every article of the batch (dedup keys, story
candidates, the stories they lead to, the alerts those sent, the mutes in force); then
each article is placed and planned in Python, in order, seeing the articles before it
in the batch as stored ones (a copy joins a story the same poll started; an alert
planned for one copy counts as sent for the next); then each table gets one
``executemany``. New rows get ids counted up from the table's highest: the write lock,
taken up front, keeps any other writer out until the commit, and the tables have no
AUTOINCREMENT, so these are the ids SQLite would choose.

Lists of values reach SQL as one JSON array (``IN (SELECT value FROM json_each(?))``),
so a lookup is one statement whatever the batch size, under any variable limit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

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
    story_subject,
)
from crawler.store.sqlite import fts
from crawler.store.sqlite.outbox import outbox_row
from crawler.store.sqlite.tuning import ACTIVE

#: The values of one JSON array parameter, for ``IN``.
EACH = "SELECT value FROM json_each(?)"


def each(values: Collection[object]) -> str:
    """``values`` as the JSON array ``EACH`` reads."""
    return json.dumps(list(values), ensure_ascii=False)


def known_keys(conn: sqlite3.Connection, keys: Collection[str]) -> set[str]:
    """Which of these dedup keys are stored: one query."""
    if not keys:
        return set()
    return {r[0] for r in conn.execute(f"SELECT key FROM article_keys WHERE key IN ({EACH})",
                                       [each(keys)])}


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


def add(conn: sqlite3.Connection, batch: Sequence[NewArticle], now: datetime,
        config_version: str, plan: Planner, rules: StoryRules) -> list[StoredArticle]:
    """Store the articles of ``batch`` none of whose keys is stored or claimed by an
    earlier article of the batch; inside the caller's write transaction."""
    taken = known_keys(conn, {k for new in batch for k in new.keys})
    kept: list[NewArticle] = []
    for new in batch:
        if taken.isdisjoint(new.keys):
            kept.append(new)
            taken.update(new.keys)
    if not kept:
        return []
    last_article, last_story, last_outbox = conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM articles), "
        "(SELECT coalesce(max(id), 0) FROM stories), "
        "(SELECT coalesce(max(id), 0) FROM outbox)").fetchone()
    placed = _place(conn, kept, last_article, last_story, now, rules)
    sent = _stored_stories(conn, placed)
    muted = _mutes(conn, placed, now)
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
    _write(conn, placed, queued, last_outbox, now, config_version)
    return stored


def _place(conn: sqlite3.Connection, kept: Sequence[NewArticle], last_article: int,
           last_story: int, now: datetime, rules: StoryRules) -> list[_Placed]:
    """Each article in the story ``stories.place`` chooses among the recent stored
    articles sharing a band key with it and the articles before it in the batch, or in
    a story of its own."""
    by_band, candidates = _candidates(conn, {b for new in kept for b in new.fingerprint.bands},
                                      now, rules)
    known: dict[int, _Story] = {}
    first_seen, started = parse_iso(iso(now)), 0
    decided: list[tuple[NewArticle, int, _Story, stories.Placement | None]] = []
    for n, new in enumerate(kept, start=1):
        article_id, fp = last_article + n, new.fingerprint
        sharing = {i for b in fp.bands if b in by_band for i in by_band[b]}
        placement = stories.place(fp, [candidates[i] for i in sorted(sharing)
                                       if i in candidates], rules.threshold)
        if placement is None:
            started += 1
            story = _Story(last_story + started, story_subject(new.article.url), first_seen,
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
                if len(recent) > stories.CANDIDATES_PER_BAND:  # as the query keeps them
                    del recent[0]
        decided.append((new, article_id, story, placement))
    stored = [s for s in known.values() if s.first is None]
    _load(conn, stored, {s.id for s in stored} & {
        p.story_id for new, _, _, p in decided if p is not None and new.matches})
    placed = []
    for new, article_id, story, placement in decided:
        story.articles += 1
        story.added += 1
        story.sources.setdefault(new.article.source)
        placed.append(_Placed(new, article_id, story, placement, story.articles,
                              tuple(story.sources)))
    return placed


def _candidates(conn: sqlite3.Connection, bands: Collection[int], now: datetime,
                rules: StoryRules) -> tuple[dict[int, list[int]], dict[int, stories.Candidate]]:
    """The stored articles sharing one of ``bands``: by band key, and those recent enough
    and in a story as candidates (each read once, however many bands it shares)."""
    by_band: dict[int, list[int]] = {}
    if not bands:
        return by_band, {}
    for key, article_id in conn.execute(  # the most recent few per key, oldest first
            "SELECT key, article_id FROM (SELECT key, article_id, row_number() OVER "
            "(PARTITION BY key ORDER BY article_id DESC) AS n FROM story_bands "
            f"WHERE key IN ({EACH})) WHERE n <= ? ORDER BY key, article_id",
            [each(sorted(bands)), stories.CANDIDATES_PER_BAND]):
        by_band.setdefault(key, []).append(article_id)
    ids = {i for found in by_band.values() for i in found}
    return by_band, {other: stories.Candidate(other, story_id, signature, shingles)
                     for other, signature, shingles, story_id in conn.execute(
        "SELECT s.article_id, s.signature, s.shingles, a.story_id FROM article_signatures s "
        f"JOIN articles a ON a.id = s.article_id WHERE s.article_id IN ({EACH}) "
        "AND a.fetched_at >= ? AND a.story_id IS NOT NULL",
        [each(ids), iso(now - rules.window)])} if ids else {}


def _load(conn: sqlite3.Connection, stored: Sequence[_Story], alerted: set[int]) -> None:
    """Fill in the stored stories the batch joins: key, counts, first seen, sources (in
    the order of their first article) and, for ``alerted``, what each channel's alerts
    named."""
    if not stored:
        return
    by_id = {s.id: s for s in stored}
    for story_id, key, articles, first_seen_at in conn.execute(
            f"SELECT id, key, articles, first_seen_at FROM stories WHERE id IN ({EACH})",
            [each(by_id)]):
        story = by_id[story_id]
        story.key, story.articles = key, articles
        story.first_seen_at = parse_iso(first_seen_at)
    for story_id, source in conn.execute(
            f"SELECT story_id, source FROM articles WHERE story_id IN ({EACH}) "
            "GROUP BY story_id, source ORDER BY story_id, min(id)", [each(by_id)]):
        by_id[story_id].sources.setdefault(source)
    if alerted:
        for story_id, channel, watchlist, watch in conn.execute(
                "SELECT DISTINCT a.story_id, o.channel, i.watchlist, i.watch FROM articles a "
                "JOIN outbox o ON o.article_id = a.id JOIN outbox_items i "
                f"ON i.outbox_id = o.id WHERE a.story_id IN ({EACH})", [each(alerted)]):
            by_id[story_id].alerted.setdefault(channel, set()).add((watchlist, watch))


def _stored_stories(conn: sqlite3.Connection, placed: Sequence[_Placed]) -> set[str]:
    """The outbox keys already queued for the stored stories the batch's matching
    articles join: a key planned again is not queued again, and names nothing new."""
    joined = {p.story.id for p in placed
              if p.placement is not None and p.new.matches and p.story.first is None}
    if not joined:
        return set()
    return {r[0] for r in conn.execute(
        "SELECT o.key FROM outbox o JOIN articles a ON a.id = o.article_id "
        f"WHERE a.story_id IN ({EACH})", [each(joined)])}


def _mutes(conn: sqlite3.Connection, placed: Sequence[_Placed],
           now: datetime) -> _MuteLookup:
    """The mutes in force now for the stories, sources and watch items of the batch's
    matching articles, read once."""
    matching = [p for p in placed if p.new.matches]
    found = []
    if matching:
        found = conn.execute(
            "SELECT m.kind, m.watchlist, m.target, m.story_id FROM mutes m "
            f"WHERE {ACTIVE} AND ("
            "(m.kind = 'story' AND m.story_id IN (SELECT value FROM json_each(:stories))) "
            "OR (m.kind = 'source' AND m.target IN (SELECT value FROM json_each(:sources))) "
            "OR (m.kind = 'watch' AND m.target IN (SELECT value FROM json_each(:watches))))",
            {"now": iso(now), "stories": each({p.story.id for p in matching}),
             "sources": each({p.new.article.source for p in matching}),
             "watches": each({m.watch for p in matching for m in p.new.matches})}).fetchall()
    return _MuteLookup(found)


class _MuteLookup:
    """The mutes read for a batch, per article."""

    def __init__(self, rows: Sequence[tuple[str, str | None, str, int | None]]) -> None:
        self.stories = {story_id for kind, _, _, story_id in rows if kind == "story"}
        self.sources = {target for kind, _, target, _ in rows if kind == "source"}
        self.watches = [(watchlist, target) for kind, watchlist, target, _ in rows
                        if kind == "watch"]

    def __call__(self, p: _Placed) -> Muted:
        watches = {m.watch for m in p.new.matches}
        return Muted(p.story.id in self.stories, p.new.article.source in self.sources,
                     frozenset(w for w in self.watches if w[1] in watches))


def _write(conn: sqlite3.Connection, placed: Sequence[_Placed],
           queued: Sequence[tuple[OutboxRow, int]], last_outbox: int, now: datetime,
           config_version: str) -> None:
    """Every row of the batch: one ``executemany`` per table."""
    at = iso(now)
    touched = {p.story.id: p.story for p in placed}.values()
    started = [s for s in touched if s.first is not None]
    # A story names its first article, which names its story: the story comes first,
    # then its article, then the link back (deferring the check instead would have
    # SQLite scan every referring table at each insert).
    if started:
        conn.executemany("INSERT INTO stories (id, key, title, first_seen_at, last_seen_at, "
                         "articles, outlets, script) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [(s.id, s.key, a.title, at, at, s.articles, len(s.sources),
                           script(a.title, a.summary, language=a.language))
                          for s in started if s.first for a in (s.first.article,)])
    conn.executemany(
        "INSERT INTO articles (id, url, link, guid, source, title, summary, text, author, "
        "language, extraction, published_at, fetched_at, story_id, similarity, similar_to) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(p.id, a.url, a.link, a.guid, a.source, a.title, a.summary, a.text,
          a.author or None, a.language or None,
          None if a.extraction is None else str(a.extraction),
          iso(a.published_at) if a.published_at else None, at, p.story.id,
          p.placement.score if p.placement else None,
          p.placement.similar_to if p.placement else None)
         for p in placed for a in (p.new.article,)])
    conn.executemany("INSERT INTO article_keys (key, article_id) VALUES (?, ?)",
                     [(k, p.id) for p in placed for k in p.new.keys])
    matches = [(p.id, p.story.id, m.watchlist, m.watch, m.alias, m.matched, m.field,
                m.start, m.end, m.snippet, m.highlight,
                json.dumps(list(m.context), ensure_ascii=False), config_version, at)
               for p in placed for m in p.new.matches]
    if matches:
        conn.executemany(
            "INSERT INTO matches (article_id, story_id, watchlist, watch, alias, matched, "
            "field, start, \"end\", snippet, highlight, context, config_version, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", matches)
    if started:
        conn.executemany("UPDATE stories SET first_article_id = ? WHERE id = ?",
                         [(s.first_id, s.id) for s in started])
    joined = [(at, s.added, len(s.sources), s.id) for s in touched if s.first is None]
    if joined:
        conn.executemany("UPDATE stories SET last_seen_at = ?, articles = articles + ?, "
                         "outlets = ? WHERE id = ?", joined)
    signed = [p for p in placed if p.new.fingerprint.signature]
    if signed:
        conn.executemany("INSERT INTO article_signatures (article_id, signature, shingles) "
                         "VALUES (?, ?, ?)", [(p.id, p.new.fingerprint.signature,
                                               p.new.fingerprint.shingles) for p in signed])
        # in key order: each page of the index is then visited once per poll, not once
        # per key that lands on it, in whatever order the cache allows
        conn.executemany("INSERT OR IGNORE INTO story_bands (key, article_id) VALUES (?, ?)",
                         sorted((b, p.id) for p in signed for b in p.new.fingerprint.bands))
    conn.executemany(fts.INSERT, [(p.id, *p.new.indexed) for p in placed])
    if queued:  # a key queued already (by no story the batch joins) stays as it was
        conn.executemany(
            "INSERT OR IGNORE INTO outbox (id, key, message_id, watchlist, channel, subject, "
            "article_id, payload, kind, priority, held, next_attempt_at, created_at) VALUES "
            "(:id, :key, :message_id, :watchlist, :channel, :subject, :article_id, "
            ":payload, :kind, :priority, :held, :next_attempt_at, :created_at)",
            [{"id": n, **outbox_row(row, now, article_id)}
             for n, (row, article_id) in enumerate(queued, start=last_outbox + 1)])
        items = [(w, watch, n) for n, (row, _) in enumerate(queued, start=last_outbox + 1)
                 for w, watch in row.items]
        if items:
            conn.executemany("INSERT OR IGNORE INTO outbox_items (outbox_id, watchlist, "
                             "watch) SELECT id, ?, ? FROM outbox WHERE id = ?", items)
