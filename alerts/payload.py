"""The two shapes of an ``article.matched`` event's data. Pure.

Version 1 is one watchlist's matches (a ``group: watchlist`` channel, and alerts queued
before the upgrade); version 2 is one story with every watchlist of the channel that
matched (docs/webhooks.md). Templates and digests read both through the version-2 shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crawler.process import sentences


def story_data(payload: Mapping[str, Any]) -> dict[str, Any]:
    """An ``article.matched`` event's ``data`` in the version-2 shape."""
    data = payload["data"]
    return dict(data) if payload.get("version") == 2 else as_story_data(data)


def as_story_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """A version-1 alert's ``data`` in the version-2 shape, for templates written for
    ``stories`` and for digests that mix both. The article's text is gone by then, so each
    mention's v1 snippet stands for its sentence."""
    story = data.get("story")
    new = set(story["new_watches"]) if story else set()
    items: dict[str, dict[str, Any]] = {}
    for m in data["matches"]:
        item = items.setdefault(m["watch"], {"watch": m["watch"], "priority": "normal",
                                             "new": m["watch"] in new, "mentions": [],
                                             "snippets": []})
        item["mentions"].append(m)
        at = m["snippet"].find(m["matched"]) if m["matched"] else -1
        item["snippets"].append({"field": m["field"], "text": m["snippet"],
                                 "marks": [[at, at + len(m["matched"])]] if at >= 0 else []})
    article = data["article"]
    upgraded: dict[str, Any] = {
        "article": {**article, "summary": article.get("summary") or None,
                    "lede": sentences.lede("", article.get("summary") or "")},
        "priority": "normal",
    }
    if story:
        upgraded["story"] = {**story, "sources": [article["source"]]}
    upgraded["watchlists"] = [{"name": data["watchlist"], "items": sorted(
        items.values(), key=lambda item: not item["new"])}]
    return upgraded
