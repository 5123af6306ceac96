"""Digests and throttling: when a held alert goes out, and what one digest carries. Pure.

A digest is a property of a channel (``digest: hourly``, ``"daily at 08:00"`` or a cron
line, in the config's ``timezone``). Alerts for such a channel are queued held until the
channel's next digest time; then every held alert that is due is folded into one digest
row, which is delivered (and retried) like any alert, under its own stable id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from alerts.payload import story_data
from crawler.config import next_digest_time
from crawler.core.clock import iso

HOURLY = "hourly"


@lru_cache(maxsize=64)
def next_slot(spec: str, timezone: str, now: datetime) -> datetime:
    """The first digest time of ``spec`` strictly after ``now`` (an aware datetime).

    Remembered: a poll plans all its alerts at one ``now``, and each cron evaluation
    takes about a millisecond."""
    when = next_digest_time(spec, now.astimezone(ZoneInfo(timezone)))
    if when is None:  # a cron line that never fires again (e.g. 31 February)
        return now + timedelta(days=366)
    return when.astimezone(now.tzinfo)


def digest_payload(channel: str, members: Sequence[Mapping[str, Any]],
                   now: datetime) -> dict[str, Any]:
    """The ``digest`` event. Members that are all version 1 make a version-1 digest (their
    alerts grouped by watchlist, in queue order); otherwise version 2: one entry per
    alert, each a version-2 ``data`` object (version-1 ones converted) with its
    ``queued_at``."""
    if any(payload.get("version") == 2 for payload in members):
        return {
            "type": "digest",
            "version": 2,
            "timestamp": iso(now)[:19] + "Z",
            "data": {
                "channel": channel,
                "count": len(members),
                "alerts": [{**story_data(payload), "queued_at": payload["timestamp"]}
                           for payload in members],
            },
        }
    groups: dict[str, list[dict[str, Any]]] = {}
    for payload in members:
        data = payload["data"]
        groups.setdefault(data["watchlist"], []).append(
            {"article": data["article"], "matches": data["matches"],
             **({"story": data["story"]} if "story" in data else {}),
             "queued_at": payload["timestamp"]})
    return {
        "type": "digest",
        "version": 1,
        "timestamp": iso(now)[:19] + "Z",
        "data": {
            "channel": channel,
            "count": len(members),
            "watchlists": [{"watchlist": w, "alerts": a} for w, a in groups.items()],
        },
    }
