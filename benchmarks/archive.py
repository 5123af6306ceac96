"""Archive: ingest generated articles with matching, clustering and full-text search on.

Not part of CI. Run with ``make bench-archive`` (or ``python -m benchmarks.archive --help``).

It generates ``--articles`` news-like articles from a seeded generator (about 180 words
each, one in five a lightly edited copy of an earlier one, one in four naming a watched
person), ingests them into a fresh database through ``Pipeline.ingest`` in polls of
``--batch`` articles (dedup, extraction, matching, story assignment, the FTS5 index and
alert planning, each poll one transaction), and reports articles/s and database bytes
per 1,000 articles. Then it runs ``--queries`` phrase searches (newest 20, as
``newswatch search`` does) and reports their median and 95th-percentile latency; with
``--preview``, the time the watch-item editor's preview of an edit (an alias added to the
first item) takes to its first batch and over the whole archive.

The watchlist holds ``--watch-items`` people (default 10,000, the size the targets are
set at): six fixed names and generated ones (``benchmarks.matching.people``: multi-word
names with transliterated and Arabic-script aliases); mentions are drawn from all of them.
The matcher is built before the clock starts.

Beside it, in the same run, the floor: a plain ``sqlite3`` ``executemany`` insert of the
same rows into a bare ``articles`` table (no keys, matches, stories or index), with the
same ``synchronous=NORMAL`` WAL settings. The report gives newswatch's throughput and
size as ratios of that floor, since absolute times drift on a shared machine. Rates are
given per second of wall time and per second of this process's CPU time (all threads),
which drifts less when other work shares the machine. ``--profile FILE`` writes a
cProfile of the ingest, timed in CPU time, with the store's calls on the event loop's
thread so that one profiler sees them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import httpx

from benchmarks.matching import people
from crawler.app import preview
from crawler.app.pipeline import Pipeline
from crawler.config import edit, load_config
from crawler.core.article import Article
from crawler.process.search import parse_query
from crawler.store import SQLiteStore, Store
from crawler.store.threaded import ThreadedStore

P = ParamSpec("P")
R = TypeVar("R")

NAMES = ["Ahmad Massoud", "Atta Mohammad Noor", "Yunus Qanuni", "Hanif Atmar",
         "Mohammad Mohaqiq", "Abdul Rashid Dostum"]
VOCABULARY = """government province officials said talks security border trade meeting
council minister election women schools education aid agencies district police ceasefire
delegation envoy capital statement reporters critics supporters opposition resistance
regional neighbours railway water drought earthquake refugees returnees economy prices
wheat market bank currency sanctions embassy visit agreement parliament commission court
rights detainees prisoners journalists media radio television clinic hospital doctors
winter roads villages farmers harvest"""
WORDS = VOCABULARY.split()
PLACES = ["Kabul", "Herat", "Mazar-i-Sharif", "Kandahar", "Panjshir", "Balkh", "Badakhshan",
          "Kunduz", "Tashkent", "Dushanbe", "Ankara", "Doha", "Islamabad", "Tehran"]


class FixedClock:
    def __init__(self, start: datetime) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment


def watched(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` watch items: the fixed ``NAMES`` first, then generated people."""
    items: list[dict[str, Any]] = [{"name": name} for name in NAMES[:count]]
    fixed = set(NAMES)
    for person in people(count * 2, random.Random(seed)):
        if len(items) >= count:
            break
        if person.latin not in fixed:
            items.append({"name": person.latin, "aliases": list(person.aliases)})
    return items


def generate(count: int, seed: int, names: list[str] = NAMES) -> list[Article]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    articles: list[Article] = []
    for n in range(count):
        when = start + timedelta(seconds=n * 30)
        if n > 10 and rng.random() < 0.2:  # a copy: new URL, retitled, one paragraph changed
            base = articles[rng.randrange(max(0, n - 500), n)]
            paragraphs = base.content_html.split("\n")
            paragraphs[rng.randrange(len(paragraphs))] = sentence(rng, 30)
            articles.append(Article(f"outlet-{n % 40}", f"https://copy{n}.example/a/{n}",
                                    f"https://copy{n}.example/a/{n}",
                                    f"{base.title} – Outlet {n % 40}",
                                    content_html="\n".join(paragraphs), published_at=when))
            continue
        paragraphs = [sentence(rng, 36) for _ in range(5)]
        if rng.random() < 0.25:
            paragraphs[rng.randrange(5)] += f" {rng.choice(names)} said on {rng.choice(PLACES)}."
        title = " ".join(rng.choice(WORDS) for _ in range(7)).capitalize()
        articles.append(Article(f"outlet-{n % 40}", f"https://news.example/a/{n}",
                                f"https://news.example/a/{n}", title,
                                content_html="\n".join(paragraphs), published_at=when))
    return articles


def sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS + PLACES) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def config_dir(root: Path, watch: list[dict[str, Any]]) -> Path:
    directory = root / "config"
    directory.mkdir()
    (directory / "newswatch.yaml").write_text(json.dumps({
        "database": str(root / "newswatch.db"),
        "channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/unused"}}}))
    (directory / "sources.yaml").write_text(json.dumps({"sources": [
        {"name": f"outlet-{n}", "feed": f"http://127.0.0.1:9/{n}"} for n in range(40)]}))
    (directory / "watchlists.yaml").write_text(json.dumps({"watchlists": [{
        "name": "opposition", "channels": ["hook"],
        "watch": watch}]}))
    return directory


class TimedStore(ThreadedStore):
    """Adds up the CPU time of ``add_articles`` (storing a poll: dedup re-check, story
    placement, alert planning, the writes), on whichever thread it runs. ``inline``: store
    calls run on the event loop's thread, so that one profiler sees them all."""

    def __init__(self, store: Store, inline: bool) -> None:
        super().__init__(store)
        self.inline = inline
        self.storing = 0.0

    async def _run(self, method: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        def timed() -> R:
            started = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                if getattr(method, "__name__", "") == "add_articles":
                    self.storing += time.thread_time() - started
        if self.inline:
            return timed()
        return await super()._run(timed)


def bytes_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def run_newswatch(root: Path, articles: list[Article], batch: int,
                  watch: list[dict[str, Any]], profile: Path | None = None) -> dict[str, Any]:
    config = load_config(config_dir(root, watch))
    store: Store = SQLiteStore(config.database_path)
    clock = FixedClock(articles[0].published_at or datetime.now(UTC))
    store.sync_sources(config.active_sources(), clock.now())

    adapter = TimedStore(store, inline=profile is not None)

    async def ingest() -> tuple[float, float]:
        async with httpx.AsyncClient() as client:
            pipeline = Pipeline(config, adapter, client, clock, "bench")
            profiler = cProfile.Profile(time.process_time) if profile else None
            started, cpu = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            for i in range(0, len(articles), batch):
                chunk = articles[i:i + batch]
                clock.moment = chunk[-1].published_at or clock.moment
                await pipeline.ingest(chunk[0].source, chunk)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            if profiler and profile:
                profiler.disable()
                profiler.dump_stats(profile)
            return seconds, cpu

    seconds, cpu = asyncio.run(ingest())
    store.close()  # the last connection out checkpoints the WAL into the file
    with contextlib.closing(sqlite3.connect(f"file:{config.database_path}?mode=ro",
                                            uri=True)) as conn:  # counts, read-only
        stories = conn.execute("SELECT count(*) FROM stories").fetchone()[0]
        alerts = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    size = bytes_of(config.database_path)
    store = SQLiteStore(config.database_path)
    return {"seconds": seconds, "cpu": cpu, "storing": adapter.storing, "store": store,
            "stories": stories, "alerts": alerts,
            "bytes": size}


def run_floor(root: Path, articles: list[Article]) -> dict[str, Any]:
    path = root / "floor.db"
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, url TEXT, link TEXT, "
                 "guid TEXT, source TEXT, title TEXT, summary TEXT, text TEXT, "
                 "published_at TEXT, fetched_at TEXT)")
    rows = [(a.url, a.link, a.guid, a.source, a.title, "", a.content_html,
             a.published_at.isoformat() if a.published_at else None, "") for a in articles]
    started, cpu = time.perf_counter(), time.process_time()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO articles (url, link, guid, source, title, summary, text, "
                     "published_at, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"seconds": seconds, "cpu": cpu, "bytes": bytes_of(path)}


def searches(store: Store, count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    latencies = []
    for _ in range(count):
        phrase = " ".join(rng.choice(WORDS) for _ in range(2))
        query = parse_query(f'"{phrase}"')
        started = time.perf_counter()
        store.search(query, order="newest", limit=20)
        latencies.append(time.perf_counter() - started)
    return latencies


def preview_times(root: Path, store: Store) -> dict[str, Any]:
    """The desk's preview of an edit (an alias added to the first watch item) over the
    whole archive, as the form starts it (the edit applied in memory): the time to its
    first batch and to its last; and the time to edit and validate the file (a save's)."""
    directory = root / "config"
    before = load_config(directory)
    loaded = edit.load(directory)
    new = edit.item_value(loaded.text, "opposition", NAMES[0]).changed(
        add_aliases=["Massoud"])
    started = time.perf_counter()
    after = edit.applied(before, new, NAMES[0])
    running = preview.ItemPreview(store, before, after, "opposition", NAMES[0], NAMES[0],
                                  datetime(2000, 1, 1, tzinfo=UTC))
    batches = iter(running)
    first = next(batches)
    first_s = time.perf_counter() - started
    last = first
    for batch in batches:
        last = batch
    whole_s = time.perf_counter() - started
    started = time.perf_counter()
    edit.validate(directory, edit.edit(loaded.text, new), new)
    return {"preview_first_batch_ms": round(first_s * 1000, 1),
            "preview_first_batch_articles": first.scanned,
            "preview_whole_s": round(whole_s, 2),
            "preview_articles": last.scanned, "preview_counts": last.counts,
            "edit_and_validate_ms": round((time.perf_counter() - started) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=50, help="articles per poll")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--watch-items", type=int, default=10_000,
                        help="people in the watchlist (6: the six fixed names alone)")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="write a cProfile of the ingest to FILE (pstats format)")
    parser.add_argument("--preview", action="store_true",
                        help="also time the watch-item editor's preview over the archive "
                             "(time to its first batch, and to the end)")
    args = parser.parse_args()
    watch = watched(args.watch_items, args.seed)
    articles = generate(args.articles, args.seed, [item["name"] for item in watch])
    with tempfile.TemporaryDirectory(prefix="newswatch-archive-") as tmp:
        root = Path(tmp)
        floor = run_floor(root, articles)
        ours = run_newswatch(root, articles, args.batch, watch, args.profile)
        latencies = searches(ours["store"], args.queries, args.seed)
        previewed = preview_times(root, ours["store"]) if args.preview else {}
        ours["store"].close()
    per_k = 1000 / args.articles
    rate, floor_rate = args.articles / ours["seconds"], args.articles / floor["seconds"]
    # CPU time (all threads) drifts less than wall time when others share the machine
    cpu_rate, floor_cpu_rate = (args.articles / ours["cpu"],
                                args.articles / max(floor["cpu"], 1e-9))
    p95 = statistics.quantiles(latencies, n=20)[-1]
    report = {
        "articles": args.articles, "batch": args.batch, "watch_items": len(watch),
        "stories": ours["stories"],
        "alerts_queued": ours["alerts"],
        "newswatch_articles_per_s": round(rate, 1),
        "floor_articles_per_s": round(floor_rate, 1),
        "throughput_ratio_to_floor": round(rate / floor_rate, 4),
        "newswatch_articles_per_cpu_s": round(cpu_rate, 1),
        "floor_articles_per_cpu_s": round(floor_cpu_rate, 1),
        "cpu_throughput_ratio_to_floor": round(cpu_rate / floor_cpu_rate, 4),
        "add_articles_cpu_ms_per_article": round(ours["storing"] * 1000 / args.articles, 3),
        "add_articles_cpu_share": round(ours["storing"] / ours["cpu"], 3),
        "newswatch_bytes_per_1000": round(ours["bytes"] * per_k),
        "floor_bytes_per_1000": round(floor["bytes"] * per_k),
        "size_ratio_to_floor": round(ours["bytes"] / floor["bytes"], 2),
        "phrase_search_newest20_median_ms": round(statistics.median(latencies) * 1000, 2),
        "phrase_search_newest20_p95_ms": round(p95 * 1000, 2),
    }
    print(f"archive: {args.articles} articles in polls of {args.batch}, "
          f"{len(watch)} watch items, "
          f"{ours['stories']} stories, {ours['alerts']} alerts queued")
    print(f"{'':28}{'newswatch':>14}{'sqlite3 floor':>16}{'ratio':>10}")
    print(f"{'articles/s':28}{rate:>14.1f}{floor_rate:>16.1f}{rate / floor_rate:>10.4f}")
    print(f"{'articles per CPU second':28}{cpu_rate:>14.1f}{floor_cpu_rate:>16.1f}"
          f"{cpu_rate / floor_cpu_rate:>10.4f}")
    print(f"storing (add_articles, alert planning included): "
          f"{report['add_articles_cpu_ms_per_article']} ms CPU per article, "
          f"{report['add_articles_cpu_share']:.0%} of the ingest's CPU time")
    print(f"{'MB per 1,000 articles':28}{ours['bytes'] * per_k / 1e6:>14.2f}"
          f"{floor['bytes'] * per_k / 1e6:>16.2f}{ours['bytes'] / floor['bytes']:>10.2f}")
    print(f"phrase search, newest 20: median {report['phrase_search_newest20_median_ms']} ms, "
          f"p95 {report['phrase_search_newest20_p95_ms']} ms ({args.queries} queries)")
    if previewed:
        report.update(previewed)
        print(f"edit preview over {previewed['preview_articles']} articles: first batch "
              f"({previewed['preview_first_batch_articles']} articles) in "
              f"{previewed['preview_first_batch_ms']} ms, all in "
              f"{previewed['preview_whole_s']} s")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
