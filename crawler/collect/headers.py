"""Reading HTTP headers that say when to come back. Pure: the caller passes the time."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: Longer than any caller waits (each caps it lower); keeps date arithmetic finite.
MAX_SECONDS = 10 * 365 * 86400.0
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²", which isdigit() also takes
        return min(float(value), MAX_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_SECONDS)


def parse_max_age(cache_control: str | None) -> float | None:
    """``max-age`` from a Cache-Control header, unless the response must not be cached."""
    if not cache_control or "no-store" in cache_control.lower():
        return None
    found = _MAX_AGE.search(cache_control)
    return float(found.group(1)) if found else None
