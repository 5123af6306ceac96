"""Feedback that tunes, from the desk, through the real pipeline, store, delivery and CLI:
Mute story stops the story's follow-ups, and Not relevant, then Apply, keeps a learned
rule that ``newswatch match`` explains and that keeps the next such article from
alerting. Every change is a POST with the session's CSRF token, recorded under the
signed-in user, then a redirect back with a confirmation."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import httpx

from tests.conftest import FakeClock, Project
from tests.desk import client, csrf, desk_users, served, sign_in
from tests.feeds import Item, rss
from tests.servers import Page, Receiver, Site
from tests.test_tuning import CRICKET, POLITICS

_MATCH = re.compile(r'<input type="hidden" name="match" value="(\d+)">')


def story_of(project: Project, url: str) -> int:
    store = project.store()
    try:
        found = store.find_article(url)
    finally:
        store.close()
    assert found is not None and found.story_id is not None
    return found.story_id


def follow(browser: httpx.Client, done: httpx.Response, to: str) -> str:
    """The page a change redirected to (303), with its confirmation."""
    assert done.status_code == 303, done.text
    assert done.headers["location"] == to
    page = browser.get(to)
    assert page.status_code == 200
    return page.text


def test_mute_story_on_the_desk_then_a_later_copy_naming_a_new_person_sends_nothing(
        project: Project, site: Site, receiver: Receiver) -> None:
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    clock = FakeClock()
    title, body = "Massoud speaks in Dushanbe", " ".join(POLITICS[:3])
    items = [Item(title, site.url("/a/0"), body, "g0", datetime.now(UTC))]
    site.pages["/rss.xml"] = Page(rss(items))
    desk = desk_users(project)
    assert project.once(clock).delivery.delivered == 1
    story = story_of(project, site.url("/a/0"))
    here = f"/stories/{story}"
    with served(desk.config) as base, client(base) as browser:
        sign_in(browser)
        page = browser.get(here).text
        assert re.search(r"<td>hook</td>.*?<span class=\"state state-delivered\">delivered"
                         r"</span>", page, re.S), "the alert, its channel and its status"
        shown = follow(browser, browser.post(f"{here}/mute", data={"csrf": csrf(page)}),
                       here)
        assert "Story muted (mute 1)" in shown and "Mute story</button>" not in shown
        assert re.search(r"Muted: story,\s+by ana", shown)

        # a later copy naming a new person: no follow-up while the story is muted
        items.append(Item(title, site.url("/a/1"),
                          f"{body} Atta Mohammad Noor joined them.", "g1",
                          datetime.now(UTC)))
        site.pages["/rss.xml"] = Page(rss(items))
        report = project.once(clock)
        assert [(p.new, p.matched, p.queued) for p in report.polls] == [(1, 1, 0)]
        assert story_of(project, site.url("/a/1")) == story, "the same story"
        assert len(receiver.delivered()) == 1, "no follow-up"

        mutes = browser.get("/mutes").text
        assert "Massoud speaks in Dushanbe" in mutes and "<td>ana</td>" in mutes
        follow(browser, browser.post("/mutes/1/undo", data={"csrf": csrf(mutes)}),
               "/mutes")
    listed = json.loads(project.cli("mutes", "--all", "--json", check=True).stdout)
    assert [(m["kind"], m["created_by"], m["state"], m["ended_by"]) for m in listed] == \
        [("story", "ana", "ended", "ana")]


def test_not_relevant_then_apply_keeps_a_rule_match_explains_and_the_next_sends_nothing(
        project: Project, site: Site, receiver: Receiver) -> None:
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    clock = FakeClock()
    now = datetime.now(UTC)
    items = [Item(f"Politics {n}", site.url(f"/p/{n}"), text, f"p{n}", now)
             for n, text in enumerate(POLITICS)]
    items.append(Item("Cup final", site.url("/cup"), CRICKET, "cup", now))
    site.pages["/rss.xml"] = Page(rss(items))
    site.pages["/cup"] = Page(f"<html><head><title>Cup final</title></head><body><article>"
                              f"<h1>Cup final</h1><p>{CRICKET}</p></article></body></html>"
                              .encode(), "text/html; charset=utf-8")
    desk = desk_users(project)
    assert project.once(clock).delivery.delivered == 6
    story = story_of(project, site.url("/cup"))
    here = f"/stories/{story}"
    with served(desk.config) as base, client(base) as browser:
        sign_in(browser)
        [match] = _MATCH.findall(browser.get(here).text)
        proposal = browser.get(f"{here}/not-relevant", params={"match": match}).text
        assert "<h2 id=\"effect-h\">Proposed rule</h2>" in proposal
        assert "<code>exclude</code> “<bdi>Massoud Cup</bdi>”" in proposal
        assert "<strong>0 of 5</strong> past matches" in proposal
        # the rule edited, then checked: too wide, it says what it would remove
        wide = browser.get(f"{here}/not-relevant", params={
            "match": match, "kind": "none_of", "term": "the"}).text
        assert "<code>none_of</code> “<bdi>the</bdi>”" in wide
        assert "would have removed <strong>4 of 5</strong> past matches" in wide
        assert 'name="term" value="the"' in wide
        beside = browser.get(f"{here}/not-relevant", params={
            "match": match, "kind": "none_of", "term": "Panjshir"}).text
        assert "<strong>it does not remove this match</strong>" in beside
        assert ">Apply</button>" not in beside
        # Apply: the rule as shown on the proposal
        shown = follow(browser, browser.post(f"{here}/not-relevant", data={
            "csrf": csrf(proposal), "match": match, "kind": "exclude",
            "term": "Massoud Cup"}), here)
        assert "Rule 1 applied: exclude “Massoud Cup” for Ahmad Massoud" in shown
        rules = browser.get("/mutes").text
        assert "“<bdi>Massoud Cup</bdi>”" in rules and "<td>ana</td>" in rules
        assert "<td>applied</td>" in rules
    [rule] = json.loads(project.cli("rules", "--json", check=True).stdout)
    assert (rule["by"], rule["kind"], rule["term"], rule["state"]) == \
        ("ana", "exclude", "Massoud Cup", "applied")
    assert rule["article"] == site.url("/cup")

    # `newswatch match` on that article explains the learned rule
    explained = json.loads(project.cli("match", "--url", site.url("/cup"), "--json",
                                       check=True).stdout)
    assert explained["matches"] == []
    [veto] = explained["vetoed_by_learned_rules"]
    assert (veto["watch"], veto["rule"]["id"], veto["rule"]["by"]) == \
        ("Ahmad Massoud", rule["id"], "ana")
    assert "Massoud Cup" in project.cli("match", "--url", site.url("/cup"),
                                        check=True).stdout

    # the next such article sends no alert
    semi = CRICKET.replace("final", "semi-final")
    items.append(Item("Cup semi-final", site.url("/semi"), semi, "semi", datetime.now(UTC)))
    site.pages["/rss.xml"] = Page(rss(items))
    report = project.once(clock)
    assert [(p.new, p.matched, p.queued) for p in report.polls] == [(1, 0, 0)]
    assert len(receiver.delivered()) == 6
