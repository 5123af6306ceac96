"""What the process serving the app (the daemon, or ``newswatch desk``) gives it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.responses import Response

from crawler.config import Config
from crawler.core.clock import Clock
from crawler.store.threaded import ThreadedStore

Answer = tuple[int, str, str]
Handler = Callable[[], Awaitable[Answer]]


@dataclass
class Host:
    """What the process serving the app gives it. ``store`` is the app's own database
    connection (on its own thread): never the daemon's writer; the desk and the feeds
    read through it. ``config`` is read at each request, so a reload renames the
    feeds."""

    config: Callable[[], Config]
    store: ThreadedStore
    clock: Clock
    healthz: Handler
    metrics: Handler | None = None  # None: no /metrics (``newswatch desk``)
    #: the daemon's poll tick, run at once after "Poll now" (None: ``newswatch desk``,
    #: whose daemons are woken by the store on PostgreSQL, else find the source due at
    #: their next tick)
    wake: Callable[[], Awaitable[None]] | None = None
    kept: dict[str, bytes] = field(default_factory=dict)

    async def secret(self, name: str) -> bytes:
        """A secret kept in the database (generated at first use), read once."""
        if name not in self.kept:
            self.kept[name] = await self.store.call(self.store.sync.secret, name,
                                                       secrets.token_bytes(32))
        return self.kept[name]


def answer(found: Answer) -> Response:
    status, kind, body = found
    return Response(body, status, media_type=kind)


def json_answer(status: int, payload: object) -> Answer:
    return status, "application/json", json.dumps(payload, indent=1) + "\n"
