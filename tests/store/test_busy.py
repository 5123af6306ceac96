"""The event loop never waits on the database: a busy database does not stall fetching."""

from __future__ import annotations

import asyncio

from crawler.app.daemon import Runner
from crawler.collect import fetch
from tests import schema
from tests.conftest import Project
from tests.servers import Page, Site


def test_a_busy_database_does_not_stall_an_unrelated_fetch(project: Project,
                                                           site: Site) -> None:
    """Another process holds the write lock, so the pass's first write waits on it (up
    to the 30 s busy timeout). Meanwhile a fetch from a local server on the same loop
    completes; only then is the lock let go, and the pass goes on."""
    site.pages["/other"] = Page(b"unrelated", "text/plain")
    project.hook("http://127.0.0.1:9/hook")
    store = project.store()
    runner = Runner(project.config(), store)

    async def go() -> None:
        with schema.connection(store) as other_process:
            other_process.execute("BEGIN IMMEDIATE")
            try:
                once = asyncio.ensure_future(runner.once())
                async with fetch.make_client(allow_private_networks=True) as client:
                    got = await fetch.fetch(client, fetch.Request(
                        "other", site.url("/other"), 10, "test", 1000))
                assert got.body == b"unrelated"
                assert not once.done(), "the pass waits for the lock, the loop does not"
            finally:
                other_process.execute("COMMIT")
            await once

    try:
        asyncio.run(go())
    finally:
        store.close()
