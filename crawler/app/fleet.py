"""What a daemon shares with the others on its database: that it runs, with which config
(``Presence``), and the wake-ups that bring its ticks forward (``Wakeups``).

Each daemon keeps a row in ``daemons`` (``Store.daemon_seen``): at start, every
``HEARTBEAT_S``, at once after a config reload, and removed at a clean stop. ``newswatch
status`` shows the rows and warns when live daemons run different config versions (an
edit one host did not get, a reload that failed). A row not seen for ``GONE_AFTER`` is
a daemon that stopped without saying so; it is shown as gone, and forgotten after
``FORGET_AFTER`` (or at once, by the next daemon started on its host, once its process
is known to have ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from crawler import __version__
from crawler.core.clock import Clock, parse_iso
from crawler.core.errors import StoreError
from crawler.store import ThreadedStore
from crawler.store.records import DaemonFacts

log = logging.getLogger(__name__)

#: How often a daemon says it still runs.
HEARTBEAT_S = 20.0
#: A daemon not seen for this long (three heartbeats) is shown as gone.
GONE_AFTER = timedelta(seconds=3 * HEARTBEAT_S)
#: A gone daemon's row is forgotten this long after it was last seen.
FORGET_AFTER = timedelta(days=1)
#: Wake-ups arriving within this of the first make one tick (a script running
#: ``sources poll`` for 200 sources wakes each daemon a few times, not 200).
SETTLE_S = 0.1


def name(row: Mapping[str, Any]) -> str:
    """A daemon as people name it: ``HOST:PID``."""
    return f"{row['host']}:{row['pid']}"


def different_configs(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The warning ``status`` gives when the live daemons (``Store.daemons`` rows) run
    different config versions, or None when they agree."""
    live = [row for row in rows if row["live"]]
    if len({row["config_version"] for row in live}) < 2:
        return None
    return ("daemons run different configs: "
            + ", ".join(f"{name(row)} runs {row['config_version']}" for row in live)
            + "; reload (SIGHUP) or restart them")


class Presence:
    """This daemon's row in ``daemons``. A failed write is logged, never fatal: the row
    is for people reading ``status``, and the next heartbeat writes it again."""

    def __init__(self, db: ThreadedStore, clock: Clock, owner: str, workers: int,
                 config_version: Callable[[], str]) -> None:
        self.db = db
        self.clock = clock
        self.owner = owner
        self.workers = workers
        self.config_version = config_version
        self.started_at = clock.now()

    def facts(self) -> DaemonFacts:
        return DaemonFacts(socket.gethostname(), os.getpid(), self.started_at,
                           self.config_version(), __version__, self.workers)

    async def beat(self) -> None:
        """Say this daemon runs now, with the config it runs now."""
        try:
            await self.db.daemon_seen(self.owner, self.clock.now(), self.facts())
        except StoreError as exc:
            log.warning("cannot record this daemon in the database (status will show it "
                        "as gone): %s", exc)

    async def tidy(self, is_dead: Callable[[str], bool]) -> None:
        """Forget the rows of daemons gone long ago, and of those ``is_dead`` knows have
        ended (killed on this host)."""
        now = self.clock.now()
        try:
            for row in await self.db.daemons(now, GONE_AFTER):
                owner = row["owner"]
                if owner != self.owner and (
                        is_dead(owner) or parse_iso(row["seen_at"]) < now - FORGET_AFTER):
                    await self.db.daemon_gone(owner)
        except StoreError as exc:
            log.warning("cannot tidy the daemons' rows: %s", exc)

    async def gone(self) -> None:
        """A clean stop: this daemon's row goes."""
        try:
            await self.db.daemon_gone(self.owner)
        except StoreError as exc:
            log.warning("cannot remove this daemon's row (status will show it as gone): "
                        "%s", exc)


class Wakeups:
    """Turns the store's wake-ups (``Store.listen``, called from its listener thread)
    into ticks on the loop: ``ticks`` maps each kind (``sources``, ``alerts``) to the
    tick it brings forward. A burst of wake-ups within ``SETTLE_S`` makes one tick per
    kind; an unknown kind is ignored."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 ticks: Mapping[str, Callable[[], Awaitable[None]]]) -> None:
        self.loop = loop
        self.ticks = ticks
        self.pending: set[str] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.running: set[asyncio.Task[None]] = set()

    def notify(self, kind: str) -> None:
        """From any thread: work of ``kind`` became due."""
        with contextlib.suppress(RuntimeError):  # the loop has closed: the daemon stops
            self.loop.call_soon_threadsafe(self._arrived, kind)

    def _arrived(self, kind: str) -> None:
        if kind not in self.ticks:
            log.debug("ignored a wake-up of unknown kind %r", kind)
            return
        self.pending.add(kind)
        if self.timer is None:
            self.timer = self.loop.call_later(SETTLE_S, self._fire)

    def _fire(self) -> None:
        self.timer = None
        kinds, self.pending = sorted(self.pending), set()
        for kind in kinds:
            log.debug("woken: %s due early", kind)
            task = self.loop.create_task(self._tick(kind), name=f"wake-up {kind}")
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _tick(self, kind: str) -> None:
        try:
            await self.ticks[kind]()
        except Exception:
            log.exception("a %s tick brought forward by a wake-up failed", kind)

    async def close(self) -> None:
        """No more ticks from wake-ups; those started end first (a tick only claims and
        starts tasks), so the daemon's stop cancels every poll they started."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.pending.clear()
        self.ticks = {}
        if self.running:
            await asyncio.wait(self.running)
