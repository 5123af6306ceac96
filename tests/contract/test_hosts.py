"""Contract: turns at remote hosts are exclusive across handles, keep their delay and
Retry-After, and a holder that stops renewing loses the host when its hold lapses."""

from __future__ import annotations

import threading
from datetime import timedelta

from crawler.store import Store
from crawler.store.records import HostBusy
from tests.contract.conftest import NOW, Opener

HOST = "https://h.example"
HOLD = timedelta(seconds=60)
S = timedelta(seconds=1)


def test_a_turn_is_one_holders_until_freed_then_waits_its_delay(backend: Opener) -> None:
    one, two = backend(), backend()
    assert one.take_host(HOST, "d1", NOW, HOLD) is None
    assert two.take_host(HOST, "d2", NOW + S, HOLD) == HostBusy(NOW, NOW + HOLD)
    assert two.take_host("https://other.example", "d2", NOW, HOLD) is None, "per host"
    one.free_host(HOST, "d1", NOW + 2 * S, 5 * S)
    assert two.take_host(HOST, "d2", NOW + 3 * S, HOLD) == HostBusy(NOW + 7 * S)
    assert two.take_host(HOST, "d2", NOW + 7 * S, HOLD) is None
    assert one.take_host(HOST, "d1", NOW + 8 * S, HOLD) == HostBusy(NOW + 7 * S,
                                                                    NOW + 7 * S + HOLD)


def test_a_holder_takes_its_own_turn_again(store: Store) -> None:
    assert store.take_host(HOST, "d1", NOW, HOLD) is None
    assert store.take_host(HOST, "d1", NOW + S, HOLD) is None


def test_a_hold_lapses_unless_renewed(backend: Opener) -> None:
    one, two = backend(), backend()
    assert one.take_host(HOST, "d1", NOW, HOLD) is None
    assert one.renew_hosts([HOST, "https://never.example"], "d1", NOW + 50 * S,
                           HOLD) == [HOST]
    assert two.take_host(HOST, "d2", NOW + HOLD + S, HOLD) is not None, "renewed"
    later = NOW + 50 * S + HOLD
    assert two.take_host(HOST, "d2", later, HOLD) is None, "the holder stopped renewing"
    assert one.renew_hosts([HOST], "d1", later, HOLD) == [], "not taken back"
    one.free_host(HOST, "d1", later, 5 * S)
    assert one.take_host(HOST, "d1", later + 10 * S, HOLD) == HostBusy(
        later + 5 * S, later + HOLD), "a late free keeps its delay, not the other's hold"


def test_retry_after_holds_the_host_back_and_never_shortens_it(backend: Opener) -> None:
    one, two = backend(), backend()
    one.defer_host(HOST, NOW + 100 * S)
    assert two.take_host(HOST, "d2", NOW, HOLD) == HostBusy(NOW + 100 * S)
    two.defer_host(HOST, NOW + 10 * S)
    two.free_host(HOST, "d2", NOW, S)
    assert two.take_host(HOST, "d2", NOW + 99 * S, HOLD) == HostBusy(NOW + 100 * S)
    assert one.take_host(HOST, "d1", NOW + 100 * S, HOLD) is None


def test_two_handles_racing_for_a_host_get_one_turn(backend: Opener) -> None:
    stores = [backend() for _ in range(4)]
    start = threading.Barrier(len(stores))
    given: list[str] = []

    def race(n: int) -> None:
        start.wait(timeout=30)
        for attempt in range(20):
            if stores[n].take_host(f"https://race{attempt}.example", f"d{n}", NOW,
                                   HOLD) is None:
                given.append(f"{attempt}")

    threads = [threading.Thread(target=race, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(given, key=int) == [str(n) for n in range(20)], "each host once"


def test_maintenance_keeps_the_turns_still_to_come(store: Store) -> None:
    store.take_host(HOST, "d1", NOW, HOLD)
    store.free_host(HOST, "d1", NOW, S)
    store.defer_host("https://later.example", NOW + timedelta(days=3))
    store.maintain(NOW + timedelta(days=2), timedelta(days=30))
    assert store.take_host(HOST, "d2", NOW + timedelta(days=2), HOLD) is None
    assert store.take_host("https://later.example", "d2", NOW + timedelta(days=2),
                           HOLD) is not None, "a Retry-After still to come is kept"
