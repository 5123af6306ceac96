"""The shipped email templates on version-2 alerts and digests (tests/alerts_v2.py), on
version-1 alerts as the pipeline queues them, and their right-to-left marking in text."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alerts import digest, outbox
from alerts.readable import age, local_time
from alerts.templates import FSI, PDI, RLI, RLM, Rendered, Renderer, context
from crawler.config import WatchItem, WatchlistConfig
from crawler.core.article import Article
from crawler.process.extract import extract
from crawler.process.match import Matcher
from crawler.store.records import StoryContext
from tests import alerts_v2, schema
from tests.alerts_v2 import FA_TITLE, FA_URL, dari, english
from tests.test_email import _Elements

SENT = datetime(2026, 11, 28, 10, 5, tzinfo=UTC)
BIDI = re.compile("[\u200e\u200f\u2066-\u2069]")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
STORY_ID = re.compile(r"(?<!\d)412(?!\d)")  # tests/alerts_v2.py's story id


def render(payload: dict[str, Any], timezone: str = "Asia/Kabul") -> Rendered:
    return Renderer().render(context(payload, "desk", timezone), SENT)


class _Text(HTMLParser):
    """The text a reader sees, and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if k == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def seen(html: str) -> _Text:
    parsed = _Text()
    parsed.feed(html)
    return parsed


def test_an_english_alert_reads_as_news_in_the_configured_zone() -> None:
    out = render(english())
    lines = out.text.splitlines()
    assert lines[2:6] == [
        alerts_v2.EN_TITLE, alerts_v2.EN_URL,
        "Amu TV, also carried by Khaama Press and \u2068طلوع‌نیوز\u2069",
        "Published 28 Nov 2026, 12:42 Asia/Kabul (UTC+04:30), 1 h ago"]
    assert alerts_v2.EN_LEDE in lines
    assert lines[0] == "High priority."
    # grouped by watchlist, one line per item, each sentence once with every name marked
    people = lines[lines.index("afghan-opposition:"):lines.index("Mute this story:")]
    assert [line for line in people if line.startswith("- ")] == [
        "- Ahmad Massoud (high priority)",
        "- Atta Mohammad Noor (named alongside Ahmad Massoud)",
        "- Yunus Qanuni (named alongside Ahmad Massoud)",
        "- Hanif Atmar",
        "- Mohammad Mohaqiq (named alongside Hanif Atmar)",
        "- Abdul Rashid Dostum (named alongside Hanif Atmar)"]
    assert "  *Ahmad Massoud*, who leads the National Resistance Front, said the declaration " \
           "was signed with *Atta Mohammad Noor* and *Yunus Qanuni* in Dushanbe." in people
    assert "  *Ahmad Massoud* called the meeting a first step, and *Ahmad Massoud*'s deputy " \
           "read the text aloud." in people
    assert out.text.count("joined by video link") == 1
    for body in (out.text, " ".join(seen(out.html).text)):
        assert not STORY_ID.search(body), "no internal story number"
        assert not ISO.search(body), "no raw ISO time"
    # the headline names an item of opposition-blocs, so that list leads
    assert out.subject == f"[high priority] [opposition-blocs +2] {alerts_v2.EN_TITLE}"


def test_the_commands_to_mute_and_to_mark_not_relevant_are_shell_quoted() -> None:
    payload = english()
    url = "https://example.org/a?x=1&y=2;z=$(id)"
    payload["data"]["article"]["url"] = url
    out = render(payload)
    commands = [shlex.split(line) for line in out.text.splitlines()
                if line.startswith("  newswatch ")]
    assert commands[0] == ["newswatch", "mute", "story", url]
    assert ["newswatch", "not-relevant", url,
            "women's and youth participation in decision-making",
            "--watchlist", "joint-declaration-themes"] in commands
    assert len(commands) == 1 + 11, "one per watch item"
    parsed = seen(out.html)
    assert parsed.links == [url]
    assert f"newswatch not-relevant {shlex.quote(url)} 'Yunus Qanuni'" in "".join(parsed.text)


def test_a_follow_up_gives_its_reason_first() -> None:
    out = render(english(new_watches=["Hanif Atmar"]))
    lines = out.text.splitlines()
    assert lines[0] == "Follow-up: now also names Hanif Atmar."
    people = [line for line in lines if line.startswith("- ")]
    assert people[0] == "- Hanif Atmar (new)"
    assert out.subject.startswith("[high priority] [afghan-opposition +2] Follow-up: "), \
        "the list with the new item leads"
    text = "".join(seen(out.html.split("<body", 1)[1]).text)
    assert text.index("Follow-up: now also names Hanif Atmar.") < text.index("Three opposition")


def test_dari_in_the_text_part_is_marked_right_to_left_and_english_stays_clean() -> None:
    payload = dari()
    lede = payload["data"]["article"]["lede"]
    assert lede.startswith(alerts_v2.FA_LEDE)
    out = render(payload)
    lines = out.text.splitlines()
    # a Dari block: RLM, then an RTL isolate, so it reads right to left in any client
    assert f"{RLM}{RLI}{FA_TITLE}{PDI}" in lines
    assert lines[lines.index(f"{RLM}{RLI}{FA_TITLE}{PDI}") + 1] == FA_URL, "URL line bare"
    assert f"{RLM}{RLI}{lede}{PDI}" in lines
    snippet = next(line for line in lines if "UNSC" in line and "*UNSC*" in line)
    assert snippet.startswith(f"  {RLM}{RLI}") and snippet.endswith(f"{PDI}")
    # Dari names inside an English line are isolated, so the comma stays between them
    assert f"{FSI}طلوع‌نیوز{PDI}, also carried by Khaama Press and {FSI}آمو{PDI}" in lines
    assert "گفت‌وگوی بین‌الافغانی" in out.text, "the ZWNJ is kept"
    assert out.subject == (f"[high priority] [afghan-opposition +2] Follow-up: "
                           f"{FSI}{FA_TITLE}{PDI}")
    english_lines = [line for line in render(english()).text.splitlines()
                     if "طلوع" not in line]
    assert not any(BIDI.search(line) for line in english_lines)


def test_dari_in_the_html_part_is_marked_per_block() -> None:
    payload = dari()
    html = render(payload).html
    assert re.search(r'<h2 class="headline" dir="auto"[^>]*><a href="https://tolonews\.com/'
                     r'fa/afghanistan-190412">' + FA_TITLE, html)
    lede = payload["data"]["article"]["lede"]
    assert f'<p class="lede" dir="auto" style="margin: .6em 0">{lede}</p>' in html
    assert html.count('<div class="snippet" dir="auto"') == 7
    assert "<bdi><mark>UNSC</mark></bdi>" in html
    assert "names <bdi>Hanif Atmar</bdi>." in html
    assert "<bdi>طلوع‌نیوز</bdi>, also carried by <bdi>Khaama Press</bdi> and <bdi>آمو</bdi>" \
        in html


def test_hostile_text_in_a_version_2_alert_stays_text() -> None:
    payload = english()
    data = payload["data"]
    data["article"]["title"] = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    data["article"]["lede"] = '<a href="javascript:alert(3)">more</a>'
    data["article"]["url"] = "javascript:alert(4)"
    data["story"]["sources"] = ['<b onclick="x()">Echo</b>', "Amu TV"]
    item = data["watchlists"][0]["items"][0]
    item["watch"] = "<i>Massoud</i>"
    item["snippets"] = [alerts_v2.sentence("<em>Ahmad Massoud</em> spoke to @channel.",
                                           "Ahmad Massoud")]
    out = render(payload)
    lowered = out.html.lower()
    for needle in ("<script", "<img", "<em>", "<i>", "<b ", "onerror=", "javascript:"):
        assert needle not in lowered, needle
    parsed = _Elements()
    parsed.feed(out.html)
    assert not {"script", "img", "em", "i", "a"} & set(parsed.tags), "not even a link"
    assert not any(name.startswith("on") for name, _ in parsed.attributes)
    assert "<bdi><mark>Ahmad Massoud</mark></bdi>" in out.html
    assert "<script>alert(1)</script>" in out.text, "the text part quotes it as written"
    chat = Renderer(chat=True).render(context(payload, "desk"), SENT)
    assert "@\u200bchannel" in chat.text and "@channel" not in chat.text


def test_a_version_2_digest_counts_its_stories() -> None:
    out = render(digest.digest_payload("desk", [english(), dari()], SENT))
    assert out.subject == ("[newswatch] digest: 2 alerts for opposition-blocs, "
                           "joint-declaration-themes, afghan-opposition")
    assert out.text.startswith("2 alerts since the last digest.")
    assert out.text.count("==========") == 2
    assert seen(out.html).links == [alerts_v2.EN_URL, FA_URL]


def v1_alert(follow_up: bool) -> dict[str, Any]:
    """A version-1 alert as the pipeline queues it (and as rows queued before the
    upgrade stay): real extraction and matching, one watchlist."""
    now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    article = extract(Article(
        source="Khaama Press", url="https://www.khaama.com/declaration-1/",
        link="https://www.khaama.com/declaration-1/",
        title="Ahmad Massoud and Atta Mohammad Noor sign a joint declaration",
        published_at=now - timedelta(minutes=25),
        summary_html="<p>Ahmad Massoud met Atta Mohammad Noor. Ahmad Massoud spoke first. "
                     "Hanif Atmar joined later.</p>"), now)
    watchlist = WatchlistConfig(name="afghan-opposition", watch=[
        WatchItem(name=n) for n in ("Ahmad Massoud", "Atta Mohammad Noor", "Hanif Atmar")])
    matches = Matcher([watchlist]).match(article)
    story = StoryContext(7, "story:x", 2, 2, now - timedelta(hours=1),
                         {"afghan-opposition": {"Ahmad Massoud"}} if follow_up else {})
    return outbox.event_data(article, matches, now, story,
                             ["Atta Mohammad Noor", "Hanif Atmar"] if follow_up else [])


def test_a_version_1_alert_still_renders_sensibly() -> None:
    payload = v1_alert(follow_up=True)
    assert payload["version"] == 1
    out = render(payload, "UTC")
    lines = out.text.splitlines()
    assert out.subject == ("[afghan-opposition] Follow-up: Ahmad Massoud and Atta Mohammad "
                           "Noor sign a joint declaration")
    assert lines[0] == "Follow-up: now also names Atta Mohammad Noor and Hanif Atmar."
    assert "Khaama Press, also carried by 1 more outlet" in lines
    assert "Published 28 Nov 2026, 08:35 UTC, 1 h ago" in lines
    items = [line for line in lines if line.startswith("- ")]
    assert items[0] == "- Atta Mohammad Noor (new; in the headline)"
    assert items[1].startswith("- Hanif Atmar (new")
    assert len(items) == 3, "one line per watch item, not per mention"
    assert "Story 7" not in out.text and "7" not in " ".join(seen(out.html).text)
    assert "newswatch mute story https://www.khaama.com/declaration-1/" in out.text
    snippets = [line for line in lines if line.startswith("  ") and "*" in line]
    assert len(snippets) == len(set(snippets)), "no snippet twice"


def test_a_version_1_digest_and_a_sample_without_story_render() -> None:
    first = v1_alert(follow_up=False)
    out = render(digest.digest_payload("desk", [first, first], SENT))
    assert out.subject == "[newswatch] digest: 2 alerts for afghan-opposition"
    assert out.text.count("==========") == 2
    sample = {**first, "data": {k: v for k, v in first["data"].items() if k != "story"}}
    plain = render(sample).text
    assert "mute story" not in plain, "nothing to mute without a story"
    assert "newswatch not-relevant" in plain


def test_times_read_in_the_zone_with_an_age() -> None:
    at = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
    assert local_time(at, ZoneInfo("Europe/London")) == \
        "1 Jul 2026, 07:00 Europe/London (UTC+01:00)"
    assert local_time(at, ZoneInfo("America/New_York")) == \
        "1 Jul 2026, 02:00 America/New_York (UTC-04:00)"
    assert local_time(at, ZoneInfo("UTC")) == "1 Jul 2026, 06:00 UTC"
    assert [age(at, at + timedelta(minutes=m)) for m in (-5, 0, 25, 119, 60 * 50)] == \
        ["just now", "just now", "25 min ago", "1 h ago", "2 days ago"]


def test_an_alert_queued_by_the_previous_release_renders(tmp_path: Path) -> None:
    """The outbox row of a version-6 database, as it would be sent after the upgrade."""
    db = tmp_path / "v6.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "store" / "v6.db", db)
    (row,) = schema.rows(db, "SELECT payload FROM outbox LIMIT 1")
    payload = json.loads(row["payload"])
    assert payload["version"] == 1 and payload["data"]["story"]["id"] == 1
    out = render(payload, "Asia/Kabul")
    lines = out.text.splitlines()
    assert out.subject == "[afghan-opposition] Story 0"
    assert lines[:4] == ["Story 0", "https://kabul.example/news/0", "Kabul Daily",
                         "Published 28 Nov 2026, 14:30 Asia/Kabul (UTC+04:30), 5 min ago"]
    assert "- Ahmad Massoud" in lines
    assert "  *Ahmad Massoud* met elders in Panjshir on Tuesday to discuss t" in lines
    assert seen(out.html).links == ["https://kabul.example/news/0"]
