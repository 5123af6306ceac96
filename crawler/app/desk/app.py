"""The one Starlette app the listener serves: /healthz, /metrics, the Atom feeds and,
with ``http.desk: true``, the triage desk (``pages``). Without the desk, ``/`` and every
desk path answer 404, as the listener did before it.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crawler.app import atom
from crawler.app.desk import access, pages
from crawler.app.desk.host import Host, answer
from crawler.config import AtomSettings, HttpSettings

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()),
           (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"),
           (b"x-frame-options", b"DENY")]
STATIC = Path(__file__).parent / "static"
#: the largest request body taken (the desk's forms are small); a chunked body, of no
#: length said, is refused, so none is read unbounded
MAX_BODY = 64 * 1024


class SecurityHeaders:
    """The security headers on every response, and ``Cache-Control: no-store`` on all
    but the static files (pages name what was watched; they must not be kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cache = b"public, max-age=3600" if scope["path"].startswith("/static/") \
            else b"no-store"
        if scope["method"] == "POST" and not _small(scope):
            response = PlainTextResponse(f"a request body of at most {MAX_BODY} bytes, "
                                         "with its Content-Length\n", 413)
            await response(scope, receive, lambda m: self._send(m, send, cache))
            return

        async def sending(message: Message) -> None:
            await self._send(message, send, cache)

        await self.app(scope, receive, sending)

    @staticmethod
    async def _send(message: Message, send: Send, cache: bytes) -> None:
        if message["type"] == "http.response.start":
            names = {n.lower() for n, _ in message.get("headers", [])}
            message["headers"] = [*message.get("headers", []),
                                  *[(n, v) for n, v in HEADERS if n not in names],
                                  *([] if b"cache-control" in names
                                    else [(b"cache-control", cache)])]
        await send(message)


def _small(scope: Scope) -> bool:
    """Whether the request's body is at most ``MAX_BODY`` by its Content-Length (uvicorn
    reads no more than the length said); a chunked body, of no known length, is not."""
    headers = dict(scope["headers"])
    if b"content-length" in headers:
        length = headers[b"content-length"]
        return length.isdigit() and int(length) <= MAX_BODY
    return b"transfer-encoding" not in headers


def build(host: Host, *, desk: bool) -> Starlette:
    """The app; ``desk`` adds the desk's pages. ``http.*`` is read here, once: it changes
    at the next restart."""
    http = host.config().settings.http or HttpSettings()

    async def healthz(request: Request) -> Response:
        return answer(await host.healthz())

    async def metrics(request: Request) -> Response:
        if host.metrics is None:
            return PlainTextResponse("not found\n", 404)
        token = http.metrics_token
        if not access.is_loopback(request) and not access.bearer_ok(request, token):
            if not token:
                return PlainTextResponse("/metrics is open to loopback only: set "
                                         "http.metrics_token to scrape it from elsewhere\n",
                                         403)
            return PlainTextResponse("a bearer token is needed\n", 401,
                                     headers={"WWW-Authenticate": "Bearer"})
        return answer(await host.metrics())

    async def feed(request: Request) -> Response:
        name = request.path_params["name"]
        found = next((w.name for w in host.config().watchlists
                      if atom.file_name(w.name) == name), None)
        if found is None:
            return PlainTextResponse("not found\n", 404)
        if not access.is_loopback(request):
            secret = await host.secret(access.FEED_SECRET)
            if not access.feed_token_ok(secret, found, request.query_params.get("token", "")):
                return PlainTextResponse("this feed needs its ?token= from anywhere but "
                                         "loopback (newswatch feeds lists them)\n", 403)
        settings = host.config().settings.atom or AtomSettings()
        entries = await host.store.matched_articles(watchlist=found, limit=settings.entries)
        return Response(atom.render(found, entries, host.clock.now()),
                        media_type="application/atom+xml; charset=utf-8")

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/feeds/{name}.atom", feed, methods=["GET"]),
    ]
    if desk:
        routes += [*pages.routes(host, http),
                   Mount("/static", StaticFiles(directory=STATIC), name="static")]

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("not found\n", 404)

    app = Starlette(routes=routes, exception_handlers={404: not_found})
    app.add_middleware(SecurityHeaders)
    return app

