"""The outbox: alerts, digests and notices queued, claimed under a lease, delivered,
retried or dead; the attempts behind them, and the operator incidents they open."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from crawler.core.clock import iso, parse_iso
from crawler.process import throttle
from crawler.store.records import (
    DeliveryResult,
    DigestBuilder,
    OutboxRow,
    QueuedAlert,
    outbox_row,
)
from crawler.store.sqlite.base import Connected, wrap_exceptions
from crawler.store.sqlite.tuning import mute_waiting

STATE = ("CASE WHEN o.status = 'pending' AND o.held = 1 THEN 'held' "
          "WHEN o.status = 'pending' AND o.attempts > 0 THEN 'retrying' "
          "ELSE o.status END")


class Outbox(Connected):
    @wrap_exceptions
    def fold_digests(self, now: datetime, channels: Iterable[str],
                     build: DigestBuilder) -> int:
        """Turn each channel's held alerts that are due into one digest row; returns how
        many digests were made. ``build`` makes the digest row from the members' payloads.

        Members leave the queue (status ``digested``) in the same transaction, so a crash
        leaves either the held alerts or the digest, never both and never neither.
        """
        made = 0
        with self._write() as db:
            for channel in channels:
                members = list(db.query(
                    "SELECT id, payload FROM outbox WHERE channel = ? AND held = 1 "
                    "AND status = 'pending' AND next_attempt_at <= ? ORDER BY id",
                    [channel, iso(now)]))
                if not members:
                    continue
                row = build(channel, [json.loads(m["payload"]) for m in members])
                digest_id = db.table("outbox").insert(
                    outbox_row(row, now, None, "digest")).last_pk
                marks = ",".join("?" * len(members))
                db.execute(f"UPDATE outbox SET status = 'digested', held = 0, digest_id = ? "
                           f"WHERE id IN ({marks})", [digest_id, *(m["id"] for m in members)])
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
        marks = ",".join("?" * len(names))
        throttles = throttles or {}
        with self._write() as db:
            rows = {r["id"]: r for r in db.query(
                "SELECT id, message_id, channel, watchlist, payload, attempts, created_at, "
                "kind, priority, first_attempt_at FROM outbox WHERE status = 'pending' "
                "AND held = 0 AND next_attempt_at <= ? "
                "AND (lease_expires_at IS NULL OR lease_expires_at <= ?) "
                f"AND channel IN ({marks}) ORDER BY next_attempt_at, id LIMIT ?",
                [iso(now), iso(now), *names, limit])}
            sent = {name: db.execute(
                "SELECT count(*) FROM outbox WHERE channel = ? AND kind = 'alert' "
                "AND priority = 0 AND first_attempt_at > ?",
                [name, iso(now - timedelta(hours=1))]).fetchone()[0] for name in throttles}
            decision = throttle.decide(
                (throttle.Due(r["id"], r["channel"], r["kind"], bool(r["priority"]),
                              r["first_attempt_at"] is not None) for r in rows.values()),
                sent, throttles)
            for alert_id, until in decision.hold.items():
                db.execute("UPDATE outbox SET held = 1, next_attempt_at = ? WHERE id = ?",
                           [iso(until), alert_id])
            for alert_id in decision.claim:
                db.execute("UPDATE outbox SET lease_owner = ?, lease_expires_at = ?, "
                           "first_attempt_at = coalesce(first_attempt_at, ?) WHERE id = ?",
                           [owner, iso(now + lease), iso(now), alert_id])
        return [QueuedAlert(r["id"], r["message_id"], r["channel"], r["watchlist"],
                            json.loads(r["payload"]), r["attempts"], r["created_at"],
                            r["kind"]) for r in (rows[i] for i in decision.claim)]

    @wrap_exceptions
    def record_delivery(self, alert_id: int, owner: str, now: datetime,
                        result: DeliveryResult) -> bool:
        """Log the attempt and move the row on, if ``owner`` still holds its lease (a late
        report from a process whose lease ran out must not disturb the one sending it
        now); a delivered row is never touched again. Returns whether the row moved.

        A digest's members follow it: delivered or dead with it. An alert whose story
        (source, watch items) was muted while it was being sent is ``muted`` if that
        attempt failed: it is not tried again.
        """
        with self._write() as db:
            db.table("delivery_attempts").insert({
                "outbox_id": alert_id, "attempted_at": iso(now), "outcome": result.outcome,
                "status_code": result.status_code, "error": result.error,
                "duration_ms": result.duration_ms,
            })
            status = {"delivered": "delivered", "retry": "pending", "dead": "dead"}
            changed = db.execute(
                "UPDATE outbox SET status = :status, attempts = attempts + 1, "
                "last_error = :error, next_attempt_at = coalesce(:next, next_attempt_at), "
                "delivered_at = CASE WHEN :status = 'delivered' THEN :now END, "
                "lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = :id AND status = 'pending' AND lease_owner = :owner",
                {"status": status[result.outcome], "error": result.error,
                 "next": iso(result.next_attempt_at) if result.next_attempt_at else None,
                 "now": iso(now), "id": alert_id, "owner": owner}).rowcount
            if changed and result.outcome == "retry":
                mute_waiting(db, now, alert_id)  # muted while it was being sent
            if changed and result.outcome != "retry":
                db.execute(
                    "UPDATE outbox SET status = :status, last_error = :error, "
                    "delivered_at = CASE WHEN :status = 'delivered' THEN :now END "
                    "WHERE digest_id = :id AND status = 'digested'",
                    {"status": status[result.outcome], "error": result.error,
                     "now": iso(now), "id": alert_id})
            return bool(changed)

    @wrap_exceptions
    def requeue(self, now: datetime, ids: Iterable[int] = (), *, dead: bool = False) -> int:
        """Send dead (or any undelivered) alerts again with a fresh set of attempts.

        An alert delivered inside a digest is requeued as that digest. Returns how many
        rows were requeued; delivered rows are never requeued.
        """
        with self._write() as db:
            wanted = list(ids)
            if dead:
                wanted += [r[0] for r in db.execute(
                    "SELECT id FROM outbox WHERE status = 'dead'")]
            targets: set[int] = set()
            for alert_id in wanted:
                row = db.execute("SELECT coalesce(digest_id, id) FROM outbox WHERE id = ?",
                                 [alert_id]).fetchone()
                if row:
                    targets.add(int(row[0]))
            count = 0
            for target in sorted(targets):
                count += db.execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, held = 0, "
                    "next_attempt_at = ?, lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE id = ? AND (status = 'dead' OR status = 'pending' AND "
                    "(lease_expires_at IS NULL OR lease_expires_at <= ?))",
                    [iso(now), target, iso(now)]).rowcount
                db.execute("UPDATE outbox SET status = 'digested' WHERE digest_id = ? "
                           "AND status = 'dead'", [target])
        return count

    @wrap_exceptions
    def failing_channels(self) -> dict[str, tuple[datetime, str | None]]:
        """Channels whose latest attempts failed: since when (the first failure after the
        last success) and the last error."""
        found: dict[str, tuple[datetime, str | None]] = {}
        for row in self._db.query(
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
        with self._write() as db:
            if db.execute("SELECT 1 FROM incidents WHERE key = ?", [key]).fetchone():
                return False
            db.table("incidents").insert({"key": key, "kind": kind, "channel": channel,
                                          "since": iso(since), "opened_at": iso(now),
                                          "message": message})
            if notice is not None:
                db.table("outbox").insert(outbox_row(notice, now, None, "notice"),
                                          ignore=True)
        return True

    @wrap_exceptions
    def incidents(self) -> list[dict[str, Any]]:
        """Every operator incident, oldest first."""
        return list(self._db.query("SELECT * FROM incidents ORDER BY opened_at"))

    @wrap_exceptions
    def alerts(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Outbox rows, newest first. ``status`` is a stored status (pending, digested,
        delivered, dead, muted) or a state (held for a digest, retrying); each row has both."""
        where = ""
        if status in ("held", "retrying"):
            where = f"WHERE {STATE} = :status"
        elif status:
            where = "WHERE o.status = :status"
        return list(self._db.query(
            f"SELECT o.id, o.message_id, o.kind, o.watchlist, o.channel, o.status, "
            f"{STATE} AS state, o.attempts, o.next_attempt_at, o.last_error, "
            "o.created_at, o.delivered_at, o.priority, o.digest_id, a.title, a.url "
            f"FROM outbox o LEFT JOIN articles a ON a.id = o.article_id {where} "
            "ORDER BY o.id DESC LIMIT :limit", {"status": status, "limit": limit}))

    @wrap_exceptions
    def outbox_backlog(self, now: datetime) -> tuple[int, float]:
        """Pending alerts, and the age in seconds of the oldest one (0 when none)."""
        count, oldest = self._db.execute(
            "SELECT count(*), min(created_at) FROM outbox WHERE status = 'pending'").fetchone()
        age = (now - parse_iso(oldest)).total_seconds() if oldest else 0.0
        return int(count), max(0.0, age)

    @wrap_exceptions
    def alert_counts(self) -> dict[str, int]:
        """How many alerts are in each state."""
        return {r["state"]: r["n"] for r in self._db.query(
            f"SELECT {STATE} AS state, count(*) AS n FROM outbox o GROUP BY 1")}
