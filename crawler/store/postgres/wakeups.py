"""Wake-ups: a NOTIFY when work becomes due early, and each daemon's listener thread.

A change that makes work due before the daemons' next tick (``poll_now``; new, moved or
revived sources in ``sync_sources``; ``requeue``) sends ``pg_notify('newswatch', KIND)``
inside its own transaction: PostgreSQL delivers it at commit, once per transaction and
kind, and never when the transaction rolls back. A daemon listens on a connection of its
own (a pooled one would stop listening once given back), in a thread that looks at its
stop flag between bounded waits, and calls back with the kind: ``sources`` or ``alerts``.
A lost connection is made again with a growing delay, and the daemon is then woken for
both kinds, since what was notified meanwhile is lost. Wake-ups only bring a tick
forward: a daemon that misses one still finds the work at its next tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from crawler.core.redact import scrub
from crawler.store.postgres.base import WAIT_S, Conn
from crawler.store.records import WAKE_ALERTS, WAKE_SOURCES

log = logging.getLogger(__name__)

CHANNEL = "newswatch"
#: How long one wait for notifications lasts before the stop flag is looked at again.
WAIT_STEP_S = 0.5
#: The delay before listening again after a failure, doubled up to the second figure.
RETRY_S = (1.0, 60.0)
#: TCP keepalives, unless the DSN sets its own: a listener on a half-open connection (the
#: server's host lost) would otherwise wait for notifications that never come, for hours.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
              "keepalives_count": 3}


def notify(conn: Conn, kind: str) -> None:
    """Wake the listening daemons for ``kind`` when the transaction on ``conn`` commits."""
    conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, kind])


class Listener:
    """``LISTEN newswatch`` in a thread of its own, until ``close``."""

    def __init__(self, dsn: str, location: str, secrets: dict[str, str],
                 callback: Callable[[str], None]) -> None:
        self._conninfo = make_conninfo("", **{**KEEPALIVES, **conninfo_to_dict(dsn)})
        self._location = location
        self._secrets = secrets
        self._callback = callback
        self._stop = threading.Event()
        self._conn: Conn | None = None
        self._thread = threading.Thread(target=self._run, name="newswatch-listener",
                                        daemon=True)

    def start(self) -> None:
        """Listen from now on: the first connection is made here, so every wake-up
        committed after this returns is heard (unless the connection is lost: then
        the thread connects again, and wakes the daemon for everything)."""
        try:
            self._conn = self._connect()
        except psycopg.Error as exc:
            self._lost(exc, RETRY_S[0])
            self._conn = None
        self._thread.start()

    def close(self) -> None:
        """Stop listening: within ``WAIT_STEP_S`` once connected (a connection attempt
        under way is not waited for; the thread is a daemon thread)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * WAIT_STEP_S)

    def _connect(self) -> Conn:
        conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=int(WAIT_S),
                               application_name="newswatch listener")
        try:
            conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self) -> None:
        delay, lost = RETRY_S[0], self._conn is None
        while not self._stop.is_set():
            conn, self._conn = self._conn, None
            try:
                if conn is None:
                    conn = self._connect()
                with conn:
                    if lost:
                        log.info("listening for wake-ups from database %s again",
                                 self._location)
                        for kind in (WAKE_SOURCES, WAKE_ALERTS):  # missed meanwhile
                            self._call(kind)
                    delay, lost = RETRY_S[0], False
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=WAIT_STEP_S):
                            self._call(note.payload)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                self._lost(exc, delay)
                lost = True
                self._stop.wait(delay)
                delay = min(2 * delay, RETRY_S[1])

    def _lost(self, exc: psycopg.Error, delay: float) -> None:
        log.warning("no wake-ups from database %s (%s): the daemon finds early work at "
                    "its next tick; listening again in %gs", self._location,
                    scrub(str(exc).strip(), self._secrets), delay)

    def _call(self, kind: str) -> None:
        try:
            self._callback(kind)
        except Exception:
            log.exception("a wake-up (%s) failed", kind)
