"""One hostile item fails alone: the rest of its feed is stored and alerted, the poll
succeeds, and the items refused are counted by reason with one log line a poll
(issue #12, finding 4)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from crawler.app.daemon import Runner
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


def test_hostile_items_fail_alone_and_are_counted(project: Project, site: Site,
                                                  receiver: Receiver,
                                                  caplog: pytest.LogCaptureFixture) -> None:
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
    runner = Runner(config, store, clock=clock)
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

