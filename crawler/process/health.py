"""Is a source sick? Pure: the caller passes its row's figures and the time.

Two incidents are worth an operator's attention: a source that has failed for longer
than a threshold, and one that has gone quiet far below its usual cadence (a feed that
still answers 200 but stopped carrying news is the failure readers miss most).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crawler.core.clock import parse_iso

FAILING_AFTER = timedelta(hours=6)
QUIET_MIN_DAILY_RATE = 1.0   # only sources that usually publish daily can go "quiet"
QUIET_MIN_HISTORY_DAYS = 3.0
QUIET_GAPS = 3.0             # silent for 3 usual gaps (and at least a day) is quiet


@dataclass(frozen=True, slots=True)
class Figures:
    """What the store knows about one source's recent life."""

    failing_since: datetime | None
    last_article_at: datetime | None
    daily_rate: float
    history_days: float


def incident(figures: Figures, now: datetime,
             failing_after: timedelta = FAILING_AFTER) -> str | None:
    """``"failing"``, ``"quiet"`` or None, with a failing source taking precedence."""
    if figures.failing_since is not None and now - figures.failing_since >= failing_after:
        return "failing"
    if (figures.daily_rate >= QUIET_MIN_DAILY_RATE
            and figures.history_days >= QUIET_MIN_HISTORY_DAYS
            and figures.last_article_at is not None):
        usual_gap = timedelta(days=1 / figures.daily_rate)
        if now - figures.last_article_at >= max(timedelta(days=1), usual_gap * QUIET_GAPS):
            return "quiet"
    return None


def figures(row: Mapping[str, Any], now: datetime,
            window: timedelta = timedelta(days=14)) -> Figures:
    """Figures from a ``Store.source_health`` row."""
    created = parse_iso(row["created_at"])
    history = min(window, now - created).total_seconds() / 86400
    return Figures(
        parse_iso(row["failing_since"]) if row["failing_since"] else None,
        parse_iso(row["last_article_at"]) if row["last_article_at"] else None,
        row["articles_window"] / history if history >= 1 else 0.0,
        history,
    )


def describe(kind: str, row: Mapping[str, Any], figures: Figures) -> str:
    """The operator notice for an incident, in words."""
    if kind == "failing":
        return (f"source {row['name']} has failed since {row['failing_since'][:16]} "
                f"({row['error_count']} polls): {row['last_error']}")
    last = row["last_article_at"][:16] if row["last_article_at"] else "never"
    return (f"source {row['name']} has gone quiet: no new article since {last}, "
            f"though it usually carries {figures.daily_rate:.1f} a day")


def state(row: Mapping[str, Any], now: datetime) -> str:
    """One word for a ``Store.source_health`` row: ``retired``, ``inactive``, an open
    incident (``failing`` too long, ``quiet``), ``failing`` or ``ok``."""
    if row["retired_at"]:
        return "retired"
    if not row["active"]:
        return "inactive"
    return incident(figures(row, now), now) or ("failing" if row["error_count"] else "ok")


def view(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A ``Store.source_health`` row as ``newswatch status``, ``sources list`` and the
    desk's Sources page show it: with its ``state``, its ``health`` in words as ``sources
    list`` says it (``never polled``, ``failing (N in a row)``), usual ``daily_rate`` and
    ``next_poll`` (None when it is not polled: retired or inactive)."""
    polled = not row["retired_at"] and row["active"]
    found = state(row, now)
    return {**row, "state": found,
            "health": "never polled" if not row["last_checked_at"] else
            f"failing ({row['error_count']} in a row)" if found == "failing" else found,
            "daily_rate": round(figures(row, now).daily_rate, 2),
            "next_poll": row["next_check_at"] if polled else None}
