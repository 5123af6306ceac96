"""Looking inside a SQLite database file, for the tests that must inspect the schema.

Every other test goes through the storage contract (``crawler.store.Store``). These
helpers are for what the contract deliberately does not show: tables and pragmas,
similarity signatures and band keys, full-text rows, dedup keys, raw column values, a
row set back in time. Each call opens its own connection to the file and closes it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from crawler.store import SQLiteStore, Store

Target = Store | Path | str


def _path(target: Target) -> str:
    return target.location if not isinstance(target, Path | str) else str(target)


@contextlib.contextmanager
def connection(target: Target) -> Iterator[sqlite3.Connection]:
    """A separate connection to the store's file (autocommit, rows by column name)."""
    conn = sqlite3.connect(_path(target), isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def rows(target: Target, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Every row of a query, as dicts."""
    with connection(target) as conn:
        return [dict(r) for r in conn.execute(sql, params)]


def value(target: Target, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row of a query."""
    with connection(target) as conn:
        return conn.execute(sql, params).fetchone()[0]


def execute(target: Target, sql: str, params: Sequence[Any] = ()) -> None:
    """Change the file behind the store's back (to stage a situation)."""
    with connection(target) as conn:
        conn.execute(sql, params)


def limit_size(store: SQLiteStore, extra_pages: int) -> None:
    """Let the store's own connection grow the file by ``extra_pages`` pages at most: a
    nearly full disk. (SQLite's size limit is per connection, so this one reaches into
    the backend's connection.)"""
    conn = store._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + extra_pages}")
