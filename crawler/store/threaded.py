"""The store as the daemon sees it: the same methods, awaited, each run on one thread.

The ``Store`` contract is synchronous (``crawler/store/protocol.py``). The event loop must
never wait on the database, though: a write can wait up to the busy timeout (30 s) for
another process's lock, and even a quick query holds everything else on the loop while
it runs. ``ThreadedStore`` runs every call on threads of its own, so fetches,
deliveries and the listener go on while the database is busy. As many threads as the
backend takes calls at once (``Store.concurrent_calls``): one for SQLite, whose one
connection is used by one thread at a time, and whose calls then run in the order they
were made; several for PostgreSQL, whose calls are each a transaction on a connection of
its pool, so one daemon's round trips to the server overlap (``make bench-scale`` found
one thread busy all the time, mostly waiting on the server). ``release``, which gives
back leases, first waits for the calls already made (a claim in flight at shutdown).

A call cut short by cancellation still runs to its end on the thread (its transaction
commits or rolls back whole); only its result is dropped.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from crawler.config import Source
from crawler.process.throttle import Throttle
from crawler.store.protocol import Store
from crawler.store.records import (
    Closer,
    DaemonFacts,
    DeliveryResult,
    DigestBuilder,
    HostBusy,
    LearnedRule,
    NewArticle,
    OutboxRow,
    Planner,
    PollRecord,
    QueuedAlert,
    SourceState,
    StoredArticle,
    StoryRules,
)

P = ParamSpec("P")
R = TypeVar("R")


class ThreadedStore:
    """Awaitable calls to a ``Store``, each on the one thread this adapter owns."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        self.threads = max(1, store.concurrent_calls)
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[asyncio.Future[Any]] = set()

    @property
    def location(self) -> str:
        return self.sync.location

    async def _run(self, method: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.threads,
                                                thread_name_prefix="store")
        done = asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(method, *args, **kwargs))
        self._pending.add(done)
        done.add_done_callback(self._pending.discard)
        return await done

    async def call(self, method: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Any store method (``self.sync.NAME``) on the thread, for the callers that need
        more of the contract than the daemon's methods below (the desk)."""
        return await self._run(method, *args, **kwargs)

    def shutdown(self) -> None:
        """Let the thread go once the calls queued have run (a later call starts another)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # --- sources
    async def sync_sources(self, sources: Sequence[Source], now: datetime) -> None:
        return await self._run(self.sync.sync_sources, sources, now)

    async def claim_sources(self, owner: str, now: datetime, lease: timedelta, *,
                            due_only: bool = True, names: Iterable[str] | None = None,
                            limit: int | None = None) -> list[SourceState]:
        return await self._run(self.sync.claim_sources, owner, now, lease,
                               due_only=due_only, names=names, limit=limit)

    async def record_poll(self, name: str, owner: str, now: datetime,
                          record: PollRecord) -> None:
        return await self._run(self.sync.record_poll, name, owner, now, record)

    async def renew_leases(self, owner: str, now: datetime, lease: timedelta, *,
                           sources: Iterable[str] = (), alerts: Iterable[int] = (),
                           ) -> tuple[list[str], list[int]]:
        return await self._run(self.sync.renew_leases, owner, now, lease,
                               sources=list(sources), alerts=list(alerts))

    async def release(self, owner: str, source: str | None = None) -> None:
        if source is None and self._pending:  # all of them: after the claims in flight
            await asyncio.wait(set(self._pending))
        return await self._run(self.sync.release, owner, source)

    async def release_orphans(self, is_dead: Callable[[str], bool]) -> list[str]:
        return await self._run(self.sync.release_orphans, is_dead)

    async def sources(self) -> list[dict[str, Any]]:
        return await self._run(self.sync.sources)

    async def source_health(self, now: datetime) -> list[dict[str, Any]]:
        return await self._run(self.sync.source_health, now)

    async def set_notice(self, name: str, notice: str | None) -> None:
        return await self._run(self.sync.set_notice, name, notice)

    # --- turns at remote hosts
    async def take_host(self, host: str, owner: str, now: datetime,
                        hold: timedelta) -> HostBusy | None:
        return await self._run(self.sync.take_host, host, owner, now, hold)

    async def renew_hosts(self, hosts: Sequence[str], owner: str, now: datetime,
                          hold: timedelta) -> list[str]:
        return await self._run(self.sync.renew_hosts, hosts, owner, now, hold)

    async def free_host(self, host: str, owner: str, now: datetime,
                        delay: timedelta) -> None:
        return await self._run(self.sync.free_host, host, owner, now, delay)

    async def defer_host(self, host: str, until: datetime) -> None:
        return await self._run(self.sync.defer_host, host, until)

    # --- articles
    async def source_urls(self, source: str) -> list[str]:
        return await self._run(self.sync.source_urls, source)

    async def known_keys(self, keys: Iterable[str]) -> set[str]:
        return await self._run(self.sync.known_keys, list(keys))

    async def add_articles(self, batch: Sequence[NewArticle], now: datetime,
                           config_version: str, plan: Planner,
                           rules: StoryRules | None = None) -> list[StoredArticle]:
        return await self._run(self.sync.add_articles, batch, now, config_version, plan,
                               rules)

    async def rules(self) -> list[LearnedRule]:
        return await self._run(self.sync.rules)

    async def rules_version(self) -> tuple[int, int]:
        return await self._run(self.sync.rules_version)

    async def matched_articles(self, *, watchlist: str | None = None,
                               since: datetime | None = None,
                               limit: int | None = None) -> list[dict[str, Any]]:
        return await self._run(self.sync.matched_articles, watchlist=watchlist, since=since,
                               limit=limit)

    async def prune_articles(self, now: datetime, keep: timedelta) -> int:
        return await self._run(self.sync.prune_articles, now, keep)

    # --- outbox
    async def fold_digests(self, now: datetime, channels: Iterable[str],
                           build: DigestBuilder) -> int:
        return await self._run(self.sync.fold_digests, now, list(channels), build)

    async def claim_alerts(self, owner: str, now: datetime, lease: timedelta,
                           channels: Iterable[str], limit: int = 100,
                           throttles: Mapping[str, Throttle] | None = None,
                           ) -> list[QueuedAlert]:
        return await self._run(self.sync.claim_alerts, owner, now, lease, list(channels),
                               limit, throttles)

    async def record_delivery(self, alert_id: int, owner: str, now: datetime,
                              result: DeliveryResult) -> bool:
        return await self._run(self.sync.record_delivery, alert_id, owner, now, result)

    async def failing_channels(self) -> dict[str, tuple[datetime, str | None]]:
        return await self._run(self.sync.failing_channels)

    async def open_incident(self, key: str, kind: str, channel: str, since: datetime,
                            now: datetime, message: str, notice: OutboxRow | None) -> bool:
        return await self._run(self.sync.open_incident, key, kind, channel, since, now,
                               message, notice)

    async def outbox_backlog(self, now: datetime) -> tuple[int, float]:
        return await self._run(self.sync.outbox_backlog, now)

    # --- the daemons
    async def daemon_seen(self, owner: str, now: datetime, facts: DaemonFacts) -> None:
        return await self._run(self.sync.daemon_seen, owner, now, facts)

    async def daemon_gone(self, owner: str) -> bool:
        return await self._run(self.sync.daemon_gone, owner)

    async def daemons(self, now: datetime, within: timedelta) -> list[dict[str, Any]]:
        return await self._run(self.sync.daemons, now, within)

    async def listen(self, callback: Callable[[str], None]) -> Closer:
        return await self._run(self.sync.listen, callback)

    # --- looking after it
    async def maintain(self, now: datetime, keep_delivered: timedelta) -> int:
        return await self._run(self.sync.maintain, now, keep_delivered)

    async def writable(self) -> str | None:
        return await self._run(self.sync.writable)
