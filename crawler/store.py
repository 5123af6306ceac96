"""All persistence, behind intent-level methods: nothing else in newswatch writes SQL.

SQLite through sqlite-utils is the embedded default: WAL, a busy timeout, and write
transactions that ``BEGIN IMMEDIATE`` so concurrent processes queue instead of failing
half-way. Work is claimed with leases (owner, expiry) inside those transactions, so two
processes on one database never poll a source or send an alert twice at the same time,
and a crashed process's claims simply expire. A server database can replace this module
without the pipeline noticing: keep the method names and their transactional promises.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from alerts.outbox import OutboxRow
from crawler.article import Article
from crawler.clock import iso
from crawler.config import Source
from crawler.errors import SchemaTooNewError, StoreError
from crawler.match import Match

BUSY_TIMEOUT_S = 30.0


def _v1(db: sqlite_utils.Database) -> None:
    db.table("sources").create({
        "name": str, "url": str, "kind": str, "active": int, "etag": str,
        "last_modified": str, "next_check_at": str, "last_checked_at": str,
        "last_success_at": str, "last_error": str, "error_count": int, "lease_owner": str,
        "lease_expires_at": str, "created_at": str,
    }, pk="name", not_null={"url", "kind", "active", "next_check_at", "error_count",
                            "created_at"},
        defaults={"kind": "feed", "active": 1, "error_count": 0})
    db.table("articles").create({
        "id": int, "url": str, "link": str, "guid": str, "source": str, "title": str,
        "summary": str, "text": str, "published_at": str, "fetched_at": str,
    }, pk="id", not_null={"url", "source", "fetched_at"},
        foreign_keys=[("source", "sources", "name")])
    db.table("articles").create_index(["url"], unique=True)
    db.table("articles").create_index(["published_at"])
    db.table("article_keys").create({"key": str, "article_id": int}, pk="key",
                              not_null={"article_id"},
                              foreign_keys=[("article_id", "articles", "id")])
    db.table("matches").create({
        "id": int, "article_id": int, "watchlist": str, "watch": str, "alias": str,
        "matched": str, "field": str, "start": int, "end": int, "snippet": str,
        "config_version": str, "created_at": str,
    }, pk="id", not_null={"article_id", "watchlist", "watch", "field", "created_at"},
        foreign_keys=[("article_id", "articles", "id")])
    db.table("matches").create_index(["article_id"])
    db.table("matches").create_index(["created_at"])
    db.table("outbox").create({
        "id": int, "key": str, "message_id": str, "watchlist": str, "channel": str,
        "subject": str, "article_id": int, "payload": str, "status": str, "attempts": int,
        "next_attempt_at": str, "lease_owner": str, "lease_expires_at": str,
        "last_error": str, "created_at": str, "delivered_at": str,
    }, pk="id", not_null={"key", "message_id", "watchlist", "channel", "subject", "payload",
                          "status", "attempts", "next_attempt_at", "created_at"},
        defaults={"status": "pending", "attempts": 0},
        foreign_keys=[("article_id", "articles", "id")])
    db.table("outbox").create_index(["key"], unique=True)
    db.table("outbox").create_index(["message_id"], unique=True)
    db.table("outbox").create_index(["status", "next_attempt_at"])
    db.table("delivery_attempts").create({
        "id": int, "outbox_id": int, "attempted_at": str, "outcome": str,
        "status_code": int, "error": str, "duration_ms": int,
    }, pk="id", not_null={"outbox_id", "attempted_at", "outcome"},
        foreign_keys=[("outbox_id", "outbox", "id")])
    db.table("delivery_attempts").create_index(["outbox_id"])


def _v2(db: sqlite_utils.Database) -> None:
    db.table("matches").add_column("highlight", str)
    db.table("matches").add_column("context", str)


# Append only: each entry runs once, in order, inside its own write transaction.
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("sources, articles, article_keys, matches, outbox, delivery_attempts", _v1),
    ("matches: highlight, context", _v2),
]


@dataclass(frozen=True, slots=True)
class SourceState:
    """A claimed source: what the pipeline needs to poll it."""

    name: str
    url: str
    etag: str | None
    last_modified: str | None
    error_count: int


@dataclass(frozen=True, slots=True)
class QueuedAlert:
    """A claimed outbox row, ready to render and send."""

    id: int
    message_id: str
    channel: str
    watchlist: str
    payload: dict[str, Any]
    attempts: int
    created_at: str


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one attempt ended in, and so what happens to the row next."""

    outcome: Literal["delivered", "retry", "dead"]
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    next_attempt_at: datetime | None = None


class Store:
    """One SQLite database file. Methods are transactions; callers never see SQL."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        self._conn = conn
        self.db = sqlite_utils.Database(conn)
        self._migrate()

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction that takes the lock up front (no upgrade deadlocks)."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to database {self.path}: {exc}") from exc
        try:
            yield self.db
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as db:
            if "migrations" not in db.table_names():
                db.table("migrations").create({"version": int, "name": str, "applied_at": str},
                                        pk="version")
            applied = db.execute("SELECT max(version) FROM migrations").fetchone()[0] or 0
            if applied > len(MIGRATIONS):
                raise SchemaTooNewError(
                    f"database {self.path} has schema version {applied}, newer than this "
                    f"newswatch knows ({len(MIGRATIONS)}): upgrade newswatch")
            for version, (name, migrate) in enumerate(MIGRATIONS, start=1):
                if version > applied:
                    migrate(db)
                    db.table("migrations").insert({"version": version, "name": name,
                                             "applied_at": iso(datetime.now().astimezone())})

    def schema_version(self) -> int:
        return int(self.db.execute("SELECT max(version) FROM migrations").fetchone()[0])

    # --- sources --------------------------------------------------------------------------

    def sync_sources(self, sources: Sequence[Source], now: datetime) -> None:
        """Make the source rows match the config: new ones due now, removed ones inactive."""
        with self._write() as db:
            rows = {r["name"]: r for r in db.query("SELECT name, url, active FROM sources")}
            for source in sources:
                row = rows.get(source.name)
                if row is None:
                    db.table("sources").insert({"name": source.name, "url": source.url,
                                          "next_check_at": iso(now), "created_at": iso(now)})
                elif row["url"] != source.url or not row["active"]:
                    db.execute("UPDATE sources SET url = ?, active = 1, etag = NULL, "
                               "last_modified = NULL, next_check_at = ? WHERE name = ?",
                               [source.url, iso(now), source.name])
            gone = set(rows) - {s.name for s in sources}
            for name in gone:
                db.execute("UPDATE sources SET active = 0 WHERE name = ?", [name])

    def claim_sources(self, owner: str, now: datetime, lease: timedelta, *,
                      due_only: bool = True, names: Iterable[str] | None = None,
                      ) -> list[SourceState]:
        """Lease the active sources that are due (or all, for ``once``) and not leased."""
        sql = ("SELECT name, url, etag, last_modified, error_count FROM sources "
               "WHERE active = 1 AND (lease_expires_at IS NULL OR lease_expires_at <= :now)")
        if due_only:
            sql += " AND next_check_at <= :now"
        sql += " ORDER BY next_check_at"
        wanted = set(names) if names is not None else None
        with self._write() as db:
            rows = [r for r in db.query(sql, {"now": iso(now)})
                    if wanted is None or r["name"] in wanted]
            for row in rows:
                db.execute("UPDATE sources SET lease_owner = ?, lease_expires_at = ? "
                           "WHERE name = ?", [owner, iso(now + lease), row["name"]])
        return [SourceState(**row) for row in rows]

    def record_poll(self, name: str, owner: str, now: datetime, next_check_at: datetime, *,
                    error: str | None = None, etag: str | None = None,
                    last_modified: str | None = None) -> None:
        """End a poll: success resets the failure count; an error is kept on the row."""
        with self._write() as db:
            if error is None:
                db.execute(
                    "UPDATE sources SET last_checked_at = :now, last_success_at = :now, "
                    "last_error = NULL, error_count = 0, next_check_at = :next, "
                    "etag = coalesce(:etag, etag), "
                    "last_modified = coalesce(:last_modified, last_modified), "
                    "lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE name = :name AND lease_owner = :owner",
                    {"now": iso(now), "next": iso(next_check_at), "etag": etag,
                     "last_modified": last_modified, "name": name, "owner": owner})
            else:
                db.execute(
                    "UPDATE sources SET last_checked_at = :now, last_error = :error, "
                    "error_count = error_count + 1, next_check_at = :next, "
                    "lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE name = :name AND lease_owner = :owner",
                    {"now": iso(now), "error": error, "next": iso(next_check_at),
                     "name": name, "owner": owner})

    def release(self, owner: str) -> None:
        """Give back every lease this process holds (a clean shutdown)."""
        with self._write() as db:
            db.execute("UPDATE sources SET lease_owner = NULL, lease_expires_at = NULL "
                       "WHERE lease_owner = ?", [owner])
            db.execute("UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL "
                       "WHERE lease_owner = ?", [owner])

    def sources(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM sources ORDER BY name"))

    # --- articles, matches, outbox --------------------------------------------------------

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.db.execute(
                f"SELECT key FROM article_keys WHERE key IN ({marks})", chunk))
        return found

    def add_articles(self, batch: Sequence[tuple[Article, list[str], list[Match],
                                                 list[OutboxRow]]],
                     now: datetime, config_version: str) -> list[Article]:
        """Store articles with their dedup keys, matches and outbox rows, all or nothing.

        Each entry is (article, dedup keys, matches, outbox rows). An article any of whose
        keys another process stored meanwhile is skipped whole, so it cannot alert twice.
        Returns the articles that were stored.
        """
        stored: list[Article] = []
        with self._write() as db:
            for article, keys, matches, rows in batch:
                marks = ",".join("?" * len(keys))
                taken = db.execute(f"SELECT 1 FROM article_keys WHERE key IN ({marks}) "
                                   "LIMIT 1", keys).fetchone()
                if taken:
                    continue
                article_id = db.table("articles").insert({
                    "url": article.url, "link": article.link, "guid": article.guid,
                    "source": article.source, "title": article.title,
                    "summary": article.summary, "text": article.text,
                    "published_at": iso(article.published_at) if article.published_at
                    else None,
                    "fetched_at": iso(now),
                }).last_pk
                db.table("article_keys").insert_all({"key": k, "article_id": article_id}
                                              for k in keys)
                db.table("matches").insert_all({
                    "article_id": article_id, "watchlist": m.watchlist, "watch": m.watch,
                    "alias": m.alias, "matched": m.matched, "field": m.field,
                    "start": m.start, "end": m.end, "snippet": m.snippet,
                    "highlight": m.highlight, "context": json.dumps(list(m.context),
                                                                    ensure_ascii=False),
                    "config_version": config_version, "created_at": iso(now),
                } for m in matches)
                db.table("outbox").insert_all(({
                    "key": r.key, "message_id": r.message_id, "watchlist": r.watchlist,
                    "channel": r.channel, "subject": r.subject, "article_id": article_id,
                    "payload": json.dumps(r.payload, ensure_ascii=False),
                    "next_attempt_at": iso(now), "created_at": iso(now),
                } for r in rows), ignore=True)
                stored.append(article)
        return stored

    def claim_alerts(self, owner: str, now: datetime, lease: timedelta,
                     channels: Iterable[str], limit: int = 100) -> list[QueuedAlert]:
        """Lease due outbox rows of the given channels that nobody else holds."""
        names = list(channels)
        if not names:
            return []
        marks = ",".join("?" * len(names))
        with self._write() as db:
            rows = list(db.query(
                "SELECT id, message_id, channel, watchlist, payload, attempts, created_at "
                "FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? "
                "AND (lease_expires_at IS NULL OR lease_expires_at <= ?) "
                f"AND channel IN ({marks}) ORDER BY next_attempt_at, id LIMIT ?",
                [iso(now), iso(now), *names, limit]))
            for row in rows:
                db.execute("UPDATE outbox SET lease_owner = ?, lease_expires_at = ? "
                           "WHERE id = ?", [owner, iso(now + lease), row["id"]])
        return [QueuedAlert(**{**row, "payload": json.loads(row["payload"])}) for row in rows]

    def record_delivery(self, alert_id: int, now: datetime, result: DeliveryResult) -> None:
        """Log the attempt and move the row on; a delivered row is never touched again."""
        with self._write() as db:
            db.table("delivery_attempts").insert({
                "outbox_id": alert_id, "attempted_at": iso(now), "outcome": result.outcome,
                "status_code": result.status_code, "error": result.error,
                "duration_ms": result.duration_ms,
            })
            status = {"delivered": "delivered", "retry": "pending", "dead": "dead"}
            db.execute(
                "UPDATE outbox SET status = :status, attempts = attempts + 1, "
                "last_error = :error, next_attempt_at = coalesce(:next, next_attempt_at), "
                "delivered_at = CASE WHEN :status = 'delivered' THEN :now END, "
                "lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = :id AND status = 'pending'",
                {"status": status[result.outcome], "error": result.error,
                 "next": iso(result.next_attempt_at) if result.next_attempt_at else None,
                 "now": iso(now), "id": alert_id})

    # --- reading ----------------------------------------------------------------------------

    def recent_matches(self, limit: int = 20) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT m.created_at, m.watchlist, m.watch, m.alias, m.matched, m.field, "
            "m.start, m.end, m.snippet, m.highlight, m.context, a.title, a.url, a.source, "
            "a.published_at FROM matches m JOIN articles a ON a.id = m.article_id "
            "ORDER BY m.id DESC LIMIT ?", [limit]))

    def archive(self, since: datetime) -> list[tuple[Article, set[tuple[str, str]]]]:
        """Articles fetched since ``since``, oldest first, each with the (watchlist, watch)
        pairs stored for it: what ``newswatch backtest`` replays."""
        stored: dict[int, set[tuple[str, str]]] = {}
        for row in self.db.query(
                "SELECT m.article_id, m.watchlist, m.watch FROM matches m "
                "JOIN articles a ON a.id = m.article_id WHERE a.fetched_at >= ?",
                [iso(since)]):
            stored.setdefault(row["article_id"], set()).add((row["watchlist"], row["watch"]))
        return [
            (Article(source=r["source"], url=r["url"], link=r["link"] or r["url"],
                     title=r["title"] or "", guid=r["guid"],
                     published_at=datetime.fromisoformat(r["published_at"])
                     if r["published_at"] else None,
                     summary=r["summary"] or "", text=r["text"] or ""),
             stored.get(r["id"], set()))
            for r in self.db.query(
                "SELECT id, url, link, guid, source, title, summary, text, published_at "
                "FROM articles WHERE fetched_at >= ? ORDER BY fetched_at, id", [iso(since)])
        ]

    def alerts(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where = "WHERE o.status = :status" if status else ""
        return list(self.db.query(
            "SELECT o.id, o.message_id, o.watchlist, o.channel, o.status, o.attempts, "
            "o.next_attempt_at, o.last_error, o.created_at, o.delivered_at, a.title, a.url "
            f"FROM outbox o LEFT JOIN articles a ON a.id = o.article_id {where} "
            "ORDER BY o.id DESC LIMIT :limit", {"status": status, "limit": limit}))

    def alert_counts(self) -> dict[str, int]:
        return {r["status"]: r["n"] for r in self.db.query(
            "SELECT CASE WHEN status = 'pending' AND attempts > 0 THEN 'retrying' "
            "ELSE status END AS status, count(*) AS n FROM outbox GROUP BY 1")}
