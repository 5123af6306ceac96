"""Full text for feed items: body-only matching, failures kept, dedup learning from pages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from crawler.app.daemon import Runner
from crawler.process.extract import extract, html_to_text
from crawler.store import SQLiteStore
from tests import schema
from tests.conftest import Project
from tests.feeds import Item, rss
from tests.helpers import make_article
from tests.newssite import HTML, Story, article_html, publish
from tests.payloads import mentions
from tests.servers import Hit, Page, Receiver, Site

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def articles(project: Project) -> dict[str, dict[str, Any]]:
    store = project.store()
    try:
        return {r["url"]: r for r in schema.rows(store, "SELECT * FROM articles")}
    finally:
        store.close()


def alerted_urls(receiver: Receiver) -> list[str]:
    return sorted(p["data"]["article"]["url"] for p in receiver.payloads())


def setup(project: Project, site: Site, receiver: Receiver, items: list[Item],
          **source: Any) -> None:
    site.pages["/feed.xml"] = Page(rss(items))
    project.hook(receiver.url("/hook"))
    project.settings["defaults"] = {"delay": "0"}
    project.sources = [{"name": "Local", "feed": site.url("/feed.xml"), **source}]


def test_matches_come_from_the_body_never_from_page_chrome(
        project: Project, site: Site, receiver: Receiver) -> None:
    now = datetime.now(UTC)
    publish(site, Story("/a/body", "Talks in Mazar",
                        "Governor Atta Mohammad Noor said the talks would go on."))
    publish(site, Story("/a/chrome", "Snow closes the Salang pass",
                        "The highway authority cleared the pass on Sunday."))
    setup(project, site, receiver, [
        # One-line summaries that name nobody: only the body can match.
        Item("Talks in Mazar", site.url("/a/body"), "Read more.", "g1", now),
        Item("Snow closes the Salang pass", site.url("/a/chrome"), "Read more.", "g2", now),
    ])

    report = project.once()

    assert report.polls[0].error is None
    assert alerted_urls(receiver) == [site.url("/a/body")]
    assert {(m["watch"], m["field"]) for m in mentions(receiver.payloads()[0])} == {
        ("Atta Mohammad Noor", "text")}
    stored = articles(project)
    assert stored[site.url("/a/body")]["extraction"] == "ok"
    assert "Atta Mohammad Noor said" in stored[site.url("/a/body")]["text"]
    chrome = stored[site.url("/a/chrome")]
    assert chrome["extraction"] == "ok"
    assert "Most read" not in chrome["text"] and "Massoud" not in chrome["text"]
    assert chrome["language"] == "en"
    # Each page was fetched once, and not again on the next pass.
    project.once()
    assert len(site.requests_to("/a/body")) == 1
    assert len(receiver.payloads()) == 1


def test_failed_extraction_is_recorded_and_the_feed_text_still_matches(
        project: Project, site: Site, receiver: Receiver) -> None:
    now = datetime.now(UTC)
    # A page rendered by script: no text to extract.
    site.pages["/a/empty"] = Page(b"<html><body><script>render()</script></body></html>",
                                  content_type=HTML)
    site.pages["/a/huge"] = Page(
        article_html(Story("/a/huge", "Big", "Ahmad Massoud spoke. " * 20000)).encode(),
        content_type=HTML)
    setup(project, site, receiver, [
        Item("Dialogue", site.url("/a/missing"), "Ahmad Massoud calls for talks.", "g1", now),
        Item("Statement", site.url("/a/empty"), "Atta Mohammad Noor issued a statement.",
             "g2", now),
        Item("Big page", site.url("/a/huge"), "A long read.", "g3", now),
    ], max_bytes="64KiB")

    report = project.once()

    assert report.polls[0].error is None
    stored = articles(project)
    assert stored[site.url("/a/missing")]["extraction"].startswith("failed: HTTP 404")
    assert stored[site.url("/a/empty")]["extraction"] == \
        "failed: no article text found on the page"
    assert "larger than the 65536 byte cap" in stored[site.url("/a/huge")]["extraction"]
    assert stored[site.url("/a/huge")]["text"] == "A long read."
    # Matched on what the feed gave; the over-cap page's body was never read.
    assert alerted_urls(receiver) == [site.url("/a/empty"), site.url("/a/missing")]


def test_redirects_canonical_links_and_amp_variants_lead_to_one_article(
        project: Project, site: Site, receiver: Receiver) -> None:
    now = datetime.now(UTC)
    story = Story("/news/talks", "Talks", "Ahmad Massoud met the delegation in Dushanbe.",
                  canonical=site.url("/news/talks"))
    publish(site, story)
    site.pages["/news/talks?utm_source=fb"] = site.pages["/news/talks"]
    # An AMP copy that names the article as its canonical.
    site.pages["/news/talks/amp"] = Page(article_html(Story(
        "/news/talks/amp", "Talks", story.body, canonical=site.url("/news/talks"))).encode(),
        content_type=HTML)
    # A FeedBurner-style redirect to the article.
    site.pages["/fb/123"] = Page(b"", status=302, content_type="text/plain",
                                 headers={"location": site.url("/news/talks?utm_source=fb")})
    setup(project, site, receiver, [
        Item("Talks", site.url("/fb/123"), "", "fb-123", now),
        Item("Talks (AMP)", site.url("/news/talks/amp"), "", "amp-1", now),
    ])
    project.sources.append({"name": "Other", "feed": site.url("/other.xml")})
    site.pages["/other.xml"] = Page(rss([Item("Talks again", site.url("/news/talks"), "",
                                              "other-1", now)]))

    project.once()
    project.once()

    assert list(articles(project)) == [site.url("/news/talks")]
    assert alerted_urls(receiver) == [site.url("/news/talks")]


def test_robots_txt_is_obeyed_for_article_pages(project: Project, site: Site,
                                                 receiver: Receiver) -> None:
    now = datetime.now(UTC)
    site.pages["/robots.txt"] = Page(b"User-agent: *\nDisallow: /private/\n",
                                     content_type="text/plain")
    publish(site, Story("/private/1", "Hidden", "Atta Mohammad Noor in private."))
    setup(project, site, receiver, [Item("Hidden", site.url("/private/1"), "Nothing.",
                                         "g1", now)])

    project.once()

    assert site.requests_to("/private/1") == []
    assert articles(project)[site.url("/private/1")]["extraction"] == \
        "failed: robots.txt disallows it"
    assert receiver.payloads() == []


def test_full_text_off_fetches_no_page(project: Project, site: Site,
                                       receiver: Receiver) -> None:
    publish(site, Story("/a/1", "T", "Atta Mohammad Noor spoke."))
    setup(project, site, receiver, [Item("T", site.url("/a/1"), "Short.", "g1",
                                         datetime.now(UTC))], full_text=False)
    project.once()
    assert site.requests_to("/a/1") == []
    assert articles(project)[site.url("/a/1")]["extraction"] == "off"


class CountingSite(Site):
    """Records the most requests it was ever serving at once, and scripted answers."""

    def __init__(self) -> None:
        self.busy = 0
        self.most_busy = 0
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = {}
        super().__init__()

    def answer(self, hit: Hit) -> tuple[int, dict[str, str], bytes]:
        import time

        with self.lock:
            self.busy += 1
            self.most_busy = max(self.most_busy, self.busy)
            scripted = self.script.get(hit.path, [])
            first = scripted.pop(0) if scripted else None
        try:
            time.sleep(0.05)  # widen the window in which overlapping requests would show
            if first is not None:
                return first[0], {"content-type": "text/plain", **first[1]}, b"wait"
            return super().answer(hit)
        finally:
            with self.lock:
                self.busy -= 1


def test_429_with_retry_after_is_retried_and_honoured(project: Project,
                                                      receiver: Receiver) -> None:
    site = CountingSite()
    try:
        publish(site, Story("/a/1", "Talks", "Atta Mohammad Noor spoke in Mazar."))
        site.script["/a/1"] = [(429, {"retry-after": "1"}), (503, {})]
        setup(project, site, receiver, [Item("Talks", site.url("/a/1"), "Short.", "g1",
                                             datetime.now(UTC))])
        project.once()
        assert [h.status for h in site.requests_to("/a/1")] == [429, 503, 200]
        assert articles(project)[site.url("/a/1")]["extraction"] == "ok"
        assert alerted_urls(receiver) == [site.url("/a/1")]
    finally:
        site.close()


def test_one_request_at_a_time_per_host_across_pages_and_crawls(
        project: Project, receiver: Receiver) -> None:
    from tests.newssite import XML, news_sitemap

    site = CountingSite()
    try:
        now = datetime.now(UTC)
        for n in range(6):
            publish(site, Story(f"/a/{n}", f"Story {n}", f"Report number {n}."))
            publish(site, Story(f"/s/{n}", f"Sitemap story {n}", f"Sitemap report {n}."))
        site.pages["/news-sitemap.xml"] = Page(news_sitemap(
            [(site.url(f"/s/{n}"), f"Sitemap story {n}", now) for n in range(6)]),
            content_type=XML)
        setup(project, site, receiver, [Item(f"Story {n}", site.url(f"/a/{n}"), "", f"g{n}",
                                             now) for n in range(6)])
        project.sources.append({"name": "Map", "sitemap": site.url("/news-sitemap.xml")})
        report = project.once()
        assert [p.error for p in report.polls] == [None, None]
        assert len(articles(project)) == 12
        assert site.most_busy == 1, "two requests to one host overlapped"
    finally:
        site.close()


def test_page_fetches_obey_the_private_address_rule(project: Project, site: Site,
                                                    receiver: Receiver) -> None:
    from crawler.collect.fetch import GuardedTransport

    other = Site("127.0.0.2")
    try:
        publish(other, Story("/a/1", "Inside", "Atta Mohammad Noor on the LAN."))
        setup(project, site, receiver, [Item("Inside", other.url("/a/1"), "Short.", "g1",
                                             datetime.now(UTC))])
        config = project.config()
        store = SQLiteStore(config.database_path)
        # 127.0.0.1 (the feed) is allowed here; 127.0.0.2 stands for a private host.
        transport = GuardedTransport(allowed=lambda address: address == "127.0.0.1")
        asyncio.run(Runner(config, store, collect_transport=transport).once())
        store.close()
        assert other.hits == []
        assert "refused" in articles(project)[other.url("/a/1")]["extraction"]
    finally:
        other.close()


def test_each_redirect_hop_obeys_its_hosts_robots_txt(project: Project, site: Site,
                                                      receiver: Receiver) -> None:
    publisher = Site("127.0.0.2")
    try:
        publisher.pages["/robots.txt"] = Page(b"User-agent: *\nDisallow: /paywall/\n",
                                              content_type="text/plain")
        publish(publisher, Story("/paywall/1", "Locked", "Atta Mohammad Noor, locked."))
        publish(publisher, Story("/open/1", "Open", "Ahmad Massoud, open."))
        # An aggregator's links that redirect to the publisher.
        site.pages["/go/1"] = Page(b"", status=302, content_type="text/plain",
                                   headers={"location": publisher.url("/paywall/1")})
        site.pages["/go/2"] = Page(b"", status=301, content_type="text/plain",
                                   headers={"location": publisher.url("/open/1")})
        now = datetime.now(UTC)
        setup(project, site, receiver, [Item("Locked", site.url("/go/1"), "", "g1", now),
                                        Item("Open", site.url("/go/2"), "", "g2", now)])
        project.once()
        assert publisher.requests_to("/paywall/1") == []
        assert len(publisher.requests_to("/robots.txt")) == 1
        stored = articles(project)
        assert stored[site.url("/go/1")]["extraction"] == \
            f"failed: robots.txt disallows it ({publisher.url('/paywall/1')})"
        assert publisher.url("/open/1") in stored, "the page's final URL is its identity"
        assert stored[publisher.url("/open/1")]["extraction"] == "ok"
        assert alerted_urls(receiver) == [publisher.url("/open/1")]
    finally:
        publisher.close()


def test_html_to_text() -> None:
    markup = ("<p>Atta&nbsp;Mohammad <b>Noor</b> said:</p><script>alert(1)</script>"
              "<ul><li>one</li><li>two &amp; three</li></ul>")
    assert html_to_text(markup) == "Atta Mohammad Noor said:\none\ntwo & three"
    assert html_to_text("plain text") == "plain text"


def test_extract_fills_plain_text_and_falls_back_to_summary() -> None:
    a = extract(make_article(summary_html="<p>Short <i>summary</i></p>", title="A &amp; B"), NOW)
    assert (a.title, a.summary, a.text) == ("A & B", "Short summary", "Short summary")
    b = extract(make_article(summary_html="s", content_html="<div>Full <b>body</b></div>"), NOW)
    assert b.text == "Full body"


def test_a_watch_items_spelling_in_a_query_finds_its_other_spellings() -> None:
    from crawler.process.search import parse_query, spellings, with_spellings

    known = spellings([["Ahmad Massoud", "احمد مسعود"], ["Taliban", "طالبان"], ["  "]])
    whole = with_spellings(parse_query("ahmad MASSOUD"), known)
    assert whole.terms == ("ahmad massoud", "احمد مسعود", "ahmad", "massoud"), \
        "the name first: its highlight is the whole name"
    mixed = with_spellings(parse_query('"احمد مسعود" AND NOT taliban*'), known)
    assert [str(p) for p in mixed.parts] == ["(", "ahmad massoud", "OR", "احمد مسعود", ")",
                                             "AND", "NOT", "taliban*"], "a prefix stays"
    other = parse_query("kabul ahmad")
    assert with_spellings(other, known) == other
