"""Contract: source rows follow the config; leases are exclusive and expire."""

from __future__ import annotations

from datetime import timedelta

from crawler.store import PollRecord, Store
from tests.contract.conftest import LEASE, NOW, Opener, source


def test_sources_follow_the_config_new_ones_due_at_once(store: Store) -> None:
    store.sync_sources([source("A"), source("B")], NOW)
    assert {s.name for s in store.claim_sources("p", NOW, LEASE)} == {"A", "B"}
    assert {r["name"]: bool(r["active"]) for r in store.sources()} == {"A": True, "B": True}
    store.release("p")
    store.sync_sources([source("A")], NOW)
    assert [s.name for s in store.claim_sources("p", NOW, LEASE, due_only=False)] == ["A"]
    assert {r["name"]: bool(r["active"]) for r in store.sources()} == {"A": True, "B": False}
    store.sync_sources([source("A"), source("B")], NOW)
    assert [s.name for s in store.claim_sources("p", NOW, LEASE)] == ["B"], "back, due"


def test_source_leases_are_exclusive_and_expire(backend: Opener) -> None:
    one, two = backend(), backend()
    one.sync_sources([source("A"), source("B")], NOW)
    assert {s.name for s in one.claim_sources("p1", NOW, LEASE)} == {"A", "B"}
    assert two.claim_sources("p2", NOW, LEASE, due_only=False) == []
    later = NOW + LEASE + timedelta(seconds=1)
    assert {s.name for s in two.claim_sources("p2", later, LEASE)} == {"A", "B"}
    one.record_poll("A", "p1", later, PollRecord(later + timedelta(hours=1), error="late"))
    assert {r["name"]: r["last_error"] for r in one.sources()} == {"A": None, "B": None}


def test_a_poll_records_validators_failures_and_the_next_check(store: Store) -> None:
    store.sync_sources([source("A")], NOW)
    [state] = store.claim_sources("p", NOW, LEASE)
    assert (state.etag, state.error_count) == (None, 0)
    store.record_poll("A", "p", NOW, PollRecord(NOW + timedelta(minutes=10), etag='"1"',
                                                full_fetch=True))
    assert store.claim_sources("p", NOW, LEASE) == [], "not due before its next check"
    due = NOW + timedelta(minutes=10)
    [state] = store.claim_sources("p", due, LEASE)
    assert state.etag == '"1"' and state.last_full_fetch_at is not None
    store.record_poll("A", "p", due, PollRecord(due, error="HTTP 503"))
    [state] = store.claim_sources("p", due, LEASE)
    assert (state.error_count, state.last_error, state.etag) == (1, "HTTP 503", '"1"')
    store.record_poll("A", "p", due, PollRecord(due, error="gone", retire=True))
    assert store.claim_sources("p", due + timedelta(days=9), LEASE) == [], "retired"


def test_a_confirmed_move_and_retry_after_for_the_whole_host(store: Store) -> None:
    store.sync_sources([source("A", "https://h.example/a"), source("B", "https://h.example/b"),
                        source("C", "https://other.example/c")], NOW)
    store.claim_sources("p", NOW, LEASE, names=["A"])
    store.record_poll("A", "p", NOW, PollRecord(NOW, move_to="https://h.example/a2",
                                                defer_host_until=NOW + timedelta(hours=1)))
    assert {s.name for s in store.claim_sources("p", NOW, LEASE)} == {"C"}
    later = store.claim_sources("p", NOW + timedelta(hours=1), LEASE)
    assert {s.name: s.url for s in later} == {"A": "https://h.example/a2",
                                              "B": "https://h.example/b",
                                              "C": "https://other.example/c"}


def test_leases_are_given_back_on_shutdown_and_by_dead_owners(backend: Opener) -> None:
    store = backend()
    store.sync_sources([source("A"), source("B")], NOW)
    store.claim_sources("alive", NOW, LEASE, names=["A"])
    store.claim_sources("dead", NOW, LEASE, names=["B"])
    assert store.release_orphans(lambda owner: owner == "dead") == ["dead"]
    assert [s.name for s in backend().claim_sources("other", NOW, LEASE)] == ["B"]
    store.release("alive")
    assert [s.name for s in backend().claim_sources("other", NOW, LEASE)] == ["A"]


def test_one_source_lease_is_given_back_alone(backend: Opener) -> None:
    store = backend()
    store.sync_sources([source("A"), source("B")], NOW)
    store.claim_sources("p", NOW, LEASE)
    store.release("p", "A")  # A left the config before its poll began
    assert [s.name for s in backend().claim_sources("other", NOW, LEASE)] == ["A"]


def test_health_figures_and_notices(store: Store) -> None:
    store.sync_sources([source("A")], NOW)
    store.set_notice("A", "quiet")
    [row] = store.source_health(NOW)
    assert (row["name"], row["notice"], row["articles_24h"], row["last_article_at"]) == \
        ("A", "quiet", 0, None)


def test_poll_now_makes_an_active_source_due_and_no_other(store: Store) -> None:
    store.sync_sources([source("A"), source("B")], NOW)
    for name in ("A", "B"):
        store.claim_sources("p", NOW, LEASE, names=[name])
        store.record_poll(name, "p", NOW, PollRecord(NOW + timedelta(hours=1)))
    later = NOW + timedelta(minutes=1)
    assert store.claim_sources("p", later, LEASE) == [], "neither due for an hour"
    assert store.poll_now("A", later)
    assert [s.name for s in store.claim_sources("p", later, LEASE)] == ["A"]
    assert {r["name"]: r["next_check_at"][:16] for r in store.sources()}["A"] == \
        later.isoformat()[:16]
    assert not store.poll_now("nobody", later), "an unknown source"
    store.sync_sources([source("A")], later)  # B leaves the config: inactive
    assert not store.poll_now("B", later)
    store.record_poll("A", "p", later, PollRecord(later, error="gone", retire=True))
    assert not store.poll_now("A", later), "a retired source"
    assert store.claim_sources("p", later, LEASE) == []
