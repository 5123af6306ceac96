"""The web desk's reads (``crawler.store.desk``), as ``crawler.store.sqlite.reads``: the
same queries over the same indexes of step 13, with id lists as arrays; the records are
built from the rows by ``crawler.store.views``.

The stories list pages by story id, newest first: each filter drives the query from an
index already in that order (a watch item's or watchlist's matches, a source's articles,
every story) and the others are checked per row, so a page reads about as many rows as it
shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from crawler.core.clock import iso
from crawler.store import queries, views
from crawler.store.desk import (
    EVERY_STORY,
    WAITING,
    ActiveMute,
    Copy,
    OutboxPage,
    OutboxState,
    StoryAlert,
    StoryDetail,
    StoryFilter,
    StoryPage,
    StoryRow,
    Timeline,
)
from crawler.store.postgres.base import Conn, Connected, rows, wrap_exceptions
from crawler.store.postgres.ingest import ACTIVE
from crawler.store.sqlite.outbox import STATE


class DeskReads(Connected):
    @wrap_exceptions
    def story_list(self, where: StoryFilter = EVERY_STORY, *, before: int | None = None,
                   after: int | None = None, limit: int = 50) -> StoryPage:
        """Stories with a match passing ``where``, newest first: those older than the
        cursor ``before``, or newer than ``after`` (what a page polls for)."""
        limit = views.page_limit(limit)
        with self._tx() as conn:
            ids = _story_ids(conn, where, before, after, limit + 1)
            return views.story_page(ids, _story_rows(conn, ids[:limit]), limit)

    @wrap_exceptions
    def story_detail(self, story_id: int, now: datetime) -> StoryDetail | None:
        """A story's page: its copies with their mentions in context, the alerts sent or
        waiting for it with their delivery attempts, and the mutes in force at ``now``
        that silence it. None for an unknown story."""
        with self._tx() as conn:
            found = _story_rows(conn, [story_id])
            if not found:
                return None
            row = found[0]
            return StoryDetail(row, tuple(_copies(conn, story_id)),
                               tuple(_story_alerts(conn, story_id)),
                               tuple(_story_mutes(conn, story_id, row.outlets, now)))

    @wrap_exceptions
    def watch_timeline(self, watch: str, now: datetime, *, watchlist: str | None = None,
                       days: int = 30, zone: str = "UTC", stories: int = 10) -> Timeline:
        """The articles matching ``watch`` (in ``watchlist``, or any) per day over the
        last ``days`` days in ``zone``, counted on the day each was stored, and its latest
        ``stories``."""
        start, counts = views.timeline_days(now, days, zone)
        narrow = " AND watchlist = %(watchlist)s" if watchlist is not None else ""
        limit = views.page_limit(stories)
        with self._tx() as conn:
            stored = [r[0] for r in conn.execute(
                "SELECT min(created_at) FROM matches WHERE watch = %(watch)s "
                f"AND created_at >= %(start)s AND created_at <= %(now)s{narrow} "
                "GROUP BY article_id",
                {"watch": watch, "start": iso(start), "now": iso(now),
                 "watchlist": watchlist})]
            ids = _story_ids(conn, StoryFilter(watchlist=watchlist, watch=watch), None,
                             None, limit)
            latest = _story_rows(conn, ids)
        return views.timeline(watch, watchlist, zone, counts, stored, latest)

    @wrap_exceptions
    def outbox_entries(self, states: Iterable[OutboxState] = WAITING, *,
                       before: int | None = None, limit: int = 50) -> OutboxPage:
        """Outbox rows in ``states``, newest first, older than the cursor ``before``, each
        with its story's headline; a retry is ``requeue`` of its id."""
        wanted = sorted(set(states))
        if not wanted:
            return OutboxPage((), None)
        limit = views.page_limit(limit)
        older = " AND o.id < %(before)s" if before is not None else ""
        return views.outbox_page(self._rows(
            f"SELECT o.id, o.kind, o.channel, o.watchlist, o.subject, {STATE} AS state, "
            "o.attempts, o.created_at, o.next_attempt_at, o.last_error, o.digest_id, "
            "o.mute_id, o.lease_expires_at, a.story_id, coalesce(s.title, a.title) AS title, "
            "coalesce(a.link, a.url) AS url FROM outbox o "
            "LEFT JOIN articles a ON a.id = o.article_id "
            "LEFT JOIN stories s ON s.id = a.story_id "
            f"WHERE o.status = ANY(%(statuses)s) AND {STATE} = ANY(%(wanted)s){older} "
            "ORDER BY o.id DESC LIMIT %(limit)s",
            {"statuses": views.outbox_statuses(wanted), "wanted": list(wanted),
             "before": before, "limit": limit + 1}), limit)


def _story_ids(conn: Conn, f: StoryFilter, before: int | None, after: int | None,
               limit: int) -> list[int]:
    # OFFSET 0 keeps each check a probe per row (a semi-join would be planned as a merge
    # join walking every match from the newest story down to the page, however deep)
    sql, values = queries.story_ids(f, before, after, limit, mark="%s", probe=" OFFSET 0")
    return [r[0] for r in conn.execute(sql, values)]


def _story_rows(conn: Conn, ids: Sequence[int]) -> list[StoryRow]:
    """The stories of ``ids``, in that order, with outlets and chips."""
    if not ids:
        return []
    values = [list(ids)]
    return views.story_rows(
        ids, rows(conn, "SELECT s.id, s.key, s.title, s.first_seen_at, s.last_seen_at, "
                  "s.articles, s.script, a.url, a.link FROM stories s LEFT JOIN articles a "
                  "ON a.id = s.first_article_id WHERE s.id = ANY(%s::bigint[])", values),
        conn.execute("SELECT story_id, source FROM articles "
                     "WHERE story_id = ANY(%s::bigint[]) GROUP BY story_id, source "
                     "ORDER BY story_id, min(id)", values).fetchall(),
        conn.execute("SELECT DISTINCT story_id, watchlist, watch FROM matches "
                     "WHERE story_id = ANY(%s::bigint[]) ORDER BY story_id, watchlist, "
                     "watch", values).fetchall())


def _copies(conn: Conn, story_id: int) -> list[Copy]:
    return views.copies(
        rows(conn, "SELECT id, source, title, summary, text, url, link, published_at, "
             "fetched_at, language, similarity, pruned_at FROM articles "
             "WHERE story_id = %s ORDER BY id", [story_id]),
        rows(conn, "SELECT id, article_id, watchlist, watch, alias, matched, field, start, "
             "\"end\", snippet, highlight, context, created_at FROM matches "
             "WHERE story_id = %s ORDER BY id", [story_id]))


def _story_alerts(conn: Conn, story_id: int) -> list[StoryAlert]:
    alerts = rows(
        conn, f"SELECT o.id, o.article_id, o.channel, o.watchlist, o.status, {STATE} AS state, "
        "o.attempts, o.created_at, o.delivered_at, o.last_error, o.digest_id, o.mute_id "
        "FROM outbox o JOIN articles a ON a.id = o.article_id WHERE a.story_id = %s "
        "ORDER BY o.id", [story_id])
    if not alerts:
        return []
    return views.story_alerts(
        alerts, conn.execute("SELECT outbox_id, watchlist, watch FROM outbox_items "
                             "WHERE outbox_id = ANY(%s::bigint[]) ORDER BY 1, 2, 3",
                             [[r["id"] for r in alerts]]).fetchall(),
        rows(conn, "SELECT outbox_id, attempted_at, outcome, status_code, error, duration_ms "
             "FROM delivery_attempts WHERE outbox_id = ANY(%s::bigint[]) ORDER BY id",
             [views.sent_ids(alerts)]))


def _story_mutes(conn: Conn, story_id: int, outlets: Sequence[str],
                 now: datetime) -> list[ActiveMute]:
    return views.active_mutes(rows(
        conn, "SELECT m.id, m.kind, m.target, m.watchlist, m.created_by, m.created_at, "
        f"m.until FROM mutes m WHERE {ACTIVE} AND ((m.kind = 'story' "
        "AND m.story_id = %(story)s) OR (m.kind = 'source' "
        "AND m.target = ANY(%(outlets)s::text[])) OR (m.kind = 'watch' AND EXISTS "
        "(SELECT 1 FROM matches x WHERE x.story_id = %(story)s AND x.watch = m.target "
        "AND (m.watchlist IS NULL OR m.watchlist = x.watchlist)))) ORDER BY m.id",
        {"now": iso(now), "story": story_id, "outlets": list(outlets)}))
