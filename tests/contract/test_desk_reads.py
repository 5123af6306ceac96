"""Contract: the web desk's reads. The stories list (one row per matched story, newest
first, filtered and paged by cursor), a story's page (copies, mentions cut into pieces,
alerts and their deliveries, mutes), a watch item's timeline, the outbox listing."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from crawler.core.article import Article
from crawler.process.fold import excerpts
from crawler.process.match import Match
from crawler.process.search import parse_query
from crawler.store import DeliveryResult, Mute, Store
from crawler.store.desk import Chip, StoryFilter, search_passage
from tests.contract.conftest import (
    LEASE,
    NOW,
    alert_row,
    article,
    new,
    no_alerts,
    source,
    story_subject,
    varied,
)

DARI = ("احمد مسعود روز سه شنبه با بزرگان پنجشیر دیدار کرد و درباره کاروان کمک های زمستانی "
        "و بازگشایی راه سالنگ گفتگو کرد، مقامات در اعلامیه ای گفتند.")
HOOK = "hook"


@pytest.fixture
def sources(store: Store) -> Store:
    store.sync_sources([source("Kabul"), source("North"), source("West"), source("Tolo")],
                       NOW)
    return store


def named(text: str, watch: str, watchlist: str = "opposition", field: str = "text",
          name: str | None = None) -> Match:
    """A match of ``name`` (the item's name by default) where it stands in ``text``."""
    said = name or watch
    start = text.index(said)
    return Match(watchlist, watch, said, said, field, start, start + len(said),
                 *excerpts(text, start, start + len(said)))


def story_of(store: Store, n: int, src: str = "Kabul", watch: str = "Ahmad Massoud",
             watchlist: str = "opposition", *, text: str | None = None,
             title: str = "", at: int = 0, name: str | None = None) -> int:
    """Store one article naming ``watch`` in a story of its own; its story id."""
    body = text or f"{varied(n)} {watch} said."
    art = article(src, n, body, title)
    [stored] = store.add_articles([new(art, [named(body, watch, watchlist, name=name)])],
                                  NOW + timedelta(minutes=at), "v1", no_alerts)
    return stored.story_id


def test_one_row_per_matched_story_newest_first_with_outlets_copies_and_chips(
        sources: Store) -> None:
    first = article("Kabul", 1, title="Massoud meets Panjshir elders")
    copy = article("North", 2, title="Elders meet Massoud")
    again = article("Kabul", 3, title="Massoud meets elders again")
    from tests.contract.conftest import TEXT
    sources.add_articles([new(first, [named(TEXT, "Ahmad Massoud")]),
                          new(copy, [named(TEXT, "Panjshir", "places")]),
                          new(again, [named(TEXT, "Ahmad Massoud")])], NOW, "v1", no_alerts)
    sources.add_articles([new(article("West", 4, "Nothing of note happened today."))],
                         NOW, "v1", no_alerts)
    later = story_of(sources, 5, "West", "Hanif Atmar", at=5)
    page = sources.story_list()
    assert [r.id for r in page.rows] == [later, page.rows[1].id] and page.older is None
    assert page.newest == later
    story = page.rows[1]
    assert (story.headline, story.url, story.link) == (first.title, first.url, first.link)
    assert story.key == story_subject(first.url)
    assert (story.copies, story.outlets, story.outlet_count) == (3, ("Kabul", "North"), 2)
    assert story.first_seen_at == NOW and story.first_seen_at.utcoffset() == timedelta(0)
    assert story.chips == (Chip("opposition", "Ahmad Massoud"), Chip("places", "Panjshir"))
    assert story.watchlists == ("opposition", "places")
    assert (story.script, story.direction) == ("latin", "ltr")


def test_filters_by_watchlist_item_source_time_and_script(sources: Store) -> None:
    massoud = story_of(sources, 1, "Kabul", "Ahmad Massoud")
    noor = story_of(sources, 2, "North", "Atta Mohammad Noor", at=10)
    salang = story_of(sources, 3, "West", "Salang", "roads", at=20)
    dari = story_of(sources, 4, "Tolo", "Ahmad Massoud", text=DARI, title="دیدار در پنجشیر",
                    at=30, name="احمد مسعود")

    def ids(**where: object) -> list[int]:
        return [r.id for r in sources.story_list(StoryFilter(**where)).rows]  # type: ignore[arg-type]

    assert ids() == [dari, salang, noor, massoud]
    assert ids(watchlist="roads") == [salang]
    assert ids(watch="Ahmad Massoud") == [dari, massoud]
    assert ids(watch="Ahmad Massoud", watchlist="roads") == []
    assert ids(source="North") == [noor]
    assert ids(source="Tolo", watch="Ahmad Massoud") == [dari]
    assert ids(source="Kabul", watchlist="roads") == []
    assert ids(script="arabic") == [dari]
    assert ids(script="latin") == [salang, noor, massoud]
    assert ids(script="latin", watch="Ahmad Massoud") == [massoud]
    assert ids(script="latin", source="West") == [salang]
    assert ids(since=NOW + timedelta(minutes=10)) == [dari, salang, noor]
    assert ids(until=NOW + timedelta(minutes=10)) == [massoud], "until is excluded"
    assert ids(since=NOW + timedelta(minutes=10), until=NOW + timedelta(minutes=30),
               watch="Atta Mohammad Noor") == [noor]
    assert ids(since=NOW + timedelta(minutes=10), source="Kabul") == []
    assert ids(since=NOW + timedelta(minutes=31)) == []
    assert ids(watch="Nobody") == ids(source="Nowhere") == []
    [row] = sources.story_list(StoryFilter(script="arabic")).rows
    assert (row.headline, row.direction) == ("دیدار در پنجشیر", "rtl")


def test_pages_by_cursor_to_the_last_row_and_polls_for_newer(sources: Store) -> None:
    made = [story_of(sources, n, at=n) for n in range(7)]
    newest_first = made[::-1]
    one = sources.story_list(limit=3)
    assert [r.id for r in one.rows] == newest_first[:3] and one.older == newest_first[2]
    two = sources.story_list(before=one.older, limit=3)
    assert [r.id for r in two.rows] == newest_first[3:6] and two.older == newest_first[5]
    three = sources.story_list(before=two.older, limit=3)
    assert [r.id for r in three.rows] == newest_first[6:] and three.older is None
    exact = sources.story_list(before=newest_first[3], limit=3)
    assert [r.id for r in exact.rows] == newest_first[4:] and exact.older is None, \
        "a page exactly filled has no next one"
    assert sources.story_list(before=made[0]).rows == ()
    assert sources.story_list(after=one.newest).rows == ()
    late = [story_of(sources, 10, at=20), story_of(sources, 11, "West", "Salang", at=21)]
    newer = sources.story_list(after=one.newest)
    assert [r.id for r in newer.rows] == late[::-1] and newer.newest == late[1]
    assert [r.id for r in sources.story_list(StoryFilter(watch="Salang"),
                                             after=one.newest).rows] == [late[1]]
    cut = sources.story_list(after=one.newest, limit=1)
    assert [r.id for r in cut.rows] == [late[1]] and cut.older == late[1], \
        "more new stories than a page: the page says so"
    deep = sources.story_list(StoryFilter(watch="Ahmad Massoud"), before=made[2], limit=5)
    assert [r.id for r in deep.rows] == [made[1], made[0]] and deep.older is None


def test_a_story_page_shows_copies_mentions_in_pieces_and_rtl_dari(sources: Store) -> None:
    text = ("Officials met on Monday. <b>Ahmad Massoud</b> & Atta Mohammad Noor spoke "
            "in Panjshir about the Salang pass and its winter convoys. Nothing else.")
    english = article("Kabul", 1, text, "Massoud & Noor <script>x</script>")
    dari = Article(source="Tolo", url="https://tolo.example/1", link="https://tolo.example/1",
                   title="احمد مسعود در پنجشیر", summary=DARI, text=DARI, language="fa-AF")
    matches = [named(text, "Ahmad Massoud"), named(text, "Atta Mohammad Noor"),
               named(english.title, "Ahmad Massoud", field="title", name="Massoud")]
    [one] = sources.add_articles([new(english, matches)], NOW, "v1", no_alerts)
    [two] = sources.add_articles([new(dari, [named(DARI, "Ahmad Massoud",
                                                   name="احمد مسعود")])],
                                 NOW, "v1", no_alerts)
    detail = sources.story_detail(one.story_id, NOW)
    assert detail is not None and detail.story.id == one.story_id
    [copy] = detail.copies
    assert (copy.source, copy.title, copy.url, copy.direction) == (
        "Kabul", english.title, english.url, "ltr")
    assert [(m.watch, m.field) for m in copy.mentions] == [
        ("Ahmad Massoud", "text"), ("Atta Mohammad Noor", "text"), ("Ahmad Massoud", "title")]
    sentence, headline = copy.passages
    assert sentence.watches == ("Ahmad Massoud", "Atta Mohammad Noor")
    assert sentence.pieces == (("<b>", "Ahmad Massoud"), ("</b> & ", "Atta Mohammad Noor"))
    assert sentence.tail == " spoke in Panjshir about the Salang pass and its winter convoys."
    assert sentence.text == text.split("Monday. ")[1].removesuffix(" Nothing else.")
    assert (headline.field, headline.pieces, headline.tail) == (
        "title", (("", "Massoud"),), " & Noor <script>x</script>"), "raw: templates escape"
    farsi = sources.story_detail(two.story_id, NOW)
    assert farsi is not None
    assert (farsi.story.script, farsi.story.direction) == ("arabic", "rtl")
    [copy] = farsi.copies
    assert (copy.language, copy.script, copy.direction) == ("fa-AF", "arabic", "rtl")
    [passage] = copy.passages
    assert passage.pieces == (("", "احمد مسعود"),) and passage.tail.startswith(" روز سه شنبه")
    assert sources.story_detail(10_000, NOW) is None


def test_a_pruned_copy_shows_the_snippet_its_match_kept(sources: Store) -> None:
    text = f"{varied(1)} Then Ahmad Massoud said **nothing** more."
    story = story_of(sources, 1, text=text)
    assert sources.prune_articles(NOW + timedelta(days=40), timedelta(days=30)) == 1
    detail = sources.story_detail(story, NOW + timedelta(days=40))
    assert detail is not None
    [copy] = detail.copies
    [passage] = copy.passages
    assert copy.pruned and passage.pieces[0][1] == "Ahmad Massoud"
    assert passage.tail.startswith(" said **nothing** more.")


def test_a_story_page_says_which_alerts_went_where_and_how(sources: Store) -> None:
    def plan(art, matches, story):  # type: ignore[no-untyped-def]
        pairs = (("opposition", "Ahmad Massoud"),)
        return [alert_row("opposition", f"{story.subject}#{channel}", channel, items=pairs,
                          hold_until=NOW + timedelta(hours=1) if channel == "digest" else None)
                for channel in ("hook", "mail", "digest")]

    from tests.contract.conftest import TEXT
    [stored] = sources.add_articles([new(article("Kabul", 1), [named(TEXT, "Ahmad Massoud")])],
                                    NOW, "v1", plan)
    claimed = {a.channel: a for a in sources.claim_alerts("p1", NOW, LEASE, ["hook", "mail"])}
    sources.record_delivery(claimed["hook"].id, "p1", NOW, DeliveryResult("delivered", 200))
    sources.record_delivery(claimed["mail"].id, "p1", NOW, DeliveryResult(
        "dead", 550, "smtp: mailbox unavailable"))
    detail = sources.story_detail(stored.story_id, NOW)
    assert detail is not None
    alerts = {a.channel: a for a in detail.alerts}
    assert {c: (a.status, a.state) for c, a in alerts.items()} == {
        "hook": ("delivered", "delivered"), "mail": ("dead", "dead"),
        "digest": ("pending", "held")}
    assert alerts["hook"].items == (Chip("opposition", "Ahmad Massoud"),)
    assert [(d.outcome, d.status_code) for d in alerts["hook"].deliveries] == [
        ("delivered", 200)]
    assert alerts["hook"].delivered_at == NOW
    assert alerts["mail"].last_error == "smtp: mailbox unavailable"
    assert [d.error for d in alerts["mail"].deliveries] == ["smtp: mailbox unavailable"]
    assert alerts["digest"].deliveries == () and alerts["digest"].article_id == stored.id


def test_a_story_page_lists_the_mutes_in_force_touching_it(sources: Store) -> None:
    story = story_of(sources, 1, "Kabul", "Ahmad Massoud")
    other = story_of(sources, 2, "West", "Salang", "roads")
    key = sources.story_list(StoryFilter(source="Kabul")).rows[0].key
    later = NOW + timedelta(days=1)
    mine = [sources.add_mute(Mute("story", key, "ana", NOW))[0],
            sources.add_mute(Mute("source", "Kabul", "ana", NOW, later))[0],
            sources.add_mute(Mute("watch", "Ahmad Massoud", "bo", NOW))[0],
            sources.add_mute(Mute("watch", "Ahmad Massoud", "bo", NOW,
                                  watchlist="opposition"))[0]]
    sources.add_mute(Mute("watch", "Ahmad Massoud", "bo", NOW, watchlist="roads"))
    sources.add_mute(Mute("watch", "Salang", "bo", NOW))
    sources.add_mute(Mute("source", "West", "bo", NOW))
    ended = sources.add_mute(Mute("watch", "Ahmad Massoud", "cy", NOW))[0]
    assert sources.end_mute(ended, NOW, "cy")
    detail = sources.story_detail(story, NOW)
    assert detail is not None
    assert [m.id for m in detail.mutes] == mine
    assert [(m.kind, m.created_by, m.until) for m in detail.mutes[:2]] == [
        ("story", "ana", None), ("source", "ana", later)]
    after = sources.story_detail(story, later)
    assert after is not None and [m.kind for m in after.mutes] == ["story", "watch", "watch"]
    other_page = sources.story_detail(other, NOW)
    assert other_page is not None and [m.target for m in other_page.mutes] == [
        "Salang", "West"], "another story's mutes are its own"


def test_a_watch_items_timeline_counts_articles_per_day_with_empty_days(
        sources: Store) -> None:
    day = timedelta(days=1)
    for n, (when, watch) in enumerate([(NOW - 3 * day, "Ahmad Massoud"),
                                       (NOW - 3 * day, "Ahmad Massoud"),
                                       (NOW - day, "Ahmad Massoud"),
                                       (NOW - day, "Salang"), (NOW, "Ahmad Massoud"),
                                       (NOW - 9 * day, "Ahmad Massoud")]):
        body = f"{varied(n)} {watch} said."
        art = article("Kabul", n, body)
        sources.add_articles([new(art, [named(body, watch)])], when, "v1", no_alerts)
    timeline = sources.watch_timeline("Ahmad Massoud", NOW, days=5)
    assert [(d.day, d.articles) for d in timeline.days] == [
        (date(2026, 11, 24), 0), (date(2026, 11, 25), 2), (date(2026, 11, 26), 0),
        (date(2026, 11, 27), 1), (date(2026, 11, 28), 1)]
    assert timeline.total == 4 and len(timeline.stories) == 5
    assert all(Chip("opposition", "Ahmad Massoud") in s.chips for s in timeline.stories)
    assert sources.watch_timeline("Ahmad Massoud", NOW, watchlist="roads").total == 0
    kabul = sources.watch_timeline("Ahmad Massoud", NOW, days=1, zone="Asia/Kabul")
    assert [(d.day, d.articles) for d in kabul.days] == [(date(2026, 11, 28), 1)], \
        "10:00 UTC is 14:30 in Kabul, the same day"
    assert len(sources.watch_timeline("Ahmad Massoud", NOW, stories=2).stories) == 2


def test_the_outbox_lists_waiting_held_muted_and_dead_alerts_and_retries_them(
        sources: Store) -> None:
    def plan(art, matches, story):  # type: ignore[no-untyped-def]
        held = NOW + timedelta(hours=1) if art.source == "West" else None
        return [alert_row("opposition", story.subject, HOOK, hold_until=held,
                          items=(("opposition", matches[0].watch),))]

    ids = {}
    for n, src in enumerate(["Kabul", "North", "West", "Tolo"]):
        body = f"{varied(n)} Ahmad Massoud said."
        art = article(src, n, body, f"Headline {src}")
        [stored] = sources.add_articles([new(art, [named(body, "Ahmad Massoud")])], NOW, "v1",
                                        plan)
        ids[src] = stored.rows[0]
    by_source = {}
    for entry in sources.outbox_entries().rows:
        by_source[entry.headline.removeprefix("Headline ")] = entry
    [kabul] = [a for a in sources.claim_alerts("p1", NOW, LEASE, [HOOK], limit=1)]
    sources.record_delivery(kabul.id, "p1", NOW, DeliveryResult("dead", 500, "HTTP 500"))
    tolo = sources.story_list(StoryFilter(source="Tolo")).rows[0]
    sources.add_mute(Mute("story", tolo.key, "ana", NOW))
    page = sources.outbox_entries()
    states = {e.headline: (e.state, e.retryable) for e in page.rows}
    assert states == {"Headline Kabul": ("dead", True), "Headline North": ("pending", True),
                      "Headline West": ("held", True), "Headline Tolo": ("muted", False)}
    assert len(by_source) == 4 and page.older is None
    dead = next(e for e in page.rows if e.state == "dead")
    assert (dead.channel, dead.attempts, dead.last_error) == (HOOK, 1, "HTTP 500")
    assert dead.story_id is not None and dead.url == article("Kabul", 0).url
    assert [e.headline for e in sources.outbox_entries(["dead"]).rows] == ["Headline Kabul"]
    assert [e.state for e in sources.outbox_entries(["held", "muted"]).rows] == [
        "muted", "held"]
    assert sources.outbox_entries([]).rows == ()
    first = sources.outbox_entries(limit=2)
    rest = sources.outbox_entries(before=first.older, limit=2)
    assert len(first.rows) == len(rest.rows) == 2 and rest.older is None
    assert {e.id for e in first.rows + rest.rows} == {e.id for e in page.rows}
    assert sources.requeue(NOW, [dead.id]) == 1
    assert sources.outbox_entries(["dead"]).rows == ()
    assert [e.state for e in sources.outbox_entries(["pending"]).rows
            if e.id == dead.id] == ["pending"]


def test_a_search_hit_is_cut_into_pieces_across_letter_variants(sources: Store) -> None:
    arabic_yeh = DARI.replace("ی", "ي")
    sources.add_articles([new(Article(source="Tolo", url="https://tolo.example/2",
                                      link="https://tolo.example/2", title="خبر",
                                      summary=arabic_yeh, text=arabic_yeh))],
                         NOW, "v1", no_alerts)
    query = parse_query("زمستانی")
    [row] = sources.search(query, since=NOW - timedelta(days=30))
    found = search_passage(row, query)
    assert found is not None and found.field == "summary"
    assert [m for _, m in found.pieces] == ["زمستاني"], "as written, found by its variant"
    assert found.text == arabic_yeh


def test_search_can_give_the_last_stored_first_whatever_the_publication_dates(
        sources: Store) -> None:
    """The desk's order: the index's own, with no sort of every hit."""
    for n, published in enumerate([NOW, NOW - timedelta(days=3), NOW - timedelta(days=1)]):
        sources.add_articles([new(replace(article("Kabul", n, f"{varied(n)} Salang pass."),
                                          published_at=published))], NOW, "v1", no_alerts)
    query = parse_query("salang")
    stored = [r["url"] for r in sources.search(query, order="stored")]
    assert stored == [article("Kabul", n).url for n in (2, 1, 0)]
    assert [r["url"] for r in sources.search(query, order="newest")] == [
        article("Kabul", n).url for n in (0, 2, 1)]
    assert [r["url"] for r in sources.search(query, order="stored", limit=1,
                                             since=NOW)] == [article("Kabul", 2).url]
