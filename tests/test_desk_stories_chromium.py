"""The stories and a story's page in headless Chromium, found by role and label as a screen
reader would: the filters, a Dari story laid out right to left (computed style), a new
story appearing without a reload, and Mute story, Not relevant and Apply as clicks, with
no console error (a CSP violation shows as one). ``--update-screenshots`` rewrites
docs/desk-stories.png and docs/desk-story-fa.png."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.desk import DARI_TITLE, HEADLINE, NOOR_TITLE, PASSWORD, newsroom, served, store_story
from tests.helpers import Project
from tests.test_email_chromium import DOCS

pytestmark = [pytest.mark.chromium, pytest.mark.slow]


def signed_in(browser: Any, base: str, errors: list[str]) -> Any:
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(base + "/")
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")
    return page


def shoot(page: Any, name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    shot = page.screenshot(full_page=True)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
    target = DOCS if request.config.getoption("--update-screenshots") else tmp_path
    (target / name).write_bytes(shot)


def direction_of(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        selector, "els => els.map(e => getComputedStyle(e).direction)")


def test_stories_filters_a_dari_story_right_to_left_and_new_stories_live(
        project: Project, browser: Any, request: pytest.FixtureRequest,
        tmp_path: Path) -> None:
    desk, _ = newsroom(project)
    errors: list[str] = []
    with served(desk.config) as base:
        page = signed_in(browser, base, errors)
        for title in (HEADLINE, DARI_TITLE, NOOR_TITLE):
            assert page.get_by_role("link", name=title, exact=True).is_visible()
        shoot(page, "desk-stories.png", request, tmp_path)

        page.get_by_label("Script").select_option(label="Arabic")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**/?*script=arabic*")
        assert page.get_by_role("link", name=DARI_TITLE).is_visible()
        assert page.get_by_role("link", name=HEADLINE).count() == 0

        page.get_by_role("link", name=DARI_TITLE).click()
        page.wait_for_url("**/stories/*")
        headline = page.get_by_role("heading", level=1)
        assert headline.inner_text() == DARI_TITLE
        assert direction_of(page, "h1") == ["rtl"]
        passages = direction_of(page, "article.copy blockquote")
        assert passages and set(passages) == {"rtl"}, "each Dari block right to left"
        assert page.locator("article.copy mark").first.inner_text() == "احمد مسعود"
        assert direction_of(page, "ul.mentions") == ["ltr"], "the English around it not"
        shoot(page, "desk-story-fa.png", request, tmp_path)

        # a new story appears on the stories page without a reload
        page.get_by_role("link", name="Stories", exact=True).first.click()
        page.wait_for_url(base + "/")
        page.evaluate("window.notReloaded = true")
        fresh = "Massoud returns to Panjshir"
        store_story(desk, "Kabul", 9, fresh,
                    "Ahmad Massoud returned to Panjshir on Friday for the talks.")
        page.get_by_role("link", name=fresh).wait_for(timeout=40_000)
        assert page.get_by_role("status").inner_text() == "1 new story"
        assert page.evaluate("window.notReloaded") is True
        first = page.locator("#story-list > li h2 a").first
        assert first.inner_text() == fresh
    assert errors == [], errors


def test_mute_story_and_not_relevant_by_clicks(project: Project, browser: Any) -> None:
    desk, _ = newsroom(project)
    errors: list[str] = []
    with served(desk.config) as base:
        page = signed_in(browser, base, errors)
        page.get_by_role("link", name=HEADLINE).click()
        page.wait_for_url("**/stories/*")
        story_url = page.url
        page.get_by_role("button", name="Mute story").click()
        page.wait_for_url(story_url)
        assert "Story muted" in page.get_by_role("status").inner_text()
        assert page.get_by_role("button", name="Mute story").count() == 0

        page.get_by_role("button", name="Not relevant: Ahmad Massoud in Kabul").click()
        page.wait_for_url("**/not-relevant?match=*")
        assert page.get_by_role("heading", name="Proposed rule").is_visible()
        page.get_by_label("Kind").select_option("none_of")
        page.get_by_label("Term").fill("convoy")
        page.get_by_role("button", name="Check").click()
        page.wait_for_url("**term=convoy*")
        assert page.get_by_role("heading", name="This rule").is_visible()
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url(story_url)
        assert "applied: none_of “convoy”" in page.get_by_role("status").inner_text()

        page.get_by_role("link", name="Mutes").click()
        page.wait_for_url(base + "/mutes")
        assert page.get_by_role("row", name=re.compile("convoy.*ana")).count() == 1
        page.get_by_role("button", name="Undo mute 1").click()
        page.wait_for_url(base + "/mutes")
        assert "Mute 1 undone" in page.get_by_role("status").inner_text()
        page.get_by_role("button", name="Remove rule 1").click()
        page.wait_for_url(base + "/mutes")
        assert "Learned rule 1 removed" in page.get_by_role("status").inner_text()
    store = desk.store()
    try:
        assert store.rules() == []
    finally:
        store.close()
    assert errors == [], errors
