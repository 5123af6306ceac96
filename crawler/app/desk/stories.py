"""The desk's stories and the feedback that tunes: the home page (filters, cursor paging,
new rows by polling), a story's page, Not relevant (propose, check an edited rule,
apply), the mutes of a story, a watch item or a source, and the Mutes page.

Every change goes through ``crawler.app.tuning``, the CLI's own code, on the store's
thread, with the signed-in user as ``created_by``. Every change is a POST checked by
``Kit.action`` (CSRF) that redirects back (POST, redirect, GET) with a one-shot
confirmation in a cookie; the proposal itself has no effect, so it is a GET page.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from crawler.app import tuning
from crawler.app.desk.host import Host
from crawler.app.desk.kit import Kit
from crawler.core.errors import StoreError
from crawler.process.script import direction, script
from crawler.store import LearnedRule
from crawler.store.desk import PAGE_MAX, Copy, Mention, StoryDetail, StoryFilter, StoryRow
from crawler.store.records import RuleKind

log = logging.getLogger(__name__)

FLASH_COOKIE = "newswatch_flash"
#: the time filter's choices (``custom``: since the date given)
SPANS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
#: how long a watch item or a source can be muted from the desk
MUTE_FOR = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
MUTE_LABELS = {"24h": "24 hours", "7d": "7 days"}
SCRIPTS = {"latin": "Latin", "arabic": "Arabic"}
RULE_KINDS: dict[str, RuleKind] = {"exclude": "exclude", "none_of": "none_of"}
PER_PAGE = 50
#: a filter value longer than this is no name of ours
LONGEST = 200
_LANG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
_BACK = re.compile(r"^/(?:mutes|stories/\d+)$")
_HTTP = re.compile(r"(?i)^https?://[^\s\"'<>`]+$")


@dataclass(frozen=True)
class Filters:
    """The stories list's GET form, as given (empty: any)."""

    watchlist: str = ""
    watch: str = ""
    source: str = ""
    time: str = ""
    since: str = ""
    script: str = ""

    @classmethod
    def read(cls, request: Request) -> Filters:
        given = {k: request.query_params.get(k, "").strip()[:LONGEST]
                 for k in ("watchlist", "watch", "source", "time", "since", "script")}
        if given["time"] not in (*SPANS, "custom"):
            given["time"] = ""
        if given["script"] not in SCRIPTS:
            given["script"] = ""
        if given["since"] and not given["time"]:
            given["time"] = "custom"
        return cls(**given)

    def where(self, now: datetime, zone: ZoneInfo) -> tuple[StoryFilter, str]:
        """The store's filter, and a problem with the form to show (a bad date)."""
        since: datetime | None = None
        problem = ""
        if self.time in SPANS:
            since = now - SPANS[self.time]
        elif self.time == "custom" and self.since:
            try:
                day = datetime.strptime(self.since, "%Y-%m-%d").date()
            except ValueError:
                problem = f"Since: {self.since!r} is not a date (YYYY-MM-DD)."
            else:
                since = datetime.combine(day, time(), zone)
        return StoryFilter(self.watchlist or None, self.watch or None, self.source or None,
                           since, None, "arabic" if self.script == "arabic"
                           else "latin" if self.script == "latin" else None), problem

    def query(self, **extra: object) -> str:
        """The form as a query string (empty values left out), with ``extra``."""
        values = {**{k: v for k, v in vars(self).items() if v}, **extra}
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def http_link(url: str) -> str | None:
    """A remote link to put in an ``href``: http(s) only, else none."""
    return url if _HTTP.match(url) else None


def lang_of(language: str) -> str | None:
    """The feed's language tag for a ``lang`` attribute, when it looks like one."""
    return language if _LANG.match(language or "") else None


def text_dir(text: str, language: str = "") -> str:
    """``rtl`` for a block in the Arabic script (Dari, Pashto), else ``auto``."""
    return "rtl" if direction(script(text, language=language)) == "rtl" else "auto"


def row_dir(row: StoryRow) -> str:
    return "rtl" if row.direction == "rtl" else "auto"


def find_mention(detail: StoryDetail, mention_id: int) -> tuple[Copy, Mention] | None:
    for copy in detail.copies:
        for mention in copy.mentions:
            if mention.id == mention_id:
                return copy, mention
    return None


def matched_items(copy: Copy) -> list[dict[str, Any]]:
    """The copy's mentions by watch item (in each watchlist): one Not relevant each, as
    feedback is about an article's match of an item (``match`` is its first mention)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for m in copy.mentions:
        item = found.setdefault((m.watchlist, m.watch), {
            "match": m.id, "watchlist": m.watchlist, "watch": m.watch, "matched": [],
            "fields": []})
        for key, value in (("matched", m.matched), ("fields", m.field)):
            if value and value not in item[key]:
                item[key].append(value)
    return list(found.values())


def _int(value: object) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 19 else None


def routes(host: Host, kit: Kit) -> list[BaseRoute]:
    """The routes of the stories, the story pages, feedback and mutes."""
    store = host.store

    def zone() -> ZoneInfo:
        return ZoneInfo(host.config().settings.timezone)

    def show(request: Request, template: str, status: int = 200,
             **context: Any) -> Response:
        """``kit.render`` with the confirmation a redirect left (shown once)."""
        flash = unquote(request.cookies.get(FLASH_COOKIE, ""))[:2000]
        kind, _, message = flash.partition(":")
        response: Response = kit.render(request, template, status,
                                        flash=message, flash_error=kind == "error",
                                        **context)
        if flash:
            response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="strict",
                                   secure=kit.secure)
        return response

    def back(path: str, message: str, *, error: bool = False) -> Response:
        """Redirect (303) after a change, with a one-shot confirmation."""
        response = RedirectResponse(path, 303)
        response.set_cookie(FLASH_COOKIE, quote(f"{'error' if error else 'ok'}:{message}"),
                            max_age=120, path="/", httponly=True, samesite="strict",
                            secure=kit.secure)
        return response

    def choices() -> dict[str, list[str]]:
        config = host.config()
        return {"watchlists": [w.name for w in config.watchlists],
                "watches": sorted({i.name for w in config.watchlists for i in w.watch},
                                  key=str.casefold),
                "sources": sorted((s.name for s in config.sources), key=str.casefold)}

    def rows_view(rows: tuple[StoryRow, ...]) -> list[dict[str, Any]]:
        return [{"row": r, "dir": row_dir(r), "first_seen": kit.when(r.first_seen_at)}
                for r in rows]

    @kit.page
    async def home(request: Request) -> Response:
        filters = Filters.read(request)
        where, problem = filters.where(host.clock.now(), zone())
        before = _int(request.query_params.get("before"))
        page = await store.call(store.sync.story_list, where, before=before,
                                limit=PER_PAGE)
        poll = None
        if before is None:  # the first page looks for newer stories
            poll = "/stories/new?" + filters.query(after=page.newest or 0)
        return show(request, "stories.html", filters=filters, problem=problem,
                    stories=rows_view(page.rows), choices=choices(), spans=SPANS,
                    scripts=SCRIPTS, poll=poll, paged=before is not None,
                    older="/?" + filters.query(before=page.older) if page.older else None)

    @kit.page
    async def new_stories(request: Request) -> Response:
        """The rows newer than ``after`` for the home page's poll (htmx): nothing new is
        204 (nothing swapped); else the rows, the poll's next cursor, the announcement."""
        filters = Filters.read(request)
        where, _ = filters.where(host.clock.now(), zone())
        after = _int(request.query_params.get("after")) or 0
        page = await store.call(store.sync.story_list, where, after=after, limit=PAGE_MAX)
        if not page.rows:
            return Response(status_code=204)
        # newest first, as the list shows them: they go on top in that order
        count = len(page.rows)  # (kit.render: a poll leaves a pending confirmation be)
        return kit.render(request, "stories_new.html", stories=rows_view(page.rows),
                          poll="/stories/new?" + filters.query(after=page.newest),
                          announce="1 new story" if count == 1
                          else f"{count} new stories")

    async def detail_of(request: Request) -> StoryDetail | None:
        story_id = _int(request.path_params["id"])
        if story_id is None:
            return None
        return await store.call(store.sync.story_detail, story_id, host.clock.now())

    def copies_view(detail: StoryDetail) -> list[dict[str, Any]]:
        return [{"it": c, "href": http_link(c.link) or http_link(c.url),
                 "lang": lang_of(c.language),
                 "dir": "rtl" if c.direction == "rtl" else "auto",
                 "published": kit.when(c.published_at or c.fetched_at),
                 "passages": [{"p": p, "dir": text_dir(p.text, c.language)}
                              for p in c.passages],
                 "matches": matched_items(c)}
                for c in detail.copies]

    def watch_items(detail: StoryDetail) -> list[dict[str, str]]:
        return [{"watchlist": c.watchlist, "watch": c.watch} for c in detail.story.chips]

    @kit.page
    async def story(request: Request) -> Response:
        detail = await detail_of(request)
        if detail is None:
            return PlainTextResponse("no such story\n", 404)
        first = detail.copies[0] if detail.copies else None
        return show(request, "story.html", d=detail, s=detail.story,
                    headline_dir=row_dir(detail.story),
                    headline_lang=lang_of(first.language) if first else None,
                    first_seen=kit.when(detail.story.first_seen_at),
                    copies=copies_view(detail), items=watch_items(detail),
                    mute_for=MUTE_LABELS, when=kit.when,
                    story_muted=any(m.kind == "story" for m in detail.mutes),
                    wanted=request.query_params.get("watch", ""))

    def rule_of(request: Request, form: Any, mention: Mention, copy: Copy
                ) -> LearnedRule | None:
        kind = RULE_KINDS.get(str(form.get("kind", "")))
        term = " ".join(str(form.get("term", "")).split())[:LONGEST]
        if kind is None or not term:
            return None
        return LearnedRule(mention.watchlist, mention.watch, kind, term,
                           kit.user(request), host.clock.now(), copy.url)

    @kit.page
    async def not_relevant(request: Request) -> Response:
        """The rule proposed for "this match is not relevant" and what it would have
        removed; with ``kind`` and ``term`` given, the backtest of that rule instead."""
        detail = await detail_of(request)
        found = detail and find_mention(detail, _int(request.query_params.get("match")) or 0)
        if detail is None or not found:
            return PlainTextResponse("no such story or match\n", 404)
        copy, mention = found
        config, now = host.config(), host.clock.now()
        edited = rule_of(request, request.query_params, mention, copy)
        proposal = effect = None
        error = ""
        try:
            if edited is None:
                proposal = await store.call(tuning.propose, config, store.sync, copy.url,
                                            mention.watch, kit.user(request), now,
                                            watchlist=mention.watchlist)
                effect = proposal.rule or (proposal.tried[0] if proposal.tried else None)
            else:
                effect = await store.call(tuning.evaluate, config, store.sync, edited,
                                          copy.url, now)
        except (tuning.TuningError, StoreError) as exc:
            error = str(exc)
        passages = [p for p in copy.passages if mention.watch in p.watches]
        return show(request, "not_relevant.html", s=detail.story, copy=copy,
                    mention=mention, proposal=proposal, effect=effect, error=error,
                    passages=[{"p": p, "dir": text_dir(p.text, copy.language)}
                              for p in passages],
                    edited=edited is not None, since=(now - tuning.BACKTEST_SPAN).date(),
                    safe_share=tuning.SAFE_SHARE,
                    copy_dir="rtl" if copy.direction == "rtl" else "auto",
                    copy_lang=lang_of(copy.language))

    @kit.action
    async def apply_rule(request: Request) -> Response:
        detail = await detail_of(request)
        form = await request.form()
        found = detail and find_mention(detail, _int(form.get("match")) or 0)
        if detail is None or not found:
            return PlainTextResponse("no such story or match\n", 404)
        copy, mention = found
        here = f"/stories/{detail.story.id}"
        rule = rule_of(request, form, mention, copy)
        if rule is None:
            return back(here, "Give the rule a kind and a term.", error=True)
        config = host.config()

        def learn() -> tuple[int, tuning.Effect]:
            effect = tuning.evaluate(config, store.sync, rule, copy.url, rule.created_at)
            return tuning.apply(store.sync, effect), effect

        try:
            rule_id, effect = await store.call(learn)
        except (tuning.TuningError, StoreError) as exc:
            return back(here, f"Not applied: {exc}", error=True)
        log.info("learned rule %d (%s %r for %s: %s) applied by %s on the desk", rule_id,
                 rule.kind, rule.term, rule.watchlist, rule.watch, rule.created_by)
        return back(here, f"Rule {rule_id} applied: {rule.kind} “{rule.term}” for "
                          f"{rule.watch} ({rule.watchlist}). It removed this match and "
                          f"{len(effect.removed)} of {effect.others} other stored "
                          "match(es); from the next article on it holds.")

    @kit.action
    async def mute_story(request: Request) -> Response:
        detail = await detail_of(request)
        if detail is None:
            return PlainTextResponse("no such story\n", 404)
        here = f"/stories/{detail.story.id}"
        try:
            made = await store.call(tuning.mute_story, store.sync, detail.story.url,
                                    kit.user(request), host.clock.now())
        except (tuning.TuningError, StoreError) as exc:
            return back(here, f"Not muted: {exc}", error=True)
        return back(here, f"Story muted (mute {made.id}): no alert or follow-up for it "
                          f"on any channel until undone; {made.alerts_muted} waiting "
                          "alert(s) will not be sent.")

    @kit.action
    async def mute_item(request: Request) -> Response:
        """Mute a watch item (``watch``, ``watchlist``) or a source (``source``) of this
        story for 24 hours or 7 days."""
        detail = await detail_of(request)
        if detail is None:
            return PlainTextResponse("no such story\n", 404)
        here = f"/stories/{detail.story.id}"
        form = await request.form()
        span = str(form.get("for", ""))
        if span not in MUTE_FOR:
            return back(here, "Mute for 24 hours or 7 days.", error=True)
        watch, source = str(form.get("watch", "")), str(form.get("source", ""))
        watchlist = str(form.get("watchlist", "")) or None
        config, by, now = host.config(), kit.user(request), host.clock.now()
        try:
            if watch:
                made = await store.call(tuning.mute_watch, config, store.sync, watch, by,
                                        now, MUTE_FOR[span], watchlist, detail.story.url)
                what = f"{watch}" + (f" ({watchlist})" if watchlist else "")
            elif source:
                made = await store.call(tuning.mute_source, config, store.sync, source, by,
                                        now, MUTE_FOR[span], detail.story.url)
                what = f"source {source}"
            else:
                return back(here, "Say what to mute.", error=True)
        except (tuning.TuningError, StoreError) as exc:
            return back(here, f"Not muted: {exc}", error=True)
        return back(here, f"Muted {what} for {MUTE_LABELS[span]} (mute {made.id}); "
                          f"{made.alerts_muted} waiting alert(s) will not be sent.")

    @kit.page
    async def mutes(request: Request) -> Response:
        now, config = host.clock.now(), host.config()

        def read() -> tuple[list[dict[str, Any]], list[tuple[LearnedRule, str]]]:
            return (store.sync.mutes(now),
                    tuning.rule_states(config, store.sync.rules()))

        found, rules = await store.call(read)
        for m in found:
            m["since"] = kit.when(m["created_at"])
            m["until_shown"] = kit.when(m["until"]) if m["until"] else "until undone"
        return show(request, "mutes.html", mutes=found,
                    rules=[{"rule": r, "state": s, "when": kit.when(r.created_at)}
                           for r, s in rules])

    @kit.action
    async def unmute(request: Request) -> Response:
        form = await request.form()
        to = str(form.get("back", "/mutes"))
        to = to if _BACK.match(to) else "/mutes"
        mute_id = _int(request.path_params["id"]) or 0
        done = await store.call(tuning.unmute, store.sync, mute_id, kit.user(request),
                                host.clock.now())
        if not done:
            return back(to, f"Mute {mute_id} is not in force (expired or undone "
                            "already).", error=True)
        return back(to, f"Mute {mute_id} undone: alerts resume from now on (those it "
                        "muted stay unsent).")

    @kit.action
    async def remove_rule(request: Request) -> Response:
        rule_id = _int(request.path_params["id"]) or 0
        done = await store.call(store.sync.remove_rule, rule_id)
        if not done:
            return back("/mutes", f"No learned rule {rule_id}.", error=True)
        log.info("learned rule %d removed by %s on the desk", rule_id, kit.user(request))
        return back("/mutes", f"Learned rule {rule_id} removed: from the next article "
                              "on, the watch item matches as watchlists.yaml says.")

    return [Route("/", home, methods=["GET"]),
            Route("/stories/new", new_stories, methods=["GET"]),
            Route("/stories/{id}", story, methods=["GET"]),
            Route("/stories/{id}/not-relevant", not_relevant, methods=["GET"]),
            Route("/stories/{id}/not-relevant", apply_rule, methods=["POST"]),
            Route("/stories/{id}/mute", mute_story, methods=["POST"]),
            Route("/stories/{id}/mute-item", mute_item, methods=["POST"]),
            Route("/mutes", mutes, methods=["GET"]),
            Route("/mutes/{id}/undo", unmute, methods=["POST"]),
            Route("/rules/{id}/remove", remove_rule, methods=["POST"])]

