"""SQL both backends run, written once: the web desk's stories list, the daemons' rows.

Each backend supplies its parameter mark (``?`` for SQLite, ``%s`` for psycopg) and how
an ``EXISTS`` check stays a probe per row (PostgreSQL needs ``OFFSET 0``, or it plans a
semi-join as a merge join that walks every match from the newest story down).
"""

from __future__ import annotations

from datetime import datetime, timedelta

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
