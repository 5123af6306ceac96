"""What the SQLite backend keeps beyond the contract (tests/contract/): its file, WAL, the
migrations table, and the log of every delivery attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts import outbox
from crawler.config import Source
from crawler.core.article import Article
from crawler.core.errors import SchemaTooNewError
from crawler.process import dedup, stories
from crawler.store import DeliveryResult, NewArticle, SQLiteStore, Store
from crawler.store.sqlite import STEPS
from tests import schema

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def source(name: str) -> Source:
    return Source(name, f"https://e.org/{name}", 600, 20, "ua", 1000)


def test_fresh_database_is_migrated_and_reopens(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sub" / "nw.db")
    assert store.schema_version() == len(STEPS)
    assert {"sources", "articles", "article_keys", "matches", "outbox",
            "delivery_attempts"} <= {r["name"] for r in schema.rows(
        store, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert schema.value(store, "PRAGMA journal_mode") == "wal"
    store.close()
    assert SQLiteStore(tmp_path / "sub" / "nw.db").schema_version() == len(STEPS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "nw.db").close()
    schema.execute(tmp_path / "nw.db",
                   "INSERT INTO migrations VALUES (99, 'from the future', 'x')")
    with pytest.raises(SchemaTooNewError, match="upgrade newswatch"):
        SQLiteStore(tmp_path / "nw.db")


def _queue_one(store: SQLiteStore) -> int:
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
    one, two = SQLiteStore(tmp_path / "nw.db"), SQLiteStore(tmp_path / "nw.db")
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
    attempts = schema.value(one, "SELECT count(*) FROM delivery_attempts")
    assert attempts == 2, "every attempt is logged, even a late one"


def test_a_late_report_from_a_lost_lease_leaves_the_new_holder_alone(tmp_path: Path) -> None:
    one, two = SQLiteStore(tmp_path / "nw.db"), SQLiteStore(tmp_path / "nw.db")
    alert_id = _queue_one(one)
    one.claim_alerts("p1", NOW, LEASE, ["hook"])
    later = NOW + LEASE + timedelta(seconds=1)  # p1's send outlived its lease
    assert [a.id for a in two.claim_alerts("p2", later, LEASE, ["hook"])] == [alert_id]

    one.record_delivery(alert_id, "p1", later, DeliveryResult("retry", 503, "x", 0, later))
    assert one.requeue(later, [alert_id]) == 0, "no requeue while p2 is sending it"

    [row] = schema.rows(one, "SELECT status, attempts, lease_owner FROM outbox")
    assert tuple(row.values()) == ("pending", 0, "p2"), \
        "p2's claim stands; p1's attempt not counted"
    assert one.claim_alerts("p3", later, LEASE, ["hook"]) == [], "nobody else may send it"
    two.record_delivery(alert_id, "p2", later, DeliveryResult("delivered", 200))
    assert one.alert_counts() == {"delivered": 1}
    assert schema.value(one, "SELECT count(*) FROM delivery_attempts") == 2


def test_every_public_method_turns_driver_errors_into_store_errors() -> None:
    """Each method of the contract is wrapped (``wrap_exceptions``); ``writable`` reports
    through its write, ``close`` and ``location`` touch no query."""
    public = {n for n in dir(Store) if not n.startswith("_")}
    unwrapped = {n for n in public - {"close", "location", "writable"}
                 if not hasattr(getattr(SQLiteStore, n), "__wrapped__")}
    assert unwrapped == set()
