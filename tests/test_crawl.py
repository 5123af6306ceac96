"""Sitemap and crawl sources: Scrapy in a child process, against a local news site."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from twisted.internet.address import IPv4Address

from crawler.collect import crawl, fetch
from crawler.collect.politeness import MAX_CRAWL_DELAY_S, Politeness
from crawler.collect.spiders import PublicOnlyResolver
from tests.conftest import Project
from tests.newssite import (
    HTML,
    XML,
    Story,
    listing_html,
    news_sitemap,
    plain_sitemap,
    publish,
    sitemap_index,
)
from tests.servers import Hit, Page, Receiver, Site


def stored_urls(project: Project) -> list[str]:
    store = project.store()
    try:
        return sorted(article.url for article, _ in store.archive(datetime(2000, 1, 1, tzinfo=UTC)))
    finally:
        store.close()


def article_requests(site: Site) -> list[str]:
    with site.lock:
        return sorted(h.path for h in site.hits if h.path.startswith(("/news/", "/private/")))


def build_site(site: Site) -> dict[str, str]:
    """robots.txt disallowing /private/, a news sitemap, a plain one, an index of both."""
    now = datetime.now(UTC)
    stories = {
        "/news/1": Story("/news/1", "Talks in Mazar",
                         "Governor Atta Mohammad Noor said the talks would go on."),
        "/news/2": Story("/news/2", "Snow in Salang", "The pass was cleared on Sunday."),
        "/news/3": Story("/news/3", "Declaration signed",
                         "Ahmad Massoud signed the declaration in Vienna."),
        "/news/old": Story("/news/old", "Old", "Ahmad Massoud in an old story."),
        "/private/1": Story("/private/1", "Hidden", "Ahmad Massoud in private."),
    }
    for story in stories.values():
        publish(site, story)
    site.pages["/robots.txt"] = Page(
        f"User-agent: *\nDisallow: /private/\nSitemap: {site.url('/sitemap-index.xml')}\n"
        .encode(), content_type="text/plain")
    site.pages["/news-sitemap.xml"] = Page(news_sitemap([
        (site.url("/news/1"), "Talks in Mazar", now - timedelta(hours=2)),
        (site.url("/news/2"), "Snow in Salang", now - timedelta(hours=5)),
        (site.url("/news/old"), "Old", now - timedelta(days=9)),
        (site.url("/private/1"), "Hidden", now - timedelta(hours=1)),
    ]), content_type=XML)
    site.pages["/sitemap-pages.xml"] = Page(plain_sitemap([
        (site.url("/news/3"), now - timedelta(hours=3)),
        (site.url("/news/old"), now - timedelta(days=9)),
    ]), content_type=XML)
    site.pages["/sitemap-index.xml"] = Page(sitemap_index([
        (site.url("/news-sitemap.xml"), now), (site.url("/sitemap-pages.xml"), now),
    ]), content_type=XML)
    return {path: s.title for path, s in stories.items()}


def configure(project: Project, receiver: Receiver, **source: Any) -> None:
    project.hook(receiver.url("/hook"))
    project.settings["defaults"] = {"delay": "0"}
    project.sources = [{"name": "Local News", **source}]


def test_news_sitemap_index_collects_new_allowed_recent_articles_once(
        project: Project, site: Site, receiver: Receiver) -> None:
    build_site(site)
    configure(project, receiver, sitemap=site.url("/sitemap-index.xml"))

    first = project.once()

    assert first.polls[0].error is None, first.polls[0].error
    wanted = [site.url(p) for p in ("/news/1", "/news/2", "/news/3")]
    assert stored_urls(project) == wanted
    assert site.requests_to("/private/1") == [], "robots.txt disallows /private/"
    assert site.requests_to("/news/old") == [], "older than max_age"
    alerted = sorted(p["data"]["article"]["url"] for p in receiver.payloads())
    assert alerted == [site.url("/news/1"), site.url("/news/3")], \
        "names in chrome only (/news/2) must not alert"
    assert article_requests(site) == ["/news/1", "/news/2", "/news/3"]
    with site.lock:
        agents = {h.headers.get("user-agent") for h in site.hits}
    assert agents == {"newswatch/0.1 (+https://example.org/newswatch)"}

    second = project.once()

    assert second.polls[0].error is None
    assert second.polls[0].new == 0
    assert article_requests(site) == ["/news/1", "/news/2", "/news/3"], \
        "a second run fetches no article page again"
    assert len(receiver.payloads()) == 2


def test_sitemap_auto_takes_the_sitemaps_robots_txt_lists(
        project: Project, site: Site, receiver: Receiver) -> None:
    build_site(site)
    configure(project, receiver, sitemap="auto", site=site.url("/"))
    report = project.once()
    assert report.polls[0].error is None, report.polls[0].error
    assert stored_urls(project) == [site.url(p) for p in ("/news/1", "/news/2", "/news/3")]
    assert site.requests_to("/private/1") == []


def test_crawl_follows_article_links_from_listing_pages(
        project: Project, site: Site, receiver: Receiver) -> None:
    titles = build_site(site)
    elsewhere = Site("127.0.0.2")
    publish(elsewhere, Story("/news/9", "Elsewhere", "Ahmad Massoud elsewhere."))
    site.pages["/politics/"] = Page(listing_html(
        [(f"/news/{n}", titles[f"/news/{n}"]) for n in ("1", "2", "3")]
        + [("/private/1", "Hidden"), ("/about", "About us"),
           (elsewhere.url("/news/9"), "Elsewhere")]).encode(), content_type=HTML)
    configure(project, receiver, crawl={"start": [site.url("/politics/")],
                                        "follow": [r"/(news|private)/\w+$"]})

    try:
        report = project.once()
    finally:
        elsewhere.close()
    assert elsewhere.hits == [], "a crawl never leaves its start pages' hosts"

    assert report.polls[0].error is None, report.polls[0].error
    assert stored_urls(project) == [site.url(p) for p in ("/news/1", "/news/2", "/news/3")]
    assert site.requests_to("/private/1") == []
    assert site.requests_to("/about") == [], "max_depth 1 follows only article links"
    alerted = sorted(p["data"]["article"]["url"] for p in receiver.payloads())
    assert alerted == [site.url("/news/1"), site.url("/news/3")]

    project.once()
    assert article_requests(site) == ["/news/1", "/news/2", "/news/3"]
    assert len(site.requests_to("/politics/")) == 2


def test_max_pages_caps_a_run(project: Project, site: Site, receiver: Receiver) -> None:
    titles = build_site(site)
    site.pages["/politics/"] = Page(listing_html(
        [(p, t) for p, t in titles.items() if p.startswith("/news/")]).encode(),
        content_type=HTML)
    configure(project, receiver, crawl={"start": [site.url("/politics/")],
                                        "follow": [r"/news/"], "max_pages": 2})
    project.once()
    assert len(stored_urls(project)) == 2
    project.once()
    assert len(stored_urls(project)) == 4, "the next run takes the next new pages"


def test_a_sitemap_that_cannot_be_had_is_an_error_on_the_source(
        project: Project, site: Site, receiver: Receiver) -> None:
    build_site(site)
    site.pages["/moved-sitemap.xml"] = Page(b"", status=301,
                                            headers={"location": site.url("/gone.xml")})
    configure(project, receiver, sitemap=site.url("/moved-sitemap.xml"))

    report = project.once()

    error = report.polls[0].error  # the entry point redirected to a page that is not there
    assert error is not None and error.startswith(
        f"crawl collected nothing: {site.url('/moved-sitemap.xml')}: "), error
    store = project.store()
    row = store.sources()[0]
    assert row["error_count"] == 1 and "moved-sitemap.xml" in row["last_error"]
    store.close()
    # a sitemap that answers with nothing new is quiet, not failing
    site.pages["/moved-sitemap.xml"] = Page(news_sitemap([]), content_type=XML)
    assert project.once().polls[0].error is None


@pytest.mark.slow
def test_a_crawl_keeps_the_robots_txt_crawl_delay(
        project: Project, site: Site, receiver: Receiver) -> None:
    build_site(site)
    site.pages["/robots.txt"] = Page(b"User-agent: *\nCrawl-delay: 1.5\nDisallow: /private/\n",
                                     content_type="text/plain")
    configure(project, receiver, sitemap=site.url("/news-sitemap.xml"))

    assert project.once().polls[0].error is None

    with site.lock:
        times = sorted(h.at for h in site.hits if h.path.startswith("/news/"))
    assert len(times) == 2  # /news/1 and /news/2; /news/old is too old
    assert times[1] - times[0] >= 1.4, "Scrapy alone would not wait between them"


def test_a_huge_crawl_delay_is_kept_to_a_minute(site: Site) -> None:
    site.pages["/robots.txt"] = Page(b"User-agent: *\nCrawl-delay: 1e12\n",
                                     content_type="text/plain")

    async def asked() -> float | None:
        polite = Politeness()
        async with fetch.make_client(allow_private_networks=True) as client:
            assert await polite.allowed(client, "s", site.url("/news/1"), "ua", 5.0) is None
        return polite.crawl_delay(site.url("/news/1"), "ua")

    assert asyncio.run(asked()) == MAX_CRAWL_DELAY_S == 60.0


class HangingSite(Site):
    """A site whose ``hang`` paths never answer until ``release`` is set."""

    def __init__(self) -> None:
        self.hang: set[str] = set()
        self.release = threading.Event()
        super().__init__()

    def answer(self, hit: Hit) -> tuple[int, dict[str, str], bytes]:
        if hit.path in self.hang:
            self.release.wait(timeout=60)
        return super().answer(hit)


@pytest.mark.slow
def test_a_hung_crawl_is_killed_at_its_budget_and_recorded(project: Project,
                                                           receiver: Receiver) -> None:
    site = HangingSite()
    try:
        build_site(site)
        site.hang.add("/news/2")
        configure(project, receiver, sitemap=site.url("/news-sitemap.xml"), budget="8s",
                  timeout="60s")

        report = project.once()

        error = report.polls[0].error
        assert error is not None and "killed at its 8s budget" in error
        # Pages sent before the kill are kept.
        assert site.url("/news/1") in stored_urls(project)
        store = project.store()
        row = store.sources()[0]
        assert row["error_count"] == 1 and "killed" in row["last_error"]
        store.close()

        site.hang.clear()
        site.release.set()
        again = project.once()
        assert again.polls[0].error is None
        assert site.url("/news/2") in stored_urls(project)
    finally:
        site.release.set()
        site.close()


def test_the_child_streams_pages_as_json_lines(site: Site) -> None:
    build_site(site)
    spec = {"kind": "sitemap", "name": "x", "sitemap": site.url("/news-sitemap.xml"),
            "entries": [site.url("/news-sitemap.xml")], "follow": [], "max_depth": 1,
            "max_pages": 10, "max_age": 86400, "now": datetime.now(UTC).isoformat(),
            "user_agent": "t/1", "timeout": 10, "max_bytes": 2**20, "delay": 0, "retries": 0,
            "robots_txt": True, "allow_private_networks": False, "known": []}
    report = asyncio.run(crawl.run(spec, 60, 2**20))
    # 127.0.0.1 is refused without allow_private_networks, before any byte is sent.
    assert report.finished and report.pages == []
    assert report.errors and "loopback" in report.errors[0].reason
    assert site.hits == []


@pytest.mark.slow
def test_daemon_runs_twenty_scheduled_crawls_and_survives_a_hung_one(
        project: Project, receiver: Receiver) -> None:
    import signal
    import time

    site = HangingSite()
    now = datetime.now(UTC)
    entries: list[tuple[str, str, datetime]] = []

    def add_story(n: int) -> None:
        story = Story(f"/news/{n}", f"Story {n}", f"Atta Mohammad Noor said thing {n}.")
        publish(site, story)
        entries.insert(0, (site.url(story.path), story.title, now))
        site.pages["/news-sitemap.xml"] = Page(news_sitemap(entries), content_type=XML)

    add_story(0)
    configure(project, receiver, sitemap=site.url("/news-sitemap.xml"), interval="0.5s",
              budget="10s")
    project.settings["daemon"] = {"tick": "0.2s"}
    daemon = project.popen("run")
    started = time.monotonic()
    try:
        # Each crawl reads the sitemap once; after each, one more story appears.
        crawls = 0
        while crawls < 21 and time.monotonic() - started < 300:
            seen = len(site.requests_to("/news-sitemap.xml"))
            if seen > crawls:
                crawls = seen
                add_story(crawls)
            time.sleep(0.05)
        assert crawls >= 21, f"only {crawls} crawls ran"
        elapsed = time.monotonic() - started

        store = project.store()

        def row() -> dict[str, Any]:
            return store.sources()[0]

        # Twenty crawls in a row succeeded: each new story was collected.
        deadline = time.monotonic() + 60
        while len(stored_urls(project)) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(stored_urls(project)) >= 20
        assert row()["error_count"] == 0, row()["last_error"]

        # Now the sitemap hangs: the crawl is killed at its budget and recorded...
        site.hang.add("/news-sitemap.xml")
        hung_at = time.monotonic()
        deadline = hung_at + 90
        while not (row()["last_error"] or "").startswith("crawl killed") and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        assert (row()["last_error"] or "").startswith("crawl killed at its 10s budget")
        killed_after = time.monotonic() - hung_at
        # ...and the next crawl still runs and succeeds.
        site.hang.clear()
        site.release.set()
        deadline = time.monotonic() + 90
        while row()["error_count"] != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert row()["error_count"] == 0 and row()["last_error"] is None
        store.close()
        print(f"\n{crawls} crawls in {elapsed:.1f}s; hung crawl recorded "
              f"{killed_after:.1f}s after the sitemap started hanging")
    finally:
        site.release.set()
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
        site.close()
    assert daemon.returncode == 0, stderr[-2000:]


def crawl_children(source: str) -> list[int]:
    """Crawl processes of ``source`` still alive on this machine (their argv names it)."""
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"crawler.collect.spiders" in argv and source.encode() in argv:
            found.append(int(proc.name))
    return found


@pytest.mark.slow
def test_stopping_the_daemon_kills_a_running_crawl(project: Project,
                                                   receiver: Receiver) -> None:
    import signal
    import time
    import uuid

    site = HangingSite()
    try:
        build_site(site)
        site.hang.add("/sitemap-index.xml")
        name = f"Hung {uuid.uuid4().hex[:8]}"
        configure(project, receiver, sitemap=site.url("/sitemap-index.xml"), budget="10m")
        project.sources[0]["name"] = name
        project.settings["daemon"] = {"tick": "0.2s"}
        daemon = project.popen("run")
        deadline = time.monotonic() + 60
        while not crawl_children(name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert crawl_children(name), "the crawl child never started"
        time.sleep(1)  # let it reach the hanging sitemap (no assertion rests on this)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, stderr[-2000:]
        assert crawl_children(name) == [], "the crawl outlived the daemon"
    finally:
        site.release.set()
        site.close()


def test_crawl_honours_retry_after_and_the_size_cap(project: Project,
                                                   receiver: Receiver) -> None:
    from crawler.collect.spiders import settings as scrapy_settings

    site = ScriptedSite()
    try:
        build_site(site)
        site.script["/news/1"] = [(429, {"retry-after": "1"})]
        big = Story("/news/2", "Big", "Ahmad Massoud. " * 20000)
        publish(site, big)
        configure(project, receiver, sitemap=site.url("/news-sitemap.xml"),
                  max_bytes="64KiB")
        report = project.once()
        assert report.polls[0].error is None, report.polls[0].error
        assert [h.status for h in site.requests_to("/news/1")] == [429, 200]
        assert stored_urls(project) == [site.url("/news/1")], "the page over the cap is dropped"
    finally:
        site.close()
    spec = {"user_agent": "t", "max_bytes": 1000, "timeout": 5, "delay": 0, "retries": 1}
    assert scrapy_settings(spec)["TELNETCONSOLE_ENABLED"] is False


class ScriptedSite(Site):
    """Answers listed in ``script`` first, per path."""

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = {}
        super().__init__()

    def answer(self, hit: Hit) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            scripted = self.script.get(hit.path, [])
            first = scripted.pop(0) if scripted else None
        if first is not None:
            return first[0], {"content-type": "text/plain", **first[1]}, b"wait"
        return super().answer(hit)


class _Answers:
    """A fake of the reactor's resolver: answers every name with fixed addresses."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    def resolveHostName(self, receiver: Any, host: str, port: int = 0,
                        *_: Any) -> Any:
        receiver.resolutionBegan(None)
        for address in self.addresses:
            receiver.addressResolved(IPv4Address("TCP", address, port))
        receiver.resolutionComplete()
        return receiver


class _Received:
    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.complete = False

    def resolutionBegan(self, resolution: Any) -> None:
        pass

    def addressResolved(self, address: Any) -> None:
        self.addresses.append(address.host)

    def resolutionComplete(self) -> None:
        self.complete = True


@pytest.mark.parametrize(("answer", "passed"), [
    (("93.184.215.14",), ["93.184.215.14"]),
    (("93.184.215.14", "10.0.0.7"), []),  # one private address refuses the whole answer
    (("169.254.169.254",), []),
])
def test_the_crawl_resolver_passes_on_public_answers_only(answer: tuple[str, ...],
                                                          passed: list[str]) -> None:
    """Scrapy connects to what its resolver answers, so checking there leaves no window
    for a name to turn private between check and connection (DNS rebinding)."""
    class Reactor:
        nameResolver = _Answers(*answer)

    received = _Received()
    PublicOnlyResolver.refused.clear()
    PublicOnlyResolver(Reactor()).resolveHostName(received, "news.example", 443)
    assert received.complete and received.addresses == passed
    assert ("news.example" in PublicOnlyResolver.refused) == (not passed)


def test_crawl_events_are_typed_at_the_boundary(caplog: pytest.LogCaptureFixture) -> None:
    page = crawl.PageEvent(url="u", final_url="f", html="<p>خبر</p>")
    assert crawl.parse_event(page.model_dump_json()) == page
    for line, says in [
            (b"not json", "(line: Invalid JSON"),
            (b'{"type": "retry_after", "url": "u"}', "(retry_after.seconds: Field required)"),
            (b'{"type": "nap"}', "does not match any of the expected tags"),
            (b'{"url": "u"}', "Unable to extract tag using discriminator 'type'")]:
        with pytest.raises(crawl.BadEventError) as raised:
            crawl.parse_event(line)
        assert says in str(raised.value) and repr(line) in str(raised.value)
    report = crawl.CrawlReport()
    crawl._take(report, b'{"type": "error", "url": "u"}\n')  # no reason: logged, not kept
    assert report.errors == []
    assert "error.reason: Field required" in caplog.text
