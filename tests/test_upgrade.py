"""A config directory from the previous release keeps working unedited.

``tests/fixtures/release-0.1/config`` is the shipped ``config/`` of release 0.1, frozen.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crawler.config import Source, load_config
from crawler.store import PollRecord, SQLiteStore
from crawler.store.records import DaemonFacts
from crawler.store.sqlite import STEPS as SQLITE_STEPS
from tests.helpers import Project, newswatch

RELEASE_0_1 = Path(__file__).parent / "fixtures" / "release-0.1"


def copy_config(tmp_path: Path) -> Path:
    """A writable copy, so its relative database path lands in tmp_path."""
    config = tmp_path / "config"
    shutil.copytree(RELEASE_0_1 / "config", config)
    return config


def test_the_previous_release_config_loads_unchanged(tmp_path: Path) -> None:
    config = load_config(copy_config(tmp_path))
    assert len(config.sources) >= 10
    assert {w.name for w in config.watchlists} >= {"afghan-opposition"}
    assert config.database_path == tmp_path / "data" / "newswatch.db"


def test_the_previous_release_config_passes_check_and_still_matches(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    checked = newswatch("--config", str(config), "check", "--json")
    assert checked.returncode == 0, checked.stderr
    matched = newswatch("--config", str(config), "match", "--json", "--text",
                        "Ahmad Massoud and Atta Mohammad Noor met in Dushanbe.")
    assert matched.returncode == 0, matched.stderr
    watches = {m["watch"] for m in json.loads(matched.stdout)["matches"]}
    assert {"Ahmad Massoud", "Atta Mohammad Noor"} <= watches


def test_the_previous_release_config_and_database_work_together(tmp_path: Path) -> None:
    """Release 0.1's config with a database of its schema (v6): every read command works,
    and what was stored is still shown."""
    config = copy_config(tmp_path)
    (tmp_path / "data").mkdir()
    shutil.copy(Path(__file__).parent / "fixtures" / "store" / "v6.db",
                tmp_path / "data" / "newswatch.db")
    shown = {}
    for command in ("matches", "stories", "alerts", "status", "mutes", "rules"):
        result = newswatch("--config", str(config), command, "--json")
        assert result.returncode == 0, (command, result.stderr)
        shown[command] = json.loads(result.stdout)
    assert shown["matches"]["articles"] and shown["alerts"]
    assert shown["matches"]["total"] == len(shown["matches"]["articles"])
    assert all(m["watchlist"] for row in shown["matches"]["articles"] for m in row["matches"])
    assert shown["mutes"] == [] and shown["rules"] == []


def test_source_rows_of_the_previous_release_keep_their_state(project: Project) -> None:
    """Rows as release 0.1 keyed its sources (``sitemap: auto`` as ``auto:`` and the site,
    a crawl's start pages joined by a space, a feed that a permanent redirect moved) are
    the same sources to this release: none due at once, the redirect kept."""
    now = datetime(2026, 11, 28, 10, tzinfo=UTC)
    site = "http://news.example/"
    release_0_1 = [Source("Map", f"auto:{site}", 900, 20, "ua", 1000, kind="sitemap"),
                   Source("Pages", f"{site}p/ {site}q/", 900, 20, "ua", 1000, kind="crawl"),
                   Source("Feed", f"{site}feed", 900, 20, "ua", 1000)]
    project.hook("http://127.0.0.1:9/unused")
    project.sources = [{"name": "Map", "sitemap": "auto", "site": site},
                       {"name": "Pages", "crawl": {"start": [f"{site}p/", f"{site}q/"],
                                                   "follow": ["/a/"]}},
                       {"name": "Feed", "feed": f"{site}feed"}]
    config = project.config()
    store = SQLiteStore(config.database_path)
    store.sync_sources(release_0_1, now)
    for state in store.claim_sources("old", now, timedelta(minutes=5)):
        store.record_poll(state.name, "old", now, PollRecord(
            now + timedelta(hours=1), etag='"v1"',
            move_to=f"{site}rss" if state.name == "Feed" else None))
    before = store.sources()

    store.sync_sources(config.active_sources(), now + timedelta(minutes=1))

    assert store.sources() == before
    assert store.claim_sources("new", now + timedelta(minutes=1), timedelta(minutes=5)) == []
    assert {r["name"]: r["url"] for r in before}["Feed"] == f"{site}rss"
    store.close()


def test_db_migrate_brings_the_previous_release_database_up_and_says_so(
        tmp_path: Path) -> None:
    """The upgrade step between stopping every daemon and starting them: ``db migrate``
    reports the versions, does nothing the second time, and warns about a daemon still
    running on the database."""
    config = copy_config(tmp_path)
    (tmp_path / "data").mkdir()
    database = tmp_path / "data" / "newswatch.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "store" / "v6.db", database)
    current = len(SQLITE_STEPS)

    first = newswatch("--config", str(config), "db", "migrate")
    assert first.returncode == 0, first.stderr
    assert f"migrated from schema 6 to {current}" in first.stdout
    again = newswatch("--config", str(config), "db", "migrate", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) | {"database": ""} == {
        "database": "", "backend": "sqlite", "from": current, "to": current,
        "migrated": False, "warnings": []}

    store = SQLiteStore(database)
    now = datetime.now(UTC)
    store.daemon_seen("crawler-1/1:4121:abcdef", now, DaemonFacts(
        "crawler-1", 4121, now, "c59c69daddde", "0.2", 1))
    store.close()
    running = newswatch("--config", str(config), "db", "migrate")
    assert running.returncode == 0, running.stderr
    assert "nothing to do" in running.stdout
    assert "1 daemon(s) still running on this database (crawler-1:4121)" in running.stderr
