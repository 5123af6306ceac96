"""The archive: full-text search across letter variants, retention that keeps dedup
keys, exports and Atom feeds of a watchlist's matches."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from crawler.app import atom
from crawler.core.article import Article
from crawler.process import search
from crawler.store.sqlite.fts import fts5
from tests import schema
from tests.conftest import WATCHLIST, FakeClock, Project
from tests.feeds import Item, json_feed, rss
from tests.fixtures.stories import BASES, SAME_EVENT
from tests.servers import Page, Receiver, Site
from tests.test_stories import ingest

DARI = BASES["massoud-dari"]
OLD = datetime(2026, 1, 10, tzinfo=UTC)


def article(source: str, url: str, title: str, body: str, when: datetime) -> Article:
    return Article(source, url, url, title, content_html=body, published_at=when)


def archive(project: Project) -> None:
    project.sources = [{"name": "Wire", "feed": "http://127.0.0.1:9/wire"},
                       {"name": "Kabul", "feed": "http://127.0.0.1:9/kabul"}]
    items = [
        article("Wire", BASES["massoud-dialogue"].url, BASES["massoud-dialogue"].title,
                BASES["massoud-dialogue"].body, OLD),
        article("Wire", BASES["joint-declaration"].url, BASES["joint-declaration"].title,
                BASES["joint-declaration"].body, OLD + timedelta(days=1)),
        article("Kabul", SAME_EVENT[1].url, SAME_EVENT[1].title, SAME_EVENT[1].body,
                OLD + timedelta(days=2)),
        article("Kabul", SAME_EVENT[3].url, SAME_EVENT[3].title, SAME_EVENT[3].body,
                OLD + timedelta(days=3)),
        # Dari, typed with the Persian yeh and kaf.
        article("Kabul", DARI.url, DARI.title, DARI.body, OLD + timedelta(days=4)),
    ]
    ingest(project, items, FakeClock()).close()


def test_stories_and_search_tables_show_each_article_link(project: Project) -> None:
    archive(project)
    searched = project.cli("search", "Massoud", check=True).stdout
    assert BASES["massoud-dialogue"].url in searched
    assert SAME_EVENT[1].url in searched
    listed = project.cli("stories", "--since", "3000d", check=True).stdout
    assert BASES["joint-declaration"].url in listed and DARI.url in listed


def found(project: Project, *args: str) -> list[dict[str, object]]:
    result = project.cli("search", *args, "--json", check=True)
    return list(json.loads(result.stdout))


def test_search_phrases_prefixes_booleans_and_filters(project: Project) -> None:
    archive(project)
    dialogue = found(project, '"intra-Afghan dialogue"')
    assert [r["url"] for r in dialogue] == [SAME_EVENT[1].url, BASES["massoud-dialogue"].url]
    assert "«intra-Afghan dialogue»" in str(dialogue[0]["snippet"])
    # Newest first by default; the words of a phrase must be adjacent.
    assert found(project, '"dialogue intra-Afghan"') == []
    assert {r["url"] for r in found(project, "earthq*")} == {SAME_EVENT[3].url}
    assert "«Earthquake»" in str(found(project, "earthq*")[0]["snippet"])
    both = {r["url"] for r in found(project, "Massoud AND NOT exiles")}
    assert both == {SAME_EVENT[1].url}
    either = {r["url"] for r in found(project, "(Ankara OR Herat) AND NOT Massoud")}
    assert either == {BASES["joint-declaration"].url, SAME_EVENT[3].url}
    assert {r["url"] for r in found(project, "Massoud", "--source", "Kabul")} == {
        SAME_EVENT[1].url}
    # --watchlist keeps articles that matched it: the quake matched nobody.
    assert found(project, "Herat", "--watchlist", "afghan-opposition") == []
    for option, typo, meant in (("--source", "Kabull", "Kabul"),
                                ("--watchlist", "afghan-oposition", "afghan-opposition")):
        result = project.cli("search", "Massoud", option, typo)
        assert result.returncode == 2, result.stdout
        assert f"did you mean {meant!r}?" in result.stderr
    ranked = found(project, "Massoud", "--rank")
    assert ranked[0]["url"] == BASES["massoud-dialogue"].url  # says it most, and in the title
    assert found(project, "Massoud", "--since", "1d") != []  # fetched now
    table = project.cli("search", "Herat", check=True).stdout
    assert "Earthquake shakes Herat" in table
    bad = project.cli("search", "***")
    assert bad.returncode != 0 and "nothing to search for" in bad.stderr


def test_dari_is_found_across_letter_variants(project: Project) -> None:
    archive(project)
    arabic = str.maketrans({"\u06cc": "\u064a", "\u06a9": "\u0643"})
    # "جبهه مقاومت ملی" and "کشورهای همسایه", typed with the Arabic yeh and kaf.
    for query in ('"جبهه مقاومت ملی"', "کشورهای", '"مکاتب دخترانه"'):
        typed = query.translate(arabic)
        assert typed != query, "each query must test a letter variant"
        hits = found(project, typed)
        assert [r["url"] for r in hits] == [DARI.url], typed
    hit = found(project, '"جبهه مقاومت ملی"'.translate(arabic))[0]
    assert "«جبهه مقاومت ملی»" in str(hit["snippet"])  # quoted as the article wrote it


def test_query_translation_quotes_words_and_keeps_operators() -> None:
    query = search.parse_query('"Ahmad  Massoud" OR intra-Afghan* NOT (Taliban)')
    assert fts5(query) == '"ahmad massoud" OR "intra afghan"* NOT ( "taliban" )'
    assert query.terms == ("ahmad massoud", "intra afghan*", "taliban")
    assert fts5(search.parse_query("ACCORD or nor")) == '"accord" "or" "nor"'
    assert fts5(search.parse_query("a AND NOT b")) == '"a" NOT "b"'
    assert search.comparable("يكي ك") == search.comparable("یکی ک")
    # A watch item's spellings: each a phrase, whatever it holds; a trailing * a prefix.
    item = search.any_phrase(["Ahmad Massoud", 'say "AND" (OR)', "guarantee*", "احمد مسعود",
                              "ahmad  MASSOUD", "--"])
    assert fts5(item) == '"ahmad massoud" OR "say and or" OR "guarantee"* OR "احمد مسعود"'
    assert fts5(search.both(item, search.parse_query("Kabul OR Herat"))) == (
        '( "ahmad massoud" OR "say and or" OR "guarantee"* OR "احمد مسعود" ) AND '
        '( "kabul" OR "herat" )')
    with pytest.raises(search.QueryError):
        search.any_phrase(["--", "*"])


def test_prune_keeps_dedup_keys_so_a_pruned_article_does_not_alert_again(
        project: Project, site: Site, receiver: Receiver) -> None:
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    now = datetime.now(UTC)
    item = Item("Atta Mohammad Noor meets envoys", site.url("/a/1"),
                "<p>Atta Mohammad Noor met envoys in Tashkent on Wednesday.</p>", "g-1", now)
    site.pages["/rss.xml"] = Page(rss([item]))
    project.cli("once", check=True)
    assert len(receiver.delivered()) == 1
    assert found(project, "Tashkent") != []

    result = project.cli("prune", "--older-than", "1ms", check=True)
    assert "pruned the text of 1 article(s)" in result.stdout
    store = project.store()
    (row,) = schema.rows(store, "SELECT title, summary, text, pruned_at FROM articles")
    assert row["title"] == "Atta Mohammad Noor meets envoys"
    assert row["summary"] is None and row["text"] is None and row["pruned_at"]
    assert schema.value(store, "SELECT count(*) FROM article_keys") == 2
    assert schema.value(store, "SELECT count(*) FROM matches") > 0
    assert found(project, "Tashkent") == []
    # The feed still carries it (and another feed under a tracking URL): no new alert.
    site.pages["/rss.xml"] = Page(rss([item, Item(item.title, item.link + "?utm_source=x",
                                                  item.body, "g-1", now)]))
    project.sources.append({"name": "Mirror", "feed": site.url("/rss.xml")})
    project.cli("once", check=True)
    assert len(receiver.delivered()) == 1
    assert len(project.store().archive(datetime(2000, 1, 1, tzinfo=UTC))) == 1
    assert "pruned the text of 0 article(s)" in project.cli("prune", check=True).stdout


def test_export_jsonl_and_csv_with_filters(project: Project) -> None:
    archive(project)
    lines = project.cli("export", check=True).stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    # The articles that matched: the two wire stories and the Taliban reply (the watch
    # items have no Dari aliases here, and the quake names nobody).
    assert {r["url"] for r in rows} == {BASES["massoud-dialogue"].url,
                                        BASES["joint-declaration"].url, SAME_EVENT[1].url}
    first = next(r for r in rows if r["url"] == BASES["massoud-dialogue"].url)
    assert first["story_id"] and first["outlets"] == 1 and first["source"] == "Wire"
    assert {m["watch"] for m in first["matches"]} >= {"Ahmad Massoud", "intra-Afghan dialogue"}
    text = project.cli("export", "--format", "csv", "--watchlist", "afghan-opposition",
                       check=True).stdout
    assert text.startswith("\ufeffurl,title,")  # a BOM, so spreadsheets read UTF-8
    table = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert len(table) == sum(len(r["matches"]) for r in rows)
    assert {"url", "title", "watch", "matched", "field", "snippet"} <= set(table[0])
    typo = project.cli("export", "--watchlist", "afghan-oposition")
    assert typo.returncode == 2 and typo.stdout == ""
    assert "no watchlist named 'afghan-oposition'; did you mean 'afghan-opposition'?" \
        in typo.stderr
    assert project.cli("export", "--since", "2100-01-01", check=True).stdout == ""
    out = project.root / "out.jsonl"
    project.cli("export", "-o", str(out), check=True)
    assert out.read_text().splitlines() == lines
    sheet = project.root / "out.csv"
    project.cli("export", "--format", "csv", "-o", str(sheet), check=True)
    assert sheet.read_bytes().startswith(b"\xef\xbb\xbfurl,")
    assert sheet.read_text(encoding="utf-8-sig") == text.removeprefix("\ufeff")


NORTH = {"name": "northern-leaders", "channels": ["hook"], "watch": [
    {"name": "Abdul Rashid Dostum", "aliases": ["General Dostum", "دوستم"]},
    {"name": "Ahmad Massoud", "aliases": ["احمد مسعود"]}]}
DOSTUM_DARI = article(
    "Kabul", "https://kabul.example/dostum-ankara", "دوستم: گفت‌وگو تنها راه است",
    "<p>جنرال عبدالرشید دوستم، رهبر جنبش ملی اسلامی افغانستان، روز سه‌شنبه در آنکارا گفت که "
    "گفت‌وگوی بین‌الافغانی تنها راه پایان بحران کنونی است.</p>", OLD + timedelta(days=5))
DOSTUM_EN = article(
    "Wire", "https://wire.example/dostum-jowzjan", "Dostum returns to Jowzjan",
    "<p>Abdul Rashid Dostum returned to Sheberghan, the capital of Jowzjan province, "
    "after three years abroad, his spokesman said on Friday.</p>", OLD + timedelta(days=6))


def with_the_north(project: Project) -> None:
    """The archive, a watchlist with Dari aliases, and two Dostum articles: one in Dari."""
    project.watchlists = [WATCHLIST, NORTH]
    archive(project)
    later = FakeClock()
    later.advance(3600)  # after the archive's five polls
    ingest(project, [DOSTUM_DARI, DOSTUM_EN], later).close()


def test_matches_lists_each_article_once_with_its_link_and_every_item(
        project: Project) -> None:
    with_the_north(project)
    listing = json.loads(project.cli("matches", "--json", check=True).stdout)
    urls = [a["url"] for a in listing["articles"]]
    # Every matched article once, newest match first; the quake named nobody.
    assert urls == [DOSTUM_EN.url, DOSTUM_DARI.url, DARI.url, SAME_EVENT[1].url,
                    BASES["joint-declaration"].url, BASES["massoud-dialogue"].url]
    assert listing["total"] == 6
    dialogue = listing["articles"][-1]
    assert {(m["watchlist"], m["watch"]) for m in dialogue["matches"]} == {
        ("afghan-opposition", "Ahmad Massoud"), ("afghan-opposition", "intra-Afghan dialogue"),
        ("northern-leaders", "Ahmad Massoud")}
    table = project.cli("matches", "--limit", "4", check=True).stdout
    assert "matched articles: 4 of 6 shown (--limit)" in table
    assert all(table.count(url) == 1 for url in urls[:4])
    assert BASES["massoud-dialogue"].url not in table
    # One row per article, its items grouped by watchlist, other spellings after them.
    assert "northern-leaders: Abdul Rashid Dostum (دوستم)" in table
    assert "northern-leaders: Ahmad Massoud (احمد مسعود)" in table
    whole = project.cli("matches", check=True).stdout
    assert whole.splitlines()[0].strip() == "matched articles"
    assert "afghan-opposition: Ahmad Massoud, intra-Afghan dialogue" in whole


def test_matches_filters_are_counted_and_checked(project: Project) -> None:
    with_the_north(project)

    def listed(*args: str) -> tuple[int, list[str]]:
        found = json.loads(project.cli("matches", "--json", *args, check=True).stdout)
        return found["total"], [a["url"] for a in found["articles"]]

    # The declaration names Dostum too.
    assert listed("--watch", "Abdul Rashid Dostum", "--limit", "1") == (3, [DOSTUM_EN.url])
    assert listed("--watch", "Ahmad Massoud", "--source", "Kabul") == (
        2, [DARI.url, SAME_EVENT[1].url])
    total, _ = listed("--watchlist", "northern-leaders")
    assert total == 6 and listed("--since", "2100-01-01") == (0, [])
    assert "no matched articles for these filters" in project.cli(
        "matches", "--watch", "Atta Mohammad Noor", "--source", "Kabul", check=True).stdout
    for args, meant in ((("--watch", "Abdul Rashid Dostam"), "Abdul Rashid Dostum"),
                        (("--watchlist", "northern-leader"), "northern-leaders"),
                        (("--source", "Kabull"), "Kabul")):
        typo = project.cli("matches", *args)
        assert typo.returncode == 2 and f"did you mean {meant!r}?" in typo.stderr, args
    # An item named in another watchlist only is no item of this one.
    other = project.cli("matches", "--watchlist", "northern-leaders", "--watch",
                        "Atta Mohammad Noor")
    assert other.returncode == 2 and "no watch item named" in other.stderr


def test_search_by_watch_item_finds_every_script_it_is_written_in(project: Project) -> None:
    with_the_north(project)
    declaration = BASES["joint-declaration"].url  # names him too, in English
    assert [r["url"] for r in found(project, "Dostum")] == [DOSTUM_EN.url, declaration]
    hits = found(project, "--watch", "Abdul Rashid Dostum")
    assert [r["url"] for r in hits] == [DOSTUM_EN.url, DOSTUM_DARI.url, declaration]
    assert "«دوستم»" in str(hits[1]["snippet"])
    # With a query too, an article must have both.
    assert [r["url"] for r in found(project, "آنکارا", "--watch", "Abdul Rashid Dostum")] \
        == [DOSTUM_DARI.url]
    assert [r["url"] for r in found(project, "--watch", "Abdul Rashid Dostum",
                                    "Jowzjan OR Sheberghan")] == [DOSTUM_EN.url]
    table = project.cli("search", "--watch", "Abdul Rashid Dostum", check=True).stdout
    assert "3 article(s) for watch item Abdul Rashid Dostum" in table
    typo = project.cli("search", "--watch", "Abdul Rashid Dostam")
    assert typo.returncode == 2 and "did you mean 'Abdul Rashid Dostum'?" in typo.stderr
    neither = project.cli("search")
    assert neither.returncode == 2 and "give a QUERY, --watch NAME, or both" in neither.stderr


def test_atom_feed_of_a_watchlist_is_rewritten_on_each_change(
        project: Project, site: Site) -> None:
    project.settings["atom"] = {"directory": "../feeds", "entries": 2}
    project.watchlists = [{**WATCHLIST, "channels": []}]
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    now = datetime.now(UTC)
    items = [Item("Atta Mohammad Noor meets envoys", site.url("/a/1"),
                  "<p>Atta Mohammad Noor met envoys & <b>spoke</b>.</p>", "g1", now)]
    site.pages["/rss.xml"] = Page(rss(items))
    project.cli("once", check=True)
    path = project.root / "feeds" / "afghan-opposition.atom"
    feed = feedparser.parse(path.read_bytes())
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "newswatch: afghan-opposition"
    (entry,) = feed.entries
    assert entry.link == site.url("/a/1")
    assert entry.title == "Atta Mohammad Noor meets envoys"
    assert [t.term for t in entry.tags] == ["Atta Mohammad Noor"]
    assert "carried by 1 outlet" in entry.content[0].value
    first = path.read_bytes()

    project.cli("once", check=True)  # nothing new: the file is left as it was
    assert path.read_bytes() == first
    items += [Item(f"Ahmad Massoud statement {n}", site.url(f"/b/{n}"), "", f"b{n}", now)
              for n in range(3)]
    site.pages["/rss.xml"] = Page(rss(items))
    project.cli("once", check=True)
    feed = feedparser.parse(path.read_bytes())
    assert len(feed.entries) == 2  # atom.entries
    assert all("Ahmad Massoud statement" in e.title for e in feed.entries)
    assert not list((project.root / "feeds").glob(".*"))  # no temporary files left


def test_atom_feed_drops_characters_xml_forbids(project: Project, site: Site) -> None:
    """A control character in a title or summary (JSON feeds carry them) would make the
    feed ill-formed: it is left out, and the poll succeeds."""
    project.settings["atom"] = {"directory": "../feeds"}
    project.watchlists = [{**WATCHLIST, "channels": []}]
    project.sources = [{"name": "Feed", "feed": site.url("/feed.json"), "full_text": False}]
    site.pages["/feed.json"] = Page(json_feed([Item(
        "Atta Mohammad Noor\x0b meets\x1b envoys", site.url("/a/1"),
        "<p>Atta Mohammad Noor\x1b met\x00 envoys\x0c.</p>", "g1", datetime.now(UTC))]),
        content_type="application/feed+json")
    project.cli("once", check=True)
    feed = etree.fromstring((project.root / "feeds" / "afghan-opposition.atom").read_bytes())
    space = {"a": "http://www.w3.org/2005/Atom"}
    assert feed.findtext("a:entry/a:title", namespaces=space) == \
        "Atta Mohammad Noor meets envoys"
    assert "met envoys" in feed.findtext("a:entry/a:content", namespaces=space)
    # The feed the listener serves is the same rendering; every field is cleaned.
    entry = {"url": "http://example.org/a\x1b", "title": "", "summary": "s\x00um\ufffe",
             "source": "Wire\x1b", "published_at": None, "matched_at": "2026-01-10T00:00:00",
             "story_id": None, "matches": [{"watch": "W\x0b", "field": "text",
                                           "snippet": "sn\x1bip"}]}
    feed = etree.fromstring(atom.render("w\x07", [entry], datetime.now(UTC)).encode())
    assert feed.findtext("a:entry/a:summary", namespaces=space) == "sum"
    assert feed.find("a:entry/a:link", namespaces=space).get("href") == "http://example.org/a"


def test_the_hourly_maintenance_prunes_articles_past_retention(project: Project,
                                                               site: Site) -> None:
    import asyncio

    from crawler.app.daemon import Runner, _Work

    project.settings["retention"] = {"articles": "30d"}
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    project.watchlists = [{**WATCHLIST, "channels": []}]
    site.pages["/rss.xml"] = Page(rss([Item("Noor in Mazar", site.url("/a/1"),
                                            "Atta Mohammad Noor spoke.", "g1")]))
    clock = FakeClock()
    runner = Runner(project.config(), project.store(), clock=clock)
    asyncio.run(runner.once())
    work = _Work(runner, None, None, lambda exc: None)  # type: ignore[arg-type]
    clock.advance(29 * 86400)
    asyncio.run(work.maintain())
    assert schema.value(runner.store, "SELECT text FROM articles")
    clock.advance(2 * 86400)
    asyncio.run(work.maintain())
    assert schema.value(runner.store, "SELECT text, pruned_at FROM articles") is None
    assert schema.value(runner.store, "SELECT count(*) FROM articles_fts") == 0


def test_migration_indexes_the_articles_already_stored(tmp_path: Path) -> None:
    import sqlite_utils

    from crawler.store import SQLiteStore
    from crawler.store.sqlite import STEPS

    path = tmp_path / "v3.db"
    old = sqlite_utils.Database(path)
    old.table("migrations").create({"version": int, "name": str, "applied_at": str},
                                   pk="version")
    for step in STEPS[:3]:
        step.apply(old)
        old.table("migrations").insert({"version": step.version, "name": step.name,
                                        "applied_at": "x"})
    old.table("sources").insert({"name": "s", "url": "https://e.org/", "next_check_at": "x",
                                 "created_at": "x"})
    old.table("articles").insert({"url": "https://e.org/1", "source": "s",
                                  "title": "احمد مسعود در ويانا", "summary": "",
                                  "text": "Ahmad Massoud spoke in Vienna.",
                                  "fetched_at": "2026-11-01T00:00:00.000000Z"})
    old.conn.close()
    store = SQLiteStore(path)
    assert store.schema_version() == len(STEPS)
    # The title was typed with an Arabic yeh; the query has the Persian one.
    for query in ('"spoke in vienna"', "\u0648\u06cc\u0627\u0646\u0627"):
        hits = store.search(search.parse_query(query))
        assert [h["url"] for h in hits] == ["https://e.org/1"], query


@pytest.mark.slow
def test_the_listener_serves_the_feeds_of_the_watchlists_after_a_reload(
        project: Project, site: Site) -> None:

    from tests.helpers import free_port, wait_for_log
    from tests.test_observability import get

    port = free_port()
    project.settings["http"] = {"listen": f"127.0.0.1:{port}"}
    project.watchlists = [{**WATCHLIST, "channels": []}]
    site.pages["/rss.xml"] = Page(rss([]))
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    daemon, lines = project.run_logged()
    try:
        base = f"http://127.0.0.1:{port}/feeds"
        assert get(f"{base}/afghan-opposition.atom").status_code == 200
        project.watchlists = [{**WATCHLIST, "name": "blocs", "channels": []}]
        project.write()
        assert wait_for_log(lines, "config reloaded"), "\n".join(lines)
        assert get(f"{base}/blocs.atom").status_code == 200
        assert get(f"{base}/afghan-opposition.atom").status_code == 404
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
