"""The desk's stories against the real app on uvicorn: the list with its filters and
cursor paging, the poll for new stories, a Dari story's page right to left, hostile
headlines shown as text, and every action refusing a forged POST."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from crawler.app.desk import stories
from tests.desk import (
    DARI_TITLE,
    HEADLINE,
    HOSTILE_TITLE,
    NOOR_TITLE,
    Desk,
    client,
    csrf,
    newsroom,
    served,
    sign_in,
    store_story,
)
from tests.helpers import Project

TITLES = {"english": HEADLINE, "dari": DARI_TITLE, "noor": NOOR_TITLE,
          "hostile": HOSTILE_TITLE}
_STORY_LINK = re.compile(r'<a href="/stories/(\d+)">')


@pytest.fixture
def room(project: Project) -> Iterator[tuple[Desk, dict[str, int], httpx.Client]]:
    desk, ids = newsroom(project)
    with served(desk.config) as base, client(base) as browser:
        assert sign_in(browser).status_code == 303
        yield desk, ids, browser


def listed(page: httpx.Response) -> list[int]:
    assert page.status_code == 200, page.text
    return [int(i) for i in _STORY_LINK.findall(page.text)]


def test_the_stories_list_shows_each_story_with_its_outlets_time_and_chips(
        room: tuple[Desk, dict[str, int], httpx.Client]) -> None:
    _, ids, browser = room
    page = browser.get("/")
    assert listed(page) == [ids["hostile"], ids["noor"], ids["dari"], ids["english"]]
    text = page.text
    assert f'<a href="/stories/{ids["english"]}">{HEADLINE}</a>' in text
    assert f'<h2 dir="rtl"><a href="/stories/{ids["dari"]}">{DARI_TITLE}</a>' in text
    assert "+0430" in text, "first seen in the configured zone (Asia/Kabul)"
    assert 'aria-label="Watchlist afghan-opposition"' in text
    assert 'aria-label="Watch item Atta Mohammad Noor"' in text
    assert '<span dir="auto">Tolo</span>' in text
    for name in ("Watchlist", "Watch item", "Source", "Time", "Since", "Script"):
        assert re.search(rf'<label for="f-[a-z]+">{name}</label>', text), name
    assert 'hx-trigger="every 15s"' in text and 'aria-live="polite"' in text


@pytest.mark.parametrize(("query", "expected"), [
    ({"watch": "Atta Mohammad Noor"}, ["noor"]),
    ({"watchlist": "afghan-opposition", "source": "Tolo"}, ["hostile", "dari"]),
    ({"script": "arabic"}, ["dari"]),
    ({"script": "latin", "source": "Kabul"}, ["noor", "english"]),
    ({"time": "24h"}, ["hostile", "noor", "dari", "english"]),
    ({"time": "custom", "since": "2000-01-01"}, ["hostile", "noor", "dari", "english"]),
    ({"since": "2999-01-01"}, []),
    ({"watchlist": "no-such-list"}, []),
])
def test_the_filters_are_a_get_form(room: tuple[Desk, dict[str, int], httpx.Client],
                                     query: dict[str, str], expected: list[str]) -> None:
    _, ids, browser = room
    page = browser.get("/", params=query)
    assert listed(page) == [ids[n] for n in expected]
    for name, value in query.items():  # the form shows what it filters by
        if name in ("watch", "source", "watchlist", "script"):
            assert f'<option value="{value}" selected>' in page.text


def test_a_bad_date_says_so(room: tuple[Desk, dict[str, int], httpx.Client]) -> None:
    page = room[2].get("/", params={"time": "custom", "since": "yesterday"})
    assert "is not a date (YYYY-MM-DD)" in page.text and len(listed(page)) == 4


def test_older_stories_page_by_cursor_keeping_the_filters(
        room: tuple[Desk, dict[str, int], httpx.Client],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, ids, browser = room
    monkeypatch.setattr(stories, "PER_PAGE", 1)
    seen: list[int] = []
    page = browser.get("/", params={"watchlist": "afghan-opposition", "script": "latin"})
    for _ in range(10):
        seen += listed(page)
        older = re.search(r'<a href="([^"]+)" rel="next">Older stories</a>', page.text)
        if older is None:
            break
        link = html.unescape(older.group(1))
        assert "watchlist=afghan-opposition" in link and "script=latin" in link
        page = browser.get(link)
        assert 'hx-trigger' not in page.text, "an older page does not poll"
    assert seen == [ids["hostile"], ids["noor"], ids["english"]]


def test_the_poll_returns_new_stories_only(
        room: tuple[Desk, dict[str, int], httpx.Client]) -> None:
    desk, ids, browser = room
    page = browser.get("/")
    poll = html.unescape(re.search(r'hx-get="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    assert poll == f"/stories/new?after={ids['hostile']}"
    hx = {"HX-Request": "true"}
    assert browser.get(poll, headers=hx).status_code == 204
    fresh = store_story(desk, "Kabul", 9, "Massoud returns to Panjshir",
                        "Ahmad Massoud returned to Panjshir on Friday for the talks.")
    found = browser.get(poll, headers=hx)
    assert listed(found) == [fresh]
    assert "1 new story" in found.text and 'hx-swap-oob="innerHTML"' in found.text
    assert f'hx-get="/stories/new?after={fresh}"' in found.text
    assert browser.get(f"/stories/new?after={fresh}", headers=hx).status_code == 204
    # the poll keeps the page's filters
    assert browser.get(poll + "&script=arabic", headers=hx).status_code == 204
    with client(str(browser.base_url)) as anonymous:  # a session ended: no login page
        assert anonymous.get(poll, headers=hx).status_code == 401


def test_a_dari_story_reads_right_to_left_with_its_mentions_marked(
        room: tuple[Desk, dict[str, int], httpx.Client]) -> None:
    _, ids, browser = room
    page = browser.get(f"/stories/{ids['dari']}")
    assert page.status_code == 200
    text = page.text
    assert f'<h1 id="headline" dir="rtl" lang="fa">{DARI_TITLE}</h1>' in text
    assert re.search(r'<article class="copy" id="copy-\d+" dir="rtl" lang="fa">', text)
    assert '<blockquote class="passage" dir="rtl"><mark>احمد مسعود</mark>' in text
    assert 'href="https://tolo.example/news/2" rel="noopener noreferrer"' in text
    assert '<button type="submit">Mute story</button>' in text
    assert 'aria-label="Not relevant: Ahmad Massoud in Tolo"' in text
    assert 'aria-label="Mute Ahmad Massoud for 24 hours"' in text
    assert 'aria-label="Mute source Tolo for 7 days"' in text
    english = browser.get(f"/stories/{ids['english']}").text
    assert f'<h1 id="headline" dir="auto">{HEADLINE}</h1>' in english
    assert browser.get("/stories/999999").status_code == 404


def test_hostile_headlines_are_text(room: tuple[Desk, dict[str, int], httpx.Client]) -> None:
    _, ids, browser = room
    for path in ("/", f"/stories/{ids['hostile']}"):
        text = browser.get(path).text
        assert "<script>alert" not in text and "<b>bold</b>" not in text
        assert html.escape(HOSTILE_TITLE, quote=False).replace("'", "&#39;") in text
    assert "&lt;script&gt;alert(&#39;y&#39;)&lt;/script&gt;" in text  # the passage too


def test_every_action_refuses_a_forged_post(
        room: tuple[Desk, dict[str, int], httpx.Client]) -> None:
    desk, ids, browser = room
    story = ids["english"]
    actions = {f"/stories/{story}/mute": {},
               f"/stories/{story}/mute-item": {"watch": "Ahmad Massoud", "for": "24h"},
               f"/stories/{story}/not-relevant": {"match": "1", "kind": "exclude",
                                                  "term": "Massoud"},
               "/mutes/1/undo": {}, "/rules/1/remove": {}}
    for path, data in actions.items():
        assert browser.post(path, data=data).status_code == 403, path
        assert browser.post(path, data={**data, "csrf": "forged"}).status_code == 403, path
        with client(str(browser.base_url)) as anonymous:
            assert anonymous.post(path, data=data).status_code == 403, path
    for path in (f"/stories/{story}/mute", f"/stories/{story}/mute-item", "/mutes/1/undo"):
        assert browser.get(path).status_code == 405, "no change by GET"
    store = desk.store()
    try:
        assert store.mutes(store_now()) == [] and store.rules() == []
    finally:
        store.close()


def store_now() -> datetime:
    return datetime.now(UTC)


def test_mute_a_watch_item_and_a_source_from_a_story_then_undo(
        room: tuple[Desk, dict[str, int], httpx.Client]) -> None:
    desk, ids, browser = room
    here = f"/stories/{ids['dari']}"
    token = csrf(browser.get(here))
    done = browser.post(f"{here}/mute-item", data={
        "csrf": token, "watch": "Ahmad Massoud", "watchlist": "afghan-opposition",
        "for": "24h"})
    assert done.status_code == 303 and done.headers["location"] == here
    shown = browser.get(here).text
    assert "Muted Ahmad Massoud (afghan-opposition) for 24 hours" in shown
    assert 'role="status"' in shown
    assert "Muted Ahmad Massoud" not in browser.get(here).text, "shown once"
    browser.post(f"{here}/mute-item", data={"csrf": token, "source": "Tolo", "for": "7d"})
    refused = browser.post(f"{here}/mute-item", data={"csrf": token, "source": "Tolo",
                                                      "for": "1y"})
    assert "Mute for 24 hours or 7 days." in browser.get(refused.headers["location"]).text
    listing = browser.get("/mutes").text
    assert "Watch item: <span dir=\"auto\">Ahmad Massoud</span>" in listing
    assert "Source: <span dir=\"auto\">Tolo</span>" in listing
    store = desk.store()
    try:
        made = store.mutes(store_now())
    finally:
        store.close()
    assert sorted((m["kind"], m["created_by"]) for m in made) == [("source", "ana"),
                                                                   ("watch", "ana")]
    source = next(m for m in made if m["kind"] == "source")
    assert source["until"] > made[1]["created_at"]
    undone = browser.post(f"/mutes/{source['id']}/undo", data={"csrf": token})
    assert undone.headers["location"] == "/mutes"
    assert f"Mute {source['id']} undone" in browser.get("/mutes").text
    store = desk.store()
    try:
        ended = store.mutes(store_now(), everything=True)
    finally:
        store.close()
    assert {m["kind"]: m["ended_by"] for m in ended} == {"source": "ana", "watch": None}
