"""Soak: the daemon against many local feeds that change at random, for minutes.

Not part of CI. Run with ``make bench-soak`` (or ``python benchmarks/soak.py --help``).

It starts a local site with ``--feeds`` feeds (each answers conditional GETs with 304
until it changes; a feed changes on a request with probability ``--change``), a webhook
receiver, and ``newswatch run`` on a fresh database with the HTTP listener on. While it
runs it samples the resident memory of the daemon and its worker processes; at the end
it scrapes /metrics and reports articles/s, alerts/s, CPU time per poll (the daemon's
and its workers'), the share of polls answered 304, and memory over time with its slope
over the last two thirds of the run. CPU per poll is given for the whole run and for its
*steady state*, after ``--warm-up`` seconds: the first round stores every feed's 20 items
(10,000 articles at the defaults), which a daemon does once, not at every poll.

Beside it, in the same run, a bare conditional-GET poller (httpx, no parsing, no
storage) polls the same feeds for ``--floor-seconds``: its CPU time per poll is the
floor (whole, and after its own first round for the steady state), and the report gives
the daemon's cost as a ratio of it, since absolute times drift on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
NAMES = ["Ahmad Massoud", "Atta Mohammad Noor", "Yunus Qanuni", "Hanif Atmar",
         "Mohammad Mohaqiq", "Abdul Rashid Dostum"]


class Feeds:
    """``count`` feeds of 20 items; each request may add an item (probability ``change``)."""

    def __init__(self, count: int, change: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.change = change
        self.lock = threading.Lock()
        self.serial = [0] * count
        self.items: list[list[tuple[int, str]]] = [[] for _ in range(count)]
        for n in range(count):
            for _ in range(20):
                self._add(n)
        self.requests = 0
        self.not_modified = 0

    def _add(self, n: int) -> None:
        self.serial[n] += 1
        mention = self.rng.random() < 0.2
        title = (f"{self.rng.choice(NAMES)} comments on talks" if mention
                 else "Weather and markets in Kabul")
        self.items[n].insert(0, (self.serial[n], title))
        del self.items[n][20:]

    def answer(self, n: int, etag: str | None) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.requests += 1
            if self.rng.random() < self.change:
                self._add(n)
            current = f'"{n}-{self.serial[n]}"'
            if etag == current:
                self.not_modified += 1
                return 304, {"etag": current}, b""
            items = list(self.items[n])
        now = format_datetime(datetime.now(UTC), usegmt=True)
        body = "".join(
            f"<item><title>{t}</title><link>http://127.0.0.1/f{n}/{s}</link>"
            f"<guid>f{n}-{s}</guid><pubDate>{now}</pubDate>"
            f"<description>Report number {s} from feed {n}. {t}.</description></item>"
            for s, t in items)
        return 200, {"etag": current, "content-type": "application/rss+xml"}, (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>'
            f"{body}</channel></rss>").encode()


def serve(feeds: Feeds) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no 40 ms wait for a delayed ACK between
        # the headers and the body on a kept-alive connection

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            n = int(self.path.strip("/").removeprefix("f").removesuffix(".xml"))
            status, headers, body = feeds.answer(n, self.headers.get("if-none-match"))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # the webhook receiver
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it: the daemon, its fork server and its workers
    (``daemon.workers``), whose CPU and memory are the daemon's too."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            queue.extend(int(c) for c in task.read_text().split())
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time of the process tree (user and system), those still running."""
    total = 0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def rss_mib(pid: int) -> float:
    """Resident memory of the process tree."""
    total = 0.0
    for member in tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except FileNotFoundError:
            continue
        total += sum(int(line.split()[1]) / 1024 for line in lines
                     if line.startswith("VmRSS:"))
    return total


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (MiB per minute) of (seconds, MiB) points."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] / 60 for p in points], [p[1] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def bare_poller(port: int, feeds: int, interval: float,
                      seconds: float) -> tuple[int, int, float]:
    """The floor: conditional GETs of every feed every ``interval``, nothing else. Its
    polls, and the polls and CPU seconds after its first round."""
    etags: dict[int, str] = {}
    polls = 0
    first: tuple[int, float] | None = None
    deadline = time.monotonic() + seconds
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(trust_env=False) as client:

        async def one(n: int) -> None:
            nonlocal polls
            async with limit:
                headers = {"If-None-Match": etags[n]} if n in etags else {}
                answer = await client.get(f"http://127.0.0.1:{port}/f{n}.xml",
                                          headers=headers)
                if answer.status_code == 200:
                    etags[n] = answer.headers["etag"]
                    answer.read()
                polls += 1

        while time.monotonic() < deadline:
            started = time.monotonic()
            await asyncio.gather(*(one(n) for n in range(feeds)))
            if first is None:
                first = (polls, time.process_time())
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    if first is None:
        return polls, 0, 0.0
    return polls, polls - first[0], time.process_time() - first[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=600, help="daemon run length")
    parser.add_argument("--floor-seconds", type=float, default=120)
    parser.add_argument("--interval", type=float, default=30, help="per-feed poll interval")
    parser.add_argument("--change", type=float, default=0.05,
                        help="probability that a request finds a new item")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warm-up", type=float, default=90,
                        help="seconds before the steady state is measured")
    parser.add_argument("--bare-poller", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_poller:
        cpu_start = time.process_time()
        count, steady, steady_cpu = asyncio.run(bare_poller(
            args.bare_poller, args.feeds, args.interval, args.floor_seconds))
        print(json.dumps([count, time.process_time() - cpu_start, steady, steady_cpu]))
        return

    feeds = Feeds(args.feeds, args.change, args.seed)
    server, port = serve(feeds)
    work = Path(tempfile.mkdtemp(prefix="newswatch-soak-"))
    listen = 20000 + random.Random(args.seed).randrange(20000)
    config = work / "config"
    config.mkdir()
    (config / "newswatch.yaml").write_text(json.dumps({
        "database": str(work / "soak.db"), "allow_private_networks": True,
        # One host serves every feed, so no per-host delay; the items' pages do not exist,
        # so full text is off: this measures the feed pipeline.
        "defaults": {"interval": f"{args.interval}s", "timeout": "20s", "delay": "0",
                     "full_text": False},
        "daemon": {"tick": "1s", "concurrency": 16}, "http": {"listen": f"127.0.0.1:{listen}"},
        "channels": {"hook": {"type": "webhook", "url": f"http://127.0.0.1:{port}/hook"}}}))
    (config / "sources.yaml").write_text(json.dumps({"sources": [
        {"name": f"feed {n}", "feed": f"http://127.0.0.1:{port}/f{n}.xml"}
        for n in range(args.feeds)]}))
    (config / "watchlists.yaml").write_text(json.dumps({"watchlists": [
        {"name": "leaders", "channels": ["hook"], "watch": [{"name": n} for n in NAMES]}]}))

    print(f"soak: {args.feeds} feeds, interval {args.interval:g}s, {args.seconds:g}s run",
          flush=True)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "crawler", "--config", str(config), "--log-level", "warning",
         "run"], cwd=ROOT, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    memory: list[tuple[float, float]] = []
    warm: tuple[float, float] | None = None  # polls and CPU seconds at the warm-up's end
    time.sleep(2)
    try:
        while (elapsed := time.monotonic() - started) < args.seconds:
            memory.append((elapsed, rss_mib(daemon.pid)))
            if warm is None and elapsed >= args.warm_up:
                warm = (metric(httpx.get(f"http://127.0.0.1:{listen}/metrics",
                                         timeout=10).text, "newswatch_fetches_total"),
                        cpu_seconds(daemon.pid))
            time.sleep(5)
        metrics = httpx.get(f"http://127.0.0.1:{listen}/metrics", timeout=10).text
        cpu = cpu_seconds(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    polls = metric(metrics, "newswatch_fetches_total")
    not_modified = metric(metrics, "newswatch_fetches_total", outcome="not_modified")
    articles = metric(metrics, "newswatch_articles_stored_total")
    alerts = metric(metrics, "newswatch_alerts_delivered_total")

    # The floor runs in its own process, so its CPU time is the poller's alone.
    floor = subprocess.run(
        [sys.executable, __file__, "--bare-poller", str(port), "--feeds", str(args.feeds),
         "--interval", str(args.interval), "--floor-seconds", str(args.floor_seconds)],
        capture_output=True, text=True, check=True)
    floor_polls, floor_cpu, floor_steady, floor_steady_cpu = (
        float(v) for v in json.loads(floor.stdout))
    server.shutdown()

    tail = [p for p in memory if p[0] >= args.seconds / 3]
    daemon_per_poll = cpu / polls * 1000 if polls else float("nan")
    floor_per_poll = floor_cpu / floor_polls * 1000 if floor_polls else float("nan")
    steady_per_poll = (cpu - warm[1]) / (polls - warm[0]) * 1000 if warm and polls > warm[0] \
        else float("nan")
    floor_steady_per_poll = floor_steady_cpu / floor_steady * 1000 if floor_steady \
        else float("nan")
    report = {
        "feeds": args.feeds, "seconds": args.seconds, "polls": int(polls),
        "articles_per_s": round(articles / args.seconds, 2),
        "alerts_per_s": round(alerts / args.seconds, 3),
        "share_304": round(not_modified / polls, 3) if polls else None,
        "cpu_ms_per_poll": round(daemon_per_poll, 3),
        "floor_cpu_ms_per_poll": round(floor_per_poll, 3),
        "cpu_ratio_vs_floor": round(daemon_per_poll / floor_per_poll, 2),
        "steady_after_s": args.warm_up,
        "steady_cpu_ms_per_poll": round(steady_per_poll, 3),
        "floor_steady_cpu_ms_per_poll": round(floor_steady_per_poll, 3),
        "steady_cpu_ratio_vs_floor": round(steady_per_poll / floor_steady_per_poll, 2),
        "rss_mib_start": memory[0][1] if memory else None,
        "rss_mib_end": memory[-1][1] if memory else None,
        "rss_mib_max": max(m for _, m in memory) if memory else None,
        "rss_slope_mib_per_min_last_two_thirds": round(slope(tail), 3),
        "rss_mib_over_time": " ".join(f"{t:.0f}s:{m:.1f}" for t, m in
                                      memory[:: max(1, len(memory) // 12)]),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
