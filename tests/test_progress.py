"""Long commands show a progress bar on stderr on a terminal, and stay quiet otherwise:
in a pipe, a log, a cron mail, or with --json."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crawler.config import load_config
from tests.conftest import Project
from tests.feeds import Item, rss
from tests.newssite import XML
from tests.servers import Page, Site

#: What rich reads to take stderr for a terminal (its is_terminal and is_interactive).
TERMINAL = {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1",
            "TERM": "xterm"}


def three_feeds(project: Project, site: Site) -> None:
    """Three feeds of one item each, naming no watch item (no alert to deliver)."""
    project.hook("http://127.0.0.1:9/unused")
    project.sources = []
    for n in (1, 2, 3):
        site.pages[f"/feed-{n}.xml"] = Page(rss([Item(
            f"Snow closes road {n}", site.url(f"/weather/{n}"), f"Snow in valley {n}.",
            f"weather-{n}", datetime.now(UTC))]), content_type=XML)
        project.sources.append({"name": f"Weather {n}", "feed": site.url(f"/feed-{n}.xml")})


@pytest.mark.parametrize(("command", "label"), [
    (("sources", "test"), "testing"),
    (("once",), "polling"),
    (("backtest", "--since", "1d"), "replaying"),
    (("watchlists", "edit", "afghan-opposition", "Atta Mohammad Noor", "--add-alias", "Snow",
      "--preview", "--dry-run"), "previewing"),
])
def test_a_long_command_shows_progress_on_a_terminal_only(
        project: Project, site: Site, command: tuple[str, ...], label: str) -> None:
    three_feeds(project, site)
    if command[0] in ("backtest", "watchlists"):
        project.cli("once", check=True)  # an archive of three articles to replay
    quiet = project.cli(*command, check=True)
    assert "3/3" not in quiet.stderr and label not in quiet.stderr
    assert "\x1b[" not in quiet.stderr, "no control codes in a pipe"
    shown = project.cli(*command, check=True, env=TERMINAL)
    assert label in shown.stderr and "3/3" in shown.stderr, shown.stderr
    assert "3/3" not in shown.stdout, "the bar goes to stderr"
    as_json = project.cli(*command, "--json", check=True, env=TERMINAL)
    assert "3/3" not in as_json.stderr and label not in as_json.stderr


def test_import_tests_the_new_feeds_with_progress_and_leaves_out_the_dead(
        project: Project, site: Site) -> None:
    three_feeds(project, site)
    feeds = [*project.sources, {"name": "Gone", "feed": site.url("/gone.xml")}]
    project.sources = feeds[:1]  # Weather 1 is there already
    opml = project.root / "reader.opml"
    opml.write_text('<opml version="2.0"><body>' + "".join(
        f'<outline text="{f["name"]}" xmlUrl="{f["feed"]}"/>' for f in feeds)
        + "</body></opml>")

    quiet = project.cli("sources", "import", str(opml), check=True)
    assert "imported 3 feed(s), skipped 1 already present" in quiet.stdout
    assert site.hits == [], "without --test, nothing is fetched"

    tested = project.cli("sources", "import", str(opml), "--test", check=True, env=TERMINAL)
    assert "testing" in tested.stderr and "3/3" in tested.stderr, tested.stderr
    assert f"left out Gone ({site.url('/gone.xml')}): " in tested.stderr
    assert ("imported 2 feed(s), skipped 1 already present, left out 1 that did not "
            "answer with a feed") in tested.stdout
    names = [s.name for s in load_config(project.config_dir).sources]
    assert names == ["Weather 1", "Weather 2", "Weather 3"]
