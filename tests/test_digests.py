"""Digests, max_per_hour and priority, driven by an injected clock against real servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts import digest
from tests.conftest import WATCHLIST, FakeClock, Project
from tests.feeds import Item, rss
from tests.payloads import valid_payload
from tests.servers import Hit, Page, Receiver, Site
from tests.smtp import SmtpServer


def payload_of(hit: Hit) -> dict[str, Any]:
    """The body, validated against the documented schema of its type and version."""
    return valid_payload(json.loads(hit.body))


def quarter_past() -> FakeClock:
    """Today at hh:15 UTC (the feed items are dated now, so they are never too old)."""
    return FakeClock(datetime.now(UTC).replace(minute=15, second=0, microsecond=0)
                     - timedelta(hours=1))


class Feed:
    """A feed the test adds matching items to."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.items: list[Item] = []

    def add(self, *titles: str) -> None:
        for title in titles:
            n = len(self.items)
            self.items.append(Item(title, self.site.url(f"/a/{n}"), "", f"g{n}",
                                   datetime.now(UTC)))
        self.site.pages["/rss.xml"] = Page(rss(self.items))


def titles(body: dict[str, Any]) -> dict[str, list[str]]:
    """A digest's article titles per watchlist, in either payload version."""
    if body["version"] == 1:
        return {g["watchlist"]: [a["article"]["title"] for a in g["alerts"]]
                for g in body["data"]["watchlists"]}
    found: dict[str, list[str]] = {}
    for alert in body["data"]["alerts"]:
        for watchlist in alert["watchlists"]:
            found.setdefault(watchlist["name"], []).append(alert["article"]["title"])
    return found


@pytest.fixture
def feed(site: Site) -> Feed:
    return Feed(site)


def setup(project: Project, receiver: Receiver, site: Site, **channel: Any) -> None:
    project.hook(receiver.url("/hook"), **channel)
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    second = {"name": "regional", "channels": ["hook"],
              "watch": [{"name": "Dostum"}, {"name": "Mohaqiq", "priority": "high"}]}
    project.watchlists = [WATCHLIST, second]


@pytest.mark.parametrize(("group", "version"), [("story", 2), ("watchlist", 1)])
def test_hourly_digest_holds_everything_due_in_one_delivery(
        project: Project, site: Site, receiver: Receiver, feed: Feed, group: str,
        version: int) -> None:
    """Both groupings: a ``group: watchlist`` channel's digest keeps the version-1 shape."""
    setup(project, receiver, site, digest="hourly", group=group)
    clock = quarter_past()
    feed.add("Atta Mohammad Noor speaks", "Ahmad Massoud replies", "Dostum returns")
    project.once(clock)
    assert receiver.hits == []
    assert project.store().alert_counts() == {"held": 3}

    clock.advance(44 * 60 + 58)  # hh:59:58
    feed.add("Atta Mohammad Noor again")
    project.once(clock)
    assert receiver.hits == [], "nothing before the hour"

    clock.advance(3)  # past the full hour
    report = project.once(clock).delivery
    assert (report.digests, report.delivered) == (1, 1)
    (hit,) = receiver.delivered()
    body = payload_of(hit)
    assert body["type"] == "digest" and body["data"]["count"] == 4
    assert body["version"] == version
    assert titles(body) == {"afghan-opposition": ["Atta Mohammad Noor speaks",
                                            "Ahmad Massoud replies",
                                            "Atta Mohammad Noor again"],
                      "regional": ["Dostum returns"]}
    assert project.store().alert_counts() == {"delivered": 5}, "4 alerts and their digest"

    clock.advance(3600)  # an empty hour
    assert project.once(clock).delivery.digests == 0
    assert len(receiver.hits) == 1, "an empty digest sends nothing"


def test_a_failed_digest_is_retried_under_its_id_and_new_alerts_wait_for_the_next(
        project: Project, site: Site, receiver: Receiver, feed: Feed) -> None:
    setup(project, receiver, site, digest="hourly")
    receiver.script = [(503, {})]
    clock = quarter_past()
    feed.add("Atta Mohammad Noor speaks")
    project.once(clock)
    clock.advance(3600)
    assert project.once(clock).delivery.retrying == 1
    feed.add("Ahmad Massoud replies")  # queued while the digest waits for its retry
    clock.advance(5)
    assert project.once(clock).delivery.delivered == 1
    failed, sent = receiver.hits
    assert failed.headers["webhook-id"] == sent.headers["webhook-id"]
    assert titles(payload_of(sent)) == {"afghan-opposition": ["Atta Mohammad Noor speaks"]}
    clock.advance(3600)
    project.once(clock)
    assert len(receiver.delivered()) == 2
    later = payload_of(receiver.delivered()[1])
    assert titles(later) == {"afghan-opposition": ["Ahmad Massoud replies"]}
    assert receiver.delivered()[1].headers["webhook-id"] != sent.headers["webhook-id"]


def test_high_priority_item_bypasses_the_digest(
        project: Project, site: Site, receiver: Receiver, feed: Feed) -> None:
    setup(project, receiver, site, digest="hourly")
    clock = quarter_past()
    feed.add("Dostum returns", "Mohaqiq warns of famine")
    project.once(clock)
    (hit,) = receiver.delivered()
    body = payload_of(hit)
    assert body["type"] == "article.matched"
    assert body["data"]["article"]["title"] == "Mohaqiq warns of famine"
    assert project.store().alert_counts() == {"held": 1, "delivered": 1}


def test_max_per_hour_overflow_goes_to_the_next_digest_and_priority_is_not_counted(
        project: Project, site: Site, receiver: Receiver, feed: Feed) -> None:
    setup(project, receiver, site, max_per_hour=2)
    clock = quarter_past()
    feed.add(*(f"Atta Mohammad Noor statement {n}" for n in range(5)))
    feed.add("Mohaqiq warns of famine")
    report = project.once(clock).delivery
    assert report.delivered == 3, "two within the limit and the high-priority one"
    immediate = [payload_of(h)["data"]["article"]["title"] for h in receiver.delivered()]
    assert sorted(immediate) == ["Atta Mohammad Noor statement 0",
                                 "Atta Mohammad Noor statement 1", "Mohaqiq warns of famine"]
    assert project.store().alert_counts() == {"delivered": 3, "held": 3}

    clock.advance(45 * 60 + 1)  # the next full hour: no digest set, so hourly
    assert project.once(clock).delivery.digests == 1
    body = payload_of(receiver.delivered()[-1])
    assert body["type"] == "digest"
    assert titles(body) == {"afghan-opposition": [
        f"Atta Mohammad Noor statement {n}" for n in (2, 3, 4)]}

    # The window is rolling: the two sent at hh:15 still count at hh+1:10 ...
    feed.add("Atta Mohammad Noor statement 5")
    clock.advance(10 * 60)
    assert project.once(clock).delivery.delivered == 0
    assert project.store().alert_counts()["held"] == 1
    # ... and no longer at hh+1:16, when two of the next three go at once.
    feed.add("Atta Mohammad Noor statement 6", "Atta Mohammad Noor statement 7",
             "Atta Mohammad Noor statement 8")
    clock.advance(6 * 60)
    assert project.once(clock).delivery.delivered == 2
    assert project.store().alert_counts()["held"] == 2


def test_email_digest_is_one_message_grouped_by_watchlist(
        project: Project, site: Site, feed: Feed, smtp: SmtpServer) -> None:
    project.settings["timezone"] = "Asia/Kabul"
    project.settings["channels"] = {"mail": {
        "type": "email", "to": "desk@example.org", "from": "nw@example.org",
        "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none"},
        "digest": "daily at 08:00"}}
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    project.watchlists = [{**WATCHLIST, "channels": ["mail"]},
                          {"name": "regional", "channels": ["mail"],
                           "watch": [{"name": "Dostum"}]}]
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = FakeClock(start)  # 04:30 in Kabul: the digest is due at 03:30 UTC
    feed.add("Atta Mohammad Noor speaks", "Dostum returns")
    project.once(clock)
    clock.advance(3 * 3600 + 29 * 60)
    project.once(clock)
    assert smtp.mailbox.received() == []
    clock.advance(2 * 60)
    assert project.once(clock).delivery.delivered == 1
    (got,) = smtp.mailbox.received()
    assert got.message["Subject"] == \
        "[newswatch] digest: 2 alerts for afghan-opposition, regional"
    text = got.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    noor, dostum = text.split("==========")[1:]  # one section per story, each under its list
    assert "Atta Mohammad Noor speaks" in noor and "afghan-opposition:" in noor.splitlines()
    assert "Dostum returns" in dostum and "regional:" in dostum.splitlines()
    row = next(r for r in project.store().alerts() if r["kind"] == "digest")
    assert got.message["Message-ID"] == f"<{row['message_id']}@newswatch>"


def test_next_slot_reads_the_schedule_in_the_configured_time_zone() -> None:
    at = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night Europe/London moves to BST
    assert digest.next_slot("hourly", "UTC", at) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert digest.next_slot("daily at 08:00", "Asia/Kabul", at) == \
        datetime(2026, 3, 29, 3, 30, tzinfo=UTC)
    assert digest.next_slot("daily at 08:00", "Europe/London", at) == \
        datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert digest.next_slot("0 8,18 * * 1-5", "UTC", at) == \
        datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    exactly = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert digest.next_slot("hourly", "UTC", exactly) == exactly + timedelta(hours=1)
    sunday = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # a Saturday noon
    assert digest.next_slot("0 9 * * 0", "UTC", sunday) == \
        datetime(2026, 3, 29, 9, 0, tzinfo=UTC)
    assert digest.next_slot("0 9 * * 7", "UTC", sunday) == \
        datetime(2026, 3, 29, 9, 0, tzinfo=UTC)
    assert digest.next_slot("0 9 * * sat", "UTC", sunday) == \
        datetime(2026, 4, 4, 9, 0, tzinfo=UTC)
    assert digest.next_slot("0 9 * * monday-friday", "UTC", sunday) == \
        datetime(2026, 3, 30, 9, 0, tzinfo=UTC)


def test_a_schedule_restricting_day_and_weekday_fires_on_either_as_cron_does() -> None:
    saturday = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    monday = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # a Monday, not the 1st
    assert digest.next_slot("0 8 1 * 1", "UTC", saturday) == monday
    assert digest.next_slot("0 8 1 * 1", "UTC", monday) == \
        datetime(2026, 4, 1, 8, 0, tzinfo=UTC)  # the 1st, a Wednesday
    # one field left as * restricts nothing: only the other one counts
    assert digest.next_slot("0 8 * * 1", "UTC", monday) == monday + timedelta(days=7)
    assert digest.next_slot("0 8 1 * *", "UTC", monday) == \
        datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


def test_a_digest_time_in_the_hour_skipped_by_the_clock_change_goes_out_as_it_ends() -> None:
    """01:30 does not exist in London on 29 March 2026: cron sends at 02:00 BST."""
    at = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert digest.next_slot("daily at 01:30", "Europe/London", at) == \
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # ... and a daily digest at midnight does not skip the day after the change
    assert digest.next_slot("daily at 00:00", "America/New_York",
                            datetime(2026, 3, 8, 6, 0, tzinfo=UTC)) == \
        datetime(2026, 3, 9, 4, 0, tzinfo=UTC)


def test_a_dead_digest_is_requeued_whole_and_its_members_follow_it(
        project: Project, site: Site, receiver: Receiver, feed: Feed) -> None:
    setup(project, receiver, site, digest="hourly")
    receiver.default = (410, {})
    clock = quarter_past()
    feed.add("Atta Mohammad Noor speaks", "Ahmad Massoud replies")
    project.once(clock)
    clock.advance(3600)
    assert len(project.once(clock).delivery.dead) == 1
    store = project.store()
    assert store.alert_counts() == {"dead": 3}
    member = next(r for r in store.alerts() if r["kind"] == "alert")

    receiver.default = (200, {})
    assert store.requeue(clock.now(), [member["id"]]) == 1, "requeued as its digest"
    assert store.alert_counts() == {"pending": 1, "digested": 2}
    assert project.once(clock).delivery.delivered == 1
    failed, sent = receiver.hits
    assert failed.headers["webhook-id"] == sent.headers["webhook-id"]
    assert payload_of(sent)["data"]["count"] == 2
    assert store.alert_counts() == {"delivered": 3}
    assert store.requeue(clock.now(), dead=True) == 0
