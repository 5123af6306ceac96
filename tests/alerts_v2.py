"""Version-2 alert payloads built by hand from docs (the shared payload spec), and the
joint declaration of the three opposition blocs as an English and a Dari alert.

The email tests render these through the shipped templates; the pipeline builds the same
shape from real articles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WHEN = "2026-11-28T10:00:00Z"  # the alert's timestamp


def sentence(text: str, *mentions: str, field: str = "text") -> dict[str, Any]:
    """A snippet: one sentence with every occurrence of each mention marked."""
    marks = []
    for mention in mentions:
        at = text.find(mention)
        assert at >= 0, f"{mention!r} is not in {text!r}"
        while at >= 0:
            marks.append([at, at + len(mention)])
            at = text.find(mention, at + 1)
    return {"field": field, "text": text, "marks": sorted(marks)}


def item(watch: str, *snippets: dict[str, Any], priority: str = "normal",
         new: bool = False) -> dict[str, Any]:
    """A watch item with its snippets, and the v1 match object of each first mention."""
    mentions = [{"watch": watch, "alias": watch, "matched": s["text"][a:b],
                 "field": s["field"], "start": a, "end": b, "snippet": s["text"],
                 "highlight": s["text"][:a] + "**" + s["text"][a:b] + "**" + s["text"][b:],
                 "context": []} for s in snippets for a, b in s["marks"][:1]]
    return {"watch": watch, "priority": priority, "new": new, "mentions": mentions,
            "snippets": list(snippets)}


def alert(article: dict[str, Any], watchlists: dict[str, Sequence[dict[str, Any]]],
          sources: Sequence[str] | None = None, new_watches: Sequence[str] = (),
          story: bool = True, timestamp: str = WHEN) -> dict[str, Any]:
    """An ``article.matched`` version-2 event; high priority if any item is."""
    items = [i for listed in watchlists.values() for i in listed]
    data: dict[str, Any] = {
        "article": {"summary": None, "lede": None, "published_at": None, **article},
        "priority": "high" if any(i["priority"] == "high" for i in items) else "normal",
    }
    if story:
        outlets = list(sources or [article["source"]])
        data["story"] = {"id": 412, "articles": len(outlets), "outlets": len(outlets),
                         "sources": outlets, "first_seen_at": "2026-11-28T09:45:00Z",
                         "follow_up": bool(new_watches), "new_watches": list(new_watches)}
    data["watchlists"] = [{"name": n, "items": list(i)} for n, i in watchlists.items()]
    return {"type": "article.matched", "version": 2, "timestamp": timestamp, "data": data}


def digest(channel: str, alerts: Sequence[dict[str, Any]],
           timestamp: str = WHEN) -> dict[str, Any]:
    return {"type": "digest", "version": 2, "timestamp": timestamp,
            "data": {"channel": channel, "count": len(alerts),
                     "alerts": [{**a["data"], "queued_at": a["timestamp"]} for a in alerts]}}


EN_URL = "https://www.amu.tv/en/2026/11/28/opposition-blocs-joint-declaration/?utm=x&ref=a"
EN_TITLE = "Three opposition blocs call for intra-Afghan dialogue in a joint declaration"
EN_LEDE = ("Leaders of the National Resistance Front, the High Council of National "
           "Resistance and the Afghanistan Freedom Front signed a joint declaration on "
           "Friday calling for an intra-Afghan dialogue guaranteed by the UN Security "
           "Council.")


def english(new_watches: Sequence[str] = ()) -> dict[str, Any]:
    """The declaration as an English outlet reports it: six leaders and two themes."""
    t1 = ("Ahmad Massoud, who leads the National Resistance Front, said the declaration "
          "was signed with Atta Mohammad Noor and Yunus Qanuni in Dushanbe.")
    t2 = ("Ahmad Massoud called the meeting a first step, and Ahmad Massoud's deputy read "
          "the text aloud.")
    t3 = "Hanif Atmar, Mohammad Mohaqiq and Abdul Rashid Dostum joined by video link."
    people = [item("Ahmad Massoud", sentence(t1, "Ahmad Massoud"),
                   sentence(t2, "Ahmad Massoud"), priority="high"),
              item("Atta Mohammad Noor", sentence(t1, "Atta Mohammad Noor")),
              item("Yunus Qanuni", sentence(t1, "Yunus Qanuni")),
              item("Hanif Atmar", sentence(t3, "Hanif Atmar"),
                   new="Hanif Atmar" in new_watches),
              item("Mohammad Mohaqiq", sentence(t3, "Mohammad Mohaqiq")),
              item("Abdul Rashid Dostum", sentence(t3, "Abdul Rashid Dostum"))]
    people.sort(key=lambda i: not i["new"])
    themes = [item("Security Council guarantees", sentence(
                  "The blocs demand negotiations guaranteed by the UN Security Council.",
                  "guaranteed by the UN Security Council")),
              item("Women and youth in decision-making", sentence(
                  "They call for the participation of women and youth in decision-making.",
                  "participation of women and youth in decision-making"))]
    return alert(
        {"url": EN_URL, "title": EN_TITLE, "source": "Amu TV",
         "published_at": "2026-11-28T08:12:00Z", "summary": EN_LEDE, "lede": EN_LEDE},
        {"afghan-opposition": people, "joint-declaration-themes": themes},
        sources=["Khaama Press", "Amu TV", "طلوع‌نیوز"], new_watches=new_watches)


FA_URL = "https://tolonews.com/fa/afghanistan-190412"
FA_TITLE = "سه جریان مخالف در اعلامیه‌ای مشترک خواستار گفت‌وگوی بین‌الافغانی شدند"
FA_LEDE = ("رهبران جبهه مقاومت ملی، شورای عالی مقاومت ملی و جبهه آزادی افغانستان روز جمعه "
           "در اعلامیه‌ای مشترک خواستار آغاز گفت‌وگوی بین‌الافغانی با تضمین شورای امنیت "
           "سازمان ملل متحد شدند.")


def dari(new_watches: Sequence[str] = ("Hanif Atmar",)) -> dict[str, Any]:
    """The declaration as a Dari outlet reports it (a follow-up naming Hanif Atmar)."""
    t1 = ("احمد مسعود، رهبر جبهه مقاومت ملی، گفت که این اعلامیه با عطا محمد نور و یونس "
          "قانونی در دوشنبه امضا شد.")
    t2 = ("حنیف اتمر گفت مذاکرات باید با تضمین شورای امنیت سازمان ملل متحد (UNSC) برگزار "
          "شود.")
    t3 = ("محمد محقق و عبدالرشید دوستم بر مشارکت زنان و جوانان در تصمیم‌گیری‌ها تأکید "
          "کردند.")
    people = [item("Hanif Atmar", sentence(t2, "حنیف اتمر"), new="Hanif Atmar" in new_watches),
              item("Ahmad Massoud", sentence(t1, "احمد مسعود"), priority="high"),
              item("Atta Mohammad Noor", sentence(t1, "عطا محمد نور")),
              item("Yunus Qanuni", sentence(t1, "یونس قانونی")),
              item("Mohammad Mohaqiq", sentence(t3, "محمد محقق")),
              item("Abdul Rashid Dostum", sentence(t3, "عبدالرشید دوستم"))]
    people.sort(key=lambda i: not i["new"])
    themes = [item("Security Council guarantees", sentence(t2, "تضمین شورای امنیت", "UNSC")),
              item("Women and youth in decision-making",
                   sentence(t3, "مشارکت زنان و جوانان در تصمیم‌گیری‌ها"))]
    return alert(
        {"url": FA_URL, "title": FA_TITLE, "source": "طلوع‌نیوز",
         "published_at": "2026-11-28T07:41:00Z", "summary": None, "lede": FA_LEDE},
        {"afghan-opposition": people, "joint-declaration-themes": themes},
        sources=["Khaama Press", "طلوع‌نیوز", "آمو"], new_watches=new_watches)
