"""The orchestrator: the whole chain for one source, said in one place.

    collect   fetch.fetch            bytes, with conditional GET, limits and the address rule
              feeds.parse_feed       one Article per item (feed sources; XML entities refused)
              crawl.run              article pages from a Scrapy child (sitemap, crawl)
    dedup     dedup.select_new       only articles whose URL and GUID keys are unknown
                                     (keys computed once, carried as dedup.Keyed; one lookup)
              pages.fetch_pages      each new feed item's page, politely (full text)
    extract   extract.extract        plain text; the page's body, canonical URLs and date;
                                     the outcome a type: FullText, FeedText or Failed
    match     match.Matcher          mentions of watch items, with offsets and snippets
                                     (the YAML watchlists with the learned rules added)
              search.document        the normalised text the full-text index holds
              stories.fingerprint    MinHash signature and band keys of its title and text
    dedup     Store.add_articles     again, with the URLs the page gave for itself, then
    store                            article, keys, matches, story, index rows and outbox
                                     rows in ONE transaction; inside it the article joins
                                     or starts a story, and then
    alert     alerts.outbox.plan     one outbox row per (watchlist, enabled channel) and
                                     story: a story's later copies alert only for new items;
                                     matches the mutes in force silence are left out first
    publish   atom.write_feeds       each watchlist's Atom feed, when it got new matches

Matching, fingerprints and alert planning are pure; the store commits their results with
the article in a single write: a crash can never leave an article stored without its
alerts. Matching runs after extraction has finished or failed, so an article is matched
once, on its body when the page could be had and on what the feed gave otherwise.
Delivery of the outbox is alerts.dispatch's job, on its own schedule.

Each step from keys to matching runs per item (crawler.app.rejects): an item that raises
is dropped alone, counted and logged once a poll, and the rest of the feed goes on.

Parsing, and extraction through fingerprints, are CPU work: ``self.work``
(crawler.app.workers) runs them in worker processes in the daemon, in a thread
otherwise. The loop only fetches and awaits; the store runs on its own thread.

Each poll adds the seconds it spent in parse, dedup, extract, match, fold (the
comparable text, ``search.document``), fingerprint, store and plan to the
``newswatch_stage_seconds`` summary: where ingest time goes (``make bench-ingest``
reports it per article). Those of the steps are measured where they run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from alerts import outbox
from crawler.app import atom, tuning
from crawler.app.rejects import Rejects
from crawler.app.workers import STAGES, InProcess, Matching, Parsed, Work, link
from crawler.collect import crawl, pages
from crawler.collect.headers import parse_max_age
from crawler.collect.politeness import Politeness
from crawler.collect.source import fetch_feed_body
from crawler.config import Config, Source
from crawler.core.article import Article, Failed
from crawler.core.clock import Clock, parse_iso
from crawler.core.errors import CrawlError, GoneError, HTTPStatusError, SourceError, StoreError
from crawler.core.metrics import Metrics
from crawler.process import dates, dedup, schedule
from crawler.process.dedup import Keyed
from crawler.process.match import Match
from crawler.store import NewArticle, PollRecord, SourceState, StoryRules
from crawler.store.threaded import ThreadedStore

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
    """Polls sources for one config; the store, HTTP client, clock and where the CPU work
    runs (``work``: in a thread of this process unless given) are passed in."""

    def __init__(self, config: Config, store: ThreadedStore, client: httpx.AsyncClient,
                 clock: Clock, owner: str, metrics: Metrics | None = None,
                 politeness: Politeness | None = None, work: Work | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.politeness = politeness or Politeness()
        self.store = store
        self.client = client
        self.clock = clock
        self.owner = owner
        self.work = work or InProcess()
        self.tuned = config  # with the learned rules (crawler.app.tuning) of _rules
        self._rules: tuple[int, int] = (0, 0)
        self.sources = {s.name: s for s in config.active_sources()}
        enabled = config.enabled_channels()
        self.routes = {w.name: [c for c in w.channels if c in enabled]
                       for w in config.watchlists}
        self.max_age = timedelta(seconds=config.settings.alert_max_age)
        self.policy = outbox.Policy.from_config(config)
        self.story_rules = StoryRules(timedelta(seconds=config.settings.stories.window),
                                      config.settings.stories.threshold)

    async def poll(self, state: SourceState) -> PollResult | None:
        """Run the chain for one claimed source and record the outcome on its row.

        A SourceError (or a bug) is kept on the source and returned, never raised, so
        one bad source cannot stop the others. Store errors do propagate. A source that
        left the config between its claim and now (a reload) is let go: None.
        """
        source = self.sources.get(state.name)
        if source is None:
            log.debug("no longer in the config; not polled", extra={"source": state.name})
            await self.store.release(self.owner, state.name)
            return None
        started = time.monotonic()
        try:
            result = await self._poll(source, state)
        except SourceError as exc:
            result = await self._failed(source, state, exc)
        except StoreError:
            raise
        except Exception as exc:  # a bug must not stop the other sources
            log.exception("internal error while polling", extra={"source": source.name})
            result = await self._failed(source, state, SourceError(
                source.name, f"internal error: {type(exc).__name__}: {exc}"))
        outcome = "error" if result.error else "not_modified" if result.not_modified else "ok"
        self.metrics.inc("newswatch_fetches_total", source=source.name, outcome=outcome)
        self.metrics.observe("newswatch_fetch_seconds", time.monotonic() - started,
                             source=source.name)
        return result

    async def _failed(self, source: Source, state: SourceState, exc: SourceError) -> PollResult:
        now = self.clock.now()
        failures = state.error_count + 1
        retry_after = exc.retry_after if isinstance(exc, HTTPStatusError) else None
        when = schedule.after_failure(now, source.interval, failures, retry_after)
        retire = isinstance(exc, GoneError)
        extra = {"source": source.name}
        if retire:
            log.warning("retired: %s; it will not be polled again until its feed URL "
                        "changes in the config", exc.message, extra=extra)
        elif state.error_count == 0:
            log.warning("source failing: %s (next try %s)", exc.message,
                        when.isoformat(timespec="seconds"), extra=extra)
        elif exc.message != state.last_error:
            log.warning("source still failing, now: %s", exc.message, extra=extra)
        else:
            log.debug("poll failed again (%d in a row): %s", failures, exc.message,
                      extra=extra)
        await self.store.record_poll(source.name, self.owner, now, PollRecord(
            when, error=exc.message, retire=retire,
            defer_host_until=now + timedelta(seconds=retry_after)
            if retry_after is not None else None))
        return PollResult(source.name, error=exc.message)

    async def _poll(self, source: Source, state: SourceState) -> PollResult:
        if source.kind != "feed":
            return await self._crawl(source, state)
        full = schedule.needs_full_fetch(
            parse_iso(state.last_full_fetch_at) if state.last_full_fetch_at else None,
            self.clock.now())
        response = await fetch_feed_body(self.client, self.politeness, source, state.url,
                                         None if full else state.etag,
                                         None if full else state.last_modified)
        now = self.clock.now()
        redirect_to, seen, move_to = schedule.track_redirect(
            state.redirect_to, state.redirect_seen, response.moved_permanently_to)
        if move_to:
            log.warning("moved permanently to %s; polling that from now on", move_to,
                        extra={"source": source.name})
        max_age = parse_max_age(response.headers.get("cache-control"))
        if response.not_modified:
            self._recovered(state)
            await self.store.record_poll(source.name, self.owner, now, PollRecord(
                self._next(source, now, max_age), redirect_to=redirect_to,
                redirect_seen=seen, move_to=move_to))
            return PollResult(source.name, not_modified=True)

        feed = await self.work.parse(source.name, response.body, response.headers,
                                     response.url)
        self._spent("parse", feed.spent["parse"])
        result = await self.collect(source, feed)
        self._recovered(state)
        await self.store.record_poll(source.name, self.owner, self.clock.now(), PollRecord(
            self._next(source, self.clock.now(), max(max_age or 0, feed.ttl or 0)),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"), full_fetch=True,
            redirect_to=redirect_to, redirect_seen=seen, move_to=move_to))
        if result.new:
            log.info("%d new article(s), %d matched, %d alert(s) queued", result.new,
                     result.matched, result.queued, extra={"source": source.name})
        return result

    @staticmethod
    def _recovered(state: SourceState) -> None:
        if state.error_count:
            log.info("source recovered after %d failed poll(s)", state.error_count,
                     extra={"source": state.name})

    @staticmethod
    def _next(source: Source, now: datetime, cache_hint: float | None) -> datetime:
        return schedule.after_success(now, source.interval,
                                      cache_hint if source.respect_cache_hints else None)

    async def collect(self, source: Source, feed: Parsed) -> PollResult:
        """dedup → page → extract → store, for the items of a feed: only new articles'
        pages are fetched (full text). An item that fails a step is dropped alone."""
        rejects = Rejects(source.name)
        rejects.absorb(feed.rejected, feed.bug)
        fresh = await self._new(feed.items, feed.spent["dedup"])
        with_pages = await pages.fetch_pages(self.client, self.politeness, source,
                                             [item.article for item in fresh])
        paged = []
        for item, page in zip(fresh, with_pages, strict=True):
            if isinstance(page, Exception):
                rejects.failed(item.article.link, page)
            else:
                paged.append(dataclasses.replace(item, article=page))
        result = await self._store(source.name, paged, feed.collected, rejects)
        rejects.report(self.metrics)
        return result

    async def _fresh(self, collected: Sequence[Article], rejects: Rejects) -> list[Keyed]:
        """The collected articles whose keys are unknown (one lookup), keys attached."""
        started = time.perf_counter()
        keyed = rejects.each(collected, Keyed.of, link)
        return await self._new(keyed, time.perf_counter() - started)

    async def _new(self, keyed: Sequence[Keyed], keying: float) -> list[Keyed]:
        """The items none of whose keys are known (one lookup); ``keying`` is the time
        their keys took, counted with the lookup's as ``dedup``."""
        started = time.perf_counter()
        fresh = dedup.select_new(keyed, await self.store.known_keys(
            [key for item in keyed for key in item.keys]))
        self._spent("dedup", keying + time.perf_counter() - started)
        return fresh

    async def _crawl(self, source: Source, state: SourceState) -> PollResult:
        """A sitemap or crawl source: its Scrapy child collects pages, the chain goes on."""
        spec = crawl.spec_for(source, known=await self.store.source_urls(source.name),
                              now=self.clock.now(),
                              allow_private_networks=self.config.settings.allow_private_networks)
        entries = source.urls
        # Scrapy reads robots.txt but not its Crawl-delay: a longer one than ours is kept
        spec["delay"] = max([spec["delay"], *[await self._crawl_delay(source, url)
                                              for url in entries]])
        async with self.politeness.hold(entries, source.delay, source.name):
            report = await crawl.run(spec, source.budget, source.max_bytes)
        for event in report.retry_after:
            await self.politeness.retry_after(event.url, event.seconds)
        rejects = Rejects(source.name)
        collected = rejects.each(report.pages, lambda page: _page_article(source.name, page),
                                 lambda page: page.url)
        result = await self._store(source.name, await self._fresh(collected, rejects),
                                   len(report.pages), rejects)
        rejects.report(self.metrics)
        for failure in report.errors[:20]:
            log.info("crawl did not get %s: %s", failure.url, failure.reason,
                     extra={"source": source.name})
        missed = {f.entry: f.reason for f in report.errors if f.entry}
        error = None
        if report.killed:
            error = (f"crawl killed at its {source.budget:g}s budget; kept the "
                     f"{len(report.pages)} page(s) it had sent")
        elif not report.finished:
            error = (f"crawl process exited with code {report.exit_code} before finishing: "
                     f"{report.stderr.splitlines()[-1] if report.stderr else 'no output'}")
        elif not report.pages and entries and missed.keys() == set(entries):
            # none of its sitemap, robots.txt or start pages could be had: failing, not quiet
            error = f"crawl collected nothing: {entries[0]}: {missed[entries[0]]}"
        if error:
            raise CrawlError(source.name, error)
        self._recovered(state)
        now = self.clock.now()
        await self.store.record_poll(source.name, self.owner, now,
                               PollRecord(self._next(source, now, None), full_fetch=True))
        log.info("crawl: %d request(s), %d page(s), %d new, %d matched, %d alert(s) queued",
                 report.requests, len(report.pages), result.new, result.matched,
                 result.queued, extra={"source": source.name})
        return result

    async def _crawl_delay(self, source: Source, url: str) -> float:
        """The ``Crawl-delay`` in robots.txt of ``url``'s host (read through the shared
        politeness state, so at most once an hour), when the source obeys robots.txt."""
        if not source.robots_txt:
            return 0.0
        await self.politeness.allowed(self.client, source.name, url, source.user_agent,
                                      source.timeout)
        return self.politeness.crawl_delay(url, source.user_agent) or 0.0

    async def ingest(self, source: str, collected: Sequence[Article]) -> PollResult:
        """dedup → extract → store, for articles collected by any means (their pages,
        when attached, are extracted here; none is fetched)."""
        rejects = Rejects(source)
        result = await self._store(source, await self._fresh(collected, rejects),
                                   len(collected), rejects)
        rejects.report(self.metrics)
        return result

    async def _store(self, source: str, items: Sequence[Keyed], collected: int,
                     rejects: Rejects) -> PollResult:
        """extract → match → fingerprint (``self.work``) → store (story, alert) →
        publish. The store checks the keys again in its transaction, with those the pages
        gave: a page naming a known article, or one stored meanwhile by another process,
        is not stored twice."""
        now = self.clock.now()
        batch: list[NewArticle] = []
        every: dict[str, list[Match]] = {}  # every mention, for the alerts' snippets
        spent = dict.fromkeys((*STAGES, "plan"), 0.0)
        if items:
            await self._learned_rules()
            prepared = await self.work.prepare(source, items, now, Matching(
                self.tuned.version, self.tuned.watchlists))
            rejects.absorb(prepared.rejected, prepared.bug)
            batch, every = prepared.batch, prepared.every
            spent.update(prepared.spent)
        clock = time.perf_counter

        def plan(article: Article, matches: list[Match],
                 story: outbox.StoryContext) -> list[outbox.OutboxRow]:
            started = clock()
            rows = outbox.plan(article, story.muted.unmuted(matches), self.routes, now,
                               self.max_age, self.policy, story, every.get(article.url))
            spent["plan"] += clock() - started
            return rows

        started = clock()
        kept = await self.store.add_articles(batch, now, self.tuned.version, plan,
                                       self.story_rules)
        spent["store"] = clock() - started - spent["plan"]
        for stage, seconds in spent.items():
            self._spent(stage, seconds)
        self.metrics.inc("newswatch_articles_stored_total", len(kept), source=source)
        changed: set[str] = set()
        for entry in kept:
            match entry.article.extraction:
                case Failed(reason):
                    log.warning("full text of %s not extracted (%s); matching what the "
                                "source gave", entry.article.link, reason,
                                extra={"source": source})
            for found in entry.matches:
                self.metrics.inc("newswatch_matches_total", watchlist=found.watchlist)
                changed.add(found.watchlist)
            for row in entry.rows:
                self.metrics.inc("newswatch_alerts_queued_total", channel=row.channel)
        if changed:
            await self.publish(changed)
        return PollResult(source, collected, len(kept),
                          sum(1 for entry in kept if entry.matches),
                          sum(len(entry.rows) for entry in kept))

    def _spent(self, stage: str, seconds: float) -> None:
        self.metrics.observe("newswatch_stage_seconds", seconds, stage=stage)

    async def _learned_rules(self) -> None:
        """Match with the learned rules of the database (the overlay on the YAML
        watchlists): looked up before each batch (a count and an id), so a rule applied
        from the CLI or the desk holds from the next batch on, with no reload."""
        version = await self.store.rules_version()
        if version != self._rules:  # the matcher is compiled where it runs (self.work)
            self.tuned = tuning.overlay(self.config, await self.store.rules())
            self._rules = version
            if version[0]:
                log.info("matching with %d learned rule(s) from the database", version[0])

    async def publish(self, watchlists: set[str]) -> None:
        """Rewrite the Atom feeds of watchlists that got new matches (when configured).
        A feed that cannot be written is logged; the articles are stored either way."""
        directory = self.config.atom_directory
        settings = self.config.settings.atom
        if directory is None or settings is None:
            return
        for name in sorted(watchlists):
            try:
                atom.write_feed(directory, name,
                                await self.store.matched_articles(watchlist=name,
                                                            limit=settings.entries),
                                self.clock.now())
            except OSError as exc:
                log.error("cannot write the Atom feed of watchlist %s in %s: %s", name,
                          directory, exc)


def _page_article(source: str, page: crawl.PageEvent) -> Article:
    """An Article from a page a crawl sent back."""
    return Article(source=source, url=dedup.canonical_url(page.url), link=page.url,
                   title=page.title,
                   published_at=dates.parse_date(page.published) if page.published else None,
                   page_html=page.html, final_url=page.final_url)
