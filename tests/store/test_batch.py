"""The SQLite backend stores a poll in a fixed number of statements, whatever its size,
and its full-text index keeps no copy of the text (behaviour: tests/contract/)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from crawler.core.article import Article
from crawler.process.search import parse_query
from crawler.store import NewArticle, SQLiteStore
from tests import schema
from tests.contract.conftest import NOW, article, match, new, plan_one, source, varied


class Counting:
    """A connection counting the calls made through it: ``executemany`` is one call
    however many rows it takes, a row-by-row insert one per row."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.calls: list[str] = []

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.calls.append(sql)
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.calls.append(sql)
        return self.conn.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "batch.db")
    opened.sync_sources([source(f"S{n}") for n in range(5)], NOW)
    yield opened
    opened.close()


def counted(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> Counting:
    """Every SQL call the store makes from now on, through its connection or through
    sqlite-utils."""
    counting = Counting(store._conn)
    monkeypatch.setattr(store, "_conn", counting)
    monkeypatch.setattr(store, "_db", sqlite_utils.Database(counting))  # type: ignore[arg-type]
    return counting


def poll(size: int, seed: int) -> list[NewArticle]:
    """``size`` articles as a poll brings them: distinct stories, every third matching,
    every fifth a copy of the one before (another outlet, same text)."""
    made: list[NewArticle] = []
    for n in range(size):
        text = made[-1].article.text if n % 5 == 4 else varied(seed * 10_000 + n)
        made.append(new(article(f"S{n % 5}", seed * 10_000 + n, text),
                        [match()] if n % 3 == 0 or n % 5 == 4 else []))
    return made


def test_a_poll_takes_the_same_statements_for_ten_articles_or_two_hundred(
        store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """No round trip per article, key, match, band key or index row: one statement per
    lookup and per table, so a bigger poll costs rows, not statements."""
    earlier = poll(50, 1)
    store.add_articles(earlier, NOW, "v1", plan_one())
    calls = []
    for size, seed in ((10, 2), (200, 3)):
        batch = poll(size, seed)
        batch[1] = new(elsewhere(earlier[0].article, f"copy-{seed}"), [match()])
        counting = counted(store, monkeypatch)
        stored = store.add_articles(batch, NOW, "v1", plan_one())
        assert len(stored) == size and stored[1].story_id == 1, "joined a stored story"
        calls.append(counting.calls)
        monkeypatch.undo()
    assert len(calls[0]) == len(calls[1]) <= 25, calls
    assert schema.value(store, "SELECT count(*) FROM articles") == 260


def elsewhere(art: Article, tag: str) -> Article:
    """The same article under another outlet's URL."""
    url = f"https://s4.example/{tag}"
    return Article(source="S4", url=url, link=url, title=art.title, published_at=NOW,
                   summary=art.summary, text=art.text)


def test_the_index_keeps_no_copy_of_the_text_and_pruning_leaves_the_others_found(
        store: SQLiteStore) -> None:
    """Contentless FTS5: no content table; a pruned article's tokens leave the index
    (deleted with the values it was indexed with), the others stay searchable."""
    store.add_articles([new(article("S0", 1, "Saffron prices held in Herat.")),
                        new(article("S1", 2, "Saffron harvest begins in Herat."))],
                       NOW, "v1", plan_one())
    tables = {r["name"] for r in schema.rows(store, "SELECT name FROM sqlite_master")}
    assert "articles_fts" in tables and "articles_fts_content" not in tables
    schema.execute(store, "UPDATE articles SET fetched_at = '2000-01-01T00:00:00+00:00' "
                          "WHERE id = 1")
    assert store.prune_articles(NOW, timedelta(days=30)) == 1
    assert [r["id"] for r in store.search(parse_query("saffron"))] == [2]
    assert [r["id"] for r in store.search(parse_query("prices"))] == []
    assert schema.value(store, "SELECT count(*) FROM articles_fts") == 1
    # the deleted row's tokens are gone from the index, not just hidden
    assert schema.value(store, "SELECT count(*) FROM articles_fts "
                               "WHERE articles_fts MATCH 'prices'") == 0
