"""Issue #12, findings 1 and 6: remote text written into sources.yaml is never expanded
and never makes it unreadable, and a broken config is a located error (never a traceback,
never a stopped daemon)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.dispatch import Dispatcher
from crawler.app.daemon import Runner
from crawler.app.pipeline import Pipeline
from crawler.config import Config, load_config
from tests.feeds import Item, rss
from tests.helpers import Project, reload_after
from tests.helpers import newswatch as run_cli
from tests.newssite import HTML
from tests.servers import Page, Site
from tests.test_config import SETTINGS, SOURCES, WATCHLISTS, problems, write

SECRET = "s3cr3t-of-the-operator"
PLANTED = "${NEWSWATCH_WEBHOOK_SECRET:-}"


def newswatch(config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in process, with a secret in the environment for planted text to reach."""
    return run_cli("--config", str(config_dir), *args,
                   env={"NEWSWATCH_WEBHOOK_SECRET": SECRET})


def untraced(result: subprocess.CompletedProcess[str]) -> str:
    """The command's whole output, which must be a message, not a traceback."""
    said = result.stdout + result.stderr
    assert "Traceback" not in said, said
    return said


# --- finding 1: remote text is never ${VAR}-expanded ------------------------------------

def test_a_discovered_feed_url_is_written_escaped_and_never_expanded(
        project: Project, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSWATCH_WEBHOOK_SECRET", SECRET)
    planted = f"/feed.xml?k={PLANTED}"
    site.pages["/"] = Page(
        f'<html><head><link rel="alternate" type="application/rss+xml" title="News" '
        f'href="{planted}"></head><body>home</body></html>'.encode(), content_type=HTML)
    feed = Page(rss([Item("A", site.url("/a/1"), "", "g1", datetime.now(UTC))]))
    site.pages[planted] = feed
    site.pages["/feed.xml?k=%7BNEWSWATCH_WEBHOOK_SECRET:-%7D"] = feed
    site.pages["/feed.xml?k=$%7BNEWSWATCH_WEBHOOK_SECRET:-%7D"] = feed
    project.hook("")
    project.write()

    result = newswatch(project.config_dir, "sources", "add", site.url("/"), "--pick", "1",
                       "--name", "Planted")

    assert result.returncode == 0, untraced(result)
    written = (project.config_dir / "sources.yaml").read_text()
    assert "$${" in written, written
    feed_url = load_config(project.config_dir).sources[-1].feed or ""
    assert SECRET not in feed_url and "${NEWSWATCH_WEBHOOK_SECRET" in feed_url.replace(
        "%7B", "{").replace("%7D", "}")
    assert newswatch(project.config_dir, "check").returncode == 0


def test_an_opml_url_and_title_are_written_escaped_and_never_expanded(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSWATCH_WEBHOOK_SECRET", SECRET)
    project.hook("")
    project.write()
    opml = project.root / "planted.opml"
    opml.write_text(f'<?xml version="1.0"?><opml version="2.0"><body>'
                    f'<outline title="News {PLANTED} $$ $5" type="rss" '
                    f'xmlUrl="http://127.0.0.2/feed.xml?k={PLANTED}"/></body></opml>')

    result = newswatch(project.config_dir, "sources", "import", str(opml))

    assert result.returncode == 0, untraced(result)
    source = load_config(project.config_dir).sources[-1]
    assert source.name == f"News {PLANTED} $$ $5"
    assert source.feed == f"http://127.0.0.2/feed.xml?k={PLANTED}"
    assert SECRET not in (project.config_dir / "sources.yaml").read_text()


def test_check_refuses_variables_outside_channel_secrets_smtp_and_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NW_TEST_URL", "https://hooks.example.org/x")
    monkeypatch.setenv("NW_DB", "nw.db")
    settings = SETTINGS.replace("database: ../data/nw.db", 'database: "${NW_DB}"') + \
        "atom: {directory: \"${FEEDS:-feeds}\"}\n"
    sources = SOURCES.replace('rss.xml"', 'rss.xml?k=${NEWSWATCH_WEBHOOK_SECRET:-}"')
    watchlists = WATCHLISTS.replace("[Ahmad Masoud]", '["${WHO:-x}", "costs $$5", "$x"]')
    write(tmp_path, settings, sources, watchlists)

    found = problems(tmp_path)

    hint = "only a channel's url, secret, urls, to, from and smtp.*, and database, read the " \
           "environment; write $${ for a literal ${"
    assert found == [
        f"newswatch.yaml:6:19: directory: '${{FEEDS' is not expanded here: {hint}",
        f"sources.yaml:2:28: feed: '${{NEWSWATCH_WEBHOOK_SECRET' is not expanded here: "
        f"{hint}",
        f"watchlists.yaml:5:41: aliases: '${{WHO' is not expanded here: {hint}"]
    escaped = sources.replace("${", "$${")
    config = load_config(write(tmp_path, settings.replace("${FEEDS:-feeds}", "feeds"),
                               escaped, watchlists.replace('"${WHO', '"$${WHO')))
    assert config.database_path == (tmp_path / "nw.db").resolve()
    assert config.sources[0].feed == \
        "https://feeds.bbci.co.uk/news/world/asia/rss.xml?k=${NEWSWATCH_WEBHOOK_SECRET:-}"
    assert [getattr(a, "text", a) for a in config.watchlists[0].watch[0].aliases] == \
        ["${WHO:-x}", "costs $5", "$x"]


# --- finding 6: control characters, tags, nesting; a failed reload keeps the daemon ------

def test_an_opml_title_with_control_characters_is_cleaned_and_the_config_still_loads(
        project: Project) -> None:
    project.hook("")
    project.write()
    opml = project.root / "controls.opml"
    opml.write_bytes('<?xml version="1.0"?><opml version="2.0"><body>'
                     '<outline title="Bad\x7f News&#9;\x85Daily\u2028" type="rss" '
                     'xmlUrl="http://127.0.0.2/a.xml"/>'
                     '<outline title="Bad URL" type="rss" xmlUrl="http://127.0.0.2/b\x7f.xml"/>'
                     '</body></opml>'.encode())

    result = newswatch(project.config_dir, "sources", "import", str(opml))

    assert result.returncode == 0, untraced(result)
    assert "imported 1 feed(s)" in result.stdout
    assert [(s.name, s.feed) for s in load_config(project.config_dir).sources] == [
        ("Bad News Daily", "http://127.0.0.2/a.xml")]
    assert newswatch(project.config_dir, "sources", "list").returncode == 0


@pytest.mark.parametrize(("text", "expected"), [
    ("sources:\n  - {name: \"Bad\x7f\", feed: \"http://127.0.0.2/\"}\n",
     "sources.yaml:2:16: control character U+007F: remove it"),
    ("sources:\n  - {name: Nul\x00, feed: \"http://127.0.0.2/\"}\n",
     "sources.yaml:2:15: control character U+0000: remove it"),
    ('sources:\n  - {name: "Esc\\x01aped", feed: "http://127.0.0.2/"}\n',
     "sources.yaml:2:12: name: control character U+0001: remove it"),
    ("sources:\n  - {name: !!python/object/apply:os.system [id], feed: \"http://x.org/\"}\n",
     "sources.yaml:2:12: name: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' "
     "is not supported: remove it"),
    ("sources:\n  - {name: !secret x, feed: \"http://127.0.0.2/\"}\n",
     "sources.yaml:2:12: name: YAML tag '!secret' is not supported: remove it"),
    ("sources: " + "[" * 100_000 + "]" * 100_000 + "\n",
     "sources.yaml:1:73: nested deeper than 64 levels: a config needs a few"),
    ("sources: []\nx:\n" + "".join(" " * i + "k:\n" for i in range(1, 300)) + "  v\n",
     "sources.yaml:66:65: nested deeper than 64 levels: a config needs a few"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n"
        for i in range(8)) + "sources: []\n",
     "sources.yaml:1:35: more than 100000 values (aliases of aliases?): a config needs far "
     "fewer"),
])
def test_check_reports_a_broken_file_as_a_located_error(tmp_path: Path, text: str,
                                                        expected: str) -> None:
    write(tmp_path, sources=text)
    assert problems(tmp_path) == [expected]
    result = newswatch(tmp_path, "check")
    assert result.returncode == 1
    assert f"{tmp_path / expected}" in untraced(result)


def test_a_reload_that_fails_in_any_way_keeps_the_old_config_and_the_daemon(
        project: Project, site: Site, caplog: pytest.LogCaptureFixture) -> None:
    site.pages["/feed.xml"] = Page(rss([]))
    project.sources = [{"name": "Live", "feed": site.url("/feed.xml")}]
    project.hook("")
    project.settings["daemon"] = {"tick": "0.2s"}
    config = project.config()
    store = project.store()
    sources = project.config_dir / "sources.yaml"

    async def scenario() -> None:
        runner = Runner(config, store)
        stop = asyncio.Event()
        daemon = asyncio.create_task(runner.run(stop))

        async def reload_with(text: str, fragment: str) -> None:
            sources.write_bytes(text.encode())
            runner.reload_requested.set()  # what SIGHUP does
            for _ in range(600):
                if fragment in caplog.text or daemon.done():
                    break
                await asyncio.sleep(0.05)
            assert not daemon.done(), "the daemon stopped"
            assert fragment in caplog.text, caplog.text

        try:
            await reload_with('sources:\n  - {name: "Bad\x7f", feed: "http://x.org/"}\n',
                              "keeping the running config")
            caplog.clear()
            await reload_with("sources: " + "[" * 5000 + "]" * 5000 + "\n",
                              "keeping the running config")
        finally:
            stop.set()
            await daemon
        assert runner.config is config

    try:
        with caplog.at_level(logging.INFO, logger="crawler.app.daemon"):
            asyncio.run(scenario())
    finally:
        store.close()


def test_a_reload_that_fails_while_building_keeps_the_old_config(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    project.hook("")

    async def build(_: Config) -> tuple[Pipeline, Dispatcher]:
        raise RuntimeError("boom while building")

    def add_source() -> None:
        project.sources = [{"name": "New", "feed": "http://127.0.0.2/feed.xml"}]

    with caplog.at_level(logging.ERROR, logger="crawler.app.daemon"):
        assert reload_after(project, add_source, build)
    assert "boom while building" in caplog.text and "keeping the running config" in caplog.text
