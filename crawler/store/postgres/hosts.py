"""Turns at remote hosts, shared by every daemon on the database (``hosts`` rows), as
``crawler.store.sqlite.hosts``. A turn is taken by one ``INSERT … ON CONFLICT DO UPDATE
… WHERE``: the row is locked while it is checked and set, so two daemons can never both
be given a host."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from crawler.core.clock import iso, parse_iso
from crawler.store.postgres.base import Connected, wrap_exceptions
from crawler.store.records import HostBusy


class Hosts(Connected):
    @wrap_exceptions
    def take_host(self, host: str, owner: str, now: datetime,
                  hold: timedelta) -> HostBusy | None:
        """As ``SQLiteStore.take_host``."""
        values = {"host": host, "owner": owner, "now": iso(now), "until": iso(now + hold)}
        with self._tx() as conn:
            if conn.execute(
                    "INSERT INTO hosts AS h (host, next_at, held_by, held_until) "
                    "VALUES (%(host)s, %(now)s, %(owner)s, %(until)s) "
                    "ON CONFLICT (host) DO UPDATE SET held_by = excluded.held_by, "
                    "held_until = excluded.held_until WHERE h.next_at <= %(now)s "
                    "AND (h.held_by IS NULL OR h.held_by = %(owner)s "
                    "OR h.held_until <= %(now)s) RETURNING 1", values).fetchone():
                return None
            row = conn.execute("SELECT next_at, held_by, held_until FROM hosts "
                               "WHERE host = %s", [host]).fetchone()
        if row is None:  # pruned in between by ``maintain``: ask again
            return HostBusy(now)
        next_at, held_by, held_until = row
        held = held_by not in (None, owner) and held_until > iso(now)
        return HostBusy(parse_iso(next_at), parse_iso(held_until) if held else None)

    @wrap_exceptions
    def renew_hosts(self, hosts: Sequence[str], owner: str, now: datetime,
                    hold: timedelta) -> list[str]:
        """As ``SQLiteStore.renew_hosts``."""
        with self._tx() as conn:
            found = conn.execute("UPDATE hosts SET held_until = %s WHERE host = ANY(%s) "
                                 "AND held_by = %s RETURNING host",
                                 [iso(now + hold), list(hosts), owner]).fetchall()
        kept = {row[0] for row in found}
        return [host for host in hosts if host in kept]

    @wrap_exceptions
    def free_host(self, host: str, owner: str, now: datetime, delay: timedelta) -> None:
        """As ``SQLiteStore.free_host``."""
        with self._tx() as conn:
            conn.execute("INSERT INTO hosts AS h (host, next_at) VALUES (%(host)s, %(next)s) "
                         "ON CONFLICT (host) DO UPDATE SET next_at = greatest(h.next_at, "
                         "excluded.next_at), held_by = CASE WHEN h.held_by = %(owner)s "
                         "THEN NULL ELSE h.held_by END, held_until = CASE WHEN "
                         "h.held_by = %(owner)s THEN NULL ELSE h.held_until END",
                         {"host": host, "next": iso(now + delay), "owner": owner})

    @wrap_exceptions
    def defer_host(self, host: str, until: datetime) -> None:
        """As ``SQLiteStore.defer_host``."""
        with self._tx() as conn:
            conn.execute("INSERT INTO hosts AS h (host, next_at) VALUES (%s, %s) "
                         "ON CONFLICT (host) DO UPDATE SET next_at = greatest(h.next_at, "
                         "excluded.next_at)", [host, iso(until)])
