"""Units a config value may be written in: durations, sizes, http URLs, non-empty text.

Each parser raises ValueError with a message the user can act on; the ``Annotated``
types apply them while pydantic validates.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_SIZE = re.compile(r"(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9,
               "gib": 2**30}


MAX_DURATION_TEXT = "36500d"
MAX_DURATION = 36500 * 86400.0
"""The longest duration: a hundred years, so a date a duration away is always one
Python can hold (``interval: 99999999999d`` passed check and overflowed in ``once``)."""


class _DurationError(ValueError):
    pass


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"30s"``, ``"15m"``, ``"1h30m"``, ``"2d"``."""
    if isinstance(value, bool):
        raise _DurationError(f"bad duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = _DURATION_PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise _DurationError(
                f"bad duration {value!r}: write a number and a unit such as 30s, 15m, 2h or 1d"
            )
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise _DurationError(f"bad duration {value!r}: write it as text such as 15m")
    if not seconds <= MAX_DURATION:  # also NaN, which compares false
        raise _DurationError(f"bad duration {value!r}: at most {MAX_DURATION_TEXT} (dates "
                             "beyond that cannot be computed)")
    if seconds <= 0:
        raise _DurationError(f"bad duration {value!r}: it must be longer than zero")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from ``1048576``, ``"10MB"``, ``"5 MiB"``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.fullmatch(str(value).strip())
    if not match or isinstance(value, bool):
        raise ValueError(f"bad size {value!r}: write a number of bytes or e.g. 10MB")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]


def http_url(value: Any) -> str:
    text = str(value).strip()
    if not re.match(r"^https?://[^/\s]+", text):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return text


def optional_http_url(value: Any) -> str:
    return "" if value is None or str(value).strip() == "" else http_url(value)


def non_empty(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty text")
    return value.strip()


Duration = Annotated[float, BeforeValidator(parse_duration)]
# a pause between two requests to a host, which may be none at all
Delay = Annotated[float, BeforeValidator(lambda v: 0.0 if v in (0, "0") else
                                         parse_duration(v))]
Size = Annotated[int, BeforeValidator(parse_size)]
Url = Annotated[str, BeforeValidator(http_url)]
Text = Annotated[str, BeforeValidator(non_empty)]
