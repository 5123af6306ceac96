"""Where a poll's CPU work runs: feed parsing, extraction, matching and fingerprints.

The daemon's event loop is for I/O (fetches, deliveries, the listener): on it, one
5 MB feed would hold up every other fetch past its timeout. :class:`Pool` runs the
CPU work in worker processes (``daemon.workers``, one per core by default);
:class:`InProcess` runs it in a thread of this process (``workers: 0``: ``once``, the
other commands and the tests, which would pay a worker's start-up for nothing). Both
run the same pure steps, :func:`parse` and :func:`prepare`, and give the same results:
the items, and those refused alone (``crawler.app.rejects``).

In a worker process:

- the compiled matcher is built once per *matching version* (the config's version, with
  the learned rules'): a task names the version, and carries the watchlists (pickled
  once per version) until every worker has said it built that version; a worker that
  lacks it all the same (one started anew) answers so, and gets the task again with them;
- what the steps log is collected and logged again by the daemon, after the task;
- an exception comes back as itself with the worker's traceback as its cause, or as a
  :class:`WorkerBug` naming it when it cannot be rebuilt in the daemon (an exception that
  cannot be unpickled would break the whole pool);
- the CPU priority is a notch lower than the daemon's (``NICE``): on busy cores, the
  loop and the store's thread, which every poll waits on, go first;
- Ctrl-C is left to the daemon, which stops its workers; a worker whose daemon died
  (SIGKILL) exits within a second.

A worker that dies (killed, out of memory) fails the polls it was working for with
:class:`WorkerDiedError`; the pool is replaced and the next polls start afresh. Nothing
is lost: a poll writes nothing before its store call, which comes after these steps.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.context import BaseContext
from typing import Any, Generic, Protocol, TypeVar

from crawler.app.rejects import Rejects
from crawler.collect.feeds import parse_feed
from crawler.config import WatchlistConfig
from crawler.core.article import Article, Rejected
from crawler.core.errors import WorkerDiedError
from crawler.process import search, stories
from crawler.process.dedup import Keyed
from crawler.process.extract import extract
from crawler.process.match import Match, Matcher
from crawler.store import NewArticle

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Called in a worker before each task with the task's name (tests: a worker killed or
#: failing mid-task). It must pickle: a module-level function or a partial of one.
Hook = Callable[[str], None]

#: The stages of ``prepare``, timed (``newswatch_stage_seconds``).
STAGES = ("extract", "match", "fold", "fingerprint")
#: Items a task of ``prepare`` takes at most.
CHUNK = 100
#: How long stopping waits for the tasks running in the workers, before killing them.
STOP_GRACE_S = 5.0
#: How much lower the workers' CPU priority is than the daemon's: when the cores are
#: all busy, the daemon's loop and its store thread (fetches, the one writer) go first.
NICE = 5
#: How often an idle worker looks whether its daemon is still there.
ORPHAN_CHECK_S = 1.0


def cores() -> int:
    """The cores this process may run on (``daemon.workers``' default)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Matching:
    """What the matcher is compiled from: the watchlists, learned rules added, under the
    version that names them."""

    version: str
    watchlists: tuple[WatchlistConfig, ...]


@dataclass(slots=True)
class Parsed:
    """A feed body parsed: its items with their dedup keys (of ``collected`` articles),
    its ``ttl``, the items refused alone (with the first bug among them), and the seconds
    ``spent`` parsing (``parse``) and computing keys (``dedup``)."""

    items: list[Keyed]
    collected: int
    ttl: float | None
    rejected: list[Rejected]
    bug: Exception | None
    spent: dict[str, float]


@dataclass(slots=True)
class Prepared:
    """Items extracted, matched and fingerprinted, ready for the store; ``every`` holds
    each matched article's every mention, by URL (an alert marks them all); ``spent``
    the seconds in each stage (``extract``, ``match``, ``fold``, ``fingerprint``)."""

    batch: list[NewArticle]
    every: dict[str, list[Match]]
    rejected: list[Rejected]
    bug: Exception | None
    spent: dict[str, float]


# --- the steps: pure functions of data -------------------------------------------------------


def parse(source: str, body: bytes, headers: Mapping[str, str], url: str) -> Parsed:
    """The feed's items, each with its dedup keys; ParseError if it is no feed."""
    started = time.perf_counter()
    feed = parse_feed(source, body, headers, url)
    parsed = time.perf_counter()
    rejects = Rejects(source)
    rejects.add(*feed.rejected)
    items = rejects.each(feed.articles, Keyed.of, link)
    return Parsed(items, len(feed.articles), feed.ttl, rejects.items, rejects.bug,
                  {"parse": parsed - started, "dedup": time.perf_counter() - parsed})


def prepare(source: str, items: Sequence[Keyed], now: datetime,
            matcher: Matcher) -> Prepared:
    """extract → match → fingerprint, item by item; an item that raises is refused alone."""
    every: dict[str, list[Match]] = {}
    spent = dict.fromkeys(STAGES, 0.0)
    clock = time.perf_counter

    def one(item: Keyed) -> NewArticle:
        started = clock()
        item = item.extracted(extract(item.article, now))
        extracted = clock()
        matches = matcher.match(item.article)
        if matches:
            every[item.article.url] = matcher.match(item.article, every=True)
        matched = clock()
        document = search.document(item.article)
        folded = clock()
        fingerprint = stories.fingerprint(document)
        spent["extract"] += extracted - started
        spent["match"] += matched - extracted
        spent["fold"] += folded - matched
        spent["fingerprint"] += clock() - folded
        return NewArticle(item.article, item.keys, matches, fingerprint, document)

    rejects = Rejects(source)
    batch = rejects.each(items, one, keyed_link)
    return Prepared(batch, every, rejects.items, rejects.bug, spent)


def link(article: Article) -> str:
    """An article as a rejection names it."""
    return article.link


def keyed_link(item: Keyed) -> str:
    return item.article.link


# --- where they run --------------------------------------------------------------------------


class Work(Protocol):
    """Runs the steps of a poll for the pipeline, in this process or in workers."""

    async def start(self) -> None: ...

    async def parse(self, source: str, body: bytes, headers: Mapping[str, str],
                    url: str) -> Parsed: ...

    async def prepare(self, source: str, items: Sequence[Keyed], now: datetime,
                      matching: Matching) -> Prepared: ...

    async def close(self) -> None: ...


class InProcess:
    """The steps in a thread of this process (``workers: 0``): the loop goes on meanwhile,
    though the thread shares the interpreter with it."""

    async def start(self) -> None:
        return None

    async def parse(self, source: str, body: bytes, headers: Mapping[str, str],
                    url: str) -> Parsed:
        return await asyncio.to_thread(parse, source, body, headers, url)

    async def prepare(self, source: str, items: Sequence[Keyed], now: datetime,
                      matching: Matching) -> Prepared:
        return await asyncio.to_thread(
            lambda: prepare(source, items, now,
                            matcher(matching.version, matching.watchlists)))

    async def close(self) -> None:
        return None


class Pool:
    """The steps in ``size`` worker processes, started in the background by :meth:`start`
    (the first start waits for the fork server's imports, about a second: the first
    fetches go on meanwhile), and again by the next task after one died."""

    def __init__(self, size: int, hook: Hook | None = None) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one worker, not {size}")
        self.size = size
        self._hook = hook
        self._executor: ProcessPoolExecutor | None = None
        self._starting = asyncio.Lock()
        self._warming: asyncio.Task[None] | None = None
        self._pickled: dict[str, bytes] = {}  # matching version → its watchlists, pickled
        self._built: dict[str, set[int]] = {}  # matching version → workers that built it

    async def start(self) -> None:
        """Start the workers in the background."""
        if self._warming is None or self._warming.done():
            self._warming = asyncio.create_task(self._warm())

    async def _warm(self) -> None:
        try:
            await self._pool()
        except Exception:  # logged here; each task then tries again, and fails its poll
            log.exception("the worker processes could not be started")

    async def parse(self, source: str, body: bytes, headers: Mapping[str, str],
                    url: str) -> Parsed:
        return await self._run(source, "parse", "parsing the feed", parse, source, body,
                               dict(headers), url)

    async def prepare(self, source: str, items: Sequence[Keyed], now: datetime,
                      matching: Matching) -> Prepared:
        """``prepare`` in tasks of ``CHUNK`` items, spread over the workers: a big feed
        is done sooner, and comes back a piece at a time (unpickling 2,000 articles at
        once would hold the loop for tens of milliseconds)."""
        parts = await asyncio.gather(*(
            self._prepare(source, items[start:start + CHUNK], now, matching)
            for start in range(0, len(items), CHUNK)))
        return Prepared([new for part in parts for new in part.batch],
                        {url: found for part in parts for url, found in part.every.items()},
                        [item for part in parts for item in part.rejected],
                        next((part.bug for part in parts if part.bug), None),
                        {stage: sum(part.spent[stage] for part in parts) for stage in STAGES})

    async def _prepare(self, source: str, items: Sequence[Keyed], now: datetime,
                       matching: Matching) -> Prepared:
        built = self._built.get(matching.version)
        if built is None:  # a new version: the last two are kept, as the workers do
            built = self._built[matching.version] = set()
            self._built = dict(list(self._built.items())[-2:])
        watchlists = None if len(built) >= self.size else await self._watchlists(matching)
        worker, prepared = await self._run(source, "prepare", "matching", _prepare, source,
                                           list(items), now, matching.version, watchlists)
        if prepared is None:  # that worker has not built this version's matcher yet
            worker, prepared = await self._run(
                source, "prepare", "matching", _prepare, source, list(items), now,
                matching.version, await self._watchlists(matching))
            assert prepared is not None
        built.add(worker)
        return prepared

    async def close(self) -> None:
        """Stop the workers: the tasks running get ``STOP_GRACE_S`` to end, then the
        workers are killed (a step has no effect outside its process to cut short)."""
        if self._warming is not None:
            await asyncio.wait([self._warming])
        async with self._starting:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        stopping = asyncio.ensure_future(asyncio.to_thread(
            executor.shutdown, wait=True, cancel_futures=True))
        done, _ = await asyncio.wait([stopping], timeout=STOP_GRACE_S)
        if not done:
            log.warning("worker processes still busy after %gs; killing them", STOP_GRACE_S)
            for process in list((executor._processes or {}).values()):
                process.kill()
            await stopping

    async def _pool(self) -> ProcessPoolExecutor:
        """The running pool, or a new one, started off the loop: a worker's start waits
        for the fork server, which takes a second of imports the first time."""
        async with self._starting:
            if self._executor is None:
                self._executor = await asyncio.to_thread(self._spawn)
                log.info("%d worker process(es) started", self.size)
            return self._executor

    def _spawn(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(self.size, mp_context=_context(), initializer=_start,
                                       initargs=(_levels(), self._hook, os.getpid()))
        try:
            for started in [executor.submit(_task, "start", _nothing)
                            for _ in range(self.size)]:
                started.result()
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        return executor

    async def _run(self, source: str, name: str, doing: str, step: Callable[..., T],
                   *args: Any) -> T:
        executor = None
        try:
            executor = await self._pool()
            done: _Done[T] = await asyncio.get_running_loop().run_in_executor(
                executor, _task, name, step, *args)
        except BrokenProcessPool as exc:
            if executor is not None and self._executor is executor:  # the first to see
                self._executor = None                                # it replaces the pool
                self._built.clear()
                executor.shutdown(wait=False, cancel_futures=True)
                log.error("a worker process died; starting new ones")
            raise WorkerDiedError(source, f"the worker process {doing} died (killed, or out "
                                          "of memory?); the next poll starts afresh") from exc
        for record in done.records:
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
        if done.error is not None:
            raise done.error
        return done.value

    async def _watchlists(self, matching: Matching) -> bytes:
        """The watchlists of ``matching`` pickled, once per version (off the loop: 10,000
        watch items take a tenth of a second)."""
        pickled = self._pickled.get(matching.version)
        if pickled is None:
            pickled = await asyncio.to_thread(pickle.dumps, matching.watchlists,
                                              pickle.HIGHEST_PROTOCOL)
            self._pickled = {**dict(list(self._pickled.items())[-1:]),
                             matching.version: pickled}
        return pickled


def _context() -> BaseContext:
    """Workers are forked from a server process that has imported this module (quick to
    start, and no copy of the daemon's threads and locks, as a plain fork would make);
    spawned where there is no such server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _levels() -> dict[str, int]:
    """The levels of this process's loggers, for its workers to log (and send back) the
    same records it would log."""
    levels = {"": logging.getLogger().level}
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels[name] = logger.level
    return levels


# --- in the worker ---------------------------------------------------------------------------

_hook: Hook | None = None
_records: list[logging.LogRecord] = []


@dataclass(slots=True)
class _Done(Generic[T]):
    """What a task sends back: its value or its error, and what it logged."""

    value: T
    error: Exception | None
    records: list[logging.LogRecord]


class WorkerBug(Exception):
    """An exception of a worker process that could not be rebuilt in the daemon: its
    type and message."""


class RemoteTraceback(Exception):
    """Where in the worker process an exception was raised (logged as its cause)."""

    def __str__(self) -> str:
        return f'\n"""\n{self.args[0]}"""'


class _Travelling(Exception):
    """An exception on its way from a worker: it arrives as itself (or as a WorkerBug),
    with the worker's traceback as its cause."""

    def __reduce__(self) -> tuple[Any, ...]:
        return _arrive, self.args


def _arrive(error: Exception, text: str) -> Exception:
    error.__cause__ = RemoteTraceback(text)
    return error


def _portable(error: Exception) -> Exception:
    text = "".join(traceback.format_exception(error))
    try:
        pickle.loads(pickle.dumps(error))
        sent = error
    except Exception:
        sent = WorkerBug(f"{type(error).__name__}: {error}")
    return _Travelling(sent, text)


class _Collect(logging.Handler):
    """Keeps each record of a task, made fit to pickle (message formatted, traceback as
    text), for the daemon to log."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg = record.getMessage()
            record.args = None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            _records.append(record)
        except Exception:
            self.handleError(record)


def _start(levels: dict[str, int], hook: Hook | None, daemon: int) -> None:
    """A worker's start: Ctrl-C is the daemon's to handle, records are collected, and a
    watch on the daemon ends the worker with it."""
    global _hook
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "nice"):  # not on Windows
        os.nice(NICE)
    root = logging.getLogger()
    root.handlers[:] = [_Collect()]
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    _hook = hook
    threading.Thread(target=_end_with, args=(daemon,), name="orphan-check",
                     daemon=True).start()


def _end_with(daemon: int) -> None:
    """Exit once the daemon is gone: one killed with SIGKILL leaves no worker behind.
    (Its pid, not our parent's: that is the fork server, which the workers keep alive.)"""
    while True:
        time.sleep(ORPHAN_CHECK_S)
        try:
            os.kill(daemon, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:  # another user's process has its pid now
            os._exit(0)


def _task(name: str, step: Callable[..., T], *args: Any) -> _Done[Any]:
    _records.clear()
    try:
        if _hook is not None:
            _hook(name)
        value = step(*args)
        if isinstance(value, Parsed | Prepared) and value.bug is not None:
            value.bug = _portable(value.bug)
        return _Done(value, None, _records[:])
    except Exception as exc:
        return _Done(None, _portable(exc), _records[:])
    finally:
        _records.clear()


def _nothing() -> None:
    return None


def _prepare(source: str, items: Sequence[Keyed], now: datetime, version: str,
             watchlists: bytes | None) -> tuple[int, Prepared | None]:
    """This worker's pid, and ``prepare`` with its matcher of ``version``: None when it
    has not built it and ``watchlists`` are not given."""
    built = Matcher.for_version(version)
    if built is None and watchlists is not None:
        built = matcher(version, pickle.loads(watchlists))
    return os.getpid(), None if built is None else prepare(source, items, now, built)


def matcher(version: str, watchlists: Sequence[WatchlistConfig]) -> Matcher:
    """The matcher of ``version``; when this builds it, the heap is then settled
    (:func:`settle_heap`)."""
    found = Matcher.for_version(version)
    if found is None:
        found = Matcher.for_version(version, watchlists)
        settle_heap()
    return found


def settle_heap() -> None:
    """Collect the garbage once, then exempt every object alive now from the cyclic
    garbage collector's later passes (``gc.freeze``).

    A matcher of 10,000 watch items is millions of long-lived objects, and each of the
    collector's full passes walks them all: about a tenth of a second, several times
    in a big poll, 11% of ingest time in ``bench-ingest``. They live until the next
    reload, which settles again: what was frozen is unfrozen first, so a replaced
    matcher's cycles are collected then."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
