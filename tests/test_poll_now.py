""""Poll now" with a running daemon (a real subprocess, a local feed): `sources poll`
makes a source due and the daemon polls it at its next tick; the desk's button, served by
that daemon, wakes its poll tick at once. Each source's interval is an hour, so only the
poll-now explains a second request."""

from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime

import httpx

from tests.desk import Desk, client, csrf, make_desk, sign_in
from tests.feeds import Item, rss
from tests.helpers import Project, free_port, wait_until
from tests.servers import Page, Site


def _feed(project: Project, site: Site) -> None:
    item = Item("Atta Mohammad Noor speaks", site.url("/a/1"), "", "g1", datetime.now(UTC))
    site.pages["/feed.xml"] = Page(rss([item]))
    project.sources = [{"name": "Live", "feed": site.url("/feed.xml"), "interval": "1h"}]


def _stop(daemon: subprocess.Popen[str]) -> str:
    daemon.send_signal(signal.SIGTERM)
    _, stderr = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, stderr
    return stderr


def test_sources_poll_is_polled_by_a_running_daemon_at_its_next_tick(
        project: Project, site: Site) -> None:
    project.hook("")  # the watchlist's channel, disabled
    project.settings["daemon"] = {"tick": "0.5s", "workers": 0}
    _feed(project, site)
    project.write()
    daemon = project.popen("run")
    try:
        assert wait_until(lambda: len(site.requests_to("/feed.xml")) == 1), "first poll"
        assert not wait_until(lambda: len(site.requests_to("/feed.xml")) > 1, timeout=1.5), \
            "not due again for an hour"
        done = project.cli("sources", "poll", "Live", write=False)
        assert done.returncode == 0, done.stderr
        assert wait_until(lambda: len(site.requests_to("/feed.xml")) == 2, timeout=30), \
            "the daemon never polled the source made due"
    finally:
        _stop(daemon)


def test_the_desks_poll_now_wakes_the_daemon_serving_it(project: Project,
                                                        site: Site) -> None:
    port = free_port()
    desk = make_desk(project)
    _feed(desk.project, site)
    # a tick far off (as far as a lease allows): only the wake-up can poll the source
    # before it
    desk.project.settings["daemon"] = {"tick": "59s", "lease": "60s", "workers": 0}
    desk.project.settings["http"] = {"listen": f"127.0.0.1:{port}", "desk": True}
    desk.project.write()
    daemon = project.popen("run")
    try:
        assert wait_until(lambda: len(site.requests_to("/feed.xml")) == 1), "first poll"
        # ended, not only started: a poll in flight would write its own next check (an
        # hour on) over the one Poll now makes
        assert wait_until(lambda: _polled(desk)), "the first poll never ended"
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _up(base)), "the desk never answered"
        with client(base) as browser:
            assert sign_in(browser).status_code == 303
            page = browser.get("/sources")
            assert 'aria-label="Poll now: Live"' in page.text
            done = browser.post("/sources/Live/poll", data={"csrf": csrf(page)})
            assert done.status_code == 303
        assert wait_until(lambda: len(site.requests_to("/feed.xml")) == 2, timeout=30), \
            "the daemon did not poll at once (its next tick is 59 s after its first)"
    finally:
        _stop(daemon)


def _polled(desk: Desk) -> bool:
    """Whether the source's first poll has ended (recorded, its lease given back)."""
    store = desk.store()
    try:
        live = {r["name"]: r for r in store.sources()}["Live"]
    finally:
        store.close()
    return bool(live["last_checked_at"]) and live["lease_owner"] is None


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False
