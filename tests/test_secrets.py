"""Issue #12 finding 7: a channel URL's token never reaches a log, a notice, the database
or the CLI. Slack and Discord put the secret in the path, so the path goes too."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import httpx
import pytest

from alerts import apprise_channel, webhook
from crawler.config import WebhookChannel
from crawler.core.errors import DeliveryError
from crawler.core.redact import scrub, shown_url
from tests.feeds import Item, rss
from tests.helpers import FakeClock, Project
from tests.servers import Page, Receiver, Site

PATH_TOKEN = "PathT0kenXq7"
QUERY_TOKEN = "QueryT0kenZk9"


def test_a_failing_webhook_leaks_no_token(project: Project, site: Site, receiver: Receiver,
                                          caplog: pytest.LogCaptureFixture) -> None:
    hook = receiver.url(f"/hook/{PATH_TOKEN}?token={QUERY_TOKEN}")
    project.settings["channels"] = {
        "hook": {"type": "webhook", "url": hook, "retry": {"attempts": 1}},
        "ops": {"type": "webhook", "url": receiver.url("/ops")}}
    project.settings["operator"] = "ops"
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    site.pages["/rss.xml"] = Page(rss([Item("Ahmad Massoud speaks", site.url("/a/1"), "",
                                            "g1", datetime.now(UTC))]))
    receiver.answerer = lambda hit: (500, {}) if hit.path.startswith("/hook") else None
    caplog.set_level(logging.DEBUG)
    for noisy in ("httpx", "httpcore"):  # as the CLI sets them: their lines name URLs
        caplog.set_level(logging.WARNING, logger=noisy)

    project.once(FakeClock())

    assert any(h.path.startswith("/hook") for h in receiver.hits), "the hook was tried"
    notices = [json.loads(h.body)["data"] for h in receiver.delivered() if h.path == "/ops"]
    assert notices and "HTTP 500" in notices[0]["last_error"]
    assert shown_url(hook) in notices[0]["last_error"], "the channel is still recognisable"
    db = project.store()._db
    texts = {
        "log": "\n".join(r.getMessage() for r in caplog.records),
        "notice": json.dumps(notices),
        "outbox.last_error": json.dumps([r[0] for r in db.execute(
            "SELECT last_error FROM outbox").fetchall()]),
        "delivery_attempts.error": json.dumps([r[0] for r in db.execute(
            "SELECT error FROM delivery_attempts").fetchall()]),
        "incidents.message": json.dumps([r[0] for r in db.execute(
            "SELECT message FROM incidents").fetchall()]),
        "alerts": project.cli("alerts", check=True).stdout,
        "alerts --json": project.cli("alerts", "--json", check=True).stdout,
        "test-alert": str(project.cli("test-alert", "hook")),
    }
    assert "HTTP 500" in texts["incidents.message"] and "HTTP 500" in texts["test-alert"]
    for where, text in texts.items():
        assert PATH_TOKEN not in text and QUERY_TOKEN not in text, where


def test_a_url_is_shown_as_its_host_and_a_hash() -> None:
    url = f"https://user:pw@hooks.slack.com:8443/services/{PATH_TOKEN}?token={QUERY_TOKEN}"
    shown = shown_url(url)
    assert shown.startswith("https://hooks.slack.com:8443/…#") and len(shown) == 39
    assert shown_url(url + "x") != shown, "two channels on one host stay apart"
    text = f"cannot reach {url}: boom (see {url}), then http://e.org/p?q=1."
    assert scrub(text) == (f"cannot reach {shown}: boom (see {shown}), then "
                           f"{shown_url('http://e.org/p?q=1')}.")
    assert scrub(scrub(text)) == scrub(text), "scrubbing twice changes nothing"
    assert scrub("no URL at all, only SMTP 451 <busy>") == "no URL at all, only SMTP 451 <busy>"
    assert scrub("HTTP 500 from http://[::1").startswith("HTTP 500 from http://…#")


def test_apprise_urls_are_shown_in_apprise_privacy_mode() -> None:
    shown = apprise_channel.shown
    url = f"slack://{PATH_TOKEN}/B0AAAAAAA/{QUERY_TOKEN}"
    assert PATH_TOKEN not in shown(url) and QUERY_TOKEN not in shown(url)
    assert shown(url).startswith("slack://")
    assert shown("nonsense") == "(an apprise URL)"


def test_an_http_library_error_naming_the_url_is_scrubbed() -> None:
    """httpx errors may quote the request URL (a mock: no real error says it reliably)."""
    url = f"http://127.0.0.1:9/hook/{PATH_TOKEN}?token={QUERY_TOKEN}"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    async def send() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
            await webhook.send(client, "hook", WebhookChannel(type="webhook", url=url),
                               "msg_1", {"type": "article.matched"}, datetime.now(UTC))

    with pytest.raises(DeliveryError) as failed:
        asyncio.run(send())
    assert PATH_TOKEN not in str(failed.value) and QUERY_TOKEN not in str(failed.value)
    assert failed.value.message.startswith(f"cannot reach {shown_url(url)}: cannot connect")


def test_a_failing_apprise_url_leaks_no_token(project: Project, receiver: Receiver) -> None:
    """Through the CLI, whose log (at debug) goes to stderr: Apprise's own log lines quote
    its URLs whole."""
    url = receiver.url(f"/hook/{PATH_TOKEN}?token={QUERY_TOKEN}").replace("http", "json", 1)
    receiver.default = (500, {})
    project.settings["channels"] = {"hook": {"type": "apprise", "urls": [
        url, f"slack://T0AAAAAAA/B0BBBBBBB/{PATH_TOKEN}{QUERY_TOKEN}"]}}
    result = project.cli("--log-level", "debug", "test-alert", "hook")
    assert receiver.hits, "apprise tried"
    assert result.returncode != 0 and "not delivered" in result.stderr
    for text in (result.stdout, result.stderr):
        assert PATH_TOKEN not in text and QUERY_TOKEN not in text


def test_check_does_not_print_an_apprise_url_it_cannot_parse(project: Project) -> None:
    """A guard, not a fix: Apprise masks the URL in this line itself."""
    project.settings["channels"] = {"hook": {"type": "apprise",
                                             "urls": [f"slack://{PATH_TOKEN}"]}}
    result = project.cli("check")
    assert result.returncode != 0 and "urls" in result.stdout + result.stderr
    assert PATH_TOKEN not in result.stdout + result.stderr
