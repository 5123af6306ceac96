"""The orchestrator: the whole chain for one source, said in one place.

    collect   fetch.fetch            bytes, with conditional GET, limits and the address rule
              feeds.parse_feed       one Article per item
    dedup     dedup.select_new       only articles whose URL and GUID keys are unknown
    extract   extract.extract        plain text of title, summary and content
    match     match.Matcher          mentions of watch items, with offsets and snippets
    alert     alerts.outbox.plan     one outbox row per (watchlist, enabled channel)
    store     Store.add_articles     article, keys, matches and outbox rows in ONE transaction

Matching and alert planning are pure, so they run before the single write that commits
their results with the article: a crash can never leave an article stored without its
alerts. Delivery of the outbox is alerts.dispatch's job, on its own schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import httpx

from alerts import outbox
from crawler import dedup, fetch
from crawler.article import Article
from crawler.clock import Clock
from crawler.config import Config, Source
from crawler.errors import SourceError
from crawler.extract import extract
from crawler.feeds import parse_feed
from crawler.match import Matcher
from crawler.schedule import next_check
from crawler.store import SourceState, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll of one source did, for the CLI summary and the log."""

    source: str
    items: int = 0
    new: int = 0
    matched: int = 0
    queued: int = 0
    not_modified: bool = False
    error: str | None = None


class Pipeline:
    """Polls sources for one config; the store, HTTP client and clock are passed in."""

    def __init__(self, config: Config, store: Store, client: httpx.AsyncClient, clock: Clock,
                 owner: str) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.clock = clock
        self.owner = owner
        self.matcher = Matcher.for_config(config)
        self.sources = {s.name: s for s in config.active_sources()}
        enabled = config.enabled_channels()
        self.routes = {w.name: [c for c in w.channels if c in enabled]
                       for w in config.watchlists}
        self.max_age = timedelta(seconds=config.settings.alert_max_age)

    def lease(self) -> timedelta:
        slowest = max((s.timeout for s in self.sources.values()), default=20.0)
        return timedelta(seconds=slowest * 3 + 60)

    async def poll(self, state: SourceState) -> PollResult:
        """Run the chain for one claimed source and record the outcome on its row.

        A SourceError (or a bug) is kept on the source and returned, never raised, so
        one bad source cannot stop the others. Store errors do propagate.
        """
        source = self.sources[state.name]
        try:
            result = await self._poll(source, state)
        except SourceError as exc:
            return self._failed(source, state, exc.message)
        except Exception as exc:  # a bug must not stop the other sources
            log.exception("internal error while polling", extra={"source": source.name})
            return self._failed(source, state, f"internal error: {type(exc).__name__}: {exc}")
        return result

    def _failed(self, source: Source, state: SourceState, message: str) -> PollResult:
        failures = state.error_count + 1
        when = next_check(self.clock.now(), source.interval, failures)
        log.warning("poll failed (%d in a row, next try %s): %s", failures,
                    when.isoformat(timespec="seconds"), message, extra={"source": source.name})
        self.store.record_poll(source.name, self.owner, self.clock.now(), when, error=message)
        return PollResult(source.name, error=message)

    async def _poll(self, source: Source, state: SourceState) -> PollResult:
        response = await fetch.fetch(self.client, fetch.Request(
            source.name, state.url, source.timeout, source.user_agent, source.max_bytes,
            state.etag, state.last_modified))
        now = self.clock.now()
        if response.not_modified:
            self.store.record_poll(source.name, self.owner, now,
                                   next_check(now, source.interval))
            return PollResult(source.name, not_modified=True)

        collected = parse_feed(source.name, response.body, response.headers, response.url)
        result = self.ingest(source.name, collected)
        self.store.record_poll(source.name, self.owner, self.clock.now(),
                               next_check(self.clock.now(), source.interval),
                               etag=response.headers.get("etag"),
                               last_modified=response.headers.get("last-modified"))
        if result.new:
            log.info("%d new article(s), %d matched, %d alert(s) queued", result.new,
                     result.matched, result.queued, extra={"source": source.name})
        return result

    def ingest(self, source: str, collected: Sequence[Article]) -> PollResult:
        """dedup → extract → match → alert → store, for articles collected by any means."""
        now = self.clock.now()
        known = self.store.known_keys(k for a in collected for k in dedup.keys(a))
        batch = []
        for article in dedup.select_new(collected, known):
            article = extract(article)
            matches = self.matcher.match(article)
            rows = outbox.plan(article, matches, self.routes, now, self.max_age)
            batch.append((article, dedup.keys(article), matches, rows))
        stored = {id(a) for a in self.store.add_articles(batch, now, self.config.version)}
        kept = [entry for entry in batch if id(entry[0]) in stored]
        return PollResult(
            source, len(collected), len(kept),
            sum(1 for _, _, matches, _ in kept if matches),
            sum(len(rows) for _, _, _, rows in kept))
