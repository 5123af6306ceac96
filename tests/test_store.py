"""The store's promises: migrations, exclusive leases that expire, write-once delivery."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts import outbox
from crawler.config import Source
from crawler.core.article import Article
from crawler.core.clock import iso
from crawler.core.errors import SchemaTooNewError
from crawler.process import dedup, stories
from crawler.store import MIGRATIONS, DeliveryResult, NewArticle, PollRecord, Store

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def source(name: str) -> Source:
    return Source(name, f"https://e.org/{name}", 600, 20, "ua", 1000)


def test_fresh_database_is_migrated_and_reopens(tmp_path: Path) -> None:
    store = Store(tmp_path / "sub" / "nw.db")
    assert store.schema_version() == len(MIGRATIONS)
    assert {"sources", "articles", "article_keys", "matches", "outbox",
            "delivery_attempts"} <= set(store.db.table_names())
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    assert Store(tmp_path / "sub" / "nw.db").schema_version() == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "nw.db").close()
    with sqlite3.connect(tmp_path / "nw.db") as conn:
        conn.execute("INSERT INTO migrations VALUES (99, 'from the future', 'x')")
    with pytest.raises(SchemaTooNewError, match="upgrade newswatch"):
        Store(tmp_path / "nw.db")


def test_source_leases_are_exclusive_and_expire(tmp_path: Path) -> None:
    one, two = Store(tmp_path / "nw.db"), Store(tmp_path / "nw.db")
    one.sync_sources([source("a"), source("b")], NOW)
    assert {s.name for s in one.claim_sources("p1", NOW, LEASE)} == {"a", "b"}
    assert two.claim_sources("p2", NOW, LEASE, due_only=False) == []
    # p1 crashed: after the lease runs out, p2 may take them.
    later = NOW + LEASE + timedelta(seconds=1)
    assert {s.name for s in two.claim_sources("p2", later, LEASE)} == {"a", "b"}
    # A late report from p1 no longer counts.
    one.record_poll("a", "p1", later, PollRecord(later + timedelta(hours=1), error="late"))
    assert one.sources()[0]["last_error"] is None


def test_removed_sources_become_inactive_and_return(tmp_path: Path) -> None:
    store = Store(tmp_path / "nw.db")
    store.sync_sources([source("a"), source("b")], NOW)
    store.sync_sources([source("a")], NOW)
    assert [s.name for s in store.claim_sources("p", NOW, LEASE)] == ["a"]
    store.sync_sources([source("a"), source("b")], NOW)
    assert [s.name for s in store.claim_sources("p", NOW, LEASE)] == ["b"]


def _queue_one(store: Store) -> int:
    store.sync_sources([source("a")], NOW)
    art = Article(source="a", url="https://e.org/x", link="https://e.org/x", title="t")
    key = outbox.alert_key("w", outbox.article_subject(art), "hook")
    row = outbox.OutboxRow(key, outbox.message_id(key), "w", "hook",
                           outbox.article_subject(art), {"k": 1})
    new = NewArticle(art, dedup.keys(art), [], stories.fingerprint(("t", "", "")),
                     ("t", "", ""))
    assert len(store.add_articles([new], NOW, "v1", lambda *_: [row])) == 1
    # The same article again (as another process would) stores nothing more.
    assert store.add_articles([new], NOW, "v1", lambda *_: [row]) == []
    return int(store.alerts()[0]["id"])


def test_alert_leases_and_delivered_rows_are_final(tmp_path: Path) -> None:
    one, two = Store(tmp_path / "nw.db"), Store(tmp_path / "nw.db")
    alert_id = _queue_one(one)
    [claimed] = one.claim_alerts("p1", NOW, LEASE, ["hook"])
    assert claimed.id == alert_id and claimed.payload == {"k": 1}
    assert two.claim_alerts("p2", NOW, LEASE, ["hook"]) == []
    one.record_delivery(alert_id, "p1", NOW, DeliveryResult("delivered", 200))
    # Even after every lease has expired, a delivered alert is never claimed again,
    # and a late failure report cannot reopen it.
    later = NOW + timedelta(days=2)
    assert two.claim_alerts("p2", later, LEASE, ["hook"]) == []
    two.record_delivery(alert_id, "p2", later, DeliveryResult("retry", 503, "x", 0, later))
    assert one.alert_counts() == {"delivered": 1}
    attempts = one.db.execute("SELECT count(*) FROM delivery_attempts").fetchone()[0]
    assert attempts == 2, "every attempt is logged, even a late one"


def test_a_late_report_from_a_lost_lease_leaves_the_new_holder_alone(tmp_path: Path) -> None:
    one, two = Store(tmp_path / "nw.db"), Store(tmp_path / "nw.db")
    alert_id = _queue_one(one)
    one.claim_alerts("p1", NOW, LEASE, ["hook"])
    later = NOW + LEASE + timedelta(seconds=1)  # p1's send outlived its lease
    assert [a.id for a in two.claim_alerts("p2", later, LEASE, ["hook"])] == [alert_id]

    one.record_delivery(alert_id, "p1", later, DeliveryResult("retry", 503, "x", 0, later))
    assert one.requeue(later, [alert_id]) == 0, "no requeue while p2 is sending it"

    row = one.db.execute("SELECT status, attempts, lease_owner FROM outbox").fetchone()
    assert tuple(row) == ("pending", 0, "p2"), "p2's claim stands; p1's attempt not counted"
    assert one.claim_alerts("p3", later, LEASE, ["hook"]) == [], "nobody else may send it"
    two.record_delivery(alert_id, "p2", later, DeliveryResult("delivered", 200))
    assert one.alert_counts() == {"delivered": 1}
    assert one.db.execute("SELECT count(*) FROM delivery_attempts").fetchone()[0] == 2


def test_retention_keeps_the_alerts_of_a_story_still_being_seen(tmp_path: Path) -> None:
    store = Store(tmp_path / "nw.db")
    alert_id = _queue_one(store)
    [claimed] = store.claim_alerts("p1", NOW, LEASE, ["hook"])
    store.record_delivery(claimed.id, "p1", NOW, DeliveryResult("delivered", 200))
    keep = timedelta(days=90)
    later = NOW + timedelta(days=91)
    # a copy joined the story ten days ago: the story still needs to know it alerted
    store.db.execute("UPDATE stories SET last_seen_at = ?", [iso(later - timedelta(days=10))])
    assert store.maintain(later, keep) == 0
    assert [a["id"] for a in store.alerts()] == [alert_id]
    # once the story has been quiet for the whole retention time, the alert goes
    assert store.maintain(later + timedelta(days=81), keep) == 1
    assert store.alerts() == []


def test_only_configured_channels_are_claimed(tmp_path: Path) -> None:
    store = Store(tmp_path / "nw.db")
    _queue_one(store)
    assert store.claim_alerts("p", NOW, LEASE, ["other"]) == []
    assert store.claim_alerts("p", NOW, LEASE, []) == []
