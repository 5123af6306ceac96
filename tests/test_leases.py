"""Short leases renewed while the work runs (crawler/store/leases.py): a poll longer than
its lease is never claimed twice, a lost lease stops the work, a crashed poll is renewed
no more, and ``daemon.lease`` is checked at load."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.app.daemon import Runner
from crawler.store import PollRecord, SQLiteStore, Store, open_store
from crawler.store.leases import Leases
from crawler.store.threaded import ThreadedStore
from tests.conftest import Project
from tests.contract.conftest import source
from tests.feeds import Item, rss
from tests.helpers import FakeClock
from tests.postgres import fresh_database
from tests.servers import Page, Receiver, Site, TricklingReceiver

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
LEASE = timedelta(seconds=2)
BOUND_S = 20.0  # catches a hang, nothing more


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = SQLiteStore(tmp_path / "leases.db")
    made.sync_sources([source("A"), source("B")], NOW)
    yield made
    made.close()


def lease_of(store: Store, name: str) -> tuple[str | None, str | None]:
    row = next(r for r in store.sources() if r["name"] == name)
    return row["lease_owner"], row["lease_expires_at"]


def test_a_lost_lease_stops_the_work_which_records_nothing(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(NOW)
    db = ThreadedStore(store)
    leases = Leases(db, "me", clock, LEASE)
    store.claim_sources("me", NOW, LEASE, names=["A"])
    stopped: list[str] = []

    async def poll() -> str:
        try:
            await asyncio.Event().wait()  # a slow fetch
        finally:
            stopped.append("A")
        await db.record_poll("A", "me", clock.now(), PollRecord(NOW + timedelta(hours=1)))
        return "recorded"

    async def main() -> str | None:
        held = asyncio.ensure_future(leases.hold(poll(), source="A"))
        # another process claims A once the lease ran out (a renewal held up that long)
        assert [s.name for s in store.claim_sources("thief", NOW + LEASE * 2, LEASE,
                                                          names=["A"])] == ["A"]
        return await asyncio.wait_for(held, BOUND_S)

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(main()) is None
    db.shutdown()
    assert stopped == ["A"]
    assert lease_of(store, "A")[0] == "thief"
    assert next(r for r in store.sources() if r["name"] == "A")["last_checked_at"] is None
    assert any("lease passed to another process" in r.message and
               getattr(r, "source", None) == "A" for r in caplog.records)


def test_a_crashed_poll_is_renewed_no_more_and_its_lease_runs_out(store: Store) -> None:
    clock = FakeClock(NOW)
    db = ThreadedStore(store)
    leases = Leases(db, "me", clock, LEASE)
    store.claim_sources("me", NOW, LEASE, names=["A", "B"])
    claimed = lease_of(store, "A")[1]

    async def crash() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("a bug")

    async def slow() -> None:  # B runs on through three renewals
        clock.advance(10)
        start = leases.renewals
        for _ in range(int(BOUND_S * 10)):
            if leases.renewals >= start + 3:
                return
            await asyncio.sleep(0.1)

    async def main() -> None:
        crashed = leases.hold(crash(), source="A")
        outcomes = await asyncio.gather(crashed, leases.hold(slow(), source="B"),
                                        return_exceptions=True)
        assert isinstance(outcomes[0], RuntimeError) and outcomes[1] is None
        await leases.close()

    asyncio.run(main())
    db.shutdown()
    assert leases.renewals >= 3
    assert lease_of(store, "A") == ("me", claimed), "A's lease as claimed: never renewed"
    assert lease_of(store, "B")[1] > claimed  # type: ignore[operator]
    later = NOW + LEASE + timedelta(seconds=1)
    assert [s.name for s in store.claim_sources("other", later, LEASE)] == ["A"]


def two_daemons(project: Project, done: Callable[[Store], bool]) -> list[Runner]:
    """Run two daemons in this process on the project's database until ``done`` holds
    for it (bounded), then a second longer, in which a second claim could come."""
    config = project.config()
    stores = [open_store(config), open_store(config)]
    runners = [Runner(config, s) for s in stores]

    async def main() -> None:
        stop = asyncio.Event()
        daemons = [asyncio.create_task(r.run(stop)) for r in runners]
        try:
            for _ in range(int(BOUND_S * 2 / 0.1)):
                if await runners[0].db.call(done, stores[0]):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*daemons), BOUND_S)

    try:
        asyncio.run(main())
    finally:
        for s in stores:
            s.close()
    return runners


SLOW_S = 6.0


def slow_feed(site: Site) -> None:
    """A feed whose body comes SLOW_S seconds after its headers: a poll three times as
    long as its lease."""
    body = rss([Item("Ahmad Massoud in Panjshir", site.url("/slow/1"), "Talks.", "s1",
                     datetime.now(UTC))])

    def trickle(write: Callable[[bytes], None]) -> None:
        time.sleep(SLOW_S)
        write(body)

    site.pages["/slow.xml"] = Page(body, stream=trickle)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite",
                                     pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_poll_longer_than_its_lease_is_never_claimed_twice(
        project: Project, site: Site, receiver: Receiver, backend: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """Two daemons on one database, leases of 2 s, ticks of 0.2 s: the feed answers in
    6 s, and the daemon polling it renews its lease meanwhile, so the other, claiming at
    every tick, never gets it. The server sees one request, and the source one poll."""
    slow_feed(site)
    project.hook(receiver.url("/hook"))
    project.settings["daemon"] = {"tick": "200ms", "lease": "2s", "workers": 0}
    project.settings["defaults"] = {"full_text": False, "interval": "1h"}
    project.sources = [{"name": "Slow", "feed": site.url("/slow.xml")}]
    with fresh_database() if backend == "postgres" else contextlib.nullcontext("") as dsn:
        if dsn:
            project.settings["database"] = dsn
        with caplog.at_level(logging.INFO):
            runners = two_daemons(project, lambda s: any(r["last_success_at"] for r in s.sources()))
        with contextlib.closing(project.store()) as store:
            [row] = store.sources()
    assert row["last_success_at"] and row["error_count"] == 0
    assert len(site.requests_to("/slow.xml")) == 1
    polls = [r.metrics.render({}).count('newswatch_fetches_total{outcome="ok",source="Slow"}'
                                         ' 1.0') for r in runners]
    assert sorted(polls) == [0, 1], "one daemon polled it, once; the other never did"
    assert sum(r.leases.renewals for r in runners) >= 2, "renewed while it ran"
    assert not [r for r in caplog.records if "lease passed" in r.message]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite",
                                     pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_send_longer_than_its_lease_is_sent_once(
        project: Project, site: Site, backend: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """The receiver takes 10 s over its answer, leases last 2 s: the daemon sending renews
    the alert's lease, and the other, claiming at every tick, never sends it too."""
    receiver = TricklingReceiver(slow=1)
    base = site.url("")
    site.pages["/feed.xml"] = Page(rss([Item("Ahmad Massoud in Panjshir", f"{base}/a/1",
                                             "Talks.", "t1", datetime.now(UTC))]))
    project.hook(receiver.url("/hook"))
    project.settings["daemon"] = {"tick": "200ms", "lease": "2s", "workers": 0}
    project.settings["defaults"] = {"full_text": False, "interval": "1h"}
    project.sources = [{"name": "Feed", "feed": site.url("/feed.xml")}]
    try:
        with fresh_database() if backend == "postgres" else contextlib.nullcontext("") as dsn:
            if dsn:
                project.settings["database"] = dsn
            with caplog.at_level(logging.INFO):
                runners = two_daemons(project, lambda s: s.alert_counts() == {"delivered": 1})
        assert len(receiver.hits) == 1, "one POST: the other daemon never sent it"
        assert len(receiver.delivered()) == 1
        assert sum(r.leases.renewals for r in runners) >= 2, "renewed while it was sent"
        assert not [r for r in caplog.records if "lease passed" in r.message]
    finally:
        receiver.close()


@pytest.mark.parametrize(("daemon", "error"), [
    ({"lease": "1s"}, "lease is 1s: it must be from 2s to 60s"),
    ({"lease": "2m"}, "lease is 120s: it must be from 2s to 60s"),
    ({"tick": "30s", "lease": "30s"}, "tick (30s) must be shorter than lease (30s)"),
    ({"tick": "90s"}, "tick (90s) must be shorter than lease (60s)"),
])
def test_the_lease_is_checked_at_load(project: Project, daemon: dict[str, str],
                                      error: str) -> None:
    project.hook("http://127.0.0.1:9/hook")
    project.settings["daemon"] = daemon
    result = project.cli("check")
    assert result.returncode != 0
    assert "newswatch.yaml:" in result.stderr + result.stdout
    assert error in result.stderr + result.stdout


def test_the_default_lease_takes_over_a_dead_daemon_within_two_minutes(
        project: Project) -> None:
    project.hook("http://127.0.0.1:9/hook")
    daemon = project.config().settings.daemon
    assert (daemon.lease, daemon.tick) == (60.0, 5.0)
    assert daemon.lease + daemon.tick <= 120
    project.settings["daemon"] = {"tick": "500ms", "lease": "2s"}
    assert project.config().settings.daemon.lease == 2.0


def test_a_send_whose_lease_was_taken_is_stopped_and_records_nothing(
        project: Project, site: Site, caplog: pytest.LogCaptureFixture) -> None:
    """The daemon stalled longer than its lease while a receiver took its time: another
    process claimed the alert meanwhile. The renewal finds it gone and stops the send,
    which records nothing: the alert is the other process's to send."""
    receiver = TricklingReceiver(slow=1)
    site.pages["/feed.xml"] = Page(rss([Item("Ahmad Massoud in Panjshir", site.url("/a/1"),
                                             "Talks.", "t1", datetime.now(UTC))]))
    project.hook(receiver.url("/hook"))
    project.settings["daemon"] = {"tick": "1s", "lease": "2s"}
    project.settings["defaults"] = {"full_text": False}
    project.sources = [{"name": "Feed", "feed": site.url("/feed.xml")}]
    config = project.config()
    store, thief = open_store(config), open_store(config)
    clock = FakeClock()
    runner = Runner(config, store, clock=clock)

    async def main() -> int:
        once = asyncio.ensure_future(runner.once())
        for _ in range(int(BOUND_S / 0.05)):
            if receiver.hits or once.done():
                break
            await asyncio.sleep(0.05)
        taken = await asyncio.to_thread(thief.claim_alerts, "thief",
                                        clock.now() + LEASE * 2, LEASE, ["hook"])
        assert len(taken) == 1, "the alert, its lease run out, is the thief's"
        return (await asyncio.wait_for(once, BOUND_S)).delivery.delivered

    try:
        with caplog.at_level(logging.WARNING):
            assert asyncio.run(main()) == 0
        [alert] = thief.alerts()
        assert (alert["status"], alert["attempts"]) == ("pending", 0), "nothing recorded"
        assert thief.renew_leases("thief", clock.now(), LEASE, alerts=[alert["id"]]) == \
            ([], []), "still the thief's"
    finally:
        store.close()
        thief.close()
        receiver.close()
    assert len(receiver.hits) == 1
    # stopped mid-send, not sent to the end and then refused (which logs "logged only")
    assert any("stopped, and its outcome is not recorded" in r.message
               and getattr(r, "channel", None) == "hook" for r in caplog.records)
