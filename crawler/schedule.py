"""When a source is polled next. Pure: the caller passes the time."""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_BACKOFF = timedelta(hours=24)


def next_check(now: datetime, interval: float, failures: int = 0) -> datetime:
    """``interval`` after a success; after the n-th failure in a row, ``interval × 2^n``
    capped at a day, so a dead server is asked less often but never forgotten."""
    delay = timedelta(seconds=interval * 2 ** min(failures, 20))
    return now + min(delay, max(MAX_BACKOFF, timedelta(seconds=interval)))
