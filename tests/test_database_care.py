"""The database is looked after: backups, migrations, retention, a full disk, two daemons."""

from __future__ import annotations

import asyncio
import itertools
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from crawler.app.daemon import Runner
from crawler.core.errors import DiskFullError
from crawler.store import SQLiteStore
from crawler.store.sqlite import STEPS
from tests import schema
from tests.conftest import FakeClock, Project
from tests.feeds import Item, rss
from tests.servers import Page, Receiver, Site


def many_items(site: Site, count: int, prefix: str = "n") -> bytes:
    now = datetime.now(UTC)
    return rss([Item(f"Atta Mohammad Noor statement {prefix}{n}", site.url(f"/{prefix}/{n}"),
                     "", f"{prefix}{n}", now) for n in range(count)])


def test_backup_while_the_daemon_writes(project: Project, site: Site,
                                        receiver: Receiver, tmp_path: Path) -> None:
    site.pages["/feed.xml"] = Page(many_items(site, 50))
    project.hook(receiver.url("/hook"))
    project.settings["daemon"] = {"tick": "0.2s"}
    project.sources = [{"name": "Busy", "feed": site.url("/feed.xml"), "interval": "0.2s"}]
    daemon = project.popen("run")
    try:
        receiver.wait_for(1)
        copies = []
        for n in range(3):  # the feed keeps growing while copies are taken
            site.pages["/feed.xml"] = Page(many_items(site, 50 + 20 * (n + 1)))
            copy = tmp_path / f"copy{n}.db"
            result = project.cli("backup", str(copy))
            assert result.returncode == 0, result.stderr
            copies.append(copy)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    for copy in copies:
        assert schema.value(copy, "PRAGMA integrity_check") == "ok"
        articles = schema.value(copy, "SELECT count(*) FROM articles")
        keys = schema.value(copy, "SELECT count(*) FROM article_keys")
        assert articles >= 1 and keys == 2 * articles  # consistent: URL + GUID each
    refused = project.cli("backup", str(copies[0]))
    assert refused.returncode != 0 and "exists" in refused.stderr


def test_migration_keeps_a_backup_of_the_old_schema(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    old.table("migrations").create({"version": int, "name": str, "applied_at": str},
                                   pk="version")
    STEPS[0].apply(old)
    old.table("migrations").insert({"version": 1, "name": "v1", "applied_at": "x"})
    old.conn.close()

    assert SQLiteStore(path).schema_version() == len(STEPS) > 1
    assert schema.value(tmp_path / "old.db.v1.bak", "SELECT max(version) FROM migrations") == 1


def test_retention_forgets_old_delivered_alerts_only(project: Project, site: Site,
                                                     receiver: Receiver) -> None:
    site.pages["/feed.xml"] = Page(many_items(site, 3))
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "F", "feed": site.url("/feed.xml")}]
    clock = FakeClock()
    runner = Runner(project.config(), project.store(), clock=clock)
    receiver.script = [(400, {})]  # one alert dies
    asyncio.run(runner.once())
    assert runner.store.alert_counts() == {"delivered": 2, "dead": 1}
    assert runner.store.maintain(clock.now(), timedelta(days=90)) == 0
    clock.advance(91 * 86400)
    assert runner.store.maintain(clock.now(), timedelta(days=90)) == 2
    assert runner.store.alert_counts() == {"dead": 1}
    # The articles and their dedup keys stay: the same items never alert again.
    asyncio.run(runner.once())
    assert len(receiver.delivered()) == 2


def test_full_disk_stops_the_daemon_safely(project: Project, site: Site,
                                           receiver: Receiver) -> None:
    site.pages["/feed.xml"] = Page(many_items(site, 5))
    project.hook(receiver.url("/hook"))
    project.settings["daemon"] = {"tick": "0.1s"}
    project.sources = [{"name": "F", "feed": site.url("/feed.xml"), "interval": "0.1s"}]
    store = project.store()
    runner = Runner(project.config(), store)

    async def go() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(60, stop.set)  # a hang catcher only
        await runner.run(stop)

    asyncio.run(runner.once())  # five articles stored while there is room
    assert schema.value(store, "SELECT count(*) FROM articles") == 5
    schema.limit_size(store, 2)  # the "disk" is nearly full
    site.pages["/feed.xml"] = Page(many_items(site, 400, "big"))
    with pytest.raises(DiskFullError, match="is full"):
        asyncio.run(go())
    # Nothing half-written: every stored article has both its keys and its alert.
    assert schema.value(store, "SELECT count(*) FROM articles") >= 5
    assert schema.value(
        store, "SELECT count(*) FROM articles a WHERE (SELECT count(*) FROM article_keys k "
        "WHERE k.article_id = a.id) != 2 OR NOT EXISTS (SELECT 1 FROM outbox o "
        "WHERE o.article_id = a.id)") == 0
    assert schema.value(store, "SELECT count(*) FROM outbox WHERE article_id NOT IN "
                        "(SELECT id FROM articles)") == 0


def test_two_daemons_share_one_database(project: Project, site: Site,
                                        receiver: Receiver) -> None:
    feeds = 6
    for n in range(feeds):
        site.pages[f"/f{n}.xml"] = Page(many_items(site, 5, f"f{n}-"))
    project.hook(receiver.url("/hook"))
    project.settings["daemon"] = {"tick": "0.2s"}
    project.sources = [{"name": f"F{n}", "feed": site.url(f"/f{n}.xml"), "interval": "2s"}
                       for n in range(feeds)]
    first, second = project.popen("run"), project.popen("run")
    try:
        assert len(receiver.wait_for(feeds * 5, timeout=60)) == feeds * 5
        for n in range(feeds):  # a second wave while both run
            site.pages[f"/f{n}.xml"] = Page(many_items(site, 10, f"f{n}-"))
        assert len(receiver.wait_for(feeds * 10, timeout=60)) == feeds * 10
    finally:
        for daemon in (first, second):
            daemon.send_signal(signal.SIGTERM)
        logs = [daemon.communicate(timeout=30)[1] for daemon in (first, second)]
    for daemon, log in zip((first, second), logs, strict=True):
        assert daemon.returncode == 0, log[-2000:]
        assert "daemon started" in log, "both daemons ran side by side"
    ids = [h.headers["webhook-id"] for h in receiver.delivered()]
    assert len(ids) == len(set(ids)) == feeds * 10, "no alert sent twice"
    # No source was polled twice in one interval: successive polls of a feed are
    # never closer than its 2 s interval allows (a slow machine only spreads them).
    for n in range(feeds):
        times = [h.at for h in site.requests_to(f"/f{n}.xml")]
        assert len(times) >= 2, f"F{n} polled {len(times)} time(s)"
        assert min(b - a for a, b in itertools.pairwise(times)) > 1.5
    owners = {r["lease_owner"] for r in SQLiteStore(project.config().database_path).sources()}
    assert owners == {None}, "both daemons gave their leases back"
