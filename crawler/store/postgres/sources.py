"""Source rows: the config's sources, their leases, poll outcomes and health.

Due sources are claimed with ``SELECT … FOR UPDATE SKIP LOCKED``: daemons claiming at
the same moment each take other rows instead of waiting on one another, and a row whose
lease a transaction is setting is skipped, then seen leased.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from crawler.config import Source
from crawler.core.clock import iso
from crawler.store.postgres.base import Connected, rows, wrap_exceptions
from crawler.store.postgres.wakeups import notify
from crawler.store.records import WAKE_SOURCES, PollRecord, SourceState

_UNLEASE = "lease_owner = NULL, lease_expires_at = NULL"


class Sources(Connected):
    @wrap_exceptions
    def sync_sources(self, sources: Sequence[Source], now: datetime) -> None:
        """Make the source rows match the config: new ones due now, removed ones inactive."""
        with self._tx() as conn:
            stored = {r["name"]: r for r in rows(
                conn, "SELECT name, config_url, kind, active FROM sources")}
            fresh, moved, revived = [], [], []
            for source in sources:
                row = stored.get(source.name)
                if row is None:
                    fresh.append((source.name, source.key, source.key, source.kind, iso(now),
                                  iso(now)))
                elif row["config_url"] != source.key or row["kind"] != source.kind:
                    moved.append({"url": source.key, "kind": source.kind, "now": iso(now),
                                  "name": source.name})
                elif not row["active"]:
                    revived.append((iso(now), source.name))
            cur = conn.cursor()
            cur.executemany("INSERT INTO sources (name, url, config_url, kind, next_check_at, "
                            "created_at) VALUES (%s, %s, %s, %s, %s, %s) "
                            "ON CONFLICT (name) DO NOTHING", fresh)
            # A new address in the config starts the source afresh.
            cur.executemany("UPDATE sources SET url = %(url)s, config_url = %(url)s, "
                            "kind = %(kind)s, active = 1, etag = NULL, last_modified = NULL, "
                            "redirect_to = NULL, redirect_seen = 0, retired_at = NULL, "
                            "next_check_at = %(now)s WHERE name = %(name)s", moved)
            cur.executemany("UPDATE sources SET active = 1, next_check_at = %s "
                            "WHERE name = %s", revived)
            gone = sorted(set(stored) - {s.name for s in sources})
            conn.execute("UPDATE sources SET active = 0 WHERE name = ANY(%s::text[])", [gone])
            if fresh or moved or revived:  # due now: wake the idle daemons
                notify(conn, WAKE_SOURCES)

    @wrap_exceptions
    def claim_sources(self, owner: str, now: datetime, lease: timedelta, *,
                      due_only: bool = True, names: Iterable[str] | None = None,
                      limit: int | None = None) -> list[SourceState]:
        """Lease up to ``limit`` active sources that are due (or all, for ``once``) and that
        no other process holds; ``names`` restricts the choice."""
        sql = ("SELECT name, url, etag, last_modified, error_count, last_error, redirect_to, "
               "redirect_seen, last_full_fetch_at FROM sources WHERE active = 1 "
               "AND retired_at IS NULL "
               "AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)")
        if due_only:
            sql += " AND next_check_at <= %(now)s"
        if names is not None:
            sql += " AND name = ANY(%(names)s::text[])"
        sql += " ORDER BY next_check_at, name"
        if limit is not None:
            sql += " LIMIT %(limit)s"
        sql += " FOR UPDATE SKIP LOCKED"
        with self._tx() as conn:
            claimed = rows(conn, sql, {"now": iso(now), "limit": limit,
                                       "names": list(names or ())})
            conn.execute("UPDATE sources SET lease_owner = %s, lease_expires_at = %s "
                         "WHERE name = ANY(%s::text[])",
                         [owner, iso(now + lease), [r["name"] for r in claimed]])
        return [SourceState(**row) for row in claimed]

    @wrap_exceptions
    def renew_leases(self, owner: str, now: datetime, lease: timedelta, *,
                     sources: Iterable[str] = (), alerts: Iterable[int] = (),
                     ) -> tuple[list[str], list[int]]:
        """Extend the leases ``owner`` still holds on these sources and outbox rows; those
        it holds no more come back (as ``SQLiteStore.renew_leases``)."""
        names, ids = sorted(set(sources)), sorted(set(alerts))
        until = iso(now + lease)
        with self._tx() as conn:
            kept = {r[0] for r in conn.execute(
                "UPDATE sources SET lease_expires_at = %s WHERE name = ANY(%s::text[]) "
                "AND lease_owner = %s RETURNING name", [until, names, owner])}
            held = {r[0] for r in conn.execute(
                "UPDATE outbox SET lease_expires_at = %s WHERE id = ANY(%s::bigint[]) "
                "AND lease_owner = %s AND status = 'pending' RETURNING id",
                [until, ids, owner])}
        return [n for n in names if n not in kept], [i for i in ids if i not in held]

    @wrap_exceptions
    def record_poll(self, name: str, owner: str, now: datetime, record: PollRecord) -> None:
        """End a poll held under ``owner``'s lease; a report from a lost lease is ignored."""
        with self._tx() as conn:
            values = {"now": iso(now), "next": iso(record.next_check_at), "name": name,
                      "owner": owner, "error": record.error}
            if record.error is None:
                conn.execute(
                    "UPDATE sources SET last_checked_at = %(now)s, last_success_at = %(now)s, "
                    "last_error = NULL, error_count = 0, failing_since = NULL, "
                    "next_check_at = %(next)s, etag = coalesce(%(etag)s, etag), "
                    "last_modified = coalesce(%(last_modified)s, last_modified), "
                    "last_full_fetch_at = CASE WHEN %(full)s THEN %(now)s "
                    "ELSE last_full_fetch_at END, "
                    "redirect_to = %(redirect_to)s, redirect_seen = %(redirect_seen)s, "
                    f"url = coalesce(%(move_to)s, url), {_UNLEASE} "
                    "WHERE name = %(name)s AND lease_owner = %(owner)s",
                    {**values, "etag": record.etag, "last_modified": record.last_modified,
                     "full": record.full_fetch, "redirect_to": record.redirect_to,
                     "redirect_seen": record.redirect_seen, "move_to": record.move_to})
            else:
                conn.execute(
                    "UPDATE sources SET last_checked_at = %(now)s, last_error = %(error)s, "
                    "error_count = error_count + 1, next_check_at = %(next)s, "
                    "failing_since = coalesce(failing_since, %(now)s), "
                    f"retired_at = CASE WHEN %(retire)s THEN %(now)s END, {_UNLEASE} "
                    "WHERE name = %(name)s AND lease_owner = %(owner)s",
                    {**values, "retire": record.retire})
            if record.defer_host_until is not None:
                found = conn.execute("SELECT url FROM sources WHERE name = %s",
                                     [name]).fetchone()
                host = urlsplit(str(found[0] if found else "")).hostname
                until = iso(record.defer_host_until)
                same = [r[0] for r in conn.execute(
                    "SELECT name, url FROM sources WHERE next_check_at < %s ORDER BY name",
                    [until]) if urlsplit(r[1]).hostname == host]
                conn.execute("UPDATE sources SET next_check_at = %s "
                             "WHERE name = ANY(%s::text[])", [until, same])

    @wrap_exceptions
    def poll_now(self, name: str, now: datetime) -> bool:
        """Make an active source due at ``now``, waking the idle daemons; False when no
        such source is active (unknown, removed from the config, or retired); as
        ``SQLiteStore.poll_now``."""
        with self._tx() as conn:
            done = bool(conn.execute(
                "UPDATE sources SET next_check_at = %s WHERE name = %s AND active = 1 "
                "AND retired_at IS NULL", [iso(now), name]).rowcount)
            if done:
                notify(conn, WAKE_SOURCES)
            return done

    @wrap_exceptions
    def release(self, owner: str, source: str | None = None) -> None:
        """Give back every lease this process holds (a clean shutdown), or only its lease
        on ``source`` (a source that left the config before its poll began)."""
        with self._tx() as conn:
            if source is not None:
                conn.execute(f"UPDATE sources SET {_UNLEASE} WHERE lease_owner = %s "
                             "AND name = %s", [owner, source])
                return
            conn.execute(f"UPDATE sources SET {_UNLEASE} WHERE lease_owner = %s", [owner])
            conn.execute(f"UPDATE outbox SET {_UNLEASE} WHERE lease_owner = %s", [owner])

    @wrap_exceptions
    def release_orphans(self, is_dead: Callable[[str], bool]) -> list[str]:
        """Give back the leases of owners that ``is_dead`` says no longer run (a process
        killed on this host), so its work is taken up at once instead of at expiry."""
        with self._tx() as conn:
            owners = {r[0] for r in conn.execute(
                "SELECT lease_owner FROM sources WHERE lease_owner IS NOT NULL UNION "
                "SELECT lease_owner FROM outbox WHERE lease_owner IS NOT NULL")}
            dead = sorted(o for o in owners if is_dead(o))
            for table in ("sources", "outbox"):
                conn.execute(f"UPDATE {table} SET {_UNLEASE} "
                             "WHERE lease_owner = ANY(%s::text[])", [dead])
        return dead

    @wrap_exceptions
    def sources(self) -> list[dict[str, Any]]:
        """Every source row, by name."""
        return self._rows("SELECT * FROM sources ORDER BY name")

    @wrap_exceptions
    def source_health(self, now: datetime, window: timedelta = timedelta(days=14),
                      ) -> list[dict[str, Any]]:
        """Each source row with ``articles_24h``, ``articles_window`` (articles fetched in
        ``window``) and ``last_article_at``."""
        return self._rows(
            "SELECT s.*, "
            "(SELECT count(*) FROM articles a WHERE a.source = s.name "
            " AND a.fetched_at >= %(day)s) AS articles_24h, "
            "(SELECT count(*) FROM articles a WHERE a.source = s.name "
            " AND a.fetched_at >= %(window)s) AS articles_window, "
            "(SELECT max(fetched_at) FROM articles a WHERE a.source = s.name) "
            " AS last_article_at "
            "FROM sources s ORDER BY s.name",
            {"day": iso(now - timedelta(days=1)), "window": iso(now - window)})

    @wrap_exceptions
    def set_notice(self, name: str, notice: str | None) -> None:
        """Remember the source's open incident, so it is announced once, not per check."""
        with self._tx() as conn:
            conn.execute("UPDATE sources SET notice = %s WHERE name = %s", [notice, name])
