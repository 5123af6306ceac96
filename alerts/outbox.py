"""Outbox rows for an article's matches. Pure: the store writes them with the article.

An alert's identity is (watchlist, subject, channel). The subject is the article's story
(``story:`` and the canonical URL of the story's first article), so the copies of a story
that other outlets carry alert once per (watchlist, channel). A later copy that matches
watch items the story's earlier alerts did not name gets one follow-up alert, whose
subject adds those items. The message id (the ``webhook-id``) is derived from the key,
so it is the same on every attempt, after restarts, and in every process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts import digest
from crawler.config import Config
from crawler.core.article import Article
from crawler.core.clock import iso
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
    """How alerts are queued per channel: digest schedules, and which items are urgent."""

    digests: Mapping[str, str] = field(default_factory=dict)
    timezone: str = "UTC"
    urgent: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def from_config(cls, config: Config) -> Policy:
        return cls({n: c.digest for n, c in config.settings.channels.items() if c.digest},
                   config.settings.timezone,
                   frozenset((w.name, i.name) for w in config.watchlists for i in w.watch
                             if i.priority == "high"))

    def hold_until(self, channel: str, now: datetime) -> datetime | None:
        spec = self.digests.get(channel)
        return digest.next_slot(spec, self.timezone, now) if spec else None


def plan(article: Article, matches: Sequence[Match], routes: Mapping[str, Sequence[str]],
         now: datetime, max_age: timedelta, policy: Policy | None = None,
         story: StoryContext | None = None) -> list[OutboxRow]:
    """One row per (watchlist with matches, enabled channel of that watchlist).

    With a ``story``, a watchlist already alerted for the story gets a row only when the
    article matches watch items those alerts did not name: one follow-up alert. (Without
    one, the subject is the article itself.) A row for a digest channel is held until the
    channel's next digest time, unless one of its watch items has ``priority: high``:
    then it goes out at once.
    """
    if not matches or not is_alertable(article, now, max_age):
        return []
    policy = policy or Policy()
    rows = []
    for watchlist in dict.fromkeys(m.watchlist for m in matches):
        mine = [m for m in matches if m.watchlist == watchlist]
        subject = article_subject(article) if story is None else story.subject
        new: list[str] = []
        if story is not None and story.alerted.get(watchlist):
            new = sorted({m.watch for m in mine} - story.alerted[watchlist])
            if not new:
                continue
            subject += "#follow-up:" + ", ".join(new)
        data = event_data(article, mine, now, story, new)
        named = new or [m.watch for m in mine]
        urgent = any((watchlist, watch) in policy.urgent for watch in named)
        for channel in routes.get(watchlist, ()):
            key = alert_key(watchlist, subject, channel)
            rows.append(OutboxRow(key, message_id(key), watchlist, channel, subject, data,
                                  urgent, None if urgent else policy.hold_until(channel, now)))
    return rows


def event_data(article: Article, matches: Sequence[Match], now: datetime,
               story: StoryContext | None = None,
               new_watches: Sequence[str] = ()) -> dict[str, Any]:
    """The ``article.matched`` event as delivered (see docs/webhooks.md)."""
    event: dict[str, Any] = {
        "type": "article.matched",
        "version": 1,
        "timestamp": iso(now)[:19] + "Z",
        "data": {
            "watchlist": matches[0].watchlist,
            "article": {
                "url": article.url,
                "title": article.title,
                "source": article.source,
                "published_at": iso(article.published_at)[:19] + "Z"
                if article.published_at else None,
                "summary": article.summary,
            },
            "matches": [
                {"watch": m.watch, "alias": m.alias, "matched": m.matched, "field": m.field,
                 "start": m.start, "end": m.end, "snippet": m.snippet,
                 "highlight": m.highlight, "context": list(m.context)}
                for m in matches
            ],
        },
    }
    if story is not None:
        event["data"]["story"] = {
            "id": story.id, "articles": story.articles, "outlets": story.outlets,
            "first_seen_at": iso(story.first_seen_at)[:19] + "Z",
            "follow_up": bool(new_watches), "new_watches": list(new_watches),
        }
    return event
