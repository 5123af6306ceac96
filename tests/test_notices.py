"""Operator notices: once per incident (alerts dead, a channel failing for an hour)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from alerts.notices import notice_row
from alerts.templates import Renderer, context
from tests.conftest import FakeClock, Project
from tests.feeds import Item, rss
from tests.servers import Page, Receiver, Site
from tests.test_digests import payload_of


class Feed:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.items: list[Item] = []

    def add(self, title: str) -> None:
        n = len(self.items)
        self.items.append(Item(title, self.site.url(f"/a/{n}"), "", f"g{n}",
                               datetime.now(UTC)))
        self.site.pages["/rss.xml"] = Page(rss(self.items))


def passes(project: Project, clock: FakeClock, count: int, step: float) -> None:
    for _ in range(count):
        project.once(clock)
        clock.advance(step)


def notices(receiver: Receiver) -> list[dict[str, Any]]:
    return [payload_of(h)["data"] for h in receiver.delivered() if h.path == "/ops"]


def test_one_notice_per_incident_not_per_alert(
        project: Project, site: Site, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    feed = Feed(site)
    retry = {"attempts": 3, "base_delay": "20m", "max_delay": "20m"}
    project.settings["channels"] = {
        "hook": {"type": "webhook", "url": receiver.url("/hook"), "retry": retry},
        "ops": {"type": "webhook", "url": receiver.url("/ops")}}
    project.settings["operator"] = "ops"
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    failing = True
    receiver.answerer = lambda hit: (500, {}) if hit.path == "/hook" and failing else None
    clock = FakeClock()
    caplog.set_level(logging.ERROR, logger="alerts.dispatch")

    feed.add("Atta Mohammad Noor speaks")
    feed.add("Ahmad Massoud replies")
    passes(project, clock, 4, 20 * 60)  # 3 attempts each over 40 minutes: both dead
    found = notices(receiver)
    assert [n["incident"] for n in found] == ["alert.dead"], "two dead alerts, one notice"
    assert found[0]["channel"] == "hook" and "HTTP 500" in found[0]["last_error"]
    assert len([r for r in caplog.records if "operator notice" in r.message]) == 1

    feed.add("Atta Mohammad Noor in Balkh")  # the same outage goes on past the hour
    passes(project, clock, 4, 20 * 60)
    assert [n["incident"] for n in notices(receiver)] == ["alert.dead", "channel.failing"]
    assert len({n["since"] for n in notices(receiver)}) == 1, "one streak, one start"

    failing = False  # the channel recovers ...
    receiver.answerer = lambda hit: (500, {}) if hit.path == "/hook" and failing else None
    feed.add("Atta Mohammad Noor again")
    passes(project, clock, 1, 60)
    failing = True  # ... and a new outage is a new incident
    feed.add("Ahmad Massoud again")
    passes(project, clock, 4, 20 * 60)
    found = notices(receiver)
    assert [n["incident"] for n in found] == ["alert.dead", "channel.failing", "alert.dead"]
    assert found[2]["since"] > found[0]["since"]
    assert len([r for r in caplog.records if "operator notice" in r.message]) == 3
    assert [i["kind"] for i in project.store().incidents()] == [
        "alert.dead", "channel.failing", "alert.dead"]
    ids = [json.loads(h.body)["type"] for h in receiver.delivered() if h.path == "/ops"]
    assert ids == ["operator.notice"] * 3


def test_a_notice_on_an_email_or_apprise_channel_uses_the_shipped_templates() -> None:
    since = datetime(2026, 11, 28, 7, 58, 10, tzinfo=UTC)
    row = notice_row("ops", "channel.failing", "desk", since, "SMTP 451 <busy>",
                     datetime(2026, 11, 28, 9, 0, tzinfo=UTC))
    rendered = Renderer().render(context(row.payload, "ops"))
    assert rendered.subject == ("[newswatch] operator notice: channel desk has been failing "
                                "for over an hour (since 2026-11-28T07:58:10Z); last error: "
                                "SMTP 451 <busy>")
    assert "newswatch alerts retry --dead" in rendered.text
    assert "SMTP 451 &lt;busy&gt;" in rendered.html
    assert row.priority, "a notice is never held or throttled"
