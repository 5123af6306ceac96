"""`newswatch match` and `newswatch backtest` against a real config and database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.outbox import OutboxRow
from crawler.config import Source
from crawler.core.article import Article
from crawler.process import dedup, search, stories
from crawler.process.match import Match, Matcher
from crawler.store import NewArticle, SQLiteStore
from tests.conftest import Project
from tests.servers import Receiver


def stored_form(article: Article, matches: list[Match]) -> NewArticle:
    """An article as the pipeline hands it to the store."""
    document = search.document(article)
    return NewArticle(article, dedup.keys(article), matches, stories.fingerprint(document),
                      document)


def no_alerts(*_: object) -> list[OutboxRow]:
    return []


def test_match_explains_each_mention_as_json(project: Project) -> None:
    project.watchlists = [{"name": "w", "watch": [
        {"name": "women", "all_of": ["Taliban"], "any_of": {"terms": ["education"],
                                                            "within": 5}},
        {"name": "Ahmad Massoud", "exclude": ["Ahmad Shah Massoud"]}]}]
    text = "Ahmad Shah Massoud is remembered. The Taliban barred women from education."
    found = json.loads(project.cli("match", "--text", text, "--json",
                                   check=True).stdout)["matches"]
    assert [(m["watch"], m["matched"], m["start"]) for m in found] == [
        ("women", "women", text.index("women"))]
    assert found[0]["context"] == ["all_of: Taliban", "any_of: education (within 5 words)"]
    assert "barred **women** from" in found[0]["highlight"]


def test_match_tries_a_watchlist_that_keeps_to_some_sources(project: Project) -> None:
    project.sources = [{"name": "TOLOnews", "feed": "http://127.0.0.1:9/rss"}]
    project.watchlists = [{"name": "w", "sources": ["TOLOnews"],
                           "watch": [{"name": "Dostum"}]}]
    found = json.loads(project.cli("match", "--text", "General Dostum returned.", "--json",
                                   check=True).stdout)["matches"]
    assert [m["watch"] for m in found] == ["Dostum"]


def test_match_reads_a_file_of_feed_html_and_prints_a_table(project: Project) -> None:
    project.hook("")
    page = project.root / "item.html"
    page.write_text("<p>Talks: the intra&#8209;Afghan&nbsp;dialogue resumed.</p>",
                    encoding="utf-8")
    result = project.cli("match", "--file", str(page), "--html", check=True)
    assert "intra-Afghan dialogue" in result.stdout
    assert "**intra‑Afghan dialogue**" in result.stdout
    none = project.cli("match", "--text", "nothing to see", check=True)
    assert "no watch item matches" in none.stdout


def test_match_refuses_unclear_input(project: Project) -> None:
    project.hook("")
    assert project.cli("match").returncode == 2
    unknown = project.cli("match", "--text", "x", "--watchlist", "nope")
    assert unknown.returncode == 2 and "afghan-opposition" in unknown.stderr


def test_backtest_reports_new_and_gone_matches_and_sends_nothing(
        project: Project, receiver: Receiver) -> None:
    project.hook(receiver.url("/hook"))
    config = project.config()
    fetched = datetime.now(UTC) - timedelta(days=2)
    store = SQLiteStore(config.database_path)
    store.sync_sources([Source("S", "https://e.org/feed", 600, 20, "ua", 1000)], fetched)
    titles = ["Dostum returns to Kabul", "Ahmad Masoud speaks", "Weather in Herat"]
    articles = [Article("S", f"https://e.org/{n}", f"https://e.org/{n}", t)
                for n, t in enumerate(titles)]
    old = Matcher.for_config(config)
    store.add_articles([stored_form(a, old.match(a)) for a in articles], fetched,
                       config.version, no_alerts)
    stored = sum(len(a["matches"]) for a in store.matched_articles())
    store.close()
    assert stored == 1

    project.watchlists = [{"name": "afghan-opposition", "channels": ["hook"],
                           "watch": [{"name": "Abdul Rashid Dostum", "aliases": ["Dostum"]}]}]
    report = json.loads(project.cli("backtest", "--json", check=True).stdout)
    assert report["articles"] == 3
    assert [(r["watch"], r["title"], r["matched"]) for r in report["newly_matched"]] == [
        ("Abdul Rashid Dostum", "Dostum returns to Kabul", "Dostum")]
    assert [(r["watch"], r["title"]) for r in report["no_longer_matched"]] == [
        ("Ahmad Massoud", "Ahmad Masoud speaks")]

    assert report["summary"] == [
        {"watchlist": "afghan-opposition", "watch": "Abdul Rashid Dostum",
         "newly_matched": 1, "no_longer_matched": 0},
        {"watchlist": "afghan-opposition", "watch": "Ahmad Massoud",
         "newly_matched": 0, "no_longer_matched": 1}]

    table = project.cli("backtest", check=True).stdout
    assert "1 match(es) would be new, 1 would be gone" in table
    assert "by watch item" in table and "Dostum returns to Kabul" in table
    short = project.cli("backtest", "--limit", "1", check=True).stdout
    assert "shown (--limit)" not in short  # one row each: nothing cut
    recent = json.loads(project.cli("backtest", "--since", "1d", "--json",
                                    check=True).stdout)
    assert recent["articles"] == 0
    assert project.cli("backtest", "--since", "soon").returncode == 2

    assert receiver.delivered() == []
    store = SQLiteStore(config.database_path)
    assert sum(len(a["matches"]) for a in store.matched_articles()) == stored
    assert store.alert_counts() == {}
    store.close()


def test_stored_matches_keep_the_highlight_and_context(project: Project) -> None:
    project.watchlists = [{"name": "w", "watch": [
        {"name": "women", "any_of": ["education"]}]}]
    config = project.config()
    store = SQLiteStore(config.database_path)
    now = datetime.now(UTC)
    store.sync_sources([Source("S", "https://e.org/feed", 600, 20, "ua", 1000)], now)
    a = Article("S", "https://e.org/1", "https://e.org/1", "Women and education")
    store.add_articles([stored_form(a, Matcher.for_config(config).match(a))], now,
                       config.version, no_alerts)
    [article] = store.matched_articles()
    [row] = article["matches"]
    store.close()
    assert row["highlight"] == "**Women** and education"
    assert json.loads(row["context"]) == ["any_of: education"]


def test_backtest_summary_counts_every_article_and_tables_say_when_cut() -> None:
    from crawler.cli.base import shown
    from crawler.cli.matching import _per_watch

    newly = [{"watchlist": "w", "watch": "A"}] * 3 + [{"watchlist": "w", "watch": "B"}]
    gone = [{"watchlist": "w", "watch": "B"}] * 3
    assert [(s["watch"], s["newly_matched"], s["no_longer_matched"])
            for s in _per_watch(newly, gone)] == [("B", 1, 3), ("A", 3, 0)]
    assert shown("would newly match", 4, 20) == "would newly match"
    assert shown("would newly match", 40, 20) == \
        "would newly match: 20 of 40 shown (--limit)"


def test_match_file_html_extracts_a_whole_page_as_a_poll_does(project: Project) -> None:
    """A saved page matches its article only: the navigation, the sidebar and the footer
    name someone else, as --url would ignore them."""
    project.hook("")
    page = Path(__file__).parent / "data" / "noor-page.html"
    result = project.cli("match", "--file", str(page), "--html", "--json", check=True)
    assert {m["watch"] for m in json.loads(result.stdout)["matches"]} == {"Atta Mohammad Noor"}
    fragment = project.cli("match", "--text", "<p>Ahmad Massoud spoke.</p>", "--html",
                           "--json", check=True)
    assert {m["watch"] for m in json.loads(fragment.stdout)["matches"]} == {"Ahmad Massoud"}


def test_match_says_why_a_mention_did_not_count(project: Project) -> None:
    """A mention vetoed by none_of or exclude, or lacking a required term, is listed with
    the rule that stopped it, in the table and in --json."""
    project.watchlists = [{"name": "w", "watch": [
        {"name": "Ahmad Massoud", "aliases": ["Massoud"], "exclude": ["Ahmad Shah Massoud"]},
        {"name": "sanctions", "none_of": ["cricket"]},
        {"name": "Security Council", "any_of": {"terms": ["guarant*"], "within": 5}},
        {"name": "Dostum"}]}]
    text = ("Ahmad Shah Massoud is remembered. Dostum spoke. Sanctions on the cricket board. "
            "The Security Council met.")
    report = json.loads(project.cli("match", "--text", text, "--json", check=True).stdout)
    assert [m["watch"] for m in report["matches"]] == ["Dostum"]
    assert [(m["watch"], m["matched"], m["rule"], m["terms"], m["reason"])
            for m in report["not_counted"]] == [
        ("Ahmad Massoud", "Massoud", "exclude", ["Ahmad Shah Massoud"],
         "inside the excluded 'Ahmad Shah Massoud'"),
        ("sanctions", "Sanctions", "none_of", ["cricket"], "none_of: cricket"),
        ("Security Council", "Security Council", "any_of", ["guarant*"],
         "any_of: none of guarant* (within 5 words)")]
    table = project.cli("match", "--text", text, check=True).stdout
    assert "found but not counted" in table and "none_of: cricket" in table
    nothing = project.cli("match", "--text", "The Security Council met.", check=True).stdout
    assert "no watch item matches" in nothing and "guarant*" in nothing


def test_backtest_shows_items_whose_context_rules_now_read_every_field(
        project: Project) -> None:
    """An item looked for in titles only once had its none_of read titles only: the match
    stored then is gone now that none_of reads the whole article, and backtest says so and
    why."""
    project.hook("")
    project.watchlists = [{"name": "w", "watch": [
        {"name": "Taliban", "fields": ["title"], "none_of": ["cricket"]}]}]
    config = project.config()
    fetched = datetime.now(UTC) - timedelta(days=1)
    store = SQLiteStore(config.database_path)
    store.sync_sources([Source("S", "https://e.org/feed", 600, 20, "ua", 1000)], fetched)
    a = Article("S", "https://e.org/1", "https://e.org/1", "Taliban officials attend final",
                text="The cricket final was played in Sharjah.")
    then = Match("w", "Taliban", "Taliban", "Taliban", "title", 0, 7, a.title,
                 "**Taliban** officials attend final")  # as the earlier release matched it
    store.add_articles([stored_form(a, [then])], fetched, config.version, no_alerts)
    store.close()
    report = json.loads(project.cli("backtest", "--json", check=True).stdout)
    assert [(r["watch"], r["why"]) for r in report["no_longer_matched"]] == [
        ("Taliban", "title: none_of: cricket")]
    table = project.cli("backtest", check=True).stdout
    assert "would no longer match" in table and "title: none_of: cricket" in table
    project.watchlists = [{"name": "w", "watch": [
        {"name": "Taliban", "fields": ["title"],
         "none_of": {"terms": ["cricket"], "fields": ["title"]}}]}]
    kept = json.loads(project.cli("backtest", "--json", check=True).stdout)
    assert kept["no_longer_matched"] == [] and kept["newly_matched"] == []
