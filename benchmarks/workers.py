"""Workers: ``newswatch once --workers 2`` against ``--workers 0`` (in process), over
local feeds, with a 10,000-item watchlist.

Target (issue #14): with two worker processes, on a two-core machine, ingest runs at
least 1.6 times as fast as in process. Not part of CI (``tests/test_workers.py`` runs it
tiny, in the slow tier). Run with ``make bench-workers`` (or ``python -m benchmarks.workers
--help``).

It serves ``--feeds`` RSS feeds of ``--items`` news-length items each (450-900 words of
generated English news; about a quarter name one of the watched people) from a local
HTTP server on 127.0.0.1, and writes a config over them (full text off, no delay) with
one watchlist of ``--watch`` generated people (``benchmarks/matching.py``) and a webhook
channel with a yearly digest: every alert is planned and stored, none sent. Then, for
each number of workers in turn, ``--runs`` times (the best run of each counts):

- **whole**: ``newswatch once --workers N`` in a child process on a fresh database,
  timed from its start to its exit (interpreter, config, workers and matcher included);
- **startup**: the same over empty feeds: what a pass costs before its first article.
  The *ingest* rate divides the articles by the difference of the two.

The machine is shared: run it when ``uptime`` shows little load, and read the ratios,
which are measured in the same run, rather than the rates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from benchmarks.matching import EN_WORDS, Person, corpus, people

ROOT = Path(__file__).resolve().parent.parent
YEARLY = "0 0 1 1 *"  # alerts are planned and kept, not sent during the run
EMPTY = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Empty</title>'
         b"<link>https://empty.example/</link><description>x</description></channel></rss>")
TARGET = 1.6


def feeds(count: int, items: int, pool: Sequence[Person], rng: random.Random) -> list[bytes]:
    """``count`` RSS documents of ``items`` distinct news-length items each."""
    now = format_datetime(datetime.now(UTC), usegmt=True)
    documents = []
    for n in range(count):
        entries = "".join(
            f"<item><title>{escape(article.title)}</title>"
            f"<link>https://outlet{n}.example/news/{i}</link>"
            f'<guid isPermaLink="false">outlet{n}-{i}</guid><pubDate>{now}</pubDate>'
            f"<description>{escape(f'<p>{article.text}</p>')}</description></item>"
            for i, article in enumerate(corpus(EN_WORDS, pool, items, rng, "en")))
        documents.append((f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0">'
                          f"<channel><title>Outlet {n}</title>"
                          f"<link>https://outlet{n}.example/</link>"
                          f"<description>news</description>{entries}</channel></rss>"
                          ).encode())
    return documents


@contextlib.contextmanager
def serve(documents: list[bytes]) -> Iterator[int]:
    """The feeds at /f<n>.xml and empty ones at /empty<n>.xml on 127.0.0.1; yields the
    port."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.strip("/").removesuffix(".xml")
            number = name.lstrip("fempty")
            if not number.isdigit() or int(number) >= len(documents):
                self.send_error(404)
                return
            body = EMPTY if name.startswith("empty") else documents[int(number)]
            self.send_response(200)
            self.send_header("content-type", "application/rss+xml")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def config_dir(root: Path, name: str, port: int, count: int, path: str,
               pool: Sequence[Person]) -> Path:
    """A config directory ``root/name`` over feeds ``/<path><n>.xml`` and a fresh
    database beside it."""
    directory = root / name
    directory.mkdir()
    (directory / "newswatch.yaml").write_text(json.dumps({
        "database": str(root / f"{name}.db"), "allow_private_networks": True,
        "defaults": {"full_text": False, "delay": "0", "timeout": "120s",
                     "max_bytes": "64MiB"},
        "channels": {"hook": {"type": "webhook", "url": f"http://127.0.0.1:{port}/hook",
                              "digest": YEARLY}}}))
    (directory / "sources.yaml").write_text(json.dumps({"sources": [
        {"name": f"Outlet {n}", "feed": f"http://127.0.0.1:{port}/{path}{n}.xml"}
        for n in range(count)]}))
    (directory / "watchlists.yaml").write_text(json.dumps({"watchlists": [{
        "name": "people", "channels": ["hook"],
        "watch": [{"name": p.latin, "aliases": list(p.aliases)} for p in pool]}]},
        ensure_ascii=False))
    return directory


def once(config: Path, workers: int) -> tuple[float, int]:
    """``newswatch once --workers N`` in a child process: seconds, articles stored."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "crawler", "--config", str(config), "once", "--json",
         "--workers", str(workers)],
        capture_output=True, text=True, cwd=ROOT, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"newswatch once failed:\n{done.stdout}\n{done.stderr}")
    polls = json.loads(done.stdout)["sources"]
    if errors := [p["error"] for p in polls if p["error"]]:
        raise SystemExit(f"newswatch once: sources failed: {errors}")
    return seconds, sum(p["new"] for p in polls)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--items", type=int, default=600, help="items per feed")
    parser.add_argument("--watch", type=int, default=10_000, help="watch items")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--runs", type=int, default=2, help="runs of each (best counts)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    pool = people(args.watch, rng)
    documents = feeds(args.feeds, args.items, pool, rng)
    print(f"{args.feeds} feeds x {args.items} items "
          f"({sum(map(len, documents)) / 1e6:.1f} MB), {args.watch} watch items, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}", flush=True)
    best: dict[tuple[int, str], float] = {}
    stored: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp, serve(documents) as port:
        for run in range(args.runs):
            for workers in (0, args.workers):
                for kind, path in (("whole", "f"), ("startup", "empty")):
                    config = config_dir(Path(tmp), f"{kind}-{workers}-{run}", port,
                                        args.feeds, path, pool)
                    seconds, new = once(config, workers)
                    if kind == "whole":
                        stored[workers] = new
                    key = (workers, kind)
                    best[key] = min(best.get(key, seconds), seconds)
                    print(f"  run {run + 1}, --workers {workers}, {kind}: {seconds:.2f} s",
                          flush=True)
    articles = stored[0]
    if stored[args.workers] != articles:
        raise SystemExit(f"the runs stored different counts: {stored}")

    def rates(workers: int) -> tuple[float, float]:
        whole, startup = best[workers, "whole"], best[workers, "startup"]
        return articles / whole, articles / max(whole - startup, 1e-9)

    (whole_0, ingest_0), (whole_n, ingest_n) = rates(0), rates(args.workers)
    print(f"\n{articles} articles stored by each")
    print(f"{'':24}{'whole once':>14}{'ingest':>14}")
    print(f"{'--workers 0':24}{whole_0:>10.0f} a/s{ingest_0:>10.0f} a/s")
    print(f"{f'--workers {args.workers}':24}{whole_n:>10.0f} a/s{ingest_n:>10.0f} a/s")
    ratio = ingest_n / ingest_0
    print(f"{'ratio':24}{whole_n / whole_0:>13.2f}x{ratio:>13.2f}x"
          f"   (target: ingest >= {TARGET}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
