"""The optional HTTP listener: ``/healthz``, ``/metrics`` and the watchlists' Atom feeds.

Deliberately tiny (asyncio streams, GET only, one request per connection): it serves
probes and scrapers on a trusted interface, 127.0.0.1 by default.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

log = logging.getLogger(__name__)

Handler = Callable[[], Awaitable[tuple[int, str, str]]]
READ_TIMEOUT_S = 5.0


async def serve(host: str, port: int, routes: dict[str, Handler]) -> asyncio.Server:
    """Start listening; the caller closes the returned server."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                request = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            handler = routes.get(path)
            if method != "GET":
                status, kind, body = 405, "text/plain", "GET only\n"
            elif handler is None:
                status, kind, body = 404, "text/plain", "not found\n"
            else:
                status, kind, body = await handler()
            data = body.encode()
            writer.write(
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        except Exception:
            log.exception("listener failed to answer")
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port)
    log.info("listening on http://%s:%d (/healthz, /metrics, /feeds/)", host, port)
    return server


def json_answer(status: int, payload: object) -> tuple[int, str, str]:
    return status, "application/json", json.dumps(payload, indent=1) + "\n"
