"""Bad sources are recorded on their rows while the healthy ones keep flowing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from crawler.collect import fetch
from crawler.core.errors import BlockedAddressError
from tests.conftest import Project
from tests.feeds import Item, rss
from tests.helpers import free_port
from tests.servers import Page, Receiver, Site


def test_broken_sources_are_recorded_and_healthy_alerts_arrive(
        project: Project, site: Site, receiver: Receiver) -> None:
    now = datetime.now(UTC)
    site.pages["/good.xml"] = Page(rss([
        Item("Atta Mohammad Noor speaks", site.url("/a/1"), "", "g1", now)]))
    site.pages["/broken.xml"] = Page(b"<html><body><h1>Service unavailable</h1>{oops",
                                     content_type="text/html")
    dead_port = free_port()
    project.hook(receiver.url("/hook"))
    project.sources = [
        {"name": "Good", "feed": site.url("/good.xml")},
        {"name": "Broken", "feed": site.url("/broken.xml")},
        {"name": "Missing", "feed": site.url("/missing.xml")},
        {"name": "Nobody home", "feed": f"http://127.0.0.1:{dead_port}/feed"},
    ]

    result = project.cli("once", "--json")
    assert result.returncode == 0, result.stderr
    polls = {p["source"]: p for p in json.loads(result.stdout)["sources"]}
    assert polls["Good"]["error"] is None and polls["Good"]["new"] == 1
    assert "not a readable feed" in polls["Broken"]["error"]
    assert polls["Missing"]["error"] == f"HTTP 404 from {site.url('/missing.xml')}"
    assert "cannot connect" in polls["Nobody home"]["error"]
    assert len(receiver.wait_for(1)) == 1

    rows = {r["name"]: r for r in json.loads(project.cli("status", "--json").stdout)["sources"]}
    for name in ("Broken", "Missing", "Nobody home"):
        assert rows[name]["error_count"] == 1
        assert rows[name]["last_error"] == polls[name]["error"]
        assert rows[name]["next_check_at"] > rows[name]["last_checked_at"]
    assert rows["Good"]["error_count"] == 0 and rows["Good"]["last_success_at"]
    assert rows["Good"]["state"] == "ok" and rows["Good"]["articles_24h"] == 1
    assert rows["Missing"]["state"] == "failing"

    # The human-readable summary names each failing source and its error.
    text = project.cli("once").stdout
    assert "Missing" in text and "HTTP 404" in text
    rows = {r["name"]: r for r in json.loads(project.cli("status", "--json").stdout)["sources"]}
    assert rows["Missing"]["error_count"] == 2


def test_304_is_not_parsed_again(project: Project, site: Site, receiver: Receiver) -> None:
    now = datetime.now(UTC)
    site.pages["/feed.xml"] = Page(rss([Item("Atta Mohammad Noor", site.url("/a/1"), "",
                                             "g1", now)]), etag='"v1"')
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "Cached", "feed": site.url("/feed.xml")}]

    first = json.loads(project.cli("once", "--json", check=True).stdout)["sources"][0]
    second = json.loads(project.cli("once", "--json", check=True).stdout)["sources"][0]
    assert first["new"] == 1 and not first["not_modified"]
    assert second["not_modified"] and second["items"] == 0
    hits = site.requests_to("/feed.xml")
    assert [h.status for h in hits] == [200, 304]
    assert hits[1].headers["if-none-match"] == '"v1"'


@pytest.mark.slow
def test_private_address_refused_unless_allowed(project: Project, site: Site) -> None:
    site.pages["/feed.xml"] = Page(rss([]))
    project.settings["allow_private_networks"] = False
    project.hook("http://127.0.0.1:9/unused")
    project.sources = [{"name": "Local", "feed": site.url("/feed.xml")},
                       {"name": "By name", "feed": f"http://localhost:{site.port}/feed.xml"},
                       # crawls check the address Scrapy connects to, in its resolver
                       {"name": "Sitemap", "sitemap": site.url("/sitemap.xml")},
                       {"name": "No robots", "sitemap": site.url("/sitemap.xml"),
                        "robots_txt": False, "retries": 0},
                       {"name": "Auto", "sitemap": "auto",
                        "site": f"http://localhost:{site.port}/"},
                       {"name": "Listing", "crawl": {"start": [site.url("/news/")],
                                                     "follow": [r"/news/\w+$"]}}]

    polls = json.loads(project.cli("once", "--json", check=True).stdout)["sources"]
    assert len(polls) == 6
    for poll in polls:
        assert "loopback, private or link-local" in poll["error"], poll
        assert "allow_private_networks" in poll["error"]
    assert site.hits == [], "a refused source must not be contacted at all"


def test_addresses_judged_public_or_not() -> None:
    assert not fetch.is_public_address("127.0.0.1")
    assert not fetch.is_public_address("10.1.2.3")
    assert not fetch.is_public_address("169.254.169.254")
    assert not fetch.is_public_address("::1")
    assert not fetch.is_public_address("::ffff:192.168.1.1")
    assert fetch.is_public_address("93.184.215.14")


def test_redirect_to_a_refused_address_is_not_followed() -> None:
    """The rule is checked on every connection, so a redirect cannot reach the LAN.

    127.0.0.2 stands for a public host and 127.0.0.3 for a private one.
    """
    public, private = Site("127.0.0.2"), Site("127.0.0.3")
    try:
        private.pages["/secret"] = Page(b"internal", content_type="text/plain")
        public.pages["/feed.xml"] = Page(b"", status=302,
                                         headers={"location": private.url("/secret")})
        client = fetch.make_client(allow_private_networks=False, transport=fetch.
                                   GuardedTransport(allowed=lambda a: a == "127.0.0.2"))
        request = fetch.Request("Redirector", public.url("/feed.xml"), 10, "test", 10_000)

        async def go() -> None:
            async with client:
                await fetch.fetch(client, request)

        with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.3"):
            asyncio.run(go())
        assert [h.path for h in public.hits] == ["/feed.xml"]
        assert private.hits == []
    finally:
        public.close()
        private.close()
