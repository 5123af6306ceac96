"""The PostgreSQL schema, as numbered migration steps with SQLite's numbers
(``crawler.store.migrate``), and the runner's PostgreSQL side.

PostgreSQL support began at schema 11: step 1 creates the tables as SQLite's steps 1 to
11 leave them (no PostgreSQL database ever held an older schema), and steps 2 to 11 are
recorded only, so ``schema_version()`` is the same number on both backends. From step 12
on, a schema change is a step in both ``crawler/store/sqlite/schema.py`` and here.

Text columns sort bytewise (``COLLATE "C"``), as SQLite's: names, watch items and the
fixed-width UTC times of ``crawler.core.clock.iso``, which both backends store as text so
rows read and compare alike. Ids come from sequences, which never hand out a number
twice (what SQLite's AUTOINCREMENT gives mutes and learned rules).

One process migrates at a time: the runner holds a session advisory lock
(``pg_advisory_lock``) on its own connection while it applies the steps; another waits,
then finds the steps applied. A process whose steps stop below the database's version
refuses to run (``SchemaTooNewError``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from crawler.core.clock import iso
from crawler.process.script import script
from crawler.store.migrate import Step
from crawler.store.postgres.base import Conn
from crawler.store.sqlite.schema import DESK_INDEXES

#: The advisory lock the migrating process holds: (newswatch, migrations).
MIGRATION_LOCK = (0x6E77, 1)
#: The advisory locks ingest takes, in the first key's space: (newswatch ingest, bucket).
INGEST_LOCK = 0x6E78
#: The advisory locks on stored stories a batch joins: (newswatch stories, bucket).
STORY_LOCK = 0x6E79

T = 'text COLLATE "C"'

_TABLES = f"""
CREATE TABLE sources (
    name {T} PRIMARY KEY, url {T} NOT NULL, kind {T} NOT NULL DEFAULT 'feed',
    active integer NOT NULL DEFAULT 1, etag {T}, last_modified {T},
    next_check_at {T} NOT NULL, last_checked_at {T}, last_success_at {T}, last_error {T},
    error_count integer NOT NULL DEFAULT 0, lease_owner {T}, lease_expires_at {T},
    created_at {T} NOT NULL, config_url {T}, redirect_to {T},
    redirect_seen integer NOT NULL DEFAULT 0, retired_at {T}, last_full_fetch_at {T},
    failing_since {T}, notice {T});
CREATE INDEX sources_due ON sources (next_check_at);
CREATE TABLE stories (
    id bigserial PRIMARY KEY, key {T} NOT NULL UNIQUE, first_article_id bigint,
    title {T}, first_seen_at {T} NOT NULL, last_seen_at {T} NOT NULL,
    articles integer NOT NULL, outlets integer NOT NULL);
CREATE INDEX stories_last_seen_at ON stories (last_seen_at);
CREATE TABLE articles (
    id bigserial PRIMARY KEY, url {T} NOT NULL UNIQUE, link {T}, guid {T},
    source {T} NOT NULL REFERENCES sources (name), title {T}, summary {T}, text {T},
    published_at {T}, fetched_at {T} NOT NULL, author {T}, language {T}, extraction {T},
    story_id bigint REFERENCES stories (id), similarity double precision,
    similar_to bigint REFERENCES articles (id), pruned_at {T});
CREATE INDEX articles_published_at ON articles (published_at);
CREATE INDEX articles_source_fetched_at ON articles (source, fetched_at);
CREATE INDEX articles_story_id ON articles (story_id);
CREATE INDEX articles_fetched_at ON articles (fetched_at);
ALTER TABLE stories ADD FOREIGN KEY (first_article_id) REFERENCES articles (id)
    DEFERRABLE INITIALLY DEFERRED;
CREATE TABLE article_keys (
    key {T} PRIMARY KEY, article_id bigint NOT NULL REFERENCES articles (id));
CREATE INDEX article_keys_article_id ON article_keys (article_id);
CREATE TABLE matches (
    id bigserial PRIMARY KEY, article_id bigint NOT NULL REFERENCES articles (id),
    watchlist {T} NOT NULL, watch {T} NOT NULL, alias {T}, matched {T}, field {T} NOT NULL,
    start integer, "end" integer, snippet {T}, config_version {T}, created_at {T} NOT NULL,
    highlight {T}, context {T});
CREATE INDEX matches_article_id ON matches (article_id);
CREATE INDEX matches_created_at ON matches (created_at);
CREATE TABLE outbox (
    id bigserial PRIMARY KEY, key {T} NOT NULL UNIQUE, message_id {T} NOT NULL UNIQUE,
    watchlist {T} NOT NULL, channel {T} NOT NULL, subject {T} NOT NULL,
    article_id bigint REFERENCES articles (id), payload {T} NOT NULL,
    status {T} NOT NULL DEFAULT 'pending', attempts integer NOT NULL DEFAULT 0,
    next_attempt_at {T} NOT NULL, lease_owner {T}, lease_expires_at {T}, last_error {T},
    created_at {T} NOT NULL, delivered_at {T}, kind {T} NOT NULL DEFAULT 'alert',
    priority integer NOT NULL DEFAULT 0, held integer NOT NULL DEFAULT 0,
    digest_id bigint, first_attempt_at {T}, mute_id bigint);
CREATE INDEX outbox_status_next ON outbox (status, next_attempt_at);
CREATE INDEX outbox_digest_id ON outbox (digest_id);
CREATE INDEX outbox_channel_first ON outbox (channel, first_attempt_at);
CREATE INDEX outbox_article_id ON outbox (article_id);
CREATE TABLE delivery_attempts (
    id bigserial PRIMARY KEY, outbox_id bigint NOT NULL REFERENCES outbox (id),
    attempted_at {T} NOT NULL, outcome {T} NOT NULL, status_code integer, error {T},
    duration_ms integer);
CREATE INDEX delivery_attempts_outbox_id ON delivery_attempts (outbox_id);
CREATE TABLE incidents (
    key {T} PRIMARY KEY, kind {T} NOT NULL, channel {T} NOT NULL, since {T} NOT NULL,
    opened_at {T} NOT NULL, message {T} NOT NULL);
CREATE TABLE article_signatures (
    article_id bigint PRIMARY KEY REFERENCES articles (id), signature bytea NOT NULL,
    shingles integer NOT NULL);
CREATE TABLE story_bands (
    key bigint NOT NULL, article_id bigint NOT NULL REFERENCES articles (id),
    PRIMARY KEY (key, article_id));
CREATE TABLE article_search (
    article_id bigint PRIMARY KEY REFERENCES articles (id), doc tsvector NOT NULL);
CREATE INDEX article_search_doc ON article_search USING gin (doc);
CREATE TABLE mutes (
    id bigserial PRIMARY KEY, kind {T} NOT NULL, target {T} NOT NULL, watchlist {T},
    story_id bigint, article_url {T}, created_by {T} NOT NULL, created_at {T} NOT NULL,
    until {T}, alerts_muted integer NOT NULL DEFAULT 0, ended_at {T}, ended_by {T});
CREATE INDEX mutes_kind_target ON mutes (kind, target);
CREATE INDEX mutes_story ON mutes (story_id);
CREATE TABLE learned_rules (
    id bigserial PRIMARY KEY, watchlist {T} NOT NULL, watch {T} NOT NULL, kind {T} NOT NULL,
    term {T} NOT NULL, created_by {T} NOT NULL, created_at {T} NOT NULL, article_url {T},
    note {T} NOT NULL DEFAULT '', UNIQUE (watchlist, watch, kind, term));
CREATE TABLE outbox_items (
    outbox_id bigint NOT NULL REFERENCES outbox (id), watchlist {T} NOT NULL,
    watch {T} NOT NULL, PRIMARY KEY (outbox_id, watchlist, watch));
"""


def _v1(conn: Conn) -> None:
    """Every table as SQLite's steps 1 to 11 leave it (with ``article_search``, a
    tsvector per article, where SQLite has its FTS5 index)."""
    conn.execute(_TABLES)


def _recorded(conn: Conn) -> None:
    """Made by step 1 already: recorded so the version numbers agree with SQLite's."""


def _v12(conn: Conn) -> None:
    """The desk's users, sessions (by id hash), failed logins and secrets, as SQLite's
    step 12."""
    conn.execute(f"""
CREATE TABLE users (name {T} PRIMARY KEY, password_hash {T} NOT NULL,
                    created_at {T} NOT NULL);
CREATE TABLE sessions (
    id_hash {T} PRIMARY KEY, "user" {T} NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf {T} NOT NULL, created_at {T} NOT NULL, expires_at {T} NOT NULL,
    last_seen_at {T} NOT NULL);
CREATE INDEX sessions_user ON sessions ("user");
CREATE TABLE login_failures (id bigserial PRIMARY KEY, "user" {T} NOT NULL,
                             address {T} NOT NULL, at {T} NOT NULL);
CREATE INDEX login_failures_user ON login_failures ("user", at);
CREATE INDEX login_failures_address ON login_failures (address, at);
CREATE TABLE secrets (name {T} PRIMARY KEY, value bytea NOT NULL);
""")


def _v13(conn: Conn) -> None:
    """The desk's reads, as SQLite's step 13: each match's story, each story's script
    (``crawler.process.script``, computed for the stored ones) and the same indexes."""
    conn.execute("ALTER TABLE matches ADD COLUMN story_id bigint REFERENCES stories (id)")
    conn.execute("UPDATE matches m SET story_id = a.story_id FROM articles a "
                 "WHERE a.id = m.article_id")
    conn.execute(f"ALTER TABLE stories ADD COLUMN script {T}")
    after = 0
    while rows := conn.execute(
            "SELECT s.id, a.title, a.summary, a.language FROM stories s "
            "LEFT JOIN articles a ON a.id = s.first_article_id WHERE s.id > %s "
            "ORDER BY s.id LIMIT 1000", [after]).fetchall():
        after = rows[-1][0]
        conn.cursor().executemany("UPDATE stories SET script = %s WHERE id = %s", [
            (script(title or "", summary or "", language=language or ""), story_id)
            for story_id, title, summary, language in rows])
    for name, on in DESK_INDEXES.items():
        conn.execute(f"CREATE INDEX {name} ON {on}")


def _v14(conn: Conn) -> None:
    """Turns at remote hosts, as SQLite's step 14 (``crawler.store.postgres.hosts``)."""
    conn.execute(f"CREATE TABLE hosts (host {T} PRIMARY KEY, next_at {T} NOT NULL, "
                 f"held_by {T}, held_until {T})")


def _v15(conn: Conn) -> None:
    """Who runs, as SQLite's step 15."""
    conn.execute(f"""
CREATE TABLE daemons (
    owner {T} PRIMARY KEY, host {T} NOT NULL, pid integer NOT NULL,
    started_at {T} NOT NULL, seen_at {T} NOT NULL, config_version {T} NOT NULL,
    version {T} NOT NULL, workers integer NOT NULL);
""")


STEPS: list[Step[Conn]] = [
    Step(1, "every table as of schema 11 (PostgreSQL support began there)", _v1),
    Step(2, "source redirects, retirement, full fetches and health notices", _recorded),
    Step(3, "digests, priority, throttling and operator incidents", _recorded),
    Step(4, "articles.author, articles.language, articles.extraction (full text)",
         _recorded),
    Step(5, "matches: highlight, context", _recorded),
    Step(6, "stories, similarity index, full-text search, article retention", _recorded),
    Step(7, "channel URL tokens scrubbed from stored delivery errors and incidents",
         _recorded),
    Step(8, "mutes, learned rules, muted alerts", _recorded),
    Step(9, "outbox_items: the watch items each alert named (one alert per story)",
         _recorded),
    Step(10, "story signatures recomputed in the numpy MinHash format", _recorded),
    Step(11, "article_search: a tsvector per article, GIN-indexed", _recorded),
    Step(12, "desk users, sessions, login failures and secrets", _v12),
    Step(13, "the desk's reads: matches.story_id, stories.script and their indexes", _v13),
    Step(14, "hosts: turns at remote hosts shared by every daemon", _v14),
    Step(15, "daemons: who runs where, with which config version", _v15),
]


class Target:
    """The PostgreSQL side of the migration runner, over one connection (autocommit,
    holding the migration lock)."""

    def __init__(self, conn: Conn, location: str) -> None:
        self.conn = conn
        self.location = location

    def applied(self) -> int:
        found = self.conn.execute("SELECT to_regclass('migrations') IS NOT NULL").fetchone()
        if not found or not found[0]:
            return 0
        row = self.conn.execute("SELECT max(version) FROM migrations").fetchone()
        return int(row[0] or 0) if row else 0

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        with self.conn.transaction():
            self.conn.execute("CREATE TABLE IF NOT EXISTS migrations (version integer "
                              "PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)")
            yield self.conn

    def record(self, handle: Conn, step: Step[Conn], at: datetime) -> None:
        handle.execute("INSERT INTO migrations (version, name, applied_at) "
                       "VALUES (%s, %s, %s)", [step.version, step.name, iso(at)])

    def keep_copy(self, version: int) -> None:
        """Nothing: a server database is backed up with ``pg_dump`` before an upgrade
        (docs/database.md), and every step runs in a transaction."""
