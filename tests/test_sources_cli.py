"""``newswatch sources …`` and ``newswatch match --url`` through the real CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from crawler.config import load_config
from tests.conftest import Project
from tests.feeds import Item, rss
from tests.helpers import newswatch
from tests.newssite import HTML, XML, Story, listing_html, news_sitemap, publish
from tests.servers import Page, Site

COMMENTED = """\
# Sources we poll. Keep this comment.
sources:
  # Afghan outlets
  - {name: First, feed: "http://127.0.0.2/feed.xml"}   # trailing comment
  - name: Second
    feed: "http://127.0.0.2/other.xml"
    interval: 10m
"""


def write_commented(project: Project) -> None:
    project.hook("")  # the watchlist's channel, disabled
    project.write()
    (project.config_dir / "sources.yaml").write_text(COMMENTED)


def run(project: Project, *args: str, input_text: str | None = None) -> str:
    """The CLI without rewriting the config files (``Project.cli`` would by default)."""
    return project.cli(*args, write=False, input=input_text, check=True).stdout


def test_sources_add_finds_the_feed_and_sitemap_of_a_home_page(project: Project,
                                                              site: Site) -> None:
    now = datetime.now(UTC)
    site.pages["/"] = Page(
        b'<html><head><link rel="alternate" type="application/rss+xml" title="All news" '
        b'href="/rss/all.xml"></head><body><h1>Local News</h1></body></html>',
        content_type=HTML)
    site.pages["/rss/all.xml"] = Page(rss([Item("A", site.url("/a/1"), "", "g1", now)]))
    site.pages["/robots.txt"] = Page(f"Sitemap: {site.url('/news-sitemap.xml')}\n".encode(),
                                     content_type="text/plain")
    site.pages["/news-sitemap.xml"] = Page(news_sitemap([(site.url("/a/1"), "A", now)]),
                                           content_type=XML)
    write_commented(project)

    shown = run(project, "sources", "add", site.url("/"), "--name", "Local News",
                "--pick", "2")

    assert site.url("/rss/all.xml") in shown and site.url("/news-sitemap.xml") in shown
    text = (project.config_dir / "sources.yaml").read_text()
    assert text.startswith(COMMENTED), "existing lines, comments and order are untouched"
    assert text[len(COMMENTED):] == \
        f'  - {{name: "Local News", sitemap: "{site.url("/news-sitemap.xml")}"}}\n'
    names = [s.name for s in load_config(project.config_dir).sources]
    assert names == ["First", "Second", "Local News"]

    # Interactively, the first one (the feed) is the default; the name is taken.
    run(project, "sources", "add", site.url("/"), "--name", "Local News", input_text="\n")
    added = load_config(project.config_dir).sources[-1]
    assert (added.name, added.feed) == ("Local News (2)", site.url("/rss/all.xml"))


OPML = """<?xml version="1.0"?>
<opml version="1.0"><head><title>Reader export</title></head><body>
  <outline text="Afghanistan">
    <outline text="Khaama" title="Khaama Press" type="rss" xmlUrl="https://www.khaama.com/feed/"/>
    <outline text="Amu" type="rss" xmlUrl="https://amu.tv/feed/" htmlUrl="https://amu.tv/"/>
  </outline>
  <outline text="Already here" type="rss" xmlUrl="http://127.0.0.2/feed.xml"/>
  <outline text="Not a feed"/>
</body></opml>
"""


def test_opml_import_and_export_round_trip(project: Project) -> None:
    write_commented(project)
    opml = project.root / "reader.opml"
    opml.write_text(OPML)

    said = run(project, "sources", "import", str(opml))

    assert "imported 2 feed(s), skipped 1" in said
    text = (project.config_dir / "sources.yaml").read_text()
    assert text.startswith(COMMENTED)
    sources = load_config(project.config_dir).sources
    assert [(s.name, s.feed) for s in sources[2:]] == [
        ("Khaama Press", "https://www.khaama.com/feed/"), ("Amu", "https://amu.tv/feed/")]

    exported = run(project, "sources", "export")
    again = project.root / "again"
    again.mkdir()
    (again / "newswatch.yaml").write_text("database: x.db\n")
    (again / "watchlists.yaml").write_text("watchlists: []\n")
    (again / "sources.yaml").write_text("sources: []\n")
    (again / "export.opml").write_text(exported)
    imported = newswatch("--config", str(again), "sources", "import", str(again / "export.opml"))
    assert imported.returncode == 0, imported.stderr
    round_trip = [(s.name, s.feed) for s in load_config(again).sources]
    assert round_trip == [(s.name, s.feed) for s in sources]


def test_sources_list_shows_kind_interval_and_health(project: Project) -> None:
    project.sources = [
        {"name": "Feed", "feed": "http://127.0.0.2/feed.xml", "interval": "10m"},
        {"name": "Map", "sitemap": "auto", "site": "http://127.0.0.2/"},
        {"name": "Off", "crawl": {"start": ["http://127.0.0.2/p/"], "follow": ["/a/"]},
         "enabled": False},
    ]
    project.hook("")
    project.write()
    listed = json.loads(run(project, "sources", "list", "--json"))
    assert [(s["name"], s["kind"], s["interval_s"], s["health"]) for s in listed] == [
        ("Feed", "feed", 600.0, "never polled"), ("Map", "sitemap", 900.0, "never polled"),
        ("Off", "crawl", None, "disabled")]
    table = run(project, "sources", "list")
    assert "10m" in table and "sitemap" in table


def test_sources_test_fetches_where_sitemap_auto_and_a_two_page_crawl_start(
        project: Project, site: Site) -> None:
    """Not the source's identity (``auto:…``, start pages joined by a space): its entry
    points, each one, as a poll fetches them."""
    now = datetime.now(UTC)
    site.pages["/robots.txt"] = Page(f"Sitemap: {site.url('/news-sitemap.xml')}\n".encode(),
                                     content_type="text/plain")
    site.pages["/news-sitemap.xml"] = Page(news_sitemap([(site.url("/a/1"), "A", now)]),
                                           content_type=XML)
    for path in ("/politics/", "/economy/"):
        site.pages[path] = Page(listing_html([("/a/1", "A")]).encode(), content_type=HTML)
    project.hook("http://127.0.0.1:9/unused")
    project.sources = [
        {"name": "Map", "sitemap": "auto", "site": site.url("/")},
        {"name": "Pages", "crawl": {"start": [site.url("/politics/"), site.url("/economy/")],
                                    "follow": ["/a/"]}}]

    result = project.cli("sources", "test", "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    found = {r["source"]: r for r in json.loads(result.stdout)}
    assert found["Map"]["error"] is None and found["Map"]["url"] == site.url("/robots.txt")
    assert found["Pages"]["error"] is None
    assert sorted(h.path for h in site.hits) == ["/economy/", "/politics/", "/robots.txt"]

    # A start page that cannot be had is named.
    del site.pages["/economy/"]
    result = project.cli("sources", "test", "Pages", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)[0]["error"] == f"HTTP 404 from {site.url('/economy/')}"


def test_match_url_on_a_local_article_page(project: Project, site: Site) -> None:
    publish(site, Story("/a/1", "Talks in Mazar",
                        "Governor Atta Mohammad Noor said the talks would go on.",
                        published="2026-11-27T10:00:00"))
    publish(site, Story("/a/2", "Snow", "Nothing of note."))
    project.hook("")
    project.write()

    result = json.loads(run(project, "match", "--url", site.url("/a/1"), "--json"))

    assert result["extraction"] == "ok"
    assert result["published_at"] == "2026-11-27 05:30:00+00:00"
    assert [(m["watch"], m["field"]) for m in result["matches"]] == [
        ("Atta Mohammad Noor", "text")]
    chrome_only = json.loads(run(project, "match", "--url", site.url("/a/2"), "--json"))
    assert chrome_only["matches"] == []
    assert "Atta Mohammad Noor" in run(project, "match", "--url", site.url("/a/1"))


def test_appending_to_the_shipped_sources_file_keeps_every_byte(tmp_path: object) -> None:
    import shutil
    from pathlib import Path

    from crawler.collect.discovery import append_sources

    shipped = Path(__file__).parent.parent / "config"
    copy = Path(str(tmp_path)) / "config"
    shutil.copytree(shipped, copy)
    before = (copy / "sources.yaml").read_text()
    assert append_sources(copy, [{"name": "KabulNow", "sitemap": "auto",
                                  "site": "https://kabulnow.com/"}]) == ["KabulNow (2)"]
    after = (copy / "sources.yaml").read_text()
    assert after.startswith(before)
    added = load_config(copy).sources[-1]
    assert (added.name, added.sitemap, added.site) == ("KabulNow (2)", "auto",
                                                       "https://kabulnow.com/")


def test_match_url_fetches_the_page_as_a_poll_does(project: Project, site: Site) -> None:
    """robots.txt, redirects and limits as for an item's page; exit 3 when it cannot."""
    site.pages["/robots.txt"] = Page(b"User-agent: *\nDisallow: /private/\n",
                                     content_type="text/plain")
    publish(site, Story("/private/1", "Talks", "Atta Mohammad Noor said the talks go on."))
    project.hook("")
    project.write()

    refused = project.cli("match", "--url", site.url("/private/1"))
    missing = project.cli("match", "--url", site.url("/a/none"))

    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "robots.txt" in refused.stderr and site.requests_to("/private/1") == []
    assert missing.returncode == 3
    assert f"cannot fetch {site.url('/a/none')}: HTTP 404" in missing.stderr


def test_sources_poll_makes_a_source_due_now(project: Project) -> None:
    from datetime import timedelta

    from crawler.store import PollRecord, SQLiteStore
    project.hook("")  # the watchlist's channel, disabled
    project.sources = [{"name": "First", "feed": "http://127.0.0.2/feed.xml"}]
    config = project.config()
    later = datetime.now(UTC) + timedelta(hours=1)
    store = SQLiteStore(config.database_path)
    try:
        store.sync_sources(config.active_sources(), datetime.now(UTC))
        store.claim_sources("p", datetime.now(UTC), timedelta(minutes=1))
        store.record_poll("First", "p", datetime.now(UTC), PollRecord(later))
        done = project.cli("sources", "poll", "First", write=False)
        assert done.returncode == 0, done.stderr
        assert "source First is due now: a running daemon polls it at its next tick " \
               "(every 5s)" in done.stdout
        assert [s.name for s in store.claim_sources("p", datetime.now(UTC),
                                                    timedelta(minutes=1))] == ["First"]
        typo = project.cli("sources", "poll", "Frist", write=False)
        assert typo.returncode == 2 and "did you mean 'First'?" in typo.stderr
        store.record_poll("First", "p", datetime.now(UTC),
                          PollRecord(later, error="HTTP 410", retire=True))
        retired = project.cli("sources", "poll", "First", write=False)
        assert retired.returncode == 1 and "is retired" in retired.stderr
    finally:
        store.close()
