"""Real daemons on one database: their rows say who runs with which config, and on
PostgreSQL an idle daemon is woken (LISTEN/NOTIFY) when work becomes due early: a
``sources poll``, an ``alerts retry``, a reload elsewhere that enables a source.

Every daemon here ticks every 50 s (just under the longest lease a tick may have): only a
wake-up explains work done within the tests' deadlines (bounds on a wait, below the time
left to the next tick)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crawler.app.daemon import process_owner
from crawler.core.clock import SystemClock
from crawler.store.records import DaemonFacts
from tests.conftest import Project
from tests.feeds import Item, rss
from tests.helpers import free_port, wait_until
from tests.postgres import fresh_database
from tests.servers import Page, Receiver, Site
from tests.test_observability import get

pytestmark = pytest.mark.slow

IDLE = {"tick": "50s", "workers": 0}
#: How long a woken daemon may take: below the time left to its next tick.
WOKEN_S = 20.0


@pytest.fixture
def dsn() -> Iterator[str]:
    with fresh_database() as made:
        yield made


def _stop(daemon: subprocess.Popen[str]) -> str:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
    _, stderr = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, stderr
    return stderr


def _feed(site: Site, path: str, title: str = "Atta Mohammad Noor speaks") -> str:
    item = Item(title, site.url(f"{path}/1"), "", f"g{path}", datetime.now(UTC))
    site.pages[path] = Page(rss([item]))
    return site.url(path)


def _on(project: Project, dsn: str, **settings: Any) -> Project:
    project.settings.update({"database": dsn, "daemon": IDLE, **settings})
    return project


def _polled(site: Site, path: str, times: int) -> Callable[[], bool]:
    return lambda: len(site.requests_to(path)) >= times


def _ended(project: Project, name: str) -> Callable[[], bool]:
    """Whether a poll of source ``name`` has ended (not just begun): a poll in flight
    writes its own next check over one a test makes."""
    def check() -> bool:
        store = project.store()
        try:
            return any(r["name"] == name and r["last_checked_at"] and not r["lease_owner"]
                       for r in store.sources())
        finally:
            store.close()
    return check


@pytest.mark.postgres
def test_sources_poll_wakes_an_idle_daemon(project: Project, site: Site, dsn: str) -> None:
    project.hook("")
    project.sources = [{"name": "Live", "feed": _feed(site, "/feed.xml"), "interval": "1h"}]
    daemon = _on(project, dsn).popen("run")
    try:
        assert wait_until(_polled(site, "/feed.xml", 1)), "the first poll, at start"
        assert wait_until(_ended(project, "Live"))
        done = project.cli("sources", "poll", "Live", write=False)
        assert done.returncode == 0, done.stderr
        assert wait_until(_polled(site, "/feed.xml", 2), timeout=WOKEN_S), \
            "the daemon was not woken (its next tick is 50 s after its start)"
    finally:
        _stop(daemon)


@pytest.mark.postgres
def test_alerts_retry_wakes_an_idle_daemon(project: Project, site: Site, receiver: Receiver,
                                           dsn: str) -> None:
    receiver.default = (400, {})  # refused for good: the alert is dead at once
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "Live", "feed": _feed(site, "/feed.xml"), "interval": "1h"}]
    daemon = _on(project, dsn).popen("run")
    try:
        assert wait_until(lambda: _counts(project).get("dead") == 1), _counts(project)
        receiver.default = (200, {})
        done = project.cli("alerts", "retry", "--dead", write=False)
        assert done.returncode == 0, done.stderr
        assert "1 alert(s) requeued" in done.stdout
        assert len(receiver.wait_for(1, timeout=WOKEN_S)) == 1, \
            "the daemon was not woken (its next tick is 50 s after its start)"
    finally:
        _stop(daemon)


def _counts(project: Project) -> dict[str, int]:
    store = project.store()
    try:
        return store.alert_counts()
    finally:
        store.close()


@pytest.mark.postgres
def test_a_reload_on_one_daemon_wakes_another(tmp_path: Path, site: Site,
                                              dsn: str) -> None:
    """Daemon B's config is edited to enable source S2; daemon A, idle, polls it at
    once. B cannot: its one slot (``concurrency: 1``) is held by a feed that does not
    answer. B's config starts with S2 disabled, which B's start makes inactive. That feed
    is on another host: B holds its host's turn while it hangs, and every daemon waits
    for a host's turn (the hosts table), so on S2's host it would hold A back too."""
    release = threading.Event()

    def hang(write: Callable[[bytes], None]) -> None:
        release.wait(60)  # bounded: B's poll of it ends when the test does

    elsewhere = Site("127.0.0.2")
    elsewhere.pages["/hang.xml"] = Page(b"", stream=hang)
    s1, s2 = _feed(site, "/s1.xml"), _feed(site, "/s2.xml", "Weather in Kabul")
    a = _on(Project(tmp_path / "a"), dsn)
    a.hook("")
    a.sources = [{"name": "S1", "feed": s1, "interval": "1h"},
                 {"name": "S2", "feed": s2, "interval": "1h"}]
    b = _on(Project(tmp_path / "b"), dsn, daemon={**IDLE, "concurrency": 1})
    b.hook("")
    b.sources = [{"name": "S1", "feed": s1, "interval": "1h"},
                 {"name": "S2", "feed": s2, "interval": "1h", "enabled": False},
                 {"name": "Hang", "feed": elsewhere.url("/hang.xml"), "interval": "1h",
                  "timeout": "2m"}]
    first = a.popen("run")
    second: subprocess.Popen[str] | None = None
    try:
        assert wait_until(_polled(site, "/s1.xml", 1)) and wait_until(_polled(site, "/s2.xml", 1))
        assert wait_until(_ended(a, "S2"))
        second = b.popen("run")
        assert wait_until(_polled(elsewhere, "/hang.xml", 1)), "B holds its one slot"
        b.sources[1]["enabled"] = True
        b.write()  # B's watcher reloads it: S2 is active again, and due now
        assert wait_until(_polled(site, "/s2.xml", 2), timeout=WOKEN_S), \
            "A was not woken (its next tick is 50 s after its start; B is busy)"
        assert not release.is_set() and len(elsewhere.requests_to("/hang.xml")) == 1, \
            "B was still busy: A polled S2"
    finally:
        release.set()
        _stop(first)
        if second is not None:
            _stop(second)
        elsewhere.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield "../data/test.db"
        return
    with fresh_database() as made:
        yield made


def _daemons(project: Project) -> list[dict[str, Any]]:
    shown = project.cli("status", "--json", write=False)
    assert shown.returncode == 0, shown.stderr
    daemons: list[dict[str, Any]] = json.loads(shown.stdout)["daemons"]
    return daemons


def _seed(project: Project) -> None:
    """Rows a daemon finds at its start: one of a process of this host that has ended
    (forgotten at once), one of another host last seen two days ago (forgotten), one
    of another host gone ten minutes ago (kept, shown gone)."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    dead = f"{process_owner().partition(':')[0]}:{ended.pid}:dead00"  # this host's
    store = project.store()
    now = SystemClock().now()
    try:
        for owner, host, ago in ((dead, "here", timedelta(0)),
                                 ("far/1:7:old", "far", timedelta(days=2)),
                                 ("far/1:8:new", "far", timedelta(minutes=10))):
            store.daemon_seen(owner, now - ago, DaemonFacts(host, 7, now - ago, "v", "0.1", 0))
    finally:
        store.close()


def test_a_daemon_says_which_config_it_runs_and_leaves_no_row_at_a_clean_stop(
        project: Project, site: Site, database: str) -> None:
    port = free_port()
    project.hook("")
    project.sources = [{"name": "Live", "feed": _feed(site, "/feed.xml"), "interval": "1h"}]
    _on(project, database, http={"listen": f"127.0.0.1:{port}"})
    _seed(project)
    first = project.config().version
    daemon = project.popen("run")
    try:
        assert wait_until(lambda: len(_daemons(project)) == 2)
        by_pid = {d["pid"]: d for d in _daemons(project)}
        row, gone = by_pid[daemon.pid], by_pid[7]
        assert (row["config_version"], row["live"]) == (first, True)
        assert (gone["owner"], gone["live"]) == ("far/1:8:new", False)
        health = get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["config_version"] == first

        project.sources.append({"name": "Other", "feed": _feed(site, "/other.xml")})
        project.write()  # reloaded by the daemon's watcher: its row says so at once
        second = project.config().version
        assert second != first
        assert wait_until(lambda: {d["pid"]: d["config_version"] for d in _daemons(project)}
                          == {daemon.pid: second, 7: "v"}), "the row names the old config"
        assert get(f"http://127.0.0.1:{port}/healthz").json()["config_version"] == second
    finally:
        _stop(daemon)
    assert [d["owner"] for d in _daemons(project)] == ["far/1:8:new"], \
        "a clean stop removes the daemon's row"
