"""One message per story per channel (issue #13, point 1): the shipped watchlists over one
article give one webhook (payload version 2) and one email; ``group: watchlist`` keeps
version 1 byte for byte; v1-era templates render version 2; stories alerted before the
upgrade keep their follow-ups."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from alerts import digest, outbox, webhook
from alerts.channels import sample_payload
from alerts.templates import Renderer, context
from crawler.config import WatchlistConfig
from crawler.core.article import Article
from crawler.process import sentences
from crawler.process.extract import extract
from crawler.process.match import Matcher
from crawler.store import StoryContext
from crawler.store.sqlite import STEPS
from tests import schema
from tests.feeds import Item, rss
from tests.helpers import FakeClock, Project, newswatch
from tests.payloads import mentions, valid_payload
from tests.servers import Page, Receiver, Site
from tests.smtp import SmtpServer

ROOT = Path(__file__).parent.parent
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

# --- the inputs tests/data/v1-alerts.json was made from, by the code before this change

WATCHLISTS = [WatchlistConfig.model_validate(w) for w in [
    {"name": "afghan-opposition", "channels": ["hook"], "watch": [
        {"name": "Ahmad Massoud", "aliases": ["احمد مسعود"]},
        {"name": "Hanif Atmar", "priority": "high"}]},
    {"name": "opposition-blocs", "channels": ["hook"], "watch": [
        {"name": "National Resistance Front"}, {"name": "intra-Afghan dialogue"}]}]]
ARTICLE = extract(Article(
    source="Khaama Press", url="https://www.khaama.com/massoud-talks/",
    link="https://www.khaama.com/massoud-talks/?utm_source=rss",
    title="Ahmad Massoud calls for intra-Afghan dialogue",
    published_at=datetime(2026, 11, 28, 9, 41, tzinfo=UTC),
    summary_html="<p>The leader of the National Resistance Front spoke in Dushanbe.</p>",
    content_html="<p>Ahmad Massoud said on Sunday that intra-Afghan dialogue must begin. "
                 "Hanif Atmar agreed. احمد مسعود گفت.</p>"), NOW)
ROUTES = {"afghan-opposition": ["hook"], "opposition-blocs": ["hook"]}
FIRST_SEEN = datetime(2026, 11, 28, 9, 44, 10, tzinfo=UTC)
URGENT = frozenset({("afghan-opposition", "Hanif Atmar")})


def story(alerted: dict[str, frozenset[tuple[str, str]]]) -> StoryContext:
    return StoryContext(412, "story:https://www.khaama.com/massoud-talks/", 3, 2, FIRST_SEEN,
                        alerted, ("Khaama Press", "Tolo News"))


def test_group_watchlist_sends_the_version_1_payload_byte_for_byte() -> None:
    """Same bodies, keys, ids and priorities as before the change, first alerts and a
    follow-up alike: a receiver of a ``group: watchlist`` channel sees no difference."""
    before = json.loads((ROOT / "tests" / "data" / "v1-alerts.json").read_text())["alerts"]
    matches = Matcher(WATCHLISTS).match(ARTICLE)
    policy = outbox.Policy(urgent=URGENT, per_watchlist=frozenset({"hook"}))
    rows = [row for alerted in ({}, {"hook": frozenset({("afghan-opposition",
                                                         "Ahmad Massoud")})})
            for row in outbox.plan(ARTICLE, matches, ROUTES, NOW, timedelta(days=2), policy,
                                   story(alerted))]
    assert [{"key": r.key, "message_id": r.message_id, "priority": r.priority,
             "body": webhook.render(r.payload).decode("utf-8")} for r in rows] == before
    for row in rows:
        valid_payload(row.payload)


def test_one_alert_lists_every_watchlist_with_snippets_per_sentence() -> None:
    matcher = Matcher(WATCHLISTS)
    [row] = outbox.plan(ARTICLE, matcher.match(ARTICLE), ROUTES, NOW, timedelta(days=2),
                        outbox.Policy(urgent=URGENT), story({}),
                        matcher.match(ARTICLE, every=True))
    payload = valid_payload(row.payload)
    data = payload["data"]
    assert payload["version"] == 2 and row.priority and data["priority"] == "high"
    assert data["article"]["lede"] == ("Ahmad Massoud said on Sunday that intra-Afghan "
                                       "dialogue must begin. Hanif Atmar agreed. "
                                       "احمد مسعود گفت.")
    assert data["story"]["sources"] == ["Khaama Press", "Tolo News"]
    items = {(w["name"], i["watch"]): i for w in data["watchlists"] for i in w["items"]}
    assert list(items) == [("afghan-opposition", "Ahmad Massoud"),
                           ("afghan-opposition", "Hanif Atmar"),
                           ("opposition-blocs", "intra-Afghan dialogue"),
                           ("opposition-blocs", "National Resistance Front")]
    massoud = items["afghan-opposition", "Ahmad Massoud"]
    assert massoud["priority"] == "normal" and massoud["new"] is False
    shown = [(s["field"], s["text"][a:b]) for s in massoud["snippets"] for a, b in s["marks"]]
    assert shown == [("title", "Ahmad Massoud"), ("text", "Ahmad Massoud"),
                     ("text", "احمد مسعود")]
    assert [s["text"] for s in massoud["snippets"]] == [
        "Ahmad Massoud calls for intra-Afghan dialogue",
        "Ahmad Massoud said on Sunday that intra-Afghan dialogue must begin.",
        "احمد مسعود گفت."]
    assert items["afghan-opposition", "Hanif Atmar"]["priority"] == "high"
    assert len(massoud["mentions"]) == 2, "mentions stay the first per field, as in v1"


@pytest.mark.parametrize(("text", "expected"), [
    ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
    ("احمد مسعود گفت؟ او رفت۔ بعد! پایان.", ["احمد مسعود گفت؟", "او رفت۔", "بعد!", "پایان."]),
    ("Mr. Atmar met U.S. envoys. Then «he left.» Next", [
        "Mr. Atmar met U.S. envoys.", "Then «he left.»", "Next"]),
    ("A line\nanother line", ["A line", "another line"]),
    ("3.5 million people… They waited.", ["3.5 million people…", "They waited."]),
])
def test_sentences_end_in_every_script(text: str, expected: list[str]) -> None:
    assert sentences.split(text) == expected


def test_a_long_sentence_is_cut_around_its_marks_and_the_lede_is_bounded() -> None:
    text = " ".join(["word"] * 200) + " Ahmad Massoud " + " ".join(["word"] * 200) + "."
    at = text.index("Ahmad")
    [snippet] = sentences.snippets(text, [(at, at + 13)])
    assert len(snippet.text) <= sentences.SNIPPET_MAX + 2
    assert snippet.text.startswith("…") and snippet.text.endswith("…")
    [(a, b)] = snippet.marks
    assert snippet.text[a:b] == "Ahmad Massoud"
    lede = sentences.lede(text)
    assert lede is not None and len(lede) <= sentences.LEDE_MAX and lede.endswith("…")
    assert sentences.lede("", "  A summary.  ") == "A summary."
    assert sentences.lede("", "") is None


# --- templates


V1_TEMPLATE = """{{ kind }} {{ channel }} {{ timestamp }} {{ count }}
{%- for group in groups %}
== {{ group.watchlist }}
{%- for alert in group.alerts %}
{{ alert.watchlist }}: {{ alert.article.title }} {{ alert.article.url }} {{ alert.article.source }}
{{- alert.article.published_at }} {{ alert.article.summary }}
{%- if alert.story is defined %} story {{ alert.story.id }} {{ alert.story.outlets }}
{{- alert.story.follow_up }} {{ alert.story.new_watches | join(",") }}{% endif %}
{%- if kind == "digest" %} queued {{ alert.queued_at }}{% endif %}
{%- for m in alert.matches %}
- {{ m.watch }} {{ m.alias }} {{ m.matched }} {{ m.field }} {{ m.start }} {{ m.end }}
{{- " " }}{{ m.snippet | highlight(m.matched) }} {{ m.highlight }} {{ m.context | join(",") }}
{%- endfor %}
{%- endfor %}
{%- endfor %}
{%- for a in alerts %}{{ a.watchlist }} {% endfor %}
"""


def test_a_v1_era_template_renders_version_2_alerts_and_digests(tmp_path: Path) -> None:
    """Every variable a template had before still works on a version-2 alert and digest,
    and ``stories`` and ``timezone`` are there too, for either version."""
    (tmp_path / "old.txt").write_text(V1_TEMPLATE)
    renderer = Renderer(tmp_path, {"text": "old.txt"})
    matches = Matcher(WATCHLISTS).match(ARTICLE)
    [row] = outbox.plan(ARTICLE, matches, ROUTES, NOW, timedelta(days=2), outbox.Policy(),
                        story({}))
    alert = renderer.render(context(row.payload, "mail", "Asia/Kabul")).text
    assert alert.startswith("alert mail 2026-11-28T10:00:00Z 2")
    assert "== afghan-opposition\nafghan-opposition: Ahmad Massoud calls" in alert
    assert "== opposition-blocs\nopposition-blocs: Ahmad Massoud calls" in alert
    assert "story 412 2False" in alert
    assert "- Hanif Atmar Hanif Atmar Hanif Atmar text" in alert
    assert "- National Resistance Front" in alert and "*National Resistance Front*" in alert

    made = digest.digest_payload("mail", [row.payload, row.payload], NOW)
    valid_payload(made)
    digested = renderer.render(context(made, "mail")).text
    assert digested.startswith("digest mail 2026-11-28T10:00:00Z 4")
    assert digested.count("queued 2026-11-28T10:00:00Z") == 4

    seen = context(row.payload, "mail", "Asia/Kabul")
    assert seen["stories"] == [row.payload["data"]] and seen["timezone"] == "Asia/Kabul"
    assert len(context(made, "mail")["stories"]) == 2
    v1 = outbox.event_data(ARTICLE, [m for m in matches if m.watchlist == "opposition-blocs"],
                           NOW, story({}))
    [converted] = context(v1, "mail")["stories"]
    assert [w["name"] for w in converted["watchlists"]] == ["opposition-blocs"]
    assert converted["article"]["lede"] == ("The leader of the National Resistance Front "
                                           "spoke in Dushanbe.")


def test_a_digest_holding_alerts_queued_before_the_upgrade_is_version_2() -> None:
    """Alerts held at the upgrade (version 1) and after it (version 2) go out in one
    version-2 digest, the old ones converted; only version-1 members keep version 1."""
    matcher = Matcher(WATCHLISTS)
    matches = matcher.match(ARTICLE)
    old = outbox.event_data(ARTICLE, [m for m in matches if m.watchlist == "opposition-blocs"],
                            NOW, story({}))
    [new] = outbox.plan(ARTICLE, matches, ROUTES, NOW, timedelta(days=2), outbox.Policy(),
                        story({}))
    mixed = valid_payload(digest.digest_payload("hook", [old, new.payload], NOW))
    assert mixed["version"] == 2 and mixed["data"]["count"] == 2
    converted, current = mixed["data"]["alerts"]
    assert [w["name"] for w in converted["watchlists"]] == ["opposition-blocs"]
    assert [i["watch"] for i in converted["watchlists"][0]["items"]] == [
        "intra-Afghan dialogue", "National Resistance Front"]
    assert {k: v for k, v in current.items() if k != "queued_at"} == new.payload["data"]
    assert valid_payload(digest.digest_payload("hook", [old], NOW))["version"] == 1


def test_check_renders_version_2_samples(tmp_path: Path) -> None:
    """A template written for version 2 passes ``check``; a mistake in its version-2 part
    is reported at its line."""
    project = Project(tmp_path)
    project.settings["channels"] = {"mail": {
        "type": "email", "to": "desk@example.org", "from": "nw@example.org",
        "smtp": {"host": "127.0.0.1", "port": 9, "security": "none"},
        "templates": {"text": "body.txt", "subject": "subject.txt"}}}
    project.watchlists = [{**project.watchlists[0], "channels": ["mail"]}]
    project.write()
    (project.config_dir / "body.txt").write_text(
        "{% for s in stories %}{{ s.article.lede }} {{ timezone }}\n"
        "{% for w in s.watchlists %}{% for i in w['items'] %}{{ i.watch }} {{ i.new }}"
        "{% for sn in i.snippets %}{{ sn.text[sn.marks[0][0]:sn.marks[0][1]] }}"
        "{% endfor %}{% endfor %}{% endfor %}{% endfor %}\n")
    (project.config_dir / "subject.txt").write_text(
        "{{ stories[0].article.title }}\n{{ stories[0].watchlists[0].nope }}\n")
    result = newswatch("--config", str(project.config_dir), "check")
    assert result.returncode == 1
    assert f"{project.config_dir / 'subject.txt'}:2:1: template error: " in result.stderr
    assert "body.txt" not in result.stderr


def test_test_alert_samples_follow_the_channel_grouping() -> None:
    assert valid_payload(sample_payload("w", "Ahmad Massoud", NOW))["version"] == 2
    v1 = valid_payload(sample_payload("w", "Ahmad Massoud", NOW, "watchlist"))
    assert v1["version"] == 1 and "story" not in v1["data"]


# --- end to end: the shipped watchlists, a webhook and an email channel

ENGLISH = (
    "Three Afghan opposition blocs issued a joint declaration. The National Resistance "
    "Council for the Salvation of Afghanistan, the National Assembly for Salvation and the "
    "National Movement for Peace and Justice called for intra-Afghan dialogue. Ahmad "
    "Massoud, Atta Mohammad Noor, Yunus Qanuni, Hanif Atmar, Mohammad Mohaqiq and Abdul "
    "Rashid Dostum signed it. They asked for guarantees of the UN Security Council, for "
    "girls' education, women's right to work and humanitarian assistance for Afghans.")
DARI = (
    "سه جریان مخالف طالبان اعلامیه مشترک صادر کردند. شورای عالی مقاومت ملی خواستار "
    "گفت‌وگوی بین‌الافغانی شد. احمد مسعود، عطا محمد نور، یونس قانونی، حنیف اتمر، محمد محقق و "
    "عبدالرشید دوستم آن را امضا کردند. آنان آموزش دختران، کار زنان و کمک‌های بشردوستانه را "
    "برای مردم افغانستان خواستند؟ جبهه مقاومت ملی از شورای امنیت سازمان ملل ضمانت خواست.")


def test_a_feed_text_that_is_its_summary_gives_each_sentence_once() -> None:
    """A feed item without content has its summary as its text: the Dari declaration's
    every item has one snippet, its mention marked as written (joiners kept)."""
    article = extract(Article(source="X", url="https://x.org/fa", link="https://x.org/fa",
                              title="اعلامیه", published_at=NOW, summary_html=DARI), NOW)
    watchlists = [WatchlistConfig.model_validate(w) for w in shipped_watchlists()]
    matcher = Matcher(watchlists)
    [row] = outbox.plan(article, matcher.match(article), {w.name: ["h"] for w in watchlists},
                        NOW, timedelta(days=2), every=matcher.match(article, every=True))
    snippets = {i["watch"]: [s["text"][a:b] for s in i["snippets"] for a, b in s["marks"]]
                for w in row.payload["data"]["watchlists"] for i in w["items"]}
    assert snippets["intra-Afghan dialogue"] == ["گفت\u200cوگوی بین\u200cالافغانی"]
    assert snippets["Abdul Rashid Dostum"] == ["عبدالرشید دوستم"]
    assert all(len(found) == 1 for found in snippets.values()), snippets


def shipped_watchlists() -> list[dict[str, Any]]:
    loaded: dict[str, Any] = YAML(typ="safe").load(ROOT / "config" / "watchlists.yaml")
    return list(loaded["watchlists"])


def test_the_shipped_watchlists_give_one_webhook_and_one_email_per_page(
        project: Project, site: Site, receiver: Receiver, smtp: SmtpServer) -> None:
    """Each page names leaders, blocs and themes of all three shipped watchlists: one
    version-2 webhook grouping them, one email naming every item; a ``group: watchlist``
    channel beside them still gets one version-1 webhook per watchlist."""
    now = datetime.now(UTC)
    site.pages["/rss.xml"] = Page(rss([
        Item("Opposition blocs issue a joint declaration", site.url("/en"), ENGLISH, "en", now),
        Item("اعلامیه مشترک سه جریان مخالف", site.url("/fa"), DARI, "fa", now)]))
    project.sources = [{"name": "Local", "feed": site.url("/rss.xml"), "full_text": False}]
    project.watchlists = shipped_watchlists()
    assert {tuple(w["channels"]) for w in project.watchlists} == {("team-webhook",
                                                                   "team-email")}
    project.hook(receiver.url("/story"))
    channels = project.settings["channels"]
    channels["team-webhook"] = channels.pop("hook")
    channels["team-email"] = {"type": "email", "to": "desk@example.org",
                              "from": "newswatch@example.org",
                              "smtp": {"host": "127.0.0.1", "port": smtp.port,
                                       "security": "none"}}
    channels["per-list"] = {**channels["team-webhook"], "url": receiver.url("/per-list"),
                            "group": "watchlist"}
    for watchlist in project.watchlists:
        watchlist["channels"] = [*watchlist["channels"], "per-list"]

    report = project.once(FakeClock(now)).delivery
    assert not report.dead, report
    hooks = [(h.path, valid_payload(json.loads(h.body))) for h in receiver.delivered()]
    story_hooks = [p for path, p in hooks if path == "/story"]
    assert len(story_hooks) == 2, "one webhook per page"
    names = ["afghan-opposition", "opposition-blocs", "joint-declaration-themes"]
    for payload in story_hooks:
        assert payload["version"] == 2
        assert [w["name"] for w in payload["data"]["watchlists"]] == names
    assert sorted(p["data"]["watchlist"] for path, p in hooks if path == "/per-list") == \
        sorted(names * 2), "group: watchlist: one version-1 webhook per watchlist and page"

    texts = [m.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
             for m in smtp.mailbox.received()]
    assert len(texts) == 2, "one email per page"
    for payload in story_hooks:
        [text] = [t for t in texts if payload["data"]["article"]["url"] in t]
        for item in {m["watch"] for m in mentions(payload)}:
            assert item in text, item
    english = next(p for p in story_hooks if p["data"]["article"]["url"].endswith("/en"))
    watched = {m["watch"] for m in mentions(english)}
    assert {"Ahmad Massoud", "Abdul Rashid Dostum", "National Assembly for Salvation",
            "intra-Afghan dialogue", "humanitarian aid"} <= watched

    project.once(FakeClock(now + timedelta(minutes=5)))
    assert len(receiver.delivered()) == len(hooks) and len(smtp.mailbox.received()) == 2


# --- migration: a story alerted per watchlist before the upgrade

V6 = ROOT / "tests" / "fixtures" / "store" / "v6.db"
WIRE = ("Ahmad Massoud met elders in Panjshir on Tuesday to discuss the winter aid convoy "
        "and the reopening of the Salang pass, officials said in a statement.")


def test_a_story_alerted_per_watchlist_before_the_upgrade_keeps_its_follow_ups(
        project: Project, site: Site, receiver: Receiver) -> None:
    """The release-0.1 database (schema 6) holds a story alerted on ``hook`` for
    afghan-opposition: Ahmad Massoud; an alert for a second watchlist is added as that
    release queued them (one row per watchlist). After the upgrade, a copy naming only
    those sends nothing; a copy naming a new item sends one version-2 follow-up."""
    database = project.root / "data" / "test.db"
    database.parent.mkdir(parents=True)
    shutil.copyfile(V6, database)
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO matches (article_id, watchlist, watch, alias, matched, "
                   "field, start, \"end\", snippet, config_version, created_at) VALUES "
                   "(1, 'regions', 'Panjshir', 'Panjshir', 'Panjshir', 'text', 26, 34, "
                   "'…', 'v0', '2026-11-28T10:00:00.000000Z')")
        payload, = db.execute("SELECT payload FROM outbox WHERE id = 1").fetchone()
        db.execute("INSERT INTO outbox (key, message_id, watchlist, channel, subject, "
                   "article_id, payload, status, attempts, next_attempt_at, created_at, "
                   "delivered_at, kind) VALUES (?, 'msg_regions', 'regions', 'hook', "
                   "'story:https://kabul.example/news/0', 1, ?, 'delivered', 1, "
                   "'2026-11-28T10:00:00.000000Z', '2026-11-28T10:00:00.000000Z', "
                   "'2026-11-28T10:00:01.000000Z', 'alert')",
                   ["regions\x1fstory:https://kabul.example/news/0\x1fhook",
                    payload.replace("afghan-opposition", "regions")])
    db.close()
    project.hook(receiver.url("/hook"))
    project.watchlists = [
        {"name": "afghan-opposition", "channels": ["hook"],
         "watch": [{"name": "Ahmad Massoud"}, {"name": "Atta Mohammad Noor"}]},
        {"name": "regions", "channels": ["hook"], "watch": [{"name": "Panjshir"}]}]
    project.sources = [{"name": "Wire", "feed": site.url("/rss.xml"), "full_text": False}]
    clock = FakeClock(datetime(2026, 11, 28, 12, tzinfo=UTC))
    copies = [Item("Story 0", site.url("/copy"), WIRE, "c1", clock.now())]
    site.pages["/rss.xml"] = Page(rss(copies))
    project.once(clock)
    assert receiver.delivered() == [], "nothing new for the items already named"
    assert schema.value(database, "SELECT max(version) FROM migrations") == len(STEPS)

    clock.advance(600)
    copies.append(Item("Story 0", site.url("/copy-2"), WIRE + " Atta Mohammad Noor joined.",
                       "c2", clock.now()))
    site.pages["/rss.xml"] = Page(rss(copies))
    project.once(clock)
    [hit] = receiver.delivered()
    data = valid_payload(json.loads(hit.body))["data"]
    assert data["story"]["follow_up"] is True
    assert data["story"]["new_watches"] == ["Atta Mohammad Noor"]
    assert data["story"]["sources"][0] == "Kabul Daily"
    assert [(w["name"], [(i["watch"], i["new"]) for i in w["items"]])
            for w in data["watchlists"]] == [
        ("afghan-opposition", [("Atta Mohammad Noor", True), ("Ahmad Massoud", False)]),
        ("regions", [("Panjshir", False)])]

    clock.advance(600)
    copies.append(Item("Story 0", site.url("/copy-3"), WIRE + " Atta Mohammad Noor left.",
                       "c3", clock.now()))
    site.pages["/rss.xml"] = Page(rss(copies))
    project.once(clock)
    assert len(receiver.delivered()) == 1, "the follow-up's item counts as named"
