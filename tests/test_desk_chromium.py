"""The desk in headless Chromium, found by role and label as a screen reader would: sign
in, see the stories, sign out. Needs Debian's ``chromium`` (see test_email_chromium.py:
Playwright drives it through ``executable_path``; ``playwright install`` is never run)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import launched_chromium
from tests.desk import HEADLINE, PASSWORD, make_desk, served
from tests.helpers import Project

pytestmark = [pytest.mark.chromium, pytest.mark.slow]


def test_sign_in_see_the_stories_and_sign_out(project: Project) -> None:
    desk = make_desk(project)
    errors: list[str] = []
    with served(desk.config) as base, launched_chromium() as browser:
        page: Any = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(base + "/")
        assert page.url == base + "/login?next=%2F"
        page.get_by_label("Username").fill("ana")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/")
        story = page.get_by_role("link", name=HEADLINE)
        assert story.is_visible()
        assert page.get_by_role("searchbox", name="Search").is_visible()
        assert page.evaluate("typeof htmx") == "object"  # the vendored htmx loaded
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(base + "/login")
        page.goto(base + "/")
        assert page.get_by_role("button", name="Sign in").is_visible()
    # a CSP violation (an inline script or style) shows as a console error
    assert errors == [], errors
