"""Backoff, recovery and operator notices, driven by an injected clock."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from crawler.app.daemon import Runner
from crawler.collect.headers import parse_max_age, parse_retry_after
from crawler.process import health
from crawler.process.schedule import MAX_BACKOFF, next_check
from tests.conftest import FakeClock, Project
from tests.feeds import Item, rss
from tests.servers import Page, Receiver, Site

DOCS = Path(__file__).parent.parent / "docs"

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_failing_source_backs_off_and_recovers_by_itself(project: Project,
                                                         site: Site) -> None:
    project.sources = [{"name": "Flaky", "feed": site.url("/feed.xml"), "interval": "10m"}]
    project.hook("http://127.0.0.1:9/unused")
    clock = FakeClock(NOW)
    runner = Runner(project.config(), project.store(), clock=clock)

    def row() -> dict[str, object]:
        return runner.store.sources()[0]

    gaps = []
    for _ in range(4):  # 404 four times: 20, 40, 80, 160 minutes
        asyncio.run(runner.once())
        gaps.append(datetime.fromisoformat(str(row()["next_check_at"])) - clock.now())
        clock.advance(gaps[-1].total_seconds())
    assert [round(g.total_seconds() / 60) for g in gaps] == [20, 40, 80, 160]
    assert row()["error_count"] == 4 and "HTTP 404" in str(row()["last_error"])

    site.pages["/feed.xml"] = Page(rss([Item("Noor", site.url("/a/1"), "", "g",
                                             clock.now())]))
    asyncio.run(runner.once())
    assert row()["error_count"] == 0 and row()["last_error"] is None
    next_check = datetime.fromisoformat(str(row()["next_check_at"]))
    assert next_check - clock.now() == timedelta(minutes=10)


def test_incident_rules() -> None:
    steady = health.Figures(None, NOW - timedelta(hours=5), daily_rate=10, history_days=14)
    assert health.incident(steady, NOW) is None
    silent = health.Figures(None, NOW - timedelta(days=2), daily_rate=10, history_days=14)
    assert health.incident(silent, NOW) == "quiet"
    weekly = health.Figures(None, NOW - timedelta(days=2), daily_rate=0.2, history_days=14)
    assert health.incident(weekly, NOW) is None, "a weekly feed is not quiet after 2 days"
    young = health.Figures(None, NOW - timedelta(days=2), daily_rate=10, history_days=1)
    assert health.incident(young, NOW) is None, "too little history to judge"
    failing = health.Figures(NOW - timedelta(hours=7), None, 0, 0)
    assert health.incident(failing, NOW) == "failing"
    assert health.incident(health.Figures(NOW - timedelta(hours=1), None, 0, 0), NOW) is None


def test_quiet_source_raises_one_notice(project: Project, site: Site, receiver: Receiver,
                                        caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(NOW - timedelta(days=10))
    project.sources = [{"name": "Daily", "feed": site.url("/feed.xml"), "interval": "1h"}]
    project.hook("http://127.0.0.1:9/unused")
    project.settings["channels"]["ops"] = {"type": "webhook", "url": receiver.url("/ops")}
    project.settings["operator"] = "ops"
    runner = Runner(project.config(), project.store(), clock=clock)
    items: list[Item] = []
    for day in range(8):  # three articles a day for eight days
        for n in range(3):
            items.insert(0, Item(f"Story {day}-{n}", site.url(f"/a/{day}-{n}"), "",
                                 f"g{day}-{n}", clock.now()))
        site.pages["/feed.xml"] = Page(rss(items))
        asyncio.run(runner.once())
        clock.advance(86400)
    clock.advance(86400 * 2)  # then silence for three days, while still answering 200
    asyncio.run(runner.once())

    with caplog.at_level(logging.INFO, logger="crawler.app.daemon"):
        first = asyncio.run(runner.check_health())
        again = asyncio.run(runner.check_health())
    assert len(first) == 1 and "Daily has gone quiet" in first[0]
    assert again == [], "one notice per incident, not per check"
    assert runner.store.sources()[0]["notice"] == "quiet"
    # The operator channel gets it too, once.
    asyncio.run(runner.once())  # delivers what is due, the notice included
    [notice] = [json.loads(h.body) for h in receiver.delivered()]
    jsonschema.validate(notice, json.loads((DOCS / "notice.schema.json").read_text()))
    assert notice["data"]["incident"] == "source.quiet"
    assert notice["data"]["source"] == "Daily" and "gone quiet" in notice["data"]["message"]

    items.insert(0, Item("Back", site.url("/a/back"), "", "gb", clock.now()))
    site.pages["/feed.xml"] = Page(rss(items))
    asyncio.run(runner.once())
    with caplog.at_level(logging.INFO, logger="crawler.app.daemon"):
        assert asyncio.run(runner.check_health()) == []
    assert "incident over" in caplog.text
    assert runner.store.sources()[0]["notice"] is None


def test_304_forever_still_gets_a_daily_full_fetch(project: Project, site: Site) -> None:
    site.pages["/feed.xml"] = Page(rss([Item("Noor", site.url("/a/1"), "", "g", NOW)]),
                                   etag='"stuck"')
    project.sources = [{"name": "Stuck", "feed": site.url("/feed.xml"), "interval": "1h"}]
    project.hook("http://127.0.0.1:9/unused")
    clock = FakeClock(NOW)
    runner = Runner(project.config(), project.store(), clock=clock)
    for _ in range(30):  # 30 hourly polls
        asyncio.run(runner.once())
        clock.advance(3600)
    conditional = [h.headers.get("if-none-match") for h in site.requests_to("/feed.xml")]
    assert conditional[0] is None and conditional[1] == '"stuck"'
    full = [n for n, etag in enumerate(conditional) if etag is None]
    assert full == [0, 24], "one full fetch a day, whatever the server's validators say"


def test_feed_ttl_and_max_age_delay_the_next_poll_unless_told_not_to(project: Project,
                                                                      site: Site) -> None:
    feed = rss([Item("Noor", site.url("/a/1"))]).replace(b"<description>t</description>",
                                                          b"<description>t</description>"
                                                          b"<ttl>90</ttl>")
    site.pages["/ttl.xml"] = Page(feed)
    site.pages["/max-age.xml"] = Page(rss([]), headers={"cache-control": "max-age=7200"})
    site.pages["/plain.xml"] = Page(rss([]))
    project.sources = [
        {"name": "ttl", "feed": site.url("/ttl.xml"), "interval": "10m"},
        {"name": "max-age", "feed": site.url("/max-age.xml"), "interval": "10m"},
        {"name": "ignores", "feed": site.url("/ttl.xml"), "interval": "10m",
         "respect_cache_hints": False},
        {"name": "plain", "feed": site.url("/plain.xml"), "interval": "10m"},
    ]
    project.hook("http://127.0.0.1:9/unused")
    clock = FakeClock(NOW)
    runner = Runner(project.config(), project.store(), clock=clock)
    asyncio.run(runner.once())
    waits = {r["name"]: datetime.fromisoformat(r["next_check_at"]) - NOW
             for r in runner.store.sources()}
    assert waits == {"ttl": timedelta(minutes=90), "max-age": timedelta(hours=2),
                     "ignores": timedelta(minutes=10), "plain": timedelta(minutes=10)}


def test_one_state_word_for_status_and_sources_list() -> None:
    row = {"retired_at": None, "active": 1, "error_count": 0, "failing_since": None,
           "last_article_at": None, "articles_window": 0,
           "created_at": (NOW - timedelta(days=1)).isoformat()}
    assert health.state(row, NOW) == "ok"
    assert health.state({**row, "error_count": 2,
                         "failing_since": (NOW - timedelta(hours=1)).isoformat()},
                        NOW) == "failing"
    assert health.state({**row, "retired_at": NOW.isoformat()}, NOW) == "retired"
    assert health.state({**row, "active": 0}, NOW) == "inactive"


def test_retry_after_seconds_and_http_date() -> None:
    ten = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert parse_retry_after("120", ten) == 120
    assert parse_retry_after("Sat, 28 Nov 2026 10:05:00 GMT", ten) == 300
    assert parse_retry_after("soon", ten) is None
    assert parse_retry_after("Sat, 28 Nov 2026 09:00:00 GMT", ten) == 0


def test_cache_control_max_age() -> None:
    assert parse_max_age("public, max-age=3600") == 3600
    assert parse_max_age("s-maxage=60") is None
    assert parse_max_age("max-age=600, no-store") is None
    assert parse_max_age(None) is None


def test_source_backoff_is_exponential_and_capped() -> None:
    assert next_check(NOW, 600) == NOW + timedelta(minutes=10)
    assert next_check(NOW, 600, failures=1) == NOW + timedelta(minutes=20)
    assert next_check(NOW, 600, failures=3) == NOW + timedelta(minutes=80)
    assert next_check(NOW, 600, failures=30) == NOW + MAX_BACKOFF
