"""The desk's browsing pages: search, a watch item's timeline, sources, the outbox.

Routes only: the store reads (``crawler.store.desk``), the query language and its
highlights (``crawler.process.search``) and a source's health (``process.health``, as
``newswatch status`` shows it) do the work. ``pages.routes`` registers these with its
``page``/``action``/``render``/``when`` (the ``Kit``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from crawler.app.desk.host import Host
from crawler.app.desk.kit import Kit
from crawler.config import Config
from crawler.core.errors import StoreError
from crawler.process import health
from crawler.process import search as fts
from crawler.process.script import direction, script
from crawler.store.desk import WAITING, Passage, search_passage

Page = Callable[[Request], Awaitable[Response]]
#: the periods search offers, by the ``within`` parameter; the first is the default
WITHIN = {"30": ("last 30 days", timedelta(days=30)),
          "90": ("last 90 days", timedelta(days=90)),
          "all": ("everything", None)}
SEARCH_LIMIT = 50
TIMELINE_DAYS = 30


def timeline_url(watchlist: str, watch: str) -> str:
    """The timeline page of a watch item in a watchlist."""
    return f"/watch/{quote(watchlist, safe='')}/{quote(watch, safe='')}"


def story_url(story_id: int) -> str:
    return f"/stories/{story_id}"


@dataclass(frozen=True)
class Hit:
    """A search result as the page shows it; each text block has its own direction."""

    id: int
    story: str | None
    headline: str
    headline_dir: str
    url: str
    source: str
    when: str
    at: str
    language: str
    passage: Passage | None
    passage_dir: str
    summary: str


def _hit(row: Mapping[str, Any], query: fts.Query, when: str) -> Hit:
    found = search_passage(row, query)
    title = str(row["title"] or row["url"])
    summary = "" if found else str(row["summary"] or "")[:300]
    body = found.text if found else summary
    return Hit(row["id"], story_url(row["story_id"]) if row["story_id"] else None, title,
               direction(script(title)), row["url"], row["source"], when,
               row["published_at"] or row["fetched_at"], row.get("language") or "", found,
               direction(script(body, language=row.get("language") or "")), summary)


class _Spellings:
    """Each watch item's spellings for ``search.with_spellings``, built once per config
    version (10,000 items take a while to fold)."""

    def __init__(self) -> None:
        self.version = ""
        self.known: fts.Spellings = {}

    def of(self, config: Config) -> fts.Spellings:
        if config.version != self.version:
            self.known = fts.spellings(item.spellings() for w in config.watchlists
                                       for item in w.watch)
            self.version = config.version
        return self.known


def _days_chart(counts: Iterable[int]) -> list[dict[str, int]]:
    """Bars of the SVG chart (``timeline.html``): x, y and height in a 100-high box."""
    counts = list(counts)
    top = max(counts, default=0) or 1
    bars = []
    for n, count in enumerate(counts):
        height = round(96 * count / top) if count else 0
        bars.append({"x": n * 10 + 1, "y": 100 - height, "height": height, "count": count})
    return bars


def routes(host: Host, kit: Kit) -> list[BaseRoute]:
    known = _Spellings()

    @kit.page
    async def search(request: Request) -> Response:
        text = request.query_params.get("q", "").strip()
        within = request.query_params.get("within", "30")
        if within not in WITHIN:
            within = "30"
        hits: list[Hit] = []
        error = ""
        if text:
            span = WITHIN[within][1]
            try:
                query = fts.with_spellings(fts.parse_query(text), known.of(host.config()))
                rows = await host.store.call(
                    host.store.sync.search, query, order="stored", limit=SEARCH_LIMIT,
                    since=host.clock.now() - span if span else None)
                hits = [_hit(r, query, kit.when(r["published_at"] or r["fetched_at"]))
                        for r in rows]
            except fts.QueryError as exc:
                error = str(exc)
            except StoreError as exc:
                error = f"That query cannot be searched: {exc}"
        return kit.render(request, "search.html", hits=hits, error=error, searched=text,
                          within=within, periods=WITHIN, limit=SEARCH_LIMIT)

    @kit.page
    async def timeline(request: Request) -> Response:
        watchlist, watch = request.path_params["watchlist"], request.path_params["watch"]
        config = host.config()
        listed = any(w.name == watchlist and any(i.name == watch for i in w.watch)
                     for w in config.watchlists)
        found = await host.store.call(host.store.sync.watch_timeline, watch,
                                      host.clock.now(), watchlist=watchlist,
                                      days=TIMELINE_DAYS, zone=config.settings.timezone)
        if not listed and not found.total and not found.stories:
            return PlainTextResponse("not found\n", 404)
        busiest = max(found.days, key=lambda d: d.articles, default=None)
        return kit.render(request, "timeline.html", timeline=found, listed=listed,
                          bars=_days_chart(d.articles for d in found.days),
                          busiest=busiest, days=TIMELINE_DAYS, story_url=story_url,
                          timeline_url=timeline_url, when=kit.when)

    @kit.page
    async def sources(request: Request) -> Response:
        now = host.clock.now()
        rows = [health.view(r, now)
                for r in await host.store.call(host.store.sync.source_health, now)]
        return kit.render(request, "sources.html", rows=rows, when=kit.when,
                          polled=request.query_params.get("polled", ""),
                          refused=request.query_params.get("refused", ""),
                          tick=host.config().settings.daemon.tick)

    @kit.action
    async def poll_now(request: Request) -> Response:
        name = request.path_params["name"]
        done = await host.store.call(host.store.sync.poll_now, name, host.clock.now())
        if done and host.wake is not None:
            await host.wake()  # the daemon serving the desk claims it now, not next tick
        key = "polled" if done else "refused"
        return RedirectResponse(f"/sources?{key}={quote(name, safe='')}", 303)

    @kit.page
    async def outbox(request: Request) -> Response:
        older = request.query_params.get("older", "")
        found = await host.store.call(host.store.sync.outbox_entries, WAITING,
                                      before=int(older) if older.isdigit() else None)
        retried = request.query_params.get("retried", "")
        return kit.render(request, "outbox.html", page=found, when=kit.when,
                          story_url=story_url, retried=retried,
                          refused=request.query_params.get("refused", ""))

    @kit.action
    async def retry(request: Request) -> Response:
        alert = int(request.path_params["alert"])
        count = await host.store.call(host.store.sync.requeue, host.clock.now(), [alert])
        return RedirectResponse(f"/outbox?{'retried' if count else 'refused'}={alert}", 303)

    return [Route("/search", search, methods=["GET"]),
            Route("/watch/{watchlist}/{watch:path}", timeline, methods=["GET"]),
            Route("/sources", sources, methods=["GET"]),
            Route("/sources/{name:path}/poll", poll_now, methods=["POST"]),
            Route("/outbox", outbox, methods=["GET"]),
            Route("/outbox/{alert:int}/retry", retry, methods=["POST"])]
