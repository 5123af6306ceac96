"""The full-text index ``articles_fts``: its table, its rows, and a parsed search query
(``crawler.process.search.Query``) as FTS5 ``MATCH`` text.

The index is *contentless* (``content=''``): it keeps the tokens of each article's
comparable title, summary and text (``search.document``), not a copy of them, which the
``articles`` table already holds. So a search returns rowids (joined to ``articles``),
snippets are cut from the stored text (``search.highlight``), and an article leaves the
index through FTS5's ``delete`` command given the very values it was indexed with,
recomputed from its stored columns (``search.fields``). SQLite 3.43's
``contentless_delete`` would spare that, but Debian 12's SQLite is 3.40.

Every article whose text is kept (``pruned_at IS NULL``) has exactly one row; a pruned
one has none. A change to the comparable form (``crawler.process.fold``) needs a
migration that rebuilds the index (``reindex``): old rows could not be deleted otherwise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from crawler.process.search import Query, Term, fields

CREATE = ("CREATE VIRTUAL TABLE articles_fts USING fts5(title, summary, text, content='', "
          "tokenize = 'unicode61 remove_diacritics 2')")
INSERT = "INSERT INTO articles_fts (rowid, title, summary, text) VALUES (?, ?, ?, ?)"
DELETE = ("INSERT INTO articles_fts (articles_fts, rowid, title, summary, text) "
          "VALUES ('delete', ?, ?, ?, ?)")

Stored = tuple[int, str | None, str | None, str | None]
"""An article's id, title, summary and text as the ``articles`` table holds them."""


def rows(stored: Iterable[Stored]) -> list[tuple[int, str, str, str]]:
    """The index rows of stored articles: what ``INSERT`` and ``DELETE`` take."""
    return [(article_id, *fields(title or "", summary or "", text or ""))
            for article_id, title, summary, text in stored]


def index_after(conn: sqlite3.Connection, last: int, chunk: int) -> tuple[int, int]:
    """Index up to ``chunk`` articles whose text is kept, after id ``last``; returns how
    many, and the last one indexed (``last`` when none was left)."""
    found = conn.execute("SELECT id, title, summary, text FROM articles WHERE id > ? "
                         "AND pruned_at IS NULL ORDER BY id LIMIT ?", [last, chunk]).fetchall()
    conn.executemany(INSERT, rows(found))
    return len(found), int(found[-1][0]) if found else last


def last_indexed(conn: sqlite3.Connection) -> int:
    """The highest article id in the index (0 when empty): FTS5 walks rowids in order."""
    found = conn.execute("SELECT rowid FROM articles_fts ORDER BY rowid DESC LIMIT 1"
                         ).fetchone()
    return int(found[0]) if found else 0


def reindex(conn: sqlite3.Connection, chunk: int = 1000) -> int:
    """Fill an empty index from the articles whose text is kept; returns how many."""
    done, last = 0, 0
    while True:
        added, last = index_after(conn, last, chunk)
        if not added:
            return done
        done += added


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
