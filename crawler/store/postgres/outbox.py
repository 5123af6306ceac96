"""The outbox: alerts, digests and notices queued, claimed under a lease, delivered,
retried or dead; the attempts behind them, and the operator incidents they open.

Due alerts are claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` (as sources are); the
claims of a channel with ``max_per_hour`` take a transaction advisory lock first, so
two daemons cannot both see room under its limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from crawler.core.clock import iso, parse_iso
from crawler.process import throttle
from crawler.store.postgres.base import Conn, Connected, rows, wrap_exceptions
from crawler.store.postgres.tuning import mute_waiting
from crawler.store.postgres.wakeups import notify
from crawler.store.records import (
    WAKE_ALERTS,
    DeliveryResult,
    DigestBuilder,
    OutboxRow,
    QueuedAlert,
    outbox_row,
)
from crawler.store.sqlite.outbox import STATE

#: The transaction advisory lock of a throttled channel's claims (with its name's hash).
THROTTLE_LOCK = 0x6E7D

_COLUMNS = ("key", "message_id", "watchlist", "channel", "subject", "article_id", "payload",
            "kind", "priority", "held", "next_attempt_at", "created_at")


def _queue(conn: Conn, row: dict[str, Any]) -> int | None:
    """Insert an outbox row (a key queued already stays as it was); its id, or None."""
    found = conn.execute(
        f"INSERT INTO outbox ({', '.join(_COLUMNS)}) VALUES "
        f"({', '.join(f'%({c})s' for c in _COLUMNS)}) ON CONFLICT DO NOTHING RETURNING id",
        row).fetchone()
    return int(found[0]) if found else None


class Outbox(Connected):
    @wrap_exceptions
    def fold_digests(self, now: datetime, channels: Iterable[str],
                     build: DigestBuilder) -> int:
        """Turn each channel's held alerts that are due into one digest row; returns how
        many digests were made (as ``SQLiteStore.fold_digests``: members and digest
        change in one transaction; a member another process holds is left for later)."""
        made = 0
        with self._tx() as conn:
            for channel in channels:
                members = conn.execute(
                    "SELECT id, payload FROM outbox WHERE channel = %s AND held = 1 "
                    "AND status = 'pending' AND next_attempt_at <= %s ORDER BY id "
                    "FOR UPDATE SKIP LOCKED", [channel, iso(now)]).fetchall()
                if not members:
                    continue
                row = build(channel, [json.loads(payload) for _, payload in members])
                digest_id = _queue(conn, outbox_row(row, now, None, "digest"))
                conn.execute("UPDATE outbox SET status = 'digested', held = 0, "
                             "digest_id = %s WHERE id = ANY(%s::bigint[])",
                             [digest_id, [m[0] for m in members]])
                made += 1
        return made

    @wrap_exceptions
    def claim_alerts(self, owner: str, now: datetime, lease: timedelta,
                     channels: Iterable[str], limit: int = 100,
                     throttles: Mapping[str, throttle.Throttle] | None = None,
                     ) -> list[QueuedAlert]:
        """Lease due outbox rows of the given channels that nobody else holds.

        ``throttles`` limits channels per hour: ``crawler.process.throttle`` decides which
        due alerts are claimed and which are held for the channel's next digest.
        """
        names = list(channels)
        if not names:
            return []
        throttles = throttles or {}
        with self._tx() as conn:
            # a throttled channel's claims one at a time, across daemons: each counts
            # what the one before it claimed (SQLite's BEGIN IMMEDIATE does as much)
            conn.execute(f"SELECT count(pg_advisory_xact_lock({THROTTLE_LOCK}, "
                         "hashtext(c))) FROM unnest(%s::text[]) AS u(c)",
                         [sorted(set(throttles) & set(names))])
            found = {r["id"]: r for r in rows(
                conn, "SELECT id, message_id, channel, watchlist, payload, attempts, "
                "created_at, kind, priority, first_attempt_at FROM outbox "
                "WHERE status = 'pending' AND held = 0 AND next_attempt_at <= %(now)s "
                "AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s) "
                "AND channel = ANY(%(names)s::text[]) ORDER BY next_attempt_at, id "
                "LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
                {"now": iso(now), "names": names, "limit": limit})}
            sent = {name: n for name, n in conn.execute(
                "SELECT c, (SELECT count(*) FROM outbox WHERE channel = c AND kind = 'alert' "
                "AND priority = 0 AND first_attempt_at > %s) FROM unnest(%s::text[]) AS u(c)",
                [iso(now - timedelta(hours=1)), list(throttles)])}
            decision = throttle.decide(
                (throttle.Due(r["id"], r["channel"], r["kind"], bool(r["priority"]),
                              r["first_attempt_at"] is not None) for r in found.values()),
                sent, throttles)
            held = sorted(decision.hold.items())
            conn.execute("UPDATE outbox o SET held = 1, next_attempt_at = h.until "
                         "FROM unnest(%s::bigint[], %s::text[]) AS h(id, until) "
                         "WHERE o.id = h.id", [[i for i, _ in held],
                                               [iso(u) for _, u in held]])
            conn.execute("UPDATE outbox SET lease_owner = %s, lease_expires_at = %s, "
                         "first_attempt_at = coalesce(first_attempt_at, %s) "
                         "WHERE id = ANY(%s::bigint[])",
                         [owner, iso(now + lease), iso(now), list(decision.claim)])
        return [QueuedAlert(r["id"], r["message_id"], r["channel"], r["watchlist"],
                            json.loads(r["payload"]), r["attempts"], r["created_at"],
                            r["kind"]) for r in (found[i] for i in decision.claim)]

    @wrap_exceptions
    def record_delivery(self, alert_id: int, owner: str, now: datetime,
                        result: DeliveryResult) -> bool:
        """Log the attempt and move the row on, if ``owner`` still holds its lease; as
        ``SQLiteStore.record_delivery``. Returns whether the row moved."""
        status = {"delivered": "delivered", "retry": "pending", "dead": "dead"}
        with self._tx() as conn:
            conn.execute("INSERT INTO delivery_attempts (outbox_id, attempted_at, outcome, "
                         "status_code, error, duration_ms) VALUES (%s, %s, %s, %s, %s, %s)",
                         [alert_id, iso(now), result.outcome, result.status_code,
                          result.error, result.duration_ms])
            changed = conn.execute(
                "UPDATE outbox SET status = %(status)s, attempts = attempts + 1, "
                "last_error = %(error)s, "
                "next_attempt_at = coalesce(%(next)s, next_attempt_at), "
                "delivered_at = CASE WHEN %(status)s = 'delivered' THEN %(now)s END, "
                "lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = %(id)s AND status = 'pending' AND lease_owner = %(owner)s",
                {"status": status[result.outcome], "error": result.error,
                 "next": iso(result.next_attempt_at) if result.next_attempt_at else None,
                 "now": iso(now), "id": alert_id, "owner": owner}).rowcount
            if changed and result.outcome == "retry":
                mute_waiting(conn, now, alert_id)  # muted while it was being sent
            if changed and result.outcome != "retry":
                conn.execute(
                    "UPDATE outbox SET status = %(status)s, last_error = %(error)s, "
                    "delivered_at = CASE WHEN %(status)s = 'delivered' THEN %(now)s END "
                    "WHERE digest_id = %(id)s AND status = 'digested'",
                    {"status": status[result.outcome], "error": result.error,
                     "now": iso(now), "id": alert_id})
            return bool(changed)

    @wrap_exceptions
    def requeue(self, now: datetime, ids: Iterable[int] = (), *, dead: bool = False) -> int:
        """Send dead (or any undelivered) alerts again with a fresh set of attempts,
        waking the idle daemons; as ``SQLiteStore.requeue``. Returns how many rows were
        requeued."""
        with self._tx() as conn:
            targets = sorted({r[0] for r in conn.execute(
                "SELECT coalesce(digest_id, id) FROM outbox WHERE id = ANY(%s::bigint[]) "
                "OR (%s AND status = 'dead')", [list(ids), dead])})
            count = conn.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, held = 0, "
                "next_attempt_at = %(now)s, lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = ANY(%(ids)s::bigint[]) AND (status = 'dead' OR status = "
                "'pending' AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s))",
                {"now": iso(now), "ids": targets}).rowcount
            conn.execute("UPDATE outbox SET status = 'digested' WHERE "
                         "digest_id = ANY(%s::bigint[]) AND status = 'dead'", [targets])
            if count:
                notify(conn, WAKE_ALERTS)
        return count

    @wrap_exceptions
    def failing_channels(self) -> dict[str, tuple[datetime, str | None]]:
        """Channels whose latest attempts failed: since when (the first failure after the
        last success) and the last error."""
        found: dict[str, tuple[datetime, str | None]] = {}
        for row in self._rows(
                "WITH a AS (SELECT o.channel, d.attempted_at, d.outcome, d.error, d.id "
                "FROM delivery_attempts d JOIN outbox o ON o.id = d.outbox_id), "
                "ok AS (SELECT channel, max(attempted_at) AS at FROM a "
                "WHERE outcome = 'delivered' GROUP BY channel) "
                "SELECT a.channel, min(a.attempted_at) AS since, "
                "(SELECT error FROM a b WHERE b.channel = a.channel ORDER BY b.id DESC "
                "LIMIT 1) AS last_error "
                "FROM a LEFT JOIN ok ON ok.channel = a.channel "
                "WHERE a.outcome != 'delivered' AND a.attempted_at > coalesce(ok.at, '') "
                "GROUP BY a.channel"):
            found[row["channel"]] = (parse_iso(row["since"]), row["last_error"])
        return found

    @wrap_exceptions
    def open_incident(self, key: str, kind: str, channel: str, since: datetime,
                      now: datetime, message: str, notice: OutboxRow | None) -> bool:
        """Record an incident once; the first time, queue its operator notice with it.
        Returns whether it is new."""
        with self._tx() as conn:
            if not conn.execute(
                    "INSERT INTO incidents (key, kind, channel, since, opened_at, message) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [key, kind, channel, iso(since), iso(now), message]).rowcount:
                return False
            if notice is not None:
                _queue(conn, outbox_row(notice, now, None, "notice"))
        return True

    @wrap_exceptions
    def incidents(self) -> list[dict[str, Any]]:
        """Every operator incident, oldest first."""
        return self._rows("SELECT * FROM incidents ORDER BY opened_at")

    @wrap_exceptions
    def alerts(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Outbox rows, newest first. ``status`` is a stored status (pending, digested,
        delivered, dead, muted) or a state (held for a digest, retrying); each row has both."""
        where = ""
        if status in ("held", "retrying"):
            where = f"WHERE {STATE} = %(status)s"
        elif status:
            where = "WHERE o.status = %(status)s"
        return self._rows(
            f"SELECT o.id, o.message_id, o.kind, o.watchlist, o.channel, o.status, "
            f"{STATE} AS state, o.attempts, o.next_attempt_at, o.last_error, "
            "o.created_at, o.delivered_at, o.priority, o.digest_id, a.title, a.url "
            f"FROM outbox o LEFT JOIN articles a ON a.id = o.article_id {where} "
            "ORDER BY o.id DESC LIMIT %(limit)s", {"status": status, "limit": limit})

    @wrap_exceptions
    def outbox_backlog(self, now: datetime) -> tuple[int, float]:
        """Pending alerts, and the age in seconds of the oldest one (0 when none)."""
        with self._tx() as conn:
            found = conn.execute("SELECT count(*), min(created_at) FROM outbox "
                                 "WHERE status = 'pending'").fetchone()
        count, oldest = found if found else (0, None)
        age = (now - parse_iso(oldest)).total_seconds() if oldest else 0.0
        return int(count), max(0.0, age)

    @wrap_exceptions
    def alert_counts(self) -> dict[str, int]:
        """How many alerts are in each state."""
        return {r["state"]: r["n"] for r in self._rows(
            f"SELECT {STATE} AS state, count(*) AS n FROM outbox o GROUP BY 1")}
