"""/healthz and /metrics scraped from a running daemon; JSON logs."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime

import feedparser
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Project
from tests.feeds import Item, rss
from tests.helpers import free_port
from tests.servers import Page, Receiver, Site


def get(url: str, timeout: float = 30) -> httpx.Response:
    """GET, retrying (bounded) while the listener is still starting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_healthz_and_metrics_from_a_running_daemon(project: Project, site: Site,
                                                   receiver: Receiver) -> None:
    now = datetime.now(UTC)
    site.pages["/feed.xml"] = Page(rss([Item("Atta Mohammad Noor", site.url("/a/1"), "",
                                             "g1", now)]))
    port = free_port()
    project.hook(receiver.url("/hook"))
    project.settings["daemon"] = {"tick": "0.2s"}
    project.settings["http"] = {"listen": f"127.0.0.1:{port}"}
    project.sources = [{"name": "Good", "feed": site.url("/feed.xml")},
                       {"name": "Bad", "feed": site.url("/missing.xml")}]
    daemon = project.popen("--log-format", "json", "run")
    try:
        assert len(receiver.wait_for(1)) == 1
        health = get(f"http://127.0.0.1:{port}/healthz")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "ok" and body["scheduler"]["alive"]
        assert body["database"]["writable"] and body["outbox"]["pending"] == 0

        scraped = get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
        metrics = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(scraped.text)
                   for s in family.samples}
        assert metrics[("newswatch_fetches_total",
                        (("outcome", "ok"), ("source", "Good")))] == 1
        assert metrics[("newswatch_fetches_total",
                        (("outcome", "error"), ("source", "Bad")))] == 1
        assert metrics[("newswatch_articles_stored_total", (("source", "Good"),))] == 1
        assert metrics[("newswatch_alerts_delivered_total", (("channel", "hook"),))] == 1
        assert metrics[("newswatch_fetch_seconds_count", (("source", "Good"),))] == 1
        for stage in ("parse", "dedup", "extract", "match", "fold", "fingerprint", "store",
                      "plan"):
            assert metrics[("newswatch_stage_seconds_count", (("stage", stage),))] == 1
        assert metrics[("newswatch_outbox_pending", ())] == 0
        assert metrics[("newswatch_sources_failing", ())] == 1
        assert get(f"http://127.0.0.1:{port}/other").status_code == 404
        assert get(f"http://127.0.0.1:{port}/").status_code == 404  # http.desk is off
        assert get(f"http://127.0.0.1:{port}/login").status_code == 404
        feed = get(f"http://127.0.0.1:{port}/feeds/afghan-opposition.atom")
        assert feed.headers["content-type"].startswith("application/atom+xml")
        parsed = feedparser.parse(feed.content)
        assert not parsed.bozo and [e.link for e in parsed.entries] == [site.url("/a/1")]
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    assert daemon.returncode == 0
    entries = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert entries and len(entries) == len(stderr.splitlines()), "every line is JSON"
    failing = [e for e in entries if "source failing" in e["message"]]
    assert failing and failing[0]["source"] == "Bad" and failing[0]["level"] == "warning"
    delivered = [e for e in entries if "delivered" in e["message"]]
    assert delivered[0]["channel"] == "hook" and delivered[0]["alert"].startswith("msg_")
