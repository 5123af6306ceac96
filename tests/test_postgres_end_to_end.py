"""``newswatch once`` on PostgreSQL through the real CLI: local feeds in, alerts queued
and sent, and ``matches``, ``stories`` and ``search`` printing what they print on SQLite
for the same input."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.store.sqlite import STEPS
from tests.conftest import Project
from tests.feeds import Item, rss
from tests.helpers import free_port
from tests.postgres import fresh_database
from tests.servers import Page, Receiver, Site
from tests.test_observability import get

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: Times differ between the two runs by the seconds between them.
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?Z?")


def serve(site: Site, extra: list[Item] | None = None) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    base = site.url("")
    text = ("Ahmad Massoud met elders in Panjshir to discuss the winter aid convoy and the "
            "reopening of the Salang pass, officials said on Wednesday.")
    site.pages["/rss.xml"] = Page(rss([
        Item("Ahmad Masoud calls for intra-Afghan dialogue", f"{base}/a/1", text, "r1", now),
        Item("Panjshir elders meet Massoud", f"{base}/a/2", text, "r2", now),  # a copy
        Item("Atta Muhammad Nur meets envoys", f"{base}/a/3",
             "Balkh's former governor spoke in Tashkent.", "r3", now),
        Item("احمد مسعود در پنجشیر", f"{base}/a/4", "احمد مسعود با بزرگان دیدار کرد.", "r4",
             now),
        Item("Weather in Kabul", f"{base}/a/5", "Snow is expected.", "r5", now),
        *(extra or []),
    ]))


@pytest.fixture
def dsn() -> Iterator[str]:
    with fresh_database() as made:
        yield made


def configure(project: Project, site: Site, receiver: Receiver, database: str) -> None:
    project.hook(receiver.url("/hook"))
    project.settings["database"] = database
    project.sources = [{"name": "RSS One", "feed": site.url("/rss.xml"), "full_text": False}]


def shown(project: Project, *args: str) -> str:
    return _TIME.sub("TIME", project.cli(*args, check=True).stdout)


def test_once_on_postgresql_prints_what_sqlite_prints(tmp_path: Path, site: Site,
                                                      receiver: Receiver, dsn: str) -> None:
    serve(site)
    on_sqlite, on_postgres = Project(tmp_path / "sqlite"), Project(tmp_path / "postgres")
    configure(on_sqlite, site, receiver, "../data/test.db")
    configure(on_postgres, site, receiver, dsn)

    first = on_postgres.cli("once", check=True)
    assert "RSS One" in first.stdout
    delivered = len(receiver.delivered())
    assert delivered >= 2, first.stdout
    store = on_postgres.store()
    try:
        assert store.alert_counts() == {"delivered": delivered}
        assert len(store.archive(datetime(2000, 1, 1, tzinfo=UTC))) == 5
    finally:
        store.close()
    assert not (on_postgres.root / "data").exists(), "nothing written beside the config"

    on_sqlite.cli("once", check=True)
    assert len(receiver.delivered()) == 2 * delivered, "the same alerts from SQLite"
    for args in (("matches",), ("matches", "--json"), ("stories",), ("stories", "--json"),
                 ("search", "massoud"), ("search", "--json", "mass* NOT balkh"),
                 ("search", "پنجشير"), ("search", "--watch", "Ahmad Massoud"),
                 ("alerts",)):
        printed = shown(on_postgres, *args)
        assert printed == shown(on_sqlite, *args), args
        expected = ("delivered",) if args == ("alerts",) else ("Massoud", "مسعود")
        assert any(word in printed for word in expected), (args, printed)

    on_postgres.cli("once", check=True)
    assert len(receiver.delivered()) == 2 * delivered, "a second pass sends nothing"

    # a later poll: new stories are numbered on from the last, on both
    later = datetime.now(UTC)
    serve(site, [Item("Dostum and Atta Mohammad Noor sign a declaration", site.url("/a/6"),
                      "The two leaders signed in Mazar-i-Sharif.", "r6", later),
                 Item("Rain in Herat", site.url("/a/7"), "Floods are feared.", "r7", later)])
    for project in (on_postgres, on_sqlite):
        project.cli("once", check=True)
    assert shown(on_postgres, "stories", "--json") == shown(on_sqlite, "stories", "--json")


def test_a_daemon_on_postgresql_reports_its_database_and_never_its_password(
        project: Project, site: Site, receiver: Receiver, dsn: str) -> None:
    """The test server trusts local connections, so a password in the DSN is accepted
    unused: enough to show it appears in no log line, ``status`` or ``/healthz``."""
    serve(site)
    secret = "pw-never-shown-7f3a"
    with_password = dsn.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    assert secret in with_password, "tests/postgres.py gives postgresql://postgres@…"
    configure(project, site, receiver, with_password)
    port = free_port()
    project.settings["daemon"] = {"tick": "0.2s"}
    project.settings["http"] = {"listen": f"127.0.0.1:{port}"}
    daemon = project.popen("run")
    try:
        receiver.wait_for(2)
        health = get(f"http://127.0.0.1:{port}/healthz")
        assert health.status_code == 200
        database = health.json()["database"]
        assert database["backend"] == "postgresql" and database["connected"]
        assert database["location"].startswith("postgresql://postgres:***@127.0.0.1")
        assert secret not in health.text
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, stderr
    assert "postgresql://postgres:***@" in stderr and secret not in stderr
    status = project.cli("status", check=True)
    assert "(postgresql)" in status.stdout and "RSS One" in status.stdout
    assert secret not in status.stdout + status.stderr


def test_db_migrate_creates_the_schema_on_an_empty_postgresql_database(
        project: Project, receiver: Receiver, dsn: str) -> None:
    project.hook(receiver.url("/hook"))
    project.settings["database"] = dsn
    first = project.cli("db", "migrate", "--json")
    assert first.returncode == 0, first.stderr
    found = json.loads(first.stdout)
    assert (found["backend"], found["from"], found["to"], found["migrated"]) == (
        "postgresql", 0, len(STEPS), True)
    again = project.cli("db", "migrate")
    assert again.returncode == 0, again.stderr
    assert f"is at schema {len(STEPS)}, this newswatch's: nothing to do" in again.stdout
