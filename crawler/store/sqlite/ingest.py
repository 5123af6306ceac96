"""The SQLite side of one poll's ingest (``crawler.store.ingest``): its reads and
writes in a fixed number of statements.

New rows get ids counted up from the table's highest: the write lock, taken up front,
keeps any other writer out until the commit, and the tables have no AUTOINCREMENT, so
these are the ids SQLite would choose. Lists of values reach SQL as one JSON array
(``IN (SELECT value FROM json_each(?))``), so a lookup is one statement whatever the
batch size, under any variable limit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime

from crawler.core.clock import iso
from crawler.process import stories
from crawler.store import ingest
from crawler.store.records import NewArticle, Planner, StoredArticle, StoryRules
from crawler.store.sqlite import fts
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


def add(conn: sqlite3.Connection, batch: Sequence[NewArticle], now: datetime,
        config_version: str, plan: Planner, rules: StoryRules) -> list[StoredArticle]:
    """``ingest.add`` on this connection, inside the caller's write transaction."""
    return ingest.add(_Batch(conn), batch, now, config_version, plan, rules)


class _Batch:
    """``ingest.Batch`` over one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.last_story = self.last_outbox = 0

    def known_keys(self, keys: Collection[str]) -> set[str]:
        return known_keys(self.conn, keys)

    def article_ids(self, count: int) -> list[int]:
        last_article, self.last_story, self.last_outbox = self.conn.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM articles), "
            "(SELECT coalesce(max(id), 0) FROM stories), "
            "(SELECT coalesce(max(id), 0) FROM outbox)").fetchone()
        return list(range(last_article + 1, last_article + 1 + count))

    def story_ids(self, count: int) -> list[int]:
        return list(range(self.last_story + 1, self.last_story + 1 + count))

    def outbox_ids(self, count: int) -> list[int]:
        return list(range(self.last_outbox + 1, self.last_outbox + 1 + count))

    def bands(self, keys: Sequence[int]) -> list[tuple[int, int]]:
        return self.conn.execute(
            "SELECT key, article_id FROM (SELECT key, article_id, row_number() OVER "
            "(PARTITION BY key ORDER BY article_id DESC) AS n FROM story_bands "
            f"WHERE key IN ({EACH})) WHERE n <= ? ORDER BY key, article_id",
            [each(keys), stories.CANDIDATES_PER_BAND]).fetchall()

    def candidates(self, ids: Collection[int], since: datetime,
                   ) -> list[tuple[int, bytes, int, int]]:
        return self.conn.execute(
            "SELECT s.article_id, s.signature, s.shingles, a.story_id "
            "FROM article_signatures s JOIN articles a ON a.id = s.article_id "
            f"WHERE s.article_id IN ({EACH}) AND a.fetched_at >= ? "
            "AND a.story_id IS NOT NULL", [each(ids), iso(since)]).fetchall()

    def lock_stories(self, ids: Collection[int]) -> None:
        """Nothing: the write lock (BEGIN IMMEDIATE) keeps every other writer out."""

    def stories(self, ids: Collection[int]) -> list[tuple[int, str, int, str]]:
        return self.conn.execute(
            f"SELECT id, key, articles, first_seen_at FROM stories WHERE id IN ({EACH})",
            [each(ids)]).fetchall()

    def story_sources(self, ids: Collection[int]) -> list[tuple[int, str]]:
        return self.conn.execute(
            f"SELECT story_id, source FROM articles WHERE story_id IN ({EACH}) "
            "GROUP BY story_id, source ORDER BY story_id, min(id)", [each(ids)]).fetchall()

    def story_alerts(self, ids: Collection[int]) -> list[tuple[int, str, str, str]]:
        return self.conn.execute(
            "SELECT DISTINCT a.story_id, o.channel, i.watchlist, i.watch FROM articles a "
            "JOIN outbox o ON o.article_id = a.id JOIN outbox_items i "
            f"ON i.outbox_id = o.id WHERE a.story_id IN ({EACH})", [each(ids)]).fetchall()

    def story_outbox_keys(self, ids: Collection[int]) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT o.key FROM outbox o JOIN articles a ON a.id = o.article_id "
            f"WHERE a.story_id IN ({EACH})", [each(ids)])}

    def mutes(self, now: datetime, stories: Collection[int], sources: Collection[str],
              watches: Collection[str]) -> list[ingest.MuteRow]:
        return self.conn.execute(
            "SELECT m.kind, m.watchlist, m.target, m.story_id FROM mutes m "
            f"WHERE {ACTIVE} AND ("
            "(m.kind = 'story' AND m.story_id IN (SELECT value FROM json_each(:stories))) "
            "OR (m.kind = 'source' AND m.target IN (SELECT value FROM json_each(:sources))) "
            "OR (m.kind = 'watch' AND m.target IN (SELECT value FROM json_each(:watches))))",
            {"now": iso(now), "stories": each(stories), "sources": each(sources),
             "watches": each(watches)}).fetchall()

    def write(self, rows: ingest.Rows) -> None:
        conn = self.conn
        # A story names its first article, which names its story: the story comes first,
        # then its article, then the link back (deferring the check instead would have
        # SQLite scan every referring table at each insert).
        if rows.started:
            conn.executemany("INSERT INTO stories (id, key, title, first_seen_at, "
                             "last_seen_at, articles, outlets, script) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [s[:8] for s in rows.started])
        conn.executemany(
            "INSERT INTO articles (id, url, link, guid, source, title, summary, text, "
            "author, language, extraction, published_at, fetched_at, story_id, similarity, "
            "similar_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows.articles)
        conn.executemany("INSERT INTO article_keys (key, article_id) VALUES (?, ?)",
                         rows.keys)
        if rows.matches:
            conn.executemany(
                "INSERT INTO matches (article_id, story_id, watchlist, watch, alias, matched, "
                "field, start, \"end\", snippet, highlight, context, config_version, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows.matches)
        if rows.started:
            conn.executemany("UPDATE stories SET first_article_id = ? WHERE id = ?",
                             [(s[8], s[0]) for s in rows.started])
        if rows.joined:
            conn.executemany("UPDATE stories SET last_seen_at = ?, articles = articles + ?, "
                             "outlets = ? WHERE id = ?", rows.joined)
        if rows.signatures:
            conn.executemany("INSERT INTO article_signatures (article_id, signature, "
                             "shingles) VALUES (?, ?, ?)", rows.signatures)
            conn.executemany("INSERT OR IGNORE INTO story_bands (key, article_id) "
                             "VALUES (?, ?)", rows.bands)
        conn.executemany(fts.INSERT, rows.indexed)
        if rows.outbox:  # a key queued already (by no story the batch joins) stays as it was
            conn.executemany(
                "INSERT OR IGNORE INTO outbox (id, key, message_id, watchlist, channel, "
                "subject, article_id, payload, kind, priority, held, next_attempt_at, "
                "created_at) VALUES (:id, :key, :message_id, :watchlist, :channel, "
                ":subject, :article_id, :payload, :kind, :priority, :held, "
                ":next_attempt_at, :created_at)", rows.outbox)
        if rows.items:
            conn.executemany("INSERT OR IGNORE INTO outbox_items (outbox_id, watchlist, "
                             "watch) SELECT id, ?, ? FROM outbox WHERE id = ?", rows.items)
