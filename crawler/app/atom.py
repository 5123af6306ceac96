"""Atom feeds of a watchlist's matches, so any feed reader can follow a watchlist.

``render`` is pure; ``write_feed`` replaces ``<directory>/<watchlist>.atom`` atomically
(write a temporary file, then rename), so a reader never sees half a feed.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from crawler.core.clock import iso

ATOM_NS = "http://www.w3.org/2005/Atom"
# What XML 1.0 cannot hold: C0 controls but tab, newline and return; lone surrogates;
# U+FFFE and U+FFFF. lxml refuses them with ValueError, so they are left out.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def file_name(watchlist: str) -> str:
    """A safe file name for a watchlist: letters, digits, dot, dash and underscore."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", watchlist).strip("-.") or "watchlist"


def _when(text: str | None) -> str:
    return (text or "")[:19] + "Z" if text else ""


def _add(parent: etree._Element, tag: str, text: str | None = None,
         **attributes: str) -> etree._Element:
    """A child element; text and attributes lose the characters XML forbids."""
    child = etree.SubElement(parent, f"{{{ATOM_NS}}}{tag}",
                             {k: _FORBIDDEN.sub("", v) for k, v in attributes.items()})
    if text is not None:
        child.text = _FORBIDDEN.sub("", text)
    return child


def render(watchlist: str, entries: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """The feed: one entry per matched article, newest match first; each entry names
    the watch items it matched, with snippets, and its story and outlet count."""
    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    _add(feed, "title", "newswatch: " + watchlist)
    _add(feed, "id",
         "urn:newswatch:watchlist:" + hashlib.sha256(watchlist.encode()).hexdigest()[:32])
    _add(feed, "updated", _when(entries[0]["matched_at"]) if entries else iso(now)[:19] + "Z")
    _add(feed, "generator", "newswatch")
    for entry in entries:
        watches = sorted({m["watch"] for m in entry["matches"]})
        lines = [f"<li><b>{escape(m['watch'])}</b> ({escape(m['field'])}): "
                 f"{escape(m['snippet'] or '')}</li>" for m in entry["matches"]]
        story = ""
        if entry.get("story_id") is not None:
            story = (f"<p>Story {entry['story_id']}, carried by {entry['outlets']} "
                     f"outlet{'s' if entry['outlets'] != 1 else ''}.</p>")
        html = (f"<p>{escape(entry['source'])}: {escape(', '.join(watches))}</p>"
                f"<ul>{''.join(lines)}</ul>{story}")
        item = _add(feed, "entry")
        _add(item, "title", entry["title"] or entry["url"])
        _add(item, "link", href=entry["url"])
        _add(item, "id", "urn:newswatch:article:"
             + hashlib.sha256(entry["url"].encode()).hexdigest()[:32])
        _add(item, "updated", _when(entry["matched_at"]))
        if entry.get("published_at"):
            _add(item, "published", _when(entry["published_at"]))
        _add(_add(item, "author"), "name", entry["source"])
        if entry.get("summary"):
            _add(item, "summary", entry["summary"])
        _add(item, "content", html, type="html")
        for watch in watches:
            _add(item, "category", term=watch)
    body: str = etree.tostring(feed, encoding="unicode", pretty_print=True)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body


#: Atom files are readable by all on purpose (mkstemp would make them 0600).
PUBLIC = 0o644


def write_feed(directory: Path, watchlist: str, entries: Sequence[Mapping[str, Any]],
               now: datetime) -> Path:
    """Write the watchlist's feed to ``directory`` (created if missing); returns its path.
    The file is 0644 whatever the umask: a web server may serve it (unlike the database,
    it holds only what the alerts said)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{file_name(watchlist)}.atom"
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".atom.tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(render(watchlist, entries, now))
            os.fchmod(out.fileno(), PUBLIC)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
