"""The ``newswatch`` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from crawler import __version__
from crawler.app.daemon import OnceReport, Runner, send_test_alert
from crawler.app.pipeline import PollResult
from crawler.cli import export
from crawler.collect import discovery, fetch, pages
from crawler.collect.feeds import parse_feed
from crawler.collect.fetch import make_client
from crawler.config import (
    Config,
    Source,
    WatchlistConfig,
    load_config,
    parse_duration,
    source_url,
)
from crawler.core.article import Article
from crawler.core.clock import SystemClock, parse_iso
from crawler.core.errors import ConfigError, SourceError, StoreError
from crawler.process import health, search
from crawler.process.dedup import canonical_url
from crawler.process.extract import extract
from crawler.process.match import Match, Matcher
from crawler.store import Store

EXIT_CONFIG = 1
EXIT_DATABASE = 2
EXIT_FETCH = 3

out = Console()
err = Console(stderr=True)


class _SourceFormatter(logging.Formatter):
    """Puts the source (or channel) an event concerns at the front of the line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        subject = getattr(record, "source", None) or getattr(record, "channel", None)
        if subject:
            kind = "source" if getattr(record, "source", None) else "channel"
            prefix, sep, rest = line.partition("] ")
            return f"{prefix}] [{kind} {subject}] {rest}" if sep else f"[{subject}] {line}"
        return line


class _JsonFormatter(logging.Formatter):
    """One JSON object a line, with the source, channel, alert and article as fields."""

    FIELDS = ("source", "channel", "alert", "article")

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                 "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage()}
        entry.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else
                         _SourceFormatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class _Context:
    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir

    def config(self) -> Config:
        try:
            return load_config(self.config_dir)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            err.print(f"{len(exc.problems)} problem(s) in the config; nothing was run.",
                      style="red")
            raise SystemExit(EXIT_CONFIG) from exc

    @contextmanager
    def store(self, config: Config) -> Iterator[Store]:
        try:
            store = Store(config.database_path)
        except StoreError as exc:
            click.echo(f"database error: {exc}", err=True)
            raise SystemExit(EXIT_DATABASE) from exc
        try:
            yield store
        except StoreError as exc:
            click.echo(f"database error: {exc}", err=True)
            raise SystemExit(EXIT_DATABASE) from exc
        finally:
            store.close()


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_dir", type=click.Path(path_type=Path), default="config",
              envvar="NEWSWATCH_CONFIG", show_default=True, show_envvar=True,
              help="Config directory holding newswatch.yaml, sources.yaml, watchlists.yaml.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              help="How much the log on stderr says.")
@click.option("--log-format", default="text", show_default=True,
              type=click.Choice(["text", "json"]),
              help="Log lines as readable text, or one JSON object per line.")
@click.version_option(__version__, prog_name="newswatch")
@click.pass_context
def cli(ctx: click.Context, config_dir: Path, log_level: str, log_format: str) -> None:
    """newswatch: watch news sources for people and terms, and alert on every match once."""
    _setup_logging(log_level, log_format)
    ctx.obj = _Context(config_dir)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def check(obj: _Context, as_json: bool) -> None:
    """Validate the config and summarise it; exits 1 listing every problem."""
    config = obj.config()
    summary = {
        "config": str(config.directory), "version": config.version,
        "database": str(config.database_path),
        "sources": [{"name": s.name, "kind": s.kind, "feed": s.feed, "url": source_url(s),
                     "enabled": s.enabled} for s in config.sources],
        "watchlists": [{"name": w.name, "items": len(w.watch), "channels": w.channels}
                       for w in config.watchlists],
        "channels": [{"name": n, "type": c.type, "enabled": c.enabled}
                     for n, c in config.settings.channels.items()],
    }
    if as_json:
        _print_json(summary)
        return
    out.print(f"[green]config OK[/green] {config.directory} (version {config.version})")
    out.print(f"database: {config.database_path}")
    out.print(f"{len(config.active_sources())} active source(s) of {len(config.sources)}, "
              f"{len(config.watchlists)} watchlist(s) with "
              f"{sum(len(w.watch) for w in config.watchlists)} watch item(s)")
    _table("channels", ["name", "type", "state"],
           [(n, c.type, ("enabled" if c.enabled else "disabled (no destination)")
             + (f", digest {c.digest}" if c.digest else "")
             + (f", at most {c.max_per_hour}/h" if c.max_per_hour else "")
             + (", operator notices" if n == config.settings.operator else ""))
            for n, c in config.settings.channels.items()])


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the per-source results as JSON.")
@click.pass_obj
def once(obj: _Context, as_json: bool) -> None:
    """One pass: poll every source, store and match, deliver due alerts, then exit.

    Exits 0 even when sources fail (each failure is listed and kept on its source);
    non-zero only for a config (1) or database (2) error.
    """
    config = obj.config()
    with obj.store(config) as store:
        runner = Runner(config, store)
        total = len(config.active_sources())
        if err.is_terminal and not as_json and total:
            with Progress(TextColumn("polling"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.description}"), console=err,
                          transient=True) as bar:
                task = bar.add_task("", total=total)

                def advance(result: PollResult) -> None:
                    bar.update(task, advance=1, description=result.source)

                report = asyncio.run(runner.once(advance))
        else:
            report = asyncio.run(runner.once())
    polls = sorted(report.polls, key=lambda p: p.source)
    if as_json:
        _print_json({"sources": [dataclasses.asdict(p) for p in polls],
                     "delivered": report.delivery.delivered,
                     "retrying": report.delivery.retrying, "dead": report.delivery.dead,
                     "digests": report.delivery.digests,
                     "notices": report.delivery.notices})
        return
    _table("sources", ["source", "items", "new", "matched", "alerts", "result"], [
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
def run(obj: _Context) -> None:
    """Run the daemon until SIGTERM or SIGINT (Ctrl-C).

    Editing a config file, or SIGHUP, reloads the config; an invalid one is logged and
    the running config stays in force.
    """
    config = obj.config()
    with obj.store(config) as store:
        asyncio.run(_run_until_signal(Runner(config, store)))


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
def backup(obj: _Context, destination: Path) -> None:
    """Copy the database to DESTINATION, consistently, while the daemon may keep writing."""
    config = obj.config()
    if destination.exists():
        raise click.ClickException(f"{destination} exists; choose a new file")
    with obj.store(config) as store:
        store.backup(destination)
    out.print(f"backed up {config.database_path} to {destination}")


@cli.command()
@click.option("--limit", default=20, show_default=True, help="How many matches to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the matches as JSON.")
@click.pass_obj
def matches(obj: _Context, limit: int, as_json: bool) -> None:
    """The most recent matches, newest first."""
    config = obj.config()
    with obj.store(config) as store:
        rows = store.recent_matches(limit)
    if as_json:
        _print_json(rows)
        return
    _table("matches", ["when", "watchlist", "watch", "matched", "field", "source", "title"],
           [(r["created_at"][:19], r["watchlist"], r["watch"], r["matched"], r["field"],
             r["source"], r["title"]) for r in rows])


def _since(value: str | None) -> datetime | None:
    """``--since`` as a duration back from now (``7d``) or an ISO date or time."""
    if value is None:
        return None
    try:
        return SystemClock().now() - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        return parse_iso(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give a duration such as 7d or a date such "
                                 "as 2026-11-01", param_hint="--since") from None


@cli.command()
@click.option("--since", default="3d", show_default=True,
              help="Stories seen in this last span (7d, 12h) or since this date.")
@click.option("--limit", default=30, show_default=True, help="How many stories to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the stories as JSON.")
@click.pass_obj
def stories(obj: _Context, since: str, limit: int, as_json: bool) -> None:
    """Recent stories: each article with its copies, the outlets that carried it, when
    it was first seen and the watch items it matched."""
    config = obj.config()
    with obj.store(config) as store:
        rows = store.recent_stories(_since(since) or SystemClock().now(), limit)
    if as_json:
        _print_json(rows)
        return
    _table("stories", ["id", "first seen", "title", "articles", "outlets", "matches"],
           [(r["id"], r["first_seen_at"][:16], r["title"], r["articles"],
             f"{r['outlets']}: " + ", ".join(r["outlets_list"]), "; ".join(r["watches"]))
            for r in rows])


@cli.command("search")
@click.argument("query")
@click.option("--since", help="Only articles fetched in this last span (30d) or since a date.")
@click.option("--source", help="Only articles of this source.")
@click.option("--watchlist", help="Only articles that matched this watchlist.")
@click.option("--rank", is_flag=True, help="Best match first (bm25) instead of newest first.")
@click.option("--limit", default=20, show_default=True, help="How many articles to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def search_command(obj: _Context, query: str, since: str | None, source: str | None,
                   watchlist: str | None, rank: bool, limit: int, as_json: bool) -> None:
    """Search the archive's titles, summaries and texts.

    QUERY takes words, "exact phrases", prefixes (mass*) and AND, OR, NOT (in capitals)
    with parentheses; words are compared as matching compares them (case, Arabic-script
    letter variants). Snippets mark the hit «like this».
    """
    try:
        parsed = search.parse_query(query)
    except search.QueryError as exc:
        raise click.BadParameter(str(exc), param_hint="QUERY") from exc
    config = obj.config()
    with obj.store(config) as store:
        try:
            rows = store.search(parsed.fts, since=_since(since), source=source,
                                watchlist=watchlist, order="rank" if rank else "newest",
                                limit=limit)
        except StoreError as exc:
            raise click.BadParameter(str(exc), param_hint="QUERY") from exc
    for row in rows:
        row["snippet"] = next((s for s in (search.highlight(row[f] or "", parsed.terms)
                                           for f in ("title", "summary", "text")) if s), "")
        del row["text"]
    if as_json:
        _print_json(rows)
        return
    _table(f"{len(rows)} article(s) for {query}",
           ["published", "source", "story", "title", "snippet"],
           [((r["published_at"] or r["fetched_at"])[:16], r["source"], r["story_id"],
             r["title"], r["snippet"]) for r in rows])


@cli.command()
@click.option("--older-than", "older_than", help="Prune articles fetched longer ago than "
              "this (default: retention.articles).")
@click.pass_obj
def prune(obj: _Context, older_than: str | None) -> None:
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


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True, help="One JSON object per article, or one CSV row per match.")
@click.option("--since", help="Only matches stored in this last span (30d) or since a date.")
@click.option("--watchlist", help="Only this watchlist's matches.")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of standard output.")
@click.pass_obj
def export_command(obj: _Context, fmt: str, since: str | None, watchlist: str | None,
                   output: Path | None) -> None:
    """Matched articles with their matches, as JSON Lines or CSV, newest match first."""
    config = obj.config()
    with obj.store(config) as store:
        rows = store.matched_articles(watchlist=watchlist, since=_since(since))
    if output is None:
        export.write(sys.stdout, fmt, rows)
        return
    with output.open("w", encoding="utf-8", newline="") as handle:
        export.write(handle, fmt, rows)
    err.print(f"exported {len(rows)} article(s) to {output}")


@cli.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(["pending", "held", "retrying", "digested",
                                             "delivered", "dead"]),
              help="Only alerts in this state (held: waiting for a digest).")
@click.option("--limit", default=50, show_default=True, help="How many alerts to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the alerts as JSON.")
@click.pass_context
def alerts(ctx: click.Context, status: str | None, limit: int, as_json: bool) -> None:
    """Alerts in the outbox: pending, held for a digest, retrying, delivered, dead.

    `newswatch alerts retry` sends dead alerts again.
    """
    if ctx.invoked_subcommand is not None:
        return
    obj: _Context = ctx.obj
    config = obj.config()
    with obj.store(config) as store:
        rows = store.alerts(status, limit)
        counts = store.alert_counts()
    if as_json:
        _print_json({"counts": counts, "alerts": rows})
        return
    _table("alerts", ["id", "kind", "channel", "watchlist", "state", "tries",
                      "next / delivered", "title", "last error"],
           [(r["id"], r["kind"], r["channel"], r["watchlist"], r["state"], r["attempts"],
             (r["delivered_at"] or r["next_attempt_at"] or "")[:19],
             r["title"] or ("digest" if r["kind"] == "digest" else ""), r["last_error"])
            for r in rows])
    out.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no alerts yet")


@alerts.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--dead", is_flag=True, help="Requeue every dead alert.")
@click.pass_obj
def alerts_retry(obj: _Context, ids: tuple[int, ...], dead: bool) -> None:
    """Requeue alerts by ID (from `newswatch alerts`), or all dead ones with --dead.

    A requeued alert gets a fresh set of attempts and goes out on the next pass under the
    same id; an alert that was part of a digest is requeued as that digest. Delivered
    alerts are never sent again.
    """
    if not ids and not dead:
        raise click.UsageError("give alert IDs or --dead")
    config = obj.config()
    with obj.store(config) as store:
        count = store.requeue(SystemClock().now(), ids, dead=dead)
    out.print(f"{count} alert(s) requeued")
    if ids and count < len(ids):
        err.print("some IDs were not requeued: unknown, or already delivered", style="yellow")
        raise SystemExit(1)


@cli.command("test-alert")
@click.argument("channel")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def test_alert(obj: _Context, channel: str, as_json: bool) -> None:
    """Send a sample alert to CHANNEL now and report exactly what happened.

    The sample goes straight to the channel (not through the outbox) under a fresh id;
    exits 0 when it was delivered, 1 when it was not.
    """
    config = obj.config()
    outcome = asyncio.run(send_test_alert(config, channel, SystemClock().now()))
    if as_json:
        _print_json(dataclasses.asdict(outcome))
    elif outcome.delivered:
        out.print(f"[green]delivered[/green] to {channel} ({outcome.detail}), "
                  f"id {outcome.message_id}")
    else:
        err.print(f"[red]not delivered[/red] to {channel}: {outcome.detail}")
    if not outcome.delivered:
        raise SystemExit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the sources as JSON.")
@click.pass_obj
def status(obj: _Context, as_json: bool) -> None:
    """Every source's health: state, last success and error, articles, next poll."""
    config = obj.config()
    now = SystemClock().now()
    with obj.store(config) as store:
        store.sync_sources(config.active_sources(), now)
        rows = store.source_health(now)
        counts = store.alert_counts()
    for row in rows:
        row["daily_rate"] = round(health.figures(row, now).daily_rate, 2)
        row["state"] = health.state(row, now)
    if as_json:
        _print_json({"sources": rows, "alerts": counts})
        return
    _table("sources", ["source", "kind", "state", "last success", "failures", "last error",
                       "24h", "usual/day", "next poll"],
           [(r["name"], r["kind"], r["state"], (r["last_success_at"] or "never")[:16],
             r["error_count"], r["last_error"], r["articles_24h"], r["daily_rate"],
             "—" if r["retired_at"] or not r["active"] else (r["next_check_at"] or "")[:16])
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
        _table("sources", ["source", "items", "new", "matched", "alerts"],
               [(p.source, p.items, p.new, p.matched, p.queued)
                for p in sorted(report.polls, key=lambda p: p.source)])
        _table(f"{len(received)} webhook(s) received", ["webhook-id", "watchlist", "title",
                                                        "matched"],
               [(r["id"][:16] + "…", r["data"]["watchlist"], r["data"]["article"]["title"],
                 ", ".join(sorted({m["matched"] for m in r["data"]["matches"]})))
                for r in received])

    total = sample.run(show)
    out.print(f"[green]{total} alert(s) delivered in all, none twice.[/green] Edit "
              "config/ and run `newswatch once` to do the same with real feeds.")


@cli.group()
def sources() -> None:
    """List, find, import and export sources (sources.yaml keeps its comments and order)."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the sources as JSON.")
@click.pass_obj
def sources_list(obj: _Context, as_json: bool) -> None:
    """Every source with its kind, interval and health."""
    config = obj.config()
    now = SystemClock().now()
    with obj.store(config) as store:
        store.sync_sources(config.active_sources(), now)
        rows = {r["name"]: r for r in store.source_health(now)}
    active = {s.name: s for s in config.active_sources()}
    listed: list[dict[str, Any]] = []
    for entry in config.sources:
        row = rows.get(entry.name, {})
        source = active.get(entry.name)
        state = health.state(row, now) if row.get("last_checked_at") else ""
        shown = ("disabled" if not entry.enabled else
                 "never polled" if not state else
                 f"failing ({row['error_count']} in a row)" if state == "failing" else state)
        listed.append({
            "name": entry.name, "kind": entry.kind, "url": row.get("url") or "",
            "interval_s": source.interval if source else None, "health": shown,
            "last_success_at": row.get("last_success_at"), "last_error": row.get("last_error"),
            "next_check_at": row.get("next_check_at") if entry.enabled else None})
    if as_json:
        _print_json(listed)
        return
    _table("sources", ["source", "kind", "interval", "health", "last success", "last error"],
           [(s["name"], s["kind"], _duration(s["interval_s"]), s["health"],
             (s["last_success_at"] or "never")[:19], s["last_error"]) for s in listed])


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@sources.command("test")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def sources_test(obj: _Context, names: tuple[str, ...], as_json: bool) -> None:
    """Fetch every source (or NAMES) now and parse the feeds, storing nothing; exits 1 if
    any fails. (Sitemap and crawl sources are checked for an answer only.)"""
    config = obj.config()
    chosen = [s for s in config.active_sources() if not names or s.name in names]
    unknown = set(names) - {s.name for s in chosen}
    if unknown:
        raise click.BadParameter(f"no such source: {', '.join(sorted(unknown))}")
    results = asyncio.run(_test_sources(config, chosen))
    if as_json:
        _print_json(results)
    else:
        _table("sources", ["source", "result", "items", "seconds", "final URL"],
               [(r["source"], r["error"] or "ok", r["items"], r["seconds"], r["url"])
                for r in results])
    if any(r["error"] for r in results):
        raise SystemExit(1)


async def _test_sources(config: Config, chosen: list[Source]) -> list[dict[str, Any]]:
    limit = asyncio.Semaphore(config.settings.daemon.concurrency)

    async def one(client: httpx.AsyncClient, source: Source) -> dict[str, Any]:
        started = time.monotonic()
        result: dict[str, Any] = {"source": source.name, "url": source.url, "items": 0,
                                  "error": None}
        async with limit:
            try:
                response = await fetch.fetch(client, fetch.Request(
                    source.name, source.url, source.timeout, source.user_agent,
                    source.max_bytes))
                result["url"] = response.url
                if source.kind == "feed":
                    feed = parse_feed(source.name, response.body, response.headers,
                                      response.url)
                    result["items"] = len(feed.articles)
            except SourceError as exc:
                result["error"] = exc.message
        result["seconds"] = round(time.monotonic() - started, 2)
        return result

    async with fetch.make_client(
            allow_private_networks=config.settings.allow_private_networks) as client:
        return list(await asyncio.gather(*(one(client, s) for s in chosen)))


@sources.command("add")
@click.argument("url")
@click.option("--name", help="Name of the new source (default: the site's host name).")
@click.option("--pick", type=int, help="Which of the found feeds and sitemaps to add "
              "(its number in the table); asked for when not given.")
@click.pass_obj
def sources_add(obj: _Context, url: str, name: str | None, pick: int | None) -> None:
    """Find the feeds and sitemaps of the site at URL and add one to sources.yaml."""
    config = obj.config()
    defaults = config.settings.defaults

    async def find() -> list[discovery.Candidate]:
        async with make_client(
                allow_private_networks=config.settings.allow_private_networks) as client:
            return await discovery.discover(client, url, defaults.user_agent,
                                            defaults.timeout)

    try:
        found = asyncio.run(find())
    except SourceError as exc:
        click.echo(f"cannot read {url}: {exc.message}", err=True)
        raise SystemExit(EXIT_FETCH) from exc
    if not found:
        click.echo(f"no feed or sitemap found on {url}", err=True)
        raise SystemExit(EXIT_FETCH)
    _table(f"found on {url}", ["#", "kind", "url", "title", "items", "found by"],
           [(i, c.kind, c.url, c.title, c.items, c.how) for i, c in enumerate(found, 1)])
    if pick is None:
        pick = click.prompt("Add which one? (0 for none)", type=int, default=1, err=True)
    if pick == 0:
        return
    if not 1 <= pick <= len(found):
        raise click.BadParameter(f"choose a number from 1 to {len(found)}", param_hint="--pick")
    chosen = found[pick - 1]
    entry = {"name": name or discovery.site_name(url), chosen.kind: chosen.url}
    try:
        written = discovery.append_sources(obj.config_dir, [entry])
    except discovery.SourcesFileError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_CONFIG) from exc
    out.print(f"added {chosen.kind} source '{written[0]}': {chosen.url}", markup=False)


@sources.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def sources_import(obj: _Context, file: Path) -> None:
    """Add the feeds of an OPML file; feeds already in sources.yaml are skipped."""
    config = obj.config()
    try:
        entries = discovery.read_opml(file.read_bytes())
    except discovery.SourcesFileError as exc:
        click.echo(f"{file}: {exc}", err=True)
        raise SystemExit(EXIT_CONFIG) from exc
    have = {s.feed for s in config.sources if s.feed}
    fresh = [e for e in entries if e["feed"] not in have]
    fresh = list({e["feed"]: e for e in reversed(fresh)}.values())[::-1]
    try:
        written = discovery.append_sources(obj.config_dir, fresh) if fresh else []
    except discovery.SourcesFileError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_CONFIG) from exc
    out.print(f"imported {len(written)} feed(s), skipped {len(entries) - len(written)} "
              "already present")


@sources.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@click.pass_obj
def sources_export(obj: _Context, output: Path | None) -> None:
    """The feed sources as OPML 2.0 (sitemap and crawl sources have no OPML form)."""
    config = obj.config()
    document = discovery.write_opml(config.sources)
    if output:
        output.write_text(document, encoding="utf-8")
    else:
        click.echo(document, nl=False)
    skipped = sum(1 for s in config.sources if not s.feed)
    if skipped:
        click.echo(f"{skipped} sitemap or crawl source(s) left out: OPML only holds feeds",
                   err=True)


def _watchlists(config: Config, name: str | None) -> Sequence[WatchlistConfig]:
    if name is None:
        return config.watchlists
    chosen = [w for w in config.watchlists if w.name == name]
    if not chosen:
        raise click.BadParameter(
            f"no watchlist named {name!r} (defined: "
            f"{', '.join(w.name for w in config.watchlists) or 'none'})", param_hint="--watchlist")
    return chosen


def _match_row(m: Match) -> dict[str, Any]:
    return {**dataclasses.asdict(m), "context": list(m.context)}


@cli.command("match")
@click.option("--text", help="The text to match (as an article's body).")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the text from this file (UTF-8).")
@click.option("--url", help="Fetch this article page, extract its body and match that.")
@click.option("--title", default="", help="A title to match as well (--text, --file).")
@click.option("--html", is_flag=True,
              help="The text is HTML, as feeds give it: extract plain text first.")
@click.option("--watchlist", help="Only this watchlist.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def match_command(obj: _Context, text: str | None, path: Path | None, url: str | None,
                  title: str, html: bool, watchlist: str | None, as_json: bool) -> None:
    """Which watch items a text or a page matches, and why: try a watchlist before it goes
    live. Sends and stores nothing; exits 3 when --url cannot be fetched."""
    if sum(x is not None for x in (text, path, url)) != 1:
        raise click.UsageError("give exactly one of --text, --file or --url")
    config = obj.config()
    chosen = _watchlists(config, watchlist)
    now = SystemClock().now()
    if url is not None:
        article = _fetch_article(config, url, now)
    else:
        body = (text or "") if path is None else path.read_text(encoding="utf-8")
        article = Article(source="(match)", url="", link="", title=title,
                          content_html=body if html else "", text="" if html else body)
        if html:
            article = extract(article, now)
    # a text tried here comes from no source: a watchlist's `sources` does not apply
    found = Matcher([w.model_copy(update={"sources": None}) for w in chosen]).match(article)
    page = {"url": article.url, "title": article.title, "published_at": article.published_at,
            "author": article.author, "language": article.language,
            "extraction": article.extraction, "text": article.text} if url else {}
    if as_json:
        _print_json({**page, "matches": [_match_row(m) for m in found]})
        return
    if url:
        out.print(f"{article.title or '(no title)'}\n{article.url}\nextraction: "
                  f"{article.extraction}; published: {article.published_at or 'unknown'}; "
                  f"{len(article.text)} characters of body", markup=False)
    if not found:
        out.print("no watch item matches")
        return
    _table("matches", ["watchlist", "watch", "alias", "field", "at", "context", "snippet"],
           [(m.watchlist, m.watch, m.alias, m.field, f"{m.start}-{m.end}",
             "\n".join(m.context), m.highlight) for m in found])


def _fetch_article(config: Config, url: str, now: datetime) -> Article:
    """One page, fetched with the daemon's limits and extracted; exits 3 if it cannot."""
    defaults = config.settings.defaults

    async def get() -> fetch.Response:
        async with make_client(
                allow_private_networks=config.settings.allow_private_networks) as client:
            return await fetch.fetch(client, fetch.Request(
                "match --url", url, defaults.timeout, defaults.user_agent, defaults.max_bytes,
                accept=fetch.PAGE_ACCEPT))

    try:
        answer = asyncio.run(get())
    except SourceError as exc:
        click.echo(f"cannot fetch {url}: {exc.message}", err=True)
        raise SystemExit(EXIT_FETCH) from exc
    return extract(Article(source="match --url", url=canonical_url(answer.url), link=url,
                           title="", page_html=pages.decode(answer), final_url=answer.url),
                   now)


@cli.command()
@click.option("--watchlist", help="Only this watchlist.")
@click.option("--since", default="30d", show_default=True,
              help="How far back to replay, by when articles were fetched (7d, 12h, 2w).")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.pass_obj
def backtest(obj: _Context, watchlist: str | None, since: str, as_json: bool) -> None:
    """Replay the current watchlists over the stored archive: what would newly match, and
    what matched that no longer would. A dry run: sends and stores nothing."""
    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    config = obj.config()
    chosen = _watchlists(config, watchlist)
    names = {w.name for w in chosen}
    matcher = Matcher(chosen)
    start = SystemClock().now() - timedelta(seconds=seconds)
    with obj.store(config) as store:
        archive = store.archive(start)
    newly: list[dict[str, Any]] = []
    gone: list[dict[str, Any]] = []

    def replay(article: Article, before: set[tuple[str, str]]) -> None:
        now = {(m.watchlist, m.watch): m for m in matcher.match(article)}
        about = {"url": article.url, "title": article.title, "source": article.source}
        for key in sorted(now.keys() - before):
            newly.append({**about, **_match_row(now[key])})
        for wl, watch in sorted(k for k in before - now.keys()
                                if watchlist is None or k[0] in names):
            gone.append({**about, "watchlist": wl, "watch": watch})

    if err.is_terminal and not as_json and len(archive) > 200:
        with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                      console=err, transient=True) as bar:
            for article, before in bar.track(archive):
                replay(article, before)
    else:
        for article, before in archive:
            replay(article, before)
    if as_json:
        _print_json({"articles": len(archive), "since": start.isoformat(timespec="seconds"),
                     "newly_matched": newly, "no_longer_matched": gone})
        return
    out.print(f"{len(archive)} stored article(s) since {start.isoformat(timespec='seconds')}: "
              f"{len(newly)} match(es) would be new, {len(gone)} would be gone. "
              "Nothing was sent or stored.")
    if newly:
        _table("would newly match", ["watchlist", "watch", "alias", "field", "title", "snippet"],
               [(r["watchlist"], r["watch"], r["alias"], r["field"], r["title"],
                 r["highlight"]) for r in newly])
    if gone:
        _table("would no longer match", ["watchlist", "watch", "title", "url"],
               [(r["watchlist"], r["watch"], r["title"], r["url"]) for r in gone])


def main() -> None:
    cli(prog_name="newswatch")
