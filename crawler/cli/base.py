"""The command group, its shared context (config, store, exit codes) and output helpers."""

from __future__ import annotations

import difflib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from crawler import __version__
from crawler.app.configure import load_checked_config
from crawler.collect.fetch import url_problem
from crawler.config import (
    Config,
    parse_duration,
)
from crawler.core.clock import SystemClock, parse_iso
from crawler.core.errors import ConfigError, StoreError
from crawler.store import LearnedRule, Store, open_store

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
    for noisy in ("httpx", "httpcore", "urllib3", "apscheduler"):  # their lines name URLs
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class Context:
    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir

    def config(self) -> Config:
        try:
            return load_checked_config(self.config_dir)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            err.print(f"{len(exc.problems)} problem(s) in the config; nothing was run.",
                      style="red")
            raise SystemExit(EXIT_CONFIG) from exc

    def learned_rules(self, config: Config) -> list[LearnedRule]:
        """The learned rules in the database (crawler.app.tuning), for the commands that
        compile watchlists; none when there is no database yet (none is created), and a
        warning, not a failure, when it cannot be read."""
        if config.database_url is None and not config.database_path.exists():
            return []
        try:
            store = open_store(config)
            try:
                return store.rules()
            finally:
                store.close()
        except StoreError as exc:
            err.print(f"learned rules not read: database error: {exc}", style="yellow",
                      markup=False)
            return []

    @contextmanager
    def store(self, config: Config) -> Iterator[Store]:
        try:
            store: Store = open_store(config)
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


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def show_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Cells and title as plain Text: titles, URLs and errors come from strangers, and
    Rich would read ``[/bold]`` in them as markup (and fail on it)."""
    table = Table(title=Text(title), title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
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
    ctx.obj = Context(config_dir)


def parse_since(value: str | None) -> datetime | None:
    """``--since`` as a duration back from now (``7d``) or an ISO date or time."""
    if value is None:
        return None
    try:
        return SystemClock().now() - timedelta(seconds=parse_duration(value))
    except ValueError as exc:
        as_duration = str(exc)
    try:
        return parse_iso(value)
    except ValueError:
        hint = as_duration if "at most" in as_duration else \
            f"{value!r}: give a duration such as 7d or a date such as 2026-11-01"
        raise click.BadParameter(hint, param_hint="--since") from None


LIMIT = click.IntRange(1, 1_000_000)
"""A ``--limit``: SQLite cannot take a number past 2**63, and no table needs more rows."""


def http_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A URL option or argument that the fetcher can take (``http://[::1`` and a port past
    65535 would otherwise end in a traceback)."""
    if value is None:
        return None
    problem = url_problem(value)
    if problem:
        raise click.BadParameter(f"{value!r} is not a valid URL: {problem}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL")
    return value


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def shown(title: str, total: int, limit: int) -> str:
    """A table's title that says when ``--limit`` cut it."""
    return title if total <= limit else f"{title}: {limit} of {total} shown (--limit)"


def known_name(value: str | None, names: Sequence[str], option: str, kind: str) -> str | None:
    """``value`` if it names one of ``names``; else a usage error naming the nearest, so a
    typo in a filter is said, never answered with an empty result."""
    if value is None or value in names:
        return value
    near = difflib.get_close_matches(value, names, n=1, cutoff=0.5)
    hint = f"did you mean {near[0]!r}? " if near else ""
    raise click.BadParameter(f"no {kind} named {value!r}; {hint}(defined: "
                             f"{', '.join(sorted(names)) or 'none'})", param_hint=option)


def known_watchlist(config: Config, name: str | None) -> str | None:
    """``--watchlist NAME`` checked against the config (see :func:`known_name`)."""
    return known_name(name, [w.name for w in config.watchlists], "--watchlist", "watchlist")


def known_watch(config: Config, name: str | None, watchlist: str | None = None,
                option: str = "--watch") -> str | None:
    """``--watch NAME`` (or another ``option``) checked against the watch items of the
    config (of ``watchlist`` only, when given; see :func:`known_name`)."""
    return known_name(name, sorted({item.name for w in config.watchlists
                                    if watchlist is None or w.name == watchlist
                                    for item in w.watch}), option, "watch item")


def known_source(config: Config, store: Store, name: str | None) -> str | None:
    """``--source NAME`` checked against the config's sources and the stored ones (a
    source removed from the config may still have articles; see :func:`known_name`)."""
    if name is None:
        return None
    return known_name(name, sorted({s.name for s in config.sources}
                                   | {r["name"] for r in store.sources()}),
                      "--source", "source")
