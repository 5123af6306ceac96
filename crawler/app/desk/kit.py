"""What ``pages.routes`` gives each module of pages (``stories``): one place for the
session check, CSRF, rendering and times, so a module adds routes without importing
``pages`` (no import circle)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

Page = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Kit:
    """The decorators for a signed-in page and a CSRF-checked action, ``render``, ``when``
    (a stored time in the configured zone), ``user`` (who acts, for ``created_by``) and
    ``secure`` (cookies set with the Secure flag: ``http.public_url`` is https)."""

    page: Callable[[Page], Page]
    action: Callable[[Page], Page]
    render: Callable[..., Response]
    when: Callable[[datetime | str | None], str]
    user: Callable[[Request], str]
    secure: bool
