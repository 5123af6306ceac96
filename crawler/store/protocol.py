"""What newswatch needs of a database: the storage contract every backend keeps.

The contract is **synchronous**. The CLI, the tests and the contract suite
(``tests/contract/``) call it directly; the daemon never does: it reaches the store
through ``crawler.store.threaded.ThreadedStore``, which runs every call on one
dedicated thread, so the event loop never waits on the database (a writer blocked on
another process's lock for the whole busy timeout holds that thread, not the loop).

Each method is one transaction with the promise its docstring gives (the SQLite
backend's docstrings are the reference). Errors are ``crawler.core.errors.StoreError``
subclasses carrying the driver's error as their cause: ``DiskFullError``,
``DatabaseDamagedError``, ``DatabaseBusyError``, ``SchemaTooNewError``. Times are
aware datetimes passed in by the caller (the store never reads a clock for data).
Rows read for display come back as plain mappings of column names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from crawler.config import Source
from crawler.core.article import Article
from crawler.process.search import Query
from crawler.process.throttle import Throttle
from crawler.store.records import (
    DeliveryResult,
    DigestBuilder,
    NewArticle,
    OutboxRow,
    Planner,
    PollRecord,
    QueuedAlert,
    SourceState,
    StoredArticle,
    StoryRules,
)


class Store(Protocol):
    """The storage contract (see the module docstring)."""

    @property
    def location(self) -> str:
        """Where the data lives, for log lines (a path; never a password)."""

    def close(self) -> None: ...

    # --- sources
    def sync_sources(self, sources: Sequence[Source], now: datetime) -> None: ...
    def claim_sources(self, owner: str, now: datetime, lease: timedelta, *,
                      due_only: bool = True, names: Iterable[str] | None = None,
                      limit: int | None = None) -> list[SourceState]: ...
    def record_poll(self, name: str, owner: str, now: datetime,
                    record: PollRecord) -> None: ...
    def release(self, owner: str, source: str | None = None) -> None: ...
    def release_orphans(self, is_dead: Callable[[str], bool]) -> list[str]: ...
    def sources(self) -> list[dict[str, Any]]: ...
    def source_health(self, now: datetime,
                      window: timedelta = ...) -> list[dict[str, Any]]: ...
    def set_notice(self, name: str, notice: str | None) -> None: ...

    # --- articles, stories, search
    def source_urls(self, source: str, limit: int = 5000) -> list[str]: ...
    def known_keys(self, keys: Iterable[str]) -> set[str]: ...
    def add_articles(self, batch: Sequence[NewArticle], now: datetime, config_version: str,
                     plan: Planner, rules: StoryRules | None = None,
                     ) -> list[StoredArticle]: ...
    def archive(self, since: datetime) -> list[tuple[Article, set[tuple[str, str]]]]: ...
    def matched_articles(self, *, watchlist: str | None = None, watch: str | None = None,
                         source: str | None = None, since: datetime | None = None,
                         limit: int | None = None) -> list[dict[str, Any]]: ...
    def count_matched_articles(self, *, watchlist: str | None = None,
                               watch: str | None = None, source: str | None = None,
                               since: datetime | None = None) -> int: ...
    def recent_stories(self, since: datetime, limit: int = 50) -> list[dict[str, Any]]: ...
    def search(self, query: Query, *, since: datetime | None = None,
               source: str | None = None, watchlist: str | None = None,
               order: Literal["newest", "rank"] = "newest",
               limit: int = 20) -> list[dict[str, Any]]: ...
    def prune_articles(self, now: datetime, keep: timedelta, batch: int = 500) -> int: ...

    # --- outbox, delivery, incidents
    def fold_digests(self, now: datetime, channels: Iterable[str],
                     build: DigestBuilder) -> int: ...
    def claim_alerts(self, owner: str, now: datetime, lease: timedelta,
                     channels: Iterable[str], limit: int = 100,
                     throttles: Mapping[str, Throttle] | None = None,
                     ) -> list[QueuedAlert]: ...
    def record_delivery(self, alert_id: int, owner: str, now: datetime,
                        result: DeliveryResult) -> bool: ...
    def requeue(self, now: datetime, ids: Iterable[int] = (), *,
                dead: bool = False) -> int: ...
    def failing_channels(self) -> dict[str, tuple[datetime, str | None]]: ...
    def open_incident(self, key: str, kind: str, channel: str, since: datetime,
                      now: datetime, message: str, notice: OutboxRow | None) -> bool: ...
    def incidents(self) -> list[dict[str, Any]]: ...
    def alerts(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]: ...
    def outbox_backlog(self, now: datetime) -> tuple[int, float]: ...
    def alert_counts(self) -> dict[str, int]: ...

    # --- looking after it
    def backup(self, destination: Path) -> None: ...
    def maintain(self, now: datetime, keep_delivered: timedelta) -> int: ...
    def schema_version(self) -> int: ...
    def writable(self) -> str | None: ...
