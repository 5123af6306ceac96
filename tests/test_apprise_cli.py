"""The apprise channel through Apprise's JSON URL, and the operating commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests.conftest import FakeClock, Project
from tests.feeds import Item, rss
from tests.servers import Page, Receiver, Site
from tests.smtp import SmtpServer


def apprise_channel(project: Project, receiver: Receiver, **extra: Any) -> None:
    host_port = receiver.url("").removeprefix("http://")
    project.settings.setdefault("channels", {})["chat"] = {
        "type": "apprise", "urls": [f"json://{host_port}/notify"], "timeout": "5s",
        "retry": {"attempts": 3, "base_delay": "10s"}, **extra}
    project.watchlists = [{**project.watchlists[0], "channels": ["chat"]}]


def feed(project: Project, site: Site, *titles: str) -> None:
    site.pages["/rss.xml"] = Page(rss([Item(t, site.url(f"/a/{n}"), "", f"g{n}",
                                            datetime.now(UTC)) for n, t in enumerate(titles)]))
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]


def test_apprise_json_url_delivers_and_a_failure_is_retried(
        project: Project, site: Site, receiver: Receiver) -> None:
    feed(project, site, "Atta Mohammad Noor speaks")
    apprise_channel(project, receiver)
    receiver.script = [(500, {})]
    clock = FakeClock()
    first = project.once(clock).delivery
    assert (first.delivered, first.retrying) == (0, 1)
    clock.advance(11)
    assert project.once(clock).delivery.delivered == 1
    assert [h.status for h in receiver.hits] == [500, 200]
    body = json.loads(receiver.delivered()[0].body)
    assert body["title"] == "[afghan-opposition] Atta Mohammad Noor speaks"
    assert "*Atta Mohammad Noor* speaks" in body["message"]
    assert site.url("/a/0") in body["message"]
    clock.advance(3600)
    project.once(clock)
    assert len(receiver.hits) == 2


def test_test_alert_reports_the_exact_outcome_on_each_channel_type(
        project: Project, receiver: Receiver) -> None:
    smtp = SmtpServer("none")
    try:
        project.hook(receiver.url("/hook"))
        apprise_channel(project, receiver)
        project.settings["channels"]["mail"] = {
            "type": "email", "to": "desk@example.org", "from": "nw@example.org",
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none"}}
        project.watchlists = [{**project.watchlists[0], "channels": ["hook", "mail"]}]

        hook = project.cli("test-alert", "hook")
        assert hook.returncode == 0, hook.stderr
        assert "delivered to hook (HTTP 200)" in hook.stdout
        mail = json.loads(project.cli("test-alert", "mail", "--json", check=True).stdout)
        assert (mail["delivered"], mail["detail"]) == (True, "SMTP 250")
        (got,) = smtp.mailbox.received()
        assert got.message["Message-ID"] == f"<{mail['message_id']}@newswatch>"
        assert got.message["Subject"] == \
            "[afghan-opposition] Test alert: Ahmad Massoud in the news"
        assert project.cli("test-alert", "chat", check=True).returncode == 0

        smtp.mailbox.script = ["550 5.7.1 relaying denied"]
        refused = project.cli("test-alert", "mail")
        assert refused.returncode == 1
        assert "SMTP 550" in refused.stderr and "relaying denied" in refused.stderr
        assert "permanent" in refused.stderr
        receiver.default = (503, {})
        down = project.cli("test-alert", "hook")
        assert down.returncode == 1 and "HTTP 503" in down.stderr
        assert "would be retried" in down.stderr
        unknown = project.cli("test-alert", "hoook")
        assert unknown.returncode == 1 and "no channel named 'hoook'" in unknown.stderr
    finally:
        smtp.close()
    hooks = [h for h in receiver.hits if h.path == "/hook"]
    assert json.loads(hooks[0].body)["type"] == "article.matched"
    assert project.store().alert_counts() == {}, "test alerts never enter the outbox"


def test_alerts_lists_states_and_retry_requeues_dead_alerts(
        project: Project, site: Site, receiver: Receiver) -> None:
    feed(project, site, "Atta Mohammad Noor speaks", "Ahmad Massoud replies")
    project.hook(receiver.url("/hook"))
    receiver.default = (410, {})
    project.cli("once", check=True)
    listing = json.loads(project.cli("alerts", "--json", check=True).stdout)
    assert listing["counts"] == {"dead": 2}
    dead_ids = sorted(a["id"] for a in listing["alerts"])
    table = project.cli("alerts", "--status", "dead", check=True).stdout
    assert "HTTP 410" in table and "2 dead" in table

    receiver.default = (200, {})
    first = project.cli("alerts", "retry", str(dead_ids[0]), check=True)
    assert "1 alert(s) requeued" in first.stdout
    project.cli("once", check=True)
    assert len(receiver.delivered()) == 1
    rest = project.cli("alerts", "retry", "--dead", check=True)
    assert "1 alert(s) requeued" in rest.stdout
    project.cli("once", check=True)
    assert len(receiver.delivered()) == 2
    ids = {h.headers["webhook-id"] for h in receiver.hits}
    assert len(ids) == 2, "a requeued alert keeps its webhook-id"

    again = project.cli("alerts", "retry", str(dead_ids[0]))
    assert again.returncode == 1, "a delivered alert is never requeued"
    project.cli("once", check=True)
    assert len(receiver.delivered()) == 2
    assert json.loads(project.cli("alerts", "--json", check=True).stdout)["counts"] == \
        {"delivered": 2}
    assert project.cli("alerts", "retry").returncode == 2
