"""The ``newswatch`` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from crawler import __version__
from crawler.article import Article
from crawler.clock import SystemClock
from crawler.config import Config, WatchlistConfig, load_config, parse_duration
from crawler.daemon import Runner
from crawler.errors import ConfigError, StoreError
from crawler.extract import extract
from crawler.match import Match, Matcher
from crawler.pipeline import PollResult
from crawler.store import Store

EXIT_CONFIG = 1
EXIT_DATABASE = 2

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


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SourceFormatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
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
@click.version_option(__version__, prog_name="newswatch")
@click.pass_context
def cli(ctx: click.Context, config_dir: Path, log_level: str) -> None:
    """newswatch: watch news sources for people and terms, and alert on every match once."""
    _setup_logging(log_level)
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
        "sources": [{"name": s.name, "feed": s.feed, "enabled": s.enabled}
                    for s in config.sources],
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
           [(n, c.type, "enabled" if c.enabled else "disabled (no url)")
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
                     "retrying": report.delivery.retrying, "dead": report.delivery.dead})
        return
    _table("sources", ["source", "items", "new", "matched", "alerts", "result"], [
        (p.source, p.items, p.new, p.matched, p.queued,
         f"error: {p.error}" if p.error else "not modified" if p.not_modified else "ok")
        for p in polls])
    d = report.delivery
    out.print(f"alerts: {d.delivered} delivered, {d.retrying} to retry, {len(d.dead)} dead")
    for line in d.dead:
        out.print(f"  dead: {line}", markup=False)


@cli.command()
@click.pass_obj
def run(obj: _Context) -> None:
    """Run the daemon until SIGTERM or SIGINT (Ctrl-C)."""
    config = obj.config()
    with obj.store(config) as store:
        asyncio.run(_run_until_signal(Runner(config, store)))


async def _run_until_signal(runner: Runner) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runner.run(stop)


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


@cli.command()
@click.option("--status", type=click.Choice(["pending", "delivered", "dead"]),
              help="Only alerts in this state.")
@click.option("--limit", default=50, show_default=True, help="How many alerts to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the alerts as JSON.")
@click.pass_obj
def alerts(obj: _Context, status: str | None, limit: int, as_json: bool) -> None:
    """Alerts in the outbox: pending (and retrying), delivered, dead."""
    config = obj.config()
    with obj.store(config) as store:
        rows = store.alerts(status, limit)
        counts = store.alert_counts()
    if as_json:
        _print_json({"counts": counts, "alerts": rows})
        return
    _table("alerts", ["id", "channel", "watchlist", "status", "tries", "next / delivered",
                      "title", "last error"],
           [(r["id"], r["channel"], r["watchlist"], r["status"], r["attempts"],
             (r["delivered_at"] or r["next_attempt_at"] or "")[:19], r["title"],
             r["last_error"]) for r in rows])
    out.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no alerts yet")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the sources as JSON.")
@click.pass_obj
def status(obj: _Context, as_json: bool) -> None:
    """Every source's health: last success, last error, failures, next poll."""
    config = obj.config()
    with obj.store(config) as store:
        store.sync_sources(config.active_sources(), SystemClock().now())
        rows = store.sources()
    if as_json:
        _print_json(rows)
        return
    _table("sources", ["source", "active", "last success", "failures", "last error",
                       "next poll"],
           [(r["name"], "yes" if r["active"] else "no", (r["last_success_at"] or "never")[:19],
             r["error_count"], r["last_error"], (r["next_check_at"] or "")[:19])
            for r in rows])


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
@click.option("--title", default="", help="A title to match as well.")
@click.option("--html", is_flag=True,
              help="The text is HTML, as feeds give it: extract plain text first.")
@click.option("--watchlist", help="Only this watchlist.")
@click.option("--json", "as_json", is_flag=True, help="Print the matches as JSON.")
@click.pass_obj
def match_command(obj: _Context, text: str | None, path: Path | None, title: str, html: bool,
                  watchlist: str | None, as_json: bool) -> None:
    """Which watch items a text matches, and why: try a watchlist before it goes live.

    Sends and stores nothing.
    """
    if (text is None) == (path is None):
        raise click.UsageError("give the text with exactly one of --text or --file")
    body = (text or "") if path is None else path.read_text(encoding="utf-8")
    config = obj.config()
    article = Article(source="(match)", url="", link="", title=title,
                      content_html=body if html else "", text="" if html else body)
    if html:
        article = extract(article)
    found = Matcher(_watchlists(config, watchlist)).match(article)
    if as_json:
        _print_json([_match_row(m) for m in found])
        return
    if not found:
        out.print("no watch item matches")
        return
    _table("matches", ["watchlist", "watch", "alias", "field", "at", "context", "snippet"],
           [(m.watchlist, m.watch, m.alias, m.field, f"{m.start}-{m.end}",
             "\n".join(m.context), m.highlight) for m in found])


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
