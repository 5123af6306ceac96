"""A parsed search query (``crawler.process.search.Query``) as FTS5 ``MATCH`` text."""

from __future__ import annotations

from crawler.process.search import Query, Term


def fts5(query: Query) -> str:
    """Every term quoted (so user input is never FTS5 syntax by accident), operators and
    parentheses as they are; FTS5's NOT is binary, so "a AND NOT b" becomes "a NOT b"."""
    parts: list[str] = []
    for part in query.parts:
        if isinstance(part, Term):
            parts.append('"' + " ".join(part.words) + '"' + ("*" if part.prefix else ""))
        else:
            if part == "NOT" and parts and parts[-1] == "AND":
                parts.pop()
            parts.append(part)
    return " ".join(parts)
