"""The operator commands: demo, sources test."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Project
from tests.feeds import Item, rss
from tests.helpers import newswatch_process
from tests.servers import Page, Site


@pytest.mark.slow
def test_demo_shows_alerts_flowing_without_network() -> None:
    result = newswatch_process("demo", env={"COLUMNS": "160", "PATH": ""})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "4 webhook(s) received" in out  # first pass: one per story, watchlists grouped
    assert "1 webhook(s) received" in out and "Hanif Atmar proposes" in out  # new item
    assert "0 webhook(s) received" in out  # nothing twice
    assert "afghan-opposition, joint-declaration-themes" in out
    assert "5 alert(s) delivered in all, none twice." in out
    assert "Remembering a commander" not in out.split("first pass")[1].split("a new item")[0]
    assert "WARNING" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_sources_test_checks_each_source_and_stores_nothing(project: Project,
                                                            site: Site) -> None:
    site.pages["/good.xml"] = Page(rss([Item("A", site.url("/a"))]))
    project.hook("http://127.0.0.1:9/unused")
    project.sources = [{"name": "Good", "feed": site.url("/good.xml")},
                       {"name": "Bad", "feed": site.url("/bad.xml")}]
    result = project.cli("sources", "test", "--json")
    assert result.returncode == 1
    found = {r["source"]: r for r in json.loads(result.stdout)}
    assert found["Good"]["error"] is None and found["Good"]["items"] == 1
    assert found["Bad"]["error"] == f"HTTP 404 from {site.url('/bad.xml')}"
    only_good = project.cli("sources", "test", "Good")
    assert only_good.returncode == 0 and "Good" in only_good.stdout
    assert not (project.root / "data" / "test.db").exists(), "a test stores nothing"
    assert project.cli("sources", "test", "Nope").returncode == 2
    typo = project.cli("sources", "test", "Good", "God")
    assert typo.returncode == 2 and "no enabled source named 'God'; did you mean 'Good'?" \
        in typo.stderr
