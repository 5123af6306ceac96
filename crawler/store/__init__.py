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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import sqlite_utils

from alerts.outbox import OutboxRow, StoryContext, story_subject
from crawler.config import Source
from crawler.core.article import Article
from crawler.core.clock import iso, parse_iso
from crawler.core.errors import DiskFullError, SchemaTooNewError, StoreError
from crawler.process import stories
from crawler.process.match import Match
from crawler.process.search import comparable

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
    sources = db.table("sources")
    sources.add_column("config_url", str)
    sources.add_column("redirect_to", str)
    sources.add_column("redirect_seen", int, not_null_default=0)
    sources.add_column("retired_at", str)
    sources.add_column("last_full_fetch_at", str)
    sources.add_column("failing_since", str)
    sources.add_column("notice", str)
    db.execute("UPDATE sources SET config_url = url")
    db.table("articles").create_index(["source", "fetched_at"])


def _v3(db: sqlite_utils.Database) -> None:
    outbox = db.table("outbox")
    outbox.add_column("kind", str, not_null_default="alert")
    outbox.add_column("priority", int, not_null_default=0)
    outbox.add_column("held", int, not_null_default=0)
    outbox.add_column("digest_id", int)
    outbox.add_column("first_attempt_at", str)
    outbox.create_index(["digest_id"])
    outbox.create_index(["channel", "first_attempt_at"])
    db.table("incidents").create({
        "key": str, "kind": str, "channel": str, "since": str, "opened_at": str,
        "message": str,
    }, pk="key", not_null={"kind", "channel", "since", "opened_at", "message"})


def _v4(db: sqlite_utils.Database) -> None:
    for column in ("author", "language", "extraction"):
        db.execute(f"ALTER TABLE articles ADD COLUMN {column} TEXT")


def _v5(db: sqlite_utils.Database) -> None:
    db.table("matches").add_column("highlight", str)
    db.table("matches").add_column("context", str)


def _v6(db: sqlite_utils.Database) -> None:
    db.table("stories").create({
        "id": int, "key": str, "first_article_id": int, "title": str, "first_seen_at": str,
        "last_seen_at": str, "articles": int, "outlets": int,
    }, pk="id", not_null={"key", "first_seen_at", "last_seen_at", "articles", "outlets"},
        foreign_keys=[("first_article_id", "articles", "id")])
    db.table("stories").create_index(["key"], unique=True)
    db.table("stories").create_index(["last_seen_at"])
    articles = db.table("articles")
    articles.add_column("story_id", int, fk="stories", fk_col="id")
    articles.add_column("similarity", float)
    articles.add_column("similar_to", int, fk="articles", fk_col="id")
    articles.add_column("pruned_at", str)
    articles.create_index(["story_id"])
    articles.create_index(["fetched_at"])
    db.table("article_signatures").create({
        "article_id": int, "signature": bytes, "shingles": int,
    }, pk="article_id", not_null={"signature", "shingles"},
        foreign_keys=[("article_id", "articles", "id")])
    db.execute("CREATE TABLE story_bands (key INTEGER NOT NULL, "
               "article_id INTEGER NOT NULL REFERENCES articles(id), "
               "PRIMARY KEY (key, article_id)) WITHOUT ROWID")
    db.execute("CREATE VIRTUAL TABLE articles_fts USING fts5(title, summary, text, "
               "tokenize = 'unicode61 remove_diacritics 2')")
    for row in list(db.query("SELECT id, title, summary, text FROM articles")):
        db.execute("INSERT INTO articles_fts (rowid, title, summary, text) "
                   "VALUES (?, ?, ?, ?)", [row["id"], *(comparable(row[f] or "") for f in
                                                        ("title", "summary", "text"))])


# Append only: each entry runs once, in order, inside its own write transaction.
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("sources, articles, article_keys, matches, outbox, delivery_attempts", _v1),
    ("source redirects, retirement, full fetches and health notices", _v2),
    ("digests, priority, throttling and operator incidents", _v3),
    ("articles.author, articles.language, articles.extraction (full text)", _v4),
    ("matches: highlight, context", _v5),
    ("stories, similarity index, full-text search, article retention", _v6),
]


@dataclass(frozen=True, slots=True)
class SourceState:
    """A claimed source: what the pipeline needs to poll it."""

    name: str
    url: str
    etag: str | None
    last_modified: str | None
    error_count: int
    last_error: str | None = None
    redirect_to: str | None = None
    redirect_seen: int = 0
    last_full_fetch_at: str | None = None


@dataclass(frozen=True, slots=True)
class PollRecord:
    """How one poll ended, and so what the source row says next.

    ``error`` set means a failure (the count goes up, the validators stay); otherwise a
    success. ``move_to`` replaces the polled URL (a confirmed permanent redirect);
    ``retire`` stops polling (410 Gone); ``defer_host_until`` holds back every source on
    the same host (Retry-After).
    """

    next_check_at: datetime
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    full_fetch: bool = False
    redirect_to: str | None = None
    redirect_seen: int = 0
    move_to: str | None = None
    retire: bool = False
    defer_host_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewArticle:
    """An article ready to store: its dedup keys, matches, story fingerprint and the
    comparable form of its title, summary and text for the full-text index."""

    article: Article
    keys: Sequence[str]
    matches: list[Match]
    fingerprint: stories.Fingerprint
    indexed: tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class StoryRules:
    window: timedelta = timedelta(days=3)
    threshold: float = stories.DEFAULT_THRESHOLD


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """What ``add_articles`` did with one article."""

    article: Article
    id: int
    story_id: int
    rows: list[OutboxRow]
    matches: list[Match]


Planner = Callable[[Article, list[Match], StoryContext], list[OutboxRow]]


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
    kind: str = "alert"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one attempt ended in, and so what happens to the row next."""

    outcome: Literal["delivered", "retry", "dead"]
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    next_attempt_at: datetime | None = None


def _last_id(table: sqlite_utils.db.Table) -> int:
    """The rowid of the row ``table`` just inserted."""
    if table.last_rowid is None:
        raise StoreError(f"no row was inserted into {table.name}")
    return int(table.last_rowid)


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
            raise self._error(exc) from exc
        try:
            yield self.db
            self._conn.execute("COMMIT")
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc) from exc
            raise

    def _error(self, exc: sqlite3.Error) -> StoreError:
        if "full" in str(exc):  # SQLITE_FULL: "database or disk is full"
            return DiskFullError(f"database {self.path} is full ({exc}): free disk space, "
                                 "then restart; nothing was lost")
        return StoreError(f"cannot write to database {self.path}: {exc}")

    def _applied(self) -> int:
        if "migrations" not in self.db.table_names():
            return 0
        return int(self.db.execute("SELECT max(version) FROM migrations").fetchone()[0] or 0)

    def _migrate(self) -> None:
        applied = self._applied()
        if 0 < applied < len(MIGRATIONS) and str(self.path) != ":memory:":
            # Before changing the schema, keep a copy of the data as it was.
            self.backup(self.path.with_name(f"{self.path.name}.v{applied}.bak"))
        with self._write() as db:
            if "migrations" not in db.table_names():
                db.table("migrations").create({"version": int, "name": str,
                                               "applied_at": str}, pk="version")
            applied = self._applied()
            if applied > len(MIGRATIONS):
                raise SchemaTooNewError(
                    f"database {self.path} has schema version {applied}, newer than this "
                    f"newswatch knows ({len(MIGRATIONS)}): upgrade newswatch")
            for version, (name, migrate) in enumerate(MIGRATIONS, start=1):
                if version > applied:
                    migrate(db)
                    db.table("migrations").insert({"version": version, "name": name,
                                             "applied_at": iso(datetime.now().astimezone())})

    def backup(self, destination: Path) -> None:
        """A consistent copy of the database, taken online (writers may go on)."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(str(destination))
        try:
            self._conn.backup(target)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        finally:
            target.close()

    def maintain(self, now: datetime, keep_delivered: timedelta) -> int:
        """Forget delivered alerts (and their attempts) older than ``keep_delivered``,
        then checkpoint the WAL; returns the alerts removed. Dead and pending alerts,
        articles and dedup keys are kept, and so are the alerts of a story seen since the
        cutoff: they are how it knows what it was alerted for, so it does not alert again."""
        cutoff = iso(now - keep_delivered)
        with self._write() as db:
            old = ("SELECT o.id FROM outbox o WHERE o.status = 'delivered' "
                   "AND o.delivered_at < :cutoff AND NOT EXISTS (SELECT 1 FROM articles a "
                   "JOIN stories s ON s.id = a.story_id WHERE a.id = o.article_id "
                   "AND s.last_seen_at >= :cutoff)")
            db.execute(f"DELETE FROM delivery_attempts WHERE outbox_id IN ({old})",
                       {"cutoff": cutoff})
            removed = db.execute(f"DELETE FROM outbox WHERE id IN ({old})",
                                 {"cutoff": cutoff}).rowcount
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return int(removed)

    def schema_version(self) -> int:
        return int(self.db.execute("SELECT max(version) FROM migrations").fetchone()[0])

    # --- sources --------------------------------------------------------------------------

    def sync_sources(self, sources: Sequence[Source], now: datetime) -> None:
        """Make the source rows match the config: new ones due now, removed ones inactive."""
        with self._write() as db:
            rows = {r["name"]: r for r in
                    db.query("SELECT name, config_url, kind, active FROM sources")}
            for source in sources:
                row = rows.get(source.name)
                if row is None:
                    db.table("sources").insert({
                        "name": source.name, "url": source.key, "config_url": source.key,
                        "kind": source.kind, "next_check_at": iso(now), "created_at": iso(now)})
                elif row["config_url"] != source.key or row["kind"] != source.kind:
                    # A new address in the config starts the source afresh.
                    db.execute("UPDATE sources SET url = :url, config_url = :url, kind = :kind, "
                               "active = 1, etag = NULL, last_modified = NULL, "
                               "redirect_to = NULL, redirect_seen = 0, retired_at = NULL, "
                               "next_check_at = :now WHERE name = :name",
                               {"url": source.key, "kind": source.kind, "now": iso(now),
                                "name": source.name})
                elif not row["active"]:
                    db.execute("UPDATE sources SET active = 1, next_check_at = ? "
                               "WHERE name = ?", [iso(now), source.name])
            gone = set(rows) - {s.name for s in sources}
            for name in gone:
                db.execute("UPDATE sources SET active = 0 WHERE name = ?", [name])

    def claim_sources(self, owner: str, now: datetime, lease: timedelta, *,
                      due_only: bool = True, names: Iterable[str] | None = None,
                      limit: int | None = None) -> list[SourceState]:
        """Lease up to ``limit`` active sources that are due (or all, for ``once``) and that
        no other process holds; ``names`` restricts the choice."""
        sql = ("SELECT name, url, etag, last_modified, error_count, last_error, redirect_to, "
               "redirect_seen, last_full_fetch_at FROM sources WHERE active = 1 "
               "AND retired_at IS NULL "
               "AND (lease_expires_at IS NULL OR lease_expires_at <= :now)")
        if due_only:
            sql += " AND next_check_at <= :now"
        sql += " ORDER BY next_check_at"
        wanted = set(names) if names is not None else None
        with self._write() as db:
            rows = [r for r in db.query(sql, {"now": iso(now)})
                    if wanted is None or r["name"] in wanted][:limit]
            for row in rows:
                db.execute("UPDATE sources SET lease_owner = ?, lease_expires_at = ? "
                           "WHERE name = ?", [owner, iso(now + lease), row["name"]])
        return [SourceState(**row) for row in rows]

    def record_poll(self, name: str, owner: str, now: datetime, record: PollRecord) -> None:
        """End a poll held under ``owner``'s lease; a report from a lost lease is ignored."""
        with self._write() as db:
            values = {"now": iso(now), "next": iso(record.next_check_at), "name": name,
                      "owner": owner, "error": record.error}
            if record.error is None:
                db.execute(
                    "UPDATE sources SET last_checked_at = :now, last_success_at = :now, "
                    "last_error = NULL, error_count = 0, failing_since = NULL, "
                    "next_check_at = :next, etag = coalesce(:etag, etag), "
                    "last_modified = coalesce(:last_modified, last_modified), "
                    "last_full_fetch_at = CASE WHEN :full THEN :now "
                    "ELSE last_full_fetch_at END, "
                    "redirect_to = :redirect_to, redirect_seen = :redirect_seen, "
                    "url = coalesce(:move_to, url), "
                    "lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE name = :name AND lease_owner = :owner",
                    {**values, "etag": record.etag, "last_modified": record.last_modified,
                     "full": record.full_fetch, "redirect_to": record.redirect_to,
                     "redirect_seen": record.redirect_seen, "move_to": record.move_to})
            else:
                db.execute(
                    "UPDATE sources SET last_checked_at = :now, last_error = :error, "
                    "error_count = error_count + 1, next_check_at = :next, "
                    "failing_since = coalesce(failing_since, :now), "
                    "retired_at = CASE WHEN :retire THEN :now END, "
                    "lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE name = :name AND lease_owner = :owner",
                    {**values, "retire": record.retire})
            if record.defer_host_until is not None:
                host = urlsplit(self._url_of(name)).hostname
                for row in list(db.query("SELECT name, url FROM sources "
                                         "WHERE next_check_at < ?",
                                         [iso(record.defer_host_until)])):
                    if urlsplit(row["url"]).hostname == host:
                        db.execute("UPDATE sources SET next_check_at = ? WHERE name = ?",
                                   [iso(record.defer_host_until), row["name"]])

    def _url_of(self, name: str) -> str:
        return str(self.db.execute("SELECT url FROM sources WHERE name = ?",
                                   [name]).fetchone()[0])

    def release(self, owner: str, source: str | None = None) -> None:
        """Give back every lease this process holds (a clean shutdown), or only its lease
        on ``source`` (a source that left the config before its poll began)."""
        with self._write() as db:
            if source is not None:
                db.execute("UPDATE sources SET lease_owner = NULL, lease_expires_at = NULL "
                           "WHERE lease_owner = ? AND name = ?", [owner, source])
                return
            db.execute("UPDATE sources SET lease_owner = NULL, lease_expires_at = NULL "
                       "WHERE lease_owner = ?", [owner])
            db.execute("UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL "
                       "WHERE lease_owner = ?", [owner])

    def release_orphans(self, is_dead: Callable[[str], bool]) -> list[str]:
        """Give back the leases of owners that ``is_dead`` says no longer run (a process
        killed on this host), so its work is taken up at once instead of at expiry."""
        with self._write() as db:
            owners = {r[0] for r in db.execute(
                "SELECT lease_owner FROM sources WHERE lease_owner IS NOT NULL UNION "
                "SELECT lease_owner FROM outbox WHERE lease_owner IS NOT NULL")}
            dead = sorted(o for o in owners if is_dead(o))
            for owner in dead:
                db.execute("UPDATE sources SET lease_owner = NULL, lease_expires_at = NULL "
                           "WHERE lease_owner = ?", [owner])
                db.execute("UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL "
                           "WHERE lease_owner = ?", [owner])
        return dead

    def sources(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM sources ORDER BY name"))

    def source_health(self, now: datetime, window: timedelta = timedelta(days=14),
                      ) -> list[dict[str, Any]]:
        """Each source row with ``articles_24h``, ``daily_rate`` (articles per day over
        ``window`` or the source's life if shorter), ``history_days`` and
        ``last_article_at``."""
        return list(self.db.query(
            "SELECT s.*, "
            "(SELECT count(*) FROM articles a WHERE a.source = s.name "
            " AND a.fetched_at >= :day) AS articles_24h, "
            "(SELECT count(*) FROM articles a WHERE a.source = s.name "
            " AND a.fetched_at >= :window) AS articles_window, "
            "(SELECT max(fetched_at) FROM articles a WHERE a.source = s.name) "
            " AS last_article_at "
            "FROM sources s ORDER BY s.name",
            {"day": iso(now - timedelta(days=1)), "window": iso(now - window)}))

    def set_notice(self, name: str, notice: str | None) -> None:
        """Remember the source's open incident, so it is announced once, not per check."""
        with self._write() as db:
            db.execute("UPDATE sources SET notice = ? WHERE name = ?", [notice, name])

    # --- articles, matches, outbox --------------------------------------------------------

    def source_urls(self, source: str, limit: int = 5000) -> list[str]:
        """The URL keys of a source's most recent articles (what a crawl need not fetch)."""
        return [r[0] for r in self.db.execute(
            "SELECT k.key FROM article_keys k JOIN articles a ON a.id = k.article_id "
            "WHERE a.source = ? AND k.key LIKE 'url:%' ORDER BY a.id DESC LIMIT ?",
            [source, limit])]

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.db.execute(
                f"SELECT key FROM article_keys WHERE key IN ({marks})", chunk))
        return found

    def add_articles(self, batch: Sequence[NewArticle], now: datetime, config_version: str,
                     plan: Planner, rules: StoryRules | None = None) -> list[StoredArticle]:
        """Store articles with their dedup keys, matches, story, index rows and outbox
        rows, all or nothing.

        Each article is placed in a story here, inside the transaction, so processes
        sharing the database agree on it; ``plan`` then decides its outbox rows knowing
        what the story was already alerted for. An article any of whose keys another
        process stored meanwhile (or an earlier article of the batch claims) is skipped
        whole, so it cannot alert twice.
        """
        rules = rules or StoryRules()
        stored: list[StoredArticle] = []
        with self._write() as db:
            taken = self.known_keys(k for new in batch for k in new.keys)
            for new in batch:
                article = new.article
                if not taken.isdisjoint(new.keys):
                    continue
                taken.update(new.keys)
                article_id = _last_id(db.table("articles").insert({
                    "url": article.url, "link": article.link, "guid": article.guid,
                    "source": article.source, "title": article.title,
                    "summary": article.summary, "text": article.text,
                    "author": article.author or None, "language": article.language or None,
                    "extraction": None if article.extraction is None
                    else str(article.extraction),
                    "published_at": iso(article.published_at) if article.published_at
                    else None,
                    "fetched_at": iso(now),
                }))
                db.table("article_keys").insert_all({"key": k, "article_id": article_id}
                                                    for k in new.keys)
                db.table("matches").insert_all({
                    "article_id": article_id, "watchlist": m.watchlist, "watch": m.watch,
                    "alias": m.alias, "matched": m.matched, "field": m.field,
                    "start": m.start, "end": m.end, "snippet": m.snippet,
                    "highlight": m.highlight, "context": json.dumps(list(m.context),
                                                                    ensure_ascii=False),
                    "config_version": config_version, "created_at": iso(now),
                } for m in new.matches)
                story = self._place(db, article_id, new, now, rules)
                rows = plan(article, new.matches, story)
                db.table("outbox").insert_all((
                    self._outbox_row(r, now, article_id) for r in rows), ignore=True)
                db.execute("INSERT INTO articles_fts (rowid, title, summary, text) "
                           "VALUES (?, ?, ?, ?)", [article_id, *new.indexed])
                stored.append(StoredArticle(article, article_id, story.id, rows, new.matches))
        return stored

    @staticmethod
    def _place(db: sqlite_utils.Database, article_id: int, new: NewArticle, now: datetime,
               rules: StoryRules) -> StoryContext:
        """Join the story of the most similar recent article, or start one; keep the
        article's signature and band keys for the articles to come."""
        fp = new.fingerprint
        best: tuple[float, int, int] | None = None  # score, article, story
        if fp.bands:
            marks = ",".join("?" * len(fp.bands))
            for other, signature, shingles, story_id in db.execute(
                    "SELECT s.article_id, s.signature, s.shingles, a.story_id "
                    "FROM article_signatures s JOIN articles a ON a.id = s.article_id "
                    "WHERE s.article_id IN (SELECT article_id FROM story_bands "
                    f"WHERE key IN ({marks})) AND a.fetched_at >= ? "
                    "AND a.story_id IS NOT NULL",
                    [*fp.bands, iso(now - rules.window)]):
                score = stories.similarity(fp.signature, signature)
                if stories.joins(score, fp, shingles, rules.threshold) and (
                        best is None or score > best[0]):
                    best = (score, other, story_id)
        if best is None:
            story_id = _last_id(db.table("stories").insert({
                "key": story_subject(new.article.url), "first_article_id": article_id,
                "title": new.article.title, "first_seen_at": iso(now),
                "last_seen_at": iso(now), "articles": 1, "outlets": 1}))
            db.execute("UPDATE articles SET story_id = ? WHERE id = ?", [story_id, article_id])
        else:
            score, other, story_id = best
            db.execute("UPDATE articles SET story_id = ?, similarity = ?, similar_to = ? "
                       "WHERE id = ?", [story_id, score, other, article_id])
            db.execute("UPDATE stories SET last_seen_at = :now, articles = articles + 1, "
                       "outlets = (SELECT count(DISTINCT source) FROM articles "
                       "WHERE story_id = :id) WHERE id = :id",
                       {"now": iso(now), "id": story_id})
        if fp.signature:
            db.execute("INSERT INTO article_signatures (article_id, signature, shingles) "
                       "VALUES (?, ?, ?)", [article_id, fp.signature, fp.shingles])
            db.conn.executemany("INSERT OR IGNORE INTO story_bands (key, article_id) VALUES (?, ?)",
                           [(key, article_id) for key in fp.bands])
        row = db.execute("SELECT key, articles, outlets, first_seen_at FROM stories "
                         "WHERE id = ?", [story_id]).fetchone()
        alerted: dict[str, set[str]] = {}
        if best is not None and new.matches:
            for watchlist, watch in db.execute(
                    "SELECT DISTINCT m.watchlist, m.watch FROM matches m "
                    "JOIN articles a ON a.id = m.article_id "
                    "WHERE a.story_id = ? AND a.id != ? AND EXISTS (SELECT 1 FROM outbox o "
                    "WHERE o.article_id = m.article_id AND o.watchlist = m.watchlist)",
                    [story_id, article_id]):
                alerted.setdefault(watchlist, set()).add(watch)
        return StoryContext(story_id, row[0], row[1], row[2], parse_iso(row[3]),
                            {w: frozenset(items) for w, items in alerted.items()})

    @staticmethod
    def _outbox_row(row: OutboxRow, now: datetime, article_id: int | None,
                    kind: str = "alert") -> dict[str, Any]:
        return {
            "key": row.key, "message_id": row.message_id, "watchlist": row.watchlist,
            "channel": row.channel, "subject": row.subject, "article_id": article_id,
            "payload": json.dumps(row.payload, ensure_ascii=False), "kind": kind,
            "priority": int(row.priority), "held": int(row.hold_until is not None),
            "next_attempt_at": iso(row.hold_until or now), "created_at": iso(now),
        }

    def fold_digests(self, now: datetime, channels: Iterable[str],
                     build: Callable[[str, list[dict[str, Any]]], OutboxRow]) -> int:
        """Turn each channel's held alerts that are due into one digest row; returns how
        many digests were made. ``build`` makes the digest row from the members' payloads.

        Members leave the queue (status ``digested``) in the same transaction, so a crash
        leaves either the held alerts or the digest, never both and never neither.
        """
        made = 0
        with self._write() as db:
            for channel in channels:
                members = list(db.query(
                    "SELECT id, payload FROM outbox WHERE channel = ? AND held = 1 "
                    "AND status = 'pending' AND next_attempt_at <= ? ORDER BY id",
                    [channel, iso(now)]))
                if not members:
                    continue
                row = build(channel, [json.loads(m["payload"]) for m in members])
                digest_id = db.table("outbox").insert(
                    self._outbox_row(row, now, None, "digest")).last_pk
                marks = ",".join("?" * len(members))
                db.execute(f"UPDATE outbox SET status = 'digested', held = 0, digest_id = ? "
                           f"WHERE id IN ({marks})", [digest_id, *(m["id"] for m in members)])
                made += 1
        return made

    def claim_alerts(self, owner: str, now: datetime, lease: timedelta,
                     channels: Iterable[str], limit: int = 100,
                     throttles: Mapping[str, tuple[int, datetime]] | None = None,
                     ) -> list[QueuedAlert]:
        """Lease due outbox rows of the given channels that nobody else holds.

        ``throttles`` maps a channel to (max_per_hour, its next digest time): an alert of
        that channel beyond the limit in the last hour is held for that digest instead of
        being claimed. High-priority alerts, digests and notices are not counted.
        """
        names = list(channels)
        if not names:
            return []
        marks = ",".join("?" * len(names))
        throttles = throttles or {}
        claimed: list[dict[str, Any]] = []
        with self._write() as db:
            rows = list(db.query(
                "SELECT id, message_id, channel, watchlist, payload, attempts, created_at, "
                "kind, priority, first_attempt_at FROM outbox WHERE status = 'pending' "
                "AND held = 0 AND next_attempt_at <= ? "
                "AND (lease_expires_at IS NULL OR lease_expires_at <= ?) "
                f"AND channel IN ({marks}) ORDER BY next_attempt_at, id LIMIT ?",
                [iso(now), iso(now), *names, limit]))
            used = {name: db.execute(
                "SELECT count(*) FROM outbox WHERE channel = ? AND kind = 'alert' "
                "AND priority = 0 AND first_attempt_at > ?",
                [name, iso(now - timedelta(hours=1))]).fetchone()[0] for name in throttles}
            for row in rows:
                throttle = throttles.get(row["channel"])
                counted = (throttle is not None and row["kind"] == "alert"
                           and not row["priority"] and row["first_attempt_at"] is None)
                if counted and throttle is not None:
                    if used[row["channel"]] >= throttle[0]:
                        db.execute("UPDATE outbox SET held = 1, next_attempt_at = ? "
                                   "WHERE id = ?", [iso(throttle[1]), row["id"]])
                        continue
                    used[row["channel"]] += 1
                db.execute("UPDATE outbox SET lease_owner = ?, lease_expires_at = ?, "
                           "first_attempt_at = coalesce(first_attempt_at, ?) WHERE id = ?",
                           [owner, iso(now + lease), iso(now), row["id"]])
                claimed.append(row)
        return [QueuedAlert(row["id"], row["message_id"], row["channel"], row["watchlist"],
                            json.loads(row["payload"]), row["attempts"], row["created_at"],
                            row["kind"]) for row in claimed]

    def record_delivery(self, alert_id: int, owner: str, now: datetime,
                        result: DeliveryResult) -> bool:
        """Log the attempt and move the row on, if ``owner`` still holds its lease (a late
        report from a process whose lease ran out must not disturb the one sending it
        now); a delivered row is never touched again. Returns whether the row moved.

        A digest's members follow it: delivered or dead with it.
        """
        with self._write() as db:
            db.table("delivery_attempts").insert({
                "outbox_id": alert_id, "attempted_at": iso(now), "outcome": result.outcome,
                "status_code": result.status_code, "error": result.error,
                "duration_ms": result.duration_ms,
            })
            status = {"delivered": "delivered", "retry": "pending", "dead": "dead"}
            changed = db.execute(
                "UPDATE outbox SET status = :status, attempts = attempts + 1, "
                "last_error = :error, next_attempt_at = coalesce(:next, next_attempt_at), "
                "delivered_at = CASE WHEN :status = 'delivered' THEN :now END, "
                "lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = :id AND status = 'pending' AND lease_owner = :owner",
                {"status": status[result.outcome], "error": result.error,
                 "next": iso(result.next_attempt_at) if result.next_attempt_at else None,
                 "now": iso(now), "id": alert_id, "owner": owner}).rowcount
            if changed and result.outcome != "retry":
                db.execute(
                    "UPDATE outbox SET status = :status, last_error = :error, "
                    "delivered_at = CASE WHEN :status = 'delivered' THEN :now END "
                    "WHERE digest_id = :id AND status = 'digested'",
                    {"status": status[result.outcome], "error": result.error,
                     "now": iso(now), "id": alert_id})
            return bool(changed)

    def requeue(self, now: datetime, ids: Iterable[int] = (), *, dead: bool = False) -> int:
        """Send dead (or any undelivered) alerts again with a fresh set of attempts.

        An alert delivered inside a digest is requeued as that digest. Returns how many
        rows were requeued; delivered rows are never requeued.
        """
        with self._write() as db:
            wanted = list(ids)
            if dead:
                wanted += [r[0] for r in db.execute(
                    "SELECT id FROM outbox WHERE status = 'dead'")]
            targets: set[int] = set()
            for alert_id in wanted:
                row = db.execute("SELECT coalesce(digest_id, id) FROM outbox WHERE id = ?",
                                 [alert_id]).fetchone()
                if row:
                    targets.add(int(row[0]))
            count = 0
            for target in sorted(targets):
                count += db.execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, held = 0, "
                    "next_attempt_at = ?, lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE id = ? AND (status = 'dead' OR status = 'pending' AND "
                    "(lease_expires_at IS NULL OR lease_expires_at <= ?))",
                    [iso(now), target, iso(now)]).rowcount
                db.execute("UPDATE outbox SET status = 'digested' WHERE digest_id = ? "
                           "AND status = 'dead'", [target])
        return count

    # --- operator incidents -----------------------------------------------------------------

    def failing_channels(self) -> dict[str, tuple[datetime, str | None]]:
        """Channels whose latest attempts failed: since when (the first failure after the
        last success) and the last error."""
        found: dict[str, tuple[datetime, str | None]] = {}
        for row in self.db.query(
                "WITH a AS (SELECT o.channel, d.attempted_at, d.outcome, d.error, d.id "
                "FROM delivery_attempts d JOIN outbox o ON o.id = d.outbox_id), "
                "ok AS (SELECT channel, max(attempted_at) AS at FROM a "
                "WHERE outcome = 'delivered' GROUP BY channel) "
                "SELECT a.channel, min(a.attempted_at) AS since, "
                "(SELECT error FROM a b WHERE b.channel = a.channel ORDER BY b.id DESC "
                "LIMIT 1) AS last_error "
                "FROM a LEFT JOIN ok ON ok.channel = a.channel "
                "WHERE a.outcome != 'delivered' AND a.attempted_at > coalesce(ok.at, '') "
                "GROUP BY a.channel"):
            found[row["channel"]] = (parse_iso(row["since"]), row["last_error"])
        return found

    def open_incident(self, key: str, kind: str, channel: str, since: datetime,
                      now: datetime, message: str, notice: OutboxRow | None) -> bool:
        """Record an incident once; the first time, queue its operator notice with it.
        Returns whether it is new."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM incidents WHERE key = ?", [key]).fetchone():
                return False
            db.table("incidents").insert({"key": key, "kind": kind, "channel": channel,
                                          "since": iso(since), "opened_at": iso(now),
                                          "message": message})
            if notice is not None:
                db.table("outbox").insert(self._outbox_row(notice, now, None, "notice"),
                                          ignore=True)
        return True

    def incidents(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM incidents ORDER BY opened_at"))

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

    def matched_articles(self, *, watchlist: str | None = None, since: datetime | None = None,
                         limit: int | None = None) -> list[dict[str, Any]]:
        """Articles with matches, newest match first, each with its story, outlet count
        and ``matches`` (of ``watchlist`` only, when given); ``since`` counts from when
        the match was stored."""
        where, values = ["1"], []
        if watchlist is not None:
            where.append("m.watchlist = ?")
            values.append(watchlist)
        if since is not None:
            where.append("m.created_at >= ?")
            values.append(iso(since))
        sql = ("SELECT a.id, a.url, a.title, a.summary, a.source, a.published_at, "
               "a.fetched_at, a.story_id, s.outlets, max(m.created_at) AS matched_at "
               "FROM matches m JOIN articles a ON a.id = m.article_id "
               "LEFT JOIN stories s ON s.id = a.story_id "
               f"WHERE {' AND '.join(where)} GROUP BY a.id ORDER BY matched_at DESC, a.id DESC")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        found = list(self.db.query(sql, values))
        by_id = {row["id"]: row for row in found}
        for row in found:
            row["matches"] = []
        ids = list(by_id)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            extra = " AND watchlist = ?" if watchlist is not None else ""
            for match in self.db.query(
                    "SELECT article_id, watchlist, watch, alias, matched, field, start, "
                    "\"end\", snippet, created_at FROM matches WHERE article_id IN "
                    f"({','.join('?' * len(chunk))}){extra} ORDER BY id",
                    [*chunk, *([watchlist] if watchlist is not None else [])]):
                by_id[match.pop("article_id")]["matches"].append(match)
        return found

    def recent_stories(self, since: datetime, limit: int = 50) -> list[dict[str, Any]]:
        """Stories seen since ``since``, latest first, each with its ``outlets_list``
        (source names), ``urls`` and ``watches`` (``watchlist: watch`` matched in it)."""
        found = list(self.db.query(
            "SELECT id, title, first_seen_at, last_seen_at, articles, outlets, "
            "first_article_id FROM stories WHERE last_seen_at >= ? "
            "ORDER BY last_seen_at DESC, id DESC LIMIT ?", [iso(since), limit]))
        for story in found:
            members = list(self.db.query(
                "SELECT id, source, url, similarity FROM articles WHERE story_id = ? "
                "ORDER BY id", [story["id"]]))
            story["outlets_list"] = list(dict.fromkeys(m["source"] for m in members))
            story["urls"] = [m["url"] for m in members]
            story["watches"] = [f"{r[0]}: {r[1]}" for r in self.db.execute(
                "SELECT DISTINCT m.watchlist, m.watch FROM matches m JOIN articles a "
                "ON a.id = m.article_id WHERE a.story_id = ? ORDER BY 1, 2", [story["id"]])]
        return found

    def search(self, match: str, *, since: datetime | None = None,
               source: str | None = None, watchlist: str | None = None,
               order: Literal["newest", "rank"] = "newest",
               limit: int = 20) -> list[dict[str, Any]]:
        """Articles whose indexed text matches the FTS5 ``match`` expression (comparable
        form, see crawler/process/search.py), newest first or best ranked (bm25) first."""
        where, values = ["articles_fts MATCH ?"], [match]
        if since is not None:
            where.append("a.fetched_at >= ?")
            values.append(iso(since))
        if source is not None:
            where.append("a.source = ?")
            values.append(source)
        if watchlist is not None:
            where.append("EXISTS (SELECT 1 FROM matches m WHERE m.article_id = a.id "
                         "AND m.watchlist = ?)")
            values.append(watchlist)
        ordering = ("bm25(articles_fts)" if order == "rank"
                    else "coalesce(a.published_at, a.fetched_at) DESC")
        try:
            return list(self.db.query(
                "SELECT a.id, a.url, a.title, a.summary, a.text, a.source, a.published_at, "
                "a.fetched_at, a.story_id FROM articles_fts JOIN articles a "
                f"ON a.id = articles_fts.rowid WHERE {' AND '.join(where)} "
                f"ORDER BY {ordering}, a.id DESC LIMIT ?", [*values, limit]))
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot search for {match!r}: {exc}") from exc

    def prune_articles(self, now: datetime, keep: timedelta, batch: int = 500) -> int:
        """Forget the text of articles fetched longer than ``keep`` ago: summary, text,
        full-text index rows, similarity signature and band keys. The article row (URL,
        title, source, dates, story), its matches, its alerts and its dedup keys stay, so
        an audit can still say what was alerted, and a pruned article seen again in a
        feed is still known. Works in short transactions; returns the articles pruned."""
        cutoff = iso(now - keep)
        pruned = 0
        while True:
            with self._write() as db:
                ids = [r[0] for r in db.execute(
                    "SELECT id FROM articles WHERE fetched_at < ? AND pruned_at IS NULL "
                    "ORDER BY id LIMIT ?", [cutoff, batch])]
                if not ids:
                    break
                marks = ",".join("?" * len(ids))
                for article_id, signature in list(db.execute(
                        "SELECT article_id, signature FROM article_signatures "
                        f"WHERE article_id IN ({marks})", ids)):
                    db.conn.executemany(
                        "DELETE FROM story_bands WHERE key = ? AND article_id = ?",
                        [(key, article_id) for key in stories.band_keys(signature)])
                db.execute(f"DELETE FROM article_signatures WHERE article_id IN ({marks})",
                           ids)
                db.execute(f"DELETE FROM articles_fts WHERE rowid IN ({marks})", ids)
                db.execute(f"UPDATE articles SET summary = NULL, text = NULL, pruned_at = ? "
                           f"WHERE id IN ({marks})", [iso(now), *ids])
                pruned += len(ids)
        return pruned

    _STATE = ("CASE WHEN o.status = 'pending' AND o.held = 1 THEN 'held' "
              "WHEN o.status = 'pending' AND o.attempts > 0 THEN 'retrying' "
              "ELSE o.status END")

    def alerts(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Outbox rows, newest first. ``status`` is a stored status (pending, digested,
        delivered, dead) or a state (held for a digest, retrying); each row has both."""
        where = ""
        if status in ("held", "retrying"):
            where = f"WHERE {self._STATE} = :status"
        elif status:
            where = "WHERE o.status = :status"
        return list(self.db.query(
            f"SELECT o.id, o.message_id, o.kind, o.watchlist, o.channel, o.status, "
            f"{self._STATE} AS state, o.attempts, o.next_attempt_at, o.last_error, "
            "o.created_at, o.delivered_at, o.priority, o.digest_id, a.title, a.url "
            f"FROM outbox o LEFT JOIN articles a ON a.id = o.article_id {where} "
            "ORDER BY o.id DESC LIMIT :limit", {"status": status, "limit": limit}))

    def outbox_backlog(self, now: datetime) -> tuple[int, float]:
        """Pending alerts, and the age in seconds of the oldest one (0 when none)."""
        count, oldest = self.db.execute(
            "SELECT count(*), min(created_at) FROM outbox WHERE status = 'pending'").fetchone()
        age = (now - parse_iso(oldest)).total_seconds() if oldest else 0.0
        return int(count), max(0.0, age)

    def writable(self) -> str | None:
        """None when a write transaction can be taken now, else the reason it cannot."""
        try:
            with self._write():
                pass
        except StoreError as exc:
            return str(exc)
        return None

    def alert_counts(self) -> dict[str, int]:
        return {r["state"]: r["n"] for r in self.db.query(
            f"SELECT {self._STATE} AS state, count(*) AS n FROM outbox o GROUP BY 1")}
