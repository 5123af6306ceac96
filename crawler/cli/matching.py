"""Trying watchlists before they go live: match and backtest."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from crawler.app import preview, tuning
from crawler.cli.base import (
    EXIT_FETCH,
    LIMIT,
    Context,
    cli,
    http_url,
    known_watchlist,
    out,
    print_json,
    show_table,
    shown,
)
from crawler.cli.progress import progress
from crawler.collect import pages
from crawler.collect.fetch import make_client
from crawler.collect.politeness import Politeness
from crawler.config import (
    Config,
    SourceConfig,
    WatchlistConfig,
    parse_duration,
)
from crawler.core.article import Article, Failed
from crawler.core.clock import SystemClock
from crawler.process.dedup import canonical_url
from crawler.process.extract import extract
from crawler.process.match import Matcher


def _watchlists(config: Config, name: str | None) -> Sequence[WatchlistConfig]:
    if name is None:
        return config.watchlists
    known_watchlist(config, name)
    return [w for w in config.watchlists if w.name == name]


_WHOLE_PAGE = re.compile(r"<(?:html|body)[\s>]", re.IGNORECASE)


@cli.command("match")
@click.option("--text", help="The text to match (as an article's body).")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the text from this file (UTF-8).")
@click.option("--url", callback=http_url,
              help="Fetch this article page, extract its body and match that.")
@click.option("--title", default="", help="A title to match as well (--text, --file).")
@click.option("--html", is_flag=True,
              help="The text is HTML: a whole page (with <html> or <body>) has its article "
                   "extracted as a poll extracts a fetched page; a fragment, as feeds give "
                   "it, becomes plain text.")
@click.option("--watchlist", help="Only this watchlist.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def match_command(obj: Context, text: str | None, path: Path | None, url: str | None,
                  title: str, html: bool, watchlist: str | None, as_json: bool) -> None:
    """Which watch items a text or a page matches, and why; and the mentions that did not
    count (excluded, vetoed by none_of, lacking an all_of or any_of term), and why not: try
    a watchlist before it goes live. Sends and stores nothing; exits 3 when --url cannot be
    fetched."""
    if sum(x is not None for x in (text, path, url)) != 1:
        raise click.UsageError("give exactly one of --text, --file or --url")
    config = obj.config()
    chosen = _watchlists(config, watchlist)
    now = SystemClock().now()
    if url is not None:
        article = _fetch_article(config, url, now)
    else:
        body = (text or "") if path is None else path.read_text(encoding="utf-8")
        whole = html and _WHOLE_PAGE.search(body) is not None
        article = Article(source="(match)", url="", link="", title=title,
                          content_html=body if html and not whole else "",
                          page_html=body if whole else "", text="" if html else body)
        if html:
            article = extract(article, now)
    # a text tried here comes from no source: a watchlist's `sources` does not apply
    plain = [w.model_copy(update={"sources": None}) for w in chosen]
    learned = obj.learned_rules(config)
    explained = Matcher(tuning.overlay_watchlists(plain, learned)).explain(article)
    found = explained.matches
    vetoed = tuning.vetoes(plain, learned, article)
    # a mention a learned rule took away is listed with that rule, not again here
    taken = {(m.watchlist, m.watch) for m, _ in vetoed}
    misses = [m for m in explained.misses if (m.watchlist, m.watch) not in taken]
    page = {"url": article.url, "title": article.title, "published_at": article.published_at,
            "author": article.author, "language": article.language,
            "extraction": str(article.extraction), "text": article.text} if url else {}
    if as_json:
        print_json({**page, "matches": [preview.match_row(m) for m in found],
                    "not_counted": [preview.match_row(m) for m in misses],
                    "vetoed_by_learned_rules": [
                        {**preview.match_row(m), "rule": {"id": r.id, "kind": r.kind,
                                                   "term": r.term, "by": r.created_by}}
                        for m, r in vetoed]})
        return
    if url:
        out.print(f"{article.title or '(no title)'}\n{article.url}\nextraction: "
                  f"{article.extraction}; published: {article.published_at or 'unknown'}; "
                  f"{len(article.text)} characters of body", markup=False)
    if vetoed:
        show_table("vetoed by learned rules (newswatch rules)",
                   ["watchlist", "watch", "alias", "rule", "by", "snippet"],
                   [(m.watchlist, m.watch, m.alias, f"{r.id}: {r.kind} {r.term}",
                     r.created_by, m.highlight) for m, r in vetoed])
    if not found:
        out.print("no watch item matches")
    else:
        show_table("matches", ["watchlist", "watch", "alias", "field", "at", "context",
                               "snippet"],
                   [(m.watchlist, m.watch, m.alias, m.field, f"{m.start}-{m.end}",
                     "\n".join(m.context), m.highlight) for m in found])
    if misses:
        show_table("found but not counted", ["watchlist", "watch", "alias", "field", "at",
                                             "why not", "snippet"],
                   [(m.watchlist, m.watch, m.alias, m.field, f"{m.start}-{m.end}", m.reason,
                     m.highlight) for m in misses])


def _fetch_article(config: Config, url: str, now: datetime) -> Article:
    """One page, fetched as a poll fetches a new item's page (the default source limits,
    robots.txt, redirects hop by hop) and extracted; exits 3 if it cannot be had."""
    source = dataclasses.replace(
        config.resolve(SourceConfig.model_construct(name="match --url", feed=url)),
        full_text=True)

    async def get() -> Article:
        async with make_client(
                allow_private_networks=config.settings.allow_private_networks) as client:
            [page] = await pages.fetch_pages(client, Politeness(), source, [Article(
                source=source.name, url=canonical_url(url), link=url, title="")])
            if isinstance(page, Exception):
                raise page
            return page

    article = asyncio.run(get())
    if isinstance(article.extraction, Failed):  # the page could not be had
        click.echo(f"cannot fetch {url}: {article.extraction.reason}", err=True)
        raise SystemExit(EXIT_FETCH)
    return extract(article, now)


@cli.command()
@click.option("--watchlist", help="Only this watchlist.")
@click.option("--since", default="30d", show_default=True,
              help="How far back to replay, by when articles were fetched (7d, 12h, 2w).")
@click.option("--limit", default=20, show_default=True, type=LIMIT,
              help="How many articles each table lists (the summary counts them all).")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.pass_obj
def backtest(obj: Context, watchlist: str | None, since: str, limit: int,
             as_json: bool) -> None:
    """Replay the current watchlists over the stored archive: what would newly match, and
    what matched that no longer would. A dry run: sends and stores nothing."""
    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    config = obj.config()
    chosen = _watchlists(config, watchlist)
    names = {w.name for w in chosen}
    learned = obj.learned_rules(config)
    matcher = Matcher(tuning.overlay_watchlists(chosen, learned))
    start = SystemClock().now() - timedelta(seconds=seconds)
    with obj.store(config) as store:
        archive = store.archive(start)
    with progress("replaying", len(archive), quiet=as_json) as advance:
        changes = preview.backtest(archive, matcher,
                                   lambda k: watchlist is None or k[0] in names, advance)
    newly, gone = ([c.as_dict() for c in found] for found in changes)
    summary = _per_watch(newly, gone)
    if as_json:
        print_json({"articles": len(archive), "since": start.isoformat(timespec="seconds"),
                    "learned_rules": len(learned),
                    "summary": summary, "newly_matched": newly, "no_longer_matched": gone})
        return
    out.print(f"{len(archive)} stored article(s) since {start.isoformat(timespec='seconds')}: "
              f"{len(newly)} match(es) would be new, {len(gone)} would be gone"
              + (f", with {len(learned)} learned rule(s) from the database" if learned
                 else "") + ". Nothing was sent or stored.")
    if summary:
        show_table("by watch item", ["watchlist", "watch", "would newly match",
                                     "would no longer match"],
                   [(s["watchlist"], s["watch"], s["newly_matched"], s["no_longer_matched"])
                    for s in summary])
    if newly:
        show_table(shown("would newly match", len(newly), limit),
                   ["watchlist", "watch", "alias", "field", "title", "snippet"],
                   [(r["watchlist"], r["watch"], r["alias"], r["field"], r["title"],
                     r["highlight"]) for r in newly[:limit]])
    if gone:
        show_table(shown("would no longer match", len(gone), limit),
                   ["watchlist", "watch", "title", "why not", "url"],
                   [(r["watchlist"], r["watch"], r["title"], r["why"], r["url"])
                    for r in gone[:limit]])


def _per_watch(newly: list[dict[str, Any]], gone: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How many articles each watch item would gain and lose, most changed first."""
    counts: dict[tuple[str, str], list[int]] = {}
    for column, rows in enumerate((newly, gone)):
        for row in rows:
            counts.setdefault((row["watchlist"], row["watch"]), [0, 0])[column] += 1
    return [{"watchlist": wl, "watch": watch, "newly_matched": n, "no_longer_matched": g}
            for (wl, watch), (n, g) in sorted(counts.items(), key=lambda c: -sum(c[1]))]


