"""Commands that read the archive: matches, stories, search, export, alerts."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click

from crawler.cli import export
from crawler.cli.base import (
    LIMIT,
    Context,
    cli,
    err,
    known_source,
    known_watch,
    known_watchlist,
    out,
    parse_since,
    print_json,
    show_table,
    shown,
)
from crawler.core.clock import SystemClock
from crawler.core.errors import StoreError
from crawler.process import search


@cli.command()
@click.option("--watchlist", help="Only articles that matched this watchlist (and only its "
              "items are listed).")
@click.option("--watch", help="Only articles that matched this watch item.")
@click.option("--source", help="Only articles of this source.")
@click.option("--since", help="Only matches stored in this last span (7d) or since a date.")
@click.option("--limit", default=20, show_default=True, type=LIMIT,
              help="How many articles to show.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the total and the articles, each with its matches, as JSON.")
@click.pass_obj
def matches(obj: Context, watchlist: str | None, watch: str | None, source: str | None,
            since: str | None, limit: int, as_json: bool) -> None:
    """The most recently matched articles, newest match first: one row per article, with
    its link and every watch item it matched, grouped by watchlist."""
    config = obj.config()
    known_watchlist(config, watchlist)
    known_watch(config, watch, watchlist)
    after = parse_since(since)
    with obj.store(config) as store:
        known_source(config, store, source)
        rows = store.matched_articles(watchlist=watchlist, watch=watch, source=source,
                                      since=after, limit=limit)
        total = store.count_matched_articles(watchlist=watchlist, watch=watch,
                                             source=source, since=after)
    if as_json:
        print_json({"total": total, "articles": rows})
        return
    if not rows:
        filtered = any(v is not None for v in (watchlist, watch, source, after))
        out.print("no matched articles" + (" for these filters" if filtered else ""))
        return
    show_table(shown("matched articles", total, limit),
               ["matched", "source", "title and link", "watch items"],
               [(r["matched_at"][:16], r["source"], f"{r['title'] or ''}\n{r['url']}",
                 _grouped(r["matches"])) for r in rows])


def _grouped(found: list[dict[str, Any]]) -> str:
    """An article's matches as one line per watchlist: each item once, followed by the
    other ways the article wrote it (``Ahmad Massoud (مسعود, Massoud)``)."""
    forms: dict[str, dict[str, dict[str, None]]] = {}
    for m in found:
        written = forms.setdefault(m["watchlist"], {}).setdefault(m["watch"], {})
        if m["matched"] != m["watch"]:
            written[m["matched"]] = None
    return "\n".join(
        f"{watchlist}: " + ", ".join(watch + (f" ({', '.join(written)})" if written else "")
                                     for watch, written in items.items())
        for watchlist, items in forms.items())


@cli.command()
@click.option("--since", default="3d", show_default=True,
              help="Stories seen in this last span (7d, 12h) or since this date.")
@click.option("--limit", default=30, show_default=True, type=LIMIT,
              help="How many stories to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the stories as JSON.")
@click.pass_obj
def stories(obj: Context, since: str, limit: int, as_json: bool) -> None:
    """Recent stories: each article with its copies, the outlets that carried it, when
    it was first seen and the watch items it matched."""
    config = obj.config()
    with obj.store(config) as store:
        rows = store.recent_stories(parse_since(since) or SystemClock().now(), limit)
    if as_json:
        print_json(rows)
        return
    show_table("stories", ["id", "first seen", "title and link", "articles", "outlets",
                           "matches"],
               [(r["id"], r["first_seen_at"][:16], "\n".join([r["title"] or "", *r["urls"][:1]]),
                 r["articles"], f"{r['outlets']}: " + ", ".join(r["outlets_list"]),
                 "; ".join(r["watches"])) for r in rows])


@cli.command("search")
@click.argument("query", required=False)
@click.option("--watch", help="Search for this watch item's name and aliases, in every "
              "script they are written in (with QUERY: articles that have both).")
@click.option("--since", help="Only articles fetched in this last span (30d) or since a date.")
@click.option("--source", help="Only articles of this source.")
@click.option("--watchlist", help="Only articles that matched this watchlist.")
@click.option("--rank", is_flag=True, help="Best match first (bm25) instead of newest first.")
@click.option("--limit", default=20, show_default=True, type=LIMIT,
              help="How many articles to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def search_command(obj: Context, query: str | None, watch: str | None, since: str | None,
                   source: str | None, watchlist: str | None, rank: bool, limit: int,
                   as_json: bool) -> None:
    """Search the archive's titles, summaries and texts.

    QUERY takes words, "exact phrases", prefixes (mass*) and AND, OR, NOT (in capitals)
    with parentheses; words are compared as matching compares them (case, Arabic-script
    letter variants). Snippets mark the hit «like this».

    --watch NAME searches for any of the item's name and aliases as phrases, so an alias
    written in Dari finds the Dari articles. Its context rules and exclude phrases do not
    apply here: `newswatch matches --watch NAME` lists what it matched.
    """
    if query is None and watch is None:
        raise click.UsageError("give a QUERY, --watch NAME, or both")
    try:
        asked = [] if query is None else [search.parse_query(query)]
    except search.QueryError as exc:
        raise click.BadParameter(str(exc), param_hint="QUERY") from exc
    config = obj.config()
    known_watchlist(config, watchlist)
    if known_watch(config, watch) is not None:
        asked.insert(0, search.any_phrase(spelling for w in config.watchlists
                                          for item in w.watch if item.name == watch
                                          for spelling in item.spellings()))
    parsed = functools.reduce(search.both, asked)
    with obj.store(config) as store:
        known_source(config, store, source)
        try:
            rows = store.search(parsed, since=parse_since(since), source=source,
                                watchlist=watchlist, order="rank" if rank else "newest",
                                limit=limit)
        except StoreError as exc:
            raise click.BadParameter(str(exc), param_hint="QUERY") from exc
    for row in rows:
        row["snippet"] = next((s for s in (search.highlight(row[f] or "", parsed.terms)
                                           for f in ("title", "summary", "text")) if s), "")
        del row["text"]
    if as_json:
        print_json(rows)
        return
    wanted = " AND ".join(filter(None, (watch and f"watch item {watch}", query)))
    show_table(f"{len(rows)} article(s) for {wanted}",
               ["published", "source", "story", "title and link", "snippet"],
               [((r["published_at"] or r["fetched_at"])[:16], r["source"], r["story_id"],
                 f"{r['title'] or ''}\n{r['url']}", r["snippet"]) for r in rows])


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True, help="One JSON object per article, or one CSV row per match.")
@click.option("--since", help="Only matches stored in this last span (30d) or since a date.")
@click.option("--watchlist", help="Only this watchlist's matches.")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of standard output.")
@click.pass_obj
def export_command(obj: Context, fmt: str, since: str | None, watchlist: str | None,
                   output: Path | None) -> None:
    """Matched articles with their matches, as JSON Lines or CSV, newest match first."""
    config = obj.config()
    known_watchlist(config, watchlist)
    with obj.store(config) as store:
        rows = store.matched_articles(watchlist=watchlist, since=parse_since(since))
    if output is None:
        export.write(sys.stdout, fmt, rows)
        return
    with output.open("w", encoding="utf-8", newline="") as handle:
        export.write(handle, fmt, rows)
    err.print(f"exported {len(rows)} article(s) to {output}")


@cli.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(["pending", "held", "retrying", "digested",
                                             "delivered", "dead", "muted"]),
              help="Only alerts in this state (held: waiting for a digest).")
@click.option("--limit", default=50, show_default=True, type=LIMIT,
              help="How many alerts to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the alerts as JSON.")
@click.pass_context
def alerts(ctx: click.Context, status: str | None, limit: int, as_json: bool) -> None:
    """Alerts in the outbox: pending, held for a digest, retrying, delivered, dead, or
    muted (by `newswatch mute`: never sent).

    `newswatch alerts retry` sends dead alerts again.
    """
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    config = obj.config()
    with obj.store(config) as store:
        rows = store.alerts(status, limit)
        counts = store.alert_counts()
    if as_json:
        print_json({"counts": counts, "alerts": rows})
        return
    show_table("alerts", ["id", "kind", "channel", "watchlist", "state", "tries",
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
def alerts_retry(obj: Context, ids: tuple[int, ...], dead: bool) -> None:
    """Requeue alerts by ID (from `newswatch alerts`), or all dead ones with --dead.

    A requeued alert gets a fresh set of attempts and goes out on the next pass under the
    same id (on PostgreSQL the idle daemons are woken for it at once); an alert that was
    part of a digest is requeued as that digest. Delivered alerts are never sent again.
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


