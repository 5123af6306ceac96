"""Live config: edits and SIGHUP apply without a restart; a broken edit keeps the old config."""

from __future__ import annotations

import json
import logging
import signal
from datetime import UTC, datetime
from typing import Any

import pytest

from tests import schema
from tests.conftest import WATCHLIST, Project
from tests.feeds import Item, rss
from tests.helpers import reload_after, wait_for_log
from tests.servers import Page, Receiver, Site


def test_edits_apply_live_and_broken_edits_are_rejected(project: Project, site: Site,
                                                        receiver: Receiver) -> None:
    now = datetime.now(UTC)
    site.pages["/feed.xml"] = Page(rss([Item("Atta Mohammad Noor speaks", site.url("/a/1"),
                                             "", "g1", now)]))
    project.hook(receiver.url("/hook"))
    project.settings["daemon"] = {"tick": "0.2s"}
    project.sources = [{"name": "Live", "feed": site.url("/feed.xml"), "interval": "0.5s"}]
    daemon, lines = project.run_logged()
    try:
        assert len(receiver.wait_for(1)) == 1

        # 1. A new watch item, written by editing the file: it takes effect live.
        watchlist: dict[str, Any] = {**WATCHLIST,
                                     "watch": [*WATCHLIST["watch"], {"name": "Yunus Qanuni"}]}
        project.watchlists = [watchlist]
        project.write()
        assert wait_for_log(lines, "config reloaded"), "\n".join(lines)
        site.pages["/feed.xml"] = Page(rss([Item("Yunus Qanuni returns", site.url("/a/2"), "",
                                                 "g2", now)]))
        assert len(receiver.wait_for(2)) == 2, "the new watch item did not alert"

        # 2. A broken edit is rejected with FILE:LINE:COL and the old config stays.
        path = project.config_dir / "sources.yaml"
        path.write_text("sources:\n  - {name: Live, feed: nowhere, intervall: 1s}\n")
        assert wait_for_log(lines, "config reload rejected"), "\n".join(lines)
        site.pages["/feed.xml"] = Page(rss([Item("Yunus Qanuni again", site.url("/a/3"), "",
                                                 "g3", now)]))
        assert len(receiver.wait_for(3)) == 3, "the running config must stay in force"
        rejected = "\n".join(line for line in lines if "config reload rejected" in line)
        assert f"{path}:2:" in rejected and "unknown key 'intervall'" in rejected

        # 3. SIGHUP applies a change (here: a second source) at once.
        site.pages["/other.xml"] = Page(rss([Item("Hanif Atmar in Doha", site.url("/a/4"), "",
                                                  "g4", now)]))
        watchlist["watch"].append({"name": "Hanif Atmar"})
        project.sources.append({"name": "Other", "feed": site.url("/other.xml")})
        project.write()
        daemon.send_signal(signal.SIGHUP)
        assert wait_for_log(lines, "SIGHUP: reloading the config"), "\n".join(lines)
        assert len(receiver.wait_for(4)) == 4
        assert json.loads(receiver.delivered()[3].body)["data"]["article"]["source"] == "Other"

        # 4. A new database path is refused until restart.
        project.settings["database"] = "../data/elsewhere.db"
        project.write()
        assert wait_for_log(lines, "database changed"), "\n".join(lines)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    assert daemon.returncode == 0
    assert not (project.root / "data" / "elsewhere.db").exists()

    # Each match records the config version that produced it.
    del project.settings["database"]
    versions = {m["config_version"] for m in schema.rows(project.store(),
        "SELECT config_version FROM matches")}
    assert len(versions) >= 2


def test_a_reload_failing_an_alert_check_keeps_the_running_config(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    """The alerts layer's checks (here an Apprise URL) guard a reload like the config's."""
    project.hook("http://127.0.0.1:9/hook")

    def add_bad_channel() -> None:
        project.settings["channels"]["chat"] = {"type": "apprise", "urls": ["nope://x"]}

    with caplog.at_level(logging.ERROR, logger="crawler.app.daemon"):
        assert reload_after(project, add_bad_channel)
    assert f"{project.config_dir / 'newswatch.yaml'}:" in caplog.text
    assert "Apprise does not understand URL number 1" in caplog.text
    assert "keeping the running config" in caplog.text
