"""One process's work: ``once`` (a single pass) and ``run`` (the daemon).

The database says what is due; APScheduler only ticks. Each tick claims due sources and
due alerts with leases, so any number of ``once`` and ``run`` processes can share one
database without polling or sending anything twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from alerts.dispatch import DeliveryReport, Dispatcher
from crawler.clock import Clock, SystemClock
from crawler.config import Config
from crawler.fetch import make_client
from crawler.pipeline import Pipeline, PollResult
from crawler.store import SourceState, Store

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0


def process_owner() -> str:
    """A lease owner name unique to this process and readable in the database."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class OnceReport:
    polls: list[PollResult] = field(default_factory=list)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)


class Runner:
    """Wires config, store, clients and clock into a pipeline and a dispatcher."""

    def __init__(self, config: Config, store: Store, *, clock: Clock | None = None,
                 collect_transport: httpx.AsyncBaseTransport | None = None,
                 deliver_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock or SystemClock()
        self.owner = process_owner()
        self._collect_transport = collect_transport
        self._deliver_transport = deliver_transport

    async def once(self, progress: Callable[[PollResult], None] | None = None) -> OnceReport:
        """Poll every source that no other process holds, then deliver what is due."""
        async with self._clients() as (pipeline, dispatcher):
            polls = await self._poll(pipeline, due_only=False, progress=progress)
            return OnceReport(polls, await dispatcher.deliver_due())

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set, then cancel in-flight work and give back leases."""
        tick = self.config.settings.daemon.tick
        for name in self.config.disabled_channels():
            log.warning("channel %s has no URL and is disabled: it queues nothing", name)
        async with self._clients() as (pipeline, dispatcher):

            inflight: set[asyncio.Task[Any]] = set()

            async def tick_job(name: str, work: Callable[[], Awaitable[object]]) -> None:
                task = asyncio.current_task()
                assert task is not None
                inflight.add(task)
                try:
                    await work()
                except Exception:
                    log.exception("%s tick failed; the next tick tries again", name)
                finally:
                    inflight.discard(task)

            concurrency = self.config.settings.daemon.concurrency
            polling: dict[str, asyncio.Task[PollResult]] = {}

            async def poll_and_deliver() -> None:
                # Each source polls in its own task, so a long crawl holds one slot and
                # never delays the other sources' ticks.
                idle = [n for n in pipeline.sources if n not in polling]
                claimed = self.store.claim_sources(
                    self.owner, self.clock.now(), pipeline.lease(), due_only=True,
                    names=idle, limit=concurrency - len(polling))
                for state in claimed:
                    task = asyncio.create_task(pipeline.poll(state))
                    polling[state.name] = task
                    inflight.add(task)
                    task.add_done_callback(done)
                await dispatcher.deliver_due()

            def done(task: asyncio.Task[Any]) -> None:
                inflight.discard(task)
                if not task.cancelled() and task.exception() is not None:
                    log.error("poll failed; the source is tried again when its lease "
                              "expires", exc_info=task.exception())
                for name, running in list(polling.items()):
                    if running is task:
                        del polling[name]

            scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={
                "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
            now = self.clock.now()
            scheduler.add_job(tick_job, "interval", ["poll", poll_and_deliver],
                              seconds=tick, next_run_time=now, id="poll")
            scheduler.add_job(tick_job, "interval", ["deliver", dispatcher.deliver_due],
                              seconds=tick, next_run_time=now, id="deliver")
            scheduler.start()
            log.info("daemon started: %d source(s), tick %gs, database %s",
                     len(pipeline.sources), tick, self.store.path)
            try:
                await stop.wait()
            finally:
                scheduler.shutdown(wait=False)
                for task in inflight:
                    task.cancel()
                if inflight:
                    await asyncio.wait(list(inflight), timeout=SHUTDOWN_GRACE_S)
                self.store.release(self.owner)
                log.info("daemon stopped; undelivered alerts stay in the outbox")

    async def _poll(self, pipeline: Pipeline, *, due_only: bool,
                    progress: Callable[[PollResult], None] | None = None) -> list[PollResult]:
        claimed = self.store.claim_sources(self.owner, self.clock.now(), pipeline.lease(),
                                           due_only=due_only, names=pipeline.sources)
        limit = asyncio.Semaphore(self.config.settings.daemon.concurrency)

        async def one(state: SourceState) -> PollResult:
            async with limit:
                result = await pipeline.poll(state)
            if progress:
                progress(result)
            return result

        return list(await asyncio.gather(*(one(s) for s in claimed)))

    @asynccontextmanager
    async def _clients(self) -> AsyncIterator[tuple[Pipeline, Dispatcher]]:
        """The HTTP clients for one pass or one daemon run, closed after it."""
        settings = self.config.settings
        async with make_client(allow_private_networks=settings.allow_private_networks,
                               transport=self._collect_transport) as collect, \
                httpx.AsyncClient(transport=self._deliver_transport, follow_redirects=False,
                                  trust_env=False) as deliver:
            self.store.sync_sources(self.config.active_sources(), self.clock.now())
            yield (Pipeline(self.config, self.store, collect, self.clock, self.owner),
                   Dispatcher(self.store, self.config.enabled_channels(), deliver, self.clock,
                              self.owner, concurrency=settings.daemon.concurrency))
