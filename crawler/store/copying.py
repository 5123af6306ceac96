"""``newswatch db copy SOURCE TARGET``: a database copied into another, of either backend.

The source is read in one snapshot (SQLite: one read transaction; PostgreSQL: one
``REPEATABLE READ READ ONLY`` transaction), so daemons writing meanwhile cannot tear
the copy. The target is brought to this newswatch's schema first (created, or
migrated as opening it would), and must be empty or a copy of this source that was
interrupted.

Tables are read from the databases' catalogs, so a table a later step adds is copied
with no change here; only the search indexes and ``migrations`` are not copied (the
search index is rebuilt from the copied articles: SQLite's FTS5 table, PostgreSQL's
``article_search`` vectors; the target's migrations are its own). Tables go in foreign
key order; a reference to the same table, or the one closing a circle
(``stories.first_article_id`` ↔ ``articles.story_id``), is copied empty and filled in
once every table is there.

Each table is copied in primary-key order, a committed batch at a time, so an
interrupted copy (Ctrl-C, a crash) resumes from the highest key in the target: the
next run checks the target is such a prefix of the source (same rows up to its last
key, the same last row) and goes on from there. Then the id sequences are set past the
copied ids, the search index is filled (resuming likewise), and every table's rows are
counted on both sides: a difference fails the copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from crawler.core.errors import StoreError
from crawler.core.redact import DATABASE_URL, dsn_shown
from crawler.store.records import TableShape

#: Tables never copied: each database's own migrations, PostgreSQL's search vectors
#: (rebuilt). SQLite's full-text tables are virtual and never listed.
NOT_COPIED = frozenset({"migrations", "article_search"})


class CopyError(StoreError):
    """A copy refused or failed; the message says why and what to do."""


class Side(Protocol):
    """One database as the copy reads or writes it (``crawler.store.sqlite.copying``,
    ``crawler.store.postgres.copying``)."""

    location: str
    current: int

    def migrate(self) -> None: ...
    def close(self) -> None: ...
    def version(self) -> int: ...
    def tables(self) -> list[TableShape]: ...
    def snapshot(self) -> AbstractContextManager[None]: ...
    def count(self, table: str, key: Sequence[str] = (),
              upto: Sequence[Any] | None = None) -> int: ...
    def rows(self, table: str, columns: Sequence[str], key: Sequence[str],
             start: Sequence[Any] | None, limit: int,
             set_in: Sequence[str] = ()) -> list[tuple[Any, ...]]: ...
    def last(self, table: str, columns: Sequence[str],
             key: Sequence[str]) -> tuple[Any, ...] | None: ...
    def row(self, table: str, columns: Sequence[str], key: Sequence[str],
            at: Sequence[Any]) -> tuple[Any, ...] | None: ...
    def last_set(self, table: str, key: Sequence[str],
                 columns: Sequence[str]) -> tuple[Any, ...] | None: ...
    def counters(self) -> dict[str, int]: ...
    def insert(self, table: str, columns: Sequence[str],
               rows: Sequence[Sequence[Any]]) -> None: ...
    def update(self, table: str, key: Sequence[str], columns: Sequence[str],
               rows: Sequence[Sequence[Any]]) -> None: ...
    def set_counters(self, given: dict[str, int]) -> None: ...
    def reindex(self, batch: int) -> Iterator[int]: ...
    def indexed(self) -> tuple[int, int]: ...


def shown(location: str) -> str:
    """A side as messages show it: a URL without its password."""
    return dsn_shown(location) if DATABASE_URL.match(location) else location


def open_side(location: str, *, source: bool) -> Side:
    """The side a path or ``postgresql://`` URL names; a source must exist."""
    if DATABASE_URL.match(location):
        if not location.startswith(("postgresql://", "postgres://")):
            raise CopyError(f"{shown(location)} is not a database newswatch can use: give a "
                            "file path (SQLite) or postgresql://USER@HOST:PORT/NAME")
        # psycopg is imported only for a server database
        from crawler.store.postgres.copying import PostgresSide

        return PostgresSide(location)
    from crawler.store.sqlite.copying import SQLiteSide

    return SQLiteSide(Path(location), must_exist=source)


@dataclass(frozen=True, slots=True)
class Planned:
    """A table to copy, with the references filled in after every table is copied."""

    shape: TableShape
    later: tuple[str, ...] = ()


def plan(shapes: Sequence[TableShape], sizes: dict[str, int]) -> list[Planned]:
    """The tables in foreign-key order. A reference to its own table is filled in
    later; so is, in each circle of references, the one from the circle's smallest
    table (``stories.first_article_id``: fewer stories than articles to update)."""
    by_name = {s.name: s for s in shapes}
    needs = {s.name: {t for c, t in s.references if t != s.name and t in by_name}
             for s in shapes}
    later = {s.name: {c for c, t in s.references if t == s.name} for s in shapes}
    order: list[str] = []
    left = sorted(by_name)
    while left:
        ready = [n for n in left if needs[n] <= set(order)]
        if not ready:
            cycle = [n for n in left if _reaches(n, n, needs, set(left))]
            name = min(cycle, key=lambda n: (sizes.get(n, 0), n))
            back = {t for t in needs[name] if t in left and _reaches(t, name, needs, set(left))}
            later[name] |= {c for c, t in by_name[name].references if t in back}
            needs[name] -= back
            continue
        order += ready
        left = [n for n in left if n not in ready]
    return [Planned(by_name[n], tuple(c for c in by_name[n].columns if c in later[n]))
            for n in order]


def _reaches(start: str, goal: str, needs: dict[str, set[str]], within: set[str]) -> bool:
    """Whether ``goal`` is among what ``start`` needs, directly or not."""
    seen: set[str] = set()
    todo = [t for t in needs[start] if t in within]
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name not in seen:
            seen.add(name)
            todo += [t for t in needs[name] if t in within]
    return False


@dataclass(slots=True)
class Copied:
    """One table's figures."""

    table: str
    rows: int  # in the source's snapshot
    before: int  # in the target when this run began (a resumed copy)
    copied: int = 0  # by this run


@dataclass(slots=True)
class CopyReport:
    source: str
    target: str
    version: int
    resumed: bool
    tables: list[Copied] = field(default_factory=list)
    indexed: int = 0


#: Called after each committed batch: the step ("copy", "link", "index") and table.
Progress = Callable[[str, str], None]
#: Called once the work is known: how many batches it will take.
Planning = Callable[[int], None]


def copy_database(source: str, target: str, *, batch: int = 5000,
                  planned: Planning = lambda _: None,
                  progress: Progress = lambda _s, _t: None) -> CopyReport:
    """Copy ``source`` into ``target`` (paths or URLs); see the module's docstring."""
    if shown(source) == shown(target) or (
            not DATABASE_URL.match(source) and not DATABASE_URL.match(target)
            and Path(source).resolve() == Path(target).resolve()):
        raise CopyError("the source and the target are the same database")
    with _opened(source, source=True) as src, src.snapshot():
        _check_source(src)  # before the target is touched (a new file made)
        with _opened(target, source=False) as dst:
            return _copy(src, dst, batch, planned, progress)


def _copy(src: Side, dst: Side, batch: int, planned: Planning,
          progress: Progress) -> CopyReport:
    """The copy, once the source is open on its snapshot and the target open."""
    _check_target(dst)
    shapes = _shapes(src, dst)
    sizes = {s.name: src.count(s.name) for s in shapes}
    order = plan(shapes, sizes)
    before = {p.shape.name: dst.count(p.shape.name) for p in order}
    resumed = any(before.values())
    if resumed:
        _check_prefix(src, dst, order, sizes, before)
    report = CopyReport(src.location, dst.location, src.version(), resumed,
                        [Copied(p.shape.name, sizes[p.shape.name],
                                before[p.shape.name]) for p in order])
    articles = sizes.get("articles", 0)
    planned(sum(-(-(sizes[n] - before[n]) // batch) for n in sizes)
            + sum(-(-sizes[p.shape.name] // batch) for p in order if p.later)
            + -(-articles // batch))
    for step, copied in zip(order, report.tables, strict=True):
        copied.copied = _copy_table(src, dst, step, batch, progress)
    for step in order:
        if step.later:
            _link(src, dst, step, batch, progress)
    dst.set_counters(src.counters())
    for added in dst.reindex(batch) if "articles" in sizes else ():
        report.indexed += added
        progress("index", "articles")
    _check_counts(src, dst, report)
    return report


@contextmanager
def _opened(location: str, *, source: bool) -> Iterator[Side]:
    side = open_side(location, source=source)
    try:
        yield side
    finally:
        side.close()


def _check_source(src: Side) -> None:
    have = src.version()
    if have != src.current:
        what = "older" if have < src.current else "newer"
        fix = ("open it with this newswatch first (any command with database: set to it, "
               "such as newswatch status, migrates it)" if have < src.current
               else "copy it with a newswatch as new as the database")
        raise CopyError(f"source {src.location} has schema version {have}, {what} than "
                        f"this newswatch's ({src.current}): {fix}")


def _check_target(dst: Side) -> None:
    """A new or older target is brought to this schema first (an older SQLite file is
    copied aside first, as on every migration); a newer one is refused."""
    found = dst.version()
    if found > dst.current:
        raise CopyError(f"target {dst.location} has schema version {found}, newer than "
                        f"this newswatch's ({dst.current}): copy into an empty database")
    if found < dst.current:
        dst.migrate()


def _shapes(src: Side, dst: Side) -> list[TableShape]:
    """The tables to copy, as the source has them; the target must have the same."""
    mine = {s.name: s for s in src.tables() if s.name not in NOT_COPIED}
    theirs = {s.name: s for s in dst.tables() if s.name not in NOT_COPIED}
    differ = sorted(n for n in mine.keys() | theirs.keys()
                    if n not in mine or n not in theirs
                    or set(mine[n].columns) != set(theirs[n].columns))
    if differ:
        raise CopyError(f"the source and the target differ in table(s) {', '.join(differ)} "
                        "at the same schema version: copy with the newswatch that made them")
    keyless = sorted(n for n, s in mine.items() if not s.key)
    if keyless:
        raise CopyError(f"table(s) {', '.join(keyless)} have no primary key to copy by")
    return [mine[n] for n in sorted(mine)]


def _key(shape: TableShape, row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(row[shape.columns.index(k)] for k in shape.key)


def _check_prefix(src: Side, dst: Side, order: Sequence[Planned], sizes: dict[str, int],
                  before: dict[str, int]) -> None:
    """The target must be this source's copy, interrupted: whole tables, then one part
    way, then empty ones; the part copied is the source's first rows, its last row the
    same (but for the references filled in at the end)."""
    partial = None
    for step in order:
        shape, have = step.shape, before[step.shape.name]
        if not have:
            if sizes[shape.name]:
                partial = partial or shape.name
            continue
        last = dst.last(shape.name, shape.columns, shape.key)
        why = None
        if partial is not None:
            why = f"{shape.name} has rows while {partial}, copied before it, is not complete"
        elif last is None or src.count(shape.name, shape.key, _key(shape, last)) != have:
            why = f"its {have} row(s) in {shape.name} are not the source's first {have}"
        else:
            theirs = src.row(shape.name, shape.columns, shape.key, _key(shape, last))
            same = theirs is not None and all(
                a == b for c, a, b in zip(shape.columns, last, theirs, strict=True)
                if c not in step.later)
            if not same:
                why = f"its last row in {shape.name} differs from the source's"
        if why:
            raise CopyError(f"target {dst.location} already holds data that is not a part "
                            f"copy of {src.location} ({why}): copy into an empty database")
        if have < sizes[shape.name]:
            partial = shape.name


def _copy_table(src: Side, dst: Side, step: Planned, batch: int, done: Progress) -> int:
    shape = step.shape
    nulled = [i for i, c in enumerate(shape.columns) if c in step.later]
    last = dst.last(shape.name, shape.columns, shape.key)
    start = _key(shape, last) if last is not None else None
    copied = 0
    while rows := src.rows(shape.name, shape.columns, shape.key, start, batch):
        if nulled:
            rows = [tuple(None if i in nulled else v for i, v in enumerate(r)) for r in rows]
        dst.insert(shape.name, shape.columns, rows)
        copied += len(rows)
        start = _key(shape, rows[-1])
        done("copy", shape.name)
    return copied


def _link(src: Side, dst: Side, step: Planned, batch: int, done: Progress) -> None:
    """The references copied empty, set as the source has them, in key order, a
    committed batch at a time: a resumed run goes on after the last row set."""
    shape, columns = step.shape, [*step.later, *step.shape.key]
    start = dst.last_set(shape.name, shape.key, step.later)
    while rows := src.rows(shape.name, columns, shape.key, start, batch, set_in=step.later):
        dst.update(shape.name, shape.key, step.later, rows)
        start = tuple(rows[-1][len(step.later):])
        done("link", shape.name)


def _check_counts(src: Side, dst: Side, report: CopyReport) -> None:
    wrong = [f"{c.table}: {c.rows} in the source, {have} in the target"
             for c in report.tables if (have := dst.count(c.table)) != c.rows]
    index, kept = dst.indexed()
    if index != kept:
        wrong.append(f"search index: {index} row(s) for {kept} article(s) with text")
    if wrong:
        raise CopyError("the copy does not match its source: " + "; ".join(wrong)
                        + " (was the target written to meanwhile? copy again into an "
                        "empty database)")
