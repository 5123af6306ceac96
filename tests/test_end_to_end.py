"""The whole chain through the real CLI: local feeds in, signed webhooks out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import SECRET, Project
from tests.feeds import Item, atom, json_feed, rss
from tests.payloads import mentions, valid_payload, watchlists_of
from tests.servers import Hit, Page, Receiver, Site


def verify(hit: Hit) -> dict[str, Any]:
    """Check a delivery as a Standard Webhooks receiver would, and return its payload."""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{hit.headers['webhook-id']}.{hit.headers['webhook-timestamp']}.".encode()
    expected = base64.b64encode(hmac.new(key, signed + hit.body, hashlib.sha256).digest())
    signatures = [s.split(",", 1)[1] for s in hit.headers["webhook-signature"].split()]
    assert expected.decode() in signatures, "webhook-signature does not verify"
    return valid_payload(json.loads(hit.body))


def serve_feeds(site: Site, extra_rss: list[Item] | None = None) -> None:
    now = datetime.now(UTC)
    base = site.url("")
    site.pages["/rss.xml"] = Page(rss([
        Item("Ahmad Masoud calls for intra-Afghan dialogue", f"{base}/a/1",
             "The NRF leader said talks must include all Afghans.", "rss-1", now),
        Item("Remembering a commander", f"{base}/a/2",
             "Ahmad Shah Massoud was killed in 2001.", "rss-2", now),
        Item("Weather in Kabul", f"{base}/a/3", "Snow is expected.", "rss-3", now),
        *(extra_rss or []),
    ]))
    site.pages["/atom.xml"] = Page(atom([
        Item("Atta Muhammad Nur meets envoys in Tashkent", f"{base}/a/4",
             "<p>Balkh’s former governor spoke.</p>", "urn:atom:4", now),
        Item("Atta Mohammad Noor in 2019", f"{base}/a/5", "An old story.", "urn:atom:5",
             now - timedelta(days=10)),
    ]), content_type="application/atom+xml")
    site.pages["/feed.json"] = Page(json_feed([
        Item("Ahmad Shah Massoud's son Ahmed Massoud speaks", f"{base}/a/6",
             "<p>Ahmed Massoud addressed supporters.</p>", "json-6", now),
        # The first RSS article again, under a tracking URL and another feed's id.
        Item("Ahmad Masoud calls for intra-Afghan dialogue",
             f"{base}/a/1?utm_source=feed&utm_medium=rss#top", "Same story.", "json-7", now),
    ]), content_type="application/feed+json")


def setup(project: Project, site: Site, receiver: Receiver) -> None:
    project.hook(receiver.url("/hook"))
    project.sources = [
        {"name": "RSS One", "feed": site.url("/rss.xml")},
        {"name": "Atom Two", "feed": site.url("/atom.xml")},
        {"name": "JSON Three", "feed": site.url("/feed.json")},
    ]


def by_url(receiver: Receiver) -> dict[str, dict[str, Any]]:
    found = {}
    for hit in receiver.delivered():
        payload = verify(hit)
        found[payload["data"]["article"]["url"]] = payload
    return found


def test_once_delivers_each_alert_exactly_once(project: Project, site: Site,
                                               receiver: Receiver) -> None:
    serve_feeds(site)
    setup(project, site, receiver)

    first = project.cli("once", check=True)
    base = site.url("")
    alerts = by_url(receiver)
    # /a/2 only names "Ahmad Shah Massoud" (excluded), /a/3 names nobody,
    # /a/5 is older than alert_max_age, and the utm_ copy of /a/1 is the same article.
    assert sorted(alerts) == [f"{base}/a/1", f"{base}/a/4", f"{base}/a/6"]
    assert len(receiver.delivered()) == 3
    assert len({h.headers["webhook-id"] for h in receiver.delivered()}) == 3

    first_alert = alerts[f"{base}/a/1"]
    assert first_alert["type"] == "article.matched"
    data = first_alert["data"]
    assert watchlists_of(first_alert) == ["afghan-opposition"]
    # Both feeds carry /a/1 and are polled concurrently: whichever stores it first owns it.
    assert data["article"]["source"] in {"RSS One", "JSON Three"}
    watched = {(m["watch"], m["matched"]) for m in mentions(first_alert)}
    assert ("Ahmad Massoud", "Ahmad Masoud") in watched
    assert ("intra-Afghan dialogue", "intra-Afghan dialogue") in watched
    assert {m["matched"] for m in mentions(alerts[f"{base}/a/6"])} == {"Ahmed Massoud"}
    assert "RSS One" in first.stdout and "3 delivered" in first.stdout

    # The old item was stored and matched, just not alerted.
    matches = json.loads(project.cli("matches", "--json", "--limit", "100",
                                     check=True).stdout)
    assert any(a["url"] == f"{base}/a/5" for a in matches["articles"])

    project.cli("once", check=True)
    assert len(receiver.delivered()) == 3, "a second pass must send nothing"

    serve_feeds(site, [Item("Dostum and Atta Mohammad Noor sign declaration", f"{base}/a/8",
                            "", "rss-8", datetime.now(UTC))])
    project.cli("once", check=True)
    assert len(receiver.delivered()) == 4
    assert sorted(by_url(receiver)) == [f"{base}/a/{n}" for n in (1, 4, 6, 8)]


@pytest.mark.slow
def test_two_concurrent_passes_send_each_alert_once(project: Project, site: Site,
                                                    receiver: Receiver) -> None:
    now = datetime.now(UTC)
    items = [Item(f"Atta Mohammad Noor statement {n}", site.url(f"/n/{n}"), "", f"n{n}", now)
             for n in range(40)]
    site.pages["/rss.xml"] = Page(rss(items))
    site.pages["/atom.xml"] = Page(atom(items), content_type="application/atom+xml")
    project.hook(receiver.url("/hook"))
    # About the outbox under concurrency, not pages: 80 page fetches at the polite 1 s
    # per-host delay would only slow it down.
    project.sources = [{"name": "Feed A", "feed": site.url("/rss.xml"), "full_text": False},
                       {"name": "Feed B", "feed": site.url("/atom.xml"), "full_text": False}]
    project.write()

    first, second = project.popen("once"), project.popen("once")
    for process in (first, second):
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr

    ids = [h.headers["webhook-id"] for h in receiver.delivered()]
    assert len(ids) == 40
    assert len(set(ids)) == 40
