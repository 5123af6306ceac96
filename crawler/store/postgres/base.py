"""The connection pool every part of ``PostgresStore`` shares, and its error mapping.

Every public method is wrapped (``wrap_exceptions``): a driver error leaves it as a
``StoreError`` subclass chosen by its SQLSTATE (never by message text), with the
driver's exception as its cause, and with the DSN's password never in the message.
Each method is one transaction on a connection from the pool (``_tx``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg
import psycopg_pool
from psycopg.abc import Buffer
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types.string import StrBinaryDumper, StrDumperUnknown

from crawler.core.errors import (
    DatabaseBusyError,
    DatabaseDamagedError,
    DiskFullError,
    StoreError,
)
from crawler.core.redact import scrub

#: How long a call waits for a connection, and a statement for a lock.
WAIT_S = 30.0

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="Connected")

Conn = psycopg.Connection[tuple[Any, ...]]
Params = Sequence[Any] | Mapping[str, Any] | None

_BUSY = {"40001", "40P01", "55P03", "57014"}  # serialisation, deadlock, lock, timeout
_DAMAGED = {"XX001", "XX002"}  # data_corrupted, index_corrupted


#: What PostgreSQL text cannot hold: NUL, and lone surrogates (no UTF-8 for them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with each character PostgreSQL cannot store as U+FFFD: remote text (a
    JSON feed's ``\\u0000``, a server's error message) must not fail a write for ever."""
    return _UNSTORABLE.sub("\ufffd", text)


def _dump_storable(dump: Callable[[str], Buffer | None], obj: str) -> Buffer | None:
    """``dump`` of ``obj``, made storable first (only when it needs it)."""
    try:
        return dump(storable(obj) if "\x00" in obj else obj)
    except UnicodeEncodeError:
        return dump(storable(obj))


class _Text(StrDumperUnknown):
    def dump(self, obj: str) -> Buffer | None:
        return _dump_storable(super().dump, obj)


class _BinaryText(StrBinaryDumper):
    def dump(self, obj: str) -> Buffer | None:
        return _dump_storable(super().dump, obj)


def session_options(dsn: str) -> dict[str, Any]:
    """``synchronous_commit = off`` for newswatch's sessions, unless the DSN's
    ``options`` (or ``PGOPTIONS``) set it: SQLite's own trade (WAL,
    ``synchronous=NORMAL``). A crash of the server may lose the last fraction of a second
    of commits, never corrupting anything, and what is lost is done again (an article at
    its feed's next poll, an alert under the same id); each commit no longer waits for
    the disk, nor do the advisory locks an ingest holds through it (docs/deployment.md,
    "Capacity")."""
    # given here, options replace libpq's default from PGOPTIONS: keep what that says
    options = str(conninfo_to_dict(dsn).get("options") or os.environ.get("PGOPTIONS", ""))
    if "synchronous_commit" in options:
        return {}
    return {"options": f"{options} -c synchronous_commit=off".strip()}


def configure(conn: Conn) -> None:
    """Every connection's text goes through ``storable``."""
    conn.adapters.register_dumper(str, _Text)
    conn.adapters.register_dumper(str, _BinaryText)


def translate(exc: BaseException, location: str, secrets: dict[str, str]) -> StoreError:
    """The ``StoreError`` for a driver (or pool) error, by its SQLSTATE."""
    text = scrub(str(exc), secrets)
    state = getattr(exc, "sqlstate", None)
    if state == "53100":
        return DiskFullError(f"database {location} is full ({text}): free disk space on "
                             "the server, then restart; nothing was lost")
    if state in _DAMAGED:
        return DatabaseDamagedError(f"database {location} is damaged ({text}): restore it "
                                    "from a backup (pg_dump)")
    if state in _BUSY:
        return DatabaseBusyError(f"database {location} is busy: {text}")
    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg.OperationalError) and not state:
        return StoreError(f"cannot reach database {location}: {text}")
    return StoreError(f"database {location}: {text}")


class Connected:
    """A pool of connections to one PostgreSQL database; the parts of ``PostgresStore``
    build on it."""

    _location: str
    _secrets: dict[str, str]
    _pool: psycopg_pool.ConnectionPool[Conn]

    @property
    def location(self) -> str:
        return self._location

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _tx(self) -> Iterator[Conn]:
        """One transaction (READ COMMITTED), committed when the block ends."""
        with self._pool.connection(timeout=WAIT_S) as conn, conn.transaction():
            yield conn

    def _rows(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        """The rows of one read, as mappings of column names."""
        with self._tx() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return cur.fetchall()


def rows(conn: Conn, sql: str, params: Params = None) -> list[dict[str, Any]]:
    """The rows of one statement inside a transaction, as mappings of column names."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def wrap_exceptions(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Turn a driver error raised by ``method`` into a ``StoreError`` carrying it."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise translate(exc, self._location, self._secrets) from exc

    return wrapper
