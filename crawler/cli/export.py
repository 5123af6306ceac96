"""Matched articles out of the archive: JSON Lines (one article a line, with its matches)
or CSV (one row per match, the article's columns repeated).

CSV is opened by spreadsheets, which run a cell that starts with ``=``, ``+``, ``-``, ``@``,
tab or CR as a formula; such text cells get a leading ``'``, as OWASP recommends. It
starts with a byte order mark, without which Excel reads UTF-8 as a legacy code page and
garbles Dari and Pashto."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

ARTICLE_COLUMNS = ("url", "title", "source", "published_at", "fetched_at", "story_id",
                   "outlets")
MATCH_COLUMNS = ("watchlist", "watch", "alias", "matched", "field", "start", "end",
                 "snippet", "created_at")


_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def _cell(value: Any) -> Any:
    """The value, with a ``'`` before text a spreadsheet would read as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_LEADS):
        return "'" + value
    return value


def _article(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**{c: row[c] for c in ARTICLE_COLUMNS}, "matched_at": row["matched_at"],
            "matches": [{c: m[c] for c in MATCH_COLUMNS} for m in row["matches"]]}


def write(out: TextIO, fmt: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``rows`` (from ``Store.matched_articles``) in ``fmt`` (``jsonl`` or ``csv``)."""
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(_article(row), ensure_ascii=False) + "\n")
        return
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow([*ARTICLE_COLUMNS, *MATCH_COLUMNS])
    for row in rows:
        for match in row["matches"]:
            writer.writerow([*(_cell(row[c]) for c in ARTICLE_COLUMNS),
                             *(_cell(match[c]) for c in MATCH_COLUMNS)])
