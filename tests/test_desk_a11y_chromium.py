"""The desk's browsing pages in headless Chromium, found by role and label as a screen
reader would: search a Dari name by its Latin spelling and see the Dari hit highlighted
right to left, Poll now on Sources, Retry in the Outbox, the keyboard's way in; and
axe-core (vendored in tests/data/axe/) finds no serious or critical violation on the main
pages. Needs Debian's ``chromium`` (see test_email_chromium.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from crawler.app.desk.watchlists import item_url
from tests.desk import PASSWORD
from tests.helpers import WATCHLIST
from tests.test_desk_browse import DARI_TITLE, Browse, desk  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.chromium, pytest.mark.slow]
AXE = Path(__file__).parent / "data" / "axe" / "axe.min.js"


def sign_in(page: Any, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")


def test_search_poll_now_and_retry_by_role_and_label(desk: Browse,  # noqa: F811
                                                      browser: Any) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, desk.base)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("e => e === document.activeElement")
    assert skip.evaluate("e => getComputedStyle(e).outlineStyle") != "none", \
        "focus is visible"

    page.get_by_role("searchbox", name="Search").fill("Ahmad Massoud")
    page.get_by_role("searchbox", name="Search").press("Enter")
    page.wait_for_url("**/search?q=Ahmad+Massoud")
    hit = page.locator("mark", has_text="احمد مسعود")
    assert hit.is_visible()
    assert hit.evaluate("e => getComputedStyle(e.parentElement).direction") == "rtl"
    story = page.get_by_role("link", name=DARI_TITLE, exact=True)
    assert story.get_attribute("href") == f"/stories/{desk.dari_story}"
    assert page.get_by_label("Period").input_value() == "30"
    page.get_by_label("Period").select_option(label="everything")
    page.get_by_role("button", name="Search the archive").click()
    page.wait_for_url("**within=all")
    assert page.get_by_role("link", name="Herat, long ago", exact=True).is_visible()

    page.get_by_role("navigation", name="Desk").get_by_role("link", name="Sources").click()
    page.wait_for_url(desk.base + "/sources")
    page.get_by_role("button", name="Poll now: Kabul").click()
    page.wait_for_url("**/sources?polled=Kabul")
    assert "Kabul is due now" in page.get_by_role("status").inner_text()

    page.get_by_role("navigation", name="Desk").get_by_role("link", name="Outbox").click()
    page.wait_for_url(desk.base + "/outbox")
    retry = page.get_by_role("button", name="Retry:")
    assert retry.count() == 1
    retry.click()
    page.wait_for_url(f"**/outbox?retried={desk.dead_alert}")
    assert "queued again" in page.get_by_role("status").inner_text()
    assert page.get_by_role("button", name="Retry:").count() == 0

    timeline = "/watch/" + quote(WATCHLIST["name"]) + "/" + quote("Ahmad Massoud")
    page.goto(desk.base + timeline)
    assert page.get_by_role("img", name="Mentions per day").is_visible()
    page.get_by_text("Counts per day").click()
    assert page.get_by_role("table", name="Articles naming").is_visible()
    # a CSP violation (an inline script or style) shows as a console error
    assert errors == [], errors


def test_axe_finds_no_serious_or_critical_violation(desk: Browse,  # noqa: F811
                                                    browser: Any) -> None:
    # the CSP keeps an injected script out, as it should: this context lets axe in
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    script = AXE.read_text(encoding="utf-8")

    def violations(path: str, then: str = "") -> list[str]:
        page.goto(desk.base + path)
        if then:  # a button pressed first: what it shows is checked too
            page.get_by_role("button", name=then).click()
            page.get_by_role("region", name="Preview results").get_by_role(
                "table").wait_for()
        page.add_script_tag(content=script)
        found = page.evaluate("async () => (await axe.run(document, "
                              "{resultTypes: ['violations']})).violations")
        return [f"{path}: {v['id']} ({v['impact']}): {v['help']} at "
                f"{[n['target'] for n in v['nodes']][:3]}"
                for v in found if v["impact"] in ("serious", "critical")]

    problems = violations("/login")
    sign_in(page, desk.base)
    timeline = "/watch/" + quote(WATCHLIST["name"]) + "/" + quote("Ahmad Massoud")
    for path in ("/", "/search?q=Ahmad+Massoud", "/search?q=massoud+AND", timeline,
                 "/sources", "/outbox", "/watchlists",
                 item_url(WATCHLIST["name"], "Ahmad Massoud")):
        problems += violations(path)
    problems += violations(item_url(WATCHLIST["name"], "Ahmad Massoud"), then="Preview")
    assert problems == [], "\n".join(problems)
