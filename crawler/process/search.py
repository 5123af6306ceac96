"""Full-text search: the indexed form of text, parsed user queries, snippets. Pure.

The archive's FTS5 index holds the *comparable* form of each article's title, summary
and text: the matcher's folding (``crawler.process.fold``: NFKC, case folding, Latin
diacritics, plain apostrophes and hyphens, folded spaces, and Arabic-script letter
variants, tatweel, harakat, ZWNJ and digits made one), since FTS5's unicode61 tokenizer
folds none of the Arabic-script variants. Queries are folded the same way, so "احمد مسعود"
written with an Arabic yeh finds a Dari text written with a Persian one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from crawler.core.article import Article
from crawler.process.fold import aligned, excerpts, fold
from crawler.process.sentences import Snippet, snippets

# A query: "phrases", operators, parentheses, or words (with an optional trailing *).
_QUERY = re.compile(r'"(?P<phrase>[^"]*)"(?P<pstar>\*)?|(?P<op>\bAND\b|\bOR\b|\bNOT\b)'
                    r"|(?P<paren>[()])|(?P<word>[^\s\"()*]+)(?P<star>\*)?")
_TOKEN = re.compile(r"\w+")
MARK_OPEN, MARK_CLOSE = "«", "»"


class QueryError(ValueError):
    """A search query with nothing to search for, in words a user understands."""


def comparable(text: str) -> str:
    """The form that is indexed and searched: exactly the matcher's folding."""
    return fold(text)


def document(article: Article) -> tuple[str, str, str]:
    """The comparable title, summary and text of an article, as indexed."""
    return fields(article.title, article.summary, article.text)


def fields(title: str, summary: str, text: str) -> tuple[str, str, str]:
    """The comparable forms of an article's title, summary and text, as stored (the text
    is often the summary itself: it is normalised once). The full-text index keeps no
    copy of them: removing an article from it gives them again, recomputed from the
    stored columns."""
    folded = comparable(summary)
    return comparable(title), folded, folded if text == summary else comparable(text)


@dataclass(frozen=True, slots=True)
class Term:
    """Words in comparable form, searched as a phrase; ``prefix``: the last word may go on."""

    words: tuple[str, ...]
    prefix: bool = False

    def __str__(self) -> str:
        return " ".join(self.words) + ("*" if self.prefix else "")


OPERATORS = ("AND", "OR", "NOT", "(", ")")


@dataclass(frozen=True, slots=True)
class Query:
    """A user's query, parsed: terms and the operators and parentheses between them, in
    order. A backend translates it to its own syntax (SQLite: FTS5 ``MATCH`` text)."""

    parts: tuple[Term | str, ...]

    @property
    def terms(self) -> tuple[str, ...]:
        """The terms to highlight: words joined by spaces, ``*`` for a prefix."""
        return tuple(str(p) for p in self.parts if isinstance(p, Term))


def parse_query(text: str) -> Query:
    """Read ``"exact phrase"``, ``prefix*``, ``AND``/``OR``/``NOT`` and parentheses; every
    word is folded to comparable form, and punctuation inside a word (``intra-Afghan``)
    makes a phrase of its words, never an operator."""
    parts: list[Term | str] = []
    for found in _QUERY.finditer(text):
        if found.group("op") or found.group("paren"):
            parts.append(found.group("op") or found.group("paren"))
        else:
            raw = found.group("phrase") if found.group("phrase") is not None \
                else found.group("word")
            term = _term(raw, bool(found.group("pstar") or found.group("star")))
            if term:
                parts.append(term)
    if not any(isinstance(p, Term) for p in parts):
        raise QueryError(f"nothing to search for in {text!r}: give a word or a \"phrase\"")
    return Query(tuple(parts))


def _term(raw: str, prefix: bool) -> Term | None:
    words = _TOKEN.findall(comparable(raw))
    return Term(tuple(words), prefix) if words else None


def any_phrase(phrases: Iterable[str]) -> Query:
    """Each phrase exactly (a trailing ``*``: its last word may go on), joined by OR: how
    a watch item's name and aliases are searched, whatever characters they hold."""
    terms = list(dict.fromkeys(t for p in phrases
                               if (t := _term(p.rstrip().removesuffix("*"),
                                              p.rstrip().endswith("*")))))
    if not terms:
        raise QueryError("nothing to search for: the names have no words")
    return Query(tuple(part for i, term in enumerate(terms)
                       for part in ((term,) if i == 0 else ("OR", term))))


Spellings = dict[tuple[str, ...], Query]


def spellings(items: Iterable[Iterable[str]]) -> Spellings:
    """For each watch item's spellings (its name and aliases), each of them in comparable
    words mapped to the query for them all (``any_phrase``): see ``with_spellings``."""
    found: Spellings = {}
    for names in items:
        try:
            every = any_phrase(names)
        except QueryError:
            continue
        for term in every.parts:
            if isinstance(term, Term) and not term.prefix:
                found.setdefault(term.words, every)
    return found


def with_spellings(query: Query, known: Spellings) -> Query:
    """The query with each term that spells a watch item (or, for a query of plain words
    only, all its words together) also finding the item's other spellings, as the
    matcher does: "Ahmad Massoud" finds the Dari احمد مسعود where that is an alias."""
    plain = all(isinstance(p, Term) and not p.prefix for p in query.parts)
    if plain and len(query.parts) > 1:
        joined = tuple(w for p in query.parts if isinstance(p, Term) for w in p.words)
        if joined in known:
            # the name first: its highlight is the whole name, not its first word
            return Query(("(", *known[joined].parts, ")", "OR", "(", *query.parts, ")"))
    parts: list[Term | str] = []
    for part in query.parts:
        if isinstance(part, Term) and not part.prefix and part.words in known:
            parts.extend(("(", *known[part.words].parts, ")"))
        else:
            parts.append(part)
    return Query(tuple(parts))


def both(first: Query, second: Query) -> Query:
    """Articles that match both queries."""
    return Query(("(", *first.parts, ")", "AND", "(", *second.parts, ")"))


def hit(text: str, terms: tuple[str, ...]) -> tuple[int, int] | None:
    """Where in ``text`` the first of ``terms`` it contains (as words, in comparable
    form: across letter variants) stands; None when none does."""
    if not text:
        return None
    folded, origin = aligned(text)
    best: tuple[int, int] | None = None
    for term in terms:
        prefix = term.endswith("*")
        words = term.rstrip("*").split(" ")
        pattern = r"(?<!\w)" + r"\W+".join(map(re.escape, words)) + \
            (r"\w*" if prefix else r"(?!\w)")
        found = re.search(pattern, folded)
        if found and (best is None or found.start() < best[0]):
            best = found.span()
    if best is None:
        return None
    return origin[best[0]], origin[best[1] - 1] + 1


def highlight(text: str, terms: tuple[str, ...]) -> str | None:
    """A snippet of ``text`` around the first of ``terms`` it contains, with the hit
    between « and »; None when no term occurs in it (as words)."""
    span = hit(text, terms)
    if span is None:
        return None
    start, end = span
    marked = text[:start] + MARK_OPEN + text[start:end] + MARK_CLOSE + text[end:]
    return excerpts(marked, start, end + len(MARK_OPEN) + len(MARK_CLOSE))[0]


def passage(text: str, terms: tuple[str, ...]) -> Snippet | None:
    """The sentence of ``text`` holding the first of ``terms`` it contains, the hit
    marked by offsets (for markup to wrap, where ``highlight``'s « » could be the
    text's own quotes, as in Dari); None when no term occurs in it."""
    span = hit(text, terms)
    return snippets(text, [span])[0] if span else None
