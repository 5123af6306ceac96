"""The watchlist editor in headless Chromium, found by role and label as a screen reader
would: an alias added, Preview showing (through htmx, no reload) a stored article only the
new alias matches as new, then Save confirmed and written, with no console error (a CSP
violation shows as one)."""

from __future__ import annotations

from typing import Any

import pytest

from crawler.app.desk.watchlists import item_url
from tests.desk import served
from tests.helpers import Project
from tests.test_desk_stories_chromium import signed_in
from tests.test_desk_watchlists import editor_for

pytestmark = [pytest.mark.chromium, pytest.mark.slow]


def test_an_alias_added_previewed_and_saved(project: Project,
                                            browser: Any) -> None:
    config, path = editor_for(project)
    errors: list[str] = []
    with served(config) as base:
        page = signed_in(browser, base, errors)
        page.get_by_role("link", name="Watchlists").click()
        page.get_by_role("link", name="Ahmad Massoud", exact=True).click()
        page.wait_for_url(base + item_url("afghan-opposition", "Ahmad Massoud"))
        aliases = page.get_by_label("Aliases")
        aliases.fill(aliases.input_value() + "\nMassud")
        page.get_by_role("button", name="Preview").click()
        results = page.get_by_role("region", name="Preview results")
        row = results.get_by_role("row", name="Massud, the son, in Panjshir")
        row.wait_for()
        assert row.get_by_role("cell", name="new", exact=True).is_visible()
        assert "1 new, 2 unchanged, 0 lost" in " ".join(results.inner_text().split())
        assert page.url.endswith(item_url("afghan-opposition", "Ahmad Massoud"))  # no reload
        page.get_by_role("button", name="Save").click()
        status = page.get_by_role("status").filter(has_text="Saved Ahmad Massoud")
        status.wait_for()
        assert "the daemon picks it up at its next reload" in status.inner_text()
        assert page.get_by_label("Aliases").input_value().splitlines()[-1] == "Massud"
    assert "Massud]" in path.read_text(encoding="utf-8")
    assert errors == [], errors
