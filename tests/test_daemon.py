"""``newswatch run`` as a real subprocess: it picks up new items and stops on SIGTERM."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

from tests.conftest import Project
from tests.feeds import Item, rss
from tests.servers import Page, Receiver, Site


def test_daemon_alerts_on_new_item_and_exits_cleanly_on_sigterm(
        project: Project, site: Site, receiver: Receiver) -> None:
    now = datetime.now(UTC)
    first = Item("Atta Mohammad Noor speaks", site.url("/a/1"), "", "g1", now)
    site.pages["/feed.xml"] = Page(rss([first]))
    project.hook(receiver.url("/hook"))
    project.settings["daemon"] = {"tick": "0.2s"}
    project.sources = [{"name": "Live", "feed": site.url("/feed.xml"), "interval": "0.5s"}]

    daemon = project.popen("run")
    try:
        assert len(receiver.wait_for(1, timeout=30)) == 1, "first alert never arrived"
        second = Item("Ahmad Massoud answers", site.url("/a/2"), "", "g2", now)
        site.pages["/feed.xml"] = Page(rss([second, first]))
        delivered = receiver.wait_for(2, timeout=30)
        assert len(delivered) == 2, "the item added while running was not alerted"
        assert site.url("/a/2").encode() in delivered[1].body
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, stderr
    assert "daemon stopped" in stderr
    assert "[source Live]" in stderr, "log lines about a source must name it"
    assert len(receiver.delivered()) == 2


def test_sigterm_during_slow_delivery_keeps_the_alert(project: Project, site: Site,
                                                      receiver: Receiver) -> None:
    """A send cut short by shutdown stays in the outbox and goes out on the next start."""
    import threading

    arrived, release = threading.Event(), threading.Event()

    def stall(hit: object) -> tuple[int, dict[str, str]] | None:
        arrived.set()
        release.wait(timeout=20)
        return (200, {})

    site.pages["/feed.xml"] = Page(rss([Item("Atta Mohammad Noor speaks", site.url("/a/1"),
                                             "", "g1", datetime.now(UTC))]))
    project.hook(receiver.url("/hook"), timeout="30s")
    project.settings["daemon"] = {"tick": "0.2s"}
    project.sources = [{"name": "Live", "feed": site.url("/feed.xml")}]
    receiver.answerer = stall

    daemon = project.popen("run")
    try:
        assert arrived.wait(timeout=30), "the daemon never tried to deliver"
        # The receiver is holding the request open; stop the daemon now.
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        release.set()
    assert daemon.returncode == 0, stderr
    store = project.store()
    assert store.alert_counts() == {"pending": 1}
    assert store.alerts()[0]["attempts"] == 0, "a cancelled send is not a failed attempt"

    receiver.answerer = None
    project.cli("once", check=True)
    assert store.alert_counts() == {"delivered": 1}
