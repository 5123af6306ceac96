"""The web desk's records (``crawler.store.desk``) built from fetched rows, the same for
every backend (``Store.story_list``, ``story_detail``, ``watch_timeline``,
``outbox_entries``); each backend's ``reads`` module runs the SQL and hands the rows here,
as ``crawler.store.ingest`` is shared by both backends' ingest.

Rows are mappings of column names; times are the stored ``crawler.core.clock.iso`` text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from crawler.core.clock import parse_iso
from crawler.process import sentences
from crawler.process.fold import excerpt_span
from crawler.process.script import Script, direction, script
from crawler.store.desk import (
    PAGE_MAX,
    ActiveMute,
    Attempt,
    Chip,
    Copy,
    DayCount,
    Mention,
    OutboxEntry,
    OutboxPage,
    OutboxState,
    Passage,
    StoryAlert,
    StoryPage,
    StoryRow,
    Timeline,
    cut,
)

Row = Mapping[str, Any]

#: The stored statuses each outbox state is found among.
STATUSES: dict[str, str] = {"pending": "pending", "retrying": "pending", "held": "pending",
                            "muted": "muted", "dead": "dead", "digested": "digested",
                            "delivered": "delivered"}


def page_limit(limit: int) -> int:
    """``limit`` within one to ``PAGE_MAX``: a page never reads without bound."""
    return max(1, min(limit, PAGE_MAX))


def when(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


def story_page(ids: Sequence[int], rows: Sequence[StoryRow], limit: int) -> StoryPage:
    """A page of ``rows`` from ``ids`` read one past ``limit`` (to know if more remain)."""
    return StoryPage(tuple(rows), ids[limit - 1] if len(ids) > limit else None,
                     rows[0].id if rows else None)


def story_rows(ids: Sequence[int], stories: Iterable[Row],
               outlets: Iterable[tuple[int, str]],
               chips: Iterable[tuple[int, str, str]]) -> list[StoryRow]:
    """The stories of ``ids`` in that order, from their rows (with their first article's
    ``url`` and ``link``), their (story, source) pairs first seen first, and their
    (story, watchlist, watch) chips in order."""
    found: dict[int, list[str]] = {i: [] for i in ids}
    for story_id, source in outlets:
        found[story_id].append(source)
    named: dict[int, list[Chip]] = {i: [] for i in ids}
    for story_id, watchlist, watch in chips:
        named[story_id].append(Chip(watchlist, watch))
    rows = {}
    for r in stories:
        written: Script = r["script"] or "other"
        url = r["url"] or r["key"].removeprefix("story:")
        rows[r["id"]] = StoryRow(
            r["id"], r["key"], r["title"] or url, url, r["link"] or url,
            parse_iso(r["first_seen_at"]), parse_iso(r["last_seen_at"]), r["articles"],
            tuple(found[r["id"]]), written, direction(written), tuple(named[r["id"]]))
    return [rows[i] for i in ids if i in rows]


def copies(articles: Iterable[Row], mentions: Iterable[Row]) -> list[Copy]:
    """A story's copies from its article rows (oldest first) and its match rows (in
    order), each copy's mentions cut into passages."""
    by_article: dict[int, list[Row]] = {}
    for m in mentions:
        by_article.setdefault(m["article_id"], []).append(m)
    found = []
    for a in articles:
        held = by_article.get(a["id"], [])
        written = script(a["title"] or "", a["summary"] or "", a["text"] or "",
                         language=a["language"] or "")
        found.append(Copy(
            a["id"], a["source"], a["title"] or a["url"], a["url"], a["link"] or a["url"],
            when(a["published_at"]), parse_iso(a["fetched_at"]), a["language"] or "",
            written, direction(written), a["similarity"], a["pruned_at"] is not None,
            tuple(Mention(m["id"], m["watchlist"], m["watch"], m["alias"] or "",
                          m["matched"] or "", m["field"],
                          tuple(json.loads(m["context"] or "[]")),
                          parse_iso(m["created_at"])) for m in held),
            tuple(passages(a, held))))
    return found


def sent_ids(alerts: Sequence[Row]) -> list[int]:
    """The outbox rows whose delivery attempts a story's alerts show: their own, or
    their digests'."""
    return sorted({*(r["id"] for r in alerts), *(r["digest_id"] for r in alerts
                                                 if r["digest_id"])})


def story_alerts(alerts: Sequence[Row], items: Iterable[tuple[int, str, str]],
                 attempts: Iterable[Row]) -> list[StoryAlert]:
    """A story's alerts from their outbox rows (with ``state``), the (outbox id,
    watchlist, watch) items they named, and the attempts of ``sent_ids``."""
    named: dict[int, list[Chip]] = {}
    for outbox_id, watchlist, watch in items:
        named.setdefault(outbox_id, []).append(Chip(watchlist, watch))
    tried: dict[int, list[Attempt]] = {}
    for r in attempts:
        tried.setdefault(r["outbox_id"], []).append(Attempt(
            parse_iso(r["attempted_at"]), r["outcome"], r["status_code"], r["error"],
            r["duration_ms"]))
    return [StoryAlert(
        r["id"], r["article_id"], r["channel"], r["watchlist"], r["status"], r["state"],
        r["attempts"], parse_iso(r["created_at"]), when(r["delivered_at"]),
        r["last_error"], r["digest_id"], r["mute_id"], tuple(named.get(r["id"], [])),
        tuple(tried.get(r["digest_id"] or r["id"], [])))
        for r in alerts]


def active_mutes(rows: Iterable[Row]) -> list[ActiveMute]:
    return [ActiveMute(r["id"], r["kind"], r["target"], r["watchlist"], r["created_by"],
                       parse_iso(r["created_at"]), when(r["until"])) for r in rows]


def timeline_days(now: datetime, days: int, zone: str) -> tuple[datetime, dict[date, int]]:
    """When a timeline of ``days`` days up to ``now`` in ``zone`` starts, and its days
    (oldest first), each counting none yet."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    first = today - timedelta(days=max(1, days) - 1)
    return (datetime.combine(first, time(), tz),
            {first + timedelta(days=n): 0 for n in range((today - first).days + 1)})


def timeline(watch: str, watchlist: str | None, zone: str, counts: dict[date, int],
             stored: Iterable[str], stories: Sequence[StoryRow]) -> Timeline:
    """A timeline from ``timeline_days``'s ``counts`` and when each article was stored
    (the first of its matches), counted on that day in ``zone``."""
    tz = ZoneInfo(zone)
    for at in stored:
        day = parse_iso(at).astimezone(tz).date()
        if day in counts:
            counts[day] += 1
    return Timeline(watch, watchlist, tuple(DayCount(d, n) for d, n in counts.items()),
                    tuple(stories))


def outbox_statuses(wanted: Iterable[OutboxState]) -> list[str]:
    """The stored statuses the rows in ``wanted`` states are among."""
    return sorted({STATUSES[s] for s in wanted})


def outbox_page(found: Sequence[Row], limit: int) -> OutboxPage:
    """A page of ``found`` outbox rows (with ``state``, ``story_id``, ``title`` and
    ``url``), read one past ``limit``."""
    rows = tuple(OutboxEntry(
        r["id"], r["kind"], r["channel"], r["watchlist"], r["state"], r["attempts"],
        parse_iso(r["created_at"]), parse_iso(r["next_attempt_at"]), r["last_error"],
        r["story_id"], r["title"] or r["subject"], r["url"], r["digest_id"],
        r["mute_id"], r["state"] in ("dead", "pending", "retrying", "held")
        and r["lease_expires_at"] is None) for r in found[:limit])
    return OutboxPage(rows, rows[-1].id if len(found) > limit else None)


def passages(article: Row, found: Sequence[Row]) -> list[Passage]:
    """Each sentence of the copy holding mentions, once (a feed's text is often its
    summary), every mention in it marked: cut from the stored field where it is kept
    (``sentences.snippets``, as alerts cut theirs), else from the snippet stored with the
    match."""
    shown: dict[str, tuple[str, list[str], list[tuple[int, int]]]] = {}
    for m in found:
        text = article.get(m["field"]) or ""
        start, end = m["start"], m["end"]
        parts = sentences.snippets(text, [(start, end)]) \
            if isinstance(start, int) and isinstance(end, int) else []
        if parts and text[start:end]:
            snippet = parts[0]
        else:  # pruned: the snippet the match kept, its mention found in it
            span = excerpt_span(m["snippet"] or "", m["highlight"] or "")
            snippet = sentences.Snippet(m["snippet"] or "", (span,) if span else ())
        if not snippet.text:
            continue
        _, watches, marks = shown.setdefault(snippet.text, (m["field"], [], []))
        watches.append(m["watch"])
        marks.extend(snippet.marks)
    return [cut(field, watches, sentences.Snippet(text, tuple(marks)))
            for text, (field, watches, marks) in shown.items()]
