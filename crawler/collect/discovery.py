"""Finding and exchanging sources: feed and sitemap discovery, OPML, editing sources.yaml.

sources.yaml is edited with ruamel.yaml's round-trip mode, so the file's comments, order
and layout survive; the result is validated before it replaces the file. What is written
there comes from strangers (a site's link tags, an OPML file): it is escaped so that no
``${VAR}`` in it is ever read from the environment, and titles lose control characters.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import quoteattr

import httpx
import lxml.html
from lxml import etree
from protego import Protego
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from crawler.collect import fetch
from crawler.collect.feeds import parse_feed
from crawler.config import (
    CONTROL,
    SOURCES_FILE,
    SourceConfig,
    escape_env,
    load_config,
    one_line,
)
from crawler.core.errors import ConfigError, FetchError, NewswatchError, ParseError

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json",
              "application/json", "application/rdf+xml")
COMMON_FEED_PATHS = ("/feed", "/feed/", "/rss", "/rss.xml", "/feed.xml", "/atom.xml",
                     "/index.xml", "/feeds/posts/default")
COMMON_SITEMAP_PATHS = ("/news-sitemap.xml", "/sitemap_news.xml", "/sitemap.xml",
                        "/sitemap_index.xml")
DISCOVERY_MAX_BYTES = 5 * 2**20


class SourcesFileError(NewswatchError):
    """sources.yaml could not be changed (it stays as it was)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A feed or sitemap found on a site."""

    kind: str  # "feed" or "sitemap"
    url: str
    title: str
    how: str  # where it was found
    items: int = 0


async def discover(client: httpx.AsyncClient, home: str, user_agent: str,
                   timeout: float) -> list[Candidate]:
    """The feeds (``<link rel=alternate>``, common paths) and sitemaps (robots.txt, common
    paths) of the site at ``home``, each checked by fetching it."""
    def request(url: str) -> fetch.Request:
        return fetch.Request("discovery", url, timeout, user_agent, DISCOVERY_MAX_BYTES,
                             accept=fetch.PAGE_ACCEPT)

    page = await fetch.fetch(client, request(home))
    tree = lxml.html.document_fromstring(page.body or b"<html></html>")
    found: list[Candidate] = []
    feeds: list[tuple[str, str, str]] = []
    for link in tree.xpath('//link[@href][contains(concat(" ", normalize-space(@rel), " "), '
                           '" alternate ")]'):
        if (link.get("type") or "").split(";")[0].strip().lower() in FEED_TYPES:
            feeds.append((urljoin(page.url, link.get("href")), link.get("title") or "",
                          "<link rel=alternate>"))
    feeds += [(urljoin(page.url, p), "", "common path") for p in COMMON_FEED_PATHS]
    for url, title, how in _unique(feeds):
        if any(c.url == url for c in found):
            continue
        try:
            answer = await fetch.fetch(client, request(url))
            items = parse_feed("discovery", answer.body, answer.headers, answer.url).articles
        except (FetchError, ParseError):
            continue
        if not any(c.url == answer.url for c in found):
            found.append(Candidate("feed", answer.url, title, how, len(items)))

    sitemaps = []
    try:
        robots = await fetch.fetch(client, request(urljoin(page.url, "/robots.txt")))
        sitemaps += [(urljoin(page.url, u), "robots.txt Sitemap:")
                     for u in Protego.parse(robots.body.decode("utf-8", "replace")).sitemaps]
    except FetchError:
        pass
    sitemaps += [(urljoin(page.url, p), "common path") for p in COMMON_SITEMAP_PATHS]
    for url, how in sitemaps:
        if any(c.url == url for c in found):
            continue
        try:
            answer = await fetch.fetch(client, request(url))
            root = etree.fromstring(answer.body, etree.XMLParser(resolve_entities=False,
                                                                 no_network=True))
        except (FetchError, etree.XMLSyntaxError):
            continue
        name = etree.QName(root).localname if root is not None else ""
        if name in ("urlset", "sitemapindex"):
            found.append(Candidate("sitemap", answer.url, name, how, len(root)))
    return found


def _unique(items: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    seen: set[str] = set()
    kept = []
    for item in items:
        if item[0] not in seen:
            seen.add(item[0])
            kept.append(item)
    return kept


def site_name(url: str) -> str:
    host = (urlsplit(url).hostname or url).removeprefix("www.")
    return host


# --- sources.yaml ------------------------------------------------------------------------

def append_sources(config_dir: Path, entries: Sequence[dict[str, Any]]) -> list[str]:
    """Append entries to sources.yaml, keeping its comments and order; names already in use
    get a number. Returns the names written. Validates the result before replacing the
    file; on any problem the file is left as it was and SourcesFileError is raised.

    When ``sources:`` is the file's last key and a block list, the new entries are added
    as text after its last line, so every existing byte stays as it was (re-dumping a
    round-trip document can move comments). Otherwise the file is rewritten by ruamel.
    """
    path = config_dir / SOURCES_FILE
    original = path.read_text(encoding="utf-8") if path.exists() else ""
    data = YAML(typ="rt").load(original) if original.strip() else None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise SourcesFileError(f"{path}: the file must be a mapping with a 'sources' list")
    sources = data.get("sources")
    if sources is not None and not isinstance(sources, CommentedSeq):
        raise SourcesFileError(f"{path}: 'sources' must be a list")
    names = {str(s.get("name")) for s in sources or [] if isinstance(s, dict)}
    chosen = []
    for entry in entries:
        entry = {k: escape_env(v) if isinstance(v, str) else v for k, v in entry.items()}
        name, n = entry["name"], 2
        while name in names:
            name, n = f"{entry['name']} ({n})", n + 1
        names.add(name)
        chosen.append({**entry, "name": name})
    lines = ["{" + ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}"
                             for k, v in entry.items()) + "}" for entry in chosen]
    if sources and list(data)[-1] == "sources" and not sources.fa.flow_style():
        column = sources.lc.item(0)[1] - 2
        text = original if original.endswith("\n") else original + "\n"
        text += "".join(f"{' ' * max(column, 0)}- {line}\n" for line in lines)
    else:
        yaml = YAML(typ="rt")
        yaml.width = 4096
        if sources is None:
            sources = data["sources"] = CommentedSeq()
        for entry in chosen:
            sources.append(CommentedMap(entry))
        buffer = io.StringIO()
        yaml.dump(data, buffer)
        text = buffer.getvalue()
    path.write_text(text, encoding="utf-8")
    try:
        load_config(config_dir)
    except ConfigError as exc:
        path.write_text(original, encoding="utf-8")
        raise SourcesFileError(f"the new entries would make the config invalid, so "
                               f"{path} was left unchanged:\n{exc}") from exc
    return [entry["name"].replace("$$", "$") for entry in chosen]


# --- OPML --------------------------------------------------------------------------------

def read_opml(body: bytes) -> list[dict[str, Any]]:
    """Feed sources from an OPML file (every outline with an ``xmlUrl``, at any depth);
    a URL with a control character or a space is not a feed, a title loses them."""
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False,
                                                      no_network=True))
    except etree.XMLSyntaxError as exc:
        raise SourcesFileError(f"not an OPML file: {exc}") from exc
    if root is None or etree.QName(root).localname != "opml":
        raise SourcesFileError("not an OPML file: the root element is not <opml>")
    entries = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if not re.match(r"^https?://\S+$", url) or CONTROL.search(url):
            continue
        name = one_line(outline.get("title") or outline.get("text") or "") or site_name(url)
        entries.append({"name": name, "feed": url})
    return entries


def write_opml(sources: Sequence[SourceConfig], title: str = "newswatch sources") -> str:
    """An OPML 2.0 document of the feed sources (OPML has no place for sitemaps or
    crawls; they are left out)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0">',
             f"  <head><title>{_escape(title)}</title></head>", "  <body>"]
    for source in sources:
        if source.feed:
            lines.append(f'    <outline type="rss" text={quoteattr(source.name)} '
                         f"title={quoteattr(source.name)} xmlUrl={quoteattr(source.feed)}/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

