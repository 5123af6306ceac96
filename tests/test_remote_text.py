"""Text written by strangers (feeds, sitemaps, titles, links) stays data: it is never
expanded, inflated without bound, rendered as markup, sent as markup or run as a formula.
"""

from __future__ import annotations

import pytest

from tests.conftest import Project
from tests.servers import Page, Receiver, Site


def comment_hidden_entities(site: Site) -> bytes:
    """A billion-laughs-lite: 2,000 uses of a 10 KB entity, declared after a 70 KB comment."""
    return (b'<?xml version="1.0"?>\n<!-- ' + b"c" * 70_000 + b" -->\n"
            b'<!DOCTYPE rss [\n<!ENTITY big "' + b"A" * 10_000 + b'">\n]>\n'
            b'<rss version="2.0"><channel><title>t</title><item><title>Atta Mohammad Noor '
            + b"&big;" * 2000 + b"</title><link>" + site.url("/a/big").encode()
            + b"</link></item></channel></rss>")


@pytest.mark.parametrize("where", ["after a long comment", "in a malformed document",
                                   "in UTF-7"])
def test_entity_declarations_are_refused_wherever_they_stand(
        project: Project, site: Site, receiver: Receiver, where: str) -> None:
    body = comment_hidden_entities(site)
    if where == "in a malformed document":  # expat stops early; feedparser reads on
        body = body.replace(b"<!-- ", b"<!-- -- ", 1)
    if where == "in UTF-7":  # only feedparser's re-decoding shows the declaration
        body = body.replace(b'version="1.0"?>', b'version="1.0" encoding="utf-7"?>', 1)
        body = body.replace(b"<!ENTITY", b"+ADwAIQ-ENTITY")
    site.pages["/feed"] = Page(body, content_type="application/rss+xml")
    project.hook(receiver.url("/hook"))
    project.sources = [{"name": "laughs", "feed": site.url("/feed")}]
    project.once()
    store = project.store()
    try:
        [row] = store.sources()
        assert "declares XML entities" in (row["last_error"] or "")
        assert store.db.execute("select count(*) from articles").fetchone()[0] == 0
    finally:
        store.close()
