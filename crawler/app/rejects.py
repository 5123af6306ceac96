"""Items refused one by one, so that one hostile item cannot sink its whole feed.

Each step of the chain runs per item inside :meth:`Rejects.each`: an item whose step
raises is dropped, the others go on, and the poll still succeeds. The errors hostile text
is known to cause are counted under a reason; any other error is a bug, counted as
``internal_error`` and logged with its traceback. A poll's rejections make one log line
and ``newswatch_items_rejected_total{source,reason}``, not one line per item per poll.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TypeVar

import httpx

from crawler.core.article import Rejected
from crawler.core.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: The errors remote text is known to raise in some library, and their reason: nesting
#: past the recursion limit, and values a parser refuses (URLs, encodings).
EXPECTED: tuple[tuple[type[Exception], str], ...] = (
    (RecursionError, "too_deep"),
    (httpx.InvalidURL, "bad_link"),
    (ValueError, "bad_value"),
)
#: Items named in the log line, at most.
SHOWN = 3


class Rejects:
    """The items of one poll of one source that were refused, reported once at its end."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Rejected] = []
        self.bug: Exception | None = None

    def add(self, *items: Rejected) -> None:
        self.items.extend(items)

    def absorb(self, rejected: Iterable[Rejected], bug: Exception | None) -> None:
        """Items refused elsewhere (a worker process), with the first bug among them."""
        self.items.extend(rejected)
        if self.bug is None:
            self.bug = bug

    def failed(self, link: str, exc: Exception) -> None:
        """Refuse the item at ``link`` for ``exc``."""
        reason = next((name for kind, name in EXPECTED if isinstance(exc, kind)),
                      "internal_error")
        if reason == "internal_error" and self.bug is None:
            self.bug = exc
        self.add(Rejected(link, reason, f"{type(exc).__name__}: {exc}"[:300]))

    def each(self, items: Iterable[T], step: Callable[[T], R],
             link: Callable[[T], str]) -> list[R]:
        """``step`` of every item, without those for which it raised."""
        done = []
        for item in items:
            try:
                done.append(step(item))
            except Exception as exc:  # sorted by failed(): a bug is logged, not hidden
                self.failed(link(item), exc)
        return done

    def report(self, metrics: Metrics) -> None:
        """Count the rejections by reason and log them in one line (with the first bug's
        traceback, if any)."""
        if not self.items:
            return
        reasons = Counter(item.reason for item in self.items)
        for reason, count in reasons.items():
            metrics.inc("newswatch_items_rejected_total", count, source=self.source,
                        reason=reason)
        shown = "; ".join(f"{i.link} ({i.reason}: {i.detail})" for i in self.items[:SHOWN])
        more = f"; and {len(self.items) - SHOWN} more" if len(self.items) > SHOWN else ""
        level = logging.ERROR if self.bug else logging.WARNING
        log.log(level, "%d item(s) rejected, the rest kept: %s%s", len(self.items), shown,
                more, extra={"source": self.source},
                exc_info=(type(self.bug), self.bug, self.bug.__traceback__)
                if self.bug else None)
