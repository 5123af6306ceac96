"""``ThreadedStore``: as many threads as the backend takes calls at once, and a
``release`` of every lease only after the calls already made (a claim in flight)."""

from __future__ import annotations

import asyncio
import threading
from typing import cast

import pytest

from crawler.store import Store
from crawler.store.threaded import ThreadedStore


class Recording:
    """A store whose ``sources`` call waits for ``meet`` others at once (a barrier, so
    calls made one at a time break it instead of waiting for a clock)."""

    def __init__(self, concurrent_calls: int, meet: int, timeout: float = 10) -> None:
        self.concurrent_calls = concurrent_calls
        self.barrier = threading.Barrier(meet, timeout=timeout)
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def sources(self) -> list[dict[str, object]]:
        self.barrier.wait()
        with self.lock:
            self.calls.append("sources")
        return []

    def release(self, owner: str, source: str | None = None) -> None:
        with self.lock:
            self.calls.append("release")


def test_postgresqls_calls_overlap_and_sqlites_run_one_at_a_time() -> None:
    async def three_at_once(store: Recording) -> None:
        threaded = ThreadedStore(cast(Store, store))
        try:
            await asyncio.gather(*(threaded.sources() for _ in range(3)))
        finally:
            threaded.shutdown()

    overlapping = Recording(concurrent_calls=3, meet=3)
    asyncio.run(three_at_once(overlapping))
    assert overlapping.calls == ["sources"] * 3
    with pytest.raises(threading.BrokenBarrierError):
        asyncio.run(three_at_once(Recording(concurrent_calls=1, meet=3, timeout=1)))


def test_releasing_every_lease_waits_for_the_calls_in_flight() -> None:
    store = Recording(concurrent_calls=3, meet=3)

    async def shut_down() -> None:
        threaded = ThreadedStore(cast(Store, store))
        try:
            pending = [asyncio.ensure_future(threaded.sources()) for _ in range(2)]
            await asyncio.sleep(0)  # both calls are on their threads, waiting for a third
            releasing = asyncio.ensure_future(threaded.release("me"))
            await asyncio.sleep(0.05)
            assert store.calls == [], "release ran before the calls made before it"
            await asyncio.to_thread(store.barrier.wait)  # the third party lets them end
            await asyncio.gather(*pending, releasing)
        finally:
            threaded.shutdown()

    asyncio.run(shut_down())
    assert store.calls == ["sources", "sources", "release"]
