"""The English and the Dari email, rendered by the shipped templates, in headless Chromium.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright`` package, which
drives that browser through ``executable_path``: ``playwright install`` is never run.
``pytest tests/test_email_chromium.py --update-screenshots -m chromium`` rewrites the
screenshots in docs/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.templates import Renderer, context
from tests import alerts_v2
from tests.browser import launched_chromium

pytestmark = [pytest.mark.chromium, pytest.mark.slow]

DOCS = Path(__file__).parent.parent / "docs"
SENT = datetime(2026, 11, 28, 10, 5, tzinfo=UTC)
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
STORY_ID = re.compile(r"(?<!\d)412(?!\d)")  # tests/alerts_v2.py's story id


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with launched_chromium() as browser:
        yield browser.new_page(viewport={"width": 820, "height": 900})


def show(page: Any, payload: dict[str, Any], name: str, request: pytest.FixtureRequest,
         tmp_path: Path) -> None:
    html = Renderer().render(context(payload, "desk", "Asia/Kabul"), SENT).html
    page.set_content(html)
    shot = page.screenshot(full_page=True)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
    target = DOCS if request.config.getoption("--update-screenshots") else tmp_path
    (target / f"email-{name}.png").write_bytes(shot)


def style(page: Any, selector: str, prop: str) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        selector, f"els => els.map(e => getComputedStyle(e).{prop})")


def test_the_english_email_in_chromium(page: Any, request: pytest.FixtureRequest,
                                       tmp_path: Path) -> None:
    payload = alerts_v2.english()
    show(page, payload, "en", request, tmp_path)
    link = page.locator("h2.headline a")
    assert link.get_attribute("href") == alerts_v2.EN_URL
    assert link.inner_text() == alerts_v2.EN_TITLE
    directions = style(page, "h2.headline, p.lede, div.snippet", "direction")
    assert set(directions) == {"ltr"} and len(directions) >= 2 + 6
    text = page.inner_text("body")
    assert "Published 28 Nov 2026, 12:42 Asia/Kabul (UTC+04:30), 1 h ago" in text
    assert not ISO.search(text) and not STORY_ID.search(text)
    # every leader, bloc and theme the shipped watchlists found, one line each
    names = [i["watch"] for w in payload["data"]["watchlists"] for i in w["items"]]
    assert {"Ahmad Massoud", "Atta Mohammad Noor", "Yunus Qanuni", "Hanif Atmar",
            "Mohammad Mohaqiq", "Abdul Rashid Dostum", "National Resistance Front",
            "UN Security Council guarantees"} <= set(names)
    assert page.locator("li.item > b").all_inner_texts() == names


def test_the_dari_email_in_chromium(page: Any, request: pytest.FixtureRequest,
                                    tmp_path: Path) -> None:
    show(page, alerts_v2.dari(), "fa", request, tmp_path)
    assert page.locator("h2.headline a").get_attribute("href") == alerts_v2.FA_URL
    # every Dari block reads right to left, and the English frame stays left to right
    directions = style(page, "h2.headline, p.lede, div.snippet", "direction")
    assert set(directions) == {"rtl"} and len(directions) >= 2 + 5
    assert set(style(page, "p.meta, p.reason, li.item", "direction")) == {"ltr"}
    text = page.inner_text("body")
    assert alerts_v2.FA_TITLE in text and "گفت‌وگوی بین‌الافغانی" in text
    assert not ISO.search(text) and not STORY_ID.search(text)
    assert text.index("Follow-up: now also names Hanif Atmar.") < text.index(alerts_v2.FA_TITLE)
    # the English name inside the Dari sentence is isolated and stands where Dari puts it
    unsc = page.locator("div.snippet mark", has_text="UNSC")
    assert unsc.evaluate("m => getComputedStyle(m.parentElement).unicodeBidi") == "isolate"
    assert unsc.evaluate("m => getComputedStyle(m.parentElement).direction") == "ltr"
    geometry = unsc.evaluate("""m => {
        const rect = n => { const r = document.createRange(); r.selectNodeContents(n);
                            return r.getBoundingClientRect(); };
        const after = m.parentElement.nextSibling;   // ") برگزار شود."
        const range = document.createRange();
        const at = after.textContent.indexOf("برگزار");
        range.setStart(after, at); range.setEnd(after, at + 6);
        return {mark: rect(m), next: range.getBoundingClientRect()}; }""")
    assert geometry["next"]["right"] <= geometry["mark"]["left"], \
        "the words after the name stand to its left, as Dari reads"
    # the lede's full stop ends the line on the left, not the right
    stop = page.locator("p.lede").evaluate("""p => {
        const t = p.firstChild, r = document.createRange(), w = document.createRange();
        r.setStart(t, t.length - 1); r.setEnd(t, t.length);
        w.setStart(t, t.length - 5); w.setEnd(t, t.length - 1);
        return [r.getBoundingClientRect().left, w.getBoundingClientRect().left]; }""")
    assert stop[0] < stop[1]
    # Dari outlet names inside the English line are isolated too
    outlets = page.locator("p.meta bdi")
    assert outlets.evaluate_all("bs => bs.map(b => b.textContent)") == [
        "طلوع‌نیوز", "Khaama Press", "آمو"]
    assert outlets.evaluate_all("bs => bs.map(b => getComputedStyle(b).direction)") == [
        "rtl", "ltr", "rtl"]
