"""The PostgreSQL backend's own promises (its behaviour is tests/contract/'s): SQLite's
schema numbers, one migrating process under an advisory lock, the upgrade from its first
schema (11), a refusal of a newer schema, concurrent ingest making one story, and the
password never shown."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from crawler.core.clock import iso
from crawler.core.errors import SchemaTooNewError, StoreError
from crawler.store import PollRecord, PostgresStore, Store
from crawler.store.desk import StoryFilter
from crawler.store.postgres import ingest
from crawler.store.postgres.schema import STEPS
from crawler.store.sqlite import STEPS as SQLITE_STEPS
from crawler.store.sqlite.schema import DESK_INDEXES
from tests.contract.conftest import NOW, article, match, new, plan_one, source, varied
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


def test_a_schema_11_database_upgrades_to_the_desk_with_its_rows(dsn: str) -> None:
    """Steps 12 and 13 on a database of the first PostgreSQL release: the desk's tables,
    each stored match given its story and each story its script, the desk's indexes; the
    stories list, a story's page and the users then work on the old rows."""
    PostgresStore(dsn, STEPS[:11]).close()
    with psycopg.connect(dsn) as conn:  # what schema 11's ingest left: no story_id/script
        conn.execute("INSERT INTO sources (name, url, next_check_at, created_at) VALUES "
                     "('Kabul', 'https://kabul.example/feed', %(at)s, %(at)s)",
                     {"at": iso(NOW)})
        for n, title in enumerate(["Massoud in Panjshir", "دیدار احمد مسعود در پنجشیر"], 1):
            conn.execute(
                "INSERT INTO stories (id, key, first_article_id, title, first_seen_at, "
                "last_seen_at, articles, outlets) VALUES (%(n)s, %(key)s, %(n)s, %(title)s, "
                "%(at)s, %(at)s, 1, 1)",
                {"n": n, "key": f"story:https://kabul.example/{n}", "title": title,
                 "at": iso(NOW)})
            conn.execute(
                "INSERT INTO articles (id, url, source, title, summary, fetched_at, "
                "story_id) VALUES (%(n)s, %(url)s, 'Kabul', %(title)s, %(title)s, %(at)s, "
                "%(n)s)", {"n": n, "url": f"https://kabul.example/{n}", "title": title,
                           "at": iso(NOW)})
        conn.execute("INSERT INTO matches (article_id, watchlist, watch, field, created_at) "
                     "VALUES (2, 'opposition', 'Ahmad Massoud', 'title', %s)",
                     [iso(NOW)])
    store = PostgresStore(dsn)
    assert store.schema_version() == len(SQLITE_STEPS)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT article_id, story_id FROM matches").fetchall() == [(2, 2)]
        assert conn.execute("SELECT id, script FROM stories ORDER BY id").fetchall() == [
            (1, "latin"), (2, "arabic")]
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes")}
    assert set(DESK_INDEXES) <= indexes
    [story] = store.story_list(StoryFilter(watch="Ahmad Massoud", script="arabic")).rows
    assert (story.id, story.direction, story.outlets) == (2, "rtl", ("Kabul",))
    detail = store.story_detail(2, NOW)
    assert detail is not None and [m.watch for m in detail.copies[0].mentions] == [
        "Ahmad Massoud"]
    assert store.add_user("editor", "hash", NOW) and store.password_hash("editor") == "hash"
    store.close()


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


def test_claims_skip_rows_another_transaction_holds_instead_of_waiting(dsn: str) -> None:
    """A claim in flight elsewhere holds its rows (FOR UPDATE): a claim now takes the
    others at once (SKIP LOCKED), for sources and for alerts alike."""
    store = PostgresStore(dsn)
    store.sync_sources([source(f"S{n}") for n in range(3)], NOW)
    store.add_articles([new(article("S0", n, varied(n)), [match()]) for n in range(2)],
                       NOW, "v1", plan_one())
    with psycopg.connect(dsn) as other:  # one transaction, held open
        other.execute("SET lock_timeout = '5s'")
        other.execute("SELECT 1 FROM sources WHERE name = 'S1' FOR UPDATE")
        other.execute("SELECT 1 FROM outbox WHERE id = (SELECT min(id) FROM outbox) "
                      "FOR UPDATE")
        claimed = store.claim_sources("me", NOW, timedelta(minutes=5))
        alerts = store.claim_alerts("me", NOW, timedelta(minutes=5), ["hook"])
        assert sorted(s.name for s in claimed) == ["S0", "S2"]
        assert len(alerts) == 1
        other.rollback()
    assert [s.name for s in store.claim_sources("me", NOW, timedelta(minutes=5))] == ["S1"]
    assert len(store.claim_alerts("me", NOW, timedelta(minutes=5), ["hook"])) == 1
    store.close()


def test_two_daemons_storing_one_article_at_once_store_it_once(dsn: str) -> None:
    stores: list[Store] = [PostgresStore(dsn) for _ in range(2)]
    stores[0].sync_sources([source("A")], NOW)
    start = threading.Barrier(2)
    stored: list[int] = []
    failed: list[BaseException] = []

    def ingest_it(store: Store) -> None:
        start.wait(timeout=30)
        try:
            stored.extend(s.id for s in store.add_articles(
                [new(article("A", n), [match()]) for n in range(20)], NOW, "v1",
                plan_one()))
        except BaseException as exc:  # the assertion below shows it
            failed.append(exc)

    threads = [threading.Thread(target=ingest_it, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failed == [] and len(stored) == 20, "each article stored by one daemon"
    assert len(stores[0].archive(NOW - timedelta(days=1))) == 20
    for store in stores:
        store.close()


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


def test_text_postgresql_cannot_hold_is_stored_with_a_replacement_character(
        dsn: str) -> None:
    """NUL and lone surrogates (which remote servers' messages may carry) become U+FFFD
    rather than failing the write (SQLite keeps a NUL as it is)."""
    store = PostgresStore(dsn)
    store.sync_sources([source("A")], NOW)
    assert len(store.claim_sources("me", NOW, timedelta(minutes=5))) == 1
    store.record_poll("A", "me", NOW, PollRecord(NOW, error="bad\x00 byte \ud800 here"))
    [row] = store.sources()
    assert row["last_error"] == "bad\ufffd byte \ufffd here"
    store.close()


def _session(dsn: str) -> tuple[str, str]:
    """``synchronous_commit`` and ``work_mem`` of a store's pooled session on ``dsn``."""
    store = PostgresStore(dsn)
    try:
        with store._pool.connection() as conn:
            found = conn.execute("SELECT current_setting('synchronous_commit'), "
                                 "current_setting('work_mem')").fetchone()
    finally:
        store.close()
    assert found is not None
    return str(found[0]), str(found[1])


def test_commits_do_not_wait_for_the_disk_unless_the_dsn_says_so(dsn: str) -> None:
    """SQLite's trade (WAL, synchronous=NORMAL) by default; a DSN that sets
    synchronous_commit in its options keeps its own, and its other options stay."""
    assert _session(dsn)[0] == "off"
    own = f"{dsn}?options=-c%20synchronous_commit%3Don%20-c%20work_mem%3D8MB"
    assert _session(own) == ("on", "8MB")
    kept = f"{dsn}?options=-c%20work_mem%3D8MB"
    assert _session(kept) == ("off", "8MB")


def test_pgoptions_are_kept_and_may_set_synchronous_commit(
        dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=8MB")
    assert _session(dsn) == ("off", "8MB")
    monkeypatch.setenv("PGOPTIONS", "-c synchronous_commit=on")
    assert _session(dsn)[0] == "on"
