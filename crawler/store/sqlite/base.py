"""The SQLite connection every part of ``SQLiteStore`` shares, and its error mapping.

Every public method is wrapped (``wrap_exceptions``): a driver error leaves it as a
``StoreError`` subclass chosen by SQLite's error code (never by message text), with the
driver's exception as its cause. Writes take the lock up front (``BEGIN IMMEDIATE``)
so concurrent processes queue instead of failing half-way.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import sqlite_utils

from crawler.core.errors import (
    DatabaseBusyError,
    DatabaseDamagedError,
    DiskFullError,
    StoreError,
)

BUSY_TIMEOUT_S = 30.0
#: The database holds delivery errors, alert payloads and what was watched: owner only.
PRIVATE = 0o600

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="Connected")


def private(path: Path) -> None:
    """Make ``path`` owner-only (0600 at most), creating it empty if missing: SQLite would create
    it 0644 (less the umask), and gives its WAL and SHM files the database's mode. A file
    that cannot be changed (another user's) is left as it is, with a warning."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
        return
    except FileExistsError:
        pass
    mode = os.stat(path).st_mode & 0o777
    if mode & ~PRIVATE:  # group or others may read (0400 stays 0400)
        try:
            os.chmod(path, mode & PRIVATE)
        except OSError as exc:  # not ours, or a read-only file system: reading goes on
            log.warning("cannot make %s owner-only (0600): %s", path, exc)


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, busy timeout, a
    16 MiB page cache; the file, its WAL and SHM files and the copies kept before
    migrating are 0600."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        private(Path(path))
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # 16 MiB of page cache (SQLite's default is 2): each stored article adds 32 band keys
    # at random places in story_bands, and with the default the pages they land on are
    # read back from the OS at every poll once the table outgrows it
    conn.execute("PRAGMA cache_size = -16384")
    if str(path) != ":memory:":  # files an older newswatch left 0644
        file = Path(path)
        for other in [Path(f"{file}-wal"), Path(f"{file}-shm"),
                      *file.parent.glob(f"{glob.escape(file.name)}.v*.bak")]:
            if other.exists():
                private(other)
    return conn


def opened(path: Path | str) -> sqlite3.Connection:
    """``connect``, its failures as ``StoreError``s."""
    try:
        return connect(path)
    except OSError as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc


def translate(exc: sqlite3.Error, path: Path | str) -> StoreError:
    """The ``StoreError`` for a driver error, by its SQLite result code."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == sqlite3.SQLITE_FULL:
        return DiskFullError(f"database {path} is full ({exc}): free disk space, then "
                             "restart; nothing was lost")
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return DatabaseDamagedError(
            f"database {path} is damaged ({exc}): restore it from a backup "
            "(newswatch backup), or move it aside to start afresh")
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return DatabaseBusyError(f"database {path} is busy: another process held its "
                                 f"lock for more than {BUSY_TIMEOUT_S:g}s ({exc})")
    return StoreError(f"database {path}: {exc}")


class Connected:
    """One connection to one SQLite file; the parts of ``SQLiteStore`` build on it."""

    path: Path
    _conn: sqlite3.Connection
    _db: sqlite_utils.Database

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction that takes the lock up front (no upgrade deadlocks)."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        try:
            yield self._db
            self._conn.execute("COMMIT")
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise translate(exc, self.path) from exc
            raise


def wrap_exceptions(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Turn a driver error raised by ``method`` into a ``StoreError`` carrying it."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    return wrapper


def last_id(table: sqlite_utils.db.Table) -> int:
    """The rowid of the row ``table`` just inserted."""
    if table.last_rowid is None:
        raise StoreError(f"no row was inserted into {table.name}")
    return int(table.last_rowid)
