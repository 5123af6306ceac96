"""Webhook delivery against a real local receiver: retries, dead alerts, isolation."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from alerts import outbox, retry, webhook
from crawler.app.daemon import Runner
from crawler.config import RetryPolicy
from crawler.process.extract import extract
from tests import schema
from tests.conftest import FakeClock, Project
from tests.feeds import Item, rss
from tests.helpers import free_port, make_article, massoud_noor_dialogue
from tests.servers import Page, Receiver, Site, TricklingReceiver
from tests.test_end_to_end import verify

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def feed_with(site: Site, *titles: str) -> None:
    now = datetime.now(UTC)
    site.pages["/rss.xml"] = Page(rss([Item(t, site.url(f"/a/{n}"), "", f"g{n}", now)
                                       for n, t in enumerate(titles)]))


def runner(project: Project, clock: FakeClock) -> Runner:
    config = project.config()
    return Runner(config, project.store(), clock=clock)


def test_503_with_retry_after_then_200_same_id_fresh_signature(
        project: Project, site: Site, receiver: Receiver) -> None:
    feed_with(site, "Atta Mohammad Noor speaks")
    project.hook(receiver.url("/hook"), retry={"attempts": 5, "base_delay": "1s"})
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    receiver.script = [(503, {"Retry-After": "120"})]
    clock = FakeClock()
    nw = runner(project, clock)

    report = asyncio.run(nw.once()).delivery
    assert (report.delivered, report.retrying) == (0, 1)
    assert [h.status for h in receiver.hits] == [503]

    clock.advance(60)  # Retry-After is a floor: not yet
    asyncio.run(nw.once())
    assert len(receiver.hits) == 1

    clock.advance(61)
    assert asyncio.run(nw.once()).delivery.delivered == 1
    failed, delivered = receiver.hits
    assert delivered.status == 200
    assert failed.headers["webhook-id"] == delivered.headers["webhook-id"]
    assert failed.headers["webhook-timestamp"] != delivered.headers["webhook-timestamp"]
    assert failed.headers["webhook-signature"] != delivered.headers["webhook-signature"]
    verify(delivered)

    clock.advance(3600)
    asyncio.run(nw.once())
    assert len(receiver.hits) == 2, "nothing is sent again after delivery was recorded"


def test_400_is_dead_at_once_and_failing_channel_blocks_no_other(
        project: Project, site: Site, receiver: Receiver) -> None:
    feed_with(site, "Atta Mohammad Noor speaks", "Ahmad Massoud replies")
    retry = {"attempts": 3, "base_delay": "10s"}
    project.settings["channels"] = {
        name: {"type": "webhook", "url": receiver.url(f"/{name}"), "retry": retry}
        for name in ("rejects", "down", "fine")}
    project.watchlists = [{**project.watchlists[0], "channels": ["rejects", "down", "fine"]}]
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    receiver.answerer = lambda hit: {"/rejects": (400, {}), "/down": (500, {})}.get(hit.path)
    clock = FakeClock()
    nw = runner(project, clock)

    first = asyncio.run(nw.once()).delivery
    assert first.delivered == 2  # "fine" got both articles in the first pass
    assert len(first.dead) == 2 and all("HTTP 400" in d for d in first.dead)
    for _ in range(5):
        clock.advance(3600)
        asyncio.run(nw.once())

    paths = [h.path for h in receiver.hits]
    assert paths.count("/rejects") == 2, "a 400 is permanent: one attempt per alert"
    assert paths.count("/down") == 6, "3 attempts per alert, then dead"
    assert paths.count("/fine") == 2
    store = project.store()
    counts = store.alert_counts()
    assert counts == {"delivered": 2, "dead": 4}
    dead = store.alerts("dead")
    assert {a["channel"] for a in dead} == {"rejects", "down"}
    assert all(a["last_error"].startswith("HTTP ") for a in dead)


def test_redirect_is_not_followed(project: Project, site: Site, receiver: Receiver) -> None:
    feed_with(site, "Atta Mohammad Noor speaks")
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    receiver.default = (302, {"Location": receiver.url("/elsewhere")})
    report = asyncio.run(runner(project, FakeClock()).once()).delivery
    assert [h.path for h in receiver.hits] == ["/hook"]
    assert len(report.dead) == 1 and "redirects are not followed" in report.dead[0]


def test_unreachable_receiver_retries_until_it_answers(project: Project, site: Site,
                                                      receiver: Receiver) -> None:
    feed_with(site, "Atta Mohammad Noor speaks")
    project.hook(f"http://127.0.0.1:{free_port()}/hook")
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    clock = FakeClock()
    report = asyncio.run(runner(project, clock).once()).delivery
    assert (report.delivered, report.retrying, report.dead) == (0, 1, [])
    pending = project.store().alerts("pending")
    assert pending[0]["attempts"] == 1 and "cannot reach" in pending[0]["last_error"]

    # The operator fixes the URL; the queued alert (keyed by channel name) goes out.
    project.hook(receiver.url("/hook"))
    clock.advance(3600)
    assert asyncio.run(runner(project, clock).once()).delivery.delivered == 1
    assert len(receiver.delivered()) == 1
    assert receiver.delivered()[0].headers["webhook-id"] == pending[0]["message_id"]


class _RaisesOnce(httpx.AsyncBaseTransport):
    """A real transport that fails the first request with an error no sender expects."""

    def __init__(self) -> None:
        self.raised = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.raised:
            self.raised = True
            raise RuntimeError("a bug in a sender")
        # a transport per request: each once() below runs in an event loop of its own
        async with httpx.AsyncHTTPTransport() as inner:
            response = await inner.handle_async_request(request)
            return httpx.Response(response.status_code, headers=response.headers,
                                  content=await response.aread())


def test_a_surprise_while_sending_costs_one_attempt_and_resends_nothing(
        project: Project, site: Site, receiver: Receiver) -> None:
    feed_with(site, "Atta Mohammad Noor speaks", "Ahmad Massoud replies",
              "An intra-Afghan dialogue opens")
    project.hook(receiver.url("/hook"), retry={"attempts": 5, "base_delay": "1s"})
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    receiver.script = [(503, {"Retry-After": "²"})]  # isdigit() says yes, float() says no
    clock = FakeClock()
    nw = Runner(project.config(), project.store(), clock=clock, deliver_transport=_RaisesOnce())

    first = asyncio.run(nw.once()).delivery
    assert (first.delivered, first.retrying) == (1, 2)
    for _ in range(3):
        clock.advance(3600)
        asyncio.run(nw.once())

    ids = [h.headers["webhook-id"] for h in receiver.delivered()]
    assert len(ids) == 3 == len(set(ids)), "each alert delivered exactly once"
    assert len(receiver.hits) == 4, "one 503, three deliveries; nothing sent twice"
    errors = [r["error"] for r in schema.rows(project.store(),
        "SELECT error FROM delivery_attempts WHERE outcome = 'retry' ORDER BY id")]
    assert len(errors) == 2
    assert any(e.startswith("unexpected RuntimeError: a bug in a sender") for e in errors)
    assert any(e.startswith("HTTP 503") for e in errors)


@pytest.mark.slow
def test_a_trickling_receiver_is_cut_at_the_channel_timeout(project: Project,
                                                            site: Site) -> None:
    """httpx's timeout is per read: without a deadline on the whole send, a receiver
    sending a byte now and then would keep it open past the alert's lease."""
    receiver = TricklingReceiver()
    try:
        feed_with(site, "Atta Mohammad Noor speaks")
        project.hook(receiver.url("/hook"), timeout="1s")
        project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
        report = asyncio.run(runner(project, FakeClock()).once()).delivery
        assert (report.delivered, report.retrying) == (0, 1)
        [row] = project.store().alerts()
        assert "within 1s" in row["last_error"]
    finally:
        receiver.close()


def test_plan_makes_one_row_per_watchlist_and_channel_with_stable_ids() -> None:
    a = extract(make_article(content_html="<p>Noor and Massoud</p>"), NOW)
    found = massoud_noor_dialogue().match(a)
    rows = outbox.plan(a, found, {"w": ["hook", "mail"]}, NOW, timedelta(hours=48))
    assert [r.channel for r in rows] == ["hook", "mail"]
    again = outbox.plan(a, found, {"w": ["hook", "mail"]}, NOW + timedelta(hours=1),
                        timedelta(hours=48))
    assert [r.message_id for r in rows] == [r.message_id for r in again]
    assert rows[0].message_id != rows[1].message_id
    [watchlist] = rows[0].payload["data"]["watchlists"]
    assert [i["watch"] for i in watchlist["items"]] == ["Noor", "Ahmad Massoud"]


def test_old_items_are_not_alerted_and_undated_are() -> None:
    found = massoud_noor_dialogue().match(make_article(text="Noor"))
    old = make_article(text="Noor", published_at=NOW - timedelta(hours=49))
    undated = make_article(text="Noor")
    assert outbox.plan(old, found, {"w": ["hook"]}, NOW, timedelta(hours=48)) == []
    assert len(outbox.plan(undated, found, {"w": ["hook"]}, NOW, timedelta(hours=48))) == 1


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    signature = webhook.sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                             "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                             b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert webhook.secret_key("plain secret") == b"plain secret"


def test_backoff_grows_jitters_honours_retry_after_and_ends() -> None:
    policy = RetryPolicy(attempts=4, base_delay=10, max_delay=25)
    rng = random.Random(7)
    delays = [(retry.next_attempt(policy, n, NOW, rng) - NOW).total_seconds()  # type: ignore[operator]
              for n in (1, 2, 3)]
    assert 5 <= delays[0] <= 10 and 10 <= delays[1] <= 20 and 12.5 <= delays[2] <= 25
    assert retry.next_attempt(policy, 4, NOW, rng) is None
    late = retry.next_attempt(policy, 1, NOW, rng, retry_after=600)
    assert late == NOW + timedelta(seconds=600)
    capped = retry.next_attempt(policy, 1, NOW, rng, retry_after=10**9)
    assert capped == NOW + retry.MAX_RETRY_AFTER


class _Top(random.Random):
    """Jitter at its top: every delay at its full length."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_default_retry_policy_spans_about_a_day() -> None:
    policy = RetryPolicy()
    delays = [retry.next_attempt(policy, n, NOW, _Top()) for n in range(1, policy.attempts)]
    total = sum((d - NOW for d in delays if d is not None), timedelta())
    assert len(delays) == policy.attempts - 1 and None not in delays
    assert timedelta(hours=18) <= total <= timedelta(hours=36)
    assert retry.next_attempt(policy, policy.attempts, NOW, _Top()) is None
