"""One numbered migration runner: today's databases upgrade in place and keep their rows.

``tests/fixtures/store/v6.db`` was made with the release before the storage contract
(commit 4bca8a4, schema version 6): two sources (one failing, one with an ETag), three
articles (two copies of one story, both matching), their keys, matches, signatures,
band keys and full-text rows, one delivered alert and its attempt, one incident.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from crawler.core.article import Article
from crawler.core.errors import SchemaTooNewError
from crawler.core.redact import shown_url
from crawler.process import dedup, search, stories
from crawler.process.search import comparable, parse_query
from crawler.store import Mute, NewArticle, SQLiteStore
from crawler.store.desk import StoryFilter
from crawler.store.migrate import Step, migrate
from crawler.store.sqlite import STEPS
from crawler.store.sqlite.schema import DESK_INDEXES
from tests import schema

FIXTURE = Path(__file__).parent.parent / "fixtures" / "store" / "v6.db"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
TABLES = {"migrations": 6, "sources": 2, "articles": 3, "article_keys": 6, "matches": 2,
          "outbox": 1, "delivery_attempts": 1, "incidents": 1, "stories": 2,
          "article_signatures": 3, "story_bands": 96, "articles_fts": 3}


@pytest.fixture
def v6(tmp_path: Path) -> Path:
    copy = tmp_path / "newswatch.db"
    shutil.copyfile(FIXTURE, copy)
    return copy


def counts(path: Path) -> dict[str, int]:
    return {t: schema.value(path, f"SELECT count(*) FROM {t}") for t in TABLES}


def test_a_database_of_todays_schema_opens_in_place_with_its_rows(v6: Path) -> None:
    assert counts(v6) == TABLES
    store = SQLiteStore(v6)
    assert store.schema_version() == len(STEPS)
    assert counts(v6) == {**TABLES, "migrations": len(STEPS)}
    sources = {s["name"]: s for s in store.sources()}
    assert sources["Kabul Daily"]["etag"] == '"e1"'
    assert sources["North Wire"]["last_error"] == "HTTP 503"
    assert sources["North Wire"]["notice"] == "failing"
    assert [a["state"] for a in store.alerts()] == ["delivered"]
    assert len(store.matched_articles()) == 2
    assert [s["articles"] for s in store.recent_stories(EPOCH)] == [1, 2]
    assert len(store.search(parse_query("Massoud Panjshir"))) == 2
    assert len(store.incidents()) == 1
    store.close()


def test_a_new_step_upgrades_todays_database_keeping_its_rows_and_a_copy(v6: Path) -> None:
    def add_key(db: sqlite_utils.Database) -> None:  # as a source `key` might come
        db.table("sources").add_column("key", str)
        db.execute("UPDATE sources SET key = name")

    steps = [*STEPS, Step(len(STEPS) + 1, "sources.key", add_key)]
    store = SQLiteStore(v6, steps)
    assert store.schema_version() == len(steps)
    assert counts(v6) == {**TABLES, "migrations": len(steps)}
    assert {s["key"] for s in store.sources()} == {"Kabul Daily", "North Wire"}
    store.close()
    copy = v6.with_name("newswatch.db.v6.bak")
    assert counts(copy) == TABLES, "the copy is the database as it was"
    with pytest.raises(SchemaTooNewError, match="upgrade newswatch"):
        SQLiteStore(v6)  # this database is now newer than STEPS


def test_step_7_scrubs_the_channel_tokens_kept_in_delivery_errors(v6: Path) -> None:
    hook = "https://hooks.slack.com/services/T0PATHSECRET?token=QUERYSECRET"
    with sqlite3.connect(v6) as db:  # as today's release stored a failing delivery
        db.execute("UPDATE outbox SET last_error = ?", [f"HTTP 500 from {hook}: nope"])
        db.execute("UPDATE delivery_attempts SET error = ?", [f"cannot reach {hook}: x"])
        db.execute("UPDATE incidents SET message = ?",
                   [f"channel hook: alerts are dead; last error: HTTP 500 from {hook}"])
    db.close()
    SQLiteStore(v6).close()
    texts = [schema.value(v6, f"SELECT group_concat({c}) FROM {t}")
             for t, c in [("outbox", "last_error"), ("delivery_attempts", "error"),
                          ("incidents", "message")]]
    assert texts == [f"HTTP 500 from {shown_url(hook)}: nope",
                     f"cannot reach {shown_url(hook)}: x",
                     f"channel hook: alerts are dead; last error: HTTP 500 from "
                     f"{shown_url(hook)}"]
    assert counts(v6) == {**TABLES, "migrations": len(STEPS)}


def test_step_8_lets_the_stored_stories_be_muted_and_keeps_their_alerts(v6: Path) -> None:
    store = SQLiteStore(v6)
    [delivered] = store.alerts()
    [first, *_] = store.matched_articles()
    found = store.find_article(first["url"])
    assert found is not None and found.story is not None
    assert store.add_mute(Mute("story", found.story, "ana", EPOCH))[1] == 0
    assert [a["status"] for a in store.alerts()] == [delivered["status"]]
    assert [m["kind"] for m in store.mutes(EPOCH)] == ["story"]
    assert store.rules_version() == (0, 0)
def test_step_9_records_what_each_alert_of_today_named(v6: Path) -> None:
    """Alerts queued per watchlist name their watchlist's items matched in their article,
    so a story alerted before the upgrade is alerted for those on that channel."""
    SQLiteStore(v6).close()
    assert schema.rows(v6, "SELECT * FROM outbox_items") == [
        {"outbox_id": 1, "watchlist": "afghan-opposition", "watch": "Ahmad Massoud"}]
    assert schema.value(v6, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                            "AND tbl_name = 'outbox' AND sql LIKE '%article_id%'") == 1


def test_step_11_rebuilds_the_index_without_a_copy_that_pruning_then_empties(
        v6: Path) -> None:
    """The index is rebuilt contentless from the stored articles: found as before, and
    each row deletable later with the values recomputed from the article."""
    store = SQLiteStore(v6)
    tables = {r["name"] for r in schema.rows(v6, "SELECT name FROM sqlite_master")}
    assert "articles_fts" in tables and "articles_fts_content" not in tables
    assert len(store.search(parse_query("Massoud Panjshir"))) == 2
    assert store.prune_articles(datetime(2100, 1, 1, tzinfo=UTC), timedelta(0)) == 3
    assert store.search(parse_query("Massoud OR Panjshir OR Noor")) == []
    assert schema.value(v6, "SELECT count(*) FROM articles_fts") == 0
    store.close()


def test_step_13_gives_each_match_its_story_and_each_story_its_script(v6: Path) -> None:
    """The stories list reads stored matches by story and filters stored stories by
    script: both are filled in for the rows of before the upgrade."""
    with sqlite3.connect(v6) as conn:  # a Dari headline, as a Dari outlet's would be
        conn.execute("UPDATE articles SET title = 'دیدار احمد مسعود در پنجشیر' WHERE id = 3")
    store = SQLiteStore(v6)
    assert schema.rows(v6, "SELECT article_id, story_id FROM matches ORDER BY id") == [
        {"article_id": 1, "story_id": 1}, {"article_id": 2, "story_id": 1}]
    assert schema.rows(v6, "SELECT id, script FROM stories ORDER BY id") == [
        {"id": 1, "script": "latin"}, {"id": 2, "script": "arabic"}]
    [story] = store.story_list().rows
    assert (story.id, story.copies, story.outlets) == (1, 2, ("Kabul Daily", "North Wire"))
    assert [c.watch for c in story.chips] == ["Ahmad Massoud"]
    assert [r.id for r in store.story_list(StoryFilter(watch="Ahmad Massoud",
                                                       script="latin")).rows] == [1]
    indexes = {r["name"] for r in schema.rows(v6, "SELECT name FROM sqlite_master "
                                                  "WHERE type = 'index'")}
    assert set(DESK_INDEXES) <= indexes
    store.close()


class Memory:
    """A backend of nothing but a migrations table, to watch the runner alone."""

    location = "memory"

    def __init__(self, applied: int = 0) -> None:
        self.versions = list(range(1, applied + 1))
        self.log: list[str] = []

    def applied(self) -> int:
        return max(self.versions, default=0)

    @contextmanager
    def transaction(self) -> Iterator[list[str]]:
        self.log.append("begin")
        yield self.log
        self.log.append("commit")

    def record(self, handle: list[str], step: Step[list[str]], at: datetime) -> None:
        self.versions.append(step.version)

    def keep_copy(self, version: int) -> None:
        self.log.append(f"copy v{version}")


def step(n: int) -> Step[list[str]]:
    return Step(n, f"v{n}", lambda log: log.append(f"v{n}"))


def test_the_runner_applies_missing_steps_in_order_each_in_its_own_transaction() -> None:
    fresh = Memory()
    assert migrate(fresh, [step(1), step(2)], lambda: EPOCH) == 0
    assert fresh.log == ["begin", "v1", "commit", "begin", "v2", "commit"], "no copy of nothing"
    behind = Memory(applied=1)
    migrate(behind, [step(1), step(2), step(3)], lambda: EPOCH)
    assert behind.log == ["copy v1", "begin", "v2", "commit", "begin", "v3", "commit"]
    current = Memory(applied=2)
    migrate(current, [step(1), step(2)], lambda: EPOCH)
    assert current.log == []


def test_the_runner_refuses_a_newer_schema_and_a_gap_in_the_numbers() -> None:
    with pytest.raises(SchemaTooNewError, match="version 3, newer than this newswatch"):
        migrate(Memory(applied=3), [step(1), step(2)], lambda: EPOCH)
    with pytest.raises(ValueError, match="numbered"):
        migrate(Memory(), [step(1), step(3)], lambda: EPOCH)


def old_fingerprint(title: str, text: str) -> tuple[bytes, list[int]]:
    """The signature and band keys as schema versions 6 to 9 stored them (one SHAKE-128
    digest per shingle, one BLAKE2b per band), kept to build an old-format story."""
    words = re.findall(r"\w+", f"{comparable(title)}\n{comparable(text)}")
    parts = {" ".join(words[i:i + 3]) for i in range(len(words) - 2)}
    values = struct.Struct("<64I")
    rows = [values.unpack(hashlib.shake_128(p.encode()).digest(values.size)) for p in parts]
    sig = values.pack(*map(min, zip(*rows, strict=True)))
    mins = values.unpack(sig)
    bands = [struct.pack("<B2I", band, *mins[2 * band:2 * band + 2]) for band in range(32)]
    return sig, [int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "little",
                                signed=True) for b in bands]


def test_step_10_recomputes_old_signatures_so_an_old_story_still_gathers_copies(
        v6: Path) -> None:
    SQLiteStore(v6, STEPS[:7]).close()  # the last release's schema, old-format signatures
    title = schema.value(v6, "SELECT title FROM articles WHERE id = 1")
    text = schema.value(v6, "SELECT text FROM articles WHERE id = 1")
    assert schema.value(v6, "SELECT signature FROM article_signatures WHERE article_id = 1") \
        == old_fingerprint(title, text)[0], "the fixture holds old-format signatures"
    # An article fetched 20 days before the newest, outside the 14 days recomputed.
    old_sig, old_bands = old_fingerprint("Old news", text)
    with sqlite3.connect(v6) as db:
        db.execute("INSERT INTO articles (id, url, source, title, summary, text, fetched_at, "
                   "story_id) VALUES (4, 'https://north.example/old', 'North Wire', "
                   "'Old news', ?, ?, '2026-11-08T10:00:00.000000Z', 2)", [text, text])
        db.execute("INSERT INTO article_signatures VALUES (4, ?, 26)", [old_sig])
        db.executemany("INSERT INTO story_bands VALUES (?, 4)", [(k,) for k in old_bands])
    db.close()

    store = SQLiteStore(v6)
    assert schema.value(v6, "SELECT group_concat(article_id) FROM article_signatures") \
        == "1,2,3"
    assert schema.value(v6, "SELECT count(*) FROM story_bands") == 3 * stories.BANDS
    copy = Article(source="North Wire", url="https://north.example/news/9",
                   link="https://north.example/news/9", title="Story 9", summary=text,
                   text=text)
    document = search.document(copy)
    [stored] = store.add_articles([NewArticle(copy, dedup.keys(copy), [],
                                              stories.fingerprint(document), document)],
                                  datetime(2026, 11, 28, 12, tzinfo=UTC), "v1",
                                  lambda *_: [])
    assert stored.story_id == schema.value(v6, "SELECT story_id FROM articles WHERE id = 1")
    [story] = [s for s in store.recent_stories(EPOCH) if s["id"] == stored.story_id]
    assert story["articles"] == 3 and story["outlets"] == 2
    store.close()
