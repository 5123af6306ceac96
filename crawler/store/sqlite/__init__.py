"""The SQLite backend: one database file through sqlite-utils, WAL, a busy timeout.

Several processes may share the file: writes are ``BEGIN IMMEDIATE`` transactions, and
work is claimed with leases inside them. The class is put together from one part per
domain (sources, articles, outbox, mutes and rules, desk users, the desk's reads,
maintenance, the daemons' rows) over a shared connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from crawler.core.errors import StoreError
from crawler.core.redact import DATABASE_URL, dsn_shown
from crawler.store.migrate import Step, migrate
from crawler.store.sqlite.articles import Articles
from crawler.store.sqlite.base import BUSY_TIMEOUT_S, opened, translate
from crawler.store.sqlite.daemons import Daemons
from crawler.store.sqlite.desk import Desk
from crawler.store.sqlite.hosts import Hosts
from crawler.store.sqlite.maintenance import Maintenance
from crawler.store.sqlite.outbox import Outbox
from crawler.store.sqlite.reads import DeskReads
from crawler.store.sqlite.schema import STEPS, Target
from crawler.store.sqlite.sources import Sources
from crawler.store.sqlite.tuning import Tuning

__all__ = ["BUSY_TIMEOUT_S", "STEPS", "SQLiteStore"]


class SQLiteStore(Sources, Articles, Outbox, Tuning, Desk, DeskReads, Hosts, Daemons,
                  Maintenance):
    """One SQLite database file, opened and migrated. Methods are transactions; callers
    never see SQL. Synchronous: the daemon reaches it through ``crawler.store.threaded``."""

    #: one connection, used by one thread at a time
    concurrent_calls = 1

    def __init__(self, path: Path | str,
                 steps: Sequence[Step[sqlite_utils.Database]] = STEPS) -> None:
        """Open (creating) the file and bring its schema up to the last of ``steps``. A
        database URL is refused: it would otherwise become a file of that name."""
        if DATABASE_URL.match(str(path)):
            raise StoreError(f"{dsn_shown(str(path))} is a database URL, not a SQLite "
                             "file")
        self.path = Path(path)
        self._conn = opened(path)
        self._db = sqlite_utils.Database(self._conn)
        try:
            migrate(Target(self, self._keep_copy), steps, lambda: datetime.now(UTC))
        except sqlite3.Error as exc:
            self._conn.close()
            raise translate(exc, path) from exc
        except BaseException:
            self._conn.close()
            raise

    def _keep_copy(self, version: int) -> None:
        """Before changing the schema, keep a copy of the data as it was."""
        if str(self.path) != ":memory:":
            self.backup(self.path.with_name(f"{self.path.name}.v{version}.bak"))
