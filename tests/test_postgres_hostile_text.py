"""Remote text PostgreSQL cannot hold as it came (NUL characters, a word longer than a
tsvector takes, a page of more distinct words than a tsvector holds) is stored on both
backends alike, and found: no poll fails for it, over and over."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.process.search import parse_query
from tests.conftest import Project
from tests.postgres import fresh_database
from tests.servers import Page, Site

pytestmark = pytest.mark.postgres


@pytest.fixture
def dsn() -> Iterator[str]:
    with fresh_database() as made:
        yield made


def hostile_feed(site: Site) -> None:
    huge_word = "x" * 5000
    many = " ".join(f"w{n}" for n in range(120_000))
    site.pages["/feed.json"] = Page(json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "hostile",
        "items": [
            {"id": "nul\u0000id", "url": site.url("/a/1"), "title": "Massoud\u0000 speaks",
             "content_text": "Ahmad Massoud\u0000 spoke today.",
             "authors": [{"name": "A\u0000B"}], "date_published": datetime.now(UTC).isoformat()},
            {"id": "long", "url": site.url("/a/2"), "title": "Long word",
             "content_text": f"Panjshir {huge_word} elders"},
            {"id": "many", "url": site.url("/a/3"), "title": "Many words",
             "content_text": f"Salang {many}"},
        ]}).encode(), content_type="application/feed+json")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_hostile_text_is_stored_and_searched(tmp_path: Path, site: Site, backend: str,
                                              dsn: str) -> None:
    hostile_feed(site)
    project = Project(tmp_path)
    project.settings["database"] = dsn if backend == "postgres" else "../data/test.db"
    project.watchlists = []
    project.sources = [{"name": "Hostile", "feed": site.url("/feed.json"),
                        "full_text": False}]
    report = project.once()
    [poll] = report.polls
    assert poll.error is None and poll.new == 3, poll
    store = project.store()
    try:
        for word, url in (("massoud", "/a/1"), ("panjshir", "/a/2"), ("salang", "/a/3")):
            assert [r["url"] for r in store.search(parse_query(word))] == [site.url(url)]
    finally:
        store.close()
