"""PostgreSQL's listener (``Store.listen``) survives losing its connection: it connects
again, wakes the daemon for everything (what was sent meanwhile is lost), and hears the
wake-ups sent after."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from crawler.config import Source
from crawler.store import PostgresStore
from tests.helpers import wait_until
from tests.postgres import fresh_database

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def dsn() -> Iterator[str]:
    with fresh_database() as made:
        yield made


def test_a_listener_whose_connection_is_cut_listens_again_and_catches_up(dsn: str) -> None:
    heard: list[str] = []
    lock = threading.Lock()

    def hear(kind: str) -> None:
        with lock:
            heard.append(kind)

    def now() -> list[str]:
        with lock:
            return list(heard)

    store = PostgresStore(dsn)
    store.sync_sources([Source("A", "https://a.example/feed", 600, 20, "ua", 1000)], NOW)
    closer = store.listen(hear)
    try:
        assert store.poll_now("A", NOW)
        assert wait_until(lambda: now() == ["sources"], timeout=30), now()
        with psycopg.connect(dsn, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                "application_name = 'newswatch listener' AND datname = current_database()"
            ).fetchall()
        assert cut == [(True,)]
        assert wait_until(lambda: sorted(now()[1:]) == ["alerts", "sources"], timeout=30), \
            "no catch-up wake-ups after listening again"
        assert store.poll_now("A", NOW)
        assert wait_until(lambda: len(now()) == 4, timeout=30), now()
        assert now()[3] == "sources"
    finally:
        closer.close()
        store.close()
