"""What happens after a failed delivery attempt. Pure: the caller passes time and chance."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from crawler.config import RetryPolicy

MAX_RETRY_AFTER = timedelta(hours=24)


def next_attempt(policy: RetryPolicy, attempts_made: int, now: datetime, rng: random.Random,
                 retry_after: float | None = None) -> datetime | None:
    """When to try again after ``attempts_made`` failures, or None when out of attempts.

    Exponential backoff from ``base_delay`` capped at ``max_delay``, with jitter in the
    upper half so retries from many alerts spread out; a server's ``Retry-After`` is a
    floor (itself capped at a day, so a hostile value cannot park an alert forever).
    """
    if attempts_made >= policy.attempts:
        return None
    backoff = min(policy.base_delay * 2 ** (attempts_made - 1), policy.max_delay)
    delay = backoff * rng.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER.total_seconds()))
    return now + timedelta(seconds=delay)
