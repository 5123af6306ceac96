"""Digest schedules: ``hourly``, ``daily at HH:MM`` or a five-field cron line.

A cron line means what it means to cron (croniter reads it): when both the day of the
month and the weekday are restricted, a day matching either one fires.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from croniter import CroniterError, croniter
from pydantic import BeforeValidator

# Full weekday names, which croniter does not read, as the three letters it does.
_FULL_DAY = re.compile(r"\b(sun|mon|tues|wednes|thurs|fri|satur)day\b")
# croniter's hashed (H) and random (R) times: not a schedule a digest can keep to.
_HASHED_OR_RANDOM = re.compile(r"\b[hr]\b")


def _digest(value: Any) -> str | None:
    """Check a digest schedule at load time; ``digest_cron`` says its forms."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError(f"bad digest {value!r}: write hourly, \"daily at 08:00\" or a cron "
                         "expression")
    # (digest_cron raises on a malformed line; a well-formed one may name no real day)
    if next_digest_time(value, datetime(2000, 1, 1)) is None:
        raise ValueError(f"bad digest {value!r}: it never fires (no such day)")
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
    text = _FULL_DAY.sub(lambda m: m.group(1)[:3], text)
    if _HASHED_OR_RANDOM.search(text):
        raise ValueError(f"bad digest {spec!r}: H and R (hashed and random times) are not "
                         "supported; write the minute and hour")
    try:
        croniter.expand(text)
    except CroniterError as exc:
        detail = re.sub(r"^\[.*?\] is not acceptable[,.]?\s*", "", str(exc))
        raise ValueError(f"bad digest {spec!r}: not a valid cron expression"
                         + (f" ({detail})" if detail else "")
                         + "; write minute hour day month weekday, e.g. \"0 8 * * mon-fri\"",
                         ) from exc
    return text


def restricts_both_days(spec: str) -> bool:
    """Whether a schedule restricts both the day of the month and the weekday: cron then
    fires on a day matching either (releases before 0.2 needed both)."""
    expanded, _ = croniter.expand(digest_cron(spec))
    return bool(expanded[2][0] != "*" and expanded[4][0] != "*")


def next_digest_time(spec: str, local_now: datetime) -> datetime | None:
    """The first time of ``spec`` strictly after ``local_now`` (aware, in the config's
    time zone), or None if the schedule never fires again (e.g. 31 February)."""
    try:
        when: datetime = croniter(digest_cron(spec), local_now).get_next(datetime)
    except CroniterError:
        return None
    return when


Digest = Annotated[str | None, BeforeValidator(_digest)]
