"""db copy: a generated SQLite database copied into PostgreSQL and back.

Not part of CI. Run with ``make bench-dbcopy`` (or ``python -m benchmarks.dbcopy --help``).

It builds ``--articles`` generated articles into a SQLite file as ``benchmarks.desk``
builds them (the daemon's tables: articles, dedup keys, matches, stories, signatures and
band keys, the search index), then times ``copy_database`` (what ``newswatch db copy``
runs) into a fresh database on the PostgreSQL server ``--server`` (created, dropped
after), and back into a new SQLite file, with ``--batch`` rows per committed batch. It
reports the seconds and rows per second of each direction, and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from benchmarks.archive import watched
from benchmarks.desk import articles, build
from crawler.store.copying import CopyReport, copy_database


def timed(source: str, target: str, batch: int) -> tuple[CopyReport, float]:
    started = time.perf_counter()
    report = copy_database(source, target, batch=batch)
    return report, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=5000, help="rows per committed batch")
    parser.add_argument("--watch-items", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server's DSN; a database is made on it and dropped")
    args = parser.parse_args()
    items = watched(args.watch_items, args.seed)
    name = f"newswatch_bench_{secrets.token_hex(4)}"
    parts = urlsplit(args.server)
    dsn = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    with tempfile.TemporaryDirectory(prefix="newswatch-dbcopy-") as tmp, \
            psycopg.connect(args.server, autocommit=True) as admin:
        source = Path(tmp) / "source.db"
        build_s = build(source, articles(args.articles, args.seed, items, 5), items, 500, 90)
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            there, there_s = timed(str(source), dsn, args.batch)
            back, back_s = timed(dsn, str(Path(tmp) / "back.db"), args.batch)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        size = source.stat().st_size
    rows = sum(t.rows for t in there.tables)
    report = {"articles": args.articles, "rows": rows, "sqlite_mb": round(size / 2**20, 1),
              "build_seconds": round(build_s, 1), "batch": args.batch,
              "sqlite_to_postgresql_s": round(there_s, 1),
              "postgresql_to_sqlite_s": round(back_s, 1),
              "rows_per_s": {"to_postgresql": round(rows / there_s),
                             "to_sqlite": round(rows / back_s)},
              "tables": {t.table: t.rows for t in there.tables},
              "indexed": {"postgresql": there.indexed, "sqlite": back.indexed}}
    print(f"db copy: {args.articles} articles, {rows} rows in {len(there.tables)} tables "
          f"({report['sqlite_mb']} MB of SQLite)")
    print(f"  SQLite -> PostgreSQL {there_s:7.1f} s  {rows / there_s:9.0f} rows/s")
    print(f"  PostgreSQL -> SQLite {back_s:7.1f} s  {rows / back_s:9.0f} rows/s")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
