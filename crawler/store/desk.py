"""What the web desk reads, as the store gives it: stories, a story's copies, mentions and
alerts, a watch item's timeline, the outbox. Plain frozen data, no I/O, no backend.

Pages stay thin: each record is what a page shows, in display order, with remote text as
plain strings (the templates escape everything) and highlights cut into pieces, so a
template wraps each marked piece in ``<mark>`` and never parses a marker. Times are aware
UTC datetimes; the page converts them to the configured zone. Lists are keyset-paginated:
a page's ``older`` is the cursor (a story or outbox id) of the next one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from crawler.process import sentences
from crawler.process.script import Script
from crawler.process.search import Query, passage

Direction = Literal["rtl", "ltr"]
#: Outbox states as ``alerts()`` names them: a stored status, or ``held`` (for a digest or
#: by a throttle) and ``retrying`` (pending after a failed attempt).
OutboxState = Literal["pending", "retrying", "held", "muted", "dead", "digested",
                      "delivered"]
#: What the desk's outbox page lists by default: everything not sent and not given up on
#: by the user, dead alerts included.
WAITING: tuple[OutboxState, ...] = ("pending", "retrying", "held", "muted", "dead")
#: The most rows one page holds, whatever is asked.
PAGE_MAX = 200


@dataclass(frozen=True, slots=True)
class StoryFilter:
    """The stories list's filters; None is any. ``since``/``until`` bound when a story was
    first seen (``until`` excluded); ``script`` is its headline's (``process.script``)."""

    watchlist: str | None = None
    watch: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    script: Script | None = None


#: No filter: every story with a match.
EVERY_STORY = StoryFilter()


@dataclass(frozen=True, slots=True)
class Chip:
    """A watch item a story matched, in one watchlist."""

    watchlist: str
    watch: str


@dataclass(frozen=True, slots=True)
class StoryRow:
    """One story of the list: its first copy's headline and link, the outlets carrying it
    (first seen first), when it was first and last seen, its copies, what it matched."""

    id: int
    key: str
    headline: str
    url: str
    link: str
    first_seen_at: datetime
    last_seen_at: datetime
    copies: int
    outlets: tuple[str, ...]
    script: Script
    direction: Direction
    chips: tuple[Chip, ...]

    @property
    def outlet_count(self) -> int:
        return len(self.outlets)

    @property
    def watchlists(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.watchlist for c in self.chips))


@dataclass(frozen=True, slots=True)
class StoryPage:
    """Stories newest first. ``older``: the cursor of the next page (None: none left);
    ``newest``: the highest id shown, for polling for newer ones (None: empty page)."""

    rows: tuple[StoryRow, ...]
    older: int | None
    newest: int | None


@dataclass(frozen=True, slots=True)
class Passage:
    """A sentence with mentions: ``pieces`` of (text before, marked text), then ``tail``.
    ``watches``: the items it names; ``field``: title, summary or text."""

    field: str
    watches: tuple[str, ...]
    pieces: tuple[tuple[str, str], ...]
    tail: str

    @property
    def text(self) -> str:
        return "".join(b + m for b, m in self.pieces) + self.tail


def cut(field: str, watches: Iterable[str], snippet: sentences.Snippet) -> Passage:
    """A ``sentences.Snippet`` as a passage."""
    pieces, tail = sentences.pieces(snippet.text, snippet.marks)
    return Passage(field, tuple(dict.fromkeys(watches)), pieces, tail)


def search_passage(row: Mapping[str, Any], query: Query) -> Passage | None:
    """The first of a search result's title, summary and text holding one of the query's
    terms (across letter variants), with the hit marked; None when only the stemless
    index matched (a word the terms do not show)."""
    for field in ("title", "summary", "text"):
        found = passage(str(row.get(field) or ""), query.terms)
        if found is not None:
            return cut(field, (), found)
    return None


@dataclass(frozen=True, slots=True)
class Mention:
    """One stored match of a copy: the button "Not relevant" acts on it."""

    id: int
    watchlist: str
    watch: str
    alias: str
    matched: str
    field: str
    context: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Copy:
    """One article of a story. ``pruned``: its summary and text are gone (retention), so
    its passages are the snippets kept with its matches."""

    id: int
    source: str
    title: str
    url: str
    link: str
    published_at: datetime | None
    fetched_at: datetime
    language: str
    script: Script
    direction: Direction
    similarity: float | None
    pruned: bool
    mentions: tuple[Mention, ...]
    passages: tuple[Passage, ...]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt (``error`` is scrubbed of channel tokens when stored)."""

    attempted_at: datetime
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class StoryAlert:
    """An alert of the story on one channel, what it named, and how its delivery went: its
    own attempts, or its digest's (``digest_id``)."""

    id: int
    article_id: int
    channel: str
    watchlist: str
    status: str
    state: OutboxState
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    digest_id: int | None
    mute_id: int | None
    items: tuple[Chip, ...]
    deliveries: tuple[Attempt, ...]


@dataclass(frozen=True, slots=True)
class ActiveMute:
    """A mute in force that silences the story: on it, one of its outlets, or an item it
    matched (``watchlist`` None: the item in every watchlist)."""

    id: int
    kind: str
    target: str
    watchlist: str | None
    created_by: str
    created_at: datetime
    until: datetime | None


@dataclass(frozen=True, slots=True)
class StoryDetail:
    """A story's page: every copy (oldest first) with its mentions in context, its alerts
    (oldest first) and the mutes touching it."""

    story: StoryRow
    copies: tuple[Copy, ...]
    alerts: tuple[StoryAlert, ...]
    mutes: tuple[ActiveMute, ...]


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    articles: int


@dataclass(frozen=True, slots=True)
class Timeline:
    """A watch item's articles per day (in the zone asked for, oldest day first, days with
    none included) and its latest stories."""

    watch: str
    watchlist: str | None
    days: tuple[DayCount, ...]
    stories: tuple[StoryRow, ...]

    @property
    def total(self) -> int:
        return sum(d.articles for d in self.days)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An outbox row for the desk. ``retryable``: ``requeue`` would send it again (dead,
    or waiting and not being sent); ``headline`` is its story's, else its subject."""

    id: int
    kind: str
    channel: str
    watchlist: str
    state: OutboxState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str | None
    story_id: int | None
    headline: str
    url: str | None
    digest_id: int | None
    mute_id: int | None
    retryable: bool


@dataclass(frozen=True, slots=True)
class OutboxPage:
    rows: tuple[OutboxEntry, ...]
    older: int | None
