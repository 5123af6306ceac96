"""Articles with their dedup keys, matches, stories and search vectors: written in one
transaction, read back for the CLI, the Atom feeds, search and backtests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

from crawler.core.article import Article
from crawler.core.clock import iso
from crawler.core.errors import StoreError
from crawler.process import stories
from crawler.process.search import Query
from crawler.store.postgres import ingest, tsearch
from crawler.store.postgres.base import Connected, rows, wrap_exceptions
from crawler.store.records import (
    ArchiveMark,
    ArchivePage,
    FoundArticle,
    NewArticle,
    Planner,
    StoredArticle,
    StoryRules,
    stored_article,
)


class Articles(Connected):
    @wrap_exceptions
    def source_urls(self, source: str, limit: int = 5000) -> list[str]:
        """The URL keys of a source's most recent articles (what a crawl need not fetch)."""
        with self._tx() as conn:
            return [r[0] for r in conn.execute(
                "SELECT k.key FROM article_keys k JOIN articles a ON a.id = k.article_id "
                "WHERE a.source = %s AND k.key LIKE 'url:%%' ORDER BY a.id DESC LIMIT %s",
                [source, limit])]

    @wrap_exceptions
    def known_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these dedup keys are stored."""
        with self._tx() as conn:
            return ingest.known_keys(conn, set(keys))

    @wrap_exceptions
    def add_articles(self, batch: Sequence[NewArticle], now: datetime, config_version: str,
                     plan: Planner, rules: StoryRules | None = None) -> list[StoredArticle]:
        """Store articles with their dedup keys, matches, story, search vectors and
        outbox rows, all or nothing, in a fixed number of statements, under advisory
        locks shared with other daemons storing the same articles or stories
        (``crawler.store.postgres.ingest``); the rest as ``SQLiteStore.add_articles``."""
        with self._tx() as conn:
            return ingest.add(conn, batch, now, config_version, plan, rules or StoryRules())

    @wrap_exceptions
    def archive(self, since: datetime, *, watch: tuple[str, str] | None = None,
                ) -> list[tuple[Article, set[tuple[str, str]]]]:
        """Articles fetched since ``since``, oldest first, each with the (watchlist, watch)
        pairs stored for it: what ``newswatch backtest`` replays. ``watch`` keeps only
        the articles stored as matching that (watchlist, watch item)."""
        values = {"since": iso(since), "wl": watch[0] if watch else None,
                  "watch": watch[1] if watch else None}
        narrow = (" AND a.id IN (SELECT article_id FROM matches WHERE watchlist = %(wl)s "
                  "AND watch = %(watch)s)" if watch else "")
        stored: dict[int, set[tuple[str, str]]] = {}
        with self._tx() as conn:
            for article_id, watchlist, name in conn.execute(
                    "SELECT m.article_id, m.watchlist, m.watch FROM matches m JOIN articles a "
                    f"ON a.id = m.article_id WHERE a.fetched_at >= %(since)s{narrow}",
                    values):
                stored.setdefault(article_id, set()).add((watchlist, name))
            return [(stored_article(r), stored.get(r["id"], set())) for r in rows(
                conn, "SELECT * FROM articles a WHERE a.fetched_at >= %(since)s"
                f"{narrow} ORDER BY a.fetched_at, a.id", values)]

    @wrap_exceptions
    def count_archive(self, since: datetime) -> int:
        """How many articles ``archive`` and ``archive_page`` give since ``since``."""
        with self._tx() as conn:
            found = conn.execute("SELECT count(*) FROM articles WHERE fetched_at >= %s",
                                 [iso(since)]).fetchone()
        return int(found[0]) if found else 0

    @wrap_exceptions
    def archive_page(self, since: datetime, *, before: ArchiveMark | None = None,
                     limit: int = 500) -> ArchivePage:
        """Up to ``limit`` articles fetched since ``since``, newest first, after
        ``before`` (the previous page's ``next``), each with its stored (watchlist,
        watch) pairs; as ``SQLiteStore.archive_page``."""
        where = "a.fetched_at >= %(since)s"
        values: dict[str, Any] = {"since": iso(since), "limit": int(limit)}
        if before is not None:
            where += " AND (a.fetched_at, a.id) < (%(at)s, %(id)s)"
            values.update(at=before.at, id=before.id)
        stored: dict[int, set[tuple[str, str]]] = {}
        with self._tx() as conn:
            found = rows(conn, f"SELECT * FROM articles a WHERE {where} "
                         "ORDER BY a.fetched_at DESC, a.id DESC LIMIT %(limit)s", values)
            for article_id, watchlist, watch in conn.execute(
                    "SELECT article_id, watchlist, watch FROM matches "
                    "WHERE article_id = ANY(%s::bigint[])", [[r["id"] for r in found]]):
                stored.setdefault(article_id, set()).add((watchlist, watch))
        last = found[-1] if len(found) == limit else None
        return ArchivePage(
            [(stored_article(r), stored.get(r["id"], set())) for r in found],
            [datetime.fromisoformat(r["fetched_at"]) for r in found],
            ArchiveMark(last["fetched_at"], last["id"]) if last else None)

    @wrap_exceptions
    def find_article(self, url: str) -> FoundArticle | None:
        """The stored article one of whose URLs (canonical, as dedup keys them) is
        ``url``, with its story and what it matched; None when there is none."""
        with self._tx() as conn:
            found = rows(conn, "SELECT a.*, s.key AS story_key FROM article_keys k "
                         "JOIN articles a ON a.id = k.article_id LEFT JOIN stories s "
                         "ON s.id = a.story_id WHERE k.key = %s", [f"url:{url}"])
            if not found:
                return None
            row = found[0]
            matched = frozenset((r[0], r[1]) for r in conn.execute(
                "SELECT watchlist, watch FROM matches WHERE article_id = %s", [row["id"]]))
        return FoundArticle(row["id"], stored_article(row), row["story_id"], row["story_key"],
                            matched, row["pruned_at"] is not None)

    @wrap_exceptions
    def matched_articles(self, *, watchlist: str | None = None, watch: str | None = None,
                         source: str | None = None, since: datetime | None = None,
                         limit: int | None = None) -> list[dict[str, Any]]:
        """Articles with a match passing the filters, newest match first, each with its
        story, outlet count and every one of its ``matches`` (of ``watchlist`` only, when
        given); as ``SQLiteStore.matched_articles``."""
        where, values = _match_filter(watchlist, watch, source, since)
        sql = ("SELECT a.id, a.url, a.title, a.summary, a.source, a.published_at, "
               "a.fetched_at, a.story_id, s.outlets, max(m.created_at) AS matched_at "
               "FROM matches m JOIN articles a ON a.id = m.article_id "
               "LEFT JOIN stories s ON s.id = a.story_id "
               f"WHERE {where} GROUP BY a.id, s.id ORDER BY matched_at DESC, a.id DESC")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._tx() as conn:
            found = rows(conn, sql, values)
            by_id = {row["id"]: row for row in found}
            for row in found:
                row["matches"] = []
            extra = " AND watchlist = %s" if watchlist is not None else ""
            for match in rows(
                    conn, "SELECT article_id, watchlist, watch, alias, matched, field, start, "
                    "\"end\", snippet, highlight, context, created_at FROM matches "
                    f"WHERE article_id = ANY(%s::bigint[]){extra} ORDER BY id",
                    [list(by_id), *([watchlist] if watchlist is not None else [])]):
                by_id[match.pop("article_id")]["matches"].append(match)
        return found

    @wrap_exceptions
    def count_matched_articles(self, *, watchlist: str | None = None,
                               watch: str | None = None, source: str | None = None,
                               since: datetime | None = None) -> int:
        """How many articles ``matched_articles`` gives for these filters with no limit."""
        where, values = _match_filter(watchlist, watch, source, since)
        with self._tx() as conn:
            found = conn.execute("SELECT count(DISTINCT m.article_id) FROM matches m "
                                 f"JOIN articles a ON a.id = m.article_id WHERE {where}",
                                 values).fetchone()
        return int(found[0]) if found else 0

    @wrap_exceptions
    def recent_stories(self, since: datetime, limit: int = 50) -> list[dict[str, Any]]:
        """Stories seen since ``since``, latest first, each with its ``outlets_list``
        (source names), ``urls`` and ``watches`` (``watchlist: watch`` matched in it)."""
        with self._tx() as conn:
            found = rows(conn, "SELECT id, title, first_seen_at, last_seen_at, articles, "
                         "outlets, first_article_id FROM stories WHERE last_seen_at >= %s "
                         "ORDER BY last_seen_at DESC, id DESC LIMIT %s", [iso(since), limit])
            for story in found:
                members = conn.execute("SELECT source, url FROM articles WHERE story_id = %s "
                                       "ORDER BY id", [story["id"]]).fetchall()
                story["outlets_list"] = list(dict.fromkeys(m[0] for m in members))
                story["urls"] = [m[1] for m in members]
                story["watches"] = [f"{r[0]}: {r[1]}" for r in conn.execute(
                    "SELECT DISTINCT m.watchlist, m.watch FROM matches m JOIN articles a "
                    "ON a.id = m.article_id WHERE a.story_id = %s ORDER BY 1, 2",
                    [story["id"]])]
        return found

    @wrap_exceptions
    def search(self, query: Query, *, since: datetime | None = None,
               source: str | None = None, watchlist: str | None = None,
               order: Literal["newest", "rank", "stored"] = "newest",
               limit: int = 20) -> list[dict[str, Any]]:
        """Articles whose search vector matches ``query`` (``tsearch.tsquery``): newest
        published first, best ranked (``ts_rank``) first, or last stored first
        (``stored``, the desk's order: by article id, which the vectors' primary key
        keeps in order, so for a common word the planner walks it backwards, testing
        each vector, and stops at ``limit`` rather than sorting every hit; a rare word
        is still found through the GIN index)."""
        try:
            text = tsearch.tsquery(query)
        except tsearch.QuerySyntaxError as exc:
            raise StoreError(f"cannot search for {' '.join(map(str, query.parts))!r}: "
                             f"{exc}") from exc
        where, values = ["f.doc @@ q.q"], [text]
        if since is not None:
            where.append("a.fetched_at >= %s")
            values.append(iso(since))
        if source is not None:
            where.append("a.source = %s")
            values.append(source)
        if watchlist is not None:
            where.append("EXISTS (SELECT 1 FROM matches m WHERE m.article_id = a.id "
                         "AND m.watchlist = %s)")
            values.append(watchlist)
        ordering = {"rank": "ts_rank(f.doc, q.q) DESC, a.id DESC",
                    "newest": "coalesce(a.published_at, a.fetched_at) DESC, a.id DESC",
                    "stored": "f.article_id DESC"}[order]
        try:
            return self._rows(
                "SELECT a.id, a.url, a.title, a.summary, a.text, a.source, a.published_at, "
                "a.fetched_at, a.story_id, a.language FROM (SELECT %s::tsquery AS q) q, "
                "article_search f "
                f"JOIN articles a ON a.id = f.article_id WHERE {' AND '.join(where)} "
                f"ORDER BY {ordering} LIMIT %s", [*values, limit])
        except psycopg.errors.SyntaxError as exc:
            raise StoreError(f"cannot search for {text!r}: {exc}") from exc

    @wrap_exceptions
    def prune_articles(self, now: datetime, keep: timedelta, batch: int = 500) -> int:
        """Forget the text of articles fetched longer than ``keep`` ago: summary, text,
        search vector, similarity signature and band keys; the rest stays (as
        ``SQLiteStore.prune_articles``). Works in short transactions; returns the
        articles pruned."""
        cutoff = iso(now - keep)
        pruned = 0
        while True:
            with self._tx() as conn:
                ids = [r[0] for r in conn.execute(
                    "SELECT id FROM articles WHERE fetched_at < %s AND pruned_at IS NULL "
                    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED", [cutoff, batch])]
                if not ids:
                    break
                bands = [(key, article_id) for article_id, signature in conn.execute(
                    "SELECT article_id, signature FROM article_signatures "
                    "WHERE article_id = ANY(%s::bigint[])", [ids])
                    for key in stories.band_keys(signature)]
                conn.execute("DELETE FROM story_bands b USING unnest(%s::bigint[], "
                             "%s::bigint[]) AS d(key, article_id) WHERE b.key = d.key "
                             "AND b.article_id = d.article_id",
                             [[k for k, _ in bands], [i for _, i in bands]])
                for table in ("article_signatures", "article_search"):
                    conn.execute(f"DELETE FROM {table} WHERE article_id = ANY(%s::bigint[])",
                                 [ids])
                conn.execute("UPDATE articles SET summary = NULL, text = NULL, "
                             "pruned_at = %s WHERE id = ANY(%s::bigint[])", [iso(now), ids])
                pruned += len(ids)
        return pruned


def _match_filter(watchlist: str | None, watch: str | None, source: str | None,
                  since: datetime | None) -> tuple[str, dict[str, str]]:
    """The WHERE clause over ``matches m JOIN articles a`` that the match filters make."""
    where, values = ["TRUE"], {}
    for name, column, value in (("wl", "m.watchlist", watchlist), ("watch", "m.watch", watch),
                                ("source", "a.source", source)):
        if value is not None:
            where.append(f"{column} = %({name})s")
            values[name] = value
    if since is not None:
        where.append("m.created_at >= %(since)s")
        values["since"] = iso(since)
    return " AND ".join(where), values
