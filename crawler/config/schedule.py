"""Digest schedules: ``hourly``, ``daily at HH:MM`` or a five-field cron line."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator


def _digest(value: Any) -> str | None:
    """Check a digest schedule at load time; ``digest_cron`` says its forms."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError(f"bad digest {value!r}: write hourly, \"daily at 08:00\" or a cron "
                         "expression")
    digest_cron(value)
    return value.strip()


def digest_cron(spec: str) -> str:
    """The five-field cron expression for ``hourly``, ``daily at HH:MM`` or a cron line."""
    text = " ".join(spec.split()).lower()
    if text == "hourly":
        return "0 * * * *"
    daily = re.fullmatch(r"daily at (\d{1,2}):(\d{2})", text)
    if daily:
        at_hour, at_minute = int(daily.group(1)), int(daily.group(2))
        if at_hour > 23 or at_minute > 59:
            raise ValueError(f"bad digest {spec!r}: no such time of day")
        return f"{at_minute} {at_hour} * * *"
    if text.startswith("daily"):
        raise ValueError(f"bad digest {spec!r}: write e.g. \"daily at 08:00\"")
    if len(text.split()) != 5:
        raise ValueError(f"bad digest {spec!r}: write hourly, \"daily at 08:00\" or a cron "
                         "expression of five fields (minute hour day month weekday)")
    minute, hour, day, month, weekday = text.split()
    try:
        text = " ".join((minute, hour, day, month, _weekdays(weekday)))
        from apscheduler.triggers.cron import CronTrigger
        CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"bad digest {spec!r}: {exc}") from exc
    return text


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekdays(field: str) -> str:
    """A cron weekday field (0 or 7 = Sunday) as day names, because APScheduler counts
    from Monday = 0 and would shift every numbered weekday by one."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = 0, 6
        else:
            low, _, high = span.partition("-")
            first = _day(low)
            last = _day(high) if high else (6 if step else first)
            if last < first:
                last += 7
        for day in range(first, last + 1, int(step) if step else 1):
            days.add(day % 7)
    if not days:
        raise ValueError(f"no weekday in {field!r}")
    return ",".join(_DAYS[d] for d in sorted(days))


def _day(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text) % 7
    if text[:3] in _DAYS:
        return _DAYS.index(text[:3])
    raise ValueError(f"bad weekday {text!r}: use 0-7 (0 and 7 are Sunday) or sun-sat")


Digest = Annotated[str | None, BeforeValidator(_digest)]
