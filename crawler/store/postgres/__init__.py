"""The PostgreSQL backend: many daemons, on any number of hosts, share one database.

Selected by ``database: postgresql://USER@HOST:PORT/NAME`` (``crawler.store.open_store``).
psycopg 3 with a small connection pool (the daemon's store calls run on up to
``concurrent_calls`` threads, ``ThreadedStore``; the pool replaces a connection the server
dropped). The class is put
together from one part per domain, as ``SQLiteStore`` is. Each method is one
transaction; work is claimed with ``FOR UPDATE SKIP LOCKED`` leases, and a poll's
articles are stored under advisory locks on their dedup and band keys
(``crawler.store.postgres.ingest``). The schema is migrated by one process at a time,
under an advisory lock, with SQLite's version numbers (``crawler.store.postgres.schema``).
Changes that make work due early wake the other daemons with LISTEN/NOTIFY
(``crawler.store.postgres.wakeups``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import psycopg
import psycopg_pool

from crawler.core.errors import StoreError
from crawler.core.redact import dsn_shown
from crawler.store.migrate import Step, migrate
from crawler.store.postgres.articles import Articles
from crawler.store.postgres.base import WAIT_S, Conn, configure, session_options, translate
from crawler.store.postgres.daemons import Daemons
from crawler.store.postgres.desk import Desk
from crawler.store.postgres.hosts import Hosts
from crawler.store.postgres.maintenance import Maintenance
from crawler.store.postgres.outbox import Outbox
from crawler.store.postgres.reads import DeskReads
from crawler.store.postgres.schema import MIGRATION_LOCK, STEPS, Target
from crawler.store.postgres.sources import Sources
from crawler.store.postgres.tuning import Tuning

__all__ = ["STEPS", "PostgresStore"]

#: Connections in the pool: the daemon's store calls use up to three at once
#: (``concurrent_calls``); the last absorbs a reconnect.
POOL_SIZE = 4

log = logging.getLogger(__name__)


def password(dsn: str) -> str | None:
    """The password in a ``postgresql://`` URL's user-info, if any."""
    try:
        found = urlsplit(dsn).password
    except ValueError:
        return None
    return unquote(found) if found else None


class PostgresStore(Sources, Articles, Outbox, Tuning, Desk, DeskReads, Hosts, Daemons,
                    Maintenance):
    """One PostgreSQL database, connected and migrated. Methods are transactions; callers
    never see SQL. Synchronous: the daemon reaches it through ``crawler.store.threaded``."""

    #: each call is a transaction on a connection of the pool: all but one of them busy
    #: at once (the last absorbs a reconnect)
    concurrent_calls = POOL_SIZE - 1

    def __init__(self, dsn: str, steps: Sequence[Step[Conn]] = STEPS) -> None:
        """Connect, bring the schema up to the last of ``steps`` (under the migration
        lock), then open the pool."""
        self._dsn = dsn
        self._location = dsn_shown(dsn)
        self._password = password(dsn)
        self._secrets = {self._password: "***"} if self._password else {}
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=int(WAIT_S),
                                 application_name="newswatch",
                                 **session_options(dsn)) as conn:
                configure(conn)
                conn.execute("SELECT pg_advisory_lock(%s, %s)", MIGRATION_LOCK)
                try:
                    was = migrate(Target(conn, self._location), steps,
                                  lambda: datetime.now(UTC))
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", MIGRATION_LOCK)
        except psycopg.Error as exc:
            raise translate(exc, self._location, self._secrets) from exc
        if was < len(steps):
            log.info("database %s migrated from schema %d to %d", self._location, was,
                     len(steps))
        self._pool = psycopg_pool.ConnectionPool(
            dsn, min_size=1, max_size=POOL_SIZE, timeout=WAIT_S, open=False,
            kwargs={"autocommit": True, "application_name": "newswatch",
                    **session_options(dsn)},
            check=psycopg_pool.ConnectionPool.check_connection, configure=configure,
            name="newswatch")
        try:
            self._pool.open(wait=True, timeout=WAIT_S)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise StoreError(f"cannot reach database {self._location}") from exc
