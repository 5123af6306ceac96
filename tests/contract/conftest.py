"""The storage contract suite: every backend passes it (``crawler/store/protocol.py``).

Tests here speak only through the ``Store`` Protocol, with times passed in: no SQL, no
backend types. ``backend`` opens handles on one fresh database, as two processes would:
a SQLite file, or a PostgreSQL database created for the test and dropped after
(``tests/postgres.py``; those runs are marked ``postgres``).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.config import Source
from crawler.core.article import Article
from crawler.process import dedup, search, stories
from crawler.process.match import Match
from crawler.store import (
    NewArticle,
    OutboxRow,
    PostgresStore,
    SQLiteStore,
    Store,
    StoryContext,
)
from crawler.store.records import story_subject
from tests.postgres import fresh_database

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

Opener = Callable[[], Store]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens another handle on the same fresh database."""
    opened: list[Store] = []
    with contextlib.ExitStack() as stack:
        dsn = stack.enter_context(fresh_database()) if request.param == "postgres" else ""

        def open_store() -> Store:
            store: Store = PostgresStore(dsn) if dsn else SQLiteStore(tmp_path / "contract.db")
            opened.append(store)
            return store

        yield open_store
        for store in opened:
            store.close()


@pytest.fixture
def store(backend: Opener) -> Store:
    return backend()


def source(name: str, url: str | None = None) -> Source:
    return Source(name, url or f"https://{name.lower()}.example/feed", 600, 20, "ua", 1000)


TEXT = ("Ahmad Massoud met elders in Panjshir on Tuesday to discuss the winter aid convoy "
        "and the reopening of the Salang pass, officials said in a statement on Wednesday.")


WORDS = ["province", "officials", "talks", "security", "border", "trade", "meeting",
         "council", "minister", "election", "schools", "aid", "district", "police",
         "ceasefire", "delegation", "envoy", "capital", "statement", "critics", "railway",
         "water", "drought", "refugees", "economy", "prices", "wheat", "market", "bank",
         "currency", "embassy", "agreement", "parliament", "court"]


def varied(n: int, words: int = 60) -> str:
    """A news-length text of its own for each ``n``: no story with any other."""
    rng = random.Random(n)
    return " ".join(rng.choice(WORDS) for _ in range(words)) + f" (report {n})."


def article(source_name: str, n: int, text: str = TEXT, title: str = "") -> Article:
    url = f"https://{source_name.lower()}.example/news/{n}"
    return Article(source=source_name, url=url, link=url, title=title or f"Story {n}",
                   guid=f"{source_name}-{n}", published_at=NOW, summary=text, text=text)


def match(watch: str = "Ahmad Massoud", watchlist: str = "opposition") -> Match:
    return Match(watchlist, watch, watch, watch, "text", 0, len(watch), TEXT[:40])


def new(art: Article, matches: Sequence[Match] = ()) -> NewArticle:
    document = search.document(art)
    return NewArticle(art, dedup.keys(art), list(matches), stories.fingerprint(document),
                      document)


def alert_row(watchlist: str, subject: str, channel: str = "hook", *,
              priority: bool = False, hold_until: datetime | None = None,
              items: tuple[tuple[str, str], ...] = ()) -> OutboxRow:
    key = "\x1f".join((watchlist, subject, channel))
    return OutboxRow(key, "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32], watchlist,
                     channel, subject,
                     {"subject": subject}, priority, hold_until, items)


def plan_one(channel: str = "hook") -> Callable[[Article, list[Match], StoryContext],
                                                list[OutboxRow]]:
    """One alert per story on ``channel``, and one per later copy naming (watchlist,
    watch) pairs that the channel's earlier alerts of the story did not."""
    def plan(art: Article, matches: list[Match], story: StoryContext) -> list[OutboxRow]:
        pairs = tuple(dict.fromkeys((m.watchlist, m.watch) for m in matches))
        new = set(pairs) - story.alerted.get(channel, frozenset())
        if not new:
            return []
        return [alert_row("", story.subject + "#" + ",".join(sorted(map(str, new))), channel,
                          items=pairs)]
    return plan


def no_alerts(*_: object) -> list[OutboxRow]:
    return []


__all__ = ["EPOCH", "LEASE", "NOW", "alert_row", "article", "match", "new", "no_alerts",
           "plan_one", "source", "story_subject", "varied"]
