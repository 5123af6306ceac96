"""The desk's browsing pages against the real app on uvicorn: search (highlights, letter
variants and a watch item's other spellings, the period, query errors), a watch item's
timeline, sources with Poll now, the outbox with Retry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from crawler.core.clock import parse_iso
from crawler.process.fold import excerpts
from crawler.process.match import Match
from crawler.store import DeliveryResult, PollRecord, SQLiteStore
from tests.contract.conftest import alert_row, article, new, no_alerts, source
from tests.desk import client, csrf, make_desk, served, sign_in
from tests.helpers import WATCHLIST, Project

DARI = ("احمد مسعود روز سه شنبه با بزرگان پنجشیر دیدار کرد و درباره کاروان کمک های زمستانی "
        "گفتگو کرد.")
DARI_TITLE = "دیدار احمد مسعود با بزرگان پنجشیر"
ENGLISH = "Ahmad Massoud spoke to <b>reporters</b> about the Salang pass on Monday."
OLD = "Ahmad Massoud visited Herat long ago, when the archive was young."


def named(text: str, watch: str = "Ahmad Massoud", said: str | None = None) -> Match:
    said = said or watch
    start = text.index(said)
    return Match(WATCHLIST["name"], watch, said, said, "text", start, start + len(said),
                 *excerpts(text, start, start + len(said)))


@dataclass
class Browse:
    base: str
    dari_story: int
    english_story: int
    dead_alert: int


@pytest.fixture
def desk(project: Project):  # type: ignore[no-untyped-def]
    project.watchlists = [{**WATCHLIST, "watch": [
        {**WATCHLIST["watch"][0], "aliases": [*WATCHLIST["watch"][0]["aliases"],
                                              "احمد مسعود"]},
        *WATCHLIST["watch"][1:]]}]
    made = make_desk(project)
    store = SQLiteStore(made.config.database_path)
    now = datetime.now(UTC)

    def plan(art, matches, story):  # type: ignore[no-untyped-def]
        return [alert_row(WATCHLIST["name"], story.subject, "hook",
                          items=((WATCHLIST["name"], matches[0].watch),))] if matches else []

    try:
        store.sync_sources([source("Kabul"), source("Tolo"), source("Herat")], now)
        dari = article("Tolo", 2, DARI, DARI_TITLE)
        english = article("Kabul", 3, ENGLISH, "Salang <script>alert(1)</script> pass")
        [d, e] = store.add_articles([new(dari, [named(DARI, said="احمد مسعود")]),
                                     new(english, [named(ENGLISH)])], now, "v1", plan)
        store.add_articles([new(article("Herat", 4, OLD, "Herat, long ago"),
                                [named(OLD)])], now - timedelta(days=60), "v1", no_alerts)
        [claimed] = [a for a in store.claim_alerts("p", now, timedelta(minutes=1), ["hook"])
                     if a.message_id == e.rows[0].message_id]
        store.record_delivery(claimed.id, "p", now,
                              DeliveryResult("dead", 500, "HTTP 500 from the receiver"))
        store.release("p")
    finally:
        store.close()
    with served(made.config) as base:
        yield Browse(base, d.story_id, e.story_id, claimed.id)


@contextmanager
def signed(base: str) -> Iterator[httpx.Client]:
    with client(base) as browser:
        assert sign_in(browser).status_code == 303
        yield browser


def test_a_latin_name_finds_its_dari_alias_highlighted_and_escaped(desk: Browse) -> None:
    with signed(desk.base) as browser:
        page = browser.get("/search", params={"q": "Ahmad Massoud"})
    assert page.status_code == 200
    html = page.text
    assert "3 results" in html, "the Dari and English stories, not the 60-day-old one"
    assert "<mark>Ahmad Massoud</mark> meets elders" in html
    assert '<mark>احمد مسعود</mark>' in html
    assert "<mark>Ahmad Massoud</mark> spoke to &lt;b&gt;reporters&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert f'<a href="/stories/{desk.dari_story}">{DARI_TITLE}</a>' in html
    assert f'<a href="/stories/{desk.english_story}">' in html
    assert 'href="https://tolo.example/news/2" rel="noreferrer noopener"' in html
    assert re.search(r'<h2 dir="rtl"><a href="/stories/\d+">' + DARI_TITLE, html)
    assert re.search(r'<p class="passage" dir="rtl">[^<]*<mark>احمد مسعود', html)
    assert '<p class="passage" dir="ltr"><mark>Ahmad Massoud</mark>' in html


def test_search_defaults_to_30_days_and_widens(desk: Browse) -> None:
    with signed(desk.base) as browser:
        recent = browser.get("/search", params={"q": "Herat"})
        assert "0 results" in recent.text and "Herat, long ago" not in recent.text
        assert '<option value="30" selected>last 30 days</option>' in recent.text
        assert 'href="/search?q=Herat&amp;within=all">Search everything</a>' in recent.text
        wide = browser.get("/search", params={"q": "Herat", "within": "all"})
        assert "1 result " in wide.text and "Herat, long ago" in wide.text
        assert "<mark>Herat</mark>" in wide.text
        assert "Herat, long ago" in browser.get(
            "/search", params={"q": "Herat", "within": "90"}).text


def test_a_query_error_is_a_message_not_a_500(desk: Browse) -> None:
    with signed(desk.base) as browser:
        for query, said in (('"" ()', "nothing to search for"),
                            ("massoud AND", "That query cannot be searched")):
            page = browser.get("/search", params={"q": query})
            assert page.status_code == 200, page.text
            assert '<p class="error" role="alert">' in page.text and said in page.text


def test_a_watch_items_timeline_counts_per_day_and_lists_its_stories(desk: Browse) -> None:
    path = "/watch/" + quote(WATCHLIST["name"]) + "/" + quote("Ahmad Massoud")
    with signed(desk.base) as browser:
        page = browser.get(path)
        assert page.status_code == 200
        html = page.text
        assert html.count("<rect ") == 1, "one day with mentions in the last 30"
        assert 'role="img" aria-labelledby="per-day chart-summary"' in html
        assert re.search(r'id="chart-summary">2 articles in 30 days, most on [\d-]+ \(2\)',
                         html)
        assert html.count("<tr><td><time") == 30
        assert f'<a href="/stories/{desk.dari_story}">{DARI_TITLE}</a>' in html
        assert f'href="{path}"' in html, "its chips link to the timelines"
        assert 'style=' not in html
        assert browser.get("/watch/nope/nobody").status_code == 404


def test_poll_now_needs_csrf_and_makes_the_source_due(desk: Browse, project: Project) -> None:
    store = SQLiteStore(project.config().database_path)
    try:
        later = datetime.now(UTC) + timedelta(hours=2)
        store.claim_sources("p", datetime.now(UTC), timedelta(minutes=1), names=["Kabul"])
        store.record_poll("Kabul", "p", datetime.now(UTC),
                          PollRecord(later, error="HTTP 503"))
        with signed(desk.base) as browser:
            page = browser.get("/sources")
            assert page.status_code == 200
            assert re.search(r'<th scope="row" dir="auto">Kabul</th>\s*<td><span class='
                             r'"state state-failing">failing \(1 in a row\)</span>', page.text)
            assert '<span class="state state-ok">never polled</span>' in page.text
            assert "HTTP 503" in page.text
            assert 'aria-label="Poll now: Kabul"' in page.text
            assert browser.post("/sources/Kabul/poll").status_code == 403
            assert browser.post("/sources/Kabul/poll",
                                data={"csrf": "forged"}).status_code == 403
            before = datetime.now(UTC)
            done = browser.post("/sources/Kabul/poll", data={"csrf": csrf(page)})
            assert (done.status_code, done.headers["location"]) == (303,
                                                                   "/sources?polled=Kabul")
            due = {r["name"]: r["next_check_at"] for r in store.sources()}["Kabul"]
            assert before - timedelta(seconds=1) <= parse_iso(due) <= datetime.now(UTC)
            told = browser.get(done.headers["location"])
            assert "is due now" in told.text
            gone = browser.post("/sources/Nowhere/poll", data={"csrf": csrf(page)})
            assert gone.headers["location"] == "/sources?refused=Nowhere"
    finally:
        store.close()


def test_the_outbox_lists_dead_alerts_and_retries_them(desk: Browse,
                                                       project: Project) -> None:
    with signed(desk.base) as browser:
        page = browser.get("/outbox")
        assert page.status_code == 200
        html = page.text
        assert "HTTP 500 from the receiver" in html
        assert f'<a href="/stories/{desk.english_story}">' in html
        assert html.count(">Retry</button>") == 1, "the dead one; pending ones wait"
        assert browser.post(f"/outbox/{desk.dead_alert}/retry").status_code == 403
        done = browser.post(f"/outbox/{desk.dead_alert}/retry", data={"csrf": csrf(page)})
        assert done.headers["location"] == f"/outbox?retried={desk.dead_alert}"
        after = browser.get("/outbox").text
        assert ">Retry</button>" not in after and "HTTP 500 from the receiver" in after
        unknown = browser.post("/outbox/99999/retry", data={"csrf": csrf(page)})
        assert unknown.headers["location"] == "/outbox?refused=99999"
    store = SQLiteStore(project.config().database_path)
    try:
        assert [e.state for e in store.outbox_entries(["pending"]).rows
                if e.id == desk.dead_alert] == ["pending"]
    finally:
        store.close()


def test_the_nav_links_sources_and_outbox(desk: Browse) -> None:
    with signed(desk.base) as browser:
        html = browser.get("/sources").text
    assert '<a href="/sources" aria-current="page">Sources</a>' in html
    assert '<a href="/outbox">Outbox</a>' in html


def test_the_listeners_connections_send_without_waiting_for_acks() -> None:
    """TCP_NODELAY on each connection (asyncio sets it for a socket of IPPROTO_TCP):
    without it, each answer on a kept-alive connection waited 40 ms for a delayed ACK."""
    import asyncio
    import socket

    from crawler.app.desk import server as desk_server

    async def main() -> int:
        seen: list[int] = []

        async def accepted(reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listening = desk_server.bind("127.0.0.1", 0)
        server = await asyncio.start_server(accepted, sock=listening)
        async with server:
            _, writer = await asyncio.open_connection(*listening.getsockname())
            for _ in range(500):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()
        return seen[0]

    assert asyncio.run(main()) != 0
