"""Mutes and feedback (crawler.app.tuning) through the real pipeline, store and CLI: a
muted story's copies queue nothing and its held alerts are never sent, watch mutes
expire, `not-relevant` proposes a safe rule or none, and learned rules hold in the next
poll, `check`, `match`, `backtest` and their YAML export."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from crawler.app import tuning
from crawler.app.pipeline import Pipeline
from crawler.core.article import Article
from crawler.store import LearnedRule, SQLiteStore
from crawler.store.threaded import ThreadedStore
from tests.conftest import FakeClock, Project
from tests.feeds import Item, rss
from tests.helpers import make_article, newswatch
from tests.servers import Page, Receiver, Site
from tests.test_digests import quarter_past

Step = Callable[[SQLiteStore], object]

POLITICS = [
    "Ahmad Massoud told a meeting in Dushanbe that the resistance would keep talking to "
    "regional governments about the future of the country.",
    "In an interview, Ahmad Massoud urged the neighbours to press for an inclusive "
    "government and for schools to reopen to girls.",
    "Ahmad Massoud and other opposition leaders signed a joint declaration in Vienna "
    "calling for elections and a new constitution.",
    "Supporters of Ahmad Massoud gathered in Panjshir to mark the anniversary of the "
    "death of his father, the commander.",
    "A spokesman for Ahmad Massoud denied reports of fighting near the Salang pass and "
    "said the roads were open to traffic again.",
]
CRICKET = ("Thousands of fans watched the Massoud Cup final in Kabul on Friday, where the "
           "wicketkeeper scored a century and the bowlers took six wickets.")


def ingest(project: Project, clock: FakeClock, *steps: list[Article] | Step) -> None:
    """Each batch through one pipeline's ingest (the chain after collection), in order,
    the clock moving ten minutes after each; a step that is a function of the store runs
    in between (a mute, a rule applied while the pipeline runs)."""
    config = project.config()
    store = SQLiteStore(config.database_path)
    store.sync_sources(config.active_sources(), clock.now())

    async def run() -> None:
        async with httpx.AsyncClient() as client:
            pipeline = Pipeline(config, ThreadedStore(store), client, clock, "test")
            for step in steps:
                if callable(step):
                    step(store)
                    continue
                assert (await pipeline.ingest("S", step)).new == len(step)
                clock.advance(600)

    try:
        asyncio.run(run())
    finally:
        store.close()


def archive(project: Project, clock: FakeClock, *extra: Article) -> None:
    project.hook("http://127.0.0.1:9/unused")
    project.sources = [{"name": "S", "feed": "http://127.0.0.1:9/feed"}]
    ingest(project, clock, [make_article(f"https://news.example/p{n}", content_html=t,
                                         title=f"Politics {n}", published_at=clock.now())
                            for n, t in enumerate(POLITICS)],
           [make_article("https://sport.example/cup?utm_source=rss", content_html=CRICKET,
                         title="Cup final", published_at=clock.now())], list(extra))


def test_a_muted_story_queues_nothing_and_its_held_alert_is_never_sent(
        project: Project, site: Site, receiver: Receiver) -> None:
    project.hook(receiver.url("/hook"), digest="hourly")
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    clock = quarter_past()
    title, body = "Massoud speaks in Dushanbe", " ".join(POLITICS[:3])
    items = [Item(title, site.url("/a/0"), body, "g0", datetime.now(UTC))]
    site.pages["/rss.xml"] = Page(rss(items))
    project.once(clock)
    assert project.store().alert_counts() == {"held": 1}

    muted = project.cli("mute", "story", site.url("/a/0") + "?utm_source=x", "--by", "ana",
                        check=True)
    assert "1 waiting alert(s) recorded as muted" in muted.stdout
    [mute] = json.loads(project.cli("mutes", "--json", check=True).stdout)
    assert (mute["kind"], mute["created_by"], mute["until"], mute["state"]) == \
        ("story", "ana", None, "active")
    table = project.cli("mutes", check=True).stdout
    assert "story: Massoud speaks in Dushanbe" in table and "ana" in table
    # a later copy naming a new person: no follow-up while the story is muted
    items.append(Item(title, site.url("/a/1"), f"{body} Atta Mohammad Noor joined them.",
                      "g1", datetime.now(UTC)))
    site.pages["/rss.xml"] = Page(rss(items))
    report = project.once(clock)
    assert [(p.new, p.matched, p.queued) for p in report.polls] == [(1, 1, 0)]
    assert len(project.store().recent_stories(clock.now() - timedelta(days=1))) == 1

    project.cli("unmute", str(mute["id"]), "--by", "ben", check=True)
    assert json.loads(project.cli("mutes", "--json", check=True).stdout) == []
    clock.advance(3600)
    assert project.once(clock).delivery.delivered == 0
    assert receiver.hits == [], "muted: never sent, even after the unmute"
    listed = json.loads(project.cli("alerts", "--status", "muted", "--json",
                                    check=True).stdout)
    assert [a["status"] for a in listed["alerts"]] == ["muted"]
    assert "muted" in project.cli("alerts", check=True).stdout
    ended = json.loads(project.cli("mutes", "--all", "--json", check=True).stdout)
    assert [(m["state"], m["ended_by"]) for m in ended] == [("ended", "ben")]


def test_a_watch_mute_silences_its_item_until_it_expires(project: Project) -> None:
    project.hook("http://127.0.0.1:9/unused")
    project.sources = [{"name": "S", "feed": "http://127.0.0.1:9/feed"}]
    clock = FakeClock()
    config = project.config()

    def mute(store: SQLiteStore) -> None:
        tuning.mute_watch(config, store, "Atta Mohammad Noor", "ana", clock.now(),
                          timedelta(hours=24), article_url="https://News.example/x#top")

    def noor(n: int) -> list[Article]:
        return [make_article(f"https://news.example/noor{n}", title=f"Speech {n}",
                             content_html=f"Atta Mohammad Noor spoke in Mazar, part {n} of {n}.",
                             published_at=clock.now())]

    def both(n: int) -> list[Article]:
        return [make_article(f"https://news.example/both{n}", title=f"Meeting {n}",
                             content_html=f"Atta Mohammad Noor and Ahmad Massoud met ({n}).",
                             published_at=clock.now())]

    ingest(project, clock, mute, noor(1), both(1), lambda _: clock.advance(24 * 3600),
           noor(2))
    store = project.store()
    queued = {r["url"].rsplit("/", 1)[1]: r for r in store.alerts()}
    assert sorted(queued) == ["both1", "noor2"], "muted for 24 h, then alerts again"
    assert len(store.matched_articles()) == 3, "muted matches are still stored"
    [made] = store.mutes(clock.now() - timedelta(hours=25), everything=True)
    assert (made["created_by"], made["article_url"]) == ("ana", "https://news.example/x")


def test_not_relevant_proposes_a_safe_exclude_and_apply_holds_everywhere(
        project: Project) -> None:
    clock = FakeClock()
    archive(project, clock)
    url = "https://sport.example/cup"
    shown = project.cli("not-relevant", url + "?utm_source=mail", "Ahmad Massoud",
                        check=True).stdout
    assert "exclude 'Massoud Cup'" in shown and "0 of 5 other match(es)" in shown
    assert "not applied" in shown
    assert json.loads(project.cli("rules", "--json", check=True).stdout) == []

    proposal = json.loads(project.cli("not-relevant", url, "Ahmad Massoud", "--apply",
                                      "--by", "ana", "--json", check=True).stdout)
    assert proposal["rule"]["kind"] == "exclude" and proposal["rule"]["term"] == "Massoud Cup"
    assert proposal["rule"]["removes_marked"] and proposal["rule"]["removed"] == 0
    [rule] = json.loads(project.cli("rules", "--json", check=True).stdout)
    assert (rule["id"], rule["by"], rule["article"], rule["state"]) == \
        (proposal["applied"], "ana", url, "applied")

    checked = project.cli("check", check=True).stdout
    assert "1 learned rule(s) from the database" in checked
    matched = json.loads(project.cli("match", "--text", CRICKET, "--json", check=True).stdout)
    assert matched["matches"] == []
    [veto] = matched["vetoed_by_learned_rules"]
    assert (veto["watch"], veto["rule"]["id"], veto["rule"]["term"]) == \
        ("Ahmad Massoud", rule["id"], "Massoud Cup")
    assert "Massoud Cup" in project.cli("match", "--text", CRICKET, check=True).stdout
    replay = json.loads(project.cli("backtest", "--json", check=True).stdout)
    assert [g["url"] for g in replay["no_longer_matched"]] == [url]
    assert replay["learned_rules"] == 1


def test_a_rule_applied_meanwhile_holds_from_the_next_batch_without_a_reload(
        project: Project) -> None:
    clock = FakeClock()
    archive(project, clock)
    config = project.config()

    def learn(store: SQLiteStore) -> None:
        proposal = tuning.propose(config, store, "https://sport.example/cup",
                                  "Ahmad Massoud", "ana", clock.now())
        assert proposal.rule is not None
        tuning.apply(store, proposal.rule)

    semi = CRICKET.replace("final", "semi-final")
    ingest(project, clock, learn, [make_article(
        "https://sport.example/semi", content_html=semi, title="Semi-final",
        published_at=clock.now())])
    store = project.store()
    found = store.find_article("https://sport.example/semi")
    assert found is not None and found.matched == frozenset(), "the rule vetoed it"


def test_no_safe_rule_when_every_candidate_removes_too_much(project: Project) -> None:
    clock = FakeClock()
    same = "Ahmad Massoud met elders in Panjshir."
    project.hook("http://127.0.0.1:9/unused")
    project.sources = [{"name": "S", "feed": "http://127.0.0.1:9/feed"}]
    ingest(project, clock, [make_article(f"https://news.example/m{n}", content_html=same,
                                         title="Elders", published_at=clock.now())
                            for n in range(6)])
    result = project.cli("not-relevant", "https://news.example/m0", "Ahmad Massoud")
    assert result.returncode == 1, result.stderr
    assert "no safe rule found" in result.stdout
    assert json.loads(project.cli("rules", "--json", check=True).stdout) == []


def test_not_relevant_explains_what_it_cannot_do(project: Project) -> None:
    clock = FakeClock()
    archive(project, clock)
    missing = project.cli("not-relevant", "https://nowhere.example/x", "Ahmad Massoud")
    assert missing.returncode == 1 and "no stored article" in missing.stderr
    typo = project.cli("not-relevant", "https://sport.example/cup", "Ahmad Masoud")
    assert typo.returncode == 2 and "did you mean 'Ahmad Massoud'" in typo.stderr
    other = project.cli("not-relevant", "https://sport.example/cup", "Atta Mohammad Noor")
    assert other.returncode == 1 and "does not match" in other.stderr
    assert project.cli("mute", "watch", "Ahmad Massoud").returncode == 2, "--for is required"
    source = project.cli("mute", "source", "Sx", "--for", "1h")
    assert source.returncode == 2 and "did you mean 'S'" in source.stderr


def test_exported_rules_are_watchlists_that_check_accepts_and_that_match_alike(
        project: Project, tmp_path: Path) -> None:
    clock = FakeClock()
    archive(project, clock)
    store = project.store()
    store.add_rule(LearnedRule("afghan-opposition", "Ahmad Massoud", "exclude",
                               "Massoud Cup", "ana", clock.now(), "https://sport.example/cup"))
    store.add_rule(LearnedRule("afghan-opposition", "Ahmad Massoud", "none_of", "wicketkeeper",
                               "ben", clock.now()))
    store.add_rule(LearnedRule("afghan-opposition", "Gone Person", "none_of", "x", "ben",
                               clock.now()))
    store.close()
    exported = project.cli("rules", "export", check=True).stdout
    assert "learned rule 1, by ana" in exported and "wicketkeeper" in exported

    folded = tmp_path / "folded"
    project.config_dir.rename(folded)
    (folded / "watchlists.yaml").write_text(exported, encoding="utf-8")
    alone = ["--config", str(folded)]
    checked = newswatch(*alone, "check", "--json")
    assert checked.returncode == 0, checked.stderr
    # the same database: the rules are in the YAML now, and check says so
    states = {r["term"]: r["state"] for r in json.loads(checked.stdout)["learned_rules"]}
    assert states == {"Massoud Cup": "in watchlists.yaml", "wicketkeeper": "in watchlists.yaml",
                      "x": "no such watch item"}
    assert "rules remove 3" in checked.stderr
    assert newswatch(*alone, "rules", "remove", "1", "2", "3").returncode == 0
    for text in (CRICKET, CRICKET.replace("Massoud Cup", "Ahmad Massoud trophy")):
        matched = json.loads(newswatch(*alone, "match", "--text", text, "--json").stdout)
        assert matched["matches"] == [], text
    kept = json.loads(newswatch(*alone, "match", "--text", POLITICS[0], "--json").stdout)
    assert [m["watch"] for m in kept["matches"]] == ["Ahmad Massoud"]


def test_a_dari_match_gets_an_exclude_as_the_text_wrote_it(project: Project) -> None:
    """The words around the mention are taken in any script; a particle alone (را) is
    no context."""
    clock = FakeClock()
    project.watchlists = [{"name": "north", "channels": ["hook"],
                           "watch": [{"name": "Dostum", "aliases": ["دوستم"]}]}]
    project.hook("http://127.0.0.1:9/unused")
    project.sources = [{"name": "S", "feed": "http://127.0.0.1:9/feed"}]
    politics = ["مارشال دوستم از ترکیه به کشور بازگشت.",
                "دوستم را رهبران جبهه شمال در مزار شریف دیدند.",
                "حزب جنبش ملی گفت که دوستم در نشست ویانا شرکت کرد."]
    ingest(project, clock, [make_article(f"https://dari.example/{n}", title=f"خبر {n}",
                                         content_html=t, published_at=clock.now())
                            for n, t in enumerate(politics)],
           [make_article("https://dari.example/cup", title="فینال",
                         content_html="هزاران نفر فینال جام دوستم را در کابل تماشا کردند.",
                         published_at=clock.now())])
    store = project.store()
    try:
        proposal = tuning.propose(project.config(), store, "https://dari.example/cup",
                                  "Dostum", "ana", clock.now())
        assert proposal.rule is not None
        assert (proposal.rule.rule.kind, proposal.rule.rule.term) == ("exclude", "جام دوستم")
        assert (proposal.rule.others, proposal.rule.removed) == (3, ())
        broad = tuning.evaluate(project.config(), store, LearnedRule(
            "north", "Dostum", "exclude", "دوستم را", "ana", clock.now()),
            "https://dari.example/cup", clock.now())
        assert broad.removes_marked and len(broad.removed) == 1 and not broad.safe
    finally:
        store.close()


@pytest.mark.parametrize("duration", ["0s", "soon"])
def test_a_mute_needs_a_positive_duration(project: Project, duration: str) -> None:
    result = project.cli("mute", "source", "S", "--for", duration)
    assert result.returncode == 2 and "--for" in result.stderr
