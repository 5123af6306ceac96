"""Schema step 15 (the ``daemons`` table) upgrades a database of the schema before it
in place, on both backends: the rows stored before are kept and daemons can say they
run."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.config import Source
from crawler.store import PostgresStore, SQLiteStore, Store
from crawler.store.postgres.schema import STEPS as POSTGRES_STEPS
from crawler.store.records import DaemonFacts
from crawler.store.sqlite import STEPS as SQLITE_STEPS
from tests.postgres import fresh_database

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

Opener = Callable[[int | None], Store]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the one database with the steps up to ``upto`` (all by default)."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            def open_sqlite(upto: int | None) -> Store:
                return SQLiteStore(tmp_path / "nw.db", SQLITE_STEPS[:upto])
            yield open_sqlite
            return
        dsn = stack.enter_context(fresh_database())

        def open_postgres(upto: int | None) -> Store:
            return PostgresStore(dsn, POSTGRES_STEPS[:upto])
        yield open_postgres


def test_step_15_adds_the_daemons_table_and_keeps_the_rows(opener: Opener) -> None:
    before = opener(14)
    before.sync_sources([Source("Kabul", "https://kabul.example/feed", 600, 20, "ua", 1000)],
                        NOW)
    assert before.schema_version() == 14
    before.close()

    after = opener(None)
    try:
        assert after.schema_version() >= 15
        assert [r["name"] for r in after.sources()] == ["Kabul"]
        after.daemon_seen("h/1:42:ab", NOW, DaemonFacts("h", 42, NOW, "3f2a4b5c6d7e",
                                                        "0.1.0", 0))
        assert [(r["owner"], r["config_version"], r["live"]) for r in
                after.daemons(NOW, timedelta(minutes=1))] == [
            ("h/1:42:ab", "3f2a4b5c6d7e", True)]
    finally:
        after.close()
