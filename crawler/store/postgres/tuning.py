"""Mutes and learned rules: what users taught newswatch, kept beside the work it affects
(as ``crawler.store.sqlite.tuning``: a mute is read inside the transaction that stores an
article, and marks the waiting alerts it silences in its own)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crawler.core.clock import iso, parse_iso
from crawler.core.errors import StoreError
from crawler.store.postgres.base import Conn, Connected, wrap_exceptions
from crawler.store.postgres.ingest import ACTIVE
from crawler.store.records import LearnedRule, Mute

#: The id of an active mute silencing outbox row ``o``; crawler.store.sqlite.tuning.
SILENCING = f"""(SELECT min(m.id) FROM mutes m JOIN articles a ON a.id = o.article_id
    WHERE {ACTIVE} AND (
        (m.kind = 'story' AND m.story_id = a.story_id)
        OR (m.kind = 'source' AND m.target = a.source)
        OR (m.kind = 'watch' AND EXISTS (SELECT 1 FROM matches x
                WHERE x.article_id = a.id AND x.watch = m.target
                AND (m.watchlist IS NULL OR m.watchlist = x.watchlist))
            AND NOT EXISTS (SELECT 1 FROM matches x WHERE x.article_id = a.id
                AND NOT EXISTS (SELECT 1 FROM mutes w WHERE w.kind = 'watch'
                    AND w.ended_at IS NULL AND (w.until IS NULL OR w.until > %(now)s)
                    AND w.target = x.watch
                    AND (w.watchlist IS NULL OR w.watchlist = x.watchlist))))))"""


def mute_waiting(conn: Conn, now: datetime, only: int | None = None) -> int:
    """Mark ``muted`` the alerts waiting to be sent that an active mute silences
    (``only``: that one row). Returns how many."""
    return conn.execute(
        f"UPDATE outbox AS o SET status = 'muted', held = 0, mute_id = {SILENCING} "
        "WHERE o.kind = 'alert' AND o.status = 'pending' AND o.article_id IS NOT NULL "
        "AND (o.lease_owner IS NULL OR o.lease_expires_at <= %(now)s) "
        f"{'AND o.id = %(only)s ' if only is not None else ''}AND {SILENCING} IS NOT NULL",
        {"now": iso(now), "only": only}).rowcount


class Tuning(Connected):
    @wrap_exceptions
    def add_mute(self, mute: Mute) -> tuple[int, int]:
        """Record a mute and, in the same transaction, mark ``muted`` the waiting alerts
        it silences; returns (the mute's id, alerts muted). A story mute names the
        story by its key; an unknown story is an error."""
        with self._tx() as conn:
            story_id = None
            if mute.kind == "story":
                row = conn.execute("SELECT id FROM stories WHERE key = %s",
                                   [mute.target]).fetchone()
                if row is None:
                    raise StoreError(f"no stored story {mute.target!r}")
                story_id = int(row[0])
            found = conn.execute(
                "INSERT INTO mutes (kind, target, watchlist, story_id, article_url, "
                "created_by, created_at, until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "RETURNING id", [mute.kind, mute.target, mute.watchlist, story_id,
                                 mute.article_url, mute.created_by, iso(mute.created_at),
                                 iso(mute.until) if mute.until else None]).fetchone()
            assert found is not None
            mute_id = int(found[0])
            muted = mute_waiting(conn, mute.created_at)
            conn.execute("UPDATE mutes SET alerts_muted = %s WHERE id = %s", [muted, mute_id])
        return mute_id, muted

    @wrap_exceptions
    def mutes(self, now: datetime, *, everything: bool = False) -> list[dict[str, Any]]:
        """Mutes in force at ``now`` (``everything``: ended and expired ones too), newest
        first, each with its ``state`` (active, expired, ended) and, for a story, its
        title."""
        where = "TRUE" if everything else ACTIVE
        return self._rows(
            "SELECT m.id, m.kind, m.target, m.watchlist, m.story_id, s.title AS story_title, "
            "m.article_url, m.created_by, m.created_at, m.until, m.alerts_muted, "
            "m.ended_at, m.ended_by, CASE WHEN m.ended_at IS NOT NULL THEN 'ended' "
            "WHEN m.until IS NOT NULL AND m.until <= %(now)s THEN 'expired' "
            "ELSE 'active' END AS state FROM mutes m LEFT JOIN stories s "
            f"ON s.id = m.story_id WHERE {where} ORDER BY m.id DESC", {"now": iso(now)})

    @wrap_exceptions
    def end_mute(self, mute_id: int, now: datetime, by: str) -> bool:
        """Undo a mute from now on; whether it was in force. Alerts it marked ``muted``
        stay muted: they are never sent."""
        with self._tx() as conn:
            return bool(conn.execute(
                "UPDATE mutes AS m SET ended_at = %(now)s, ended_by = %(by)s "
                f"WHERE id = %(id)s AND {ACTIVE}",
                {"by": by, "id": mute_id, "now": iso(now)}).rowcount)

    @wrap_exceptions
    def add_rule(self, rule: LearnedRule) -> int:
        """Keep a learned rule; returns its id (the existing one's when the same rule is
        there already)."""
        key = [rule.watchlist, rule.watch, rule.kind, rule.term]
        with self._tx() as conn:
            found = conn.execute(
                "INSERT INTO learned_rules (watchlist, watch, kind, term, created_by, "
                "created_at, article_url, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING RETURNING id",
                [*key, rule.created_by, iso(rule.created_at), rule.article_url,
                 rule.note]).fetchone()
            if found is None:
                found = conn.execute("SELECT id FROM learned_rules WHERE watchlist = %s "
                                     "AND watch = %s AND kind = %s AND term = %s",
                                     key).fetchone()
            assert found is not None
            return int(found[0])

    @wrap_exceptions
    def rules(self) -> list[LearnedRule]:
        """Every learned rule, oldest first."""
        return [LearnedRule(r["watchlist"], r["watch"], r["kind"], r["term"],
                            r["created_by"], parse_iso(r["created_at"]), r["article_url"],
                            r["note"], r["id"])
                for r in self._rows("SELECT * FROM learned_rules ORDER BY id")]

    @wrap_exceptions
    def rules_version(self) -> tuple[int, int]:
        """(count, highest id) of the learned rules: it changes whenever one is added or
        removed (ids are never reused)."""
        with self._tx() as conn:
            found = conn.execute(
                "SELECT count(*), coalesce(max(id), 0) FROM learned_rules").fetchone()
        return (int(found[0]), int(found[1])) if found else (0, 0)

    @wrap_exceptions
    def remove_rule(self, rule_id: int) -> bool:
        """Forget a learned rule; whether there was one."""
        with self._tx() as conn:
            return bool(conn.execute("DELETE FROM learned_rules WHERE id = %s",
                                     [rule_id]).rowcount)
