"""Contract: each running daemon's row (who runs, with which config), and wake-ups: the
changes that make work due early call back a listening process on PostgreSQL, and on
SQLite nothing does (its daemons find the work at their next tick)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from crawler.store import DeliveryResult, Store
from crawler.store.records import DaemonFacts
from tests.contract.conftest import (
    LEASE,
    NOW,
    Opener,
    alert_row,
    article,
    match,
    new,
    source,
)
from tests.helpers import wait_until

WITHIN = timedelta(minutes=1)


def facts(config: str = "3f2a4b5c6d7e", host: str = "host-a", pid: int = 123) -> DaemonFacts:
    return DaemonFacts(host, pid, NOW, config, "0.1.0", 2)


def test_a_daemon_row_is_kept_up_to_date_and_removed_at_a_clean_stop(
        backend: Opener) -> None:
    one, other = backend(), backend()
    one.daemon_seen("a:123:x", NOW, facts())
    one.daemon_seen("b:456:y", NOW, facts("9c1d00000000", "host-b", 456))
    later = NOW + timedelta(seconds=20)
    one.daemon_seen("a:123:x", later, facts("0123456789ab"))  # a reload, then a heartbeat
    rows = other.daemons(later, WITHIN)
    assert [(r["owner"], r["host"], r["pid"], r["config_version"], r["live"])
            for r in rows] == [("a:123:x", "host-a", 123, "0123456789ab", True),
                               ("b:456:y", "host-b", 456, "9c1d00000000", True)]
    assert rows[0]["started_at"] == rows[1]["started_at"] == "2026-11-28T10:00:00.000000Z"
    assert rows[0]["seen_at"] == "2026-11-28T10:00:20.000000Z"
    assert (rows[0]["version"], rows[0]["workers"]) == ("0.1.0", 2)
    assert other.daemon_gone("a:123:x") is True
    assert other.daemon_gone("a:123:x") is False
    assert [r["owner"] for r in one.daemons(later, WITHIN)] == ["b:456:y"]


def test_a_daemon_not_seen_for_a_while_is_shown_gone_not_forgotten(store: Store) -> None:
    store.daemon_seen("a:1:x", NOW, facts())
    assert [r["live"] for r in store.daemons(NOW + WITHIN, WITHIN)] == [True]
    gone = NOW + WITHIN + timedelta(seconds=1)
    assert [(r["owner"], r["live"]) for r in store.daemons(gone, WITHIN)] == [("a:1:x", False)]
    assert [r["owner"] for r in store.daemons(gone, WITHIN)] == ["a:1:x"], "still there"


class Heard:
    """What a listener was called back with, in order."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, kind: str) -> None:
        with self.lock:
            self.kinds.append(kind)

    def now(self) -> list[str]:
        with self.lock:
            return list(self.kinds)


@pytest.fixture
def wakes(request: pytest.FixtureRequest) -> bool:
    """Whether the backend under test sends wake-ups (PostgreSQL's NOTIFY)."""
    return bool(request.node.callspec.params["backend"] == "postgres")


@pytest.fixture
def heard(backend: Opener) -> Iterator[Heard]:
    """A listener on a handle of its own, listening once ``listen`` returns."""
    heard, listening = Heard(), backend()
    closer = listening.listen(heard)
    yield heard
    closer.close()
    closer.close()  # twice is harmless


def settled(store: Store, heard: Heard, wakes: bool, expected: list[str]) -> None:
    """Make source ``Marker`` due now and wait until its wake-up is heard: PostgreSQL
    delivers wake-ups in commit order, so every one of the transactions before it has
    arrived by then, and what was heard is compared whole. On SQLite, where nothing is
    heard, the marker is made all the same."""
    assert store.poll_now("Marker", NOW)
    if wakes:
        assert wait_until(lambda: len(heard.now()) >= len(expected) + 1, timeout=30), \
            heard.now()
        assert heard.now() == [*expected, "sources"]
    else:
        assert heard.now() == []
    heard.kinds.clear()


def test_work_made_due_early_wakes_the_listening_daemons(
        backend: Opener, heard: Heard, wakes: bool) -> None:
    store = backend()
    store.sync_sources([source("Marker")], NOW)  # a new source: due now
    settled(store, heard, wakes, ["sources"] if wakes else [])

    store.sync_sources([source("Marker"), source("A")], NOW)
    store.sync_sources([source("Marker"), source("A")], NOW)  # nothing changed: quiet
    store.sync_sources([source("Marker"), source("A", "https://a.example/moved")], NOW)
    store.sync_sources([source("Marker")], NOW)  # A removed: nothing is due, quiet
    store.sync_sources([source("Marker"), source("A", "https://a.example/moved")], NOW)
    assert store.poll_now("A", NOW)
    assert not store.poll_now("Unknown", NOW)  # nothing made due: quiet
    settled(store, heard, wakes, ["sources"] * 4)


def test_requeued_alerts_wake_the_listening_daemons(
        backend: Opener, heard: Heard, wakes: bool) -> None:
    store = backend()
    store.sync_sources([source("Marker"), source("S")], NOW)
    store.add_articles([new(article("S", 1), [match()])], NOW, "v1",
                       lambda art, matches, story: [alert_row("opposition", story.subject)])
    [alert] = store.claim_alerts("p", NOW, LEASE, ["hook"])
    store.record_delivery(alert.id, "p", NOW, DeliveryResult("dead", 400, "HTTP 400"))
    settled(store, heard, wakes, ["sources"] if wakes else [])

    assert store.requeue(NOW, [alert.id]) == 1
    assert store.requeue(NOW, [alert.id + 1000]) == 0  # nothing requeued: quiet
    settled(store, heard, wakes, ["alerts"])
