"""The ``sources`` command group: list, poll, test, add, import, export."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click
import httpx

from crawler.cli.base import (
    EXIT_CONFIG,
    EXIT_FETCH,
    Context,
    cli,
    duration_text,
    http_url,
    known_name,
    out,
    print_json,
    show_table,
)
from crawler.cli.progress import Advance, progress
from crawler.collect import discovery, fetch
from crawler.collect.fetch import make_client
from crawler.collect.politeness import Politeness
from crawler.collect.source import check_entries, fetch_feed
from crawler.config import (
    Config,
    Source,
    SourceConfig,
)
from crawler.core.clock import SystemClock
from crawler.core.errors import SourceError
from crawler.process import health


@cli.group()
def sources() -> None:
    """List, find, import and export sources (sources.yaml keeps its comments and order)."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the sources as JSON.")
@click.pass_obj
def sources_list(obj: Context, as_json: bool) -> None:
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
        shown = ("disabled" if not entry.enabled else
                 health.view(row, now)["health"] if row else "never polled")
        listed.append({
            "name": entry.name, "kind": entry.kind, "url": row.get("url") or "",
            "interval_s": source.interval if source else None, "health": shown,
            "last_success_at": row.get("last_success_at"), "last_error": row.get("last_error"),
            "next_check_at": row.get("next_check_at") if entry.enabled else None})
    if as_json:
        print_json(listed)
        return
    show_table("sources", ["source", "kind", "interval", "health", "last success", "last error"],
               [(s["name"], s["kind"], duration_text(s["interval_s"]), s["health"],
             (s["last_success_at"] or "never")[:19], s["last_error"]) for s in listed])


@sources.command("poll")
@click.argument("name")
@click.pass_obj
def sources_poll(obj: Context, name: str) -> None:
    """Make source NAME due now, as the desk's Poll now button does: on PostgreSQL the
    idle daemons are woken at once; on SQLite a running daemon polls it at its next
    tick (``daemon.tick``, 5 s by default)."""
    config = obj.config()
    known_name(name, [s.name for s in config.active_sources()], "NAME", "enabled source")
    now = SystemClock().now()
    with obj.store(config) as store:
        store.sync_sources(config.active_sources(), now)
        if not store.poll_now(name, now):
            click.echo(f"source {name} is retired (it answered as gone): it is polled "
                       "again only when its address in sources.yaml changes", err=True)
            raise SystemExit(1)
    when = ("the running daemons are woken to poll it" if config.database_url is not None else
            "a running daemon polls it at its next tick (every "
            f"{duration_text(config.settings.daemon.tick)})")
    out.print(f"source {name} is due now: {when}", markup=False)


@sources.command("test")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def sources_test(obj: Context, names: tuple[str, ...], as_json: bool) -> None:
    """Fetch every source (or NAMES) now as a poll does and parse the feeds, storing
    nothing; exits 1 if any fails. (Sitemap and crawl sources: each entry point, their
    sitemap, robots.txt or start pages, is checked for an answer.)"""
    config = obj.config()
    active = config.active_sources()
    for name in names:
        known_name(name, [s.name for s in active], "NAMES", "enabled source")
    chosen = [s for s in active if not names or s.name in names]
    with progress("testing", len(chosen), quiet=as_json) as advance:
        results = asyncio.run(_test_sources(config, chosen, advance))
    if as_json:
        print_json(results)
    else:
        show_table("sources", ["source", "result", "items", "seconds", "final URL"],
                   [(r["source"], r["error"] or "ok", r["items"], r["seconds"], r["url"])
                for r in results])
    if any(r["error"] for r in results):
        raise SystemExit(1)


async def _test_sources(config: Config, chosen: list[Source],
                        done: Advance) -> list[dict[str, Any]]:
    """Each source asked as a poll asks it (collect.source), storing nothing; ``done``
    hears of each as it ends."""
    limit = asyncio.Semaphore(config.settings.daemon.concurrency)
    politeness = Politeness()

    async def one(client: httpx.AsyncClient, source: Source) -> dict[str, Any]:
        started = time.monotonic()
        result: dict[str, Any] = {"source": source.name, "url": source.urls[0], "items": 0,
                                  "error": None}
        async with limit:
            try:
                if source.kind == "feed":
                    answer = await fetch_feed(client, politeness, source, source.urls[0])
                    result["url"] = answer.response.url
                    result["items"] = len(answer.feed.articles) if answer.feed else 0
                else:
                    result["url"] = (await check_entries(client, politeness, source)).url
            except SourceError as exc:
                result["error"] = exc.message
        result["seconds"] = round(time.monotonic() - started, 2)
        done(source.name)
        return result

    async with fetch.make_client(
            allow_private_networks=config.settings.allow_private_networks) as client:
        return list(await asyncio.gather(*(one(client, s) for s in chosen)))


@sources.command("add")
@click.argument("url", callback=http_url)
@click.option("--name", help="Name of the new source (default: the site's host name).")
@click.option("--pick", type=int, help="Which of the found feeds and sitemaps to add "
              "(its number in the table); asked for when not given.")
@click.pass_obj
def sources_add(obj: Context, url: str, name: str | None, pick: int | None) -> None:
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
    show_table(f"found on {url}", ["#", "kind", "url", "title", "items", "found by"],
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
@click.option("--test", "test_first", is_flag=True,
              help="Fetch each new feed first, as `sources test` does, and add only those "
                   "that answer with a feed; the others are listed and left out.")
@click.pass_obj
def sources_import(obj: Context, file: Path, test_first: bool) -> None:
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
    dead: list[tuple[dict[str, Any], str]] = []
    if test_first and fresh:
        tried = [config.resolve(SourceConfig.model_construct(name=e["name"], feed=e["feed"]))
                 for e in fresh]
        with progress("testing", len(tried)) as advance:
            results = asyncio.run(_test_sources(config, tried, advance))
        dead = [(e, r["error"]) for e, r in zip(fresh, results, strict=True) if r["error"]]
        fresh = [e for e, r in zip(fresh, results, strict=True) if not r["error"]]
    try:
        written = discovery.append_sources(obj.config_dir, fresh) if fresh else []
    except discovery.SourcesFileError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_CONFIG) from exc
    for entry, error in dead:
        click.echo(f"left out {entry['name']} ({entry['feed']}): {error}", err=True)
    out.print(f"imported {len(written)} feed(s), skipped "
              f"{len(entries) - len(written) - len(dead)} already present"
              + (f", left out {len(dead)} that did not answer with a feed" if dead else ""),
              markup=False)


@sources.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@click.pass_obj
def sources_export(obj: Context, output: Path | None) -> None:
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


