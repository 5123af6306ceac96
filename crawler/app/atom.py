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
from xml.sax.saxutils import escape, quoteattr

from crawler.core.clock import iso

ATOM_NS = "http://www.w3.org/2005/Atom"


def file_name(watchlist: str) -> str:
    """A safe file name for a watchlist: letters, digits, dot, dash and underscore."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", watchlist).strip("-.") or "watchlist"


def _when(text: str | None) -> str:
    return (text or "")[:19] + "Z" if text else ""


def render(watchlist: str, entries: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """The feed: one entry per matched article, newest match first; each entry names
    the watch items it matched, with snippets, and its story and outlet count."""
    feed_id = "urn:newswatch:watchlist:" + hashlib.sha256(watchlist.encode()).hexdigest()[:32]
    updated = _when(entries[0]["matched_at"]) if entries else iso(now)[:19] + "Z"
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n',
             f'<feed xmlns="{ATOM_NS}">\n',
             f"<title>{escape('newswatch: ' + watchlist)}</title>\n",
             f"<id>{feed_id}</id>\n<updated>{updated}</updated>\n",
             "<generator>newswatch</generator>\n"]
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
        summary = entry.get("summary") or ""
        parts += [
            "<entry>\n",
            f"<title>{escape(entry['title'] or entry['url'])}</title>\n",
            f"<link href={quoteattr(entry['url'])}/>\n",
            f"<id>urn:newswatch:article:{hashlib.sha256(entry['url'].encode()).hexdigest()[:32]}"
            "</id>\n",
            f"<updated>{_when(entry['matched_at'])}</updated>\n",
            *([f"<published>{_when(entry['published_at'])}</published>\n"]
              if entry.get("published_at") else []),
            f"<author><name>{escape(entry['source'])}</name></author>\n",
            *([f"<summary>{escape(summary)}</summary>\n"] if summary else []),
            f"<content type=\"html\">{escape(html)}</content>\n",
            *(f"<category term={quoteattr(w)}/>\n" for w in watches),
            "</entry>\n",
        ]
    parts.append("</feed>\n")
    return "".join(parts)


def write_feed(directory: Path, watchlist: str, entries: Sequence[Mapping[str, Any]],
               now: datetime) -> Path:
    """Write the watchlist's feed to ``directory`` (created if missing); returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{file_name(watchlist)}.atom"
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".atom.tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(render(watchlist, entries, now))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
