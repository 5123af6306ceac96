"""The joint declaration of the three opposition blocs as an English and a Dari alert,
made by the pipeline's own pure steps (extraction, the matcher with the shipped
watchlists, ``outbox.story_event`` for the version-2 payload) in the story an outlet's
copy lands in.

The email tests render these through the shipped templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerts import outbox
from crawler.config import WatchlistConfig, load_config
from crawler.core.article import Article
from crawler.process.extract import extract
from crawler.process.match import Matcher
from crawler.store.records import StoryContext

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # when the alert is queued
STORY_ID = 412

SHIPPED = Path(__file__).parent.parent / "config"


def shipped_watchlists() -> list[WatchlistConfig]:
    """The shipped watchlists, as they are, but for Ahmad Massoud set to ``priority:
    high`` as a desk following him would."""
    return [w.model_copy(update={"watch": [
        i.model_copy(update={"priority": "high"}) if i.name == "Ahmad Massoud" else i
        for i in w.watch]}) for w in load_config(SHIPPED).watchlists]


EN_URL = "https://www.amu.tv/en/2026/11/28/opposition-blocs-joint-declaration/?utm=x&ref=a"
EN_TITLE = "Three opposition blocs call for intra-Afghan dialogue in a joint declaration"
EN_LEDE = ("Leaders of the National Resistance Front, the High Council of National "
           "Resistance and the Afghanistan Freedom Front signed a joint declaration on "
           "Friday calling for an intra-Afghan dialogue guaranteed by the UN Security "
           "Council.")
EN_TEXT = [
    EN_LEDE,
    "Ahmad Massoud, who leads the National Resistance Front, said the declaration was "
    "signed with Atta Mohammad Noor and Yunus Qanuni in Dushanbe.",
    "Ahmad Massoud called the meeting a first step, and Ahmad Massoud's deputy read the "
    "text aloud.",
    "Hanif Atmar, Mohammad Mohaqiq and Abdul Rashid Dostum joined by video link.",
    "The blocs demand negotiations guaranteed by the UN Security Council.",
    "They call for the participation of women and youth in decision-making.",
]

FA_URL = "https://tolonews.com/fa/afghanistan-190412"
FA_TITLE = "سه جریان مخالف در اعلامیه‌ای مشترک خواستار گفت‌وگوی بین‌الافغانی شدند"
FA_LEDE = ("رهبران جبهه مقاومت ملی، شورای عالی مقاومت ملی و جبهه آزادی افغانستان روز جمعه "
           "در اعلامیه‌ای مشترک خواستار آغاز گفت‌وگوی بین‌الافغانی شدند.")
FA_TEXT = [
    FA_LEDE,
    "احمد مسعود، رهبر جبهه مقاومت ملی، گفت که این اعلامیه با عطا محمد نور و یونس قانونی "
    "در دوشنبه امضا شد.",
    "حنیف اتمر گفت مذاکرات باید با تضمین شورای امنیت سازمان ملل متحد (UNSC) برگزار شود.",
    "محمد محقق و عبدالرشید دوستم بر مشارکت زنان و جوانان در تصمیم‌گیری‌ها تأکید کردند.",
]


def alert(source: str, url: str, title: str, paragraphs: Sequence[str],
          published: datetime, sources: Sequence[str],
          new_watches: Sequence[str] = ()) -> dict[str, Any]:
    """The version-2 alert a channel routed every watchlist gets for this copy: a
    follow-up for ``new_watches`` when given, the first alert of the story otherwise."""
    article = extract(Article(source=source, url=url, link=url, title=title,
                              published_at=published,
                              content_html="".join(f"<p>{p}</p>" for p in paragraphs)),
                      NOW)
    watchlists = shipped_watchlists()
    matcher = Matcher(watchlists)
    matches = matcher.match(article)
    urgent = frozenset((w.name, i.name) for w in watchlists for i in w.watch
                       if i.priority == "high")
    new = sorted({(m.watchlist, m.watch) for m in matches if m.watch in new_watches})
    story = StoryContext(STORY_ID, f"story:{url}", len(sources), len(sources),
                         NOW - timedelta(minutes=30), sources=tuple(sources))
    return outbox.story_event(article, matches, NOW, story, new, urgent,
                              every=matcher.match(article, every=True))


def english(new_watches: Sequence[str] = ()) -> dict[str, Any]:
    """The declaration as an English outlet reports it: six leaders and two themes."""
    return alert("Amu TV", EN_URL, EN_TITLE, EN_TEXT, datetime(2026, 11, 28, 8, 12, tzinfo=UTC),
                 ["Khaama Press", "Amu TV", "طلوع‌نیوز"], new_watches)


def dari(new_watches: Sequence[str] = ("Hanif Atmar",)) -> dict[str, Any]:
    """The declaration as a Dari outlet reports it: a follow-up naming Hanif Atmar."""
    return alert("طلوع‌نیوز", FA_URL, FA_TITLE, FA_TEXT,
                 datetime(2026, 11, 28, 7, 41, tzinfo=UTC),
                 ["Khaama Press", "طلوع‌نیوز", "آمو"], new_watches)


def sentence(text: str, *mentions: str, field: str = "text") -> dict[str, Any]:
    """A version-2 snippet by hand, every occurrence of each mention marked (for payloads
    the pipeline would not make, such as hostile ones)."""
    marks = []
    for mention in mentions:
        at = text.find(mention)
        while at >= 0:
            marks.append([at, at + len(mention)])
            at = text.find(mention, at + 1)
    return {"field": field, "text": text, "marks": sorted(marks)}
