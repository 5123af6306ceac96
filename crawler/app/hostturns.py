"""The database's turns at hosts (``Store.take_host`` and the rest) as the collect
layer's ``HostTurns``, for one daemon: its politeness is then every daemon's.

Times come from the daemon's clock and are compared with other daemons' in the
database: across machines this assumes clocks kept in step (NTP). A clock off by more
than a host's delay lets two daemons fetch from the host closer together than the
delay; the holds (``daemon.lease``, 60 s by default) absorb a skew of some seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from crawler.collect.politeness import Busy
from crawler.core.clock import Clock
from crawler.store.threaded import ThreadedStore


class StoreTurns:
    """``crawler.collect.politeness.HostTurns`` over a store, under ``owner``'s name."""

    def __init__(self, store: ThreadedStore, clock: Clock, owner: str) -> None:
        self.store = store
        self.clock = clock
        self.owner = owner

    async def take(self, host: str, hold: float) -> Busy | None:
        busy = await self.store.take_host(host, self.owner, self.clock.now(),
                                          timedelta(seconds=hold))
        if busy is None:
            return None
        wait = (busy.next_at - self.clock.now()).total_seconds()
        return Busy(max(wait, 0.0), busy.held_until is not None)

    async def renew(self, hosts: Sequence[str], hold: float) -> None:
        await self.store.renew_hosts(hosts, self.owner, self.clock.now(),
                                     timedelta(seconds=hold))

    async def free(self, host: str, delay: float) -> None:
        await self.store.free_host(host, self.owner, self.clock.now(),
                                   timedelta(seconds=delay))

    async def defer(self, host: str, seconds: float) -> None:
        await self.store.defer_host(host, self.clock.now() + timedelta(seconds=seconds))
