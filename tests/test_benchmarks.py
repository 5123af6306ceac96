"""The benchmarks still run: each at a tiny size, so a change cannot leave one broken
until someone needs its figures. Their timings are never asserted."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.postgres import fresh_database, server, unreachable, with_database

ROOT = Path(__file__).parent.parent


@pytest.mark.slow  # four `newswatch once` subprocesses and a floor: about 20 s
def test_the_ingest_benchmark_runs_tiny_and_prints_its_table() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.ingest", "--feeds", "1",
                           "--items", "5", "--watch", "20", "--workers", "2"], cwd=ROOT,
                          capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr
    for row in ("newswatch once, in process (whole)", "newswatch once, in process (steady)",
                "newswatch once, 2 workers (whole)", "newswatch once, 2 workers (steady)",
                "floor: feedparser + executemany", "parse", "dedup", "extract", "match",
                "fold", "fingerprint", "store", "plan"):
        assert row in done.stdout
    report = json.loads(done.stdout[done.stdout.index("\n{") + 1:])
    assert report["articles"] == 5 and report["alerts_planned"] == report["matched"] > 0
    assert report["workers_0"]["once_seconds"] > 0 and report["workers_2"]["once_seconds"] > 0
    assert all(v > 0 for v in report["stage_us_per_article"].values()), "every stage timed"


def test_the_config_load_benchmark_runs_tiny_and_prints_its_table() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.config_load", "--watch", "30",
                           "--runs", "1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=110, check=False)
    assert done.returncode == 0, done.stderr
    for row in ("load_config", "read_yaml", "round_trip", "libyaml_compose", "json_loads"):
        assert row in done.stdout
    report = json.loads(done.stdout[done.stdout.index("\n{") + 1:])
    assert report["watch_items"] == 30 and set(report) == {"watch_items", "json", "block"}


def test_the_archive_benchmark_runs_tiny_with_a_generated_watchlist() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.archive", "--articles", "60",
                           "--batch", "20", "--watch-items", "50", "--queries", "5",
                           "--preview"],
                          cwd=ROOT, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout[done.stdout.index("\n{") + 1:])
    assert report["articles"] == 60 and report["watch_items"] == 50
    assert report["alerts_queued"] > 0 and report["add_articles_cpu_ms_per_article"] > 0
    assert report["preview_articles"] == 60 and report["preview_first_batch_ms"] > 0


def test_the_latency_benchmark_runs_tiny() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.latency", "--watch", "20",
                           "--rounds", "2", "--items", "5"], cwd=ROOT, capture_output=True,
                          text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout[done.stdout.index("\n{") + 1:])
    assert report["rounds"] == 2 and report["median_ms"] > 0
    assert all(report["stage_median_ms"][s] > 0 for s in ("parse", "match", "store"))


@pytest.mark.slow  # a database built by a worker pool, then a writer process: about 12 s
@pytest.mark.parametrize("backend", ["sqlite", pytest.param(
    "postgres", marks=pytest.mark.postgres)])
def test_the_desk_benchmark_runs_tiny_idle_and_while_a_writer_ingests_and_over_http(
        backend: str) -> None:
    with contextlib.ExitStack() as stack:
        on = ["--database", stack.enter_context(fresh_database())] \
            if backend == "postgres" else []
        done = subprocess.run([sys.executable, "-m", "benchmarks.desk", "--articles", "300",
                               "--batch", "50", "--watch-items", "30", "--queries", "2",
                               "--writer-batch", "5", "--writer-pause", "0", *on], cwd=ROOT,
                              capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout[done.stdout.index("\n{") + 1:])
    assert report["articles"] == 300 and report["build_seconds"] > 0
    for timings in (report["idle"], report["while_ingesting"]):
        assert {"stories_first_page", "stories_by_watch_item", "stories_deep_page",
                "search_30_days", "http_stories_page", "http_search_30_days",
                "http_search_everything"} <= set(timings)
        assert all(t["p95_ms"] >= t["p50_ms"] >= 0 for t in timings.values())


@pytest.mark.slow
@pytest.mark.postgres
def test_the_db_copy_benchmark_runs_tiny_both_ways() -> None:
    if unreachable():
        pytest.skip(unreachable() or "")
    done = subprocess.run([sys.executable, "-m", "benchmarks.dbcopy", "--articles", "200",
                           "--batch", "100", "--watch-items", "30", "--server", server()],
                          cwd=ROOT, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout[done.stdout.index("\n{") + 1:])
    assert report["tables"]["articles"] == 200
    assert report["indexed"] == {"postgresql": 200, "sqlite": 200}
    assert report["rows_per_s"]["to_postgresql"] > 0 and report["rows_per_s"]["to_sqlite"] > 0


@pytest.mark.slow  # four daemons, one or two at a time, with workers: about a minute
@pytest.mark.postgres
@pytest.mark.timeout(300)  # a loaded machine makes each daemon's start and first round slow
def test_the_scale_benchmark_runs_tiny_on_postgres_and_sqlite_and_reports_its_targets() -> None:
    if unreachable():
        pytest.skip(unreachable() or "")
    done = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--sources", "12",
                           "--hosts", "3", "--duration", "3", "--warm-up", "1",
                           "--setups", "sqlite:1x2,postgres:1x2,postgres:2x1",
                           "--server", server()], cwd=ROOT, capture_output=True,
                          text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout[done.stdout.index("\n{") + 1:])
    assert [s["setup"] for s in report["setups"]] == [
        "sqlite:1x2", "postgres:1x2", "postgres:2x1"]
    # Every feed was polled (the warm-up waits for it) and alerts reached the receiver;
    # how many fall in the short window (or in one setup) depends on the machine.
    assert sum(setup["run_alerts"] for setup in report["setups"]) > 0
    for setup in report["setups"]:
        assert setup["run_polls"] >= 12, setup
        assert setup["polls"] >= 0 and setup["sources_per_s"] >= 0, setup
        assert set(setup["stage_ms_per_poll"]) >= {"parse", "dedup", "store"}, setup
    # The database's load is read for PostgreSQL alone.
    assert report["setups"][0]["db_active_ms_per_source"] is None
    assert all(s["db_commits_per_source"] is not None for s in report["setups"][1:])
    assert set(report["efficiency"]) <= {"postgres:2x1"}
    # Both targets are reported (met or not: never asserted), with the ratios they read.
    assert [t["at_least"] for t in report["targets"]] == [0.85, 0.7]
    assert all(t["result"] in ("pass", "miss", "n/a (no rate measured)")
               for t in report["targets"])
    projection = report["projection"]
    assert projection["assumptions"] and set(projection["machines"]) == {
        "1", "2", "4", "8", "16"}
    assert "target: " in done.stdout and "projection: " in done.stdout
    # Every database it made is gone.
    made = [s["database"] for s in report["setups"][1:]]
    with psycopg.connect(with_database(server(), "postgres"), autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = ANY(%s)",
                            [made]).fetchone()
    assert len(set(made)) == 2 and left == (0,)
