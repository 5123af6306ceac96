"""What the shipped email templates show of an alert or digest: the reader's view. Pure.

The templates stay layout; the decisions live here, once for the text and the HTML part:
the published time in the configured zone with a relative age (measured from the send
time, so a held digest says how old the news is when it arrives), the other outlets
carrying the story, the lede, one line per watch item with one snippet per sentence
(every mention in it marked), the follow-up's reason, and the CLI commands that mute the
story or mark a match not relevant, or, with the desk's address (``desk``: ``http.public_url``
when the desk is on), links to the story's desk page, where those are buttons. No internal
number (a story's id) reaches the reader but in such a link.
Everything here is remote text as plain strings: the templates escape it.
"""

from __future__ import annotations

import shlex
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from crawler.core.clock import parse_iso
from crawler.process.sentences import Marks, normalise_marks

SNIPPETS_PER_ITEM = 3
LEDE_MAX = 400
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")

@dataclass(frozen=True, slots=True)
class Snippet:
    """One sentence with every mention of the item in it, as (start, end) offsets."""

    field: str
    text: str
    marks: Marks


@dataclass(frozen=True, slots=True)
class Item:
    watch: str
    new: bool
    high: bool
    snippets: tuple[Snippet, ...]  # the sentences not already shown for another item
    more: int  # sentences with a mention that are not shown
    alongside: tuple[str, ...]  # the items whose sentences also name this one
    in_headline: bool  # named in the headline, which is shown already
    not_relevant: str  # the command that marks this match not relevant (with its
    # watchlist, which the command needs when several lists have an item of that name)
    not_relevant_link: str | None = None  # the story's desk page, at this item's match


@dataclass(frozen=True, slots=True)
class Watchlist:
    name: str
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Story:
    url: str
    title: str
    outlet: str
    also: tuple[str, ...]  # the other outlets carrying the story, first first
    more_outlets: int  # outlets beyond those named
    published: str | None  # "28 Nov 2026, 14:11 Asia/Kabul (UTC+04:30)"
    published_iso: str | None
    age: str | None  # "2 h ago"
    lede: str | None
    new_watches: tuple[str, ...]  # a follow-up's reason; empty for a first alert
    high: bool
    watchlists: tuple[Watchlist, ...]
    mute: str | None  # the command that mutes the story (None: not part of a story)
    page: str | None = None  # the story's desk page (None: no desk links)

    @property
    def items(self) -> tuple[Item, ...]:
        """Every watch item named, watchlist after watchlist."""
        return tuple(i for w in self.watchlists for i in w.items)

    @property
    def mute_link(self) -> str | None:
        """The desk page at its Mute story button (a GET never changes anything)."""
        return f"{self.page}#mute" if self.page else None

    @property
    def follow_up(self) -> bool:
        return bool(self.new_watches)


@dataclass(frozen=True, slots=True)
class View:
    stories: tuple[Story, ...]
    watchlists: tuple[str, ...]  # every watchlist named, in order of first appearance
    high: bool


def view(stories: Iterable[Mapping[str, Any]], timezone: str = "UTC",
         now: datetime | str | None = None, desk: str = "") -> View:
    """The reader's view of ``stories`` (version-2 ``data`` objects, as the template
    context's ``stories``), with times in ``timezone`` and ages counted from ``now``;
    ``desk``: the desk's address, for links to each story's page."""
    when = parse_iso(now) if isinstance(now, str) else now
    shown = tuple(_story(s, ZoneInfo(timezone), when, desk) for s in stories)
    names = dict.fromkeys(w.name for s in shown for w in s.watchlists)
    return View(shown, tuple(names), any(s.high for s in shown))


def _story(data: Mapping[str, Any], zone: ZoneInfo, now: datetime | None,
           desk: str = "") -> Story:
    article = data["article"]
    story = data.get("story") or {}
    page = desk_page(desk, story.get("id"))
    url, outlet = str(article.get("url") or ""), str(article.get("source") or "")
    sources = [str(s) for s in story.get("sources") or [outlet]]
    also = tuple(s for s in dict.fromkeys(sources) if s != outlet)
    more = max(0, int(story.get("outlets") or 0) - 1 - len(also))
    published = parse_iso(article["published_at"]) if article.get("published_at") else None
    new_watches = tuple(story.get("new_watches") or ())
    watchlists = tuple(_watchlist(w, url, new_watches, page)
                       for w in data.get("watchlists", []))
    return Story(
        url=url, title=_one_line(article.get("title")) or url, outlet=outlet, also=also,
        more_outlets=more,
        published=local_time(published, zone) if published else None,
        published_iso=published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if published else None,
        age=age(published, now) if published and now else None,
        lede=_lede(article.get("lede") or article.get("summary"), article.get("title")),
        new_watches=new_watches,
        high=data.get("priority") == "high"
        or any(i.high for w in watchlists for i in w.items),
        watchlists=watchlists,
        mute=command("mute", "story", url) if story and url else None,
        page=page)


def desk_page(desk: str, story_id: object) -> str | None:
    """The story's page on the desk at ``desk`` (None without a desk or a story id)."""
    if not desk or not isinstance(story_id, int) or isinstance(story_id, bool):
        return None
    return f"{desk.rstrip('/')}/stories/{story_id}"


def _watchlist(raw: Mapping[str, Any], url: str, new_watches: Sequence[str],
               page: str | None = None) -> Watchlist:
    """The watchlist's items, each sentence shown once: under the first item it names,
    with the mentions of every item marked; a later item it names says whose sentence
    names it too, rather than repeating it. Nor is the headline, for an item named
    elsewhere too: it says "in the headline"."""
    items = [(i, merge_snippets(i.get("snippets") or [], i.get("mentions") or []))
             for i in raw["items"]]
    headline = {i["watch"] for i, snippets in items
                if any(s.field == "title" for s in snippets)
                and any(s.field != "title" for s in snippets)}
    items = [(i, tuple(s for s in snippets if s.field != "title" or i["watch"] not in headline))
             for i, snippets in items]
    marks: dict[str, list[tuple[int, int]]] = {}
    for _, snippets in items:
        for s in snippets:
            marks.setdefault(s.text, []).extend(s.marks)
    shown_under: dict[str, str] = {}
    out = []
    for i, snippets in items:
        watch = str(i["watch"])
        fresh = [s for s in snippets if s.text not in shown_under]
        alongside = dict.fromkeys(shown_under[s.text] for s in snippets
                                  if s.text in shown_under)
        for s in fresh[:SNIPPETS_PER_ITEM]:
            shown_under[s.text] = watch
        out.append(Item(
            watch, bool(i.get("new", watch in new_watches)), i.get("priority") == "high",
            tuple(Snippet(s.field, s.text, normalise_marks(marks[s.text],
                                                           len(s.text)))
                  for s in fresh[:SNIPPETS_PER_ITEM]),
            max(0, len(fresh) - SNIPPETS_PER_ITEM), tuple(alongside), watch in headline,
            command("not-relevant", url, watch, "--watchlist", str(raw["name"])),
            f"{page}?{urlencode({'watch': watch})}#copies" if page else None))
    return Watchlist(str(raw["name"]), tuple(out))


def merge_snippets(snippets: Iterable[Mapping[str, Any]],
                   mentions: Iterable[Mapping[str, Any]] = ()) -> tuple[Snippet, ...]:
    """One snippet per distinct sentence (in whichever field), with the marks of every
    copy of it merged.

    Version-2 items carry ``snippets``; an item without them (a version-1 alert) falls back
    to its mentions, whose snippets often repeat one sentence once per mention.
    """
    found: dict[str, tuple[str, list[tuple[int, int]]]] = {}  # text → (field, marks)
    for s in snippets:
        text = str(s.get("text") or "")
        found.setdefault(text, (str(s.get("field") or "text"), []))[1].extend(
            (int(a), int(b)) for a, b in s.get("marks") or [])
    if not found:
        for m in mentions:
            text = str(m.get("snippet") or "")
            span = find(text, str(m.get("matched") or ""))
            found.setdefault(text, (str(m.get("field") or "text"), []))[1].extend(
                [span] if span else [])
    return tuple(Snippet(field, text, normalise_marks(marks, len(text)))
                 for text, (field, marks) in found.items() if text.strip())


def find(snippet: str, matched: str) -> tuple[int, int] | None:
    """Where ``matched`` stands in ``snippet``: as written, else ignoring case."""
    if not matched:
        return None
    at = snippet.find(matched)
    if at < 0:
        at = snippet.casefold().find(matched.casefold())
        if at < 0 or len(snippet.casefold()) != len(snippet):
            return None
    return at, at + len(matched)


def command(*words: str) -> str:
    """A ``newswatch`` command line, each word shell-quoted (URLs carry ``&`` and ``?``)."""
    return " ".join(["newswatch", *(shlex.quote(w) for w in words)])


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """``28 Nov 2026, 14:11 Asia/Kabul (UTC+04:30)``: the zone's name and its offset
    then, since abbreviations are missing for many zones (Kabul's is "+0430")."""
    local = moment.astimezone(zone)
    when = f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"
    if zone.key in ("UTC", "Etc/UTC"):
        return f"{when} UTC"
    offset = local.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset else 0
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{when} {zone.key} (UTC{sign}{hours:02d}:{rest:02d})"


def age(moment: datetime, now: datetime) -> str:
    """How long before ``now``: "just now", "25 min ago", "2 h ago", "3 days ago"."""
    minutes = int((now - moment).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // (24 * 60)} days ago"


def _one_line(text: object) -> str:
    return " ".join(str(text or "").split())


def _lede(text: object, title: object) -> str | None:
    """The lede on one line, cut at a word near ``LEDE_MAX``; None if it only repeats the
    headline."""
    lede = _one_line(text)
    if not lede or lede == _one_line(title):
        return None
    if len(lede) > LEDE_MAX:
        lede = lede[:LEDE_MAX].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
    return lede


def direction(text: str) -> str:
    """``rtl`` or ``ltr``: the text's first strong character decides, as ``dir="auto"``
    does (``ltr`` when it has none)."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


def has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text)
