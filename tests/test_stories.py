"""Stories: copies of one article group into one story, look-alikes do not; one alert per
(watchlist, story), one follow-up when a later copy names new watch items."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import random
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.app.pipeline import Pipeline
from crawler.core.article import Article
from crawler.process import search, stories
from crawler.store import SQLiteStore, Store
from crawler.store.threaded import ThreadedStore
from tests import schema
from tests.conftest import FakeClock, Project
from tests.feeds import Item, rss
from tests.fixtures.stories import BASES, Text, fixture_set
from tests.payloads import mentions
from tests.servers import Page, Receiver, Site
from tests.smtp import SmtpServer
from tests.test_end_to_end import verify


def pair_scores(truth: dict[str, str], found: dict[str, int]) -> tuple[float, float]:
    """Pairwise precision and recall of a grouping against the expected one."""
    same_truth = {p for p in itertools.combinations(sorted(truth), 2)
                  if truth[p[0]] == truth[p[1]]}
    same_found = {p for p in itertools.combinations(sorted(found), 2)
                  if found[p[0]] == found[p[1]]}
    hit = len(same_truth & same_found)
    return (hit / len(same_found) if same_found else 1.0,
            hit / len(same_truth) if same_truth else 1.0)


def ingest(project: Project, articles: list[Article], clock: FakeClock) -> Store:
    project.hook("http://127.0.0.1:9/unused")
    config = project.config()
    store = SQLiteStore(config.database_path)
    store.sync_sources(config.active_sources(), clock.now())

    async def run() -> None:
        async with httpx.AsyncClient() as client:
            pipeline = Pipeline(config, ThreadedStore(store), client, clock, "test")
            for article in articles:  # one poll each, as copies arrive over time
                await pipeline.ingest(article.source, [article])
                clock.advance(600)

    asyncio.run(run())
    return store


def test_clustering_of_the_fixture_set_has_full_precision_and_recall(
        project: Project) -> None:
    texts = fixture_set()
    random.Random(7).shuffle(texts)
    project.sources = [{"name": f"outlet-{n}", "feed": f"http://127.0.0.1:9/{n}"}
                       for n in range(len(texts))]
    articles = [Article(f"outlet-{n}", t.url, t.url, t.title, content_html=t.body,
                        published_at=datetime.now(UTC))
                for n, t in enumerate(texts)]
    store = ingest(project, articles, FakeClock())
    found = {r["url"]: r["story_id"] for r in schema.rows(store,
        "SELECT url, story_id FROM articles")}
    truth = {t.url: t.story for t in texts}
    precision, recall = pair_scores(truth, found)
    print(f"\nclustering: {len(texts)} articles, {len(set(truth.values()))} stories "
          f"expected, {len(set(found.values()))} found; pairwise precision "
          f"{precision:.3f}, recall {recall:.3f}")
    assert (precision, recall) == (1.0, 1.0)
    # Explainable: every copy names the article it was most similar to, and its score.
    copies = list(schema.rows(store, "SELECT similarity, similar_to, story_id FROM articles "
                                 "WHERE similar_to IS NOT NULL"))
    assert len(copies) == len(texts) - len(set(truth.values())), "all but each first"
    story_of = {r["id"]: r["story_id"] for r in schema.rows(store, "SELECT id, story_id "
                                                               "FROM articles")}
    for row in copies:
        assert 0.4 <= row["similarity"] <= 1.0
        assert story_of[row["similar_to"]] == row["story_id"]
    stories = {r["id"]: r for r in schema.rows(store, "SELECT * FROM stories")}
    assert stories[found[BASES["joint-declaration"].url]]["outlets"] == 5


def test_an_article_outside_the_window_starts_a_new_story(project: Project) -> None:
    base = BASES["noor-tashkent"]
    project.sources = [{"name": "a", "feed": "http://127.0.0.1:9/a"},
                       {"name": "b", "feed": "http://127.0.0.1:9/b"}]
    project.settings["stories"] = {"window": "1d"}
    project.hook("http://127.0.0.1:9/unused")
    clock = FakeClock()
    config = project.config()
    store = SQLiteStore(config.database_path)
    store.sync_sources(config.active_sources(), clock.now())

    async def run() -> None:
        async with httpx.AsyncClient() as client:
            pipeline = Pipeline(config, ThreadedStore(store), client, clock, "test")
            await pipeline.ingest("a", [Article("a", base.url, base.url, base.title,
                                                content_html=base.body)])
            clock.advance(2 * 86400)
            await pipeline.ingest("b", [Article("b", base.url + "?again", base.url,
                                                base.title, content_html=base.body)])

    asyncio.run(run())
    assert len({r["story_id"] for r in schema.rows(store, "SELECT story_id FROM articles")}) == 2


def test_copies_of_a_story_past_the_candidate_cap_still_join_it(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new copy is compared with the few most recent articles under each band key, not
    every copy ever stored (a boilerplate item repeated all day would make each new one
    read and score thousands), in the batch as from the database."""
    monkeypatch.setattr(stories, "CANDIDATES_PER_BAND", 2)
    base = BASES["noor-tashkent"]
    project.sources = [{"name": "a", "feed": "http://127.0.0.1:9/a"}]
    project.hook("http://127.0.0.1:9/unused")
    clock = FakeClock()
    config = project.config()
    store = SQLiteStore(config.database_path)
    store.sync_sources(config.active_sources(), clock.now())

    def copy(n: int) -> Article:
        return Article("a", f"{base.url}?copy={n}", f"{base.url}?copy={n}", base.title,
                       content_html=base.body)

    async def run() -> None:
        async with httpx.AsyncClient() as client:
            pipeline = Pipeline(config, ThreadedStore(store), client, clock, "test")
            await pipeline.ingest("a", [copy(n) for n in range(6)])  # one poll
            clock.advance(600)
            await pipeline.ingest("a", [copy(6)])  # a later one

    asyncio.run(run())
    rows = schema.rows(store, "SELECT id, story_id, similar_to FROM articles ORDER BY id")
    assert len(rows) == 7 and {r["story_id"] for r in rows} == {rows[0]["story_id"]}
    # each joined through one of the two most recent copies before it
    assert [r["similar_to"] for r in rows[1:]] == [1, 1, 2, 3, 4, 5]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 40)), max_size=12),
       st.integers(0, 3), st.floats(0.05, 1.0))
def test_placement_in_arrays_is_placement_one_by_one(
        drawn: list[tuple[int, int]], which: int, threshold: float) -> None:
    """The first of the most similar candidates that count, as a loop over them finds it."""
    texts = [" ".join(f"w{v}x{n}" for n in range(length)) for v, length in
             [(0, 30), (1, 30), (2, 5), (3, 30)]]
    prints = [stories.fingerprint(("", "", t)) for t in texts]
    new = prints[which]
    candidates = [stories.Candidate(n, 100 + v, prints[v].signature, prints[v].shingles)
                  for n, (v, _) in enumerate(drawn)]
    best = None
    for c in candidates:
        score = float(np.count_nonzero(np.frombuffer(new.signature, "<u4") ==
                                       np.frombuffer(c.signature, "<u4"))) / stories.HASHES
        short = new.short or c.shingles < stories.MIN_SHINGLES
        if (score >= 1.0 if short else score >= threshold) and (best is None or
                                                                 score > best.score):
            best = stories.Placement(c.story_id, c.article_id, score)
    assert stories.place(new, candidates, threshold) == best


STORY = BASES["massoud-dialogue"]
NOOR = ("Atta Mohammad Noor, who attended the Vienna meeting by video link, said the "
        "northern blocs supported the call.")


def story_item(site: Site, path: str, title: str, paragraphs: tuple[str, ...]) -> Item:
    return Item(title, site.url(path), "".join(f"<p>{p}</p>" for p in paragraphs),
                path, datetime.now(UTC))


def test_one_story_from_four_feeds_alerts_once_and_once_more_for_a_new_person(
        project: Project, receiver: Receiver) -> None:
    sites = [Site(f"127.0.0.{n}") for n in (2, 3, 4, 5)]
    try:
        project.hook(receiver.url("/hook"))
        project.sources = [{"name": f"Outlet {n}", "feed": s.url("/feed.xml")}
                           for n, s in enumerate(sites, 1)]
        for s in sites:
            s.pages["/feed.xml"] = Page(rss([]))
        p = STORY.paragraphs

        # Poll 1: the wire story on the first outlet.
        sites[0].pages["/feed.xml"] = Page(rss([story_item(sites[0], "/wire", STORY.title, p)]))
        project.cli("once", check=True)
        # Poll 2: two outlets retitle it, one adds boilerplate, one rewrites a paragraph.
        sites[1].pages["/feed.xml"] = Page(rss([story_item(
            sites[1], "/opinion", f"Opinion | {STORY.title}",
            (*p, "Follow us on Twitter. All rights reserved."))]))
        sites[2].pages["/feed.xml"] = Page(rss([story_item(
            sites[2], "/tolo", f"{STORY.title} – TOLOnews",
            (*p[:3], "Massoud said the neighbours should wait for schools to reopen.",
             p[4]))]))
        project.cli("once", check=True)
        project.cli("once", check=True)  # polls with nothing new send nothing
        assert len(receiver.delivered()) == 1
        # Poll 3: the fourth outlet's copy adds a paragraph naming another watched person.
        sites[3].pages["/feed.xml"] = Page(rss([story_item(
            sites[3], "/intl", f"{STORY.title} | Afghanistan International", (*p, NOOR))]))
        project.cli("once", check=True)
        # Poll 4: another copy naming him again on the first outlet: nothing new to say.
        sites[0].pages["/feed.xml"] = Page(rss([
            story_item(sites[0], "/wire", STORY.title, p),
            story_item(sites[0], "/wire-update", STORY.title + " (updated)", (*p, NOOR))]))
        project.cli("once", check=True)

        payloads = [verify(h) for h in receiver.delivered()]
        assert len(payloads) == 2
        first, follow = (p["data"] for p in payloads)
        assert first["story"]["follow_up"] is False
        assert first["article"]["url"] == sites[0].url("/wire")
        assert {m["watch"] for m in mentions(payloads[0])} == {"Ahmad Massoud",
                                                               "intra-Afghan dialogue"}
        assert follow["story"]["follow_up"] is True
        assert follow["story"]["new_watches"] == ["Atta Mohammad Noor"]
        assert follow["story"]["id"] == first["story"]["id"]
        assert follow["story"]["outlets"] == 4
        assert follow["article"]["url"] == sites[3].url("/intl")
        sources = follow["story"]["sources"]  # 2 and 3 were polled together: either order
        assert sources[0] == "Outlet 1" and sorted(sources) == [f"Outlet {n}" for n in range(1, 5)]
        [items] = [[(i["watch"], i["new"]) for i in w["items"]] for w in follow["watchlists"]]
        assert items[0] == ("Atta Mohammad Noor", True), "the reason first"
        assert {watch for watch, new in items if not new} == {"Ahmad Massoud",
                                                              "intra-Afghan dialogue"}
        assert len({h.headers["webhook-id"] for h in receiver.delivered()}) == 2

        listed = json.loads(project.cli("stories", "--json", check=True).stdout)
        assert len(listed) == 1
        assert listed[0]["articles"] == 5 and listed[0]["outlets"] == 4
        assert sorted(listed[0]["outlets_list"]) == [f"Outlet {n}" for n in range(1, 5)]
        assert "afghan-opposition: Atta Mohammad Noor" in listed[0]["watches"]
        table = project.cli("stories", check=True).stdout
        assert "Outlet 4" in table
    finally:
        for s in sites:
            s.close()


def test_a_story_first_seen_without_matches_alerts_when_a_copy_matches(
        project: Project, receiver: Receiver) -> None:
    """The first alert of a (watchlist, story) is an ordinary alert, not a follow-up."""
    site = Site()
    try:
        project.hook(receiver.url("/hook"))
        project.sources = [{"name": "A", "feed": site.url("/a.xml")},
                           {"name": "B", "feed": site.url("/b.xml")}]
        quake = next(t for t in fixture_set() if t.story == "herat-quake")
        body = (*quake.paragraphs, "Relief groups expect more aftershocks in the area, "
                "and roads to several villages remain closed after landslides.")
        site.pages["/a.xml"] = Page(rss([story_item(site, "/q1", quake.title, body)]))
        site.pages["/b.xml"] = Page(rss([]))
        project.cli("once", check=True)
        assert receiver.delivered() == []
        site.pages["/b.xml"] = Page(rss([story_item(
            site, "/q2", quake.title, (*body, "Atta Mohammad Noor sent condolences."))]))
        project.cli("once", check=True)
        payloads = [verify(h) for h in receiver.delivered()]
        assert len(payloads) == 1
        story = payloads[0]["data"]["story"]  # type: ignore[index]
        assert story["follow_up"] is False and story["articles"] == 2
    finally:
        site.close()


def test_old_copies_are_not_candidates_after_their_text_is_pruned(project: Project) -> None:
    base = BASES["joint-declaration"]
    project.sources = [{"name": "a", "feed": "http://127.0.0.1:9/a"}]
    clock = FakeClock()
    store = ingest(project, [Article("a", base.url, base.url, base.title,
                                     content_html=base.body)], clock)
    assert schema.value(store, "SELECT count(*) FROM story_bands") > 0
    assert store.prune_articles(clock.now() + timedelta(days=1), timedelta(hours=1)) == 1
    assert schema.value(store, "SELECT count(*) FROM story_bands") == 0
    assert schema.value(store, "SELECT count(*) FROM article_signatures") == 0


def test_the_email_carries_the_story_and_marks_the_follow_up(project: Project, site: Site,
                                                             smtp: SmtpServer) -> None:
    from tests.test_email import mail_channel

    mail_channel(project, smtp.port)
    project.sources = [{"name": "Wire", "feed": site.url("/a.xml")},
                       {"name": "Echo", "feed": site.url("/b.xml")}]
    p = STORY.paragraphs
    site.pages["/a.xml"] = Page(rss([story_item(site, "/w", STORY.title, p)]))
    site.pages["/b.xml"] = Page(rss([]))
    clock = FakeClock()
    assert project.once(clock).delivery.delivered == 1
    site.pages["/b.xml"] = Page(rss([story_item(site, "/e", f"Opinion | {STORY.title}",
                                                (*p, NOOR))]))
    clock.advance(900)
    assert project.once(clock).delivery.delivered == 1
    first, follow = (m.message for m in smtp.mailbox.received())
    [story] = project.store().recent_stories(datetime(2000, 1, 1, tzinfo=UTC))
    assert not first["Subject"].startswith("[afghan-opposition] Follow-up")
    assert follow["Subject"] == f"[afghan-opposition] Follow-up: Opinion | {STORY.title}"
    for message in (first, follow):
        for kind in ("plain", "html"):
            body = message.get_body((kind,)).get_content()  # type: ignore[union-attr]
            assert f"Story {story['id']}" not in body, "no internal number for the reader"
    text = follow.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.index("Follow-up: now also names Atta Mohammad Noor.") \
        < text.index(f"Opinion | {STORY.title}"), "the reason comes first"


@pytest.mark.slow
def test_two_processes_storing_copies_at_once_agree_on_one_story_each(
        project: Project, site: Site, receiver: Receiver) -> None:
    from tests.fixtures.stories import BOILERPLATE, SAME_EVENT

    texts = [*BASES.values(), *SAME_EVENT]
    now = datetime.now(UTC)
    site.pages["/a.xml"] = Page(rss([
        Item(t.title, t.url, "".join(f"<p>{p}</p>" for p in t.paragraphs), t.url, now)
        for t in texts]))
    site.pages["/b.xml"] = Page(rss([
        Item(c.title, c.url, "".join(f"<p>{p}</p>" for p in c.paragraphs), c.url, now)
        for c in (Text(t.story, t.url + "?republished", f"Opinion | {t.title}",
                       (*t.paragraphs, BOILERPLATE)) for t in texts)]))
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "A", "feed": site.url("/a.xml")},
                       {"name": "B", "feed": site.url("/b.xml")}]
    project.write()
    first, second = project.popen("once"), project.popen("once")
    for process in (first, second):
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    store = project.store()
    assert len(store.archive(datetime(2000, 1, 1, tzinfo=UTC))) == 2 * len(texts)
    found = store.recent_stories(datetime(2000, 1, 1, tzinfo=UTC), limit=100)
    assert len(found) == len(texts) and {s["outlets"] for s in found} == {2}
    # One alert per story that names a watched person (all but the Dari text, which the
    # test watchlist has no Dari alias for, and the quake), whichever copy came first.
    ids = [verify(h)["data"]["story"]["id"] for h in receiver.delivered()]  # type: ignore[index]
    assert len(ids) == len(set(ids)) == len(texts) - 2


def _plan_setup() -> tuple[Any, ...]:
    from alerts import outbox
    from crawler.process.match import Match

    now = datetime(2026, 11, 28, 10, tzinfo=UTC)
    art = Article("s", "https://e.org/copy", "https://e.org/copy", "t", published_at=now)

    def m(watch: str, watchlist: str = "w") -> Match:
        return Match(watchlist, watch, watch, watch, "title", 0, 1, watch)

    def story(alerted: dict[str, frozenset[tuple[str, str]]]) -> outbox.StoryContext:
        return outbox.StoryContext(7, "story:https://e.org/first", 3, 2, now, alerted,
                                   ("s", "t"))

    return outbox, now, art, m, story


def test_plan_per_story_first_alert_follow_up_and_silence() -> None:
    """``group: story``: one row per channel listing every watchlist routed to it (never
    another channel's), follow-ups per (story, channel) for new (watchlist, watch) pairs."""
    outbox, now, art, m, story = _plan_setup()
    routes = {"w": ["hook"], "x": ["hook", "mail"], "other-team": ["mail"]}
    policy = outbox.Policy(urgent=frozenset({("w", "Noor")}))
    age = timedelta(days=2)
    found = [m("Massoud"), m("Dostum", "x"), m("Atmar", "other-team")]
    hook, mail = outbox.plan(art, found, routes, now, age, policy, story({}))
    assert (hook.channel, mail.channel) == ("hook", "mail")
    assert [w["name"] for w in hook.payload["data"]["watchlists"]] == ["w", "x"]
    assert [w["name"] for w in mail.payload["data"]["watchlists"]] == ["x", "other-team"]
    assert hook.items == (("w", "Massoud"), ("x", "Dostum"))
    assert hook.subject == "story:https://e.org/first" and not hook.priority
    assert hook.payload["version"] == 2 and hook.payload["data"]["priority"] == "normal"
    assert hook.payload["data"]["story"] == {
        "id": 7, "articles": 3, "outlets": 2, "sources": ["s", "t"],
        "first_seen_at": "2026-11-28T10:00:00Z", "follow_up": False, "new_watches": []}
    assert hook.message_id != mail.message_id

    before = story({"hook": frozenset({("w", "Massoud"), ("x", "Dostum")})})
    [mail_again] = outbox.plan(art, found, routes, now, age, policy, before)
    assert mail_again.channel == "mail", "alerted-ness is per channel"
    assert outbox.plan(art, found[:1], routes, now, age, policy, before) == []
    (follow, to_mail) = outbox.plan(art, [m("Massoud"), m("Dostum", "x"), m("Noor")],
                                    routes, now, age, policy, before)
    assert to_mail.channel == "mail" and not to_mail.payload["data"]["story"]["follow_up"]
    assert follow.subject == "story:https://e.org/first#follow-up:w: Noor"
    assert follow.message_id != hook.message_id
    assert follow.priority and follow.payload["data"]["priority"] == "high"
    data = follow.payload["data"]
    assert data["story"]["new_watches"] == ["Noor"] and data["story"]["follow_up"]
    assert [(w["name"], [(i["watch"], i["new"]) for i in w["items"]])
            for w in data["watchlists"]] == [
        ("w", [("Noor", True), ("Massoud", False)]), ("x", [("Dostum", False)])]


def test_plan_group_watchlist_keeps_one_version_1_row_per_watchlist() -> None:
    outbox, now, art, m, story = _plan_setup()
    routes = {"w": ["hook"], "x": ["hook"]}
    policy = outbox.Policy(urgent=frozenset({("w", "Noor")}), per_watchlist=frozenset({"hook"}))
    age = timedelta(days=2)
    w_row, x_row = outbox.plan(art, [m("Massoud"), m("Dostum", "x")], routes, now, age,
                               policy, story({}))
    assert w_row.payload == outbox.event_data(art, [m("Massoud")], now, story({}))
    assert x_row.payload["data"]["watchlist"] == "x" and x_row.payload["version"] == 1
    assert w_row.key == outbox.alert_key("w", "story:https://e.org/first", "hook")
    before = story({"hook": frozenset({("w", "Massoud")})})
    (follow, x_first) = outbox.plan(art, [m("Massoud"), m("Noor"), m("Dostum", "x")],
                                    routes, now, age, policy, before)
    assert follow.subject == "story:https://e.org/first#follow-up:Noor" and follow.priority
    assert follow.payload["data"]["story"]["new_watches"] == ["Noor"]
    assert len(follow.payload["data"]["matches"]) == 2
    assert x_first.payload["data"]["story"]["follow_up"] is False


def test_placement_joins_the_most_similar_candidate_or_starts_a_story() -> None:
    base = " ".join(f"word{n}" for n in range(60))
    new = stories.fingerprint(("", "", base))
    close = stories.fingerprint(("", "", base.replace("word50", "other")))
    far = stories.fingerprint(("", "", " ".join(f"else{n}" for n in range(60))))
    short = stories.fingerprint(("", "", "word1 word2 word3"))

    def candidate(article: int, story: int, fp: stories.Fingerprint) -> stories.Candidate:
        return stories.Candidate(article, story, fp.signature, fp.shingles)

    assert stories.place(new, [], 0.4) is None
    assert stories.place(new, [candidate(1, 10, far)], 0.4) is None
    placed = stories.place(new, [candidate(1, 10, far), candidate(2, 20, close),
                                 candidate(3, 30, new)], 0.4)
    assert placed is not None and (placed.story_id, placed.similar_to, placed.score) == \
        (30, 3, 1.0)
    # a tie keeps the first candidate; a short text joins only an exact copy
    placed = stories.place(new, [candidate(4, 40, new), candidate(5, 50, new)], 0.4)
    assert placed is not None and placed.story_id == 40
    assert stories.place(short, [candidate(6, 60, stories.fingerprint(
        ("", "", "word1 word2 word3 word4")))], 0.0) is None


GOLDEN = ("Atta Mohammad Noor met envoys in Tashkent on Wednesday to discuss border security "
          "and trade routes through northern Afghanistan. احمد مسعود در ویانا گفت که جبهه "
          "مقاومت برای مذاکره آماده است.")


def golden() -> dict[str, Any]:
    """The fingerprint of a fixed text, as JSON values."""
    fp = stories.fingerprint(search.fields("Noor meets envoys", "", GOLDEN))
    return {"shingles": fp.shingles, "signature": fp.signature.hex(), "bands": list(fp.bands)}


def test_the_signature_of_a_fixed_text_is_pinned() -> None:
    """Stored signatures are compared with new ones for days: a change to the hashing
    must come with a migration that recomputes them (schema step 10 did)."""
    found = golden()
    assert found["shingles"] == 32
    signature = bytes.fromhex(found["signature"])
    assert struct.unpack("<4I", signature[:16]) == (17714280, 67058930, 61140045, 45151405)
    assert hashlib.sha256(signature).hexdigest()[:16] == "b6fcd92c1395c925"
    bands = tuple(found["bands"])
    assert bands[:2] == (2678265046918884822, 3038056395418040140)
    assert hashlib.sha256(repr(bands).encode()).hexdigest()[:16] == "fda8a1e4f3516d1b"


@given(st.lists(st.integers(0, (1 << 63) - 1), max_size=50))
def test_the_hash_functions_reduce_without_dividing_as_numpy_divides(values: list[int]) -> None:
    edges = [0, 1, stories.PRIME - 1, stories.PRIME, stories.PRIME + 1, 2 * stories.PRIME,
             (1 << 31), (1 << 32) - 1, (stories.PRIME - 1) ** 2 + stories.PRIME - 1,
             (1 << 63) - 1]
    array = np.array(values + edges, dtype=np.uint64)
    expected = array % np.uint64(stories.PRIME)
    assert (stories._mod_prime(array.copy()) == expected).all()


def test_another_process_computes_the_same_signature() -> None:
    code = "import json; from tests.test_stories import golden; print(json.dumps(golden()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parent.parent,
                          env={**os.environ, "PYTHONHASHSEED": "4242"})
    assert json.loads(done.stdout) == golden()
