"""Per-channel throttling (``max_per_hour``): which due alerts go now, which wait. Pure.

An alert counts against its channel's hourly limit the first time it is claimed, unless
it is urgent (``priority: high``), a digest or an operator notice. Over the limit, it is
held for the channel's next digest instead, where it goes out folded with the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Throttle:
    """A channel's limit, and when its held alerts go out (its next digest)."""

    max_per_hour: int
    hold_until: datetime


@dataclass(frozen=True, slots=True)
class Due:
    """A due alert, as much of it as throttling reads."""

    id: int
    channel: str
    kind: str
    priority: bool
    attempted_before: bool


@dataclass
class Decision:
    """The alerts to claim now, in order, and those to hold with their time."""

    claim: list[int] = field(default_factory=list)
    hold: dict[int, datetime] = field(default_factory=dict)


def counts(alert: Due) -> bool:
    """Whether sending ``alert`` uses up one of its channel's hourly sends."""
    return alert.kind == "alert" and not alert.priority and not alert.attempted_before


def decide(due: Iterable[Due], sent_last_hour: Mapping[str, int],
           throttles: Mapping[str, Throttle]) -> Decision:
    """Go through ``due`` in order: claim each alert while its channel is under its limit
    (``sent_last_hour`` counting what went out already), hold the rest."""
    used = dict(sent_last_hour)
    decision = Decision()
    for alert in due:
        throttle = throttles.get(alert.channel)
        if throttle is not None and counts(alert):
            if used.get(alert.channel, 0) >= throttle.max_per_hour:
                decision.hold[alert.id] = throttle.hold_until
                continue
            used[alert.channel] = used.get(alert.channel, 0) + 1
        decision.claim.append(alert.id)
    return decision
