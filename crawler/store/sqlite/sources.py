"""Source rows: the config's sources, their leases, poll outcomes and health."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from crawler.config import Source
from crawler.core.clock import iso
from crawler.store.records import PollRecord, SourceState
from crawler.store.sqlite.base import Connected, wrap_exceptions


class Sources(Connected):
    @wrap_exceptions
    def sync_sources(self, sources: Sequence[Source], now: datetime) -> None:
        """Make the source rows match the config: new ones due now, removed ones inactive."""
        with self._write() as db:
            rows = {r["name"]: r for r in
                    db.query("SELECT name, config_url, kind, active FROM sources")}
            for source in sources:
                row = rows.get(source.name)
                if row is None:
                    db.table("sources").insert({
                        "name": source.name, "url": source.key, "config_url": source.key,
                        "kind": source.kind, "next_check_at": iso(now), "created_at": iso(now)})
                elif row["config_url"] != source.key or row["kind"] != source.kind:
                    # A new address in the config starts the source afresh.
                    db.execute("UPDATE sources SET url = :url, config_url = :url, kind = :kind, "
                               "active = 1, etag = NULL, last_modified = NULL, "
                               "redirect_to = NULL, redirect_seen = 0, retired_at = NULL, "
                               "next_check_at = :now WHERE name = :name",
                               {"url": source.key, "kind": source.kind, "now": iso(now),
                                "name": source.name})
                elif not row["active"]:
                    db.execute("UPDATE sources SET active = 1, next_check_at = ? "
                               "WHERE name = ?", [iso(now), source.name])
            gone = set(rows) - {s.name for s in sources}
            for name in gone:
                db.execute("UPDATE sources SET active = 0 WHERE name = ?", [name])

    @wrap_exceptions
    def claim_sources(self, owner: str, now: datetime, lease: timedelta, *,
                      due_only: bool = True, names: Iterable[str] | None = None,
                      limit: int | None = None) -> list[SourceState]:
        """Lease up to ``limit`` active sources that are due (or all, for ``once``) and that
        no other process holds; ``names`` restricts the choice."""
        sql = ("SELECT name, url, etag, last_modified, error_count, last_error, redirect_to, "
               "redirect_seen, last_full_fetch_at FROM sources WHERE active = 1 "
               "AND retired_at IS NULL "
               "AND (lease_expires_at IS NULL OR lease_expires_at <= :now)")
        if due_only:
            sql += " AND next_check_at <= :now"
        sql += " ORDER BY next_check_at"
        wanted = set(names) if names is not None else None
        with self._write() as db:
            rows = [r for r in db.query(sql, {"now": iso(now)})
                    if wanted is None or r["name"] in wanted][:limit]
            for row in rows:
                db.execute("UPDATE sources SET lease_owner = ?, lease_expires_at = ? "
                           "WHERE name = ?", [owner, iso(now + lease), row["name"]])
        return [SourceState(**row) for row in rows]

    @wrap_exceptions
    def renew_leases(self, owner: str, now: datetime, lease: timedelta, *,
                     sources: Iterable[str] = (), alerts: Iterable[int] = (),
                     ) -> tuple[list[str], list[int]]:
        """Extend to ``now + lease`` the leases ``owner`` still holds on these sources and
        outbox rows (work in flight); returns those it holds no more (another process
        claimed them, or nobody holds them), whose work must stop. A lease that ran out
        but nobody claimed is still the owner's: nobody can have started that work."""
        names, ids = sorted(set(sources)), sorted(set(alerts))
        with self._write() as db:
            lost_sources = [n for n in names if db.execute(
                "UPDATE sources SET lease_expires_at = ? WHERE name = ? AND lease_owner = ?",
                [iso(now + lease), n, owner]).rowcount == 0]
            lost_alerts = [i for i in ids if db.execute(
                "UPDATE outbox SET lease_expires_at = ? WHERE id = ? AND lease_owner = ? "
                "AND status = 'pending'", [iso(now + lease), i, owner]).rowcount == 0]
        return lost_sources, lost_alerts

    @wrap_exceptions
    def record_poll(self, name: str, owner: str, now: datetime, record: PollRecord) -> None:
        """End a poll held under ``owner``'s lease; a report from a lost lease is ignored."""
        with self._write() as db:
            values = {"now": iso(now), "next": iso(record.next_check_at), "name": name,
                      "owner": owner, "error": record.error}
            if record.error is None:
                db.execute(
                    "UPDATE sources SET last_checked_at = :now, last_success_at = :now, "
                    "last_error = NULL, error_count = 0, failing_since = NULL, "
                    "next_check_at = :next, etag = coalesce(:etag, etag), "
                    "last_modified = coalesce(:last_modified, last_modified), "
                    "last_full_fetch_at = CASE WHEN :full THEN :now "
                    "ELSE last_full_fetch_at END, "
                    "redirect_to = :redirect_to, redirect_seen = :redirect_seen, "
                    "url = coalesce(:move_to, url), "
                    "lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE name = :name AND lease_owner = :owner",
                    {**values, "etag": record.etag, "last_modified": record.last_modified,
                     "full": record.full_fetch, "redirect_to": record.redirect_to,
                     "redirect_seen": record.redirect_seen, "move_to": record.move_to})
            else:
                db.execute(
                    "UPDATE sources SET last_checked_at = :now, last_error = :error, "
                    "error_count = error_count + 1, next_check_at = :next, "
                    "failing_since = coalesce(failing_since, :now), "
                    "retired_at = CASE WHEN :retire THEN :now END, "
                    "lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE name = :name AND lease_owner = :owner",
                    {**values, "retire": record.retire})
            if record.defer_host_until is not None:
                url = db.execute("SELECT url FROM sources WHERE name = ?", [name]).fetchone()[0]
                host = urlsplit(str(url)).hostname
                for row in list(db.query("SELECT name, url FROM sources "
                                         "WHERE next_check_at < ?",
                                         [iso(record.defer_host_until)])):
                    if urlsplit(row["url"]).hostname == host:
                        db.execute("UPDATE sources SET next_check_at = ? WHERE name = ?",
                                   [iso(record.defer_host_until), row["name"]])

    @wrap_exceptions
    def poll_now(self, name: str, now: datetime) -> bool:
        """Make an active source due at ``now`` (the desk's and ``sources poll``'s "poll
        now"); a running daemon claims it at its next tick. False when no such source is
        active (unknown, removed from the config, or retired). A poll in flight is left
        alone: its own next check replaces this one when it ends."""
        with self._write() as db:
            return bool(db.execute(
                "UPDATE sources SET next_check_at = ? WHERE name = ? AND active = 1 "
                "AND retired_at IS NULL", [iso(now), name]).rowcount)

    @wrap_exceptions
    def release(self, owner: str, source: str | None = None) -> None:
        """Give back every lease this process holds (a clean shutdown), or only its lease
        on ``source`` (a source that left the config before its poll began)."""
        with self._write() as db:
            if source is not None:
                db.execute("UPDATE sources SET lease_owner = NULL, lease_expires_at = NULL "
                           "WHERE lease_owner = ? AND name = ?", [owner, source])
                return
            db.execute("UPDATE sources SET lease_owner = NULL, lease_expires_at = NULL "
                       "WHERE lease_owner = ?", [owner])
            db.execute("UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL "
                       "WHERE lease_owner = ?", [owner])

    @wrap_exceptions
    def release_orphans(self, is_dead: Callable[[str], bool]) -> list[str]:
        """Give back the leases of owners that ``is_dead`` says no longer run (a process
        killed on this host), so its work is taken up at once instead of at expiry."""
        with self._write() as db:
            owners = {r[0] for r in db.execute(
                "SELECT lease_owner FROM sources WHERE lease_owner IS NOT NULL UNION "
                "SELECT lease_owner FROM outbox WHERE lease_owner IS NOT NULL")}
            dead = sorted(o for o in owners if is_dead(o))
            for owner in dead:
                db.execute("UPDATE sources SET lease_owner = NULL, lease_expires_at = NULL "
                           "WHERE lease_owner = ?", [owner])
                db.execute("UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL "
                           "WHERE lease_owner = ?", [owner])
        return dead

    @wrap_exceptions
    def sources(self) -> list[dict[str, Any]]:
        """Every source row, by name."""
        return list(self._db.query("SELECT * FROM sources ORDER BY name"))

    @wrap_exceptions
    def source_health(self, now: datetime, window: timedelta = timedelta(days=14),
                      ) -> list[dict[str, Any]]:
        """Each source row with ``articles_24h``, ``articles_window`` (articles fetched in
        ``window``) and ``last_article_at``."""
        return list(self._db.query(
            "SELECT s.*, "
            "(SELECT count(*) FROM articles a WHERE a.source = s.name "
            " AND a.fetched_at >= :day) AS articles_24h, "
            "(SELECT count(*) FROM articles a WHERE a.source = s.name "
            " AND a.fetched_at >= :window) AS articles_window, "
            "(SELECT max(fetched_at) FROM articles a WHERE a.source = s.name) "
            " AS last_article_at "
            "FROM sources s ORDER BY s.name",
            {"day": iso(now - timedelta(days=1)), "window": iso(now - window)}))

    @wrap_exceptions
    def set_notice(self, name: str, notice: str | None) -> None:
        """Remember the source's open incident, so it is announced once, not per check."""
        with self._write() as db:
            db.execute("UPDATE sources SET notice = ? WHERE name = ?", [notice, name])
