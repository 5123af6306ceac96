"""The PostgreSQL side of one poll's ingest (``crawler.store.ingest``): one transaction,
a fixed number of statements (lists of values are arrays; each table is one
``executemany``, pipelined by psycopg).

Daemons on other hosts store their polls at the same moment, so before reading anything
the transaction takes advisory locks (``pg_advisory_xact_lock``) on the buckets of the
batch's dedup keys and story band keys, all in one statement, in sorted order (no
deadlock between two batches). Two polls holding copies of one story, or one article,
share a bucket: the second waits for the first to commit, then reads (each statement
under READ COMMITTED sees what committed before it) the dedup keys again and the story
the first started, and joins it. Copies joining one stored story through different band
keys meet at a second lock, on the story (``lock_stories``, taken after the band locks
and before the story's alerts are read), so the second plans knowing the first's alert.
Polls with nothing in common run side by side. There
are ``BUCKETS`` buckets, so a transaction holds at most that many locks, whatever the
poll's size (PostgreSQL's shared lock table holds max_locks_per_transaction ×
max_connections, 6,400 by default).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import xxhash

from crawler.core.clock import iso
from crawler.process import stories
from crawler.store import ingest
from crawler.store.postgres import tsearch
from crawler.store.postgres.base import Conn
from crawler.store.postgres.schema import INGEST_LOCK, STORY_LOCK
from crawler.store.records import NewArticle, Planner, StoredArticle, StoryRules

#: Advisory lock buckets for ingest (dedup keys and band keys share them).
BUCKETS = 1024

#: Mutes in force at %(now)s (alias ``m``); crawler.store.sqlite.tuning.ACTIVE.
ACTIVE = "m.ended_at IS NULL AND (m.until IS NULL OR m.until > %(now)s)"


def buckets(batch: Sequence[NewArticle]) -> list[int]:
    """The lock buckets of a batch's dedup keys and band keys, sorted."""
    found = {xxhash.xxh64_intdigest(k.encode("utf-8", "surrogatepass")) % BUCKETS
             for new in batch for k in new.keys}
    found.update(b % BUCKETS for new in batch for b in new.fingerprint.bands)
    return sorted(found)


def known_keys(conn: Conn, keys: Collection[str]) -> set[str]:
    """Which of these dedup keys are stored: one query."""
    if not keys:
        return set()
    return {r[0] for r in conn.execute(
        "SELECT key FROM article_keys WHERE key = ANY(%s::text[])", [list(keys)])}


def add(conn: Conn, batch: Sequence[NewArticle], now: datetime, config_version: str,
        plan: Planner, rules: StoryRules) -> list[StoredArticle]:
    """``ingest.add`` inside the caller's transaction, under the batch's locks."""
    if not batch:
        return []
    conn.execute(f"SELECT count(pg_advisory_xact_lock({INGEST_LOCK}, b)) "
                 "FROM unnest(%s::integer[]) AS u(b)", [buckets(batch)])
    return ingest.add(_Batch(conn), batch, now, config_version, plan, rules)


class _Batch:
    """``ingest.Batch`` over one PostgreSQL connection in a transaction."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def known_keys(self, keys: Collection[str]) -> set[str]:
        return known_keys(self.conn, keys)

    def article_ids(self, count: int) -> list[int]:
        return self._next("articles_id_seq", count)

    def story_ids(self, count: int) -> list[int]:
        return self._next("stories_id_seq", count)

    def outbox_ids(self, count: int) -> list[int]:
        return self._next("outbox_id_seq", count)

    def _next(self, sequence: str, count: int) -> list[int]:
        """``count`` numbers of ``sequence``, in order, in one statement."""
        return [r[0] for r in self.conn.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s) ORDER BY 1",
            [sequence, count])]

    def bands(self, keys: Sequence[int]) -> list[tuple[int, int]]:
        return self.conn.execute(
            "SELECT key, article_id FROM (SELECT key, article_id, row_number() OVER "
            "(PARTITION BY key ORDER BY article_id DESC) AS n FROM story_bands "
            "WHERE key = ANY(%s::bigint[])) AS recent WHERE n <= %s "
            "ORDER BY key, article_id", [list(keys), stories.CANDIDATES_PER_BAND]).fetchall()

    def candidates(self, ids: Collection[int], since: datetime,
                   ) -> list[tuple[int, bytes, int, int]]:
        return self.conn.execute(
            "SELECT s.article_id, s.signature, s.shingles, a.story_id "
            "FROM article_signatures s JOIN articles a ON a.id = s.article_id "
            "WHERE s.article_id = ANY(%s::bigint[]) AND a.fetched_at >= %s "
            "AND a.story_id IS NOT NULL", [list(ids), iso(since)]).fetchall()

    def lock_stories(self, ids: Collection[int]) -> None:
        self.conn.execute(f"SELECT count(pg_advisory_xact_lock({STORY_LOCK}, b)) "
                          "FROM unnest(%s::integer[]) AS u(b)",
                          [sorted({i % BUCKETS for i in ids})])

    def stories(self, ids: Collection[int]) -> list[tuple[int, str, int, str]]:
        return self.conn.execute(
            "SELECT id, key, articles, first_seen_at FROM stories "
            "WHERE id = ANY(%s::bigint[])", [list(ids)]).fetchall()

    def story_sources(self, ids: Collection[int]) -> list[tuple[int, str]]:
        return self.conn.execute(
            "SELECT story_id, source FROM articles WHERE story_id = ANY(%s::bigint[]) "
            "GROUP BY story_id, source ORDER BY story_id, min(id)", [list(ids)]).fetchall()

    def story_alerts(self, ids: Collection[int]) -> list[tuple[int, str, str, str]]:
        return self.conn.execute(
            "SELECT DISTINCT a.story_id, o.channel, i.watchlist, i.watch FROM articles a "
            "JOIN outbox o ON o.article_id = a.id JOIN outbox_items i "
            "ON i.outbox_id = o.id WHERE a.story_id = ANY(%s::bigint[])",
            [list(ids)]).fetchall()

    def story_outbox_keys(self, ids: Collection[int]) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT o.key FROM outbox o JOIN articles a ON a.id = o.article_id "
            "WHERE a.story_id = ANY(%s::bigint[])", [list(ids)])}

    def mutes(self, now: datetime, stories: Collection[int], sources: Collection[str],
              watches: Collection[str]) -> list[ingest.MuteRow]:
        return self.conn.execute(
            "SELECT m.kind, m.watchlist, m.target, m.story_id FROM mutes m "
            f"WHERE {ACTIVE} AND ("
            "(m.kind = 'story' AND m.story_id = ANY(%(stories)s::bigint[])) "
            "OR (m.kind = 'source' AND m.target = ANY(%(sources)s::text[])) "
            "OR (m.kind = 'watch' AND m.target = ANY(%(watches)s::text[])))",
            {"now": iso(now), "stories": list(stories), "sources": list(sources),
             "watches": list(watches)}).fetchall()

    def write(self, rows: ingest.Rows) -> None:
        cur = self.conn.cursor()
        # first_article_id is checked at commit: the story may name its article first
        if rows.started:
            cur.executemany("INSERT INTO stories (id, key, title, first_seen_at, "
                            "last_seen_at, articles, outlets, script, first_article_id) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows.started)
        cur.executemany(
            "INSERT INTO articles (id, url, link, guid, source, title, summary, text, "
            "author, language, extraction, published_at, fetched_at, story_id, similarity, "
            "similar_to) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s)", rows.articles)
        cur.executemany("INSERT INTO article_keys (key, article_id) VALUES (%s, %s)",
                        rows.keys)
        if rows.matches:
            cur.executemany(
                "INSERT INTO matches (article_id, story_id, watchlist, watch, alias, matched, "
                "field, start, \"end\", snippet, highlight, context, config_version, "
                "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows.matches)
        if rows.joined:
            # in id order: two batches updating the same stories never wait in a circle
            joined = sorted(rows.joined, key=lambda r: r[3])
            cur.executemany("UPDATE stories SET last_seen_at = %s, articles = articles + %s, "
                            "outlets = %s WHERE id = %s", joined)
        if rows.signatures:
            cur.executemany("INSERT INTO article_signatures (article_id, signature, "
                            "shingles) VALUES (%s, %s, %s)", rows.signatures)
            cur.execute("INSERT INTO story_bands (key, article_id) SELECT * FROM "
                        "unnest(%s::bigint[], %s::bigint[]) ON CONFLICT DO NOTHING",
                        [[k for k, _ in rows.bands], [i for _, i in rows.bands]])
        cur.executemany("INSERT INTO article_search (article_id, doc) VALUES (%s, %s::tsvector)",
                        [(i, tsearch.vector(*fields)) for i, *fields in rows.indexed])
        if rows.outbox:  # a key queued already (by no story the batch joins) stays as it was
            cur.executemany(
                "INSERT INTO outbox (id, key, message_id, watchlist, channel, subject, "
                "article_id, payload, kind, priority, held, next_attempt_at, created_at) "
                "VALUES (%(id)s, %(key)s, %(message_id)s, %(watchlist)s, %(channel)s, "
                "%(subject)s, %(article_id)s, %(payload)s, %(kind)s, %(priority)s, "
                "%(held)s, %(next_attempt_at)s, %(created_at)s) ON CONFLICT DO NOTHING",
                rows.outbox)
        if rows.items:
            cur.executemany("INSERT INTO outbox_items (outbox_id, watchlist, watch) "
                            "SELECT id, %s, %s FROM outbox WHERE id = %s "
                            "ON CONFLICT DO NOTHING", rows.items)
