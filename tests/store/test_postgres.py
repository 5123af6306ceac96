"""The PostgreSQL backend's own promises (its behaviour is tests/contract/'s): SQLite's
schema numbers, one migrating process under an advisory lock, a refusal of a newer
schema, concurrent ingest making one story, and the password never shown."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from crawler.core.errors import SchemaTooNewError, StoreError
from crawler.store import PostgresStore, Store
from crawler.store.postgres import ingest
from crawler.store.postgres.schema import STEPS
from crawler.store.sqlite import STEPS as SQLITE_STEPS
from tests.contract.conftest import NOW, article, match, new, plan_one, source
from tests.postgres import fresh_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def dsn() -> Iterator[str]:
    with fresh_database() as made:
        yield made


def test_the_schema_has_sqlites_version_numbers(dsn: str) -> None:
    assert [s.version for s in STEPS] == [s.version for s in SQLITE_STEPS]
    store = PostgresStore(dsn)
    assert store.schema_version() == len(SQLITE_STEPS)
    store.close()


def test_processes_opening_a_new_database_at_once_migrate_it_once(dsn: str) -> None:
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresStore(dsn))
        except BaseException as exc:  # the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(opened) == 4
    with psycopg.connect(dsn) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM migrations ORDER BY 1")]
    assert versions == list(range(1, len(STEPS) + 1))
    for store in opened:
        store.close()


def test_an_older_newswatch_refuses_a_newer_schema(dsn: str) -> None:
    PostgresStore(dsn).close()
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO migrations VALUES (%s, 'from the future', 'x')",
                     [len(STEPS) + 1])
    with pytest.raises(SchemaTooNewError, match="newer than this newswatch knows"):
        PostgresStore(dsn)


def test_two_daemons_storing_copies_of_one_story_at_once_make_one_story_and_one_alert(
        dsn: str) -> None:
    """Each thread is a daemon with its own store; the copies share band keys, so their
    transactions take the same advisory locks and the second joins the first's story."""
    stores: list[Store] = [PostgresStore(dsn) for _ in range(2)]
    stores[0].sync_sources([source("A"), source("B")], NOW)
    start = threading.Barrier(2)
    stored: list[int] = []

    def ingest_copy(store: Store, name: str, n: int) -> None:
        start.wait(timeout=30)
        [one] = store.add_articles([new(article(name, n), [match()])], NOW, "v1", plan_one())
        stored.append(one.story_id)

    for n in range(5):  # five races, each between a fresh pair of copies
        threads = [threading.Thread(target=ingest_copy, args=(s, name, n))
                   for s, name in zip(stores, ("A", "B"), strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        with psycopg.connect(dsn) as conn:
            # out of the story window: the next pair starts a story of its own
            conn.execute("UPDATE articles SET fetched_at = '2000-01-01T00:00:00.000000Z'")
    assert len(stored) == 10
    assert [stored[i] == stored[i + 1] for i in range(0, 10, 2)] == [True] * 5
    assert stores[0].alert_counts() == {"pending": 5}, "one alert per story"
    for store in stores:
        store.close()


def test_lock_buckets_are_few_and_sorted() -> None:
    batch = [new(article("A", n)) for n in range(300)]
    found = ingest.buckets(batch)
    assert found == sorted(set(found)) and len(found) <= ingest.BUCKETS


def test_source_claims_skip_rows_another_daemon_is_claiming(dsn: str) -> None:
    """A claim in flight holds its rows (FOR UPDATE): another claim takes the others
    instead of waiting, then neither holds what the other has."""
    one, two = PostgresStore(dsn), PostgresStore(dsn)
    one.sync_sources([source(f"S{n}") for n in range(6)], NOW)
    first = one.claim_sources("one", NOW, timedelta(minutes=5), limit=3)
    second = two.claim_sources("two", NOW, timedelta(minutes=5))
    assert {s.name for s in first} | {s.name for s in second} == {f"S{n}" for n in range(6)}
    assert not {s.name for s in first} & {s.name for s in second}
    one.close()
    two.close()


def test_backup_is_a_pg_dump(dsn: str, tmp_path: Path) -> None:
    store = PostgresStore(dsn)
    store.sync_sources([source("A")], NOW)
    try:
        store.backup(tmp_path / "nw.dump")
    except StoreError as exc:
        if "pg_dump is not installed" in str(exc):
            pytest.skip(str(exc))
        raise
    finally:
        store.close()
    dump = (tmp_path / "nw.dump").read_bytes()
    assert dump.startswith(b"PGDMP") and (tmp_path / "nw.dump").stat().st_mode & 0o077 == 0


def test_a_wrong_password_is_never_in_the_error() -> None:
    with fresh_database() as made:
        wrong = made.replace("://", "://nobody_here:sw0rdfish-secret@", 1) \
            if "@" not in made else made.replace("@", ":sw0rdfish-secret@", 1)
        wrong = wrong.replace("postgres:sw0rdfish", "nobody_here:sw0rdfish")
        with pytest.raises(StoreError) as caught:
            PostgresStore(wrong)
    assert "sw0rdfish-secret" not in str(caught.value)
    assert "***" in str(caught.value)


def test_a_poll_takes_the_same_statements_for_ten_articles_or_two_hundred(
        dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As on SQLite (tests/store/test_batch.py): one statement per lookup and per table
    (an ``executemany`` is one, pipelined), so a bigger poll costs rows, not round trips
    per row."""
    from tests.store.test_batch import elsewhere, poll

    store = PostgresStore(dsn)
    store.sync_sources([source(f"S{n}") for n in range(5)], NOW)
    earlier = poll(50, 1)
    store.add_articles(earlier, NOW, "v1", plan_one())
    calls: list[list[str]] = []
    for size, seed in ((10, 2), (200, 3)):
        batch = poll(size, seed)
        batch[1] = new(elsewhere(earlier[0].article, f"copy-{seed}"), [match()])
        seen: list[str] = []
        for name in ("execute", "executemany"):
            original = getattr(psycopg.Cursor, name)

            def counting(self: psycopg.Cursor[object], query: object, *args: object,
                         __original: object = original, __seen: list[str] = seen,
                         **kwargs: object) -> object:
                __seen.append(str(query))
                return __original(self, query, *args, **kwargs)  # type: ignore[operator]

            monkeypatch.setattr(psycopg.Cursor, name, counting)
        stored = store.add_articles(batch, NOW, "v1", plan_one())
        monkeypatch.undo()
        assert len(stored) == size and stored[1].story_id == 1, "joined a stored story"
        calls.append(seen)
    assert 10 <= len(calls[0]) == len(calls[1]) <= 25, calls
    store.close()
