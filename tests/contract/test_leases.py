"""Contract: short leases are renewed while the work runs, a dead owner's run out and
are taken over, and a throttled channel's claims take turns across processes."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import timedelta

from crawler.app.daemon import owner_is_dead
from crawler.process.throttle import Throttle
from crawler.store import DeliveryResult, PollRecord
from tests.contract.conftest import NOW, Opener, alert_row, source
from tests.contract.test_outbox import queue
from tests.helpers import wait_until

LEASE = timedelta(seconds=60)
TICK = timedelta(seconds=5)
#: A daemon that died on another host: release_orphans cannot tell it is dead.
ELSEWHERE = "another-host/4026531836:4242:a1b2c3"


def test_renewal_extends_only_the_leases_the_owner_still_holds(backend: Opener) -> None:
    one, two = backend(), backend()
    one.sync_sources([source("A"), source("B"), source("C")], NOW)
    one.claim_sources("p1", NOW, LEASE, names=["A", "B"])
    two.claim_sources("p2", NOW, LEASE, names=["C"])
    later = NOW + LEASE / 3
    assert one.renew_leases("p1", later, LEASE, sources=["A", "C", "gone"]) == \
        (["C", "gone"], []), "C is p2's, and no source is named gone"
    past_first = NOW + LEASE + timedelta(seconds=1)
    assert [s.name for s in two.claim_sources("p2", past_first, LEASE, due_only=False)] \
        == ["B", "C"], "A was renewed, B and C were not"
    assert two.renew_leases("p2", past_first, LEASE, sources=["C"]) == ([], [])


def test_a_lease_run_out_is_still_the_owners_until_another_claims_it(
        backend: Opener) -> None:
    one, two = backend(), backend()
    one.sync_sources([source("A"), source("B")], NOW)
    one.claim_sources("p1", NOW, LEASE)
    late = NOW + LEASE * 2  # a renewal held up (a busy database): nobody took A yet
    assert one.renew_leases("p1", late, LEASE, sources=["A"]) == ([], [])
    assert [s.name for s in two.claim_sources("p2", late, LEASE, due_only=False)] == ["B"]
    assert one.renew_leases("p1", late, LEASE, sources=["B"]) == (["B"], [])
    two.record_poll("B", "p2", late, PollRecord(late + timedelta(hours=1)))
    assert one.renew_leases("p1", late, LEASE, sources=["B"]) == (["B"], []), \
        "nobody holds it now: still not p1's"


def test_alert_leases_are_renewed_until_recorded(backend: Opener) -> None:
    one, two = backend(), backend()
    first, second = queue(one, alert_row("w", "s1"), alert_row("w", "s2"))
    assert len(one.claim_alerts("p1", NOW, LEASE, ["hook"])) == 2
    later = NOW + LEASE - timedelta(seconds=1)
    assert one.renew_leases("p1", later, LEASE, alerts=[first, second]) == ([], [])
    assert two.claim_alerts("p2", NOW + LEASE + timedelta(seconds=1), LEASE, ["hook"]) == []
    one.record_delivery(first, "p1", later, DeliveryResult("delivered", 200))
    assert one.renew_leases("p1", later, LEASE, alerts=[first, second]) == ([], [first])
    after = later + LEASE + timedelta(seconds=1)
    assert [a.id for a in two.claim_alerts("p2", after, LEASE, ["hook"])] == [second]
    assert one.renew_leases("p1", after, LEASE, alerts=[second]) == ([], [second])


def test_a_daemon_dead_on_another_host_is_taken_over_within_lease_and_tick(
        backend: Opener) -> None:
    """No renewal comes from the dead; release_orphans cannot tell it died (another
    host), so its sources and alerts wait for their leases to run out: a daemon ticking
    every TICK claims them at most LEASE + TICK after the dead one's last renewal."""
    dead, alive = backend(), backend()
    [alert_id] = queue(dead, alert_row("w", "s1"))  # and sources Kabul and North
    assert [s.name for s in dead.claim_sources(ELSEWHERE, NOW, LEASE, names=["Kabul"])] \
        == ["Kabul"]
    assert [a.id for a in dead.claim_alerts(ELSEWHERE, NOW, LEASE, ["hook"])] == [alert_id]
    assert alive.release_orphans(owner_is_dead) == [], "not this host's process"
    ticks = [NOW + TICK * n for n in range(1, 40)]
    first_sources = next(t for t in ticks
                         if alive.claim_sources("live", t, LEASE, names=["Kabul"]))
    first_alerts = next(t for t in ticks if alive.claim_alerts("live", t, LEASE, ["hook"]))
    assert NOW + LEASE <= first_sources <= NOW + LEASE + TICK
    assert NOW + LEASE <= first_alerts <= NOW + LEASE + TICK
    assert dead.renew_leases(ELSEWHERE, first_alerts, LEASE, sources=["Kabul"],
                             alerts=[alert_id]) == (["Kabul"], [alert_id]), \
        "a daemon that was only stalled learns it lost them"


class _Paused(Mapping[str, Throttle]):
    """The throttles of a claim that stops inside its transaction, after counting what
    its channels sent this hour, until ``go`` is set (another daemon claims meanwhile)."""

    def __init__(self, throttles: dict[str, Throttle]) -> None:
        self.throttles = throttles
        self.paused, self.go = threading.Event(), threading.Event()

    def __getitem__(self, key: str) -> Throttle:
        return self.throttles[key]

    def get(self, key: str, default: object = None) -> Throttle | None:  # type: ignore[override]
        self.paused.set()
        self.go.wait(30)
        return self.throttles.get(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.throttles)

    def __len__(self) -> int:
        return len(self.throttles)


def test_two_processes_claiming_for_a_throttled_channel_take_turns(backend: Opener) -> None:
    """One alert an hour on the channel: the second claim counts the first one's, so
    only one alert is sent (on PostgreSQL an advisory lock per channel; on SQLite the
    write lock)."""
    one, two = backend(), backend()
    queue(one, alert_row("w", "s1"), alert_row("w", "s2"))
    limit = {"hook": Throttle(1, NOW + timedelta(hours=1))}
    paused = _Paused(limit)
    claims: dict[str, list[int]] = {}

    def claim(name: str, throttles: Mapping[str, Throttle]) -> None:
        store = one if name == "p1" else two
        claims[name] = [a.id for a in store.claim_alerts(name, NOW, LEASE, ["hook"], limit=1,
                                                          throttles=throttles)]

    first = threading.Thread(target=claim, args=("p1", paused))
    first.start()
    assert paused.paused.wait(30), "the first claim never counted"
    second = threading.Thread(target=claim, args=("p2", limit))
    second.start()
    # the second waits for the first's transaction (a bound, not a timing claim: on the
    # old code it ended at once, having counted nothing sent)
    wait_until(lambda: not second.is_alive(), timeout=1)
    paused.go.set()
    first.join(30)
    second.join(30)
    assert len(claims["p1"]) == 1
    assert claims["p2"] == [], "the channel's one alert this hour went already"
    assert one.alert_counts() == {"pending": 1, "held": 1}
