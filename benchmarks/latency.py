"""Latency of one new item: a 30-item feed polled again with one new item that names a
watched person (full text off, 10,000 watch items), from the response's last byte to the
outbox commit.

Not part of CI (a smoke test runs it tiny). Run with ``make bench-latency`` (or
``python -m benchmarks.latency --help``).

One source serves a 30-item feed (``benchmarks.ingest``'s generated news) from a local
HTTP server; a first pass stores the 30 items, then each round replaces the oldest item
with a new one naming a watched person and polls once more, in this process
(``Runner.once``, ``workers: 0``). The time a round spends after the response arrived
is the sum of the stages the pipeline times itself (``newswatch_stage_seconds``: parse,
dedup, extract, match, fold, fingerprint, store and plan, the store stage ending with
the outbox commit), read as the difference of the summary's sums before and after the
round. The fetch, the scheduling and the delivery are not in it. The floor beside it is
feedparser parsing the same 30 items, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser

from benchmarks.ingest import STAGES, config_dir, serve
from benchmarks.matching import EN_WORDS, Person, corpus, people


def items(count: int, pool: Sequence[Person], rng: random.Random,
          naming: bool) -> list[str]:
    """``count`` RSS items of generated news; with ``naming``, each opens with one of
    ``pool``'s names."""
    found: list[str] = []
    now = format_datetime(datetime.now(UTC), usegmt=True)
    for article in corpus(EN_WORDS, pool, count, rng, "en"):
        text = f"{rng.choice(pool).latin} said on Tuesday. {article.text}" if naming \
            else article.text
        n = rng.getrandbits(48)
        found.append(f"<item><title>{escape(article.title)}</title>"
                     f"<link>https://outlet.example/news/{n}</link>"
                     f'<guid isPermaLink="false">item-{n}</guid><pubDate>{now}</pubDate>'
                     f"<description>{escape(text)}</description></item>")
    return found


def document(entries: list[str]) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            "<title>Outlet</title><link>https://outlet.example/</link>"
            f"<description>news</description>{''.join(entries)}</channel></rss>").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watch", type=int, default=10_000, help="watch items")
    parser.add_argument("--rounds", type=int, default=25, help="polls with one new item")
    parser.add_argument("--items", type=int, default=30, help="items in the feed")
    args = parser.parse_args()

    from crawler.app.daemon import Runner
    from crawler.config import load_config
    from crawler.store import SQLiteStore

    rng = random.Random(30)
    pool = people(args.watch, rng)
    entries = items(args.items, pool, rng, naming=False)
    fresh = items(args.rounds, pool, rng, naming=True)
    documents = [document(entries)]
    with tempfile.TemporaryDirectory() as tmp, serve(documents) as port:
        config = load_config(config_dir(Path(tmp), "latency", port, 1, "f", pool,
                                        concurrency=1))
        store = SQLiteStore(config.database_path)
        runner = Runner(config, store)
        registry = runner.metrics.registry

        def spent() -> dict[str, float]:
            return {s: registry.get_sample_value("newswatch_stage_seconds_sum",
                                                 {"stage": s}) or 0.0 for s in STAGES}

        first = asyncio.run(runner.once())
        assert sum(p.new for p in first.polls) == args.items, "the first pass stores all"
        rounds: list[dict[str, float]] = []
        for new in fresh:
            entries = [new, *entries[:-1]]
            documents[0] = document(entries)
            before = spent()
            report = asyncio.run(runner.once())
            after = spent()
            assert sum(p.new for p in report.polls) == 1, "one new item each round"
            rounds.append({s: after[s] - before[s] for s in STAGES})
        alerts = store.alert_counts()
        store.close()

        floor = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            feedparser.parse(documents[0])
            floor.append(time.perf_counter() - started)

    totals = sorted(sum(r.values()) * 1000 for r in rounds)
    median = statistics.median(totals)
    p95 = statistics.quantiles(totals, n=20)[18] if len(totals) >= 2 else totals[0]
    parse_floor = statistics.median(floor) * 1000
    print(f"{args.items}-item feed, one new item naming a watched person, "
          f"{args.watch} watch items, {args.rounds} rounds")
    print(f"  response to outbox commit: median {median:.1f} ms, p95 {p95:.1f} ms "
          f"(target: median <= 60 ms)")
    print(f"  floor, feedparser over the same feed: median {parse_floor:.1f} ms "
          f"({median / parse_floor:.2f}x)")
    for stage in STAGES:
        print(f"  {stage:<12} {statistics.median(r[stage] for r in rounds) * 1000:7.2f} ms")
    print(json.dumps({"items": args.items, "watch_items": args.watch, "rounds": args.rounds,
                      "median_ms": round(median, 2), "p95_ms": round(p95, 2),
                      "feedparser_median_ms": round(parse_floor, 2),
                      "stage_median_ms": {s: round(statistics.median(r[s] for r in rounds)
                                                   * 1000, 3) for s in STAGES},
                      "alerts": alerts}, indent=1))


if __name__ == "__main__":
    main()
