"""Backtests: what watchlists would have matched over the stored archive. One use case for
``newswatch backtest``, ``newswatch watchlists edit --preview`` and the desk's editor.

``compare`` is the core both share: one article replayed through a matcher, against the
(watchlist, watch) pairs it had before, gives what is new, unchanged and lost (with why
not, from the matcher's own explanation). ``backtest`` replays whole watchlists over the
stored matches. ``preview_item`` replays one edited watch item against the item as it is
now, newest article first, a page of the archive at a time (``Store.archive_page``, each
page a short read of its own), yielding a batch per page: a page can show the first
results while the rest of a large archive is read. It reads only, through the store it is
given; the caller opens its own (never the daemon's writer).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from crawler.app import tuning
from crawler.config import Config, WatchlistConfig
from crawler.core.article import Article
from crawler.core.errors import NewswatchError
from crawler.process.match import Match, Matcher, Miss
from crawler.store import ArchiveMark, LearnedRule, Store

Status = Literal["new", "unchanged", "lost"]
Pair = tuple[str, str]

#: Articles read per page of the archive: each page is one batch of a preview.
PAGE = 500


class PreviewError(NewswatchError):
    """A preview that cannot run; the message says why."""


def match_row(m: Match | Miss) -> dict[str, Any]:
    """A match (or a mention that did not count) as JSON-ready data."""
    row = dataclasses.asdict(m)
    return {**row, **{k: list(row[k]) for k in ("context", "terms") if k in row}}


@dataclass(frozen=True, slots=True)
class Change:
    """What a replay says of one (watchlist, watch item) on one article: ``new`` (matches
    now, did not before), ``unchanged`` (both) or ``lost`` (before only, ``why`` not)."""

    article: Article
    watchlist: str
    watch: str
    status: Status
    match: Match | None = None
    why: str = ""
    fetched_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        about: dict[str, Any] = {"url": self.article.url, "title": self.article.title,
                                 "source": self.article.source}
        if self.fetched_at is not None:
            about["fetched_at"] = self.fetched_at.isoformat(timespec="seconds")
        if self.match is not None:
            return {**about, "status": self.status, **match_row(self.match)}
        return {**about, "status": self.status, "watchlist": self.watchlist,
                "watch": self.watch, "why": self.why}


def compare(matcher: Matcher, article: Article, before: set[Pair],
            keep: Callable[[Pair], bool] = lambda _: True) -> list[Change]:
    """The matches ``matcher`` makes in ``article`` against the pairs it had ``before``
    (of which only those ``keep`` says count as lost)."""
    now = {(m.watchlist, m.watch): m for m in matcher.match(article)}
    changes = [Change(article, wl, watch, "unchanged" if (wl, watch) in before else "new",
                      now[wl, watch]) for wl, watch in sorted(now)]
    lost = sorted(k for k in before - now.keys() if keep(k))
    if lost:  # rare: explaining costs a second pass
        why: dict[Pair, list[str]] = {}
        for miss in matcher.explain(article).misses:
            why.setdefault((miss.watchlist, miss.watch), []).append(
                f"{miss.field}: {miss.reason}")
        changes += [Change(article, wl, watch, "lost",
                           why="; ".join(why.get((wl, watch), ["no mention found"])))
                    for wl, watch in lost]
    return changes


def backtest(archive: Sequence[tuple[Article, set[Pair]]], matcher: Matcher,
             keep: Callable[[Pair], bool] = lambda _: True,
             advance: Callable[[str], None] = lambda _: None,
             ) -> tuple[list[Change], list[Change]]:
    """The watchlists of ``matcher`` replayed over ``archive`` against the stored pairs:
    the matches that would be new, and those that would be gone."""
    newly: list[Change] = []
    gone: list[Change] = []
    for article, before in archive:
        for change in compare(matcher, article, before, keep):
            if change.status == "new":
                newly.append(change)
            elif change.status == "lost":
                gone.append(change)
        advance("")
    return newly, gone


# --- one edited item ------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewBatch:
    """One page of a preview: its results (newest first, unchanged ones included), and
    the running totals. ``total``: how many articles the whole preview reads (counted as
    it began); ``reached``: the fetch time of the oldest article read so far."""

    rows: list[Change]
    scanned: int
    total: int
    counts: dict[Status, int]
    reached: datetime | None
    done: bool


@dataclass
class ItemPreview:
    """An edited watch item against the item as it is, over the archive since ``since``.

    ``before`` and ``after`` are the configs without and with the edit (the learned rules
    of the database overlaid as the daemon does: a rule naming the old name of a renamed
    item no longer applies). Iterating gives one ``PreviewBatch`` per page read."""

    store: Store
    before: Config
    after: Config
    watchlist: str
    item: str
    renamed: str
    since: datetime
    rules: Sequence[LearnedRule] = ()
    page: int = PAGE
    counts: Counter[str] = field(default_factory=Counter)

    def _matcher(self, config: Config, name: str) -> Matcher | None:
        """A matcher of the one item (defaults and learned rules applied); None when
        the config has no such item (a new one, or one the edit removes)."""
        watchlists = tuning.overlay_watchlists(config.watchlists, self.rules)
        wl = next((w for w in watchlists if w.name == self.watchlist), None)
        item = next((i for i in wl.watch if i.name == name), None) if wl else None
        if wl is None or item is None:
            return None
        return Matcher([_alone(wl, item.resolved(wl.defaults))])

    def __iter__(self) -> Iterator[PreviewBatch]:
        current = self._matcher(self.before, self.item)
        edited = self._matcher(self.after, self.renamed)
        if edited is None:
            raise PreviewError(f"the edited config has no watch item {self.renamed!r} "
                                     f"in watchlist {self.watchlist!r}")
        key = (self.watchlist, self.renamed)
        mark: ArchiveMark | None = None
        scanned = 0
        reached: datetime | None = None
        total = self.store.count_archive(self.since)
        while True:
            page = self.store.archive_page(self.since, before=mark, limit=self.page)
            rows: list[Change] = []
            for (article, _), fetched in zip(page.rows, page.fetched_at, strict=True):
                was = current is not None and next(iter(current.match(article)), None)
                for change in compare(edited, article, {key} if was else set()):
                    rows.append(dataclasses.replace(change, fetched_at=fetched))
                    self.counts[change.status] += 1
            scanned += len(page.rows)
            reached = page.fetched_at[-1] if page.fetched_at else reached
            mark = page.next
            yield PreviewBatch(rows, scanned, max(total, scanned), self.totals(), reached,
                               mark is None)
            if mark is None:
                return

    def totals(self) -> dict[Status, int]:
        return {"new": self.counts["new"], "unchanged": self.counts["unchanged"],
                "lost": self.counts["lost"]}


def _alone(watchlist: WatchlistConfig, item: Any) -> WatchlistConfig:
    """``watchlist`` with only ``item``: items match independently, so this is what the
    whole watchlist does for it."""
    return watchlist.model_copy(update={"watch": [item]})


async def batches(preview: ItemPreview) -> AsyncIterator[PreviewBatch]:
    """The preview's batches off the event loop (each page read and matched in a
    thread), for a page that streams them."""
    pages = iter(preview)
    while (batch := await asyncio.to_thread(next, pages, None)) is not None:
        yield batch
