"""Ingest: a whole ``newswatch once`` over local feeds, with a 10,000-item watchlist.

Not part of CI (a smoke test runs it tiny). Run with ``make bench-ingest`` (or
``python -m benchmarks.ingest --help``).

It serves ``--feeds`` RSS feeds of ``--items`` news-length items each (450-900 words of
generated English news; about a quarter name one of the watched people) from a local
HTTP server on 127.0.0.1, and writes a config with those feeds (full text off, no
delay), one watchlist of ``--watch`` generated people (names with spelling variants and
Dari aliases, as ``benchmarks/matching.py`` makes them) and one webhook channel with a
yearly digest: every alert is planned and stored, none is sent during the run. Then:

- **newswatch once**: ``newswatch once`` in a child process on a fresh database, timed
  from its start to its exit (interpreter start, config load and matcher build included),
  twice: in process (``--workers 0``, its default) and with worker processes as the
  daemon runs by default (``--workers N``, one per core; ``--workers`` here changes N);
- **startup**: each of the same over empty feeds on another fresh database: what a pass
  costs before its first article; the *steady-state* rate divides the articles by the
  difference of the two;
- **stages**: the same pass again in this process (``Runner.once``), one source at a time
  (``daemon.concurrency: 1``, so that no stage's time overlaps another poll's), reading
  the ``newswatch_stage_seconds`` summary the pipeline keeps: time per article in parse,
  dedup, extract, match, fold (the comparable text for the index and the fingerprint),
  fingerprint, store and plan; and, before it, the config load and matcher build;
- **floor**: the same feeds fetched with httpx, parsed by feedparser, and their entries
  inserted with one plain ``sqlite3`` ``executemany`` per feed (no keys, matching,
  stories, index or alerts), best of two runs, one before and one after newswatch's.

Since absolute times drift on a shared machine, newswatch's rates are reported as
ratios of the floor measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import feedparser
import httpx

from benchmarks.matching import EN_WORDS, corpus, people

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("parse", "dedup", "extract", "match", "fold", "fingerprint", "store", "plan")
YEARLY = "0 0 1 1 *"  # the digest: alerts are planned and kept, not sent during the run


def feeds(count: int, items: int, watch: int, seed: int) -> tuple[list[bytes], list[Any]]:
    """``count`` RSS documents of ``items`` items each, and the watched people."""
    rng = random.Random(seed)
    pool = people(watch, rng)
    now = format_datetime(datetime.now(UTC), usegmt=True)
    documents = []
    for n in range(count):
        entries = []
        for i, article in enumerate(corpus(EN_WORDS, pool, items, rng, "en")):
            words = article.text.split()
            paragraphs = [" ".join(words[p:p + 120]) for p in range(0, len(words), 120)]
            body = "".join(f"<p>{p}</p>" for p in paragraphs)
            entries.append(
                f"<item><title>{escape(article.title)}</title>"
                f"<link>https://outlet{n}.example/news/{i}</link>"
                f'<guid isPermaLink="false">outlet{n}-{i}</guid><pubDate>{now}</pubDate>'
                f"<description>{escape(body)}</description></item>")
        documents.append((f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0">'
                          f"<channel><title>Outlet {n}</title>"
                          f"<link>https://outlet{n}.example/</link>"
                          f"<description>news</description>{''.join(entries)}"
                          "</channel></rss>").encode())
    return documents, pool


@contextlib.contextmanager
def serve(documents: list[bytes]) -> Iterator[int]:
    """The feeds at /f<n>.xml and empty ones at /empty<n>.xml on 127.0.0.1; a webhook
    receiver at /hook (unused: the channel's digest is yearly). Yields the port."""
    empty = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Empty</title>'
             b"<link>https://empty.example/</link><description>x</description>"
             b"</channel></rss>")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no 40 ms wait for a delayed ACK between
        # the headers and the body on a kept-alive connection

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.strip("/").removesuffix(".xml")
            if name.startswith("empty"):
                body = empty
            elif name.startswith("f") and name[1:].isdigit() and int(name[1:]) < len(documents):
                body = documents[int(name[1:])]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "application/rss+xml")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def config_dir(root: Path, name: str, port: int, count: int, path: str,
               pool: list[Any], concurrency: int = 8) -> Path:
    """A config directory ``root/name`` over feeds ``/<path><n>.xml`` and a fresh
    database beside it."""
    directory = root / name
    directory.mkdir()
    (directory / "newswatch.yaml").write_text(json.dumps({
        "database": str(root / f"{name}.db"), "allow_private_networks": True,
        "daemon": {"concurrency": concurrency},
        "defaults": {"full_text": False, "delay": "0", "timeout": "120s",
                     "max_bytes": "64MiB"},
        "channels": {"hook": {"type": "webhook", "url": f"http://127.0.0.1:{port}/hook",
                              "digest": YEARLY}}}))
    (directory / "sources.yaml").write_text(json.dumps({"sources": [
        {"name": f"Outlet {n}", "feed": f"http://127.0.0.1:{port}/{path}{n}.xml"}
        for n in range(count)]}))
    (directory / "watchlists.yaml").write_text(json.dumps({"watchlists": [{
        "name": "people", "channels": ["hook"],
        "watch": [{"name": p.latin, "aliases": list(p.aliases)} for p in pool]}]}))
    return directory


def run_once(config: Path, *options: str) -> tuple[float, dict[str, Any]]:
    """``newswatch once --json OPTIONS`` in a child process: wall seconds and its
    report."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "crawler", "--config", str(config),
                           "--log-level", "warning", "once", "--json", *options], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"newswatch once failed ({done.returncode}):\n{done.stderr}")
    report = json.loads(done.stdout)
    errors = [s["error"] for s in report["sources"] if s["error"]]
    if errors:
        raise SystemExit(f"newswatch once: source errors: {errors[:3]}")
    return seconds, report


def run_stages(config: Path) -> tuple[float, int, dict[str, float]]:
    """The same pass in this process: wall seconds, articles stored, and the seconds
    spent per stage (``newswatch_stage_seconds_sum``), with ``config`` (the load) and
    ``matcher`` (one build, as the pass makes again)."""
    from crawler.app.daemon import Runner
    from crawler.config import load_config
    from crawler.process.match import Matcher
    from crawler.store import SQLiteStore

    started = time.perf_counter()
    loaded = load_config(config)
    loading = time.perf_counter() - started
    started = time.perf_counter()
    Matcher.for_config(loaded)
    building = time.perf_counter() - started
    store = SQLiteStore(loaded.database_path)
    runner = Runner(loaded, store)
    started = time.perf_counter()
    report = asyncio.run(runner.once())
    seconds = time.perf_counter() - started
    store.close()
    registry = runner.metrics.registry
    spent = {stage: registry.get_sample_value("newswatch_stage_seconds_sum",
                                              {"stage": stage}) or 0.0 for stage in STAGES}
    return seconds, sum(p.new for p in report.polls), {**spent, "config": loading,
                                                       "matcher": building}


def run_floor(root: Path, port: int, count: int, attempt: int) -> tuple[float, int]:
    """httpx GET, feedparser, one ``executemany`` per feed: seconds and entries."""
    conn = sqlite3.connect(str(root / f"floor-{attempt}.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, source TEXT, link TEXT, "
                 "guid TEXT, title TEXT, summary TEXT, published TEXT)")
    stored = 0
    started = time.perf_counter()
    with httpx.Client(trust_env=False, timeout=120) as client:
        for n in range(count):
            parsed = feedparser.parse(client.get(f"http://127.0.0.1:{port}/f{n}.xml").content)
            rows = [(f"Outlet {n}", e.get("link"), e.get("id"), e.get("title"),
                     e.get("summary"), e.get("published")) for e in parsed.entries]
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO entries (source, link, guid, title, summary, "
                             "published) VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
            stored += len(rows)
    seconds = time.perf_counter() - started
    conn.close()
    return seconds, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--items", type=int, default=600, help="items per feed")
    parser.add_argument("--watch", type=int, default=10_000, help="watched people")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes of the second pass (default: the cores)")
    args = parser.parse_args()
    os.environ.pop("NEWSWATCH_CONFIG", None)
    documents, pool = feeds(args.feeds, args.items, args.watch, args.seed)
    megabytes = sum(map(len, documents)) / 1e6
    with tempfile.TemporaryDirectory(prefix="newswatch-ingest-") as tmp, \
            serve(documents) as port:
        root = Path(tmp)
        floor_a, entries = run_floor(root, port, args.feeds, 1)
        passes = {}
        for workers in (0, args.workers):
            option = ("--workers", str(workers))
            probe, _ = run_once(config_dir(root, f"startup-{workers}", port, args.feeds,
                                           "empty", pool), *option)
            whole, report = run_once(config_dir(root, f"once-{workers}", port, args.feeds,
                                                "f", pool), *option)
            passes[workers] = (whole, probe)
        stages_wall, staged, spent = run_stages(
            config_dir(root, "stages", port, args.feeds, "f", pool, concurrency=1))
        floor_b, _ = run_floor(root, port, args.feeds, 2)
    articles = sum(s["new"] for s in report["sources"])
    matched = sum(s["matched"] for s in report["sources"])
    planned = sum(s["queued"] for s in report["sources"])
    floor = min(floor_a, floor_b)
    floor_rate = entries / floor
    rows = []
    timed: dict[str, Any] = {}
    for workers, (whole, probe) in passes.items():
        rate = articles / whole
        # tiny runs may take no longer than the empty pass: no steady rate to tell then
        steady = articles / (whole - probe) if whole > probe else 0.0
        label = "in process" if workers == 0 else f"{workers} workers"
        rows += [(f"newswatch once, {label} (whole)", whole, rate),
                 (f"newswatch once, {label} (steady)", whole - probe, steady)]
        timed[f"workers_{workers}"] = {
            "once_seconds": round(whole, 2), "once_articles_per_s": round(rate, 1),
            "startup_seconds": round(probe, 2), "steady_articles_per_s": round(steady, 1),
            "once_ratio_to_floor": round(rate / floor_rate, 3),
            "steady_ratio_to_floor": round(steady / floor_rate, 3)}
    per_article = {stage: spent[stage] / staged * 1e6 if staged else 0.0 for stage in STAGES}
    result = {
        "feeds": args.feeds, "items_per_feed": args.items, "watch_items": args.watch,
        "feed_megabytes": round(megabytes, 1), "articles": articles, "matched": matched,
        "alerts_planned": planned, **timed,
        "floor_seconds": round(floor, 3), "floor_articles_per_s": round(floor_rate, 1),
        "stages_pass_seconds": round(stages_wall, 2),
        "config_load_seconds": round(spent["config"], 2),
        "matcher_build_seconds": round(spent["matcher"], 2),
        "stage_us_per_article": {k: round(v) for k, v in per_article.items()},
    }
    print(f"ingest: {args.feeds} feeds × {args.items} items ({megabytes:.1f} MB of RSS, full "
          f"text off), {args.watch:,} watch items; {articles} articles stored, {matched} "
          f"matched, {planned} alerts planned")
    print(f"{'':44}{'seconds':>9}{'articles/s':>12}{'× floor':>9}")
    for name, seconds, per_s in (*rows,
                                 ("floor: feedparser + executemany", floor, floor_rate)):
        print(f"{name:44}{seconds:>9.2f}{per_s:>12.1f}{per_s / floor_rate:>9.3f}")
    startups = ", ".join(f"{w} workers {p:.2f} s" if w else f"in process {p:.2f} s"
                         for w, (_, p) in passes.items())
    print(f"startup (once over empty feeds): {startups}; in process, loading the config "
          f"takes {spent['config']:.2f} s and building the matcher {spent['matcher']:.2f} s")
    print(f"per article, by stage (in-process pass, one source at a time, {stages_wall:.2f} s "
          f"for {staged} articles):")
    total = sum(per_article.values())
    for stage in STAGES:
        share = per_article[stage] / total if total else 0.0
        print(f"  {stage:12}{per_article[stage]:>10.0f} µs{share:>8.0%}")
    print(f"  {'sum':12}{total:>10.0f} µs   (pass wall time per article: "
          f"{stages_wall / staged * 1e6 if staged else 0:.0f} µs)")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
