"""Full-text search on PostgreSQL: each article's ``tsvector`` and a parsed query
(``crawler.process.search.Query``) as a ``tsquery``, finding what SQLite's FTS5 finds.

The vector holds the tokens of the comparable title, summary and text
(``search.fields``: the matcher's folding, so Dari letter variants are one already),
with no stemming and no stop words (what the ``simple`` configuration does). It is
built here rather than by ``to_tsvector``: PostgreSQL's parser reads ``4.5``, hosts and
versions as single tokens where FTS5's unicode61 tokenizer splits them, and the two
backends must return the same articles. A token is a run of letters and digits (FTS5
separates on punctuation and on ``_``). Each field's positions follow the previous
field's after a gap, so a phrase never runs from the title into the summary (an FTS5
phrase stays in one column). A vector keeps 256 positions per token and positions up to
16383: in a longer text, phrases past that point are not found (single words are). It
takes no word over 2,047 bytes and at most 1 MB of distinct words: remote text beyond
that (a blob of base64, a page of random tokens) is left out of the index, never a
reason for the poll to fail.
"""

from __future__ import annotations

import re

from crawler.process.search import Query, Term

_TOKEN = re.compile(r"[^\W_]+")
MAX_POS = 16383
MAX_PER_TOKEN = 256
MAX_WORD_BYTES = 2047
#: Under PostgreSQL's 1 MiB of distinct words per vector, with room for their quoting.
MAX_WORDS_BYTES = 900_000


def tokens(text: str) -> list[str]:
    """The tokens of comparable text, as FTS5's unicode61 tokenizer cuts them."""
    return _TOKEN.findall(text)


def _lexeme(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def vector(title: str, summary: str, text: str) -> str:
    """An article's ``tsvector`` literal (for ``%s::tsvector``) from its comparable
    fields; the text when it is the summary adds nothing."""
    positions: dict[str, list[int]] = {}
    at = size = 0
    for field in (title, summary) if text == summary else (title, summary, text):
        for word in tokens(field):
            at += 1
            found = positions.get(word)
            if found is None:
                length = len(word.encode("utf-8", "surrogatepass"))
                if length > MAX_WORD_BYTES or size + length > MAX_WORDS_BYTES:
                    continue
                size += length
                found = positions[word] = []
            if at <= MAX_POS and len(found) < MAX_PER_TOKEN:
                found.append(at)
        at += 1  # the gap between fields
    return " ".join(_lexeme(w) + (":" + ",".join(map(str, p)) if p else "")
                    for w, p in positions.items())


class QuerySyntaxError(ValueError):
    """A query FTS5 would refuse too (a NOT with nothing before it)."""


def tsquery(query: Query) -> str:
    """A ``tsquery`` literal: each term a phrase of quoted lexemes (``<->``), a prefix
    term's last word ``:*``; terms side by side are AND (``&``), as in FTS5. FTS5's NOT
    is binary ("a NOT b", "a AND NOT b"): it becomes ``& !``; a NOT with nothing before
    it is an error, as in FTS5. Precedence agrees: NOT, then AND, then OR."""
    out: list[str] = []
    operand = False  # the last part ends an operand: a term or ")"
    for part in query.parts:
        if isinstance(part, Term):
            words = [w for word in part.words for w in tokens(word)] or list(part.words)
            phrase = " <-> ".join(_lexeme(w) for w in words) + (":*" if part.prefix else "")
            if operand:
                out.append("&")
            out.append(f"({phrase})" if len(words) > 1 else phrase)
            operand = True
        elif part == "(":
            if operand:
                out.append("&")
            out.append("(")
            operand = False
        elif part == ")":
            out.append(")")
            operand = True
        elif part == "NOT":
            if not operand:
                if out and out[-1] == "&":  # "a AND NOT b"
                    out.pop()
                else:
                    raise QuerySyntaxError("NOT needs something before it: a NOT b")
            out.extend(["&", "!"])
            operand = False
        else:
            out.append("&" if part == "AND" else "|")
            operand = False
    return " ".join(out)
