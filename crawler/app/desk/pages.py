"""The desk's pages: sign in and out, the stories list (search, timelines, sources and
the outbox: ``browse``).

Every page needs a session (else a redirect to /login?next=…); every state change is a
POST carrying the CSRF token (else 403). ``acting_user`` names who did something, for
the ``created_by`` of the mutes and rules the desk makes. Pages extend ``base.html``.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from crawler.app.desk import auth, browse, stories, watchlists
from crawler.app.desk.host import Host
from crawler.app.desk.kit import Kit, Page
from crawler.config import HttpSettings
from crawler.core.clock import parse_iso

TEMPLATES = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined))
#: what the nav links to; a page of a later round adds its entry here
NAV = [("/", "Stories"), ("/search", "Search"), ("/sources", "Sources"),
       ("/outbox", "Outbox"), ("/watchlists", "Watchlists"), ("/mutes", "Mutes")]


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a request."""

    name: str
    csrf: str


def acting_user(request: Request) -> str:
    """Who is acting, for the ``created_by`` of what the desk records."""
    viewer: Viewer = request.state.viewer
    return viewer.name


def same_site(path: str) -> Response:
    """The page again, from this site: a link followed from elsewhere (an alert email)
    comes without the SameSite=Strict session cookie, which this same-site reload (no
    script: a meta refresh, and a link) sends; without a session it then goes to login."""
    target = html.escape(path, quote=True)
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0; url={target}"><title>newswatch desk'
        f'</title></head><body><p><a href="{target}">Continue to the desk</a></p>'
        f"</body></html>")


def safe_next(value: str | None) -> str:
    """A path on this site to go back to after login; anything else is the home page."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(value)
    return "/" if parts.scheme or parts.netloc or "\\" in value else value


def routes(host: Host, http: HttpSettings) -> list[BaseRoute]:
    async def viewer(request: Request) -> Viewer | None:
        session_id = request.cookies.get(auth.SESSION_COOKIE)
        if not session_id:
            return None
        found = await host.store.call(host.store.sync.session, auth.session_hash(session_id),
                                      host.clock.now(), auth.IDLE)
        return None if found is None else Viewer(found.user, found.csrf)

    def page(handler: Page) -> Page:
        """A page for signed-in users; others are sent to the login page and back (but
        htmx's requests, which would swap the login page into the page, get 401)."""
        @functools.wraps(handler)
        async def checked(request: Request) -> Response:
            found = await viewer(request)
            if found is None and request.headers.get("hx-request"):
                return PlainTextResponse("the session ended: reload the page\n", 401)
            if found is None:
                back = request.url.path + (f"?{request.url.query}" if request.url.query
                                           else "")
                if request.headers.get("sec-fetch-site") == "cross-site":
                    return same_site(safe_next(back))
                return RedirectResponse(f"/login?next={quote(back, safe='')}", 303)
            request.state.viewer = found
            return await handler(request)
        return checked

    def action(handler: Page) -> Page:
        """A state change: a POST by a signed-in user carrying their CSRF token, else 403."""
        @functools.wraps(handler)
        async def checked(request: Request) -> Response:
            found = await viewer(request)
            form = await request.form()
            token = form.get("csrf")
            if found is None or not isinstance(token, str) or not auth.same(token,
                                                                             found.csrf):
                return PlainTextResponse("forbidden: missing or wrong CSRF token, or no "
                                         "session\n", 403)
            request.state.viewer = found
            return await handler(request)
        return checked

    def render(request: Request, template: str, status: int = 200,
               **context: Any) -> Response:
        found: Viewer | None = getattr(request.state, "viewer", None)
        return TEMPLATES.TemplateResponse(request, template, {
            "viewer": found, "csrf": found.csrf if found else "", "nav": NAV,
            "here": request.url.path, "q": request.query_params.get("q", ""), **context},
            status_code=status)

    def when(moment: datetime | str | None) -> str:
        """A stored time in the configured zone, as pages show it."""
        if not moment:
            return ""
        zone = ZoneInfo(host.config().settings.timezone)
        found = parse_iso(moment) if isinstance(moment, str) else moment
        return found.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    async def login_form(request: Request, status: int = 200, error: str = "") -> Response:
        nonce = auth.new_token()
        secret = await host.secret(auth.LOGIN_SECRET)
        response = render(request, "login.html", status, error=error,
                          login_csrf=auth.login_token(secret, nonce),
                          next=safe_next(request.query_params.get("next")))
        response.set_cookie(auth.LOGIN_COOKIE, nonce, max_age=3600, path="/login",
                            httponly=True, samesite="strict",
                            secure=http.secure_cookies)
        return response

    async def login_page(request: Request) -> Response:
        return await login_form(request)

    async def login(request: Request) -> Response:
        form = await request.form()
        nonce = request.cookies.get(auth.LOGIN_COOKIE, "")
        token = form.get("csrf")
        secret = await host.secret(auth.LOGIN_SECRET)
        if not nonce or not isinstance(token, str) or \
                not auth.same(token, auth.login_token(secret, nonce)):
            return PlainTextResponse("forbidden: missing or wrong CSRF token (reload the "
                                     "login page)\n", 403)
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        address = request.client.host if request.client else ""
        now = host.clock.now()
        sync = host.store.sync
        wait = await host.store.call(auth.locked_minutes, sync, name, address, now)
        if wait:
            return await login_form(
                request, 429, f"Too many failed attempts: try again in {wait} minute"
                f"{'s' if wait != 1 else ''}.")
        stored = await host.store.call(sync.password_hash, name)
        if not await run_in_threadpool(auth.verify_password, stored, password):
            await host.store.call(sync.record_login_failure, name, address, now,
                                  auth.FAILURE_MEMORY)
            return await login_form(request, 401, "Wrong username or password.")
        opened = await host.store.call(auth.open_session, sync, name, now)
        if opened is None:
            return await login_form(request, 401, "Wrong username or password.")
        old = request.cookies.get(auth.SESSION_COOKIE)
        if old:  # whatever session the browser had ends: the new id replaces it
            await host.store.call(sync.end_session, auth.session_hash(old))
        response = RedirectResponse(safe_next(str(form.get("next", ""))), 303)
        response.set_cookie(auth.SESSION_COOKIE, opened.session_id, path="/", httponly=True,
                            samesite="strict", secure=http.secure_cookies)
        response.delete_cookie(auth.LOGIN_COOKIE, path="/login")
        return response

    @action
    async def logout(request: Request) -> Response:
        session_id = request.cookies.get(auth.SESSION_COOKIE, "")
        await host.store.call(host.store.sync.end_session, auth.session_hash(session_id))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True,
                               samesite="strict", secure=http.secure_cookies)
        return response

    kit = Kit(page, action, render, when, acting_user, http.secure_cookies)
    return [*stories.routes(host, kit),
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            *browse.routes(host, kit),
            *watchlists.routes(host, kit)]
