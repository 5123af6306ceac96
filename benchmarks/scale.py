"""Scale: 1, 2 and 4 ``newswatch run`` daemons on one PostgreSQL database against 2,000
local feeds, beside one daemon on SQLite in the same run.

Not part of CI (``tests/test_benchmarks.py`` runs it tiny). Run with ``make bench-scale``
(or ``python -m benchmarks.scale --help``); it needs a PostgreSQL server (``--server``,
by default ``NEWSWATCH_TEST_POSTGRES`` or ``postgresql://postgres@127.0.0.1:5432``, as
the tests), on which it creates a fresh database per setup and drops it after.

**The feeds.** ``--sources`` RSS feeds spread over ``--hosts`` loopback addresses
(127.0.0.1, 127.0.0.2, …: each its own server, so its own host for politeness). Every
request to a feed answers its ``--items`` latest items, of which ``--new`` are new since
the feed's previous request: each poll stores articles. About one item in five names a
watched person, so alerts are queued and delivered to a local webhook receiver. Items
are short (a title and 30 words) and distinct (no two join one story): this measures
the daemons' and the database's cost per poll, not parsing or matching at length.

**Delays.** Every source has ``delay: 0`` (no per-host wait at all) and ``interval: 2s``
with ``respect_cache_hints: false``: a source is due again long before the daemons have
been round all of them, so they always have work and no politeness wait hides their
overhead. (With a delay, 8 hosts would cap the run at 8 / delay polls a second.)

**The method.** For each setup (``--setups``, ``BACKEND:DAEMONSxWORKERS``), on a fresh
database and with the feeds back at their first round: start the daemons, wait until
every source was polled once (workers started, matchers built, the first round's
larger inserts behind), let them run ``--warm-up`` seconds more, then count
for ``--duration`` seconds: feed requests answered (sources/s), articles in the database
(articles/s) and alerts the receiver got (alerts/s); and CPU seconds, from /proc, of the
daemons' process trees and of the PostgreSQL backends serving the setup's database
(when the server runs on this machine), with ``pg_stat_database``'s ``active_time`` and
commits; and the wall time per poll of each stage, from the daemons' ``/metrics``
(``newswatch_stage_seconds``: ``dedup`` and ``store`` are store calls, their wait for
the store's one thread included). ``--pg-options`` passes ``PGOPTIONS`` to the daemons,
to try a server setting (``-c synchronous_commit=off``) on the same code. A fixed window
rather than "time to poll all sources once more": with every source always due, the two
are the same rate, and a window's length does not depend on the setup's speed.

**The targets** (issue 16), read from the same run: 2 daemons with ``workers: 1`` each
reach at least 0.85× one daemon with ``workers: 2``; one daemon on PostgreSQL at least
0.7× one daemon on SQLite. Scaling efficiency is N daemons' rate over N times one
daemon's with the same workers. On a 2-core machine one daemon with two workers already
uses both cores, so the targets measure overhead rather than more cores.

**The projection** to N machines is printed with its assumptions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg

from benchmarks.ingest import STAGES
from benchmarks.matching import EN_WORDS
from benchmarks.soak import NAMES, TICKS, cpu_seconds, metric
from tests.postgres import server as default_server
from tests.postgres import with_database

ROOT = Path(__file__).resolve().parent.parent
SETUPS = "sqlite:1x2,postgres:1x2,postgres:1x1,postgres:2x1,postgres:4x1"
TARGET_DAEMONS = 0.85  # 2 daemons x workers 1 against 1 daemon x workers 2
TARGET_BACKEND = 0.70  # PostgreSQL against SQLite, one daemon each
WARM_UP_LIMIT = 900  # seconds for the first round, at most


@dataclass(frozen=True)
class Setup:
    backend: str  # "sqlite" or "postgres"
    daemons: int
    workers: int

    @property
    def name(self) -> str:
        return f"{self.backend}:{self.daemons}x{self.workers}"

    @classmethod
    def parse(cls, text: str) -> Setup:
        backend, _, shape = text.partition(":")
        daemons, _, workers = shape.partition("x")
        if backend not in ("sqlite", "postgres") or not daemons.isdigit() \
                or not workers.isdigit() or int(daemons) < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: write BACKEND:DAEMONSxWORKERS, "
                                             "e.g. postgres:2x1")
        return cls(backend, int(daemons), int(workers))


class Feeds:
    """Every feed's request count; a request answers the ``items`` latest items, ``new``
    of them new since the previous one. The receiver's POSTs are the alerts."""

    def __init__(self, items: int, new: int) -> None:
        self.items, self.new = items, new
        self.lock = threading.Lock()
        self.served: dict[int, int] = {}
        self.requests = 0
        self.alerts = 0

    def document(self, n: int) -> bytes:
        with self.lock:
            round_ = self.served.get(n, 0)
            self.served[n] = round_ + 1
            self.requests += 1
        top = round_ * self.new + self.items
        now = format_datetime(datetime.now(UTC), usegmt=True)
        entries = []
        for s in range(top - 1, top - 1 - self.items, -1):
            rng = random.Random(n * 1_000_003 + s)
            words = " ".join(rng.choice(EN_WORDS) for _ in range(30))
            title = (f"{rng.choice(NAMES)} {' '.join(words.split()[:6])}"
                     if rng.random() < 0.2 else " ".join(words.split()[:8]).capitalize())
            entries.append(f"<item><title>{title}</title>"
                           f"<link>http://outlet{n}.example/news/{s}</link>"
                           f"<guid>f{n}-{s}</guid><pubDate>{now}</pubDate>"
                           f"<description>{words}.</description></item>")
        return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>'
                f"<link>http://outlet{n}.example/</link>{''.join(entries)}"
                "</channel></rss>").encode()

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return self.requests, self.alerts

    def polled(self) -> int:
        """How many feeds were asked for at least once since ``reset``."""
        with self.lock:
            return len(self.served)

    def reset(self) -> None:
        """Back to the first round, for a setup on a fresh database."""
        with self.lock:
            self.served.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A daemon stopped mid-request resets its connections: not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _server(host: str, feeds: Feeds) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        """GET /f<n>.xml: feed n; POST: an alert. Keep-alive, as a real site, and quiet."""

        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no 40 ms wait for a delayed ACK between
        # the headers and the body on a kept-alive connection

        def log_message(self, format: str, *args: Any) -> None:
            """No line per request on stderr."""

        def do_GET(self) -> None:
            number = self.path.removeprefix("/f").removesuffix(".xml")
            if not number.isdigit():
                self.send_error(404)
                return
            body = feeds.document(int(number))
            self.send_response(200)
            self.send_header("content-type", "application/rss+xml")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # the webhook receiver
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with feeds.lock:
                feeds.alerts += 1
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

    server = _Server((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextlib.contextmanager
def serve(feeds: Feeds, hosts: int) -> Iterator[list[str]]:
    """A server on each of ``hosts`` loopback addresses; yields their ``host:port``s
    (the first also receives the webhook)."""
    servers = [_server(f"127.0.0.{h + 1}", feeds) for h in range(hosts)]
    try:
        yield [f"127.0.0.{h + 1}:{s.server_address[1]}" for h, s in enumerate(servers)]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_dir(root: Path, database: str, workers: int, sources: int,
               hosts: list[str], listen: int) -> Path:
    root.mkdir(parents=True)
    (root / "newswatch.yaml").write_text(json.dumps({
        "database": database, "allow_private_networks": True,
        "defaults": {"interval": "2s", "timeout": "30s", "delay": "0", "full_text": False,
                     "respect_cache_hints": False},
        "daemon": {"tick": "1s", "concurrency": 8, "workers": workers},
        "http": {"listen": f"127.0.0.1:{listen}"},  # for /metrics: the stages' times
        "channels": {"hook": {"type": "webhook", "url": f"http://{hosts[0]}/hook"}}}))
    (root / "sources.yaml").write_text(json.dumps({"sources": [
        {"name": f"feed {n}", "feed": f"http://{hosts[n % len(hosts)]}/f{n}.xml"}
        for n in range(sources)]}))
    (root / "watchlists.yaml").write_text(json.dumps({"watchlists": [
        {"name": "leaders", "channels": ["hook"], "watch": [{"name": n} for n in NAMES]}]}))
    return root


@contextlib.contextmanager
def postgres_database(server: str) -> Iterator[str]:
    """A fresh database on ``server``, dropped after (as tests/postgres.py does)."""
    name = f"newswatch_bench_{secrets.token_hex(6)}"
    admin = with_database(server, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Probe:
    """What one setup's database holds and costs: articles, and for PostgreSQL the CPU
    seconds of the backends serving it (from /proc, when the server is local), its
    ``active_time`` (ms executing statements) and commits."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.postgres = database.startswith("postgresql://")

    def articles(self) -> int:
        if self.postgres:
            with psycopg.connect(self.database, autocommit=True) as conn:
                row = conn.execute("SELECT count(*) FROM articles").fetchone()
        else:
            with contextlib.closing(sqlite3.connect(
                    f"file:{self.database}?mode=ro", uri=True, timeout=30)) as conn:
                row = conn.execute("SELECT count(*) FROM articles").fetchone()
        return int(row[0]) if row else 0

    def load(self) -> dict[str, Any]:
        """Backend pid → CPU seconds, active ms and commits so far (PostgreSQL only)."""
        if not self.postgres:
            return {}
        with psycopg.connect(self.database, autocommit=True) as conn:
            pids = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")]
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT active_time, xact_commit FROM pg_stat_database "
                "WHERE datname = current_database()").fetchone()
        cpu: dict[int, float] = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, PermissionError):
                continue
            cpu[pid] = (int(fields[11]) + int(fields[12])) / TICKS
        return {"cpu": cpu, "pids": len(pids), "active_ms": float(row[0] or 0) if row else 0.0,
                "commits": int(row[1]) if row else 0}


def stages(ports: list[int]) -> dict[str, float]:
    """Seconds spent in each stage by the daemons on ``ports`` so far, and their polls."""
    texts = [httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
             for port in ports]
    found = {stage: sum(metric(t, "newswatch_stage_seconds_sum", stage=stage)
                        for t in texts) for stage in STAGES}
    found["polls"] = sum(metric(t, "newswatch_stage_seconds_count", stage="store")
                         for t in texts)
    return found


def spent(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The database's load between two ``Probe.load``s; backends seen only at the end
    count whole (they started in the window), those that ended in it are missed."""
    if not after:
        return {}
    cpu = None
    if after["cpu"] or not after["pids"]:
        cpu = sum(v - before["cpu"].get(pid, 0.0) for pid, v in after["cpu"].items())
    return {"cpu_s": cpu, "active_s": (after["active_ms"] - before["active_ms"]) / 1000,
            "commits": after["commits"] - before["commits"], "backends": after["pids"]}


def run_setup(setup: Setup, work: Path, database: str, feeds: Feeds, hosts: list[str],
              args: argparse.Namespace) -> dict[str, Any]:
    """Run ``setup``'s daemons on ``database``; its rates over the measured window."""
    ports = [free_port() for _ in range(setup.daemons)]
    configs = [config_dir(work / f"{setup.name.replace(':', '-')}-{d}", database,
                          setup.workers, args.sources, hosts, port)
               for d, port in enumerate(ports)]
    logs = [(c / "daemon.log").open("w") for c in configs]
    daemons: list[subprocess.Popen[bytes]] = []
    probe = Probe(database)
    try:
        feeds.reset()
        first = feeds.counts()
        for config, log in zip(configs, logs, strict=True):
            daemons.append(subprocess.Popen(
                [sys.executable, "-m", "crawler", "--config", str(config), "--log-level",
                 "warning", "run"], cwd=ROOT, stdout=log, stderr=log,
                env={**os.environ, "PGOPTIONS": args.pg_options} if args.pg_options
                else None))
        # Warm-up: every source polled once (the first round stores all --items items,
        # later ones --new), then --warm-up seconds more.
        deadline = time.monotonic() + WARM_UP_LIMIT
        while feeds.polled() < args.sources:
            if time.monotonic() > deadline or any(d.poll() is not None for d in daemons):
                raise SystemExit(f"{setup.name}: {feeds.polled()} of {args.sources} sources "
                                 f"polled within {WARM_UP_LIMIT} s; see "
                                 f"{configs[0] / 'daemon.log'}")
            time.sleep(0.2)
        time.sleep(args.warm_up)
        begin = (time.monotonic(), *feeds.counts(), probe.articles(), probe.load(),
                 sum(cpu_seconds(d.pid) for d in daemons), stages(ports))
        time.sleep(args.duration)
        end = (time.monotonic(), *feeds.counts(), probe.articles(), probe.load(),
               sum(cpu_seconds(d.pid) for d in daemons), stages(ports))
        if any(d.poll() is not None for d in daemons):
            raise SystemExit(f"{setup.name}: a daemon exited; see its daemon.log in {work}")
    finally:
        for d in daemons:
            d.send_signal(signal.SIGTERM)
        for d in daemons:
            try:
                d.wait(timeout=60)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()
        for log in logs:
            log.close()
    seconds = end[0] - begin[0]
    polls, alerts, articles = end[1] - begin[1], end[2] - begin[2], end[3] - begin[3]
    daemon_cpu = end[5] - begin[5]
    db = spent(begin[4], end[4])
    per = max(polls, 1)
    timed = end[6]["polls"] - begin[6]["polls"]
    return {
        "setup": setup.name, "daemons": setup.daemons, "workers": setup.workers,
        "database": (database.rsplit("/", 1)[1].split("?")[0] if probe.postgres
                     else Path(database).name),
        "seconds": round(seconds, 2), "polls": polls, "articles": articles,
        "alerts": alerts,
        "run_polls": end[1] - first[0], "run_alerts": end[2] - first[1],  # warm-up too
        "sources_per_s": round(polls / seconds, 2),
        "articles_per_s": round(articles / seconds, 2),
        "alerts_per_s": round(alerts / seconds, 2),
        "daemon_cpu_ms_per_source": round(daemon_cpu / per * 1000, 3),
        "db_cpu_ms_per_source": (round(db["cpu_s"] / per * 1000, 3)
                                 if db.get("cpu_s") is not None else None),
        "db_active_ms_per_source": round(db["active_s"] / per * 1000, 3) if db else None,
        "db_commits_per_source": round(db["commits"] / per, 2) if db else None,
        "db_backends": db.get("backends"),
        # Wall time per poll in each stage (the daemons' newswatch_stage_seconds): "store"
        # is the store's transaction, waiting for the store's thread included.
        "stage_ms_per_poll": {stage: round((end[6][stage] - begin[6][stage])
                                           / max(timed, 1) * 1000, 2) for stage in STAGES},
        "load_average": round(os.getloadavg()[0], 2),
    }


def ratio(results: dict[str, dict[str, Any]], top: str, bottom: str) -> float | None:
    if top not in results or bottom not in results or not results[bottom]["sources_per_s"]:
        return None
    rate: float = results[top]["sources_per_s"] / results[bottom]["sources_per_s"]
    return round(rate, 3)


def targets(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for what, top, bottom, target in (
            ("2 daemons x workers 1 vs 1 daemon x workers 2 (PostgreSQL)", "postgres:2x1",
             "postgres:1x2", TARGET_DAEMONS),
            ("1 daemon on PostgreSQL vs 1 on SQLite (workers 2)", "postgres:1x2",
             "sqlite:1x2", TARGET_BACKEND)):
        value = ratio(results, top, bottom)
        found.append({"target": what, "at_least": target, "ratio": value,
                      "result": "n/a (setup not run)" if not {top, bottom} <= set(results)
                      else "n/a (no rate measured)" if value is None
                      else "pass" if value >= target else "miss"})
    return found


def efficiency(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """N daemons' rate over N times one daemon's, per number of workers."""
    found = {}
    for name, r in results.items():
        one = results.get(f"postgres:1x{r['workers']}")
        if name.startswith("postgres:") and r["daemons"] > 1 and one and one["sources_per_s"]:
            found[name] = round(r["sources_per_s"] / (r["daemons"] * one["sources_per_s"]), 3)
    return found


def projection(results: dict[str, dict[str, Any]], machine_cores: float, db_cores: float,
               machines: Sequence[int]) -> dict[str, Any] | None:
    """Sources/s on N machines, each running one daemon of ``workers: 1`` per core, and
    the database on a server of ``db_cores``; each bound stated in the assumptions."""
    measured = [r for r in results.values() if r["setup"].startswith("postgres:")]
    if not measured:
        return None
    # A daemon: its CPU per source and its own rate (its store thread's bound) from the
    # one-daemon setup with the fewest workers, as each daemon on a machine would run.
    base = min((r for r in measured if r["daemons"] == 1), default=measured[0],
               key=lambda r: r["workers"])
    daemons = max(1, round(machine_cores))
    daemon_ms = base["daemon_cpu_ms_per_source"]
    by_cpu = machine_cores * 1000 / daemon_ms if daemon_ms else None
    by_thread = daemons * base["sources_per_s"] / base["daemons"] or None
    per_machine = min((x for x in (by_cpu, by_thread) if x), default=None)
    costs = [r["db_cpu_ms_per_source"] for r in measured if r["db_cpu_ms_per_source"]]
    basis = "CPU seconds of its backends (/proc)"
    if not costs:
        costs = [r["db_active_ms_per_source"] for r in measured if r["db_active_ms_per_source"]]
        basis = "pg_stat_database.active_time (the server's CPU is not readable here)"
    db_ms = sum(costs) / len(costs) if costs else None
    ceiling = db_cores * 1000 / db_ms if db_ms else None
    articles = base["articles"] / max(base["polls"], 1)
    alerts = base["alerts"] / max(base["polls"], 1)
    rows: dict[str, dict[str, Any] | None] = {}
    for n in machines:
        bounds = {"daemons": n * per_machine if per_machine else None, "database": ceiling}
        known = {k: v for k, v in bounds.items() if v is not None}
        if not known:
            rows[str(n)] = None
            continue
        bound = min(known, key=lambda k: known[k])
        rate = known[bound]
        rows[str(n)] = {"sources_per_s": round(rate, 1),
                        "articles_per_s": round(rate * articles, 1),
                        "alerts_per_s": round(rate * alerts, 1), "bound": bound}
    return {
        "from_setup": base["setup"], "daemon_cpu_ms_per_source": daemon_ms,
        "daemons_per_machine": daemons,
        "machine_cpu_bound_sources_per_s": round(by_cpu, 1) if by_cpu else None,
        "machine_store_thread_bound_sources_per_s": round(by_thread, 1) if by_thread
        else None,
        "db_cpu_ms_per_source": round(db_ms, 3) if db_ms else None, "db_cost_basis": basis,
        "database_ceiling_sources_per_s": round(ceiling, 1) if ceiling else None,
        "machines": rows,
        "assumptions": [
            f"each machine has {machine_cores:g} cores and runs {daemons} daemon(s) of "
            f"workers: 1 ({base['setup']}'s figures, this workload: short items, full "
            "text off, a fifth matching); it polls at most the lesser of its CPU "
            f"({machine_cores:g} cores / the daemon's CPU per source) and {daemons} times "
            "one daemon's measured rate (a daemon's store calls run on 3 threads, each a "
            "round trip to the server: its rate is bound by them as much as by its CPU; "
            "measured on this machine, with the database on the same cores, so a lower "
            "bound)",
            f"the database server has {db_cores:g} cores of its own and is CPU-bound at "
            f"{db_cores:g} / its cost per source ({basis}), mean over the PostgreSQL "
            "setups; its disk (WAL written behind the commits: synchronous_commit off), "
            "checkpoints and autovacuum, not counted, keep up",
            "daemons wait on each other no more than here: SKIP LOCKED claims never "
            "do, but the ingest's advisory locks are taken on 1,024 buckets of keys, so "
            "two polls' transactions often share one and commit in turn; the measured "
            "scaling efficiency says what that cost at this size",
            "feeds answer at once and hosts are many: the per-host delay caps one host "
            "at 1/delay requests/s, however many daemons",
            "connections: up to 5 per daemon (its pool of 4, one for wake-ups); the "
            "server's max_connections (100 by default) must cover 5 x the daemons",
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=2000, help="feeds")
    parser.add_argument("--hosts", type=int, default=8, help="loopback addresses serving them")
    parser.add_argument("--items", type=int, default=4, help="items in each answer")
    parser.add_argument("--new", type=int, default=2, help="items new at each request")
    parser.add_argument("--duration", type=float, default=60,
                        help="seconds measured per setup")
    parser.add_argument("--warm-up", type=float, default=20,
                        help="seconds after the first poll before measuring")
    parser.add_argument("--setups", default=SETUPS,
                        help=f"BACKEND:DAEMONSxWORKERS, comma-separated (default {SETUPS})")
    parser.add_argument("--server", default=default_server(),
                        help="PostgreSQL server DSN (a database is created on it per setup)")
    parser.add_argument("--pg-options", metavar="OPTIONS",
                        help="PGOPTIONS for the daemons' sessions, to try a setting "
                             "(e.g. '-c synchronous_commit=off')")
    parser.add_argument("--machine-cores", type=float, default=os.cpu_count() or 1,
                        help="cores of a daemon machine, for the projection")
    parser.add_argument("--db-cores", type=float, default=2,
                        help="cores of the database server, for the projection")
    parser.add_argument("--machines", default="1,2,4,8,16",
                        help="machine counts to project to")
    args = parser.parse_args(argv)
    setups = [Setup.parse(s) for s in args.setups.split(",") if s]
    if not 1 <= args.new <= args.items:
        parser.error("--new must be between 1 and --items")

    print(f"scale: {args.sources} feeds on {args.hosts} hosts, {args.new} new of "
          f"{args.items} items a poll; {args.warm_up:g}s warm-up, {args.duration:g}s "
          f"measured per setup; {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}",
          flush=True)
    feeds = Feeds(args.items, args.new)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="newswatch-scale-") as tmp, \
            serve(feeds, args.hosts) as hosts:
        for setup in setups:
            with contextlib.ExitStack() as stack:
                database = (stack.enter_context(postgres_database(args.server))
                            if setup.backend == "postgres"
                            else str(Path(tmp) / f"{setup.name.replace(':', '-')}.db"))
                result = run_setup(setup, Path(tmp), database, feeds, hosts, args)
            results[setup.name] = result
            print(f"  {setup.name:14} {result['sources_per_s']:>8.1f} sources/s "
                  f"{result['articles_per_s']:>8.1f} articles/s "
                  f"{result['alerts_per_s']:>7.1f} alerts/s   daemon CPU "
                  f"{result['daemon_cpu_ms_per_source']:.2f} ms/source"
                  + (f", database CPU {result['db_cpu_ms_per_source']:.2f} ms/source"
                     if result["db_cpu_ms_per_source"] is not None else "")
                  + f"  (load {result['load_average']:.2f})", flush=True)
            print(f"  {'':14} ms per poll: " + ", ".join(
                f"{stage} {ms:g}" for stage, ms in result["stage_ms_per_poll"].items()),
                  flush=True)
    report = {
        "sources": args.sources, "hosts": args.hosts, "duration_s": args.duration,
        "pg_options": args.pg_options,
        "warm_up_s": args.warm_up, "cores": os.cpu_count(),
        "setups": list(results.values()), "targets": targets(results),
        "efficiency": efficiency(results),
        "projection": projection(results, args.machine_cores, args.db_cores,
                                 [int(m) for m in args.machines.split(",") if m]),
    }
    print()
    for t in report["targets"]:
        print(f"target: {t['target']}: {t['ratio']} (at least {t['at_least']}): "
              f"{t['result']}")
    for name, value in report["efficiency"].items():
        print(f"scaling efficiency {name}: {value}")
    if report["projection"]:
        p = report["projection"]
        print("projection: " + ", ".join(
            f"{n} machine(s) {v['sources_per_s']} sources/s ({v['bound']}-bound)"
            for n, v in p["machines"].items() if v))
        for line in p["assumptions"]:
            print(f"  assuming {line}")
    print()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
