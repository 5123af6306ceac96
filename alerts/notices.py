"""Operator notices: an alert gone dead, or a channel failing for an hour. Pure.

An incident is keyed by (kind, channel, start of the channel's failure streak), so the
many alerts that die in one outage make one notice, and the next outage makes another.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from alerts.outbox import OutboxRow, alert_key, message_id
from crawler.core.clock import iso

FAILING_FOR = timedelta(hours=1)


def incident_key(kind: str, channel: str, since: datetime) -> str:
    return f"{kind}:{channel}:{iso(since)}"


def describe(kind: str, channel: str, since: datetime, last_error: str | None) -> str:
    when = iso(since)[:19] + "Z"
    if kind == "alert.dead":
        text = f"channel {channel}: alerts are dead (failing since {when})"
    else:
        text = f"channel {channel} has been failing for over an hour (since {when})"
    return text + (f"; last error: {last_error}" if last_error else "")


def notice_row(operator: str, kind: str, channel: str, since: datetime,
               last_error: str | None, now: datetime) -> OutboxRow:
    """The ``operator.notice`` event for a channel incident, on the operator channel."""
    return _row(operator, kind, ("channel", channel), since,
                describe(kind, channel, since, last_error), last_error, now)


def source_notice_row(operator: str, kind: str, source: str, since: datetime, message: str,
                      last_error: str | None, now: datetime) -> OutboxRow:
    """The ``operator.notice`` event for a source incident (``source.failing`` or
    ``source.quiet``), on the operator channel."""
    return _row(operator, kind, ("source", source), since, message, last_error, now)


def _row(operator: str, kind: str, subject: tuple[str, str], since: datetime, message: str,
         last_error: str | None, now: datetime) -> OutboxRow:
    field, name = subject
    incident = incident_key(kind, name if field == "channel" else f"source:{name}", since)
    key = alert_key("", f"notice:{incident}", operator)
    payload: dict[str, Any] = {
        "type": "operator.notice",
        "version": 1,
        "timestamp": iso(now)[:19] + "Z",
        "data": {"incident": kind, field: name, "since": iso(since)[:19] + "Z",
                 "message": message, "last_error": last_error},
    }
    return OutboxRow(key, message_id(key), "", operator, key.split("\x1f")[1], payload,
                     priority=True)
