"""Real HTTP servers on 127.0.0.1 for the tests: a site serving feeds, a webhook receiver."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.helpers import wait_until
from tests.payloads import valid_payload


@dataclass
class Page:
    """What the site answers on one path. ``etag`` turns on conditional GET.

    ``stream`` replaces ``body`` for misbehaving servers: it is called with a function
    that writes bytes to the client, and the connection closes when it returns.
    """

    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    etag: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: Callable[[Callable[[bytes], None]], None] | None = None


@dataclass
class Hit:
    """One request, logged when it has been read (``at``, monotonic), before it is
    answered: ``status`` stays 0 until the server chose its answer (and for ever when
    the client hung up mid-request), ``answered`` None until the whole answer was handed
    to the socket."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    at: float = field(default_factory=time.monotonic)
    peer: int = 0  # the client's port: one per connection
    host: str = ""  # the address the request came to (one of 127.0.0.x)
    answered: float | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-answer is what the hostile tests expect; stay quiet."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Base:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes: with Nagle's algorithm the body
            # waited for the client's delayed ACK, 40 ms an answer on a kept-alive
            # connection
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                hit = Hit(self.command, self.path, {k.lower(): v for k, v in
                                                     self.headers.items()},
                          self.rfile.read(length) if length else b"",
                          peer=self.client_address[1], host=owner.host)
                with owner.lock:
                    owner.hits.append(hit)
                if len(hit.body) < length:
                    # The client hung up mid-request (a killed daemon): nothing arrived,
                    # and answering 200 would count a delivery that did not happen.
                    self.close_connection = True
                    return
                status, headers, body = owner.answer(hit)
                hit.status = status
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                stream = owner.streamer(hit)
                if stream is not None:
                    self.send_header("connection", "close")
                    self.end_headers()
                    self.close_connection = True

                    def write(data: bytes) -> None:
                        self.wfile.write(data)
                        self.wfile.flush()

                    try:
                        stream(write)
                    except OSError:  # the client gave up, as it should
                        return
                    hit.answered = time.monotonic()
                    return
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                hit.answered = time.monotonic()

            do_GET = do_POST = do_HEAD = _serve

        self.server = _Server((host, 0), Handler)
        self.host = host
        self.port = self.server.server_address[1]
        # A short poll interval: close() waits for the loop to notice the shutdown.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def answer(self, hit: Hit) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def streamer(self, hit: Hit) -> Callable[[Callable[[bytes], None]], None] | None:
        return None

    def reset(self) -> None:
        """Forget the requests seen, for the next test on a session's server."""
        with self.lock:
            self.hits.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Site(_Base):
    """Serves ``pages`` by path; 404 for anything else. Tests edit ``pages`` live."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.pages: dict[str, Page] = {}
        super().__init__(host)

    def answer(self, hit: Hit) -> tuple[int, dict[str, str], bytes]:
        page = self.pages.get(hit.path)
        if page is None:
            return 404, {"content-type": "text/plain"}, b"not found"
        headers = {"content-type": page.content_type, **page.headers}
        if page.etag:
            headers["etag"] = page.etag
            if hit.headers.get("if-none-match") == page.etag:
                return 304, headers, b""
        return page.status, headers, page.body

    def reset(self) -> None:
        super().reset()
        self.pages.clear()

    def streamer(self, hit: Hit) -> Callable[[Callable[[bytes], None]], None] | None:
        page = self.pages.get(hit.path)
        return page.stream if page is not None else None

    def requests_to(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]


class Receiver(_Base):
    """A webhook receiver: records every POST; ``script`` lists answers to give first."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.default: tuple[int, dict[str, str]] = (200, {})
        self.answerer: Callable[[Hit], tuple[int, dict[str, str]] | None] | None = None
        super().__init__(host)

    def answer(self, hit: Hit) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            chosen = self.answerer(hit) if self.answerer else None
            if chosen is None:
                chosen = self.script.pop(0) if self.script else self.default
        status, headers = chosen
        return status, {"content-type": "text/plain", **headers}, b"ok" if status < 300 \
            else b"nope"

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.script.clear()
            self.default = (200, {})
            self.answerer = None

    def delivered(self) -> list[Hit]:
        """The POSTs that were answered 2xx."""
        with self.lock:
            return [h for h in self.hits if 200 <= h.status < 300]

    def payloads(self) -> list[dict[str, Any]]:
        """The bodies delivered; newswatch's webhooks (those with a ``version``; Apprise's
        JSON has none) each checked against the documented JSON Schema of its type and
        version."""
        bodies = [json.loads(h.body) for h in self.delivered()]
        return [valid_payload(b) if "version" in b else b for b in bodies]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Hit]:
        """Wait (bounded) until ``count`` deliveries arrived; returns them either way."""
        wait_until(lambda: len(self.delivered()) >= count, timeout)
        return self.delivered()


class TricklingReceiver(Receiver):
    """Answers its first ``slow`` requests 200 at once, then sends the body a byte every
    0.2 s for 10 s: each read is quick, the whole answer is not."""

    def __init__(self, slow: int = 1_000_000) -> None:
        self.slow = slow
        super().__init__()

    def streamer(self, hit: Hit) -> Callable[[Callable[[bytes], None]], None] | None:
        with self.lock:
            if self.slow <= 0:
                return None
            self.slow -= 1

        def trickle(write: Callable[[bytes], None]) -> None:
            for _ in range(50):
                write(b".")
                time.sleep(0.2)
        return trickle
