"""The leases one process holds on work in flight, renewed while the work runs.

A claim (``Store.claim_sources``, ``Store.claim_alerts``) lasts ``daemon.lease`` (60 s at
most), so a dead daemon's work is taken over within lease + tick. Work may take longer
(a 10-minute crawl, a slow receiver): while it runs under ``Leases.hold``, one task on
the event loop renews every lease this process holds, every third of the lease, in one
store call (``Store.renew_leases``, through ``ThreadedStore``). Work whose lease was lost
meanwhile (another process claimed it) is cancelled and logged, so it never records its
outcome; work that ends, however it ends (a crash too), is renewed no more, and its lease
expires unless its outcome gave it back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from crawler.core.clock import Clock
from crawler.core.errors import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")


class Renewer(Protocol):
    """The one store call renewal makes (``crawler.store.threaded.ThreadedStore``)."""

    async def renew_leases(self, owner: str, now: datetime, lease: timedelta, *,
                           sources: list[str], alerts: list[int],
                           ) -> tuple[list[str], list[int]]: ...


@dataclass(eq=False)
class _Held:
    task: asyncio.Future[Any]
    lost: bool = False


@dataclass
class Leases:
    """This process's leases on work in flight (see the module docstring)."""

    store: Renewer
    owner: str
    clock: Clock
    lease: timedelta
    sources: dict[str, _Held] = field(default_factory=dict)
    alerts: dict[int, _Held] = field(default_factory=dict)
    renewals: int = 0  # rounds done (the tests wait on it)
    _loop: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    async def hold(self, work: Coroutine[Any, Any, T], *, source: str | None = None,
                   alert: int | None = None, about: dict[str, str] | None = None,
                   ) -> T | None:
        """Run ``work`` on a source or alert claimed already, its lease renewed until the
        work ends; None when the lease was lost and the work cancelled (logged with
        ``about``, the source by default). The work's own errors, and a cancellation of
        the caller (a shutdown), go through."""
        held: dict[Any, _Held] = self.sources if source is not None else self.alerts
        key = source if source is not None else alert

        async def run() -> T:
            try:
                return await work
            finally:  # let go in the work's own task: when its last store call (the
                # outcome) returns, it is let go before a renewal queued after that call
                if held.get(key) is entry:
                    del held[key]

        entry = _Held(asyncio.ensure_future(run()))
        held[key] = entry
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._renew(), name="renew leases")
        try:
            result: T = await entry.task
            return result
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if not entry.lost or (me is not None and me.cancelling()):
                raise
        finally:
            work.close()  # cancelled before it began (a shutdown): no "never awaited"
        log.warning("its lease passed to another process while it ran: stopped, and its "
                    "outcome is not recorded", extra=about or {"source": str(key)})
        return None

    async def _renew(self) -> None:
        """Every third of the lease while anything is held; ends when nothing is."""
        every = self.lease.total_seconds() / 3
        while self.sources or self.alerts:
            await asyncio.sleep(every)
            sources, alerts = dict(self.sources), dict(self.alerts)
            if not sources and not alerts:
                break
            try:
                lost_sources, lost_alerts = await self.store.renew_leases(
                    self.owner, self.clock.now(), self.lease, sources=sorted(sources),
                    alerts=sorted(alerts))
            except StoreError as exc:  # the next round tries again, within the lease
                log.warning("cannot renew leases: %s", exc)
                continue
            except Exception:  # a bug: still the next round, not the end of renewal
                log.exception("cannot renew leases")
                continue
            self.renewals += 1
            self._stop([sources[n] for n in lost_sources], self.sources)
            self._stop([alerts[i] for i in lost_alerts], self.alerts)

    @staticmethod
    def _stop(lost: list[_Held], held: dict[Any, _Held]) -> None:
        """Cancel the work of lost leases that still runs (not what ended meanwhile)."""
        running = {id(e) for e in held.values()}
        for entry in lost:
            if id(entry) in running:
                entry.lost = True
                entry.task.cancel()

    async def close(self) -> None:
        """Stop renewing (the process is stopping: its leases are given back or expire)."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
