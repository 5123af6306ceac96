"""The records the store takes and gives: plain data, no I/O, no backend.

Alert rows (``OutboxRow``) and the story an article joined (``StoryContext``) live here
and not in ``alerts``: the store writes and reads them, and the store sits below alerts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from crawler.core.article import Article
from crawler.core.clock import iso
from crawler.process import stories
from crawler.process.match import Match


@dataclass(frozen=True, slots=True)
class SourceState:
    """A claimed source: what the pipeline needs to poll it."""

    name: str
    url: str
    etag: str | None
    last_modified: str | None
    error_count: int
    last_error: str | None = None
    redirect_to: str | None = None
    redirect_seen: int = 0
    last_full_fetch_at: str | None = None


@dataclass(frozen=True, slots=True)
class PollRecord:
    """How one poll ended, and so what the source row says next.

    ``error`` set means a failure (the count goes up, the validators stay); otherwise a
    success. ``move_to`` replaces the polled URL (a confirmed permanent redirect);
    ``retire`` stops polling (410 Gone); ``defer_host_until`` holds back every source on
    the same host (Retry-After).
    """

    next_check_at: datetime
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    full_fetch: bool = False
    redirect_to: str | None = None
    redirect_seen: int = 0
    move_to: str | None = None
    retire: bool = False
    defer_host_until: datetime | None = None


#: How long ``maintain`` keeps a host's row after its last turn (or its hold's end).
HOST_ROWS_KEPT = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class HostBusy:
    """Why a host's turn was not given (``Store.take_host``): no request may start before
    ``next_at`` (the delay after the last one, a Crawl-delay or a Retry-After), and
    ``held_until`` is set while another owner holds the host (its request or crawl runs;
    the hold lapses then unless renewed)."""

    next_at: datetime
    held_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One alert to deliver on one channel, with the event data captured now."""

    key: str
    message_id: str
    watchlist: str
    channel: str
    subject: str
    payload: dict[str, Any]
    priority: bool = False
    hold_until: datetime | None = None
    items: tuple[tuple[str, str], ...] = ()
    """The (watchlist, watch) pairs the alert names: what its story is alerted for."""


def stored_article(r: Mapping[str, Any]) -> Article:
    """An ``articles`` row (any backend) as the ``Article`` matching reads."""
    return Article(source=r["source"], url=r["url"], link=r["link"] or r["url"],
                   title=r["title"] or "", guid=r["guid"],
                   published_at=datetime.fromisoformat(r["published_at"])
                   if r["published_at"] else None,
                   summary=r["summary"] or "", text=r["text"] or "")


def outbox_row(row: OutboxRow, now: datetime, article_id: int | None,
               kind: str = "alert") -> dict[str, Any]:
    """The ``outbox`` columns of a row to queue (every backend stores the same)."""
    return {
        "key": row.key, "message_id": row.message_id, "watchlist": row.watchlist,
        "channel": row.channel, "subject": row.subject, "article_id": article_id,
        "payload": json.dumps(row.payload, ensure_ascii=False), "kind": kind,
        "priority": int(row.priority), "held": int(row.hold_until is not None),
        "next_attempt_at": iso(row.hold_until or now), "created_at": iso(now),
    }


@dataclass(frozen=True, slots=True)
class Muted:
    """The mutes in force that concern one article, read inside the transaction that
    stores it: its story, its source, or watch items (``(watchlist, watch)``, the
    watchlist None for the item in every watchlist). A silenced match queues no alert;
    it is still stored, searched and published."""

    story: bool = False
    source: bool = False
    watches: frozenset[tuple[str | None, str]] = frozenset()

    def silences(self, match: Match) -> bool:
        return self.story or self.source or (None, match.watch) in self.watches \
            or (match.watchlist, match.watch) in self.watches

    def unmuted(self, matches: Sequence[Match]) -> list[Match]:
        """The matches alert planning may see (``alerts.outbox.plan`` stays unaware)."""
        return [m for m in matches if not self.silences(m)]


@dataclass(frozen=True, slots=True)
class StoryContext:
    """The story an article was placed in, as the store saw it inside the transaction.

    alerted: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    muted: Muted = Muted()
    """

    id: int
    subject: str
    articles: int
    outlets: int
    first_seen_at: datetime
    alerted: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    muted: Muted = Muted()


def story_subject(first_url: str) -> str:
    """A story's key, and the subject of its alerts: its first article's canonical URL."""
    return f"story:{first_url}"


@dataclass(frozen=True, slots=True)
class NewArticle:
    """An article ready to store: its dedup keys, matches, story fingerprint and the
    comparable form of its title, summary and text for the full-text index."""

    article: Article
    keys: Sequence[str]
    matches: list[Match]
    fingerprint: stories.Fingerprint
    indexed: tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class StoryRules:
    window: timedelta = timedelta(days=3)
    threshold: float = stories.DEFAULT_THRESHOLD


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """What ``add_articles`` did with one article."""

    article: Article
    id: int
    story_id: int
    rows: list[OutboxRow]
    matches: list[Match]


Planner = Callable[[Article, list[Match], StoryContext], list[OutboxRow]]
"""Decides an article's outbox rows, given the story it joined (alerts.outbox.plan)."""

DigestBuilder = Callable[[str, list[dict[str, Any]]], OutboxRow]
"""Makes one channel's digest row from its held alerts' payloads."""


@dataclass(frozen=True, slots=True)
class QueuedAlert:
    """A claimed outbox row, ready to render and send."""

    id: int
    message_id: str
    channel: str
    watchlist: str
    payload: dict[str, Any]
    attempts: int
    created_at: str
    kind: str = "alert"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one attempt ended in, and so what happens to the row next."""

    outcome: Literal["delivered", "retry", "dead"]
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    next_attempt_at: datetime | None = None


MuteKind = Literal["story", "watch", "source"]
RuleKind = Literal["exclude", "none_of"]


@dataclass(frozen=True, slots=True)
class Mute:
    """A mute to make: no alert for a story, a watch item or a source, on any channel,
    until ``until`` (None: until undone).

    ``target`` is the story's key (``story:<URL>``), the watch item's name, or the
    source's name; ``watchlist`` narrows a watch mute to one watchlist's item.
    """

    kind: MuteKind
    target: str
    created_by: str
    created_at: datetime
    until: datetime | None = None
    watchlist: str | None = None
    article_url: str | None = None


@dataclass(frozen=True, slots=True)
class LearnedRule:
    """A rule learned from feedback, kept in the database as an overlay on the YAML
    watchlists: ``exclude`` a phrase, or veto by a ``none_of`` term, for one item."""

    watchlist: str
    watch: str
    kind: RuleKind
    term: str
    created_by: str
    created_at: datetime
    article_url: str | None = None
    note: str = ""
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ArchiveMark:
    """Where a page of the archive ended (newest first): the next page starts after it.
    Opaque to callers."""

    at: str
    id: int


@dataclass(frozen=True, slots=True)
class ArchivePage:
    """Articles of the archive, newest first, each with the (watchlist, watch) pairs
    stored for it and when it was fetched; ``next`` is None on the last page."""

    rows: list[tuple[Article, set[tuple[str, str]]]]
    fetched_at: list[datetime]
    next: ArchiveMark | None


@dataclass(frozen=True, slots=True)
class FoundArticle:
    """A stored article looked up by one of its URLs, with its story and the watch items
    it matched when stored. A pruned article has lost its summary and text."""

    id: int
    article: Article
    story_id: int | None
    story: str | None
    matched: frozenset[tuple[str, str]]
    pruned: bool


@dataclass(frozen=True, slots=True)
class Session:
    """A desk session found by its id's hash: whose it is, the CSRF token its forms
    carry, and when it ends at the latest."""

    user: str
    csrf: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LoginFailures:
    """Failed logins since a time, of one user name and of one client address, each with
    the oldest counted (the limit lifts when it leaves the window)."""

    user: int
    address: int
    user_oldest: datetime | None
    address_oldest: datetime | None


@dataclass(frozen=True, slots=True)
class TableShape:
    """One table as ``newswatch db copy`` sees it in a database's catalog: its columns in
    order, its primary key (the order rows are copied and resumed in), the tables its
    foreign keys name (column → table) and whether its key draws from a sequence
    (PostgreSQL) or ``AUTOINCREMENT`` (SQLite), which the copy sets past the copied ids."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    references: tuple[tuple[str, str], ...] = ()
    counter: bool = False


@dataclass(frozen=True, slots=True)
class DaemonFacts:
    """What a running daemon tells the others about itself (``Store.daemon_seen``):
    enough for ``status`` to show who runs where, and which config."""

    host: str
    pid: int
    started_at: datetime
    config_version: str
    version: str
    workers: int


#: What ``Store.listen`` calls back with: work became due early (``poll_now``, a new or
#: revived source), or alerts were requeued.
WAKE_SOURCES = "sources"
WAKE_ALERTS = "alerts"


class Closer(Protocol):
    """Stops what ``Store.listen`` started; closing twice is harmless."""

    def close(self) -> None: ...


class NoWakeups:
    """The closer of a backend that sends no wake-ups: its daemons find early work at
    their next tick."""

    def close(self) -> None:
        """Nothing was started."""
