"""One hostile item fails alone: the rest of its feed is stored and alerted, the poll
succeeds, and the items refused are counted by reason with one log line a poll
(issue #12, finding 4)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import pytest

from crawler.app import workers
from crawler.app.daemon import Runner
from crawler.collect import feeds, pages
from crawler.core.article import Article
from crawler.store import SQLiteStore
from tests import schema
from tests.feeds import Item, rss
from tests.helpers import FakeClock, Project, free_port
from tests.newssite import Story, publish
from tests.servers import Page, Receiver, Site

DEEP = 100_000


def deep_json_ld(text: str) -> bytes:
    """An article page whose JSON-LD nests 100,000 arrays deep."""
    script = "[" * DEEP + "]" * DEEP
    return (f'<html><head><script type="application/ld+json">{script}</script></head>'
            f"<body><article><p>{text}</p></article></body></html>").encode()


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "worker-process"])
def test_hostile_items_fail_alone_and_are_counted(project: Project, site: Site,
                                                  receiver: Receiver,
                                                  caplog: pytest.LogCaptureFixture,
                                                  workers: int) -> None:
    publish(site, Story("/a/good", "Talks in Mazar",
                        "Governor Atta Mohammad Noor said the talks would go on."))
    site.pages["/a/deep"] = Page(deep_json_ld(
        "Atta Mohammad Noor met the elders of Balkh on Sunday to talk about the roads."),
        "text/html; charset=utf-8")
    ipv6 = f"http://[::1]:{free_port()}/x"  # nothing listens there
    site.pages["/feed.xml"] = Page(rss([
        Item("Noor in Mazar", site.url("/a/good"), "Atta Mohammad Noor", "good"),
        # canonicalisation mangled the literal; stored now, its page cannot be had
        Item("Noor on IPv6", ipv6, "Atta Mohammad Noor spoke.", "ipv6"),
        Item("Noor beyond 65535", "http://127.0.0.1:99999/p", "Atta Mohammad Noor", "port"),
        Item("Noor in octal", "http://0177.0.0.2/p", "Atta Mohammad Noor", "octal"),
        Item("Noor, deep", site.url("/a/deep"), "Atta Mohammad Noor", "deep"),
    ]))
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "Local", "feed": site.url("/feed.xml"), "full_text": True}]
    config = project.config()
    store = SQLiteStore(config.database_path)
    clock = FakeClock()
    runner = Runner(config, store, clock=clock, workers=workers)
    try:
        with caplog.at_level(logging.INFO):
            first = asyncio.run(runner.once())
            # the second poll fetches the feed again (it has no ETag): the same two
            # items are refused again, in one line again
            clock.advance(3600)
            second = asyncio.run(runner.once())
        rows = schema.rows(store, "SELECT link, extraction FROM articles")
        state = schema.rows(store, "SELECT error_count, last_error FROM sources")
    finally:
        store.close()

    assert [p.error for p in first.polls + second.polls] == [None, None]
    assert state == [{"error_count": 0, "last_error": None}]
    stored = {r["link"]: r["extraction"] for r in rows}
    assert stored.keys() == {site.url("/a/good"), ipv6, site.url("/a/deep")}
    assert stored[site.url("/a/good")] == stored[site.url("/a/deep")] == "ok"
    assert stored[ipv6].startswith("failed: ")
    assert len(receiver.wait_for(3)) == 3
    assert sorted(p["data"]["article"]["url"] for p in receiver.payloads()) == sorted(stored)
    refused = [r for r in caplog.records if "item(s) rejected" in r.getMessage()]
    assert len(refused) == 2, [r.getMessage() for r in refused]
    assert "http://127.0.0.1:99999/p" in refused[0].getMessage()
    assert not any("internal error" in r.getMessage() for r in caplog.records)
    registry = runner.metrics.registry
    assert registry.get_sample_value("newswatch_items_rejected_total",
                                     {"source": "Local", "reason": "bad_link"}) == 4



def test_a_redirect_to_a_link_no_request_can_reach_fails_only_that_page(
        project: Project, site: Site, receiver: Receiver) -> None:
    """The page, not the item: it is kept with the feed's text, as any page not had."""
    site.pages["/a/jump"] = Page(b"", "text/html", 302,
                                 headers={"location": "http://127.0.0.1:99999/x"})
    site.pages["/feed.xml"] = Page(rss([
        Item("Noor jumps", site.url("/a/jump"), "Atta Mohammad Noor spoke.", "jump")]))
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "Local", "feed": site.url("/feed.xml"), "full_text": True}]

    report = project.once()

    assert report.polls[0].error is None
    store = project.store()
    try:
        [row] = schema.rows(store, "SELECT extraction FROM articles")
    finally:
        store.close()
    assert row["extraction"].startswith("failed: ")
    assert "http://127.0.0.1:99999/" in row["extraction"]
    assert "Port out of range 0-65535" in row["extraction"]
    assert len(receiver.wait_for(1)) == 1


def test_a_bug_in_one_item_fails_that_item_alone_with_its_traceback_logged_once(
        project: Project, site: Site, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """No hostile input known today gets this far (each is stopped where it is read);
    a step made to raise stands for the next one."""
    real_extract = workers.extract
    real_page = pages._page

    def extract(article: Article, now: datetime) -> Article:
        if article.link.endswith("/deep"):
            raise RecursionError("maximum recursion depth exceeded")
        if article.link.endswith("/bug"):
            raise KeyError("a bug in extraction")
        return real_extract(article, now)

    async def page(client: Any, politeness: Any, source: Any, article: Article,
                   deadline: float) -> Article | str:
        if article.link.endswith("/page-bug"):
            raise AttributeError("a bug in page fetching")
        return await real_page(client, politeness, source, article, deadline)

    monkeypatch.setattr(workers, "extract", extract)
    monkeypatch.setattr(pages, "_page", page)
    publish(site, Story("/a/good", "Talks in Mazar",
                        "Governor Atta Mohammad Noor said the talks would go on."))
    site.pages["/feed.xml"] = Page(rss([
        Item("Noor in Mazar", site.url("/a/good"), "Atta Mohammad Noor", "good"),
        *(Item(f"Noor {name}", site.url(f"/a/{name}"), "Atta Mohammad Noor", name)
          for name in ("deep", "bug", "page-bug")),
    ]))
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "Local", "feed": site.url("/feed.xml"), "full_text": True}]
    config = project.config()
    store = SQLiteStore(config.database_path)
    runner = Runner(config, store)
    try:
        with caplog.at_level(logging.INFO):
            [poll] = asyncio.run(runner.once()).polls
        links = [r["link"] for r in schema.rows(store, "SELECT link FROM articles")]
    finally:
        store.close()

    assert poll.error is None
    assert links == [site.url("/a/good")]
    assert len(receiver.wait_for(1)) == 1
    [line] = [r for r in caplog.records if "item(s) rejected" in r.getMessage()]
    assert line.levelno == logging.ERROR
    assert line.exc_info is not None and line.exc_info[0] in (KeyError, AttributeError)
    assert line.getMessage().startswith("3 item(s) rejected")
    registry = runner.metrics.registry
    assert [registry.get_sample_value("newswatch_items_rejected_total",
                                      {"source": "Local", "reason": reason})
            for reason in ("too_deep", "internal_error")] == [1, 2]


def test_a_json_feed_item_nested_too_deep_fails_alone(
        project: Project, site: Site, receiver: Receiver) -> None:
    """The json module gives up on the whole document; the value nested too deep is read
    as null instead, so the other items are stored and alerted."""
    deep = b"[" * DEEP + b"]" * DEEP
    site.pages["/feed.json"] = Page(
        b'{"version": "https://jsonfeed.org/version/1.1", "items": ['
        b'{"id": "1", "url": "' + site.url("/a/1").encode() + b'", "title": "Noor in Balkh",'
        b' "content_text": "Atta Mohammad Noor met the elders."},'
        b'{"id": "2", "url": ' + deep + b', "title": "A \\"[quoted\\" title"},'
        b'{"id": "3", "url": "' + site.url("/a/3").encode() + b'", "title": "Noor again",'
        b' "_ext": {"a": ' + deep + b'}, "content_text": "Atta Mohammad Noor spoke."}]}',
        "application/feed+json")
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "Local", "feed": site.url("/feed.json")}]

    [poll] = project.once().polls

    assert poll.error is None
    assert (poll.new, poll.matched) == (2, 2)
    assert {a["url"] for a in project.store().matched_articles()} == {
        site.url("/a/1"), site.url("/a/3")}


@pytest.mark.parametrize(("text", "capped"), [
    ('{"a": [[[1]]], "b": "[[[", "c": [2]}', '{"a": [null], "b": "[[[", "c": [2]}'),
    ('[[["x\\"]"]]]', '[[null]]'),
    ('{"a": [[[', '{"a": [null'),  # not JSON before, not JSON after
])
def test_capped_depth_replaces_what_is_nested_too_deep(text: str, capped: str) -> None:
    assert feeds.capped_depth(text, 2) == capped


def test_lone_surrogates_in_a_json_feed_are_stored_as_replacement_characters(
        project: Project, site: Site, receiver: Receiver) -> None:
    """JSON may escape half a surrogate pair (``\\ud800``), which no UTF-8 database can
    store: it becomes U+FFFD, and the item and its feed are stored, not failed at every
    retry."""
    site.pages["/feed.json"] = Page(
        b'{"version": "https://jsonfeed.org/version/1.1", "items": ['
        b'{"id": "1\\udfff", "url": "' + site.url("/a/1").encode() + b'",'
        b' "title": "Noor in Balkh \\ud800", "summary": "\\udc00 aid",'
        b' "content_text": "Atta Mohammad Noor met the elders \\ud83d."}]}',
        "application/feed+json")
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "Local", "feed": site.url("/feed.json")}]

    [poll] = project.once().polls

    assert poll.error is None and (poll.new, poll.matched) == (1, 1)
    [stored] = project.store().matched_articles()
    assert stored["title"] == "Noor in Balkh \ufffd"
