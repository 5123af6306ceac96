"""The desk's watchlist editor against the real app on uvicorn: the list, an item's form,
its preview over a stored archive, a save keeping the file's comments, and the saves
refused (changed since, invalid, read-only with the YAML to copy, forged)."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from crawler.app.desk.watchlists import item_url
from crawler.config import Config, Source, edit, load_config
from crawler.core.article import Article
from crawler.process.match import Matcher
from crawler.store import SQLiteStore
from tests.desk import client, csrf, desk_users, served, sign_in
from tests.helpers import Project
from tests.test_match_cli import no_alerts, stored_form
from tests.test_watchlist_edit import FIXTURE, lines_between

MASSOUD = item_url("afghan-opposition", "Ahmad Massoud")
#: stored newest last: one the edit keeps, one only the new alias Massud matches, one
#: only the removed alias Ahmed Massoud matched, one neither
ARCHIVE = ["Ahmad Massoud in Doha", "Massud, the son, in Panjshir",
           "Ahmed Massoud speaks in Dushanbe", "Weather in Herat"]
EDITED_ALIASES = "Ahmad Masoud\nAhmad Masood\nاحمد مسعود\nMassud\n"


@dataclass
class Editor:
    browser: httpx.Client
    config: Config
    path: Path


def stored(config: Config, titles: list[str], first: int = 0) -> None:
    """The titles stored as articles of source S an hour ago, one a minute, with what the
    config matched then."""
    store = SQLiteStore(config.database_path)
    now = datetime.now(UTC) - timedelta(hours=1)
    try:
        store.sync_sources([Source("S", "https://e.org/feed", 600, 20, "ua", 1000)], now)
        matcher = Matcher.for_config(config)
        for n, title in enumerate(titles, first):
            article = Article("S", f"https://e.org/{n}", f"https://e.org/{n}", title)
            store.add_articles([stored_form(article, matcher.match(article))],
                               now + timedelta(minutes=n), config.version, no_alerts)
    finally:
        store.close()


def editor_for(project: Project) -> tuple[Config, Path]:
    """The desk's users over the commented FIXTURE as watchlists.yaml, and ARCHIVE."""
    project.hook("http://127.0.0.1:9/hook")
    desk_users(project)
    path = project.config_dir / "watchlists.yaml"
    path.write_text(FIXTURE, encoding="utf-8")
    config = load_config(project.config_dir)
    stored(config, ARCHIVE)
    return config, path


@pytest.fixture
def editor(project: Project) -> Iterator[Editor]:
    config, path = editor_for(project)
    with served(config) as base, client(base) as browser:
        assert sign_in(browser).status_code == 303
        yield Editor(browser, config, path)


def form(page: httpx.Response, **fields: str) -> dict[str, str]:
    """The item form's fields as loaded, with ``fields`` changed."""
    version = re.search(r'name="version" value="([0-9a-f]+)"', page.text)
    assert version, page.text
    name = re.search(r'id="name" name="name" dir="auto" value="([^"]*)"', page.text)
    aliases = re.search(r'<textarea id="aliases"[^>]*>([^<]*)</textarea>', page.text)
    assert name and aliases
    return {"csrf": csrf(page), "version": version.group(1),
            "name": html.unescape(name.group(1)),
            "aliases": html.unescape(aliases.group(1)), "days": "30", **fields}


def test_the_list_shows_each_watchlist_and_its_items_linking_to_their_forms(
        editor: Editor) -> None:
    page = editor.browser.get("/watchlists")
    assert page.status_code == 200
    assert '<a href="/watchlists" aria-current="page">Watchlists</a>' in page.text
    assert f'<a href="{MASSOUD}" dir="auto">Ahmad Massoud</a></td><td>4</td>' in page.text
    assert ('<a href="/watchlists/themes/girls%27%20education" dir="auto">girls&#39; '
            "education</a></td><td>2</td>") in page.text
    assert "read-only" not in page.text


def test_the_list_says_so_where_the_config_is_read_only(
        editor: Editor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edit, "unwritable", lambda _: "read-only file system")
    page = editor.browser.get("/watchlists")
    assert "The config directory is read-only for the desk (read-only file system)" in \
        page.text


def test_the_form_has_the_item_its_rules_and_the_files_version(editor: Editor) -> None:
    page = editor.browser.get(item_url("afghan-opposition", "Atta Mohammad Noor"))
    assert page.status_code == 200
    fields = form(page)
    assert fields["version"] == edit.load(editor.config.directory).version
    assert fields["aliases"] == "Atta Muhammad Nur\nATTA\nعطا محمد نور"
    assert '<label for="aliases">Aliases</label>' in page.text
    assert re.search(r'<textarea id="none_of" name="none_of" dir="auto"[^>]*>cricket\*'
                     r"</textarea>", page.text)
    assert '<label for="any_of">any_of terms</label>' in page.text
    themed = editor.browser.get("/watchlists/themes/girls%27%20education")
    assert "any_of</span>: not editable here (" in themed.text
    assert 'id="any_of"' not in themed.text and 'id="none_of"' in themed.text
    assert editor.browser.get("/watchlists/themes/nobody").status_code == 404


def test_the_preview_counts_new_unchanged_and_lost_over_the_archive(editor: Editor) -> None:
    page = editor.browser.get(MASSOUD)
    fields = form(page, aliases=EDITED_ALIASES)
    full = editor.browser.post(f"{MASSOUD}/preview", data=fields)
    assert full.status_code == 200 and "<html" in full.text
    assert 'aria-live="polite"' in full.text
    for answer in (full, editor.browser.post(f"{MASSOUD}/preview", data=fields,
                                             headers={"HX-Request": "true"})):
        assert ("<strong>1</strong> new, <strong>1</strong> unchanged, <strong>1</strong> "
                "lost") in answer.text
        rows = re.findall(r'<tr class="status-(\w+)"><td>\w+</td><td><a [^>]*>([^<]*)</a>',
                          answer.text)
        assert rows == [("lost", "Ahmed Massoud speaks in Dushanbe"),
                        ("new", "Massud, the son, in Panjshir"),
                        ("unchanged", "Ahmad Massoud in Doha")]
        assert "over all 4 stored articles" in answer.text
    partial = editor.browser.post(f"{MASSOUD}/preview", data=fields,
                                  headers={"HX-Request": "true"})
    assert "<html" not in partial.text
    assert editor.path.read_text(encoding="utf-8") == FIXTURE  # a preview saves nothing


def test_a_preview_shows_remote_headlines_as_text(editor: Editor) -> None:
    stored(editor.config, ["<script>alert('x')</script> Massud <b>bold</b>"], first=10)
    page = editor.browser.get(MASSOUD)
    answer = editor.browser.post(f"{MASSOUD}/preview", data=form(page, aliases="Massud"),
                                 headers={"HX-Request": "true"})
    assert ("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Massud &lt;b&gt;bold&lt;/b&gt;"
            in answer.text)
    assert "<script>" not in answer.text and "<b>" not in answer.text


def test_a_preview_of_a_term_the_schema_refuses_says_why(editor: Editor) -> None:
    page = editor.browser.get(MASSOUD)
    answer = editor.browser.post(f"{MASSOUD}/preview", data=form(page, aliases="x*"))
    assert "Preview not run:" in answer.text and "a * ends a word" in answer.text


def test_a_save_writes_the_item_keeping_the_rest_of_the_file_and_confirms(
        editor: Editor, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crawler.app.desk.watchlists")
    page = editor.browser.get(MASSOUD)
    saved = editor.browser.post(MASSOUD, data=form(page, aliases=EDITED_ALIASES))
    assert saved.status_code == 303, saved.text
    text = editor.path.read_text(encoding="utf-8")
    assert lines_between(text, "- name: Ahmad Massoud", "exclude: [Ahmad Shah") == \
        lines_between(FIXTURE, "- name: Ahmad Massoud", "exclude: [Ahmad Shah")
    assert "Massud" in text and "'Ahmed Massoud'" not in text
    version = edit.load(editor.config.directory).version
    assert saved.headers["location"] == f"{MASSOUD}?saved={version[:16]}&warnings=0"
    confirmed = editor.browser.get(saved.headers["location"])
    assert (f"Saved Ahmad Massoud in {editor.path} (version {version[:16]}). It passes "
            "`newswatch check`") in confirmed.text
    assert "the daemon picks it up at its next reload" in confirmed.text
    assert form(confirmed)["aliases"] == EDITED_ALIASES.strip()
    assert "desk: ana saved watch item afghan-opposition / Ahmad Massoud in " in caplog.text
    # a saved= of another version confirms nothing
    assert "Saved" not in editor.browser.get(f"{MASSOUD}?saved=0123456789abcdef").text


def test_a_save_is_refused_when_the_file_changed_since_the_form_was_opened(
        editor: Editor) -> None:
    page = editor.browser.get(MASSOUD)
    editor.path.write_text(FIXTURE + "# edited by hand\n", encoding="utf-8")
    refused = editor.browser.post(MASSOUD, data=form(page, aliases=EDITED_ALIASES))
    assert refused.status_code == 409
    assert "the file changed since you opened this form" in refused.text
    assert f'<a href="{MASSOUD}">Reload the form</a>' in refused.text
    assert form(refused)["aliases"] == EDITED_ALIASES.strip()  # the input kept
    assert editor.path.read_text(encoding="utf-8") == FIXTURE + "# edited by hand\n"


def test_an_invalid_edit_shows_the_problems_as_file_line_col(editor: Editor) -> None:
    page = editor.browser.get(MASSOUD)
    refused = editor.browser.post(MASSOUD, data=form(page, aliases="Massoud\nx*"))
    assert refused.status_code == 422
    assert "does not pass `newswatch check`" in refused.text
    problems = re.findall(r"<li><code>([^<]*)</code></li>", refused.text)
    assert any("a * ends a word" in p for p in problems), problems
    assert all(re.match(rf"{re.escape(str(editor.path))}:\d+:\d+: ",
                                     html.unescape(p)) for p in problems), problems
    assert editor.path.read_text(encoding="utf-8") == FIXTURE


def test_where_the_config_is_read_only_the_save_shows_the_yaml_to_copy(
        editor: Editor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edit, "unwritable", lambda _: "read-only file system")
    page = editor.browser.get(MASSOUD)
    refused = editor.browser.post(MASSOUD, data=form(page, aliases=EDITED_ALIASES))
    assert refused.status_code == 409
    assert "the config is read-only here (read-only file system)" in refused.text
    yaml = re.search(r'<label for="yaml">[^<]*</label></p>\s*<textarea id="yaml"[^>]*'
                     r"readonly[^>]*>([^<]*)</textarea>", refused.text)
    assert yaml, refused.text
    assert "Massud" in html.unescape(yaml.group(1))
    assert "# Watchlists for the desk&#39;s tests." in yaml.group(1)
    assert editor.path.read_text(encoding="utf-8") == FIXTURE


@pytest.mark.parametrize("path", [MASSOUD, f"{MASSOUD}/preview"])
def test_a_forged_post_is_refused(editor: Editor, path: str) -> None:
    page = editor.browser.get(MASSOUD)
    for token in ("", "forged"):
        fields = {**form(page, aliases=EDITED_ALIASES), "csrf": token}
        assert editor.browser.post(path, data=fields).status_code == 403
    assert editor.path.read_text(encoding="utf-8") == FIXTURE
