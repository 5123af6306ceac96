"""Looking after the file: online backups, retention of delivered alerts, the WAL."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from crawler.core.clock import iso
from crawler.core.errors import StoreError
from crawler.store.records import HOST_ROWS_KEPT
from crawler.store.sqlite.base import Connected, private, wrap_exceptions


class Maintenance(Connected):
    @wrap_exceptions
    def backup(self, destination: Path) -> None:
        """A consistent copy of the database, taken online (writers may go on); owner-only
        like the database."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        private(destination)
        target = sqlite3.connect(str(destination))
        try:
            self._conn.backup(target)
        finally:
            target.close()

    @wrap_exceptions
    def maintain(self, now: datetime, keep_delivered: timedelta) -> int:
        """Forget delivered alerts (and their attempts) older than ``keep_delivered``,
        then checkpoint the WAL; returns the alerts removed. Dead and pending alerts,
        articles and dedup keys are kept, and so are the alerts of a story seen since the
        cutoff: they are how it knows what it was alerted for, so it does not alert again."""
        cutoff = iso(now - keep_delivered)
        with self._write() as db:
            old = ("SELECT o.id FROM outbox o WHERE o.status = 'delivered' "
                   "AND o.delivered_at < :cutoff AND NOT EXISTS (SELECT 1 FROM articles a "
                   "JOIN stories s ON s.id = a.story_id WHERE a.id = o.article_id "
                   "AND s.last_seen_at >= :cutoff)")
            for table in ("delivery_attempts", "outbox_items"):
                db.execute(f"DELETE FROM {table} WHERE outbox_id IN ({old})",
                           {"cutoff": cutoff})
            removed = db.execute(f"DELETE FROM outbox WHERE id IN ({old})",
                                 {"cutoff": cutoff}).rowcount
            db.execute("DELETE FROM hosts WHERE next_at < :gone AND coalesce(held_until, "
                       "next_at) < :gone", {"gone": iso(now - HOST_ROWS_KEPT)})
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return int(removed)

    @wrap_exceptions
    def schema_version(self) -> int:
        """The highest migration applied."""
        return int(self._db.execute("SELECT max(version) FROM migrations").fetchone()[0])

    def writable(self) -> str | None:
        """None when a write transaction can be taken now, else the reason it cannot."""
        try:
            with self._write():
                pass
        except StoreError as exc:
            return str(exc)
        return None
