"""Mutes and learned rules: what users taught newswatch, kept beside the work it affects.

A mute is read inside the transaction that stores an article (``ACTIVE`` in
``ingest._mutes``), so an alert planned after a mute is committed never escapes it. The
alerts already queued that a new mute silences are marked ``muted`` in the mute's own
transaction; a ``muted`` row is never claimed, requeued or revived by an unmute.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils

from crawler.core.clock import iso, parse_iso
from crawler.core.errors import StoreError
from crawler.store.records import LearnedRule, Mute
from crawler.store.sqlite.base import Connected, last_id, wrap_exceptions

#: Mutes in force at :now (alias ``m``).
ACTIVE = "m.ended_at IS NULL AND (m.until IS NULL OR m.until > :now)"

#: The id of an active mute silencing outbox row ``o`` (an alert of an article): one of
#: its story or its source, or, when every watch item its article matched is muted, the
#: first of those watch mutes. One rule for a new mute and for an alert back from a retry.
SILENCING = f"""(SELECT min(m.id) FROM mutes m JOIN articles a ON a.id = o.article_id
    WHERE {ACTIVE} AND (
        (m.kind = 'story' AND m.story_id = a.story_id)
        OR (m.kind = 'source' AND m.target = a.source)
        OR (m.kind = 'watch' AND EXISTS (SELECT 1 FROM matches x
                WHERE x.article_id = a.id AND x.watch = m.target
                AND (m.watchlist IS NULL OR m.watchlist = x.watchlist))
            AND NOT EXISTS (SELECT 1 FROM matches x WHERE x.article_id = a.id
                AND NOT EXISTS (SELECT 1 FROM mutes w WHERE w.kind = 'watch'
                    AND w.ended_at IS NULL AND (w.until IS NULL OR w.until > :now)
                    AND w.target = x.watch
                    AND (w.watchlist IS NULL OR w.watchlist = x.watchlist))))))"""


def mute_waiting(db: sqlite_utils.Database, now: datetime, only: int | None = None) -> int:
    """Mark ``muted`` the alerts waiting to be sent (pending, held for a digest or
    between retries, and not being sent right now) that an active mute silences (``only``:
    that one row). Returns how many."""
    return int(db.execute(
        f"UPDATE outbox AS o SET status = 'muted', held = 0, mute_id = {SILENCING} "
        "WHERE o.kind = 'alert' AND o.status = 'pending' AND o.article_id IS NOT NULL "
        "AND (o.lease_owner IS NULL OR o.lease_expires_at <= :now) "
        f"{'AND o.id = :only ' if only is not None else ''}AND {SILENCING} IS NOT NULL",
        {"now": iso(now), "only": only}).rowcount)


class Tuning(Connected):
    @wrap_exceptions
    def add_mute(self, mute: Mute) -> tuple[int, int]:
        """Record a mute and, in the same transaction, mark ``muted`` the waiting alerts
        it silences; returns (the mute's id, alerts muted). A story mute names the
        story by its key; an unknown story is an error."""
        with self._write() as db:
            story_id = None
            if mute.kind == "story":
                row = db.execute("SELECT id FROM stories WHERE key = ?",
                                 [mute.target]).fetchone()
                if row is None:
                    raise StoreError(f"no stored story {mute.target!r}")
                story_id = int(row[0])
            mute_id = last_id(db.table("mutes").insert({
                "kind": mute.kind, "target": mute.target, "watchlist": mute.watchlist,
                "story_id": story_id, "article_url": mute.article_url,
                "created_by": mute.created_by, "created_at": iso(mute.created_at),
                "until": iso(mute.until) if mute.until else None}))
            muted = mute_waiting(db, mute.created_at)
            db.execute("UPDATE mutes SET alerts_muted = ? WHERE id = ?", [muted, mute_id])
        return mute_id, muted

    @wrap_exceptions
    def mutes(self, now: datetime, *, everything: bool = False) -> list[dict[str, Any]]:
        """Mutes in force at ``now`` (``everything``: ended and expired ones too), newest
        first, each with its ``state`` (active, expired, ended) and, for a story, its
        title."""
        where = "1" if everything else ACTIVE
        return list(self._db.query(
            "SELECT m.id, m.kind, m.target, m.watchlist, m.story_id, s.title AS story_title, "
            "m.article_url, m.created_by, m.created_at, m.until, m.alerts_muted, "
            "m.ended_at, m.ended_by, CASE WHEN m.ended_at IS NOT NULL THEN 'ended' "
            "WHEN m.until IS NOT NULL AND m.until <= :now THEN 'expired' "
            "ELSE 'active' END AS state FROM mutes m LEFT JOIN stories s "
            f"ON s.id = m.story_id WHERE {where} ORDER BY m.id DESC", {"now": iso(now)}))

    @wrap_exceptions
    def end_mute(self, mute_id: int, now: datetime, by: str) -> bool:
        """Undo a mute from now on; whether it was in force. Alerts it marked ``muted``
        stay muted: they are never sent."""
        with self._write() as db:
            return bool(db.execute(
                f"UPDATE mutes AS m SET ended_at = :at, ended_by = :by WHERE id = :id "
                f"AND {ACTIVE}", {"at": iso(now), "by": by, "id": mute_id,
                                  "now": iso(now)}).rowcount)

    @wrap_exceptions
    def add_rule(self, rule: LearnedRule) -> int:
        """Keep a learned rule; returns its id (the existing one's when the same rule is
        there already)."""
        with self._write() as db:
            key = [rule.watchlist, rule.watch, rule.kind, rule.term]
            row = db.execute("SELECT id FROM learned_rules WHERE watchlist = ? AND watch = ? "
                             "AND kind = ? AND term = ?", key).fetchone()
            if row is not None:
                return int(row[0])
            return last_id(db.table("learned_rules").insert({
                "watchlist": rule.watchlist, "watch": rule.watch, "kind": rule.kind,
                "term": rule.term, "created_by": rule.created_by,
                "created_at": iso(rule.created_at), "article_url": rule.article_url,
                "note": rule.note}))

    @wrap_exceptions
    def rules(self) -> list[LearnedRule]:
        """Every learned rule, oldest first."""
        return [LearnedRule(r["watchlist"], r["watch"], r["kind"], r["term"],
                            r["created_by"], parse_iso(r["created_at"]), r["article_url"],
                            r["note"], r["id"])
                for r in self._db.query("SELECT * FROM learned_rules ORDER BY id")]

    @wrap_exceptions
    def rules_version(self) -> tuple[int, int]:
        """(count, highest id) of the learned rules: it changes whenever one is added or
        removed (ids are never reused), for a daemon to look cheaply before each batch."""
        count, top = self._db.execute(
            "SELECT count(*), coalesce(max(id), 0) FROM learned_rules").fetchone()
        return int(count), int(top)

    @wrap_exceptions
    def remove_rule(self, rule_id: int) -> bool:
        """Forget a learned rule; whether there was one."""
        with self._write() as db:
            return bool(db.execute("DELETE FROM learned_rules WHERE id = ?",
                                   [rule_id]).rowcount)
