"""Serving the app with uvicorn inside a running event loop (the daemon's or
``newswatch desk``'s), without uvicorn's own signal handling: the process owns SIGINT and
SIGTERM, and stops the server itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)

#: how long requests in flight may finish at shutdown
GRACE_S = 5.0
START_S = 10.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave the signals to the process (uvicorn's would replace its handlers)."""
        yield


class Serving:
    """One uvicorn server running as a task of the current loop."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None],
                 sock: socket.socket) -> None:
        self.server = server
        self.task = task
        self.sock = sock
        self.port: int = sock.getsockname()[1]

    async def stop(self) -> None:
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), GRACE_S + 2)
        except TimeoutError:
            self.task.cancel()
        except Exception:
            log.exception("the listener failed while stopping")
        finally:
            self.sock.close()


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port fails at once (OSError)
    rather than inside uvicorn, which would exit the process. Its protocol is said
    (IPPROTO_TCP): asyncio sets TCP_NODELAY only on connections of such a socket, and
    without it every answer on a kept-alive connection waited 40 ms for a delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve(app: ASGIApp, host: str, port: int) -> Serving:
    """Start serving ``app`` on HOST:PORT; returns once it accepts connections."""
    sock = bind(host, port)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                            server_header=False, timeout_graceful_shutdown=int(GRACE_S),
                            timeout_keep_alive=5)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="listener")
    for _ in range(int(START_S / 0.01)):
        if server.started:
            break
        if task.done():
            sock.close()
            task.result()  # its error, if any
            raise OSError(f"the listener on {host}:{port} stopped at its start")
        await asyncio.sleep(0.01)
    else:
        server.should_exit = True
        sock.close()
        raise OSError(f"the listener on {host}:{port} did not start in {START_S:g}s")
    log.info("listening on http://%s:%d", host, sock.getsockname()[1])
    return Serving(server, task, sock)
