"""Desk: the stories page and search at 200,000 stored articles, idle and while a writer
process ingests.

Not part of CI. Run with ``make bench-desk`` (or ``python -m benchmarks.desk --help``).

It builds a database of ``--articles`` generated articles: English from
``benchmarks.archive.generate`` (one in five a copy of an earlier one, one in four naming
a watched person) and, one in ``--dari-every``, Dari/Pashto from
``benchmarks.matching.corpus`` (naming people in Arabic script), spread over
``--days`` days. Each is made ready as the pipeline makes it (dedup keys, the real
``Matcher`` over ``--watch-items`` people in three watchlists, story fingerprint,
comparable index text) in worker processes, and stored through ``Store.add_articles``
in polls of ``--batch``: the same tables, indexes and stories the daemon writes.

Then, in the same run, it times ``--queries`` of each of the desk's reads, as
p50/p95 in ms: the stories list's first page (no filter; by watchlist; by watch item,
half common and half rare people; by source; by script) and a deep page (a cursor
90 % down the list); and search, newest 20, over a mix of half rare names (phrases
of generated people) and half common words, last stored first (the desk's order) in
the desk's default last 30 days and widened to everything, and newest published first
(``newswatch search``'s order, which sorts every hit) in the last 30 days. Then again
while another process stores a poll of ``--writer-batch`` new articles every
``--writer-pause`` seconds, as a daemon does.
``--database postgresql://…`` runs it on PostgreSQL instead (an empty database, built
as above then analysed, or one a run built before, reused).

The HTTP pass: the desk's app served by uvicorn on 127.0.0.1 in a process of its own (as
``newswatch desk`` serves it, its clock at the archive's last day), signed in with a
session, times ``--queries`` GETs of the stories page and of ``/search`` over the same
query mix (the page's default last 30 days, and widened to everything), whole responses
as a browser gets them, idle and while the writer ingests.
The issue's target is p95 under 300 ms for the stories page and search; this reports
figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import psycopg
from argon2 import PasswordHasher

from benchmarks.archive import generate, watched
from benchmarks.matching import FA_WORDS, corpus, people
from crawler.app.desk import app as desk_app
from crawler.app.desk import server as desk_server
from crawler.app.desk.host import Answer, Host, json_answer
from crawler.config import Source, WatchItem, WatchlistConfig, load_config
from crawler.core.article import Article
from crawler.core.redact import DATABASE_URL
from crawler.process import dedup, search, stories
from crawler.process.match import Matcher
from crawler.process.search import parse_query
from crawler.store import (
    NewArticle,
    PostgresStore,
    SQLiteStore,
    Store,
    ThreadedStore,
    open_store,
)
from crawler.store.desk import StoryFilter

WATCHLISTS = ("opposition", "officials", "regional")
OUTLETS = 40
DARI_OUTLETS = 8
START = datetime(2026, 9, 1, tzinfo=UTC)
#: The watch items the articles name; the others are never named.
MENTIONED = 200
#: The common words of the query mix.
WORDS = ["province", "officials", "security", "border", "trade", "minister", "election",
         "schools", "police", "ceasefire", "market", "water"]

_matcher: Matcher | None = None


def watchlists(items: Sequence[dict[str, Any]]) -> list[WatchlistConfig]:
    """The watch items dealt over three watchlists, each with its Dari alias."""
    lists: list[list[WatchItem]] = [[] for _ in WATCHLISTS]
    for n, item in enumerate(items):
        lists[n % len(WATCHLISTS)].append(WatchItem(name=item["name"],
                                                    aliases=list(item.get("aliases", []))))
    return [WatchlistConfig(name=name, watch=watch)
            for name, watch in zip(WATCHLISTS, lists, strict=True)]


def _init(items: list[dict[str, Any]]) -> None:
    global _matcher
    _matcher = Matcher(watchlists(items))


def ready(article: Article) -> NewArticle:
    """An article as the pipeline hands it to the store."""
    assert _matcher is not None
    document = search.document(article)
    return NewArticle(article, dedup.keys(article), _matcher.match(article),
                      stories.fingerprint(document), document)


def _ready_all(chunk: list[Article]) -> list[NewArticle]:
    return [ready(a) for a in chunk]


def articles(count: int, seed: int, items: list[dict[str, Any]], dari_every: int,
             salt: str = "") -> list[Article]:
    """``count`` articles, English and (one in ``dari_every``) Dari, as extraction leaves
    them (plain text), each of its outlet."""
    dari_count = count // dari_every if dari_every else 0
    english = generate(count - dari_count, seed, [i["name"] for i in items[:MENTIONED]])
    rng = random.Random(seed)
    pool = people(MENTIONED, random.Random(seed))  # watched() draws the same people
    dari = corpus(FA_WORDS, pool, dari_count, rng, "fa") if dari_count else []
    dari_left = iter([replace(a, source=f"dari-{n % DARI_OUTLETS}", url=f"{a.url}{salt}",
                              link=f"{a.url}{salt}", summary=a.text[:300], language="fa")
                      for n, a in enumerate(dari)])
    made: list[Article] = []
    for n, a in enumerate(english, start=1):  # in order: a copy comes soon after its original
        made.append(replace(a, url=a.url + salt, link=a.link + salt,
                            summary=a.content_html[:300], text=a.content_html,
                            content_html=""))
        if dari_every > 1 and n % (dari_every - 1) == 0:
            made.extend(islice(dari_left, 1))
    made.extend(dari_left)
    return made


def opened(where: Path | str) -> Store:
    """The store at ``where``: a PostgreSQL URL, or a SQLite file."""
    return PostgresStore(str(where)) if DATABASE_URL.match(str(where)) else SQLiteStore(where)


def built(where: Path | str) -> bool:
    """Whether ``where`` holds a database a run built before (reused as it is)."""
    if not DATABASE_URL.match(str(where)):
        return Path(where).exists()
    store = opened(where)
    try:
        return store.count_archive(START - timedelta(days=1)) > 0
    finally:
        store.close()


def sources() -> list[Source]:
    names = [f"outlet-{n}" for n in range(OUTLETS)] + \
        [f"dari-{n}" for n in range(DARI_OUTLETS)]
    return [Source(name, f"http://127.0.0.1:9/{name}", 600, 20, "bench", 1000)
            for name in names]


def build(path: Path | str, made: list[Article], items: list[dict[str, Any]], batch: int,
          days: int) -> float:
    """Store ``made`` in polls of ``batch``, spread evenly over ``days`` days; seconds."""
    store = opened(path)
    store.sync_sources(sources(), START)
    step = timedelta(days=days) / max(1, len(made) // batch)
    started = time.perf_counter()
    chunks = [made[i:i + batch] for i in range(0, len(made), batch)]
    with multiprocessing.Pool(initializer=_init, initargs=(items,)) as pool:
        for n, prepared in enumerate(pool.imap(_ready_all, chunks)):
            store.add_articles(prepared, START + n * step, "bench", lambda *_: [])
    seconds = time.perf_counter() - started
    store.close()
    if DATABASE_URL.match(str(path)):  # the statistics autovacuum would have gathered
        # (a test server may run without it): the planner's choices depend on them
        with psycopg.connect(str(path), autocommit=True) as conn:
            conn.execute("ANALYZE")
    return seconds


def writer(path: str, made: list[Article], items: list[dict[str, Any]], batch: int,
           pause: float, now: datetime, stop: Any, stored: Any) -> None:
    """A daemon's ingest: a poll of ``batch`` new articles, then ``pause`` seconds."""
    _init(items)
    store = opened(path)
    n = 0
    while not stop.is_set() and n < len(made):
        polled = [ready(a) for a in made[n:n + batch]]
        store.add_articles(polled, now, "bench", lambda *_: [])
        n += batch
        stored.value = n
        time.sleep(pause)
    store.close()


USER, PASSWORD = "bench", "a benchmark password"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def desk_config(root: Path, database: Path | str, items: list[dict[str, Any]]) -> Path:
    """A config directory for the desk over the benchmark's database and watch items."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "newswatch.yaml").write_text(json.dumps({
        "database": str(database), "timezone": "UTC",
        "http": {"listen": "127.0.0.1:9108", "desk": True}}))
    (root / "sources.yaml").write_text(json.dumps({"sources": [
        {"name": s.name, "feed": s.urls[0]} for s in sources()]}))
    (root / "watchlists.yaml").write_text(json.dumps({"watchlists": [
        {"name": w.name, "watch": [{"name": i.name, "aliases": i.aliases} for i in w.watch]}
        for w in watchlists(items)]}, ensure_ascii=False))
    store = opened(database)
    # a cheap argon2id hash: the pass times pages, not the one sign-in
    store.add_user(USER, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
                   .hash(PASSWORD), START)
    store.close()
    return root


class _Fixed:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now


def serve(config_dir: str, now: datetime, port: Any, stop: Any) -> None:
    """The desk's app on uvicorn on 127.0.0.1, its clock at ``now``, until ``stop``."""
    config = load_config(Path(config_dir))

    async def main() -> None:
        store = ThreadedStore(open_store(config))

        async def healthz() -> Answer:
            return json_answer(200, {"status": "ok"})

        host = Host(config=lambda: config, store=store, clock=_Fixed(now), healthz=healthz)
        serving = await desk_server.serve(desk_app.build(host, desk=True), "127.0.0.1", 0)
        port.value = serving.port
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await serving.stop()
        store.shutdown()
        store.sync.close()

    asyncio.run(main())


def signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, trust_env=False, timeout=60, follow_redirects=True)
    form = client.get("/login")
    token = _CSRF.search(form.text)
    assert token, "no CSRF token on the login page"
    done = client.post("/login", data={"csrf": token.group(1), "username": USER,
                                       "password": PASSWORD, "next": "/"})
    assert done.status_code == 200 and done.url.path == "/", "sign-in failed"
    return client


def measure_http(base: str, items: list[dict[str, Any]], queries: int,
                 seed: int) -> dict[str, dict[str, float]]:
    """GETs of the stories page and of search, whole responses, signed in."""
    rng = random.Random(seed)
    names = [i["name"] for i in items[:MENTIONED]]

    def query() -> str:  # half rare names, half common words, as ``measure``
        return f'"{rng.choice(names)}"' if rng.random() < 0.5 else rng.choice(WORDS)

    def get(path: str, **params: str) -> None:
        answer = client.get(path, params=params)
        assert answer.status_code == 200, (path, params, answer.status_code)

    client = signed_in(base)
    reads: dict[str, Callable[[], object]] = {
        "http_stories_page": lambda: get("/"),
        "http_search_30_days": lambda: get("/search", q=query()),
        "http_search_everything": lambda: get("/search", q=query(), within="all"),
    }
    try:
        get("/")  # warm: templates compiled, the watch items' spellings folded
        get("/search", q="warm")
        return {name: figures([timed(read) for _ in range(queries)])
                for name, read in reads.items()}
    finally:
        client.close()


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2)}


def measure(path: Path | str, items: list[dict[str, Any]], queries: int, seed: int,
            now: datetime) -> dict[str, dict[str, float]]:
    """Each read ``queries`` times on a connection of its own (the desk's)."""
    store = opened(path)
    rng = random.Random(seed)
    every = store.story_list(limit=1)
    top = every.newest or 0
    shown = [r.id for r in store.story_list(limit=200).rows] or [0]
    names = [i["name"] for i in items[:MENTIONED]]  # each in a few hundred articles
    never = [i["name"] for i in items[MENTIONED:]] or names

    def query() -> search.Query:  # half rare names, half common words
        return parse_query(f'"{rng.choice(names)}"' if rng.random() < 0.5
                           else rng.choice(WORDS))

    reads: dict[str, Callable[[], object]] = {
        "stories_first_page": lambda: store.story_list(),
        "stories_by_watchlist": lambda: store.story_list(
            StoryFilter(watchlist=rng.choice(WATCHLISTS))),
        "stories_by_watch_item": lambda: store.story_list(
            StoryFilter(watch=rng.choice(names))),
        "stories_by_unseen_watch_item": lambda: store.story_list(
            StoryFilter(watch=rng.choice(never))),
        "stories_by_source": lambda: store.story_list(
            StoryFilter(source=f"outlet-{rng.randrange(OUTLETS)}")),
        "stories_by_script_arabic": lambda: store.story_list(StoryFilter(script="arabic")),
        "stories_by_script_latin": lambda: store.story_list(StoryFilter(script="latin")),
        "stories_last_24h": lambda: store.story_list(
            StoryFilter(since=now - timedelta(days=1))),
        "stories_deep_page": lambda: store.story_list(before=rng.randrange(
            top // 20, top // 10 + 2)),
        "story_detail": lambda: store.story_detail(rng.choice(shown), now),
        "search_30_days": lambda: store.search(query(), since=now - timedelta(days=30),
                                               order="stored", limit=20),
        "search_everything": lambda: store.search(query(), order="stored", limit=20),
        "search_30_days_by_published": lambda: store.search(
            query(), since=now - timedelta(days=30), order="newest", limit=20),
    }
    found = {name: figures([timed(read) for _ in range(queries)])
             for name, read in reads.items()}
    store.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500, help="articles per stored poll")
    parser.add_argument("--days", type=int, default=90, help="the days they are spread over")
    parser.add_argument("--dari-every", type=int, default=5,
                        help="one article in this many is Dari (0: none)")
    parser.add_argument("--watch-items", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=40, help="timings per read")
    parser.add_argument("--writer-batch", type=int, default=50)
    parser.add_argument("--writer-pause", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--keep", type=Path, metavar="DB",
                        help="keep the built database here (reused when it exists)")
    parser.add_argument("--database", metavar="URL",
                        help="a PostgreSQL database to run on instead of a SQLite file")
    args = parser.parse_args()
    items = watched(args.watch_items, args.seed)
    now = START + timedelta(days=args.days)
    with tempfile.TemporaryDirectory(prefix="newswatch-desk-") as tmp:
        path: Path | str = args.database or args.keep or Path(tmp) / "desk.db"
        build_s = None
        if not built(path):
            made = articles(args.articles, args.seed, items, args.dari_every)
            build_s = build(path, made, items, args.batch, args.days)
        idle = measure(path, items, args.queries, args.seed, now)
        config_dir = desk_config(Path(tmp) / "config", path, items)
        port, serving = multiprocessing.Value("i", 0), multiprocessing.Event()
        server = multiprocessing.Process(target=serve, args=(str(config_dir), now, port,
                                                             serving), daemon=True)
        server.start()
        deadline = time.monotonic() + 60
        while port.value == 0 and server.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert port.value, "the desk did not start"
        base = f"http://127.0.0.1:{port.value}"
        http_idle = measure_http(base, items, args.queries, args.seed)
        fresh = articles(max(args.writer_batch * 400, 1000), args.seed + 1, items,
                         args.dari_every, salt=f"/live-{time.time_ns()}")
        stop, stored = multiprocessing.Event(), multiprocessing.Value("i", 0)
        process = multiprocessing.Process(target=writer, args=(
            str(path), fresh, items, args.writer_batch, args.writer_pause, now, stop,
            stored))
        process.daemon = True  # a failed pass leaves no process behind
        process.start()
        deadline = time.monotonic() + 120
        while stored.value == 0 and process.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)  # its first poll stored: it is ingesting
        started, before = time.perf_counter(), stored.value
        busy = measure(path, items, args.queries, args.seed + 1, now)
        http_busy = measure_http(base, items, args.queries, args.seed + 1)
        rate = (stored.value - before) / (time.perf_counter() - started)
        stop.set()
        process.join(timeout=120)
        serving.set()
        server.join(timeout=30)
    idle, busy = {**idle, **http_idle}, {**busy, **http_busy}
    report = {"articles": args.articles, "watch_items": len(items),
              "build_seconds": round(build_s, 1) if build_s else None,
              "queries_per_read": args.queries, "idle": idle,
              "while_ingesting": busy,
              "writer_articles_per_s": round(rate, 1)}
    print(f"desk: {args.articles} articles over {args.days} days, {len(items)} watch items"
          + (f", built in {build_s:.0f} s" if build_s else ""))
    print(f"{'read':30}{'idle p50':>10}{'p95':>9}{'ingesting p50':>15}{'p95':>9}  (ms)")
    for name in idle:
        print(f"{name:30}{idle[name]['p50_ms']:>10.1f}{idle[name]['p95_ms']:>9.1f}"
              f"{busy[name]['p50_ms']:>15.1f}{busy[name]['p95_ms']:>9.1f}")
    print(f"writer stored {rate:.0f} articles/s meanwhile")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
