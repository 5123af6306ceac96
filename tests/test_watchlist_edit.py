"""Editing a watch item (crawler.config.edit), its preview over the archive
(crawler.app.preview) and `newswatch watchlists edit`: the file kept byte for byte but for
the item, saves refused when the file changed, when the edit fails `check`, or where the
file cannot be written; the daemon picks a save up."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.app import preview
from crawler.app.configure import CHECKS
from crawler.config import Source, edit, load_config
from crawler.core.article import Article
from crawler.process.match import Matcher
from crawler.store import SQLiteStore
from tests.conftest import Project
from tests.feeds import Item, rss
from tests.helpers import wait_for_log
from tests.servers import Page, Receiver, Site
from tests.test_match_cli import no_alerts, stored_form

FIXTURE = """\
# Watchlists for the desk's tests.   Comments, quoting and layout stay as written.
watchlists:
  - name: "afghan-opposition"    # a quoted name
    channels: [hook]
    watch:
      # National Resistance Front
      - name: Ahmad Massoud
        aliases: [Ahmad Masoud, 'Ahmed Massoud', "Ahmad Masood",
                  احمد مسعود]   # Dari
        exclude: [Ahmad Shah Massoud]
      - name: 'Atta Mohammad Noor'
        aliases:
          - Atta Muhammad Nur   # a block list
          - {text: ATTA, case_sensitive: true}
          - عطا محمد نور
        none_of: [cricket*]
      - {name: Yunus Qanuni, aliases: [یونس قانونی]}
      - name: Hanif Atmar
  - name: themes
    channels: [hook]
    defaults:
      any_of: &afghan
        terms: [Afghan*, Kabul]
    watch:
      - name: girls' education
        aliases: [education, school*]
        any_of:
          - {terms: [girl*], within: 8}
          - *afghan
      - name: women's work
        aliases: [employ*]   # inherits any_of
# the end
"""


def fixture_project(project: Project) -> Path:
    project.hook("http://127.0.0.1:9/hook")
    directory = project.write()
    (directory / "watchlists.yaml").write_text(FIXTURE, encoding="utf-8")
    return directory


def lines_between(text: str, first: str, after: str) -> tuple[str, str]:
    """The text before the line starting with ``first`` and from the line ``after``."""
    start = text.index(first)
    start = text.rfind("\n", 0, start) + 1
    end = text.index(after)
    return text[:start], text[text.rfind("\n", 0, end) + 1:]


@pytest.mark.parametrize(("item", "first", "after", "changes", "written"), [
    ("Ahmad Massoud", "- name: Ahmad Massoud", "exclude: [Ahmad Shah",
     {"add_aliases": ["Massoud, A."], "remove_aliases": ["Ahmed Massoud"]},
     "      - name: Ahmad Massoud\n        aliases: [Ahmad Masoud, \"Ahmad Masood\",\n"
     "                  احمد مسعود, 'Massoud, A.']   # Dari\n"),
    ("Ahmad Massoud", "- name: Ahmad Massoud", "exclude: [Ahmad Shah",
     {"rename": "Ahmad 'Massoud'", "remove_aliases": ["احمد مسعود"]},
     "      - name: Ahmad 'Massoud'\n"
     "        aliases: [Ahmad Masoud, 'Ahmed Massoud', \"Ahmad Masood\"]   # Dari\n"),
    ("Atta Mohammad Noor", "- name: 'Atta", "- {name: Yunus",
     {"add_aliases": ["Ustad Atta", "$5"], "remove_aliases": ["ATTA"],
      "add_none_of": ["football"]},
     "      - name: 'Atta Mohammad Noor'\n        aliases:\n"
     "          - Atta Muhammad Nur   # a block list\n          - عطا محمد نور\n"
     "          - Ustad Atta\n          - $$5\n        none_of: [cricket*, football]\n"),
    ("Atta Mohammad Noor", "- name: 'Atta", "- {name: Yunus",
     {"remove_aliases": ["Atta Muhammad Nur", "ATTA", "عطا محمد نور"],
      "remove_none_of": ["cricket*"]},
     "      - name: 'Atta Mohammad Noor'\n"),
    ("Yunus Qanuni", "- {name: Yunus", "- name: Hanif",
     {"add_aliases": ["Qanuni"], "add_any_of": ["Kabul"]},
     "      - {name: Yunus Qanuni, aliases: [یونس قانونی, Qanuni], any_of: [Kabul]}\n"),
    ("Hanif Atmar", "- name: Hanif", "- name: themes",
     {"add_aliases": ["Atmar"], "add_none_of": ["sport*"]},
     "      - name: Hanif Atmar\n        aliases: [Atmar]\n        none_of: [sport*]\n"),
    ("girls' education", "- name: girls'", "- name: women's",
     {"add_aliases": ["*star"]},
     "      - name: girls' education\n        aliases: [education, school*, '*star']\n"
     "        any_of:\n          - {terms: [girl*], within: 8}\n          - *afghan\n"),
])
def test_an_edit_changes_the_item_and_keeps_the_rest_byte_for_byte(
        project: Project, item: str, first: str, after: str,
        changes: dict[str, list[str] | str], written: str) -> None:
    directory = fixture_project(project)
    loaded = edit.load(directory)
    watchlist = "themes" if item == "girls' education" else "afghan-opposition"
    value = edit.item_value(loaded.text, watchlist, item)
    new = value.changed(**changes)  # type: ignore[arg-type]
    text = edit.edit(loaded.text, new, item)
    head, tail = lines_between(FIXTURE, first, after)
    assert text.startswith(head) and text.endswith(tail)
    assert text[len(head):len(text) - len(tail)] == written
    saved = edit.save(directory, new, loaded.version, item, checks=CHECKS)
    assert (directory / "watchlists.yaml").read_bytes() == text.encode()
    assert saved.version == edit.load(directory).version != loaded.version
    assert edit.item_value(text, watchlist, new.name) == new


@pytest.mark.parametrize("start", ["", "\ufeff"])
def test_an_edit_keeps_the_line_ends_and_byte_order_mark(start: str) -> None:
    text = start + FIXTURE.replace("\n", "\r\n")
    value = edit.item_value(text, "afghan-opposition", "Atta Mohammad Noor")
    edited = edit.edit(text, value.changed(add_aliases=["Ustad Atta"],
                                           add_any_of=["Balkh"]))
    assert edited.count("\n") == edited.count("\r\n") == text.count("\n") + 2
    assert edited.startswith(start + "# Watchlists") and "- Ustad Atta\r\n" in edited


def test_rules_written_as_rules_or_inherited_and_anchors_are_not_edited(
        project: Project) -> None:
    directory = fixture_project(project)
    text = edit.load(directory).text
    education = edit.item_value(text, "themes", "girls' education")
    assert education.any_of is None and "within" in education.fixed["any_of"]
    with pytest.raises(edit.EditError, match="watchlist 'themes', watch item \"girls' "
                       "education\": any_of cannot be edited here"):
        education.changed(add_any_of=["Taliban"])
    work = edit.item_value(text, "themes", "women's work")
    assert work.any_of is None and "defaults" in work.fixed["any_of"]
    assert work.none_of == ()
    with pytest.raises(edit.EditError, match="has no such watch item"):
        edit.item_value(text, "themes", "Ahmad Massoud")
    with pytest.raises(edit.EditError, match="aliases has no 'nope'"):
        work.changed(remove_aliases=["nope"])


def test_a_save_is_refused_when_the_file_changed_since_it_was_loaded(
        project: Project) -> None:
    directory = fixture_project(project)
    loaded = edit.load(directory)
    new = edit.item_value(loaded.text, "afghan-opposition", "Hanif Atmar").changed(
        add_aliases=["Atmar"])
    changed = FIXTURE + "# someone else's edit\n"
    (directory / "watchlists.yaml").write_text(changed, encoding="utf-8")
    with pytest.raises(edit.ChangedSince) as refused:
        edit.save(directory, new, loaded.version, checks=CHECKS)
    assert "watch item 'Hanif Atmar'" in str(refused.value)
    assert "changed since the form was loaded" in str(refused.value)
    assert (directory / "watchlists.yaml").read_text(encoding="utf-8") == changed


def test_an_edit_failing_check_is_refused_with_file_line_and_column(
        project: Project) -> None:
    directory = fixture_project(project)
    loaded = edit.load(directory)
    new = edit.item_value(loaded.text, "afghan-opposition", "Hanif Atmar").changed(
        add_aliases=["x*"], rename="Ahmad Shah Massoud")
    with pytest.raises(edit.InvalidEdit) as refused:
        edit.save(directory, new, loaded.version, "Hanif Atmar", checks=CHECKS)
    path = directory / "watchlists.yaml"
    assert [str(p) for p in refused.value.problems] == [
        f"{path}:19:19: aliases: 'x*': a * ends a word of at least two letters, as in "
        "guarantee* (a prefix of guarantees, guaranteed)"]
    assert "watch item 'Hanif Atmar'" in str(refused.value)
    assert path.read_text(encoding="utf-8") == FIXTURE


def test_where_the_file_cannot_be_written_the_save_gives_the_yaml_to_copy(
        project: Project) -> None:
    directory = fixture_project(project)
    loaded = edit.load(directory)
    new = edit.item_value(loaded.text, "afghan-opposition", "Hanif Atmar").changed(
        add_aliases=["Atmar"])
    with pytest.raises(edit.ReadOnly) as refused:
        edit.save(directory, new, loaded.version, checks=CHECKS,
                  probe=lambda _: "read-only file system")
    assert refused.value.text == edit.edit(loaded.text, new)
    assert "aliases: [Atmar]" in refused.value.text
    assert "read-only file system" in str(refused.value) and "copy the YAML" in str(
        refused.value)
    assert (directory / "watchlists.yaml").read_text(encoding="utf-8") == FIXTURE


def test_the_command_prints_the_yaml_to_copy_where_the_config_is_read_only(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """As under the shipped systemd unit (a read-only mount, which tests cannot make):
    the probe says so, and nothing is written."""
    fixture_project(project)
    monkeypatch.setattr(edit, "unwritable", lambda _: "read-only file system")
    args = ("watchlists", "edit", "afghan-opposition", "Hanif Atmar", "--add-alias", "Atmar")
    result = project.cli(*args, write=False)
    assert result.returncode == 1 and "read-only file system" in result.stderr
    assert "copy the YAML" in result.stderr
    assert result.stdout.endswith(FIXTURE.replace("      - name: Hanif Atmar\n",
                                                  "      - name: Hanif Atmar\n"
                                                  "        aliases: [Atmar]\n"))
    report = json.loads(project.cli(*args, "--json", write=False).stdout)
    assert report["read_only"] and not report["saved"] and "aliases: [Atmar]" in report["yaml"]
    assert (project.config_dir / "watchlists.yaml").read_text(encoding="utf-8") == FIXTURE


def test_the_probe_sees_a_directory_this_user_cannot_write(project: Project) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes to any directory, whatever its mode: the probe is "
                    "tested through an injected answer above")
    directory = fixture_project(project)
    directory.chmod(0o555)
    try:
        assert "not writable" in (edit.unwritable(directory / "watchlists.yaml") or "")
        result = project.cli("watchlists", "edit", "afghan-opposition", "Hanif Atmar",
                             "--add-alias", "Atmar", write=False)
    finally:
        directory.chmod(0o755)
    assert result.returncode == 1 and "cannot be written here" in result.stderr
    assert "aliases: [Atmar]" in result.stdout


def test_a_save_keeps_the_file_mode(project: Project) -> None:
    directory = fixture_project(project)
    path = directory / "watchlists.yaml"
    path.chmod(0o640)
    loaded = edit.load(directory)
    new = edit.item_value(loaded.text, "afghan-opposition", "Hanif Atmar").changed(
        add_aliases=["Atmar"])
    edit.save(directory, new, loaded.version, checks=CHECKS)
    assert path.stat().st_mode & 0o777 == 0o640
    assert edit.unwritable(path) is None
    assert [p.name for p in directory.iterdir() if p.name.startswith(".")] == []


# --- preview --------------------------------------------------------------------------------


def stored_archive(project: Project, titles: list[str]) -> SQLiteStore:
    """The titles stored as articles of source S, one a minute, the last newest, each
    with what the config matched then."""
    config = project.config()
    store = SQLiteStore(config.database_path)
    now = datetime.now(UTC) - timedelta(hours=1)
    store.sync_sources([Source("S", "https://e.org/feed", 600, 20, "ua", 1000)], now)
    matcher = Matcher.for_config(config)
    for n, title in enumerate(titles):
        article = Article("S", f"https://e.org/{n}", f"https://e.org/{n}", title)
        store.add_articles([stored_form(article, matcher.match(article))],
                           now + timedelta(minutes=n), config.version, no_alerts)
    return store


def test_the_preview_shows_new_unchanged_and_lost_matches_newest_first_in_batches(
        project: Project) -> None:
    project.hook("http://127.0.0.1:9/hook")
    store = stored_archive(project, [
        "Ahmad Massoud in Doha",  # still matched
        "Massoud speaks",  # lost: the alias Massoud is removed
        "Weather in Herat",
        "Massud, the son",  # new: the alias Massud
        "Ahmed Massoud again",  # still matched
    ])
    before = project.config()
    text = edit.load(before.directory).text
    new = edit.item_value(text, "afghan-opposition", "Ahmad Massoud").changed(
        rename="Ahmad Shah's son", remove_aliases=["Massoud"],
        add_aliases=["Massud", "Ahmad Massoud"])
    edited = edit.edit(text, new, "Ahmad Massoud")
    after = edit.validate(before.directory, edited, new, CHECKS)
    running = preview.ItemPreview(store, before, after, "afghan-opposition", "Ahmad Massoud",
                                  new.name, datetime.now(UTC) - timedelta(days=30), page=2)
    pages = iter(running)
    first = next(pages)
    # the first batch comes after one page of two articles, the newest
    assert (first.scanned, first.total, first.done) == (2, 5, False)
    assert [(r.article.title, r.status) for r in first.rows] == [
        ("Ahmed Massoud again", "unchanged"), ("Massud, the son", "new")]
    assert first.rows[0].watch == "Ahmad Shah's son"
    rest = list(pages)
    assert rest[-1].done and rest[-1].scanned == 5
    assert [(r.article.title, r.status) for b in rest for r in b.rows] == [
        ("Massoud speaks", "lost"), ("Ahmad Massoud in Doha", "unchanged")]
    lost = rest[0].rows[0]
    assert lost.why and lost.as_dict()["status"] == "lost"
    assert rest[-1].counts == {"new": 1, "unchanged": 2, "lost": 1}
    stamps = [r.fetched_at for b in [first, *rest] for r in b.rows]
    assert stamps == sorted(stamps, reverse=True)
    store.close()


def test_an_edit_applied_in_memory_is_the_edit_saved(project: Project) -> None:
    """What the desk previews while the form changes (no file read) is what the edited
    file reads as."""
    directory = fixture_project(project)
    config = load_config(directory)
    text = edit.load(directory).text
    new = edit.item_value(text, "afghan-opposition", "Atta Mohammad Noor").changed(
        rename="Atta Noor", add_aliases=["Ustad Atta"], remove_aliases=["Atta Muhammad Nur"],
        remove_none_of=["cricket*"], add_any_of=["Balkh"])
    quick = edit.applied(config, new, "Atta Mohammad Noor")
    saved = edit.validate(directory, edit.edit(text, new, "Atta Mohammad Noor"), new)
    assert quick.watchlists == saved.watchlists and quick.version != config.version
    with pytest.raises(edit.EditError, match="a \\* ends a word"):
        edit.applied(config, new.changed(add_aliases=["x*"]), "Atta Mohammad Noor")


def test_the_preview_reads_off_the_loop_batch_by_batch(project: Project) -> None:
    import asyncio
    project.hook("http://127.0.0.1:9/hook")
    store = stored_archive(project, ["Atta Noor speaks", "Atta Muhammad Nur speaks"])
    config = project.config()
    text = edit.load(config.directory).text
    new = edit.item_value(text, "afghan-opposition", "Atta Mohammad Noor").changed(
        add_aliases=["Atta Noor"])
    after = edit.validate(config.directory, edit.edit(text, new), new, CHECKS)
    running = preview.ItemPreview(store, config, after, "afghan-opposition", new.name,
                                  new.name, datetime.now(UTC) - timedelta(days=1), page=1)

    async def collect() -> list[preview.PreviewBatch]:
        return [b async for b in preview.batches(running)]

    got = asyncio.run(collect())
    assert [b.scanned for b in got] == [1, 2, 2]
    assert [r.status for b in got for r in b.rows] == ["unchanged", "new"]
    store.close()


# --- the command ----------------------------------------------------------------------------


def test_the_command_prints_the_diff_and_preview_then_saves(project: Project) -> None:
    project.hook("http://127.0.0.1:9/hook")
    stored_archive(project, ["Massoud speaks", "Atta Noor in Balkh"]).close()
    args = ("watchlists", "edit", "afghan-opposition", "Atta Mohammad Noor",
            "--add-alias", "Atta Noor", "--preview")
    dry = project.cli(*args, "--dry-run", check=True)
    assert "+++ " in dry.stdout and '["Atta Muhammad Nur", "Atta Noor"]' in dry.stdout
    assert "preview over 2 stored article(s)" in dry.stdout
    assert "1 would newly match" in dry.stdout and "Atta Noor in Balkh" in dry.stdout
    assert "dry run: nothing saved" in dry.stdout
    path = project.config_dir / "watchlists.yaml"
    unchanged = path.read_text(encoding="utf-8")
    assert "Atta Noor" not in unchanged

    shown = json.loads(project.cli("watchlists", "show", "afghan-opposition",
                                   "Atta Mohammad Noor", "--json", write=False,
                                   check=True).stdout)
    assert shown["aliases"] == ["Atta Muhammad Nur"] and shown["any_of"] == []
    report = json.loads(project.cli(*args, "--json", "--if-version", shown["version"][:12],
                                    write=False, check=True).stdout)
    assert report["saved"] and report["preview"]["counts"] == {
        "new": 1, "unchanged": 0, "lost": 0}
    assert report["preview"]["results"][0]["title"] == "Atta Noor in Balkh"
    assert report["after"]["aliases"] == ["Atta Muhammad Nur", "Atta Noor"]
    assert load_config(project.config_dir).watchlists[0].watch[1].aliases == [
        "Atta Muhammad Nur", "Atta Noor"]

    again = project.cli("watchlists", "edit", "afghan-opposition", "Atta Mohammad Noor",
                        "--add-alias", "Ustad Atta", "--if-version", shown["version"][:12],
                        write=False)
    assert again.returncode == 1 and "not " + shown["version"][:12] in again.stderr


def test_the_command_refuses_an_invalid_edit_and_unclear_requests(project: Project) -> None:
    project.hook("http://127.0.0.1:9/hook")
    bad = project.cli("watchlists", "edit", "afghan-opposition", "Atta Mohammad Noor",
                      "--add-alias", "x*")
    path = project.config_dir / "watchlists.yaml"
    assert bad.returncode == 1 and f"{path}:1:" in bad.stderr
    assert "a * ends a word" in bad.stderr and "not saved" in bad.stderr
    nothing = project.cli("watchlists", "edit", "afghan-opposition", "Atta Mohammad Noor")
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    typo = project.cli("watchlists", "edit", "afghan-opposition", "Atta Noor",
                       "--add-alias", "x")
    assert typo.returncode == 2 and "did you mean 'Atta Mohammad Noor'" in typo.stderr
    absent = project.cli("watchlists", "edit", "afghan-opposition", "Atta Mohammad Noor",
                         "--remove-alias", "Ustad Atta")
    assert absent.returncode == 1 and "aliases has no 'Ustad Atta'" in absent.stderr
    assert "--add-alias" in project.cli("watchlists", "edit", "--help").stdout


# --- the daemon -----------------------------------------------------------------------------


def test_the_running_daemon_picks_up_a_saved_edit(project: Project, site: Site,
                                                  receiver: Receiver) -> None:
    now = datetime.now(UTC)
    site.pages["/feed.xml"] = Page(rss([Item("Atta Mohammad Noor speaks", site.url("/a/1"),
                                             "", "g1", now)]))
    project.hook(receiver.url("/hook"))
    project.settings["daemon"] = {"tick": "0.2s"}
    project.sources = [{"name": "Live", "feed": site.url("/feed.xml"), "interval": "0.5s"}]
    daemon, lines = project.run_logged()
    try:
        assert len(receiver.wait_for(1)) == 1
        saved = project.cli("watchlists", "edit", "afghan-opposition", "Atta Mohammad Noor",
                            "--add-alias", "Ustad Atta", write=False)
        assert saved.returncode == 0, saved.stderr
        assert wait_for_log(lines, "config reloaded"), "\n".join(lines)
        site.pages["/feed.xml"] = Page(rss([Item("Ustad Atta returns", site.url("/a/2"), "",
                                                 "g2", now)]))
        assert len(receiver.wait_for(2)) == 2, "the saved alias did not alert"
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    assert daemon.returncode == 0
