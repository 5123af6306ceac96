"""The desk served for tests: the real app on uvicorn on 127.0.0.1 (a thread with its own
event loop), a project with users and a stored story, and a signed-in browser-like client."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
from argon2 import PasswordHasher

from crawler.app.desk import app as desk_app
from crawler.app.desk import server as desk_server
from crawler.app.desk.host import Answer, Host, json_answer
from crawler.config import Config, load_config
from crawler.process.match import Matcher
from crawler.store import SQLiteStore, ThreadedStore
from tests.contract.conftest import TEXT, article, match, new, no_alerts, source
from tests.helpers import Project

PASSWORD = "correct horse battery"
HEADLINE = "Ahmad Massoud meets elders in Panjshir"
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
#: argon2id at a low cost for the test users (a hash says its own cost when verified):
#: the default takes half a second a login on a loaded two-core machine
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@contextmanager
def served(config: Config, *, desk: bool = True,
           metrics: bool = True) -> Iterator[str]:
    """The listener's app for ``config`` (its own store on the config's database) on a
    free port; yields its base URL."""
    ready: list[str] = []
    stop = threading.Event()
    failed: list[BaseException] = []

    async def main() -> None:
        store = ThreadedStore(SQLiteStore(config.database_path))

        async def healthz() -> Answer:
            return json_answer(200, {"status": "ok"})

        async def scrape() -> Answer:
            return 200, "text/plain", "newswatch_outbox_pending 0\n"

        host = Host(config=lambda: config, store=store, clock=_Clock(),
                    healthz=healthz, metrics=scrape if metrics else None)
        serving = await desk_server.serve(desk_app.build(host, desk=desk), "127.0.0.1", 0)
        ready.append(f"http://127.0.0.1:{serving.port}")
        while not stop.is_set():
            await asyncio.sleep(0.02)
        await serving.stop()
        store.shutdown()
        store.sync.close()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    for _ in range(1000):
        if ready or failed:
            break
        thread.join(0.01)
    if failed:
        raise failed[0]
    assert ready, "the app did not start"
    try:
        yield ready[0]
    finally:
        stop.set()
        thread.join(30)


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Desk:
    project: Project
    config: Config

    def store(self) -> SQLiteStore:
        return SQLiteStore(self.config.database_path)


def desk_users(project: Project, **http: Any) -> Desk:
    """The project as it is (its sources, watchlists and channels) with the desk on and
    users ana and bo."""
    project.settings["http"] = {"listen": "127.0.0.1:9108", "desk": True, **http}
    project.settings["timezone"] = "Asia/Kabul"
    project.write()
    config = load_config(project.config_dir)
    store = SQLiteStore(config.database_path)
    try:
        for name in ("ana", "bo"):
            store.add_user(name, FAST.hash(PASSWORD), NOW)
    finally:
        store.close()
    return Desk(project, config)


def make_desk(project: Project, **http: Any) -> Desk:
    """A project with the desk on, users ana and bo, and one stored story."""
    project.watchlists = [{**w, "channels": []} for w in project.watchlists]
    desk = desk_users(project, **http)
    config = desk.config
    store = SQLiteStore(config.database_path)
    try:
        store.sync_sources([source("Kabul")], NOW)
        store.add_articles([new(article("Kabul", 1, title=HEADLINE), [match()])],
                           datetime.now(UTC), "v1", no_alerts)
    finally:
        store.close()
    return Desk(project, config)


def csrf(page: httpx.Response | str) -> str:
    text = page if isinstance(page, str) else page.text
    found = _CSRF.search(text)
    assert found, text
    return found.group(1)


def sign_in(client: httpx.Client, user: str = "ana", password: str = PASSWORD,
            **headers: str) -> httpx.Response:
    """Load the login form (its CSRF cookie and token), then post it."""
    form = client.get("/login", headers=headers)
    return client.post("/login", headers=headers, data={
        "csrf": csrf(form), "username": user, "password": password, "next": "/"})


def client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, follow_redirects=False, trust_env=False, timeout=30)


DARI_TITLE = "احمد مسعود با بزرگان پنجشیر دیدار کرد"
DARI_TEXT = ("احمد مسعود روز سه‌شنبه با بزرگان پنجشیر دیدار کرد و درباره کاروان کمک‌های "
             "زمستانی گفت‌وگو کرد.")
NOOR_TITLE = "Atta Mohammad Noor speaks in Mazar"
HOSTILE_TITLE = "<script>alert('x')</script> Massoud <b>bold</b>"
WATCHLISTS = [{"name": "afghan-opposition", "channels": [], "watch": [
    {"name": "Ahmad Massoud", "aliases": ["Ahmad Masoud", "Massoud", "احمد مسعود"],
     "exclude": ["Ahmad Shah Massoud"]},
    {"name": "Atta Mohammad Noor", "aliases": ["Atta Muhammad Nur"]}]}]


def store_story(desk: Desk, outlet: str, n: int, title: str, text: str,
                language: str = "") -> int:
    """One article through the store, matched by the desk's own watchlists; its story's
    id."""
    art = replace(article(outlet, n, text=text, title=title), language=language)
    matches = Matcher(desk.config.watchlists).match(art)
    assert matches, title
    store = desk.store()
    try:
        store.sync_sources([source(s) for s in ("Kabul", "Tolo")], NOW)
        store.add_articles([new(art, matches)], datetime.now(UTC), "v1", no_alerts)
        found = store.find_article(art.url)
    finally:
        store.close()
    assert found is not None and found.story_id is not None
    return found.story_id


def newsroom(project: Project) -> tuple[Desk, dict[str, int]]:
    """The desk with four stories: English, Dari (``lang`` fa), one naming Noor, and one
    with a hostile headline; their ids by name."""
    project.watchlists = WATCHLISTS
    project.sources = [{"name": s, "feed": f"https://{s.lower()}.example/feed"}
                       for s in ("Kabul", "Tolo")]
    desk = desk_users(project)
    ids = {"english": store_story(desk, "Kabul", 1, HEADLINE, TEXT),
           "dari": store_story(desk, "Tolo", 2, DARI_TITLE, DARI_TEXT, "fa"),
           "noor": store_story(desk, "Kabul", 3, NOOR_TITLE,
                               "Atta Mohammad Noor spoke to traders in Mazar about the "
                               "railway and the border crossing at Hairatan."),
           "hostile": store_story(desk, "Tolo", 4, HOSTILE_TITLE,
                                  "Massoud <script>alert('y')</script> was quoted "
                                  "by the council in a statement on trade and wheat.")}
    return desk, ids
