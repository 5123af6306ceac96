"""Long commands show a progress bar on stderr on a terminal, and stay quiet otherwise:
in a pipe, a log, a cron mail, or with --json."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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
])
def test_a_long_command_shows_progress_on_a_terminal_only(
        project: Project, site: Site, command: tuple[str, ...], label: str) -> None:
    three_feeds(project, site)
    if command[0] == "backtest":
        project.cli("once", check=True)  # an archive of three articles to replay
    quiet = project.cli(*command, check=True)
    assert "3/3" not in quiet.stderr and label not in quiet.stderr
    assert "\x1b[" not in quiet.stderr, "no control codes in a pipe"
    shown = project.cli(*command, check=True, env=TERMINAL)
    assert label in shown.stderr and "3/3" in shown.stderr, shown.stderr
    assert "3/3" not in shown.stdout, "the bar goes to stderr"
    as_json = project.cli(*command, "--json", check=True, env=TERMINAL)
    assert "3/3" not in as_json.stderr and label not in as_json.stderr
