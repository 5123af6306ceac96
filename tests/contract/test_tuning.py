"""Contract: mutes (read inside the ingest transaction; the waiting alerts they silence
recorded ``muted`` for good) and learned rules; articles found by URL, the archive of
one watch item."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crawler.core.article import Article
from crawler.core.errors import StoreError
from crawler.process.match import Match
from crawler.store import DeliveryResult, LearnedRule, Mute, Muted, OutboxRow, Store
from crawler.store.records import StoryContext
from tests.contract.conftest import (
    LEASE,
    NOW,
    TEXT,
    alert_row,
    article,
    match,
    new,
    source,
)

HOUR = timedelta(hours=1)


@pytest.fixture
def sources(store: Store) -> Store:
    store.sync_sources([source("Kabul"), source("North")], NOW)
    return store


def store_one(store: Store, art: Article, matches: list[Match],
              hold_until: object = None) -> StoryContext:
    """Store ``art``; its plan queues one alert per watchlist of the matches no mute
    silences (as the pipeline plans) and returns the story."""
    seen: list[StoryContext] = []

    def plan(a: Article, found: list[Match], story: StoryContext) -> list[OutboxRow]:
        seen.append(story)
        return [alert_row(w, f"{story.subject}#{a.url}",
                          hold_until=hold_until)  # type: ignore[arg-type]
                for w in dict.fromkeys(m.watchlist for m in story.muted.unmuted(found))]

    store.add_articles([new(art, matches)], NOW, "v1", plan)
    return seen[0]


def test_a_story_mute_silences_later_copies_and_marks_its_waiting_alerts(
        sources: Store) -> None:
    first = store_one(sources, article("Kabul", 1), [match()])
    assert first.muted == Muted()
    [delivered] = sources.claim_alerts("p", NOW, LEASE, ["hook"])
    sources.record_delivery(delivered.id, "p", NOW, DeliveryResult("delivered", 200))
    held, other = (store_one(sources, article("Kabul", n, f"Other text {n} alone."),
                             [match()], NOW + HOUR) for n in (2, 3))
    assert sources.alert_counts() == {"delivered": 1, "held": 2}

    url = article("Kabul", 1).url
    mute_id, muted = sources.add_mute(Mute("story", first.subject, "ana", NOW,
                                           article_url=url))
    assert muted == 0, "its alert was delivered; the held ones are other stories'"
    copy = store_one(sources, article("North", 9), [match()])
    assert copy.id == first.id and copy.muted.story and copy.muted.unmuted([match()]) == []
    assert sources.alert_counts() == {"delivered": 1, "held": 2}, "the copy queued nothing"
    [row] = sources.mutes(NOW)
    assert (row["id"], row["kind"], row["created_by"], row["state"], row["until"],
            row["article_url"]) == (mute_id, "story", "ana", "active", None, url)

    _, muted = sources.add_mute(Mute("story", held.subject, "ana", NOW))
    assert muted == 1
    assert sources.alert_counts() == {"delivered": 1, "held": 1, "muted": 1}
    assert sources.end_mute(mute_id, NOW, "ben")
    assert not sources.end_mute(mute_id, NOW, "ben"), "ended already"
    later = NOW + 2 * HOUR
    assert sources.fold_digests(later, ["hook"], lambda *_: alert_row("", "d")) == 1
    [muted_row] = sources.alerts(status="muted")
    assert sources.requeue(later, [muted_row["id"]]) == 0
    assert sources.alert_counts() == {"delivered": 1, "digested": 1, "pending": 1,
                                      "muted": 1}, "muted for good: not folded, requeued"
    assert {(r["state"], r["ended_by"]) for r in sources.mutes(later, everything=True)} == \
        {("ended", "ben"), ("active", None)}
    assert other.id != held.id


def test_a_story_mute_needs_a_stored_story(store: Store) -> None:
    with pytest.raises(StoreError):
        store.add_mute(Mute("story", "story:https://nowhere.example/", "ana", NOW))
    assert store.mutes(NOW, everything=True) == []


def test_watch_and_source_mutes_expire_and_name_what_they_silence(sources: Store) -> None:
    sources.add_mute(Mute("watch", "Noor", "ana", NOW, NOW + HOUR, watchlist="north"))
    sources.add_mute(Mute("source", "North", "ana", NOW, NOW + HOUR))
    noor = [match("Noor", "north"), match("Noor", "opposition"), match()]
    story = store_one(sources, article("Kabul", 1), noor)
    assert story.muted == Muted(watches=frozenset({("north", "Noor")}))
    assert [m.watchlist for m in noor if story.muted.silences(m)] == ["north"]
    assert store_one(sources, article("North", 2, "Elsewhere, alone."), [match()]).muted.source
    assert [r["kind"] for r in sources.mutes(NOW)] == ["source", "watch"]
    assert sources.mutes(NOW + HOUR) == [], "both expired"
    assert [r["state"] for r in sources.mutes(NOW + HOUR, everything=True)] == \
        ["expired", "expired"]


def test_a_watch_mute_marks_the_alerts_whose_every_item_it_silences(sources: Store) -> None:
    store_one(sources, article("Kabul", 1), [match("Noor")])
    store_one(sources, article("Kabul", 2, "Other text alone."), [match("Noor"), match()])
    store_one(sources, article("North", 3, "Elsewhere alone."), [match()])
    _, muted = sources.add_mute(Mute("watch", "Noor", "ana", NOW, NOW + HOUR))
    assert muted == 1
    assert sorted(a["status"] for a in sources.alerts()) == ["muted", "pending", "pending"]
    _, muted = sources.add_mute(Mute("source", "North", "ana", NOW, NOW + HOUR))
    assert muted == 1
    assert [a["url"] for a in sources.alerts(status="pending")] == [article("Kabul", 2).url]


def test_an_alert_muted_while_it_was_sent_is_not_tried_again(sources: Store) -> None:
    story = store_one(sources, article("Kabul", 1), [match()])
    [sending] = sources.claim_alerts("p", NOW, LEASE, ["hook"])
    _, muted = sources.add_mute(Mute("story", story.subject, "ana", NOW))
    assert muted == 0, "being sent: left to its sender"
    assert sources.record_delivery(sending.id, "p", NOW,
                                   DeliveryResult("retry", 503, "busy", 1, NOW + HOUR))
    assert [a["status"] for a in sources.alerts()] == ["muted"]
    assert sources.claim_alerts("p", NOW + HOUR, LEASE, ["hook"]) == []


def test_learned_rules_are_kept_once_listed_and_removed(store: Store) -> None:
    assert store.rules() == [] and store.rules_version() == (0, 0)
    rule = LearnedRule("w", "Massoud", "exclude", "Massoud Cup", "ana", NOW,
                       "https://e.example/a", "removed 1")
    first = store.add_rule(rule)
    assert store.add_rule(rule) == first
    second = store.add_rule(LearnedRule("w", "Massoud", "none_of", "cricket", "ben", NOW))
    assert [(r.id, r.term, r.created_by, r.created_at, r.article_url) for r in
            store.rules()] == [(first, "Massoud Cup", "ana", NOW, "https://e.example/a"),
                               (second, "cricket", "ben", NOW, None)]
    version = store.rules_version()
    assert store.remove_rule(first) and not store.remove_rule(first)
    assert store.rules_version() != version
    third = store.add_rule(rule)
    assert third > second, "ids are never reused: the version tells a change"
    assert store.rules_version() == (2, third)


def test_an_article_is_found_by_any_of_its_urls_with_its_story(sources: Store) -> None:
    art = article("Kabul", 1)
    story = store_one(sources, art, [match()])
    found = sources.find_article(art.url)
    assert found is not None
    assert (found.article.url, found.article.text, found.story_id, found.story,
            found.matched, found.pruned) == (art.url, TEXT, story.id, story.subject,
                                             frozenset({("opposition", "Ahmad Massoud")}),
                                             False)
    assert sources.find_article("https://kabul.example/news/404") is None


def test_the_archive_of_one_watch_item(sources: Store) -> None:
    store_one(sources, article("Kabul", 1), [match()])
    store_one(sources, article("Kabul", 2, "Noor alone."), [match("Noor")])
    store_one(sources, article("Kabul", 3, "Nothing here."), [])
    everything = sources.archive(NOW - HOUR)
    assert len(everything) == 3
    [(art, stored)] = sources.archive(NOW - HOUR, watch=("opposition", "Noor"))
    assert art.text == "Noor alone." and stored == {("opposition", "Noor")}
    assert sources.archive(NOW - HOUR, watch=("north", "Noor")) == []
