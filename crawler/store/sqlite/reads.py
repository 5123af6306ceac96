"""The web desk's reads (``crawler.store.desk``): the stories list, a story's page, a watch
item's timeline, the outbox. Read-only SQL over the indexes of step 13; the records are
built from the rows by ``crawler.store.views``, as PostgreSQL's are.

The stories list pages by story id, newest first (the order stories were stored): each
filter drives the query from an index already in that order (a watch item's or
watchlist's matches, a source's articles, a script's stories) and the others are probed
per row, so a page reads about as many rows as it shows, at any depth, however rare the
filter.
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
from crawler.store.sqlite.base import Connected, wrap_exceptions
from crawler.store.sqlite.outbox import STATE
from crawler.store.sqlite.tuning import ACTIVE


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


class DeskReads(Connected):
    @wrap_exceptions
    def story_list(self, where: StoryFilter = EVERY_STORY, *, before: int | None = None,
                   after: int | None = None, limit: int = 50) -> StoryPage:
        """Stories with a match passing ``where``, newest first: those older than the
        cursor ``before``, or newer than ``after`` (what a page polls for)."""
        limit = views.page_limit(limit)
        ids = self._story_ids(where, before, after, limit + 1)
        return views.story_page(ids, self._story_rows(ids[:limit]), limit)

    def _story_ids(self, f: StoryFilter, before: int | None, after: int | None,
                   limit: int) -> list[int]:
        sql, values = queries.story_ids(f, before, after, limit, mark="?")
        return [r[0] for r in self._conn.execute(sql, values)]

    def _story_rows(self, ids: Sequence[int]) -> list[StoryRow]:
        """The stories of ``ids``, in that order, with outlets and chips."""
        if not ids:
            return []
        marks = _marks(ids)
        return views.story_rows(
            ids, self._db.query(
                "SELECT s.id, s.key, s.title, s.first_seen_at, s.last_seen_at, s.articles, "
                "s.script, a.url, a.link FROM stories s LEFT JOIN articles a "
                f"ON a.id = s.first_article_id WHERE s.id IN ({marks})", list(ids)),
            self._conn.execute(
                f"SELECT story_id, source FROM articles WHERE story_id IN ({marks}) "
                "GROUP BY story_id, source ORDER BY story_id, min(id)", list(ids)),
            self._conn.execute(
                "SELECT DISTINCT story_id, watchlist, watch FROM matches "
                f"WHERE story_id IN ({marks}) ORDER BY story_id, watchlist, watch",
                list(ids)))

    @wrap_exceptions
    def story_detail(self, story_id: int, now: datetime) -> StoryDetail | None:
        """A story's page: its copies with their mentions in context, the alerts sent or
        waiting for it with their delivery attempts, and the mutes in force at ``now``
        that silence it. None for an unknown story."""
        found = self._story_rows([story_id])
        if not found:
            return None
        row = found[0]
        return StoryDetail(row, tuple(self._copies(story_id)),
                           tuple(self._story_alerts(story_id)),
                           tuple(self._story_mutes(story_id, row.outlets, now)))

    def _copies(self, story_id: int) -> list[Copy]:
        return views.copies(
            self._db.query(
                "SELECT id, source, title, summary, text, url, link, published_at, "
                "fetched_at, language, similarity, pruned_at FROM articles "
                "WHERE story_id = ? ORDER BY id", [story_id]),
            self._db.query(
                "SELECT id, article_id, watchlist, watch, alias, matched, field, start, "
                "\"end\", snippet, highlight, context, created_at FROM matches "
                "WHERE story_id = ? ORDER BY id", [story_id]))

    def _story_alerts(self, story_id: int) -> list[StoryAlert]:
        alerts = list(self._db.query(
            f"SELECT o.id, o.article_id, o.channel, o.watchlist, o.status, {STATE} AS state, "
            "o.attempts, o.created_at, o.delivered_at, o.last_error, o.digest_id, "
            "o.mute_id FROM outbox o JOIN articles a ON a.id = o.article_id "
            "WHERE a.story_id = ? ORDER BY o.id", [story_id]))
        if not alerts:
            return []
        ids, sent = [r["id"] for r in alerts], views.sent_ids(alerts)
        return views.story_alerts(
            alerts, self._conn.execute(
                "SELECT outbox_id, watchlist, watch FROM outbox_items "
                f"WHERE outbox_id IN ({_marks(ids)}) ORDER BY 1, 2, 3", ids),
            self._db.query(
                "SELECT outbox_id, attempted_at, outcome, status_code, error, duration_ms "
                f"FROM delivery_attempts WHERE outbox_id IN ({_marks(sent)}) "
                "ORDER BY id", sent))

    def _story_mutes(self, story_id: int, outlets: Sequence[str],
                     now: datetime) -> list[ActiveMute]:
        values: dict[str, object] = {"now": iso(now), "story": story_id}
        values.update({f"o{n}": outlet for n, outlet in enumerate(outlets)})
        sources = ",".join(f":o{n}" for n in range(len(outlets))) or "NULL"
        return views.active_mutes(self._db.query(
            "SELECT m.id, m.kind, m.target, m.watchlist, m.created_by, m.created_at, m.until "
            f"FROM mutes m WHERE {ACTIVE} AND ((m.kind = 'story' AND m.story_id = :story) "
            f"OR (m.kind = 'source' AND m.target IN ({sources})) "
            "OR (m.kind = 'watch' AND EXISTS (SELECT 1 FROM matches x "
            "WHERE x.story_id = :story AND x.watch = m.target "
            "AND (m.watchlist IS NULL OR m.watchlist = x.watchlist)))) ORDER BY m.id",
            values))

    @wrap_exceptions
    def watch_timeline(self, watch: str, now: datetime, *, watchlist: str | None = None,
                       days: int = 30, zone: str = "UTC", stories: int = 10) -> Timeline:
        """The articles matching ``watch`` (in ``watchlist``, or any) per day over the
        last ``days`` days in ``zone``, counted on the day each was stored, and its latest
        ``stories``."""
        start, counts = views.timeline_days(now, days, zone)
        values: list[object] = [watch, iso(start), iso(now)]
        narrow = ""
        if watchlist is not None:
            narrow = " AND watchlist = ?"
            values.append(watchlist)
        stored = [r[0] for r in self._conn.execute(
            "SELECT min(created_at) FROM matches WHERE watch = ? AND created_at >= ? "
            f"AND created_at <= ?{narrow} GROUP BY article_id", values)]
        page = self.story_list(StoryFilter(watchlist=watchlist, watch=watch),
                               limit=stories)
        return views.timeline(watch, watchlist, zone, counts, stored, page.rows)

    @wrap_exceptions
    def outbox_entries(self, states: Iterable[OutboxState] = WAITING, *,
                       before: int | None = None, limit: int = 50) -> OutboxPage:
        """Outbox rows in ``states``, newest first, older than the cursor ``before``, each
        with its story's headline; a retry is ``requeue`` of its id."""
        wanted = sorted(set(states))
        if not wanted:
            return OutboxPage((), None)
        limit = views.page_limit(limit)
        statuses = views.outbox_statuses(wanted)
        values: list[object] = [*statuses, *wanted]
        older = ""
        if before is not None:
            older = " AND o.id < ?"
            values.append(before)
        return views.outbox_page(list(self._db.query(
            f"SELECT o.id, o.kind, o.channel, o.watchlist, o.subject, {STATE} AS state, "
            "o.attempts, o.created_at, o.next_attempt_at, o.last_error, o.digest_id, "
            "o.mute_id, o.lease_expires_at, a.story_id, coalesce(s.title, a.title) AS title, "
            "coalesce(a.link, a.url) AS url FROM outbox o "
            "LEFT JOIN articles a ON a.id = o.article_id "
            "LEFT JOIN stories s ON s.id = a.story_id "
            f"WHERE o.status IN ({_marks(statuses)}) AND {STATE} IN ({_marks(wanted)})"
            f"{older} ORDER BY o.id DESC LIMIT ?", [*values, limit + 1])), limit)
