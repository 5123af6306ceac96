"""A reload that lands between a source's claim and its poll, driven in process."""

from __future__ import annotations

import asyncio
import logging

import pytest

from crawler.app.daemon import Runner, _Work
from crawler.app.pipeline import Pipeline
from crawler.store import SQLiteStore
from tests.conftest import FakeClock, Project
from tests.feeds import Item, rss
from tests.servers import Page, Site


def test_a_source_removed_while_its_poll_starts_is_dropped_quietly(
        project: Project, site: Site, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    for name in ("kept", "gone"):
        site.pages[f"/{name}.xml"] = Page(rss([Item(f"{name} news", site.url(f"/{name}/1"),
                                                    "", f"{name}-1", clock.now())]))
    project.hook("http://127.0.0.1:9/unused")  # enabled, never reached: nothing matches
    project.settings["defaults"] = {"full_text": False}
    project.sources = [{"name": "kept", "feed": site.url("/kept.xml")},
                       {"name": "gone", "feed": site.url("/gone.xml")}]
    config = project.config()
    store = SQLiteStore(config.database_path)
    runner = Runner(config, store, clock=clock)

    async def race() -> None:
        async with runner._clients() as build:
            work = _Work(runner, *await build(config), lambda exc: None)
            old = work.pipeline
            await work.poll_tick()  # claims both; their tasks have not run yet
            assert set(work.polls) == {"kept", "gone"}
            project.sources = project.sources[:1]
            new = project.config()
            # A reload's store call (sync_sources) and the claim can both end in the
            # store's thread before the loop runs the new tasks: the reload then swaps the
            # pipeline first, and "gone" meets one that no longer has it.
            work.pipeline = Pipeline(new, old.store, old.client, old.clock, old.owner,
                                     old.metrics, old.politeness)
            await runner.db.sync_sources(new.active_sources(), clock.now())
            await asyncio.gather(*work.polls.values())

    with caplog.at_level(logging.DEBUG):
        asyncio.run(race())
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], [r.getMessage() for r in problems]
    rows = {r["name"]: r for r in store.sources()}
    assert rows["kept"]["last_success_at"] is not None
    assert rows["gone"]["active"] == 0 and rows["gone"]["last_checked_at"] is None
    assert rows["gone"]["lease_owner"] is None, "its lease is given back, not left to expire"
    assert site.requests_to("/gone.xml") == []
    store.close()
