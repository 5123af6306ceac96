"""The pure parts: dedup keys, extraction, feed parsing, matching, signing, schedules."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from twisted.internet.address import IPv4Address

from alerts import outbox, retry, webhook
from crawler.collect.feeds import parse_feed
from crawler.collect.headers import parse_max_age, parse_retry_after
from crawler.collect.spiders import PublicOnlyResolver
from crawler.config import RetryPolicy, WatchItem, WatchlistConfig
from crawler.core.article import Article
from crawler.core.errors import ParseError
from crawler.process import dedup
from crawler.process.extract import extract, html_to_text
from crawler.process.match import Matcher
from crawler.process.schedule import MAX_BACKOFF, next_check
from tests.feeds import Item, atom, json_feed, rss

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def article(url: str = "https://e.org/a", guid: str | None = None, source: str = "S",
            **fields: object) -> Article:
    fields.setdefault("title", "t")
    return Article(source=source, url=dedup.canonical_url(url), link=url, guid=guid,
                   **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("url", "canonical"), [
    ("https://E.org/a?utm_source=x&utm_medium=rss&id=3#comments", "https://e.org/a?id=3"),
    ("HTTP://e.org:80/a?fbclid=1", "http://e.org/a"),
    ("https://e.org:8443/a?gclid=z&b=2&a=1", "https://e.org:8443/a?b=2&a=1"),
    ("https://e.org", "https://e.org/"),
    ("https://e.org/a?q=", "https://e.org/a?q="),
])
def test_canonical_url(url: str, canonical: str) -> None:
    assert dedup.canonical_url(url) == canonical


def test_select_new_by_url_and_by_guid() -> None:
    known = {"url:https://e.org/old", "guid:S\x1fg-old"}
    items = [
        article("https://e.org/old?utm_campaign=x"),  # known URL
        article("https://e.org/moved", guid="g-old"),  # known GUID from this source
        article("https://e.org/other", guid="g-old", source="T"),  # GUIDs are per source
        article("https://e.org/new#x"),
        article("https://e.org/new"),  # same article twice in one batch
    ]
    fresh = dedup.select_new([dedup.Keyed.of(a) for a in items], known)
    assert [k.article.url for k in fresh] == ["https://e.org/other", "https://e.org/new"]


def test_keys_after_extraction_add_only_what_the_page_gave() -> None:
    collected = dedup.Keyed.of(article("https://amp.e.org/a/1/amp?utm_source=x", guid="g",
                                       alternates=("https://e.org/a/1?ref_src=feed",)))
    page = dataclasses.replace(collected.article, url="https://e.org/story/1",
                               alternates=(*collected.article.alternates,
                                           collected.article.url, "https://m.e.org/story/1",
                                           "https://e.org/story/1"))
    extracted = collected.extracted(page)
    assert extracted.keys[:len(collected.keys)] == collected.keys
    assert sorted(extracted.keys) == sorted(dedup.keys(page))


def test_html_to_text() -> None:
    markup = ("<p>Atta&nbsp;Mohammad <b>Noor</b> said:</p><script>alert(1)</script>"
              "<ul><li>one</li><li>two &amp; three</li></ul>")
    assert html_to_text(markup) == "Atta Mohammad Noor said:\none\ntwo & three"
    assert html_to_text("plain text") == "plain text"


def test_extract_fills_plain_text_and_falls_back_to_summary() -> None:
    a = extract(article(summary_html="<p>Short <i>summary</i></p>", title="A &amp; B"), NOW)
    assert (a.title, a.summary, a.text) == ("A & B", "Short summary", "Short summary")
    b = extract(article(summary_html="s", content_html="<div>Full <b>body</b></div>"), NOW)
    assert b.text == "Full body"


@pytest.mark.parametrize("render", [rss, atom, json_feed])
def test_each_feed_format_parses(render: object) -> None:
    when = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    body = render([Item("Noor speaks", "/a/1?utm_source=x", "<p>Body</p>", "urn:x:1", when),  # type: ignore[operator]
                   Item("No date", "https://e.org/a/2", "", "urn:x:2")])
    articles = parse_feed("S", body, {}, "https://e.org/feed").articles
    assert [a.url for a in articles] == ["https://e.org/a/1", "https://e.org/a/2"]
    assert articles[0].link == "https://e.org/a/1?utm_source=x"
    assert articles[0].guid == "urn:x:1" and articles[0].published_at == when
    assert articles[1].published_at is None
    assert "Body" in articles[0].summary_html + articles[0].content_html


def test_not_a_feed_is_a_parse_error_naming_the_source() -> None:
    with pytest.raises(ParseError, match=r"^Tolo: not a readable feed"):
        parse_feed("Tolo", b"<html><body>Gateway timeout</body></html>",
                   {"content-type": "text/html"}, "https://e.org/feed")
    with pytest.raises(ParseError, match="not a JSON Feed"):
        parse_feed("J", b'{"hello": 1}', {"content-type": "application/json"}, "https://e.org")


def test_slightly_broken_feed_keeps_its_items() -> None:
    body = rss([Item("Noor speaks", "https://e.org/a/1")]).replace(b"</channel></rss>", b"")
    assert [a.url for a in parse_feed("S", body, {}, "https://e.org/feed").articles] == [
        "https://e.org/a/1"]


def matcher() -> Matcher:
    return Matcher([WatchlistConfig(name="w", watch=[
        WatchItem(name="Ahmad Massoud", aliases=["Ahmad Masoud", "Massoud"],
                  exclude=["Ahmad Shah Massoud"]),
        WatchItem(name="Noor"),
        WatchItem(name="intra-Afghan dialogue"),
    ])])


@pytest.mark.parametrize(("text", "expected"), [
    ("AHMAD MASOUD spoke", {"Ahmad Massoud"}),
    ("Ahmad Shah Massoud was killed in 2001", set()),
    ("Ahmad Shah Massoud's son Massoud spoke", {"Ahmad Massoud"}),
    ("Massoud’s forces", {"Ahmad Massoud"}),
    ("Noorzai was there", set()),
    ("the intra‑Afghan dialogue resumed", {"intra-Afghan dialogue"}),  # U+2011
    ("the intra–Afghan\n  dialogue", {"intra-Afghan dialogue"}),  # en dash, line break
    ("ＮＯＯＲ in full width", {"Noor"}),  # NFKC
])
def test_matching(text: str, expected: set[str]) -> None:
    found = matcher().match(article(text=text))
    assert {m.watch for m in found} == expected
    for m in found:
        assert text[m.start:m.end] == m.matched


def test_match_records_field_alias_and_snippet() -> None:
    text = ("Opening words. " * 10) + "Then Ahmad Masoud said the talks failed." + (
        " More words." * 10)
    [m] = matcher().match(article(text=text))
    assert (m.field, m.alias, m.matched) == ("text", "Ahmad Masoud", "Ahmad Masoud")
    assert "Ahmad Masoud said" in m.snippet and m.snippet.startswith("…")
    assert len(m.snippet) < 200


def test_plan_makes_one_row_per_watchlist_and_channel_with_stable_ids() -> None:
    a = extract(article(content_html="<p>Noor and Massoud</p>"), NOW)
    found = matcher().match(a)
    rows = outbox.plan(a, found, {"w": ["hook", "mail"]}, NOW, timedelta(hours=48))
    assert [r.channel for r in rows] == ["hook", "mail"]
    again = outbox.plan(a, found, {"w": ["hook", "mail"]}, NOW + timedelta(hours=1),
                        timedelta(hours=48))
    assert [r.message_id for r in rows] == [r.message_id for r in again]
    assert rows[0].message_id != rows[1].message_id
    assert len(rows[0].payload["data"]["matches"]) == 2


def test_old_items_are_not_alerted_and_undated_are() -> None:
    found = matcher().match(article(text="Noor"))
    old = article(text="Noor", published_at=NOW - timedelta(hours=49))
    undated = article(text="Noor")
    assert outbox.plan(old, found, {"w": ["hook"]}, NOW, timedelta(hours=48)) == []
    assert len(outbox.plan(undated, found, {"w": ["hook"]}, NOW, timedelta(hours=48))) == 1


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    signature = webhook.sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                             "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                             b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert webhook.secret_key("plain secret") == b"plain secret"


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after("Sat, 28 Nov 2026 10:05:00 GMT", NOW) == 300
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("Sat, 28 Nov 2026 09:00:00 GMT", NOW) == 0


def test_cache_control_max_age() -> None:
    assert parse_max_age("public, max-age=3600") == 3600
    assert parse_max_age("s-maxage=60") is None
    assert parse_max_age("max-age=600, no-store") is None
    assert parse_max_age(None) is None


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


def test_source_backoff_is_exponential_and_capped() -> None:
    assert next_check(NOW, 600) == NOW + timedelta(minutes=10)
    assert next_check(NOW, 600, failures=1) == NOW + timedelta(minutes=20)
    assert next_check(NOW, 600, failures=3) == NOW + timedelta(minutes=80)
    assert next_check(NOW, 600, failures=30) == NOW + MAX_BACKOFF


class _Answers:
    """A fake of the reactor's resolver: answers every name with fixed addresses."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    def resolveHostName(self, receiver: Any, host: str, port: int = 0,
                        *_: Any) -> Any:
        receiver.resolutionBegan(None)
        for address in self.addresses:
            receiver.addressResolved(IPv4Address("TCP", address, port))
        receiver.resolutionComplete()
        return receiver


class _Received:
    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.complete = False

    def resolutionBegan(self, resolution: Any) -> None:
        pass

    def addressResolved(self, address: Any) -> None:
        self.addresses.append(address.host)

    def resolutionComplete(self) -> None:
        self.complete = True


@pytest.mark.parametrize(("answer", "passed"), [
    (("93.184.215.14",), ["93.184.215.14"]),
    (("93.184.215.14", "10.0.0.7"), []),  # one private address refuses the whole answer
    (("169.254.169.254",), []),
])
def test_the_crawl_resolver_passes_on_public_answers_only(answer: tuple[str, ...],
                                                          passed: list[str]) -> None:
    """Scrapy connects to what its resolver answers, so checking there leaves no window
    for a name to turn private between check and connection (DNS rebinding)."""
    class Reactor:
        nameResolver = _Answers(*answer)

    received = _Received()
    PublicOnlyResolver.refused.clear()
    PublicOnlyResolver(Reactor()).resolveHostName(received, "news.example", 443)
    assert received.complete and received.addresses == passed
    assert ("news.example" in PublicOnlyResolver.refused) == (not passed)
