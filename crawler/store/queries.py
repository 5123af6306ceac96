"""SQL both backends run, written once: the web desk's stories list, the daemons' rows,
and the reads and writes of ``newswatch db copy`` (rows in primary-key order, by any
table's key).

Each backend supplies its parameter mark (``?`` for SQLite, ``%s`` for psycopg) and how
an ``EXISTS`` check stays a probe per row (PostgreSQL needs ``OFFSET 0``, or it plans a
semi-join as a merge join that walks every match from the newest story down).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from crawler.core.clock import iso
from crawler.store.desk import StoryFilter
from crawler.store.records import DaemonFacts


def story_ids(f: StoryFilter, before: int | None, after: int | None, limit: int, *,
              mark: str, probe: str = "") -> tuple[str, list[object]]:
    """One page of story ids, newest first, as SQL and its values: driven from the index
    that keeps the filter's rows in story order (a watch item's or watchlist's matches,
    a source's articles, every story), the other filters checked per story, so a page
    reads about as many rows as it shows."""
    where: list[tuple[str, list[object]]] = []
    if f.watch is not None or f.watchlist is not None:
        driver, column = "matches d", "d.story_id"
        where += [(f"d.{name} = {mark}", [value]) for name, value in
                  (("watch", f.watch), ("watchlist", f.watchlist)) if value is not None]
    elif f.source is not None:
        driver, column = "articles d", "d.story_id"
        where += [(f"d.source = {mark}", [f.source]), ("d.story_id IS NOT NULL", [])]
    else:
        driver, column = "stories d", "d.id"
    if f.source is not None and driver != "articles d":
        where.append((f"EXISTS (SELECT 1 FROM articles a WHERE a.story_id = {column} "
                      f"AND a.source = {mark}{probe})", [f.source]))
    if driver != "matches d":
        where.append((f"EXISTS (SELECT 1 FROM matches m WHERE m.story_id = {column}{probe})",
                      []))
    where += [(f"{column} {op} {mark}", [value])
              for op, value in (("<", before), (">", after)) if value is not None]
    if f.since is not None:  # no older story is read: a bound on the driving index,
        # found on stories_first_seen (+id: not by walking the ids up from the first)
        where.append((f"{column} >= (SELECT coalesce(min(+id), 0) FROM stories "
                      f"WHERE first_seen_at >= {mark})", [iso(f.since)]))
    story = "d" if driver == "stories d" else "s"
    checks: list[tuple[str, list[object]]] = \
        [(f"{story}.script = {mark}", [f.script])] if f.script is not None else []
    checks += [(f"{story}.first_seen_at {op} {mark}", [iso(moment)])
               for op, moment in ((">=", f.since), ("<", f.until)) if moment is not None]
    join = f"JOIN stories s ON s.id = {column}" if checks and story == "s" else ""
    where += checks
    sql = (f"SELECT DISTINCT {column} FROM {driver} {join} "
           f"WHERE {' AND '.join(c for c, _ in where) or '1 = 1'} "
           f"ORDER BY {column} DESC LIMIT {mark}")
    return sql, [*(v for _, vs in where for v in vs), limit]


def ident(name: str) -> str:
    """A table or column name quoted (``end`` and ``user`` are reserved words)."""
    return '"' + name.replace('"', '""') + '"'


def idents(names: Sequence[str]) -> str:
    return ", ".join(ident(n) for n in names)


def _keyed(key: Sequence[str], op: str, start: Sequence[object] | None,
           mark: str) -> tuple[str, list[object]]:
    """Rows whose key compares ``op`` to ``start`` (a row value), as SQL and values."""
    if start is None:
        return "1 = 1", []
    return f"({idents(key)}) {op} ({', '.join(mark for _ in key)})", list(start)


def page(table: str, columns: Sequence[str], key: Sequence[str],
         start: Sequence[object] | None, limit: int, *, mark: str,
         set_in: Sequence[str] = ()) -> tuple[str, list[object]]:
    """Up to ``limit`` rows past ``start``, in key order: the copy's batches (only rows
    with any of ``set_in`` set, when given)."""
    where, values = _keyed(key, ">", start, mark)
    if set_in:
        where += " AND (" + " OR ".join(f"{ident(c)} IS NOT NULL" for c in set_in) + ")"
    return (f"SELECT {idents(columns)} FROM {ident(table)} WHERE {where} "
            f"ORDER BY {idents(key)} LIMIT {mark}", [*values, limit])


def last(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """The row with the highest key: where a copy stopped."""
    return (f"SELECT {idents(columns)} FROM {ident(table)} ORDER BY "
            + ", ".join(f"{ident(k)} DESC" for k in key) + " LIMIT 1")


def row(table: str, columns: Sequence[str], key: Sequence[str], at: Sequence[object], *,
        mark: str) -> tuple[str, list[object]]:
    """The row whose key is ``at``."""
    where, values = _keyed(key, "=", at, mark)
    return f"SELECT {idents(columns)} FROM {ident(table)} WHERE {where}", values


def last_set(table: str, key: Sequence[str], columns: Sequence[str]) -> str:
    """The highest key of a row with any of ``columns`` set: where filling them stopped."""
    return (f"SELECT {idents(key)} FROM {ident(table)} WHERE "
            + " OR ".join(f"{ident(c)} IS NOT NULL" for c in columns) + " ORDER BY "
            + ", ".join(f"{ident(k)} DESC" for k in key) + " LIMIT 1")


def count(table: str, key: Sequence[str], upto: Sequence[object] | None, *,
          mark: str) -> tuple[str, list[object]]:
    """The rows (at or before ``upto`` in key order, when given)."""
    where, values = _keyed(key, "<=", upto, mark)
    return f"SELECT count(*) FROM {ident(table)} WHERE {where}", values


def insert(table: str, columns: Sequence[str], *, mark: str) -> str:
    return (f"INSERT INTO {ident(table)} ({idents(columns)}) "
            f"VALUES ({', '.join(mark for _ in columns)})")


def update(table: str, key: Sequence[str], columns: Sequence[str], *, mark: str) -> str:
    """Set ``columns`` of the row named by its key (values: the columns', then the key's)."""
    return (f"UPDATE {ident(table)} SET {', '.join(f'{ident(c)} = {mark}' for c in columns)}"
            f" WHERE {' AND '.join(f'{ident(k)} = {mark}' for k in key)}")


class KeyedReads:
    """The copy's reads by primary key, the same on both backends (``db copy``'s sides):
    a backend gives its parameter mark and how it runs one read."""

    mark: str

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        found = self._all(sql, params)
        return found[0] if found else None

    def count(self, table: str, key: Sequence[str] = (),
              upto: Sequence[Any] | None = None) -> int:
        """The rows of ``table`` (those at or before ``upto`` in ``key`` order)."""
        return int(self._all(*count(table, key, upto, mark=self.mark))[0][0])

    def rows(self, table: str, columns: Sequence[str], key: Sequence[str],
             start: Sequence[Any] | None, limit: int,
             set_in: Sequence[str] = ()) -> list[tuple[Any, ...]]:
        """Up to ``limit`` rows past ``start``, in key order (see :func:`page`)."""
        return self._all(*page(table, columns, key, start, limit, mark=self.mark,
                               set_in=set_in))

    def last(self, table: str, columns: Sequence[str],
             key: Sequence[str]) -> tuple[Any, ...] | None:
        """The row with the highest key, or None."""
        return self._one(last(table, columns, key))

    def row(self, table: str, columns: Sequence[str], key: Sequence[str],
            at: Sequence[Any]) -> tuple[Any, ...] | None:
        """The row whose key is ``at``, or None."""
        return self._one(*row(table, columns, key, at, mark=self.mark))

    def last_set(self, table: str, key: Sequence[str],
                 columns: Sequence[str]) -> tuple[Any, ...] | None:
        """The highest key of a row with any of ``columns`` set, or None."""
        return self._one(last_set(table, key, columns))
def daemon_seen(owner: str, now: datetime, facts: DaemonFacts, *,
                mark: str) -> tuple[str, list[object]]:
    """Upsert daemon ``owner``'s row: seen at ``now``, with ``facts`` (its start stays)."""
    columns = ("owner", "host", "pid", "started_at", "seen_at", "config_version", "version",
               "workers")
    changed = ("seen_at", "config_version", "version", "workers")
    return (f"INSERT INTO daemons ({', '.join(columns)}) VALUES "
            f"({', '.join([mark] * len(columns))}) ON CONFLICT (owner) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in changed),
            [owner, facts.host, facts.pid, iso(facts.started_at), iso(now),
             facts.config_version, facts.version, facts.workers])


def daemons(now: datetime, within: timedelta, *, mark: str) -> tuple[str, list[object]]:
    """Every daemon's row, by host and pid, with ``live``: seen within ``within``."""
    return (f"SELECT *, seen_at >= {mark} AS live FROM daemons ORDER BY host, pid, owner",
            [iso(now - within)])
