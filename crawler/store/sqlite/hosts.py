"""Turns at remote hosts, shared by every process on the database (``hosts`` rows).

One row per host (``crawler.collect.politeness.host_of``): no request to it starts before
``next_at``, and while ``held_by`` holds it (until ``held_until``, renewed by a long
crawl) nobody else starts one. Each method is one ``BEGIN IMMEDIATE`` transaction, so two
processes can never both be given a host.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from crawler.core.clock import iso, parse_iso
from crawler.store.records import HostBusy
from crawler.store.sqlite.base import Connected, wrap_exceptions


class Hosts(Connected):
    @wrap_exceptions
    def take_host(self, host: str, owner: str, now: datetime,
                  hold: timedelta) -> HostBusy | None:
        """Hold ``host`` for ``owner`` until ``now + hold``: None when given (its
        ``next_at`` has come and no other owner holds it, or that hold lapsed), else
        why not. ``owner``'s own hold is given again."""
        with self._write() as db:
            row = db.execute("SELECT next_at, held_by, held_until FROM hosts WHERE host = ?",
                             [host]).fetchone()
            if row is not None:
                next_at, held_by, held_until = row
                held = held_by not in (None, owner) and held_until > iso(now)
                if held or next_at > iso(now):
                    return HostBusy(parse_iso(next_at),
                                    parse_iso(held_until) if held else None)
            db.execute("INSERT INTO hosts (host, next_at, held_by, held_until) "
                       "VALUES (?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET "
                       "held_by = excluded.held_by, held_until = excluded.held_until",
                       [host, iso(now), owner, iso(now + hold)])
        return None

    @wrap_exceptions
    def renew_hosts(self, hosts: Sequence[str], owner: str, now: datetime,
                    hold: timedelta) -> list[str]:
        """Extend ``owner``'s holds on ``hosts`` to ``now + hold``; the hosts it still
        held (a lapsed hold another owner took is not taken back)."""
        with self._write() as db:
            kept = []
            for host in hosts:
                if db.execute("UPDATE hosts SET held_until = ? WHERE host = ? "
                              "AND held_by = ?", [iso(now + hold), host, owner]).rowcount:
                    kept.append(host)
        return kept

    @wrap_exceptions
    def free_host(self, host: str, owner: str, now: datetime, delay: timedelta) -> None:
        """``owner``'s request (or crawl) at ``host`` ended at ``now``: the next may start
        ``delay`` later, and ``owner``'s hold ends."""
        with self._write() as db:
            db.execute("INSERT INTO hosts (host, next_at) VALUES (?, ?) "
                       "ON CONFLICT (host) DO UPDATE SET next_at = max(next_at, "
                       "excluded.next_at), held_by = CASE WHEN held_by = ? THEN NULL "
                       "ELSE held_by END, held_until = CASE WHEN held_by = ? THEN NULL "
                       "ELSE held_until END", [host, iso(now + delay), owner, owner])

    @wrap_exceptions
    def defer_host(self, host: str, until: datetime) -> None:
        """The host asked for a pause (Retry-After): no request to it before ``until``."""
        with self._write() as db:
            db.execute("INSERT INTO hosts (host, next_at) VALUES (?, ?) ON CONFLICT (host) "
                       "DO UPDATE SET next_at = max(next_at, excluded.next_at)",
                       [host, iso(until)])
