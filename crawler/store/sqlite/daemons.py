"""Who runs: each daemon's row (``daemons``), and wake-ups, which SQLite has none of."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from crawler.store import queries
from crawler.store.records import Closer, DaemonFacts, NoWakeups
from crawler.store.sqlite.base import Connected, wrap_exceptions


class Daemons(Connected):
    @wrap_exceptions
    def daemon_seen(self, owner: str, now: datetime, facts: DaemonFacts) -> None:
        """Record that daemon ``owner`` runs at ``now``, with ``facts`` (its config version
        may have changed since: a reload)."""
        with self._write() as db:
            db.execute(*queries.daemon_seen(owner, now, facts, mark="?"))

    @wrap_exceptions
    def daemon_gone(self, owner: str) -> bool:
        """Forget daemon ``owner`` (it stopped); False if it had no row."""
        with self._write() as db:
            return bool(db.execute("DELETE FROM daemons WHERE owner = ?", [owner]).rowcount)

    @wrap_exceptions
    def daemons(self, now: datetime, within: timedelta) -> list[dict[str, Any]]:
        """Every daemon's row, by host and pid, with ``live``: seen within ``within`` of
        ``now``. A daemon that stopped without saying so (killed, its host lost) keeps
        its row, not live: readers show it as gone rather than forget it."""
        return [{**row, "live": bool(row["live"])}
                for row in self._db.query(*queries.daemons(now, within, mark="?"))]

    @wrap_exceptions
    def listen(self, callback: Callable[[str], None]) -> Closer:
        """Nothing to listen to: SQLite has no notifications, so a daemon sees work made
        due early (``poll_now``, a reload's new sources, ``requeue``) at its next tick
        (the desk's Poll now wakes the daemon serving it, through ``Host.wake``)."""
        return NoWakeups()
