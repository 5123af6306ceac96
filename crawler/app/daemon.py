"""One process's work: ``once`` (a single pass) and ``run`` (the daemon).

The database says what is due; APScheduler only ticks. Each tick claims due sources and
due alerts with leases, so any number of ``once`` and ``run`` processes can share one
database without polling or sending anything twice.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from alerts import notices
from alerts.channels import Senders, sample_payload
from alerts.dispatch import DeliveryReport, Dispatcher
from crawler.app.configure import load_checked_config
from crawler.app.desk import app as desk_app
from crawler.app.desk import server as desk_server
from crawler.app.desk.host import Answer, Host, json_answer
from crawler.app.fleet import HEARTBEAT_S, Presence, Wakeups
from crawler.app.hostturns import StoreTurns
from crawler.app.pipeline import Pipeline, PollResult
from crawler.app.workers import Hook, InProcess, Pool, Work
from crawler.collect.fetch import make_client
from crawler.collect.politeness import Politeness
from crawler.config import (
    SETTINGS_FILE,
    SOURCES_FILE,
    WATCHLISTS_FILE,
    Config,
)
from crawler.core.clock import Clock, SystemClock, parse_iso
from crawler.core.errors import ConfigError, DeliveryError, DiskFullError
from crawler.core.metrics import CONTENT_TYPE, Metrics
from crawler.process import health
from crawler.store import SourceState, Store, open_store
from crawler.store.leases import Leases
from crawler.store.records import WAKE_ALERTS, WAKE_SOURCES
from crawler.store.threaded import ThreadedStore

log = logging.getLogger(__name__)

Builder = Callable[[Config], Awaitable[tuple[Pipeline, Dispatcher]]]

SHUTDOWN_GRACE_S = 10.0
CONFIG_CHECK_S = 1.0
HEALTH_CHECK_S = 3600.0
MAINTENANCE_S = 3600.0
CONFIG_FILES = (SETTINGS_FILE, SOURCES_FILE, WATCHLISTS_FILE)


def settled() -> None:
    """Leave what the daemon has built at its start (modules, the config: 10,000 watch
    items) out of the garbage collector's full passes, which otherwise hold the event
    loop for up to a tenth of a second (``tests/test_workers.py`` saw it). Called before
    the first tick, when its own pass stalls nothing. Those objects are still freed when
    unused (the config a reload replaces); only a reference cycle among them would stay."""
    gc.collect()
    gc.freeze()


def _machine() -> str:
    """This host, with its PID namespace where Linux shows it: containers that share a
    hostname (``--network host``) do not share process ids."""
    try:
        return f"{socket.gethostname()}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()


def process_owner() -> str:
    """A lease owner name unique to this process and readable in the database."""
    return f"{_machine()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_is_dead(owner: str) -> bool:
    """Whether a lease owner was a process on this host that no longer exists.

    Only a definite "no such process" counts: another host's or PID namespace's owner, a
    live process (even one that reused the pid) or anything unreadable waits for the lease
    to expire.
    """
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != _machine() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


@dataclass
class TestAlertOutcome:
    """What ``newswatch test-alert`` did."""

    channel: str
    delivered: bool
    detail: str
    message_id: str


async def send_test_alert(config: Config, channel: str, now: datetime) -> TestAlertOutcome:
    """Send a sample alert straight to one enabled channel, outside the outbox, under a
    fresh id (so a receiver that deduplicates still shows it)."""
    found = config.settings.channels.get(channel)
    if found is None:
        defined = ", ".join(sorted(config.settings.channels)) or "none"
        return TestAlertOutcome(channel, False, f"no channel named {channel!r} "
                                f"(defined: {defined})", "")
    if not found.enabled:
        return TestAlertOutcome(channel, False, "the channel is disabled: it has no "
                                "destination (url, to or urls)", "")
    watchlist = next((w for w in config.watchlists if channel in w.channels), None)
    payload = sample_payload(watchlist.name if watchlist else "newswatch-test",
                             watchlist.watch[0].name if watchlist else "Ahmad Massoud", now,
                             found.group)
    message_id = "msg_test_" + secrets.token_hex(12)
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        senders = Senders({channel: found}, config.directory, client,
                          config.settings.timezone)
        try:
            status = await senders.send(channel, message_id, payload, now)
        except DeliveryError as exc:
            kind = "would be retried" if exc.retryable else "permanent"
            return TestAlertOutcome(channel, False, f"{exc.message} ({kind})", message_id)
    detail = {"webhook": f"HTTP {status}", "email": f"SMTP {status}",
              "apprise": "accepted by every Apprise URL"}[found.type]
    return TestAlertOutcome(channel, True, detail, message_id)


@dataclass
class OnceReport:
    polls: list[PollResult] = field(default_factory=list)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)


class Runner:
    """Wires config, store, clients and clock into a pipeline and a dispatcher.

    ``workers`` is the number of worker processes for parsing, extraction, matching and
    fingerprints (crawler.app.workers), started with a pass or a run and stopped after
    it; 0 (the default, as for ``once``) keeps that work in this process. ``worker_hook``
    runs in a worker before each of its tasks (tests).
    """

    def __init__(self, config: Config, store: Store, *, clock: Clock | None = None,
                 collect_transport: httpx.AsyncBaseTransport | None = None,
                 deliver_transport: httpx.AsyncBaseTransport | None = None,
                 workers: int = 0, worker_hook: Hook | None = None) -> None:
        self.config = config
        self.store = store
        self.db = ThreadedStore(store)  # every call from the loop goes through its thread
        self.clock = clock or SystemClock()
        self.owner = process_owner()
        # every claim lasts daemon.lease, renewed while its work runs (a restart applies
        # a new one, as for the rest of daemon:)
        self.leases = Leases(self.db, self.owner, self.clock,
                             timedelta(seconds=config.settings.daemon.lease))
        self.workers = workers
        self._worker_hook = worker_hook
        self._collect_transport = collect_transport
        self._deliver_transport = deliver_transport

        self.reload_requested = asyncio.Event()
        self.metrics = Metrics()

    async def once(self, progress: Callable[[PollResult], None] | None = None) -> OnceReport:
        """Poll every source that no other process holds, then deliver what is due."""
        async with self._clients() as build:
            pipeline, dispatcher = await build(self.config)
            polls = await self._poll(pipeline, due_only=False, progress=progress)
            return OnceReport(polls, await dispatcher.deliver_due())

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set, then cancel in-flight work and give back leases.

        Besides the poll and delivery ticks, a watcher reloads the config when its files
        change (debounced: editors write and rename) or when ``reload_requested`` is set
        (SIGHUP). Wake-ups from the store (``Store.listen``: PostgreSQL's NOTIFY) bring
        a tick forward when another process makes work due early, and the daemon's row
        in the database (``crawler.app.fleet``) says it runs, with which config.
        """
        tick = self.config.settings.daemon.tick
        self._report_disabled(self.config)
        fatal: list[DiskFullError] = []

        def stop_safely(exc: DiskFullError) -> None:
            log.critical("stopping: %s", exc)
            fatal.append(exc)
            stop.set()

        async with self._clients() as build:
            work = _Work(self, *await build(self.config), stop_safely)
            presence = Presence(self.db, self.clock, self.owner, self.workers,
                                lambda: self.config.version)
            await presence.tidy(owner_is_dead)
            await presence.beat()
            watcher = _ConfigWatcher(self, work, build, reloaded=presence.beat)
            wakeups = Wakeups(asyncio.get_running_loop(), {WAKE_SOURCES: work.poll_tick,
                                                           WAKE_ALERTS: work.deliver_tick})
            settled()
            scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={
                "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
            now = self.clock.now()
            scheduler.add_job(work.poll_tick, "interval", seconds=tick, next_run_time=now,
                              id="poll")
            scheduler.add_job(work.deliver_tick, "interval", seconds=tick,
                              next_run_time=now, id="deliver")
            scheduler.add_job(watcher.check, "interval", seconds=CONFIG_CHECK_S, id="config")
            scheduler.add_job(self.check_health, "interval", seconds=HEALTH_CHECK_S,
                              next_run_time=now, id="health")
            scheduler.add_job(work.maintain, "interval", seconds=MAINTENANCE_S, id="maintain")
            scheduler.add_job(presence.beat, "interval", seconds=HEARTBEAT_S, id="presence")
            scheduler.add_job(presence.tidy, "interval", args=[owner_is_dead],
                              seconds=MAINTENANCE_S, id="tidy")
            scheduler.start()
            log.info("daemon started: %d source(s), tick %gs, %s, database %s, config "
                     "version %s", len(work.pipeline.sources), tick,
                     f"{self.workers} worker process(es)" if self.workers
                     else "no worker processes", self.store.location, self.config.version)
            serving = await self._listen(work)
            listening = await self.db.listen(wakeups.notify)
            try:
                while not stop.is_set():
                    waiters = [asyncio.ensure_future(stop.wait()),
                               asyncio.ensure_future(self.reload_requested.wait())]
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                    for waiter in waiters:
                        waiter.cancel()
                    if self.reload_requested.is_set() and not stop.is_set():
                        self.reload_requested.clear()
                        log.info("SIGHUP: reloading the config")
                        await watcher.reload()
            finally:
                await asyncio.to_thread(listening.close)
                await wakeups.close()
                if serving is not None:
                    await serving.serving.stop()
                    await asyncio.to_thread(serving.host.store.shutdown)
                    serving.host.store.sync.close()
                scheduler.shutdown(wait=False)
                await work.cancel()
                await self.leases.close()
                if not fatal:
                    await self.db.release(self.owner)  # (on a full disk, leases just expire)
                    await presence.gone()
                log.info("daemon stopped; undelivered alerts stay in the outbox")
        if fatal:
            raise fatal[0]

    async def _listen(self, work: _Work) -> _Listening | None:
        """Serve /healthz, /metrics, the feeds and (``http.desk``) the desk on
        ``http.listen``, with a database connection of its own (docs/desk.md)."""
        http = self.config.settings.http
        if http is None:
            return None
        address, _, port = http.listen.rpartition(":")
        store = ThreadedStore(await asyncio.to_thread(open_store, self.config))
        host = Host(config=lambda: self.config, store=store, clock=self.clock,
                    healthz=functools.partial(self._healthz, work), metrics=self._metrics,
                    wake=work.poll_tick)
        try:
            serving = await desk_server.serve(desk_app.build(host, desk=http.desk),
                                              address.strip("[]"), int(port))
        except BaseException:
            store.sync.close()
            raise
        if http.desk:
            log.info("the desk is on at %s", http.public_url or f"http://{http.listen}/")
        return _Listening(serving, host)

    async def _healthz(self, work: _Work) -> Answer:
        """Alive when the scheduler ticked recently and the database takes a write."""
        tick = self.config.settings.daemon.tick
        since = time.monotonic() - work.last_tick
        database = await self.db.writable()
        pending, oldest = await self.db.outbox_backlog(self.clock.now())
        alive = since < 3 * tick + 5
        return json_answer(200 if alive and database is None else 503, {
            "status": "ok" if alive and database is None else "failing",
            "scheduler": {"alive": alive, "seconds_since_tick": round(since, 3)},
            "database": {"backend": "postgresql" if self.config.database_url else "sqlite",
                         "location": self.store.location, "connected": database is None,
                         "writable": database is None, "error": database},
            "outbox": {"pending": pending, "oldest_pending_seconds": round(oldest, 3)},
            "config_version": self.config.version,
        })

    async def _metrics(self) -> Answer:
        pending, oldest = await self.db.outbox_backlog(self.clock.now())
        failing = sum(1 for r in await self.db.sources() if r["active"] and r["error_count"])
        return 200, CONTENT_TYPE, self.metrics.render({
            "newswatch_outbox_pending": pending,
            "newswatch_oldest_pending_alert_seconds": oldest,
            "newswatch_sources_failing": failing,
        })

    async def check_health(self) -> list[str]:
        """Announce each source incident (failing too long, gone quiet) once, when it
        starts, and its end; returns the notices raised."""
        now = self.clock.now()
        active = {s.name for s in self.config.active_sources()}
        raised = []
        for row in await self.db.source_health(now):
            if row["name"] not in active or row["retired_at"]:
                continue
            facts = health.figures(row, now)
            kind = health.incident(facts, now)
            if kind == row["notice"]:
                continue
            if kind:
                notice = health.describe(kind, row, facts)
                log.warning("operator notice: %s", notice, extra={"source": row["name"]})
                raised.append(notice)
                await self._notify_operator(f"source.{kind}", row, notice, now)
            else:
                log.info("incident over: the source is %s no more", row["notice"],
                         extra={"source": row["name"]})
            await self.db.set_notice(row["name"], kind)
        return raised

    async def _notify_operator(self, kind: str, row: dict[str, Any], message: str,
                         now: datetime) -> None:
        """Queue the notice on the ``operator`` channel, if one is set and enabled."""
        operator = self.config.settings.operator
        if operator is None or operator not in self.config.enabled_channels():
            return
        since = parse_iso(row["failing_since"] if kind == "source.failing"
                          else row["last_article_at"])
        notice = notices.source_notice_row(operator, kind, row["name"], since, message,
                                           row["last_error"], now)
        await self.db.open_incident(notices.incident_key(kind, f"source:{row['name']}", since),
                                 kind, f"source:{row['name']}", since, now, message, notice)

    @staticmethod
    def _report_disabled(config: Config) -> None:
        for name in config.disabled_channels():
            log.warning("channel %s has no destination and is disabled: it queues nothing",
                        name)

    async def _poll(self, pipeline: Pipeline, *, due_only: bool,
                    progress: Callable[[PollResult], None] | None = None) -> list[PollResult]:
        claimed = await self.db.claim_sources(self.owner, self.clock.now(), self.leases.lease,
                                              due_only=due_only, names=list(pipeline.sources))
        limit = asyncio.Semaphore(self.config.settings.daemon.concurrency)

        async def one(state: SourceState) -> PollResult | None:
            async with limit:
                result = await self.leases.hold(pipeline.poll(state), source=state.name)
            if progress and result:
                progress(result)
            return result

        return [r for r in await asyncio.gather(*(one(s) for s in claimed)) if r]

    @asynccontextmanager
    async def _clients(self) -> AsyncIterator[Builder]:
        """Open the HTTP clients and start the workers for one pass or one daemon run
        (closed after it), and yield a builder of the pipeline and dispatcher for a config
        over them."""
        settings = self.config.settings
        async with make_client(allow_private_networks=settings.allow_private_networks,
                               transport=self._collect_transport) as collect, \
                httpx.AsyncClient(transport=self._deliver_transport, follow_redirects=False,
                                  trust_env=False) as deliver:
            for owner in await self.db.release_orphans(owner_is_dead):
                log.warning("took back the leases of %s, which no longer runs", owner)
            # shared by every pipeline of this run (and through the database, by every
            # daemon on it): hosts take turns
            politeness = Politeness(StoreTurns(self.db, self.clock, self.owner),
                                    hold=settings.daemon.lease)
            # and so are the workers: each task names the config (and rules) version it
            # matches with, so a reload needs no new ones
            work: Work = Pool(self.workers, self._worker_hook) if self.workers \
                else InProcess()

            async def build(config: Config) -> tuple[Pipeline, Dispatcher]:
                await self.db.sync_sources(config.active_sources(), self.clock.now())
                return (Pipeline(config, self.db, collect, self.clock, self.owner,
                                 self.metrics, politeness, work),
                        Dispatcher(self.db, config, deliver, self.clock, self.owner,
                                   concurrency=config.settings.daemon.concurrency,
                                   metrics=self.metrics, leases=self.leases))

            try:
                await work.start()
                yield build
            finally:  # the store's thread ends once its queued calls have run
                await self.leases.close()
                await work.close()
                await asyncio.to_thread(self.db.shutdown)


@dataclass
class _Listening:
    serving: desk_server.Serving
    host: Host


class _Work:
    """The daemon's in-flight work. Ticks only start tasks and return at once, so a slow
    source or receiver never holds back the others or the next tick."""

    def __init__(self, runner: Runner, pipeline: Pipeline, dispatcher: Dispatcher,
                 fatal: Callable[[DiskFullError], None]) -> None:
        self.runner = runner
        self.pipeline = pipeline
        self.dispatcher = dispatcher
        self.fatal = fatal
        self.polls: dict[str, asyncio.Task[None]] = {}
        self.delivery: asyncio.Task[None] | None = None
        self.last_tick = time.monotonic()

    async def poll_tick(self) -> None:
        """Claim as many due sources as there are free slots and start polling them."""
        r = self.runner
        self.last_tick = time.monotonic()
        free = r.config.settings.daemon.concurrency - len(self.polls)
        if free <= 0:
            return
        idle = [n for n in self.pipeline.sources if n not in self.polls]
        try:
            claimed = await r.db.claim_sources(r.owner, r.clock.now(), r.leases.lease,
                                               names=idle, limit=free)
        except DiskFullError as exc:
            self.fatal(exc)
            return
        except Exception:
            log.exception("cannot claim due sources; the next tick tries again")
            return
        for state in claimed:
            task = asyncio.create_task(self._poll(state), name=f"poll {state.name}")
            self.polls[state.name] = task
            task.add_done_callback(functools.partial(self._forget, state.name))

    def _forget(self, name: str, task: asyncio.Task[None]) -> None:
        if self.polls.get(name) is task:
            del self.polls[name]

    async def _poll(self, state: SourceState) -> None:
        try:  # renewed while it runs; a lost lease cancels it (None), a crash lets it go
            result = await self.runner.leases.hold(self.pipeline.poll(state),
                                                   source=state.name)
        except DiskFullError as exc:
            self.fatal(exc)
            return
        except Exception:
            log.exception("poll crashed; the source stays leased until its lease expires",
                          extra={"source": state.name})
            return
        if result and result.queued:
            await self.deliver_tick()
        self.polls.pop(state.name, None)
        await self.poll_tick()  # a slot is free: take the next due source without waiting

    async def deliver_tick(self) -> None:
        """Start a delivery pass unless one is running (it picks up new rows itself)."""
        if self.delivery is None or self.delivery.done():
            self.delivery = asyncio.create_task(self._deliver(), name="deliver")

    async def _deliver(self) -> None:
        try:
            await self.dispatcher.deliver_due()
        except DiskFullError as exc:
            self.fatal(exc)
        except Exception:
            log.exception("delivery pass failed; the next tick tries again")

    async def maintain(self) -> None:
        """Hourly: forget old delivered alerts and old articles' text, checkpoint the WAL."""
        r = self.runner
        retention = r.config.settings.retention
        try:
            pruned = await r.db.prune_articles(r.clock.now(),
                                            timedelta(seconds=retention.articles))
            removed = await r.db.maintain(r.clock.now(),
                                       timedelta(seconds=retention.delivered_alerts))
        except DiskFullError as exc:
            self.fatal(exc)
            return
        if pruned:
            log.info("retention: forgot the text of %d article(s)", pruned)
        if removed:
            log.info("retention: forgot %d delivered alert(s)", removed)

    async def cancel(self) -> None:
        tasks = [*self.polls.values(), *([self.delivery] if self.delivery else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S)


class _ConfigWatcher:
    """Applies a changed config without a restart, or keeps the running one.

    A change is applied once the files have stayed the same for one check (editors save
    by writing and renaming). An invalid config is logged as FILE:LINE:COL problems and
    the running config stays in force; a new ``database:`` is refused until restart.
    """

    def __init__(self, runner: Runner, work: _Work, build: Builder, *,
                 reloaded: Callable[[], Awaitable[None]] | None = None) -> None:
        self.runner = runner
        self.work = work
        self.build = build
        self.reloaded = reloaded  # told once a new config is in force
        self.seen = self._fingerprint()
        self.pending: tuple[tuple[int, int], ...] | None = None

    def _fingerprint(self) -> tuple[tuple[int, int], ...]:
        found = []
        for name in CONFIG_FILES:
            try:
                stat = (self.runner.config.directory / name).stat()
                found.append((stat.st_mtime_ns, stat.st_size))
            except OSError:
                found.append((0, -1))
        return tuple(found)

    async def check(self) -> None:
        now = self._fingerprint()
        if now == self.seen:
            self.pending = None
        elif now != self.pending:
            self.pending = now  # changed since the last look: wait until it settles
        else:
            await self.reload()

    async def reload(self) -> None:
        """Apply the config on disk, or keep the running one: a reload never stops the
        daemon, whatever is wrong with the files or goes wrong while applying them."""
        try:
            await self._reload()
        except Exception:
            log.exception("config reload failed; keeping the running config (version %s)",
                          self.runner.config.version)

    async def _reload(self) -> None:
        self.seen = self.pending = self._fingerprint()
        runner, old = self.runner, self.runner.config
        try:  # off the loop: 10,000 watch items take a while to validate
            new = await asyncio.to_thread(load_checked_config, old.directory)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config reload rejected: %s", problem)
            log.error("keeping the running config (version %s)", old.version)
            return
        if (new.database_url or new.database_path) != (old.database_url or old.database_path):
            log.error("config reload rejected: database changed from %s to %s; that needs "
                      "a restart. Keeping the running config (version %s)",
                      old.database_shown, new.database_shown, old.version)
            return
        if new.version == old.version:
            return
        for key in ("allow_private_networks", "daemon", "http"):
            if getattr(new.settings, key) != getattr(old.settings, key):
                log.warning("%s changed: it takes effect at the next restart", key)
        built = await self.build(new)  # before anything changes: a failure keeps the old
        runner.config = new
        self.work.pipeline, self.work.dispatcher = built
        runner._report_disabled(new)
        log.info("config reloaded (version %s): %d source(s), %d watchlist(s)",
                 new.version, len(self.work.pipeline.sources), len(new.watchlists))
        if self.reloaded is not None:
            await self.reloaded()
