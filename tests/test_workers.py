"""The daemon's CPU work in worker processes (issue #14): parsing, extraction, matching
and fingerprints run there, with the matcher of the running config and learned rules; a
worker that dies or raises fails its poll alone and loses nothing; the event loop does
not stall while a 5 MB feed is ingested."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import random
import re
import signal
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest

from crawler.app.daemon import Runner, _ConfigWatcher, _Work
from crawler.app.pipeline import Pipeline, PollResult
from crawler.app.workers import InProcess, Matching, Prepared, RemoteTraceback
from crawler.config import WatchItem, WatchlistConfig, edit
from crawler.core import errors
from crawler.core.errors import NewswatchError
from crawler.process.dedup import Keyed
from crawler.process.match import Matcher
from crawler.store import LearnedRule, SQLiteStore
from tests import schema
from tests.feeds import Item, rss
from tests.helpers import WATCHLIST, FakeClock, Project, make_article, newswatch, wait_until
from tests.servers import Page, Receiver, Site

T = TypeVar("T")


def kill_once(flag: Path, name: str) -> None:
    """In a worker: the first time it starts matching, it is killed."""
    if name == "prepare" and not flag.exists():
        flag.touch()
        os.kill(os.getpid(), signal.SIGKILL)


def fail_once(flag: Path, name: str) -> None:
    """In a worker: the first parse raises, as a bug would."""
    if name == "parse" and not flag.exists():
        flag.touch()
        raise RuntimeError("a bug in a worker")


def forget_matchers(name: str) -> None:
    """In a worker: it loses its compiled matchers before each match (as a cache would)."""
    if name == "prepare":
        Matcher._cache.clear()


def local_feed(project: Project, site: Site, receiver: Receiver, items: list[Item]) -> None:
    site.pages["/feed.xml"] = Page(rss(items))
    project.hook(receiver.url("/hook"))
    project.settings["defaults"] = {"full_text": False}
    project.sources = [{"name": "Local", "feed": site.url("/feed.xml")}]


def with_pool(runner: Runner,
              work: Callable[[Pipeline, _Work, _ConfigWatcher], Awaitable[T]]) -> T:
    """Run ``work`` with one pipeline over the runner's pool, as the daemon holds them."""

    async def run() -> T:
        async with runner._clients() as build:
            daemon = _Work(runner, *await build(runner.config), lambda exc: None)
            return await work(daemon.pipeline, daemon, _ConfigWatcher(runner, daemon, build))

    return asyncio.run(run())


async def poll(runner: Runner, daemon: _Work) -> PollResult:
    [result] = await runner._poll(daemon.pipeline, due_only=False)
    return result


def test_a_worker_killed_mid_task_fails_its_poll_and_the_next_poll_stores_everything(
        project: Project, site: Site, receiver: Receiver, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    local_feed(project, site, receiver, [
        Item("Noor in Mazar", site.url("/a/1"), "Atta Mohammad Noor spoke.", "1"),
        Item("Roads", site.url("/a/2"), "The roads of Balkh were mended.", "2")])
    config = project.config()
    store = SQLiteStore(config.database_path)
    clock = FakeClock()
    runner = Runner(config, store, clock=clock, workers=1,
                    worker_hook=partial(kill_once, tmp_path / "killed"))

    async def twice(_: Pipeline, daemon: _Work, __: _ConfigWatcher) -> tuple[Any, ...]:
        first = await poll(runner, daemon)
        stored = schema.rows(store, "SELECT count(*) AS n FROM articles")[0]["n"]
        clock.advance(3600)
        second = await poll(runner, daemon)
        await daemon.dispatcher.deliver_due()
        return first, stored, second

    try:
        with caplog.at_level(logging.INFO):
            first, stored, second = with_pool(runner, twice)
        [row] = store.sources()
    finally:
        store.close()

    assert (tmp_path / "killed").exists(), "the hook killed the worker"
    assert first.error is not None and "worker process matching died" in first.error
    assert stored == 0, "nothing of the cut poll was written"
    assert any("a worker process died; starting new ones" in r.getMessage()
               for r in caplog.records)
    assert (second.error, second.new, second.matched) == (None, 2, 1)
    assert row["error_count"] == 0 and row["last_success_at"] is not None
    assert len(receiver.wait_for(1)) == 1
    assert [p["data"]["article"]["url"] for p in receiver.payloads()] == [site.url("/a/1")]


def test_an_exception_in_a_worker_fails_its_poll_with_the_worker_traceback(
        project: Project, site: Site, receiver: Receiver, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    local_feed(project, site, receiver, [
        Item("Noor in Mazar", site.url("/a/1"), "Atta Mohammad Noor spoke.", "1")])
    config = project.config()
    store = SQLiteStore(config.database_path)
    clock = FakeClock()
    runner = Runner(config, store, clock=clock, workers=1,
                    worker_hook=partial(fail_once, tmp_path / "failed"))

    async def twice(_: Pipeline, daemon: _Work, __: _ConfigWatcher) -> tuple[Any, ...]:
        first = await poll(runner, daemon)
        clock.advance(3600)
        return first, await poll(runner, daemon)

    try:
        with caplog.at_level(logging.INFO):
            first, second = with_pool(runner, twice)
    finally:
        store.close()

    assert first.error == "internal error: RuntimeError: a bug in a worker"
    [bug] = [r for r in caplog.records if "internal error while polling" in r.getMessage()]
    assert bug.exc_info is not None and bug.exc_info[0] is RuntimeError
    assert isinstance(bug.exc_info[1].__cause__, RemoteTraceback)
    assert "in fail_once" in str(bug.exc_info[1].__cause__)
    assert not any("worker process died" in r.getMessage() for r in caplog.records)
    assert (second.error, second.new, second.matched) == (None, 1, 1), "same pool, fine"


def test_after_a_reload_and_a_learned_rule_the_workers_match_with_the_new_watchlists(
        project: Project, site: Site, receiver: Receiver) -> None:
    """Two workers: whichever gets a task matches with the running config and rules."""
    noor_only = {**WATCHLIST, "watch": [{"name": "Atta Mohammad Noor"}]}
    project.watchlists = [noor_only]
    items = [Item("Noor and Massoud", site.url("/a/1"),
                  "Atta Mohammad Noor met Ahmad Massoud in Kabul.", "1")]
    local_feed(project, site, receiver, items)
    config = project.config()
    store = SQLiteStore(config.database_path)
    clock = FakeClock()
    runner = Runner(config, store, clock=clock, workers=2)

    def publish(item: Item) -> None:
        items.append(item)
        site.pages["/feed.xml"] = Page(rss(items))

    async def steps(_: Pipeline, daemon: _Work, watcher: _ConfigWatcher) -> list[int]:
        found = [(await poll(runner, daemon)).matched]
        project.watchlists = [{**noor_only, "watch": [
            {"name": "Atta Mohammad Noor"}, {"name": "Ahmad Massoud"}]}]
        project.write()
        await watcher.reload()
        assert runner.config.version != config.version
        publish(Item("Massoud in Panjshir", site.url("/a/2"), "Ahmad Massoud spoke.", "2"))
        clock.advance(3600)
        found.append((await poll(runner, daemon)).matched)
        store.add_rule(LearnedRule(WATCHLIST["name"], "Ahmad Massoud", "none_of", "cricket",
                                   "ana", clock.now()))
        publish(Item("The cup", site.url("/a/3"), "Ahmad Massoud cricket cup final.", "3"))
        publish(Item("Massoud again", site.url("/a/4"), "Ahmad Massoud in Kabul.", "4"))
        clock.advance(3600)
        found.append((await poll(runner, daemon)).matched)
        return found

    try:
        found = with_pool(runner, steps)
        matched = {r["url"]: r["watch"] for r in schema.rows(
            store, "SELECT a.url, m.watch FROM matches m JOIN articles a "
                   "ON a.id = m.article_id ORDER BY m.watch")}
    finally:
        store.close()

    assert found == [1, 1, 1]
    assert matched == {site.url("/a/1"): "Atta Mohammad Noor",
                       site.url("/a/2"): "Ahmad Massoud",
                       site.url("/a/4"): "Ahmad Massoud"}


def test_a_worker_without_the_matcher_is_sent_the_watchlists_again(
        project: Project, site: Site, receiver: Receiver) -> None:
    """Once every worker has built a version's matcher, tasks go without the watchlists;
    one that has lost it asks, and gets the task again with them."""
    items: list[Item] = []
    local_feed(project, site, receiver, items)
    config = project.config()
    store = SQLiteStore(config.database_path)
    clock = FakeClock()
    runner = Runner(config, store, clock=clock, workers=1, worker_hook=forget_matchers)

    async def polls(_: Pipeline, daemon: _Work, __: _ConfigWatcher) -> list[int]:
        found = []
        for n in range(3):
            items.append(Item(f"Noor {n}", site.url(f"/a/{n}"), "Atta Mohammad Noor.", str(n)))
            site.pages["/feed.xml"] = Page(rss(items))
            clock.advance(3600)
            found.append((await poll(runner, daemon)).matched)
        return found

    try:
        assert with_pool(runner, polls) == [1, 1, 1]
    finally:
        store.close()


def test_polls_matching_at_once_in_threads_build_the_matcher_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``workers: 0``: each poll matches in a thread; eight at once, at 10,000 watch items,
    would otherwise build eight matchers of a second each."""
    built: list[int] = []
    real = Matcher.__init__

    def counted(self: Matcher, watchlists: Any) -> None:
        built.append(1)
        time.sleep(0.2)  # a build takes a while: the others ask meanwhile
        real(self, watchlists)

    monkeypatch.setattr(Matcher, "__init__", counted)
    watchlists = (WatchlistConfig(name="w", watch=[WatchItem(name="Atta Mohammad Noor")]),)
    item = Keyed.of(make_article(content_html="Atta Mohammad Noor spoke."))

    async def at_once() -> list[Prepared]:
        work = InProcess()
        return await asyncio.gather(*(work.prepare("S", [item], datetime.now(UTC),
                                                   Matching("once-only", watchlists))
                                      for _ in range(4)))

    assert [len(p.batch[0].matches) for p in asyncio.run(at_once())] == [1, 1, 1, 1]
    assert built == [1]


def test_what_a_worker_logs_the_daemon_logs_with_its_source(
        project: Project, site: Site, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    body = rss([Item("Noor in Mazar", site.url("/a/1"), "Atta Mohammad Noor spoke.", "1")])
    local_feed(project, site, receiver, [])
    site.pages["/feed.xml"] = Page(body.removesuffix(b"</channel></rss>"))  # cut short
    config = project.config()
    store = SQLiteStore(config.database_path)
    runner = Runner(config, store, workers=1)
    try:
        with caplog.at_level(logging.INFO):
            [result] = asyncio.run(runner.once()).polls
    finally:
        store.close()

    assert (result.error, result.new) == (None, 1)
    [line] = [r for r in caplog.records if "feed is not well-formed" in r.getMessage()]
    assert line.levelno == logging.WARNING and getattr(line, "source", None) == "Local"
    assert line.process != os.getpid(), "logged in the worker, handled here"


def every_error() -> list[type[NewswatchError]]:
    found: list[type[NewswatchError]] = []
    queue: list[type[NewswatchError]] = [NewswatchError]
    while queue:
        kind = queue.pop()
        found.append(kind)
        queue += kind.__subclasses__()
    return found


@pytest.mark.parametrize("kind", every_error(), ids=lambda k: k.__name__)
def test_every_newswatch_error_comes_back_from_a_worker_as_itself(
        kind: type[NewswatchError]) -> None:
    """What a worker raises is pickled to the daemon; an error that could not be
    rebuilt there would break the whole pool."""
    arguments: dict[type[NewswatchError], tuple[Any, ...]] = {
        errors.ConfigError: ([errors.ConfigProblem("f.yaml", 1, 2, "bad")],),
        errors.DeliveryError: ("hook", "HTTP 500", ),
        edit.EditError: ("w", "item", "bad"), edit.ChangedSince: ("w", "item", "bad"),
        edit.InvalidEdit: ("w", "item", [errors.ConfigProblem("f.yaml", 1, 2, "bad")]),
        edit.ReadOnly: ("w", "item", Path("/etc/w.yaml"), "read-only", "watchlists: []\n"),
    }
    if issubclass(kind, errors.HTTPStatusError):
        error = kind("Local", 503, "http://127.0.0.1/feed", 30.0)
    elif issubclass(kind, errors.SourceError):
        error = kind("Local", "no feed here")
    else:
        error = kind(*arguments.get(kind, ("what went wrong",)))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is kind and str(copy) == str(error) and vars(copy) == vars(error)


def test_daemon_workers_must_be_a_count(project: Project) -> None:
    project.hook("http://127.0.0.1:9/unused")
    project.settings["daemon"] = {"workers": -1}
    result = project.cli("check")
    assert result.returncode == 1
    assert re.search(r"newswatch\.yaml:\d+:\d+: workers: Input should be greater than or "
                     r"equal to 0", result.stderr), result.stderr
    project.settings["daemon"] = {"workers": True}
    assert project.cli("check").returncode == 1
    project.settings["daemon"] = {"workers": 0}
    assert project.cli("check").returncode == 0


def test_once_with_workers_stores_what_it_stores_without(
        project: Project, site: Site, receiver: Receiver) -> None:
    local_feed(project, site, receiver, [
        Item(f"Noor {n}", site.url(f"/a/{n}"), f"Atta Mohammad Noor spoke {n} times.", str(n))
        for n in range(5)])
    project.write()
    result = newswatch("--config", str(project.config_dir), "once", "--workers", "2",
                       "--json")
    assert result.returncode == 0, result.stderr
    assert '"new": 5' in result.stdout and '"matched": 5' in result.stdout


# --- the event loop while a big feed is ingested --------------------------------------------

TICK_S = 0.01


TEXT = ("governor elders province harvest traders road border closed week talks resumed "
         "ministry statement schools clinics districts reopened families water electricity "
         "prices wheat flour fuel markets winter delegations agreement analysts aid donors "
         "rights groups dialogue detainees summer offensive north east kabul balkh herat "
         "kandahar mazar bridge police council budget teachers doctors rain snow floods")


def big_feed(site: Site, megabytes: float) -> int:
    """A feed of distinct news-length items, ``megabytes`` long; some mention a watch
    item."""
    rng = random.Random(14)
    words = TEXT.split()
    items: list[Item] = []
    size = 0
    while size < megabytes * 1_000_000:
        n = len(items)
        mention = "Atta Mohammad Noor spoke. " if n % 50 == 0 else ""
        body = mention + " ".join(rng.choices(words, k=400))
        items.append(Item(f"Story {n} of the day", site.url(f"/big/{n}"), body, f"big-{n}"))
        size += len(body) + 200
    site.pages["/big.xml"] = Page(rss(items))
    return len(items)


@pytest.mark.slow
def test_the_event_loop_keeps_ticking_while_a_5_mb_feed_is_ingested(
        project: Project, site: Site, receiver: Receiver) -> None:
    """The daemon, in process with two workers, polls a 5 MB feed and delivers its
    alerts; a ticker coroutine wakes every 10 ms meanwhile, and how late each wake-up is,
    from the feed's request on, is the loop's lag: p99 under 100 ms (the issue's bound:
    generous, it catches a stall, not a slow machine). Parsing on the loop made it half a
    second."""
    count = big_feed(site, 5)
    project.hook(receiver.url("/hook"))
    project.settings["defaults"] = {"full_text": False}
    project.settings["daemon"] = {"tick": "1s"}
    project.sources = [{"name": "Big", "feed": site.url("/big.xml"), "max_bytes": "20MB"}]
    config = project.config()
    store = SQLiteStore(config.database_path)
    runner = Runner(config, store, workers=2)
    mentions = len(range(0, count, 50))
    ticks: list[tuple[float, float]] = []  # (when, how late)

    async def main() -> None:
        stop = asyncio.Event()
        daemon = asyncio.create_task(runner.run(stop))

        async def ticker() -> None:
            """Ticks due every 10 ms; one woken late stands for every tick due meanwhile
            (a 1 s stall is a hundred late ticks, not one)."""
            start, due = time.monotonic(), 1
            while not stop.is_set():
                await asyncio.sleep(max(0.0, start + due * TICK_S - time.monotonic()))
                woke = time.monotonic()
                while start + due * TICK_S <= woke:
                    ticks.append((woke, woke - (start + due * TICK_S)))
                    due += 1

        ticking = asyncio.create_task(ticker())
        deadline = time.monotonic() + 120
        while (len({h.headers["webhook-id"] for h in receiver.delivered()}) < mentions
               and time.monotonic() < deadline):
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(daemon, ticking)

    try:
        asyncio.run(main())
        [row] = store.sources()
        stored = schema.rows(store, "SELECT count(*) AS n FROM articles")[0]["n"]
    finally:
        store.close()

    assert row["last_error"] is None and stored == count
    # one alert per item naming Noor (a delivery retried on a loaded machine comes twice,
    # under the same id)
    assert len({h.headers["webhook-id"] for h in receiver.delivered()}) == mentions
    asked = site.requests_to("/big.xml")[0].at  # what start-up takes does not count
    lags = [late for when, late in ticks if when >= asked]
    p99 = statistics.quantiles(lags, n=100)[98]
    print(f"event loop lag over {len(lags)} ticks: p99 {p99 * 1000:.1f} ms, "
          f"max {max(lags) * 1000:.1f} ms")
    assert p99 < 0.1, f"p99 lag {p99 * 1000:.0f} ms over {len(lags)} ticks"


@pytest.mark.slow
def test_a_daemon_killed_leaves_no_worker_behind(project: Project, site: Site) -> None:
    """SIGKILL gives the daemon no chance to stop its workers: they see it gone and
    exit by themselves."""
    project.hook("http://127.0.0.1:9/unused")
    site.pages["/feed.xml"] = Page(rss([Item("Roads", site.url("/a/1"), "Roads.", "1")]))
    project.settings["daemon"] = {"workers": 2, "tick": "1s"}
    project.settings["defaults"] = {"full_text": False}
    project.sources = [{"name": "Local", "feed": site.url("/feed.xml")}]
    daemon, lines = project.run_logged()
    try:
        assert wait_until(lambda: all(any(text in line for line in lines) for text in (
            "2 worker process(es) started", "1 new article(s)")), 60), "".join(lines)
        workers = children(daemon.pid)
        assert len(workers) >= 3, workers  # the fork server and its workers
    finally:
        daemon.kill()
        daemon.wait(10)
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 10), \
        [pid for pid in workers if alive(pid)]


def children(parent: int) -> list[int]:
    """Every process descended from ``parent`` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, queue = [], [parent]
    while queue:
        pid = queue.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        found += kids
        queue += kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_the_workers_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """``make bench-workers``, tiny: both modes store every article and a ratio is
    reported."""
    from benchmarks import workers as bench

    assert bench.main(["--feeds", "2", "--items", "5", "--watch", "20", "--runs", "1"]) == 0
    report = capsys.readouterr().out
    assert "10 articles stored by each" in report
    assert re.search(r"ratio\s+\d+\.\d\dx\s+\d+\.\d\dx", report), report


def test_a_matcher_built_for_a_poll_leaves_the_collector_a_settled_heap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its millions of long-lived objects are frozen out of the collector's full passes
    (each would walk them all), once per build, not per poll."""
    import gc

    from crawler.app import workers

    settled: list[int] = []
    real = workers.settle_heap
    monkeypatch.setattr(workers, "settle_heap", lambda: settled.append(1) or real())
    watchlists = (WatchlistConfig(name="w", watch=[WatchItem(name="Hanif Atmar")]),)
    gc.unfreeze()
    try:
        built = workers.matcher("settle-test-1", watchlists)
        assert gc.get_freeze_count() > 0
        assert workers.matcher("settle-test-1", watchlists) is built
        assert settled == [1]  # the cached matcher settles nothing again
        assert built.match(make_article(title="Hanif Atmar spoke"))
    finally:
        gc.unfreeze()
