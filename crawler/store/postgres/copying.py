"""A PostgreSQL database as either side of ``newswatch db copy``
(``crawler.store.copying``).

Read as the source: one ``REPEATABLE READ READ ONLY`` transaction, so every read sees
the database as it was at the first, whatever daemons write meanwhile. Written as the
target: each batch its own transaction. Every text column is ``COLLATE "C"``
(``schema``), so keys sort as SQLite sorts them and both sides agree on what comes
after a key.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from crawler.core.redact import dsn_shown
from crawler.process.search import fields
from crawler.store import queries
from crawler.store.postgres import PostgresStore, password, tsearch
from crawler.store.postgres.base import WAIT_S, Conn, configure, translate
from crawler.store.postgres.schema import STEPS
from crawler.store.queries import KeyedReads, ident
from crawler.store.records import TableShape

_COLUMNS = """
SELECT a.attname, (SELECT array_position(i.indkey::int2[], a.attnum) FROM pg_index i
                   WHERE i.indrelid = a.attrelid AND i.indisprimary),
       pg_get_serial_sequence(%(t)s, a.attname) IS NOT NULL
FROM pg_attribute a WHERE a.attrelid = %(t)s::regclass AND a.attnum > 0
AND NOT a.attisdropped ORDER BY a.attnum"""

_REFERENCES = """
SELECT a.attname, c.confrelid::regclass::text FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
WHERE c.conrelid = %s::regclass AND c.contype = 'f' ORDER BY c.conname"""


class PostgresSide(KeyedReads):
    """One PostgreSQL database over one connection, opened without migrating."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.location = dsn_shown(dsn)
        secret = password(dsn)
        self._secrets = {secret: "***"} if secret else {}
        try:
            self._conn: Conn = psycopg.connect(dsn, autocommit=True,
                                               connect_timeout=int(WAIT_S),
                                               application_name="newswatch db copy")
        except psycopg.Error as exc:
            raise translate(exc, self.location, self._secrets) from exc
        configure(self._conn)

    mark = "%s"
    #: The schema version this newswatch makes.
    current = len(STEPS)

    def migrate(self) -> None:
        """Bring the schema up to ``current`` (creating it), under the migration lock,
        as opening the store does."""
        PostgresStore(self._dsn).close()

    def close(self) -> None:
        self._conn.close()

    def _all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise translate(exc, self.location, self._secrets) from exc

    def version(self) -> int:
        if not self._all("SELECT to_regclass('migrations') IS NOT NULL")[0][0]:
            return 0
        return int(self._all("SELECT max(version) FROM migrations")[0][0] or 0)

    def tables(self) -> list[TableShape]:
        """Every table of the schema in use."""
        names = [n for n, in self._all(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY c.relname")]
        shapes = []
        for name in names:
            table = ident(name)
            columns = self._all(_COLUMNS, {"t": table})
            key = tuple(c for c, _ in sorted(((c, at) for c, at, _ in columns if at is not None),
                                             key=lambda c: c[1]))
            counter = any(serial for c, _, serial in columns if c in key)
            refs = tuple((c, t) for c, t in self._all(_REFERENCES, [table]))
            shapes.append(TableShape(name, tuple(c for c, _, _ in columns), key, refs,
                                     counter))
        return shapes

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read-only transaction on one snapshot until the block ends."""
        try:
            self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        except psycopg.Error as exc:
            raise translate(exc, self.location, self._secrets) from exc
        try:
            self._all("SELECT 1")  # the snapshot is taken at the first statement
            yield
        finally:
            self._conn.execute("ROLLBACK")

    def counters(self) -> dict[str, int]:
        """The last value each table's id sequence gave (none for a fresh one)."""
        found = {}
        for shape in self.tables():
            if shape.counter and len(shape.key) == 1:
                sequence = self._all("SELECT pg_get_serial_sequence(%s, %s)",
                                     [ident(shape.name), shape.key[0]])[0][0]
                value, called = self._all(f"SELECT last_value, is_called FROM {sequence}")[0]
                if called:
                    found[shape.name] = int(value)
        return found

    @contextmanager
    def _write(self) -> Iterator[psycopg.Cursor[tuple[Any, ...]]]:
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                yield cur
        except psycopg.Error as exc:
            raise translate(exc, self.location, self._secrets) from exc

    def insert(self, table: str, columns: Sequence[str],
               rows: Sequence[Sequence[Any]]) -> None:
        """One committed transaction of new rows, through ``COPY``."""
        with self._write() as cur, cur.copy(f"COPY {ident(table)} "
                                            f"({queries.idents(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def update(self, table: str, key: Sequence[str], columns: Sequence[str],
               rows: Sequence[Sequence[Any]]) -> None:
        with self._write() as cur:
            cur.executemany(queries.update(table, key, columns, mark="%s"), rows)

    def set_counters(self, given: dict[str, int]) -> None:
        """Each id sequence at its table's highest id or the source's counter, whichever
        is higher, so a new row never takes a copied id."""
        shapes = self.tables()
        with self._write() as cur:
            for shape in shapes:
                if not shape.counter or len(shape.key) != 1:
                    continue
                column = ident(shape.key[0])
                cur.execute(f"SELECT max({column}) FROM {ident(shape.name)}")
                found = cur.fetchone()
                top = max(int(found[0] or 0) if found else 0, given.get(shape.name, 0))
                cur.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s, %s)",
                            [ident(shape.name), shape.key[0], max(top, 1), top > 0])

    def reindex(self, batch: int) -> Iterator[int]:
        """Each copied article's search vector (``tsearch``), a committed batch at a
        time (yielding each batch's size), on from the last article given one."""
        while True:
            with self._write() as cur:
                cur.execute("SELECT coalesce(max(article_id), 0) FROM article_search")
                start = cur.fetchone()
                cur.execute("SELECT id, title, summary, text FROM articles WHERE id > %s "
                            "AND pruned_at IS NULL ORDER BY id LIMIT %s",
                            [start[0] if start else 0, batch])
                found = cur.fetchall()
                cur.executemany(
                    "INSERT INTO article_search (article_id, doc) VALUES (%s, %s::tsvector)",
                    [(i, tsearch.vector(*fields(t or "", s or "", x or "")))
                     for i, t, s, x in found])
            if not found:
                return
            yield len(found)

    def indexed(self) -> tuple[int, int]:
        """Rows in the search index, and articles whose text is kept."""
        return (int(self._all("SELECT count(*) FROM article_search")[0][0]),
                int(self._all("SELECT count(*) FROM articles WHERE pruned_at IS NULL")[0][0]))
