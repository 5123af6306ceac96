"""Feed documents built from data, in the three formats newswatch reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Item:
    title: str
    link: str
    body: str = ""
    guid: str | None = None
    published: datetime | None = None


def rss(items: list[Item], title: str = "Test RSS") -> bytes:
    entries = "".join(
        "<item>"
        f"<title>{escape(i.title)}</title><link>{escape(i.link)}</link>"
        + (f"<guid isPermaLink=\"false\">{escape(i.guid)}</guid>" if i.guid else "")
        + (f"<pubDate>{format_datetime(i.published)}</pubDate>" if i.published else "")
        + f"<description>{escape(i.body)}</description></item>"
        for i in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{title}</title><link>http://example.org/</link>"
            f"<description>t</description>{entries}</channel></rss>").encode()


def atom(items: list[Item], title: str = "Test Atom") -> bytes:
    entries = "".join(
        "<entry>"
        f"<title>{escape(i.title)}</title><link href=\"{escape(i.link)}\"/>"
        f"<id>{escape(i.guid or i.link)}</id>"
        + (f"<updated>{i.published.isoformat()}</updated>" if i.published else "")
        + f"<content type=\"html\">{escape(i.body)}</content></entry>"
        for i in items)
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{title}</title><id>urn:test</id>"
            f"<updated>{datetime.now(UTC).isoformat()}</updated>{entries}</feed>").encode()


def json_feed(items: list[Item], title: str = "Test JSON Feed") -> bytes:
    return json.dumps({
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "items": [
            {"id": i.guid or i.link, "url": i.link, "title": i.title, "content_html": i.body,
             **({"date_published": i.published.isoformat()} if i.published else {})}
            for i in items
        ],
    }).encode()
