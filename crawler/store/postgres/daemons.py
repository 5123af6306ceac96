"""Who runs: each daemon's row (``daemons``), and the wake-ups it listens for
(``crawler.store.postgres.wakeups``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from crawler.store import queries
from crawler.store.postgres.base import Connected, wrap_exceptions
from crawler.store.postgres.wakeups import Listener
from crawler.store.records import Closer, DaemonFacts


class Daemons(Connected):
    _dsn: str

    @wrap_exceptions
    def daemon_seen(self, owner: str, now: datetime, facts: DaemonFacts) -> None:
        """Record that daemon ``owner`` runs at ``now``; as ``SQLiteStore.daemon_seen``."""
        with self._tx() as conn:
            conn.execute(*queries.daemon_seen(owner, now, facts, mark="%s"))

    @wrap_exceptions
    def daemon_gone(self, owner: str) -> bool:
        """Forget daemon ``owner`` (it stopped); False if it had no row."""
        with self._tx() as conn:
            return bool(conn.execute("DELETE FROM daemons WHERE owner = %s",
                                     [owner]).rowcount)

    @wrap_exceptions
    def daemons(self, now: datetime, within: timedelta) -> list[dict[str, Any]]:
        """Every daemon's row, by host and pid, with ``live``; as ``SQLiteStore.daemons``."""
        return self._rows(*queries.daemons(now, within, mark="%s"))

    @wrap_exceptions
    def listen(self, callback: Callable[[str], None]) -> Closer:
        """Call ``callback`` with ``sources`` or ``alerts`` (from a thread of its own)
        whenever a transaction, in any process, makes such work due early, from the
        moment this returns until the closer is closed. A database out of reach only
        delays the wake-ups (logged); it never fails the caller."""
        listener = Listener(self._dsn, self._location, self._secrets, callback)
        listener.start()
        return listener
