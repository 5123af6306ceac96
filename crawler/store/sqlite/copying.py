"""A SQLite file as either side of ``newswatch db copy`` (``crawler.store.copying``).

Read as the source: one read transaction (``BEGIN``, its snapshot taken by the first
read and held to the end), so a daemon writing meanwhile never tears the copy. Written
as the target: each batch its own ``BEGIN IMMEDIATE`` transaction. Rows travel as
tuples in primary-key order; SQLite's BINARY order of text is PostgreSQL's ``"C"``
order (byte order of UTF-8), so both sides agree on what comes after a key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crawler.core.errors import StoreError
from crawler.store import queries
from crawler.store.queries import KeyedReads, ident
from crawler.store.records import TableShape
from crawler.store.sqlite import SQLiteStore, fts
from crawler.store.sqlite.base import opened, translate
from crawler.store.sqlite.schema import STEPS


class SQLiteSide(KeyedReads):
    """One SQLite file, opened without migrating (the copy decides what to do with its
    version)."""

    def __init__(self, path: Path | str, *, must_exist: bool) -> None:
        self.location = str(path)
        if must_exist and not Path(path).is_file():
            raise StoreError(f"database {path} does not exist")
        self._conn = opened(path)

    mark = "?"
    #: The schema version this newswatch makes.
    current = len(STEPS)

    def migrate(self) -> None:
        """Bring the schema up to ``current`` (creating it), as opening the store does."""
        SQLiteStore(self.location).close()

    def close(self) -> None:
        self._conn.close()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self.location) from exc

    def version(self) -> int:
        if not self._all("SELECT 1 FROM sqlite_master WHERE name = 'migrations'"):
            return 0
        return int(self._all("SELECT max(version) FROM migrations")[0][0] or 0)

    def tables(self) -> list[TableShape]:
        """Every ordinary table but SQLite's own and full-text indexes' shadow tables."""
        master = self._all("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                           "ORDER BY name")
        virtual = [n for n, sql in master if (sql or "").upper().startswith("CREATE VIRTUAL")]
        shapes = []
        for name, sql in master:
            if name.startswith("sqlite_") or name in virtual or \
                    any(name.startswith(v + "_") for v in virtual):
                continue
            info = self._all(f"PRAGMA table_info({ident(name)})")
            key = tuple(c[1] for c in sorted((c for c in info if c[5]), key=lambda c: c[5]))
            refs = tuple((r[3], r[2]) for r in
                         self._all(f"PRAGMA foreign_key_list({ident(name)})"))
            shapes.append(TableShape(name, tuple(c[1] for c in info), key, refs,
                                     "AUTOINCREMENT" in (sql or "").upper()))
        return shapes

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: every read until the block ends sees one state."""
        self._all("BEGIN")  # deferred: no lock until the first read
        try:
            self._all("SELECT count(*) FROM sqlite_master")  # the snapshot starts here
            yield
        finally:
            self._conn.execute("ROLLBACK")

    def counters(self) -> dict[str, int]:
        """The highest id each ``AUTOINCREMENT`` table ever gave."""
        if not self._all("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"):
            return {}
        return {name: int(seq) for name, seq in
                self._all("SELECT name, seq FROM sqlite_sequence")}

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise translate(exc, self.location) from exc

    def insert(self, table: str, columns: Sequence[str],
               rows: Sequence[Sequence[Any]]) -> None:
        """One committed transaction of new rows."""
        with self._write() as conn:
            conn.executemany(queries.insert(table, columns, mark="?"), rows)

    def update(self, table: str, key: Sequence[str], columns: Sequence[str],
               rows: Sequence[Sequence[Any]]) -> None:
        """Set ``columns`` of the rows named by their key (each row: values, then key)."""
        with self._write() as conn:
            conn.executemany(queries.update(table, key, columns, mark="?"), rows)

    def set_counters(self, given: dict[str, int]) -> None:
        """Each ``AUTOINCREMENT`` table's counter at its highest id or the source's
        counter, whichever is higher: a new row never takes a copied (or a once used)
        id. Other tables number on from their highest id by themselves."""
        shapes = self.tables()
        with self._write() as conn:
            for shape in shapes:
                if not shape.counter or len(shape.key) != 1:
                    continue
                top = conn.execute(f"SELECT max({ident(shape.key[0])}) FROM "
                                   f"{ident(shape.name)}").fetchone()[0] or 0
                conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", [shape.name])
                conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                             [shape.name, max(int(top), given.get(shape.name, 0))])

    def reindex(self, batch: int) -> Iterator[int]:
        """The full-text index filled from the copied articles, a committed batch at a
        time (yielding each batch's size), on from the last article indexed."""
        while True:
            with self._write() as conn:
                added, _ = fts.index_after(conn, fts.last_indexed(conn), batch)
            if not added:
                return
            yield added

    def indexed(self) -> tuple[int, int]:
        """Rows in the search index, and articles whose text is kept (what it should
        hold)."""
        return (int(self._all("SELECT count(*) FROM articles_fts")[0][0]),
                int(self._all("SELECT count(*) FROM articles WHERE pruned_at IS NULL")[0][0]))
