"""Commands that run or check the daemon: check, once, run, backup, prune, test-alert,
status, demo."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from alerts.payload import story_data
from crawler.app import fleet, tuning
from crawler.app.daemon import OnceReport, Runner, send_test_alert
from crawler.app.workers import cores
from crawler.cli.base import Context, cli, err, out, print_json, show_table
from crawler.cli.progress import progress
from crawler.config import (
    parse_duration,
    source_key,
)
from crawler.core.clock import SystemClock
from crawler.process import health
from crawler.store import backend


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def check(obj: Context, as_json: bool) -> None:
    """Validate the config and summarise it; exits 1 listing every problem. Warnings
    (FILE:LINE:COL: warning: ...) go to stderr and leave the exit status 0."""
    config = obj.config()
    for warning in config.warnings:
        click.echo(f"{warning.file}:{warning.line}:{warning.column}: warning: "
                   f"{warning.message}", err=True)
    states = tuning.rule_states(config, obj.learned_rules(config))
    for rule, state in states:
        if state != "applied":
            click.echo(f"warning: learned rule {rule.id} ({rule.kind} {rule.term!r} on "
                       f"{rule.watchlist}: {rule.watch}): {state}; `newswatch rules remove "
                       f"{rule.id}`", err=True)
    summary = {
        "config": str(config.directory), "version": config.version,
        "database": config.database_shown, "backend": backend(config),
        "sources": [{"name": s.name, "kind": s.kind, "feed": s.feed, "url": source_key(s),
                     "enabled": s.enabled} for s in config.sources],
        "watchlists": [{"name": w.name, "items": len(w.watch), "channels": w.channels}
                       for w in config.watchlists],
        "channels": [{"name": n, "type": c.type, "enabled": c.enabled}
                     for n, c in config.settings.channels.items()],
        "warnings": [str(w) for w in config.warnings],
        "learned_rules": [{"id": r.id, "watchlist": r.watchlist, "watch": r.watch,
                           "kind": r.kind, "term": r.term, "state": state}
                          for r, state in states],
    }
    if as_json:
        print_json(summary)
        return
    out.print(f"[green]config OK[/green] {escape(str(config.directory))} "
              f"(version {config.version})")
    out.print(f"database: {config.database_shown} ({backend(config)})", markup=False)
    out.print(f"{len(config.active_sources())} active source(s) of {len(config.sources)}, "
              f"{len(config.watchlists)} watchlist(s) with "
              f"{sum(len(w.watch) for w in config.watchlists)} watch item(s)")
    applied = sum(state == "applied" for _, state in states)
    if states:
        out.print(f"{applied} learned rule(s) from the database over the watchlists "
                  f"(`newswatch rules`)" + (f"; {len(states) - applied} without effect"
                                           if applied < len(states) else ""))
    show_table("channels", ["name", "type", "state"],
               [(n, c.type, ("enabled" if c.enabled else "disabled (no destination)")
             + (f", digest {c.digest}" if c.digest else "")
             + (f", at most {c.max_per_hour}/h" if c.max_per_hour else "")
             + (", operator notices" if n == config.settings.operator else ""))
            for n, c in config.settings.channels.items()])


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the per-source results as JSON.")
@click.option("--workers", type=click.IntRange(0, 256), default=0, show_default=True,
              help="Worker processes for parsing and matching, as daemon.workers; 0 does "
                   "that work in this process (a worker takes about a second to start).")
@click.pass_obj
def once(obj: Context, as_json: bool, workers: int) -> None:
    """One pass: poll every source, store and match, deliver due alerts, then exit.

    Exits 0 even when sources fail (each failure is listed and kept on its source);
    non-zero only for a config (1) or database (2) error.
    """
    config = obj.config()
    with obj.store(config) as store:
        runner = Runner(config, store, workers=workers)
        with progress("polling", len(config.active_sources()), quiet=as_json) as advance:
            report = asyncio.run(runner.once(lambda result: advance(result.source)))
    polls = sorted(report.polls, key=lambda p: p.source)
    if as_json:
        print_json({"sources": [dataclasses.asdict(p) for p in polls],
                     "delivered": report.delivery.delivered,
                     "retrying": report.delivery.retrying, "dead": report.delivery.dead,
                     "digests": report.delivery.digests,
                     "notices": report.delivery.notices})
        return
    show_table("sources", ["source", "items", "new", "matched", "alerts", "result"], [
        (p.source, p.items, p.new, p.matched, p.queued,
         f"error: {p.error}" if p.error else "not modified" if p.not_modified else "ok")
        for p in polls])
    d = report.delivery
    out.print(f"alerts: {d.delivered} delivered, {d.retrying} to retry, {len(d.dead)} dead"
              + (f", {d.digests} digest(s) made" if d.digests else ""))
    for line in d.dead:
        out.print(f"  dead: {line}", markup=False)
    for line in d.notices:
        out.print(f"  operator notice: {line}", markup=False)


@cli.command()
@click.pass_obj
def run(obj: Context) -> None:
    """Run the daemon until SIGTERM or SIGINT (Ctrl-C).

    Editing a config file, or SIGHUP, reloads the config; an invalid one is logged and
    the running config stays in force.
    """
    config = obj.config()
    configured = config.settings.daemon.workers
    with obj.store(config) as store:
        asyncio.run(_run_until_signal(Runner(
            config, store, workers=cores() if configured is None else configured)))


async def _run_until_signal(runner: Runner) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, runner.reload_requested.set)
    await runner.run(stop)


@cli.command()
@click.argument("destination", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def backup(obj: Context, destination: Path) -> None:
    """Copy the database to DESTINATION, consistently, while the daemon may keep writing."""
    config = obj.config()
    if destination.exists():
        raise click.ClickException(f"{destination} exists; choose a new file")
    with obj.store(config) as store:
        store.backup(destination)
    out.print(f"backed up {config.database_shown} to {destination}", markup=False)


@cli.command()
@click.option("--older-than", "older_than", help="Prune articles fetched longer ago than "
              "this (default: retention.articles).")
@click.pass_obj
def prune(obj: Context, older_than: str | None) -> None:
    """Forget the text and full-text index rows of old articles now.

    Titles, URLs, matches, alert records and dedup keys stay, so a pruned article seen
    again in a feed does not alert again. The daemon does the same every hour.
    """
    config = obj.config()
    try:
        keep = (parse_duration(older_than) if older_than is not None
                else config.settings.retention.articles)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from exc
    with obj.store(config) as store:
        count = store.prune_articles(SystemClock().now(), timedelta(seconds=keep))
    out.print(f"pruned the text of {count} article(s)")


@cli.command("test-alert")
@click.argument("channel")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def test_alert(obj: Context, channel: str, as_json: bool) -> None:
    """Send a sample alert to CHANNEL now and report exactly what happened.

    The sample goes straight to the channel (not through the outbox) under a fresh id;
    exits 0 when it was delivered, 1 when it was not.
    """
    config = obj.config()
    outcome = asyncio.run(send_test_alert(config, channel, SystemClock().now()))
    if as_json:
        print_json(dataclasses.asdict(outcome))
    elif outcome.delivered:
        out.print(f"[green]delivered[/green] to {escape(channel)} ({escape(outcome.detail)}), "
                  f"id {escape(str(outcome.message_id))}")
    else:
        err.print(f"[red]not delivered[/red] to {escape(channel)}: {escape(outcome.detail)}")
    if not outcome.delivered:
        raise SystemExit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the sources as JSON.")
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Every source's health: state, last success and error, articles, next poll; the
    daemons running on the database, with the config version each runs (a warning when
    they differ)."""
    config = obj.config()
    now = SystemClock().now()
    with obj.store(config) as store:
        store.sync_sources(config.active_sources(), now)
        rows = [health.view(row, now) for row in store.source_health(now)]
        counts = store.alert_counts()
        daemons = store.daemons(now, fleet.GONE_AFTER)
    warning = fleet.different_configs(daemons)
    if as_json:
        print_json({"database": config.database_shown, "backend": backend(config),
                    "config_version": config.version, "sources": rows, "alerts": counts,
                    "daemons": daemons, "warnings": [warning] if warning else []})
        return
    out.print(f"database: {config.database_shown} ({backend(config)})", markup=False)
    if daemons:
        show_table("daemons", ["daemon", "state", "started", "last seen", "config",
                               "newswatch", "workers"],
                   [(fleet.name(d), "running" if d["live"] else "gone",
                     d["started_at"][:19], d["seen_at"][:19],
                     d["config_version"] + (" (this config)"
                                            if d["config_version"] == config.version else ""),
                     d["version"], d["workers"]) for d in daemons])
    else:
        out.print("daemons: none running")
    if warning:
        err.print(f"warning: {warning}", style="yellow", markup=False)
    show_table("sources", ["source", "kind", "state", "last success", "failures", "last error",
                       "24h", "usual/day", "next poll"],
               [(r["name"], r["kind"], r["state"], (r["last_success_at"] or "never")[:16],
             r["error_count"], r["last_error"], r["articles_24h"], r["daily_rate"],
             (r["next_poll"] or "—")[:16])
            for r in rows])
    out.print("alerts: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                            or "none yet"))


@cli.command()
def demo() -> None:
    """See alerts flow in seconds: bundled sample feeds, a local webhook printer, a
    temporary database. Needs no network and touches nothing of yours."""
    from crawler.app import demo as sample

    logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))

    def show(title: str, report: OnceReport, received: list[dict[str, Any]]) -> None:
        out.rule(title)
        show_table("sources", ["source", "items", "new", "matched", "alerts"],
                   [(p.source, p.items, p.new, p.matched, p.queued)
                for p in sorted(report.polls, key=lambda p: p.source)])
        stories = [(r["id"], story_data(r)) for r in received]
        show_table(f"{len(received)} webhook(s) received", ["webhook-id", "watchlists",
                                                        "title", "matched"],
                   [(i[:16] + "…", ", ".join(w["name"] for w in s["watchlists"]),
                     s["article"]["title"],
                     ", ".join(sorted({m["matched"] for w in s["watchlists"]
                                       for item in w["items"] for m in item["mentions"]})))
                    for i, s in stories])

    total = sample.run(show)
    out.print(f"[green]{total} alert(s) delivered in all, none twice.[/green] Edit "
              "config/ and run `newswatch once` to do the same with real feeds.")


