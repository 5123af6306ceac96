"""``newswatch demo``: the whole pipeline against bundled feeds, on this machine only.

A local HTTP server serves three sample feeds (RSS, Atom, JSON Feed) and receives the
webhooks; a temporary config and database are used, so nothing of the user's is touched
and no network is needed. Three passes show the first alerts, exactly one alert for an
item added afterwards, and then silence: no alert twice.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from crawler.app.daemon import OnceReport, Runner
from crawler.config import load_config
from crawler.store import open_store

FEEDS = {"kabul-daily.xml": "Kabul Daily", "north-wire.xml": "North Wire",
         "aid-monitor.json": "Aid Monitor"}
LATE_ITEM = """<item>
  <title>Hanif Atmar proposes a roadmap for talks</title>
  <link>{base}/kabul-daily/atmar-roadmap</link>
  <guid isPermaLink="false">kd-1004</guid>
  <description>The former foreign minister spoke in Doha.</description>
</item>
"""


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up between keep-alive requests is normal, not a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class _Site:
    """Serves the sample feeds and records the webhooks it receives."""

    feeds: dict[str, bytes] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> tuple[ThreadingHTTPServer, str]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                with site.lock:
                    body = site.feeds.get(self.path.strip("/"))
                if body is None:
                    self._send(404, b"not found", "text/plain")
                else:
                    kind = "application/feed+json" if self.path.endswith(".json") \
                        else "application/xml"
                    self._send(200, body, kind)

            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with site.lock:
                    site.received.append({"id": self.headers["webhook-id"], **payload})
                self._send(204, b"", "text/plain")

        server = _QuietServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}"


def _bundled(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def run(show: Callable[[str, OnceReport, list[dict[str, Any]]], None]) -> int:
    """Run the three passes, calling ``show`` after each; returns the alerts received."""
    site = _Site()
    server, base = site.start()
    try:
        for name in FEEDS:
            site.feeds[name] = _bundled(name).replace("{base}", base).encode()
        with tempfile.TemporaryDirectory(prefix="newswatch-demo-") as folder:
            config_dir = Path(folder) / "config"
            config_dir.mkdir()
            (config_dir / "newswatch.yaml").write_text(json.dumps({
                "database": "demo.db", "allow_private_networks": True,
                "alert_max_age": "3650d",
                "channels": {"demo-printer": {"type": "webhook", "url": f"{base}/hook",
                                              "secret": "demo-secret"}}}))
            (config_dir / "sources.yaml").write_text(json.dumps({"sources": [
                # the sample items carry their text; there are no article pages to fetch
                {"name": title, "feed": f"{base}/{name}", "full_text": False}
                for name, title in FEEDS.items()]}))
            (config_dir / "watchlists.yaml").write_text(_bundled("watchlists.yaml"))
            config = load_config(config_dir)
            store = open_store(config)
            try:
                passes = [("first pass: every feed is new", None),
                          ("a new item appears in Kabul Daily", "kabul-daily.xml"),
                          ("nothing changed: nothing is sent again", None)]
                for title, grow in passes:
                    if grow:
                        with site.lock:
                            site.feeds[grow] = site.feeds[grow].replace(
                                b"</channel>", LATE_ITEM.replace("{base}", base).encode()
                                + b"</channel>")
                    before = len(site.received)
                    report = asyncio.run(Runner(config, store).once())
                    show(title, report, site.received[before:])
            finally:
                store.close()
    finally:
        server.shutdown()
        server.server_close()
    return len(site.received)
