"""The SQLite schema, as numbered migration steps (see ``crawler.store.migrate``).

Append a step to change the schema: ``Step(8, "what it adds", _v8)``. Each runs once, in
order, inside its own write transaction; released steps are never edited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlite_utils

from crawler.core.clock import iso, parse_iso
from crawler.core.redact import scrub
from crawler.process import stories
from crawler.process.script import script
from crawler.process.search import comparable, fields
from crawler.store.migrate import Step
from crawler.store.sqlite import fts

if TYPE_CHECKING:
    from crawler.store.sqlite.base import Connected


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


#: The columns where a failed delivery's message was kept, with the channel URL in it.
SCRUBBED = (("outbox", "id", "last_error"), ("delivery_attempts", "id", "error"),
            ("incidents", "key", "message"))


def _v7(db: sqlite_utils.Database) -> None:
    """Tokens in channel URLs out of the stored messages. The config (and so which URLs
    were channels) is unknown here: every http(s) URL is shown as ``scheme://host/…#hash``,
    as new messages show webhook URLs (Apprise URLs never reached these columns)."""
    for table, key, column in SCRUBBED:
        rows = db.execute(f"SELECT {key}, {column} FROM {table} "
                          f"WHERE {column} LIKE '%http%://%'").fetchall()
        for row_key, text in rows:
            if (clean := scrub(text)) != text:
                db.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?",
                           [clean, row_key])


def _v8(db: sqlite_utils.Database) -> None:
    """Mutes and learned rules (AUTOINCREMENT: an id is never reused, so the rules' count
    and highest id say whether they changed), and the mute behind a ``muted`` alert."""
    db.execute("CREATE TABLE mutes (id INTEGER PRIMARY KEY AUTOINCREMENT, "
               "kind TEXT NOT NULL, target TEXT NOT NULL, watchlist TEXT, "
               "story_id INTEGER, article_url TEXT, created_by TEXT NOT NULL, "
               "created_at TEXT NOT NULL, until TEXT, alerts_muted INTEGER NOT NULL "
               "DEFAULT 0, ended_at TEXT, ended_by TEXT)")
    db.execute("CREATE INDEX mutes_kind_target ON mutes (kind, target)")
    db.execute("CREATE INDEX mutes_story ON mutes (story_id)")
    db.execute("CREATE TABLE learned_rules (id INTEGER PRIMARY KEY AUTOINCREMENT, "
               "watchlist TEXT NOT NULL, watch TEXT NOT NULL, kind TEXT NOT NULL, "
               "term TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL, "
               "article_url TEXT, note TEXT NOT NULL DEFAULT '', "
               "UNIQUE (watchlist, watch, kind, term))")
    db.table("outbox").add_column("mute_id", int)


def _v9(db: sqlite_utils.Database) -> None:
    """Alerted-ness per (story, channel): which (watchlist, watch) pairs each alert named.
    An alert queued before names its watchlist's items matched in its article (what
    ``StoryContext.alerted`` read from it until now), so old stories keep their
    follow-ups."""
    db.execute("CREATE TABLE outbox_items (outbox_id INTEGER NOT NULL REFERENCES outbox(id), "
               "watchlist TEXT NOT NULL, watch TEXT NOT NULL, "
               "PRIMARY KEY (outbox_id, watchlist, watch)) WITHOUT ROWID")
    db.table("outbox").create_index(["article_id"])
    db.execute("INSERT OR IGNORE INTO outbox_items (outbox_id, watchlist, watch) "
               "SELECT o.id, o.watchlist, m.watch FROM outbox o JOIN matches m "
               "ON m.article_id = o.article_id AND m.watchlist = o.watchlist "
               "WHERE o.kind = 'alert'")


#: How far back from the newest article with a signature step 10 recomputes signatures.
RESIGN_HORIZON = timedelta(days=14)


def _v10(db: sqlite_utils.Database) -> None:
    """Story signatures and band keys in the array-computed format of
    ``crawler.process.stories``: old ones share no band key with new ones, so a story begun
    before the upgrade would gather no more copies.

    They are recomputed from the stored text (in the comparable form the pipeline
    fingerprints) for articles fetched within ``RESIGN_HORIZON`` of the newest one that
    has a signature. The config, and so ``stories.window``, is unknown here: 14 days is
    almost five times the default window of 3 days, and bounds the work (2,000 to 4,000
    articles a second) whatever the text retention, where recomputing every unpruned
    article (180 days by default) could hold a daemon's start for many minutes. Older
    signatures and all old band keys are dropped: those articles are outside any but an
    unusually long window, and the pruning could not find old-format band keys again."""
    db.execute("DELETE FROM story_bands")
    newest = db.execute("SELECT max(a.fetched_at) FROM articles a "
                        "JOIN article_signatures s ON s.article_id = a.id").fetchone()[0]
    if newest is None:
        return
    since = iso(parse_iso(newest) - RESIGN_HORIZON)
    db.execute("DELETE FROM article_signatures WHERE article_id IN "
               "(SELECT id FROM articles WHERE fetched_at < ?)", [since])
    after = 0
    while rows := db.execute(
            "SELECT a.id, a.title, a.summary, a.text FROM articles a "
            "JOIN article_signatures s ON s.article_id = a.id WHERE a.id > ? "
            "ORDER BY a.id LIMIT 1000", [after]).fetchall():
        after = rows[-1][0]
        found = [(article_id, stories.fingerprint(fields(title or "", summary or "",
                                                         text or "")))
                 for article_id, title, summary, text in rows]
        db.conn.executemany("UPDATE article_signatures SET signature = ?, shingles = ? "
                            "WHERE article_id = ?",
                            [(fp.signature, fp.shingles, i) for i, fp in found if fp.signature])
        db.conn.executemany("DELETE FROM article_signatures WHERE article_id = ?",
                            [(i,) for i, fp in found if not fp.signature])
        db.conn.executemany("INSERT INTO story_bands (key, article_id) VALUES (?, ?)",
                            [(key, i) for i, fp in found for key in fp.bands])


def _v11(db: sqlite_utils.Database) -> None:
    """The full-text index keeps tokens, not a copy of the text (``fts.CREATE``): about a
    third of the file for news-length articles. Rebuilt from the stored articles."""
    db.execute("DROP TABLE articles_fts")
    db.execute(fts.CREATE)
    fts.reindex(db.conn)


def _v12(db: sqlite_utils.Database) -> None:
    """The desk's users (argon2id hashes), their server-side sessions (only a SHA-256 of
    each session id is kept: a copy of the file opens no session), failed logins (counted
    here so several processes share the limit) and secrets generated once (feed tokens)."""
    db.execute("CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, "
               "created_at TEXT NOT NULL)")
    db.execute("CREATE TABLE sessions (id_hash TEXT PRIMARY KEY, "
               "user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, "
               "csrf TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, "
               "last_seen_at TEXT NOT NULL)")
    db.execute("CREATE INDEX sessions_user ON sessions (user)")
    db.execute("CREATE TABLE login_failures (id INTEGER PRIMARY KEY, user TEXT NOT NULL, "
               "address TEXT NOT NULL, at TEXT NOT NULL)")
    db.execute("CREATE INDEX login_failures_user ON login_failures (user, at)")
    db.execute("CREATE INDEX login_failures_address ON login_failures (address, at)")
    db.execute("CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL)")


#: The desk's indexes (step 13), by name: what each read drives from (docs/database.md).
DESK_INDEXES = {
    "matches_story": "matches (story_id)",
    "matches_watch_story": "matches (watch, story_id)",
    "matches_watchlist_story": "matches (watchlist, story_id)",
    "matches_watch_created": "matches (watch, created_at)",
    "articles_source_story": "articles (source, story_id)",
    "stories_script": "stories (script)",
    "stories_first_seen": "stories (first_seen_at)",
}


def _v13(db: sqlite_utils.Database) -> None:
    """The desk's reads. Each match keeps its article's story (an article never changes
    story), so the stories list pages and filters by watch item or watchlist on an index
    in story order, never over every match; each story keeps the script of its headline
    (``crawler.process.script``: its first copy's title, else summary, else language),
    computed here for the stored ones."""
    db.execute("ALTER TABLE matches ADD COLUMN story_id INTEGER REFERENCES stories(id)")
    db.execute("UPDATE matches SET story_id = (SELECT a.story_id FROM articles a "
               "WHERE a.id = matches.article_id)")
    db.execute("ALTER TABLE stories ADD COLUMN script TEXT")
    after = 0
    while rows := db.execute(
            "SELECT s.id, a.title, a.summary, a.language FROM stories s "
            "LEFT JOIN articles a ON a.id = s.first_article_id WHERE s.id > ? "
            "ORDER BY s.id LIMIT 1000", [after]).fetchall():
        after = rows[-1][0]
        db.conn.executemany("UPDATE stories SET script = ? WHERE id = ?", [
            (script(title or "", summary or "", language=language or ""), story_id)
            for story_id, title, summary, language in rows])
    for name, on in DESK_INDEXES.items():
        db.execute(f"CREATE INDEX {name} ON {on}")


def _v14(db: sqlite_utils.Database) -> None:
    """Turns at remote hosts, shared by every process on the database
    (``crawler.store.sqlite.hosts``)."""
    db.execute("CREATE TABLE hosts (host TEXT PRIMARY KEY, next_at TEXT NOT NULL, "
               "held_by TEXT, held_until TEXT)")


def _v15(db: sqlite_utils.Database) -> None:
    """Who runs: one row per running daemon, the config version it runs included, so
    ``status`` can tell daemons that did not pick up an edit (``Store.daemon_seen``)."""
    db.table("daemons").create({
        "owner": str, "host": str, "pid": int, "started_at": str, "seen_at": str,
        "config_version": str, "version": str, "workers": int,
    }, pk="owner", not_null={"host", "pid", "started_at", "seen_at", "config_version",
                             "version", "workers"})


STEPS: list[Step[sqlite_utils.Database]] = [
    Step(1, "sources, articles, article_keys, matches, outbox, delivery_attempts", _v1),
    Step(2, "source redirects, retirement, full fetches and health notices", _v2),
    Step(3, "digests, priority, throttling and operator incidents", _v3),
    Step(4, "articles.author, articles.language, articles.extraction (full text)", _v4),
    Step(5, "matches: highlight, context", _v5),
    Step(6, "stories, similarity index, full-text search, article retention", _v6),
    Step(7, "channel URL tokens scrubbed from stored delivery errors and incidents", _v7),
    Step(8, "mutes, learned rules, muted alerts", _v8),
    Step(9, "outbox_items: the watch items each alert named (one alert per story)", _v9),
    Step(10, "story signatures recomputed in the numpy MinHash format", _v10),
    Step(11, "articles_fts contentless: the index keeps no copy of the text", _v11),
    Step(12, "desk users, sessions, login failures and secrets", _v12),
    Step(13, "the desk's reads: matches.story_id, stories.script and their indexes", _v13),
    Step(14, "hosts: turns at remote hosts shared by every daemon", _v14),
    Step(15, "daemons: who runs where, with which config version", _v15),
]


class Target:
    """The SQLite side of the migration runner, over a store's connection."""

    def __init__(self, store: Connected, keep_copy: Callable[[int], None]) -> None:
        self.store = store
        self.location = store.location
        self._keep_copy = keep_copy

    def applied(self) -> int:
        db = self.store._db
        if "migrations" not in db.table_names():
            return 0
        return int(db.execute("SELECT max(version) FROM migrations").fetchone()[0] or 0)

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        with self.store._write() as db:
            if "migrations" not in db.table_names():
                db.table("migrations").create({"version": int, "name": str,
                                               "applied_at": str}, pk="version")
            yield db

    def record(self, handle: sqlite_utils.Database, step: Step[sqlite_utils.Database],
               at: datetime) -> None:
        handle.table("migrations").insert({"version": step.version, "name": step.name,
                                           "applied_at": iso(at)})

    def keep_copy(self, version: int) -> None:
        self._keep_copy(version)
