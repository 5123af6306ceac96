"""Matched articles out of the archive: JSON Lines (one article a line, with its matches)
or CSV (one row per match, the article's columns repeated)."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

ARTICLE_COLUMNS = ("url", "title", "source", "published_at", "fetched_at", "story_id",
                   "outlets")
MATCH_COLUMNS = ("watchlist", "watch", "alias", "matched", "field", "start", "end",
                 "snippet", "created_at")


def _article(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**{c: row[c] for c in ARTICLE_COLUMNS}, "matched_at": row["matched_at"],
            "matches": [{c: m[c] for c in MATCH_COLUMNS} for m in row["matches"]]}


def write(out: TextIO, fmt: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``rows`` (from ``Store.matched_articles``) in ``fmt`` (``jsonl`` or ``csv``)."""
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(_article(row), ensure_ascii=False) + "\n")
        return
    writer = csv.writer(out)
    writer.writerow([*ARTICLE_COLUMNS, *MATCH_COLUMNS])
    for row in rows:
        for match in row["matches"]:
            writer.writerow([*(row[c] for c in ARTICLE_COLUMNS),
                             *(match[c] for c in MATCH_COLUMNS)])
