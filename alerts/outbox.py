"""Outbox rows for an article's matches, and the events they carry. Pure: the store
writes them with the article.

A channel gets one alert per story (``group: story``, the default): it lists every
watchlist routed to the channel that matched, with its watch items (payload version 2).
A later copy of the story that names watch items no earlier alert on that channel named
gets one follow-up alert, whose subject adds those items. A ``group: watchlist`` channel
gets one alert per (watchlist, story) as before (payload version 1, unchanged).
Alerted-ness is per (story, channel): which (watchlist, watch) pairs the channel's alerts
for the story named (``StoryContext.alerted``). The message id (the ``webhook-id``) is
derived from the alert's key, so it is the same on every attempt, after restarts, and in
every process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts import digest
from crawler.config import FIELDS, Config
from crawler.core.article import Article
from crawler.core.clock import iso
from crawler.process import sentences
from crawler.process.match import Match
from crawler.store.records import OutboxRow, StoryContext, story_subject

__all__ = ["OutboxRow", "StoryContext", "plan", "story_subject"]


def alert_key(watchlist: str, subject: str, channel: str) -> str:
    return "\x1f".join((watchlist, subject, channel))


def message_id(key: str) -> str:
    return "msg_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def article_subject(article: Article) -> str:
    return f"article:{article.url}"


def is_alertable(article: Article, now: datetime, max_age: timedelta) -> bool:
    """Undated items count as new; older ones are stored and matched but not alerted."""
    return article.published_at is None or article.published_at >= now - max_age


@dataclass(frozen=True)
class Policy:
    """How alerts are queued per channel: digest schedules, which items are urgent, and
    which channels want one alert per watchlist (``group: watchlist``)."""

    digests: Mapping[str, str] = field(default_factory=dict)
    timezone: str = "UTC"
    urgent: frozenset[tuple[str, str]] = frozenset()
    per_watchlist: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Config) -> Policy:
        channels = config.settings.channels
        return cls({n: c.digest for n, c in channels.items() if c.digest},
                   config.settings.timezone,
                   frozenset((w.name, i.name) for w in config.watchlists for i in w.watch
                             if i.priority == "high"),
                   frozenset(n for n, c in channels.items() if c.group == "watchlist"))

    def hold_until(self, channel: str, now: datetime) -> datetime | None:
        spec = self.digests.get(channel)
        return digest.next_slot(spec, self.timezone, now) if spec else None


def plan(article: Article, matches: Sequence[Match], routes: Mapping[str, Sequence[str]],
         now: datetime, max_age: timedelta, policy: Policy | None = None,
         story: StoryContext | None = None,
         every: Sequence[Match] | None = None) -> list[OutboxRow]:
    """The outbox rows of one article: per enabled channel that a matched watchlist is
    routed to (``routes``: watchlist → channels), one row listing all of them, or with
    ``group: watchlist`` one row per watchlist.

    With a ``story``, a channel already alerted for the story gets a row only when the
    article names (watchlist, watch) pairs its alerts did not: one follow-up. (Without
    one, the subject is the article itself.) A row for a digest channel is held until the
    channel's next digest time, unless it is high priority: then it goes out at once.
    ``every`` is every counting mention (``Matcher.match(every=True)``), for snippets that
    mark them all; ``matches`` (the first per item and field) stand in without it.
    """
    if not matches or not is_alertable(article, now, max_age):
        return []
    policy = policy or Policy()
    subject = article_subject(article) if story is None else story.subject
    matched = list(dict.fromkeys(m.watchlist for m in matches))
    rows: list[OutboxRow] = []
    for channel in dict.fromkeys(c for w in matched for c in routes.get(w, ())):
        mine = [m for m in matches if channel in routes.get(m.watchlist, ())]
        alerted = story.alerted.get(channel, frozenset()) if story is not None else frozenset()
        if channel in policy.per_watchlist:
            for watchlist in dict.fromkeys(m.watchlist for m in mine):
                row = _watchlist_row(article, [m for m in mine if m.watchlist == watchlist],
                                     channel, subject, alerted, now, policy, story)
                if row is not None:
                    rows.append(row)
        else:
            order = {w: n for n, w in enumerate(routes)}  # the watchlists' config order
            mine.sort(key=lambda m: order[m.watchlist])
            if (row := _story_row(article, mine, channel, subject, alerted, now, policy,
                                  story, every)) is not None:
                rows.append(row)
    return rows


def _pairs(matches: Sequence[Match]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((m.watchlist, m.watch) for m in matches))


def _watchlist_row(article: Article, mine: Sequence[Match], channel: str, subject: str,
                   alerted: frozenset[tuple[str, str]], now: datetime, policy: Policy,
                   story: StoryContext | None) -> OutboxRow | None:
    """A version-1 alert: one watchlist's matches, as before stories were grouped."""
    watchlist = mine[0].watchlist
    before = {watch for w, watch in alerted if w == watchlist}
    new: list[str] = []
    if before:
        new = sorted({m.watch for m in mine} - before)
        if not new:
            return None
        subject += "#follow-up:" + ", ".join(new)
    named = new or [m.watch for m in mine]
    urgent = any((watchlist, watch) in policy.urgent for watch in named)
    key = alert_key(watchlist, subject, channel)
    return OutboxRow(key, message_id(key), watchlist, channel, subject,
                     event_data(article, mine, now, story, new), urgent,
                     None if urgent else policy.hold_until(channel, now), tuple(_pairs(mine)))


def _story_row(article: Article, mine: Sequence[Match], channel: str, subject: str,
               alerted: frozenset[tuple[str, str]], now: datetime, policy: Policy,
               story: StoryContext | None,
               every: Sequence[Match] | None) -> OutboxRow | None:
    """A version-2 alert: every watchlist of the channel that matched, grouped."""
    pairs = _pairs(mine)
    new: list[tuple[str, str]] = []
    if alerted:
        new = sorted(set(pairs) - alerted)
        if not new:
            return None
        subject += "#follow-up:" + ", ".join(f"{w}: {watch}" for w, watch in new)
    payload = story_event(article, mine, now, story, new, policy.urgent, every)
    urgent = payload["data"]["priority"] == "high"
    key = alert_key("", subject, channel)
    watchlists = ", ".join(dict.fromkeys(w for w, _ in pairs))
    return OutboxRow(key, message_id(key), watchlists, channel, subject, payload, urgent,
                     None if urgent else policy.hold_until(channel, now), tuple(pairs))


def _time(at: datetime) -> str:
    return iso(at)[:19] + "Z"


def _mention(m: Match) -> dict[str, Any]:
    """A match object as version 1 gives it (``matches[]``; ``mentions[]`` in version 2)."""
    return {"watch": m.watch, "alias": m.alias, "matched": m.matched, "field": m.field,
            "start": m.start, "end": m.end, "snippet": m.snippet, "highlight": m.highlight,
            "context": list(m.context)}


def _article(article: Article) -> dict[str, Any]:
    return {"url": article.url, "title": article.title, "source": article.source,
            "published_at": _time(article.published_at) if article.published_at else None,
            "summary": article.summary}


def event_data(article: Article, matches: Sequence[Match], now: datetime,
               story: StoryContext | None = None,
               new_watches: Sequence[str] = ()) -> dict[str, Any]:
    """The version-1 ``article.matched`` event (one watchlist; docs/webhook.schema.json)."""
    event: dict[str, Any] = {
        "type": "article.matched",
        "version": 1,
        "timestamp": _time(now),
        "data": {
            "watchlist": matches[0].watchlist,
            "article": _article(article),
            "matches": [_mention(m) for m in matches],
        },
    }
    if story is not None:
        event["data"]["story"] = {
            "id": story.id, "articles": story.articles, "outlets": story.outlets,
            "first_seen_at": _time(story.first_seen_at),
            "follow_up": bool(new_watches), "new_watches": list(new_watches),
        }
    return event


def story_event(article: Article, matches: Sequence[Match], now: datetime,
                story: StoryContext | None = None, new: Sequence[tuple[str, str]] = (),
                urgent: frozenset[tuple[str, str]] = frozenset(),
                every: Sequence[Match] | None = None) -> dict[str, Any]:
    """The version-2 ``article.matched`` event: every watchlist that matched, with its
    items, their mentions and one snippet per sentence (docs/webhook.v2.schema.json).
    ``new`` are the (watchlist, watch) pairs a follow-up is for: listed first. ``every``:
    every counting mention, marked in the snippets (else ``matches``)."""
    fresh = set(new)
    watchlists: list[dict[str, Any]] = []
    for name in dict.fromkeys(m.watchlist for m in matches):
        items: list[dict[str, Any]] = []
        for watch in dict.fromkeys(m.watch for m in matches if m.watchlist == name):
            mentions = [m for m in matches if (m.watchlist, m.watch) == (name, watch)]
            items.append({
                "watch": watch,
                "priority": "high" if (name, watch) in urgent else "normal",
                "new": (name, watch) in fresh,
                "mentions": [_mention(m) for m in mentions],
                "snippets": _snippets(article, [
                    m for m in (matches if every is None else every)
                    if (m.watchlist, m.watch) == (name, watch)] or mentions),
            })
        items.sort(key=lambda item: not item["new"])
        watchlists.append({"name": name, "items": items})
    watchlists.sort(key=lambda w: not any(item["new"] for item in w["items"]))
    data: dict[str, Any] = {
        "article": {**_article(article), "summary": article.summary or None,
                    "lede": sentences.lede(article.text, article.summary)},
        "priority": "high" if any(item["priority"] == "high" for w in watchlists
                                  for item in w["items"]) else "normal",
    }
    if story is not None:
        data["story"] = {
            "id": story.id, "articles": story.articles, "outlets": story.outlets,
            "sources": list(story.sources or (article.source,)),
            "first_seen_at": _time(story.first_seen_at), "follow_up": bool(new),
            "new_watches": list(dict.fromkeys(item["watch"] for w in watchlists
                                              for item in w["items"] if item["new"])),
        }
    data["watchlists"] = watchlists
    return {"type": "article.matched", "version": 2, "timestamp": _time(now), "data": data}


def _snippets(article: Article, mentions: Sequence[Match]) -> list[dict[str, Any]]:
    """One snippet per sentence holding a mention, every mention in it marked. A sentence
    the summary and the text share (a feed's text is often its summary) is given once."""
    found: dict[str, dict[str, Any]] = {}
    for name in FIELDS:
        spans = [(m.start, m.end) for m in mentions if m.field == name]
        for s in sentences.snippets(getattr(article, name) or "", spans) if spans else ():
            marks = [list(mark) for mark in s.marks]
            if s.text in found:
                seen = found[s.text]["marks"]
                seen[:] = sorted(seen + [m for m in marks if m not in seen])
            else:
                found[s.text] = {"field": name, "text": s.text, "marks": marks}
    return list(found.values())
