"""``newswatch desk``: the same app, served alone (no polling, no delivery), for a
separate service or host beside the daemons sharing the database."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from crawler.app import atom
from crawler.app.desk import access
from crawler.app.desk import app as desk_app
from crawler.app.desk import server as desk_server
from crawler.app.desk.host import Answer, Host, json_answer
from crawler.config import Config
from crawler.core.clock import Clock, SystemClock
from crawler.store import Store
from crawler.store.threaded import ThreadedStore


async def serve(config: Config, store: Store, listen: str, stop: asyncio.Event, *,
                clock: Clock | None = None,
                started: Callable[[int], None] | None = None) -> None:
    """Serve the desk (whatever ``http.desk`` says), /healthz and the feeds on
    ``listen`` until ``stop`` is set; ``started`` gets the port."""
    db = ThreadedStore(store)

    async def healthz() -> Answer:
        error = await db.writable()
        return json_answer(200 if error is None else 503, {
            "status": "ok" if error is None else "failing",
            "database": {"writable": error is None, "error": error}})

    host = Host(config=lambda: config, store=db, clock=clock or SystemClock(),
                healthz=healthz)
    address, _, port = listen.rpartition(":")
    serving = await desk_server.serve(desk_app.build(host, desk=True), address.strip("[]"),
                                      int(port))
    try:
        if started:
            started(serving.port)
        await stop.wait()
    finally:
        await serving.stop()
        await asyncio.to_thread(db.shutdown)


def feed_urls(config: Config, store: Store) -> list[tuple[str, str]]:
    """Each watchlist's feed URL with its token, on ``http.public_url`` when set."""
    http = config.settings.http
    base = (http.public_url if http and http.public_url
            else f"http://{http.listen if http else '127.0.0.1:9108'}").rstrip("/")
    secret = store.secret(access.FEED_SECRET, secrets.token_bytes(32))
    return [(w.name, f"{base}/feeds/{atom.file_name(w.name)}.atom?token="
             f"{access.feed_token(secret, w.name)}") for w in config.watchlists]
