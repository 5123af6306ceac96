"""A PostgreSQL server for the tests, and a fresh database on it per test.

The server is ``NEWSWATCH_TEST_POSTGRES`` (a DSN) when set, else the machine's own on
127.0.0.1:5432 (user postgres, trust auth). With none reachable, the tests that need it
skip and say why (``make test`` leaves them out anyway: they are marked ``postgres``).
Each database is created with a random name through the server's ``postgres`` database
and dropped after, whatever the test left connected to it.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from crawler.core.redact import dsn_shown

DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


def server() -> str:
    return os.environ.get("NEWSWATCH_TEST_POSTGRES") or DEFAULT


@functools.cache
def unreachable() -> str | None:
    """Why no test database can be made, or None."""
    try:
        with psycopg.connect(server(), connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        why = " ".join(str(exc).split())[:200]
        return (f"no PostgreSQL server at {dsn_shown(server())} ({why}); "
                "set NEWSWATCH_TEST_POSTGRES to a DSN")
    return None


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name``."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


@contextmanager
def fresh_database() -> Iterator[str]:
    """The DSN of a new empty database, dropped after."""
    reason = unreachable()
    if reason:
        pytest.skip(reason)
    name = f"newswatch_test_{secrets.token_hex(6)}"
    admin = with_database(server(), "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server(), name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
