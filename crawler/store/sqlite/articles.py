"""Articles with their dedup keys, matches, stories and full-text rows: written in one
transaction, read back for the CLI, the Atom feeds, search and backtests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from crawler.core.article import Article
from crawler.core.clock import iso
from crawler.core.errors import StoreError
from crawler.process import stories
from crawler.process.search import Query
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
from crawler.store.sqlite import fts, ingest
from crawler.store.sqlite.base import Connected, wrap_exceptions


class Articles(Connected):
    @wrap_exceptions
    def source_urls(self, source: str, limit: int = 5000) -> list[str]:
        """The URL keys of a source's most recent articles (what a crawl need not fetch)."""
        return [r[0] for r in self._db.execute(
            "SELECT k.key FROM article_keys k JOIN articles a ON a.id = k.article_id "
            "WHERE a.source = ? AND k.key LIKE 'url:%' ORDER BY a.id DESC LIMIT ?",
            [source, limit])]

    @wrap_exceptions
    def known_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these dedup keys are stored."""
        return ingest.known_keys(self._conn, set(keys))

    @wrap_exceptions
    def add_articles(self, batch: Sequence[NewArticle], now: datetime, config_version: str,
                     plan: Planner, rules: StoryRules | None = None) -> list[StoredArticle]:
        """Store articles with their dedup keys, matches, story, index rows and outbox
        rows, all or nothing, in a fixed number of statements (``ingest``).

        Each article is placed in a story here, inside the transaction, so processes
        sharing the database agree on it; ``plan`` then decides its outbox rows knowing
        what the story was already alerted for (by the batch's earlier articles too). An
        article any of whose keys another process stored meanwhile (or an earlier article
        of the batch claims) is skipped whole, so it cannot alert twice.
        """
        with self._write():
            return ingest.add(self._conn, batch, now, config_version, plan,
                              rules or StoryRules())

    @wrap_exceptions
    def archive(self, since: datetime, *, watch: tuple[str, str] | None = None,
                ) -> list[tuple[Article, set[tuple[str, str]]]]:
        """Articles fetched since ``since``, oldest first, each with the (watchlist, watch)
        pairs stored for it: what ``newswatch backtest`` replays. ``watch`` keeps only
        the articles stored as matching that (watchlist, watch item)."""
        which = ("SELECT article_id FROM matches WHERE watchlist = :wl AND watch = :watch"
                 if watch else None)
        values = {"since": iso(since), "wl": watch[0] if watch else None,
                  "watch": watch[1] if watch else None}
        narrow = f" AND a.id IN ({which})" if which else ""
        stored: dict[int, set[tuple[str, str]]] = {}
        for row in self._db.query(
                "SELECT m.article_id, m.watchlist, m.watch FROM matches m "
                f"JOIN articles a ON a.id = m.article_id WHERE a.fetched_at >= :since{narrow}",
                values):
            stored.setdefault(row["article_id"], set()).add((row["watchlist"], row["watch"]))
        return [(stored_article(r), stored.get(r["id"], set())) for r in self._db.query(
            "SELECT * FROM articles a WHERE a.fetched_at >= :since"
            f"{narrow} ORDER BY a.fetched_at, a.id", values)]

    @wrap_exceptions
    def count_archive(self, since: datetime) -> int:
        """How many articles ``archive`` and ``archive_page`` give since ``since``."""
        return int(self._db.execute("SELECT count(*) FROM articles WHERE fetched_at >= ?",
                                    [iso(since)]).fetchone()[0])

    @wrap_exceptions
    def archive_page(self, since: datetime, *, before: ArchiveMark | None = None,
                     limit: int = 500) -> ArchivePage:
        """Up to ``limit`` articles fetched since ``since``, newest first, that come after
        ``before`` (the ``next`` of the previous page) in that order, each with the
        (watchlist, watch) pairs stored for it: a backtest shown while it runs (the desk's
        preview) reads the archive a page at a time, each page a short read of its own."""
        where = "a.fetched_at >= :since"
        values: dict[str, Any] = {"since": iso(since), "limit": int(limit)}
        if before is not None:
            where += " AND (a.fetched_at, a.id) < (:at, :id)"
            values.update(at=before.at, id=before.id)
        rows = list(self._db.query(f"SELECT * FROM articles a WHERE {where} "
                                   "ORDER BY a.fetched_at DESC, a.id DESC LIMIT :limit",
                                   values))
        stored: dict[int, set[tuple[str, str]]] = {}
        ids = [r["id"] for r in rows]
        if ids:
            for row in self._db.query(
                    "SELECT article_id, watchlist, watch FROM matches WHERE article_id IN "
                    f"({','.join('?' * len(ids))})", ids):
                stored.setdefault(row["article_id"], set()).add(
                    (row["watchlist"], row["watch"]))
        last = rows[-1] if len(rows) == limit else None
        return ArchivePage(
            [(stored_article(r), stored.get(r["id"], set())) for r in rows],
            [datetime.fromisoformat(r["fetched_at"]) for r in rows],
            ArchiveMark(last["fetched_at"], last["id"])
            if last else None)

    @wrap_exceptions
    def find_article(self, url: str) -> FoundArticle | None:
        """The stored article one of whose URLs (canonical, as dedup keys them) is
        ``url``, with its story and what it matched; None when there is none."""
        row = self._db.execute("SELECT article_id FROM article_keys WHERE key = ?",
                               [f"url:{url}"]).fetchone()
        if row is None:
            return None
        found = next(self._db.query(
            "SELECT a.*, s.key AS story_key FROM articles a LEFT JOIN stories s "
            "ON s.id = a.story_id WHERE a.id = ?", [row[0]]))
        matched = frozenset((r[0], r[1]) for r in self._db.execute(
            "SELECT watchlist, watch FROM matches WHERE article_id = ?", [found["id"]]))
        return FoundArticle(found["id"], stored_article(found), found["story_id"],
                            found["story_key"], matched, found["pruned_at"] is not None)

    @wrap_exceptions
    def matched_articles(self, *, watchlist: str | None = None, watch: str | None = None,
                         source: str | None = None, since: datetime | None = None,
                         limit: int | None = None) -> list[dict[str, Any]]:
        """Articles with a match passing the filters, newest match first, each with its
        story, outlet count and every one of its ``matches`` (of ``watchlist`` only, when
        given, so a team's export never shows another team's; ``watch`` chooses articles
        and keeps their other items); ``since`` counts from when the match was stored."""
        where, values = _match_filter(watchlist, watch, source, since)
        sql = ("SELECT a.id, a.url, a.title, a.summary, a.source, a.published_at, "
               "a.fetched_at, a.story_id, s.outlets, max(m.created_at) AS matched_at "
               "FROM matches m JOIN articles a ON a.id = m.article_id "
               "LEFT JOIN stories s ON s.id = a.story_id "
               f"WHERE {where} GROUP BY a.id ORDER BY matched_at DESC, a.id DESC")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        found = list(self._db.query(sql, values))
        by_id = {row["id"]: row for row in found}
        for row in found:
            row["matches"] = []
        ids = list(by_id)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            extra = " AND watchlist = ?" if watchlist is not None else ""
            for match in self._db.query(
                    "SELECT article_id, watchlist, watch, alias, matched, field, start, "
                    "\"end\", snippet, highlight, context, created_at FROM matches "
                    "WHERE article_id IN "
                    f"({','.join('?' * len(chunk))}){extra} ORDER BY id",
                    [*chunk, *([watchlist] if watchlist is not None else [])]):
                by_id[match.pop("article_id")]["matches"].append(match)
        return found

    @wrap_exceptions
    def count_matched_articles(self, *, watchlist: str | None = None,
                               watch: str | None = None, source: str | None = None,
                               since: datetime | None = None) -> int:
        """How many articles ``matched_articles`` gives for these filters with no limit:
        so a cut list can say "20 of 22"."""
        where, values = _match_filter(watchlist, watch, source, since)
        return int(self._db.execute(
            "SELECT count(DISTINCT m.article_id) FROM matches m "
            f"JOIN articles a ON a.id = m.article_id WHERE {where}", values).fetchone()[0])

    @wrap_exceptions
    def recent_stories(self, since: datetime, limit: int = 50) -> list[dict[str, Any]]:
        """Stories seen since ``since``, latest first, each with its ``outlets_list``
        (source names), ``urls`` and ``watches`` (``watchlist: watch`` matched in it)."""
        found = list(self._db.query(
            "SELECT id, title, first_seen_at, last_seen_at, articles, outlets, "
            "first_article_id FROM stories WHERE last_seen_at >= ? "
            "ORDER BY last_seen_at DESC, id DESC LIMIT ?", [iso(since), limit]))
        for story in found:
            members = list(self._db.query(
                "SELECT id, source, url, similarity FROM articles WHERE story_id = ? "
                "ORDER BY id", [story["id"]]))
            story["outlets_list"] = list(dict.fromkeys(m["source"] for m in members))
            story["urls"] = [m["url"] for m in members]
            story["watches"] = [f"{r[0]}: {r[1]}" for r in self._db.execute(
                "SELECT DISTINCT m.watchlist, m.watch FROM matches m JOIN articles a "
                "ON a.id = m.article_id WHERE a.story_id = ? ORDER BY 1, 2", [story["id"]])]
        return found

    @wrap_exceptions
    def search(self, query: Query, *, since: datetime | None = None,
               source: str | None = None, watchlist: str | None = None,
               order: Literal["newest", "rank", "stored"] = "newest",
               limit: int = 20) -> list[dict[str, Any]]:
        """Articles whose indexed text matches ``query``: newest published first, best
        ranked (bm25) first, or last stored first (``stored``: the index gives its rows
        in that order, so a common word costs no sort of every article holding it; the
        desk's order)."""
        match = fts.fts5(query)
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
        ordering = {"rank": "bm25(articles_fts), a.id DESC",
                    "newest": "coalesce(a.published_at, a.fetched_at) DESC, a.id DESC",
                    "stored": "articles_fts.rowid DESC"}[order]
        try:
            return list(self._db.query(
                "SELECT a.id, a.url, a.title, a.summary, a.text, a.source, a.published_at, "
                "a.fetched_at, a.story_id, a.language FROM articles_fts JOIN articles a "
                f"ON a.id = articles_fts.rowid WHERE {' AND '.join(where)} "
                f"ORDER BY {ordering} LIMIT ?", [*values, limit]))
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_ERROR:
                raise  # not the query's fault: wrap_exceptions says what it is
            raise StoreError(f"cannot search for {match!r}: {exc}") from exc

    @wrap_exceptions
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
                db.conn.executemany(fts.DELETE, fts.rows(db.execute(
                    f"SELECT id, title, summary, text FROM articles WHERE id IN ({marks})",
                    ids).fetchall()))
                db.execute(f"UPDATE articles SET summary = NULL, text = NULL, pruned_at = ? "
                           f"WHERE id IN ({marks})", [iso(now), *ids])
                pruned += len(ids)
        return pruned


def _match_filter(watchlist: str | None, watch: str | None, source: str | None,
                  since: datetime | None) -> tuple[str, list[str]]:
    """The WHERE clause over ``matches m JOIN articles a`` that the match filters make."""
    where, values = ["1"], []
    for column, value in (("m.watchlist", watchlist), ("m.watch", watch),
                          ("a.source", source)):
        if value is not None:
            where.append(f"{column} = ?")
            values.append(value)
    if since is not None:
        where.append("m.created_at >= ?")
        values.append(iso(since))
    return " AND ".join(where), values
