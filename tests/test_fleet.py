"""The daemons on one database: ``status`` shows which run, with which config version,
and warns when the live ones differ; wake-ups from the store make one tick per burst."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from crawler.app.fleet import GONE_AFTER, Wakeups
from crawler.core.clock import SystemClock
from crawler.store.records import DaemonFacts
from tests.conftest import Project
from tests.postgres import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def on(request: pytest.FixtureRequest, project: Project) -> Iterator[Project]:
    """The project on each backend."""
    project.hook("")
    if request.param == "sqlite":
        yield project
        return
    with fresh_database() as dsn:
        project.settings["database"] = dsn
        yield project


def seen(project: Project, owner: str, host: str, pid: int, config: str,
         ago: timedelta = timedelta(0)) -> None:
    now = SystemClock().now()
    store = project.store()
    try:
        store.daemon_seen(owner, now - ago, DaemonFacts(host, pid, now - ago - ago, config,
                                                        "0.1.0", 2))
    finally:
        store.close()


def test_status_shows_the_daemons_and_warns_when_their_configs_differ(on: Project) -> None:
    here = on.config().version
    seen(on, "host-a/1:123:aa", "host-a", 123, here)
    seen(on, "host-b/1:456:bb", "host-b", 456, "9c1d2e3f4a5b")
    shown = on.cli("status")
    assert shown.returncode == 0, shown.stderr
    assert "daemons" in shown.stdout
    assert "host-a:123" in shown.stdout and "host-b:456" in shown.stdout
    assert f"{here} (this config)" in shown.stdout and "9c1d2e3f4a5b" in shown.stdout
    warning = " ".join(shown.stderr.split())
    assert (f"daemons run different configs: host-a:123 runs {here}, host-b:456 runs "
            "9c1d2e3f4a5b; reload (SIGHUP) or restart them") in warning

    printed = json.loads(on.cli("status", "--json", check=True).stdout)
    assert printed["config_version"] == here
    assert [(d["host"], d["pid"], d["config_version"], d["live"], d["workers"])
            for d in printed["daemons"]] == [("host-a", 123, here, True, 2),
                                             ("host-b", 456, "9c1d2e3f4a5b", True, 2)]
    assert printed["warnings"] == [warning[len("warning: "):]]


def test_status_is_quiet_when_the_live_daemons_agree_and_shows_the_gone(
        on: Project) -> None:
    here = on.config().version
    seen(on, "host-a/1:123:aa", "host-a", 123, here)
    seen(on, "host-a/1:124:cc", "host-a", 124, here)
    seen(on, "host-b/1:456:bb", "host-b", 456, "9c1d2e3f4a5b",  # killed an hour ago
         ago=timedelta(hours=1))
    shown = on.cli("status")
    assert shown.returncode == 0, shown.stderr
    assert "different configs" not in shown.stderr
    rows = {line.split()[1]: line for line in shown.stdout.splitlines()
            if "host-" in line}
    assert "running" in rows["host-a:123"] and "running" in rows["host-a:124"]
    assert "gone" in rows["host-b:456"]
    printed = json.loads(on.cli("status", "--json", check=True).stdout)
    assert [d["live"] for d in printed["daemons"]] == [True, True, False]
    assert printed["warnings"] == []


def test_status_says_when_no_daemon_runs(project: Project) -> None:
    project.hook("")
    shown = project.cli("status", check=True)
    assert "daemons: none running" in shown.stdout
    assert json.loads(project.cli("status", "--json", check=True).stdout)["daemons"] == []


def test_a_daemon_is_gone_after_three_missed_heartbeats(on: Project) -> None:
    seen(on, "host-a/1:123:aa", "host-a", 123, "v", ago=GONE_AFTER + timedelta(seconds=5))
    printed = json.loads(on.cli("status", "--json", check=True).stdout)
    assert [d["live"] for d in printed["daemons"]] == [False]


def test_a_burst_of_wake_ups_makes_one_tick_of_each_kind() -> None:
    ticks: list[str] = []

    async def tick(kind: str) -> None:
        ticks.append(kind)

    async def burst() -> Wakeups:
        loop = asyncio.get_running_loop()
        wakeups = Wakeups(loop, {"sources": lambda: tick("sources"),
                                 "alerts": lambda: tick("alerts")})
        for _ in range(100):
            for kind in ("sources", "alerts", "unknown"):
                wakeups.notify(kind)
        for _ in range(200):  # bounded: the settle time, then the ticks
            if len(ticks) >= 2:
                break
            await asyncio.sleep(0.05)
        assert sorted(ticks) == ["alerts", "sources"]
        assert wakeups.timer is None and not wakeups.pending, "nothing more to come"

        wakeups.notify("sources")  # a later wake-up: a tick of its own
        for _ in range(200):
            if len(ticks) >= 3:
                break
            await asyncio.sleep(0.05)
        assert ticks[2:] == ["sources"]

        await wakeups.close()
        wakeups.notify("sources")  # after close: ignored
        await asyncio.sleep(0)
        assert wakeups.timer is None and not wakeups.pending
        return wakeups

    asyncio.run(burst())
    assert len(ticks) == 3
