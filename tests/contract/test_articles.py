"""Contract: articles are stored once with everything they bring, in one story per copy
set; search takes a parsed query; retention forgets text, never dedup keys."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from crawler.core.errors import StoreError
from crawler.process.search import parse_query
from crawler.store import Store, StoryContext
from tests.contract.conftest import (
    EPOCH,
    NOW,
    Opener,
    alert_row,
    article,
    match,
    new,
    no_alerts,
    plan_one,
    source,
    story_subject,
    varied,
)


@pytest.fixture
def sources(store: Store) -> Store:
    store.sync_sources([source("Kabul"), source("North"), source("West")], NOW)
    return store


def test_an_article_is_stored_once_with_its_keys_even_from_two_processes(
        backend: Opener) -> None:
    one, two = backend(), backend()
    one.sync_sources([source("Kabul")], NOW)
    first = new(article("Kabul", 1), [match()])
    [stored] = one.add_articles([first], NOW, "v1", plan_one())
    assert stored.article == first.article and len(stored.rows) == 1
    assert one.known_keys([*first.keys, "url:https://unknown"]) == set(first.keys)
    assert two.add_articles([first], NOW, "v1", plan_one()) == [], "another process"
    assert len(one.alerts()) == 1
    assert one.source_urls("Kabul") == [k for k in first.keys if k.startswith("url:")]


def test_a_batch_claims_keys_in_order_and_each_stored_article_keeps_its_matches(
        sources: Store) -> None:
    """An article whose page named an earlier one of the batch (a shared key) is skipped;
    what is stored comes back with its own matches."""
    first = new(article("Kabul", 1), [match()])
    same_page = new(article("North", 2), [match("Atta Mohammad Noor")])
    same_page = dataclasses.replace(same_page, keys=[*same_page.keys, first.keys[0]])
    other = new(article("West", 3), [match("Atta Mohammad Noor")])
    stored = sources.add_articles([first, same_page, other], NOW, "v1", no_alerts)
    assert [(s.article.url, [m.watch for m in s.matches]) for s in stored] == [
        (first.article.url, ["Ahmad Massoud"]), (other.article.url, ["Atta Mohammad Noor"])]


def test_copies_join_one_story_and_the_plan_knows_what_it_alerted(sources: Store) -> None:
    seen: list[StoryContext] = []

    def plan(art, matches, story):  # type: ignore[no-untyped-def]
        seen.append(story)
        return plan_one()(art, matches, story)

    stored = sources.add_articles([new(article("Kabul", 1), [match()]),
                                   new(article("North", 2), [match()]),
                                   new(article("West", 3, "Saffron prices held in Herat."))],
                                  NOW, "v1", plan)
    assert stored[0].story_id == stored[1].story_id != stored[2].story_id
    assert seen[0].subject == story_subject(article("Kabul", 1).url) == seen[1].subject
    assert (seen[1].articles, seen[1].outlets) == (2, 2)
    assert seen[0].alerted == {}
    assert seen[1].alerted == {"hook": {("opposition", "Ahmad Massoud")}}
    assert seen[1].sources == ("Kabul", "North")
    assert [len(s.rows) for s in stored] == [1, 0, 0], "the copy alerts nothing new"
    [story, other] = sorted(sources.recent_stories(EPOCH), key=lambda s: -s["articles"])
    assert (story["articles"], story["outlets"], story["outlets_list"]) == \
        (2, 2, ["Kabul", "North"])
    assert story["watches"] == ["opposition: Ahmad Massoud"] and other["articles"] == 1


def test_a_copy_joins_the_story_begun_earlier_in_the_same_poll_and_alerts_nothing_more(
        sources: Store) -> None:
    """A big poll is placed article by article: a copy far down the batch joins the
    story its original started in the same call, sees that story's alert as sent, and
    plans no second one; a copy in the next poll joins it too."""
    seen: dict[str, StoryContext] = {}

    def plan(art, matches, story):  # type: ignore[no-untyped-def]
        seen[art.url] = story
        return plan_one()(art, matches, story)

    batch = [new(article("Kabul", n, varied(n)), [match()] if n % 2 else [])
             for n in range(60)]
    original, copy = article("Kabul", 100), article("North", 101)
    batch[3], batch[50] = new(original, [match()]), new(copy, [match()])
    stored = sources.add_articles(batch, NOW, "v1", plan)
    assert stored[3].story_id == stored[50].story_id
    assert len({s.story_id for s in stored}) == 59, "every other article a story of its own"
    assert (seen[copy.url].articles, seen[copy.url].outlets) == (2, 2)
    assert seen[copy.url].alerted == {"hook": {("opposition", "Ahmad Massoud")}}
    assert len(stored[3].rows) == 1 and stored[50].rows == [], "planned as a copy"
    urls = [a["url"] for a in sources.alerts(limit=1000)]
    assert len(urls) == 30 and urls.count(original.url) == 1 and copy.url not in urls
    [later] = sources.add_articles([new(article("West", 102), [match()])], NOW, "v1", plan)
    assert later.story_id == stored[3].story_id and later.rows == []
    assert seen[article("West", 102).url].articles == 3


def test_alerted_is_per_channel_and_names_what_each_alert_named(sources: Store) -> None:
    """A story alerted on one channel is still new to another; an alert names the pairs
    it lists, not every match of its article, and a later copy's new pair shows up as not
    alerted on that channel only."""
    seen: list[StoryContext] = []

    def plan(art, matches, story):  # type: ignore[no-untyped-def]
        seen.append(story)
        if story.alerted.get("mail") or len(seen) > 2:
            return []
        return [alert_row("", f"{story.subject}#{len(seen)}", "mail",
                          items=(("opposition", "Ahmad Massoud"),))]

    sources.add_articles([new(article("Kabul", 1), [match(), match("Atta Mohammad Noor")]),
                          new(article("North", 2), [match()]),
                          new(article("West", 3), [match("Hanif Atmar")])], NOW, "v1", plan)
    assert seen[1].alerted == {"mail": {("opposition", "Ahmad Massoud")}}
    assert seen[2].alerted == seen[1].alerted and "hook" not in seen[2].alerted
    assert seen[2].sources == ("Kabul", "North", "West")


def test_a_copy_outside_the_window_starts_its_own_story(sources: Store) -> None:
    [one] = sources.add_articles([new(article("Kabul", 1))], NOW, "v1", no_alerts)
    [two] = sources.add_articles([new(article("North", 2))], NOW + timedelta(days=4), "v1",
                                 no_alerts)
    assert one.story_id != two.story_id


def test_matches_are_read_back_by_watchlist_and_time(sources: Store) -> None:
    sources.add_articles([new(article("Kabul", 1), [match(), match("Salang", "roads")]),
                          new(article("West", 2, "Nothing to see."))], NOW, "v1", no_alerts)
    [row] = sources.matched_articles(watchlist="roads")
    assert [m["watch"] for m in row["matches"]] == ["Salang"] and row["outlets"] == 1
    assert len(sources.matched_articles()[0]["matches"]) == 2
    assert sources.matched_articles(since=NOW + timedelta(seconds=1)) == []
    [(art, pairs), (_, none)] = sources.archive(EPOCH)
    assert art.url == article("Kabul", 1).url and none == set()
    assert pairs == {("opposition", "Ahmad Massoud"), ("roads", "Salang")}


def test_the_archive_reads_newest_first_a_page_at_a_time(sources: Store) -> None:
    """Pages follow one another without a gap or a repeat, also among articles fetched at
    the same moment, and each carries the pairs stored for its articles."""
    sources.add_articles([new(article("Kabul", 1), [match()]),
                          new(article("North", 2))], NOW, "v1", no_alerts)
    sources.add_articles([new(article("West", 3), [match("Salang", "roads")])],
                         NOW + timedelta(minutes=1), "v1", no_alerts)
    assert sources.count_archive(EPOCH) == 3
    assert sources.count_archive(NOW + timedelta(seconds=1)) == 1
    first = sources.archive_page(EPOCH, limit=2)
    assert [a.url for a, _ in first.rows] == [article("West", 3).url, article("North", 2).url]
    assert first.rows[0][1] == {("roads", "Salang")} and first.rows[1][1] == set()
    assert first.fetched_at[0] > first.fetched_at[1] and first.next is not None
    last = sources.archive_page(EPOCH, before=first.next, limit=2)
    assert [(a.url, pairs) for a, pairs in last.rows] == [
        (article("Kabul", 1).url, {("opposition", "Ahmad Massoud")})]
    assert last.next is None
    assert sources.archive_page(NOW + timedelta(seconds=1)).rows[0][0].url == \
        article("West", 3).url


def test_matched_articles_filter_by_item_and_source_and_count_exactly(
        sources: Store) -> None:
    """One row per article with every item it matched; the count is of articles, not
    matches, and agrees with the rows a limit cuts."""
    sources.add_articles([new(article("Kabul", 1), [match(), match("Salang", "roads")]),
                          new(article("North", 2), [match(), match("Atta Mohammad Noor")]),
                          new(article("West", 3), [match("Salang", "roads")]),
                          new(article("West", 4, "Nothing to see."))], NOW, "v1", no_alerts)
    assert sources.count_matched_articles() == 3 == len(sources.matched_articles())
    assert len(sources.matched_articles(limit=2)) == 2
    massoud = sources.matched_articles(watch="Ahmad Massoud")
    assert [r["url"] for r in massoud] == [article("North", 2).url, article("Kabul", 1).url]
    assert [m["watch"] for m in massoud[1]["matches"]] == ["Ahmad Massoud", "Salang"]
    assert sources.count_matched_articles(watch="Ahmad Massoud") == 2
    assert sources.count_matched_articles(watch="Salang", source="West") == 1
    assert [r["url"] for r in sources.matched_articles(source="West")] == [
        article("West", 3).url]
    assert sources.count_matched_articles(watchlist="roads", watch="Ahmad Massoud") == 0
    assert sources.count_matched_articles(since=NOW + timedelta(seconds=1)) == 0


def test_search_takes_a_parsed_query(sources: Store) -> None:
    sources.add_articles([new(article("Kabul", 1)),
                          new(article("West", 2, "Saffron prices held steady in Herat.")),
                          new(article("North", 3, "The intra-Afghan talks resumed."))],
                         NOW, "v1", no_alerts)

    def urls(text: str, **filters: str) -> list[str]:
        return [r["url"] for r in sources.search(parse_query(text), **filters)]  # type: ignore[arg-type]

    assert urls("SALANG") == [article("Kabul", 1).url]
    assert urls('"prices held"') == [article("West", 2).url]
    assert urls("intra-Afghan") == urls("intra*") == [article("North", 3).url]
    assert sorted(urls("saffron OR salang")) == sorted([article("Kabul", 1).url,
                                                        article("West", 2).url])
    assert urls("saffron OR salang", source="West") == [article("West", 2).url]
    assert urls("saffron NOT herat") == []
    with pytest.raises(StoreError):
        sources.search(parse_query("salang AND"))


def test_pruning_forgets_text_and_keeps_keys_matches_and_alerts(sources: Store) -> None:
    first = new(article("Kabul", 1), [match()])
    sources.add_articles([first], NOW, "v1", plan_one())
    later = NOW + timedelta(days=31)
    assert sources.prune_articles(later, timedelta(days=30)) == 1
    assert sources.prune_articles(later, timedelta(days=30)) == 0
    assert sources.search(parse_query("salang")) == []
    assert sources.known_keys(first.keys) == set(first.keys)
    assert len(sources.matched_articles()) == 1 and len(sources.alerts()) == 1
    [(art, _)] = sources.archive(EPOCH)
    assert art.text == "" and art.title == "Story 1"
    [copy] = sources.add_articles([new(article("North", 2), [match()])], later, "v1",
                                  plan_one())
    assert len(copy.rows) == 1, "a pruned article is no candidate: a new story"
