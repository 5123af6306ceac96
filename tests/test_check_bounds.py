"""Issue #12, findings 12 and 13: absurd arguments and values get a clear error and its
exit code (never a traceback), and a listener off loopback is warned of at check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.config import load_config
from tests.helpers import Project
from tests.test_config import SETTINGS, SOURCES, problems, write
from tests.test_hostile_config import newswatch, untraced

# --- finding 12: messages instead of tracebacks ------------------------------------------

@pytest.mark.parametrize("args", [
    ("stories", "--since", "9999999999d"),
    ("search", "Massoud", "--since", "9999999999d"),
    ("export", "--since", "9999999999d"),
    ("matches", "--limit", "99999999999999999999"),
    ("stories", "--limit", "99999999999999999999"),
    ("search", "Massoud", "--limit", "99999999999999999999"),
    ("alerts", "--limit", "99999999999999999999"),
    ("backtest", "--since", "9999999999d"),
    ("prune", "--older-than", "9999999999d"),
    ("match", "--url", "http://[::1"),
    ("match", "--url", "http://127.0.0.1:99999/"),
    ("sources", "add", "http://[::1"),
    ("sources", "add", "http://127.0.0.1:99999/"),
])
def test_absurd_arguments_are_usage_errors(project: Project, args: tuple[str, ...]) -> None:
    project.hook("")
    project.write()
    result = newswatch(project.config_dir, *args)
    said = untraced(result)
    assert result.returncode == 2, said
    assert "Invalid value" in said or "Error" in said


@pytest.mark.parametrize(("settings", "sources", "expected"), [
    (SETTINGS, SOURCES.replace("interval: 10m", "interval: 99999999999d"),
     "sources.yaml:2:90: interval: bad duration '99999999999d': at most 36500d"),
    (SETTINGS + "daemon: {tick: .inf}\n", SOURCES,
     "newswatch.yaml:6:16: tick: bad duration inf: at most 36500d"),
    (SETTINGS + "stories: {window: .nan}\n", SOURCES,
     "newswatch.yaml:6:19: window: bad duration nan: at most 36500d"),
    (SETTINGS + "retention: {articles: 1e30}\n", SOURCES,
     "newswatch.yaml:6:23: articles: bad duration 1e+30: at most 36500d"),
])
def test_durations_too_long_to_use_are_refused_at_check(tmp_path: Path, settings: str,
                                                        sources: str, expected: str) -> None:
    write(tmp_path, settings, sources)
    [found] = problems(tmp_path)
    assert found.startswith(expected), found
    # the longest one allowed is one the daemon can use (the feed is refused unfetched)
    write(tmp_path, sources='sources:\n  - {name: Near, feed: "http://127.0.0.1:9/feed.xml", '
                            'interval: 36500d}\n')
    untraced(newswatch(tmp_path, "once"))


def test_an_email_sender_with_a_line_break_is_refused_at_check(tmp_path: Path) -> None:
    settings = SETTINGS + ('  desk: {type: email, to: a@example.org, '
                           'from: "nw@example.org\\r\\nBcc: all@example.org", '
                           'smtp: {host: smtp.example.org}}\n')
    write(tmp_path, settings)
    assert problems(tmp_path) == [
        "newswatch.yaml:6:48: from: a line break or control character cannot be in an "
        "email header"]


@pytest.mark.parametrize(("digest", "expected"), [
    ("0 0 31 2 *", "bad digest '0 0 31 2 *': it never fires (no such day)"),
    ("0 0 31 4,6,9,11 *", "bad digest '0 0 31 4,6,9,11 *': it never fires (no such day)"),
    ("0 0 * * mon-", "bad digest '0 0 * * mon-': not a valid cron expression"),
])
def test_digest_schedules_that_never_fire_or_are_malformed_are_refused(
        tmp_path: Path, digest: str, expected: str) -> None:
    settings = SETTINGS.replace('secret: "${NW_TEST_SECRET:-}"',
                                f'secret: "${{NW_TEST_SECRET:-}}", digest: "{digest}"')
    write(tmp_path, settings)
    [found] = problems(tmp_path)
    assert found.startswith("newswatch.yaml:5:") and f"digest: {expected}" in found, found
    # a day that comes only in leap years still fires
    write(tmp_path, settings.replace(digest, "0 0 29 2 *"))
    load_config(tmp_path)


# --- finding 13: a listener off loopback is warned of ------------------------------------

@pytest.mark.parametrize(("listen", "open_"), [
    ("0.0.0.0:9108", True), ("[::]:9108", True), ("192.0.2.7:9108", True),
    ("metrics.example.org:9108", True), ("127.0.0.1:9108", False), ("[::1]:9108", False),
    ("localhost:9108", False), ("127.0.0.53:9108", False)])
def test_check_warns_when_the_listener_is_not_on_loopback(tmp_path: Path, listen: str,
                                                          open_: bool) -> None:
    write(tmp_path, SETTINGS + f'http: {{listen: "{listen}"}}\n')
    result = newswatch(tmp_path, "check")
    assert result.returncode == 0, untraced(result)
    checked = json.loads(newswatch(tmp_path, "check", "--json").stdout)
    if not open_:
        assert checked["warnings"] == [] and "warning" not in result.stderr
        return
    warning = (f"{tmp_path / 'newswatch.yaml'}:6:16: listen: {listen} is not a loopback "
               "address: /healthz is open to anyone who can reach it, /metrics to holders "
               "of http.metrics_token and the Atom feeds to holders of their tokens "
               "(newswatch feeds); listen on 127.0.0.1 behind a proxy unless that is meant")
    assert checked["warnings"] == [warning]
    assert warning.replace(": listen:", ": warning: listen:", 1) in result.stderr
