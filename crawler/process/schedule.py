"""When a source is polled next, and how. Pure: the caller passes the time and the facts."""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_BACKOFF = timedelta(hours=24)
MAX_CACHE_HINT = timedelta(hours=24)
FULL_FETCH_EVERY = timedelta(hours=24)
REDIRECT_CONFIRMATIONS = 2


def next_check(now: datetime, interval: float, failures: int = 0) -> datetime:
    """``interval`` after a success; after the n-th failure in a row, ``interval × 2^n``
    capped at a day, so a dead server is asked less often but never forgotten."""
    delay = timedelta(seconds=interval * 2 ** min(failures, 20))
    return now + min(delay, max(MAX_BACKOFF, timedelta(seconds=interval)))


def after_success(now: datetime, interval: float, cache_hint: float | None) -> datetime:
    """Never sooner than the feed's own ``ttl`` / ``max-age`` (capped at a day)."""
    hint = min(timedelta(seconds=cache_hint or 0), MAX_CACHE_HINT)
    return now + max(timedelta(seconds=interval), hint)


def after_failure(now: datetime, interval: float, failures: int,
                  retry_after: float | None = None) -> datetime:
    """Exponential backoff; a server's ``Retry-After`` (capped at a day) is a floor."""
    backoff = next_check(now, interval, failures)
    if retry_after is None:
        return backoff
    return max(backoff, now + min(timedelta(seconds=retry_after), MAX_BACKOFF))


def needs_full_fetch(last_full_fetch: datetime | None, now: datetime) -> bool:
    """Drop the validators once a day, so a server that answers 304 forever (a stale or
    future ETag) is still read now and then."""
    return last_full_fetch is None or now - last_full_fetch >= FULL_FETCH_EVERY


def track_redirect(known_target: str | None, seen: int, moved_to: str | None,
                   ) -> tuple[str | None, int, str | None]:
    """(target, times seen, URL to move to now) after one poll.

    A permanent redirect moves the source only once it has been seen on
    ``REDIRECT_CONFIRMATIONS`` polls in a row, so one glitch does not.
    """
    if moved_to is None:
        return None, 0, None
    seen = seen + 1 if moved_to == known_target else 1
    if seen >= REDIRECT_CONFIRMATIONS:
        return None, 0, moved_to
    return moved_to, seen, None
