"""Deliver due outbox rows: fold digests, claim with a lease, send, record, decide next.

One ``deliver_due`` runs at a time per process, and it sends at most ``concurrency``
rows at once: a crash can therefore cut short at most ``concurrency`` sends, which are
the only ones a receiver may see twice (under the same id).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import httpx

from alerts import digest, notices, retry
from alerts.channels import Senders
from alerts.outbox import OutboxRow, alert_key, message_id
from crawler.config import Config
from crawler.core.clock import Clock, iso
from crawler.core.errors import DeliveryError
from crawler.core.metrics import Metrics
from crawler.process.throttle import Throttle
from crawler.store.leases import Leases
from crawler.store.records import DeliveryResult, DigestBuilder, QueuedAlert

log = logging.getLogger(__name__)


class OutboxStore(Protocol):
    """The part of the store delivery uses, awaited (``crawler.store.ThreadedStore``)."""

    async def fold_digests(self, now: datetime, channels: Iterable[str],
                           build: DigestBuilder) -> int: ...
    async def claim_alerts(self, owner: str, now: datetime, lease: timedelta,
                           channels: Iterable[str], limit: int = 100,
                           throttles: Mapping[str, Throttle] | None = None,
                           ) -> list[QueuedAlert]: ...
    async def record_delivery(self, alert_id: int, owner: str, now: datetime,
                              result: DeliveryResult) -> bool: ...
    async def renew_leases(self, owner: str, now: datetime, lease: timedelta, *,
                           sources: list[str], alerts: list[int],
                           ) -> tuple[list[str], list[int]]: ...
    async def failing_channels(self) -> dict[str, tuple[datetime, str | None]]: ...
    async def open_incident(self, key: str, kind: str, channel: str, since: datetime,
                            now: datetime, message: str, notice: OutboxRow | None
                            ) -> bool: ...

MAX_ROUNDS = 1000  # bounds one call even if rows keep becoming due


@dataclass
class DeliveryReport:
    """What one ``deliver_due`` call did."""

    delivered: int = 0
    retrying: int = 0
    dead: list[str] = field(default_factory=list)
    digests: int = 0
    notices: list[str] = field(default_factory=list)


class Dispatcher:
    """Sends what the outbox holds for the enabled channels, at most ``concurrency`` at once.

    Each send holds its alert's lease through ``leases`` (the daemon's, shared with its
    polls; one of its own otherwise): ``daemon.lease``, renewed while it is sent.
    """

    def __init__(self, store: OutboxStore, config: Config, client: httpx.AsyncClient, clock: Clock,
                 owner: str, *, concurrency: int = 8, rng: random.Random | None = None,
                 metrics: Metrics | None = None, leases: Leases | None = None) -> None:
        self.store = store
        self.settings = config.settings
        self.channels = config.enabled_channels()
        http = config.settings.http
        self.senders = Senders(self.channels, config.directory, client,
                               config.settings.timezone, http.desk_links if http else "")
        self.clock = clock
        self.owner = owner
        self.concurrency = concurrency
        self.rng = rng or random.Random()
        self.metrics = metrics or Metrics()
        self._one_at_a_time = asyncio.Lock()
        self.leases = leases or Leases(store, owner, clock,
                                       timedelta(seconds=config.settings.daemon.lease))

    def _throttles(self, now: datetime) -> dict[str, Throttle]:
        return {n: Throttle(c.max_per_hour, digest.next_slot(c.digest or digest.HOURLY,
                                                             self.settings.timezone, now))
                for n, c in self.channels.items() if c.max_per_hour}

    def _digest_row(self, channel: str, members: list[dict[str, object]]) -> OutboxRow:
        now = self.clock.now()
        payload = digest.digest_payload(channel, members, now)
        subject = f"digest:{iso(now)}:{self.rng.getrandbits(32):08x}"
        key = alert_key("", subject, channel)
        return OutboxRow(key, message_id(key), "", channel, subject, payload)

    async def deliver_due(self) -> DeliveryReport:
        async with self._one_at_a_time:
            return await self._deliver_due()

    async def _deliver_due(self) -> DeliveryReport:
        report = DeliveryReport()
        report.digests = await self.store.fold_digests(self.clock.now(), self.channels,
                                                 self._digest_row)
        if await self._rounds(report):
            opened = await self._incidents({d.split(" ", 1)[0] for d in report.dead})
            report.notices = opened
            if opened:
                await self._rounds(report)  # send the notices now, not a tick later
        return report

    async def _rounds(self, report: DeliveryReport) -> bool:
        """Claim, send and record until nothing is due; returns whether anything failed."""
        failed = False
        for _ in range(MAX_ROUNDS):
            now = self.clock.now()
            claimed = await self.store.claim_alerts(self.owner, now, self.leases.lease,
                                                    self.channels, limit=self.concurrency,
                                                    throttles=self._throttles(now))
            if not claimed:
                # throttling may have held rows whose digest is already due
                made = await self.store.fold_digests(self.clock.now(), self.channels,
                                               self._digest_row)
                if not made:
                    break
                report.digests += made
                continue
            settled = await asyncio.gather(*(self._settle(a, report) for a in claimed),
                                           return_exceptions=True)  # let every send end
            for outcome in settled:
                if isinstance(outcome, BaseException):
                    raise outcome
            failed = failed or not all(settled)
        return failed

    async def _settle(self, alert: QueuedAlert, report: DeliveryReport) -> bool:
        """Send one claimed alert, its lease renewed meanwhile; a lost lease stops it (the
        new holder sends it, under the same id)."""
        settled = await self.leases.hold(self._send(alert, report), alert=alert.id, about={
            "channel": alert.channel, "alert": alert.message_id})
        return True if settled is None else settled

    async def _send(self, alert: QueuedAlert, report: DeliveryReport) -> bool:
        """Send one claimed alert and record the outcome at once, so a crash or a slow
        neighbour in the batch cannot send an alert that already went out again."""
        result = await self._attempt(alert)
        if not await self.store.record_delivery(alert.id, self.owner, self.clock.now(), result):
            log.warning("%s %s: its lease passed to another process while sending; this "
                        "%s is logged only", alert.kind, alert.message_id, result.outcome,
                        extra={"channel": alert.channel, "alert": alert.message_id})
            return True
        counter = {"delivered": "delivered", "retry": "retried", "dead": "dead"}
        self.metrics.inc(f"newswatch_alerts_{counter[result.outcome]}_total",
                         channel=alert.channel)
        if result.outcome == "delivered":
            report.delivered += 1
        elif result.outcome == "retry":
            report.retrying += 1
        else:
            report.dead.append(f"{alert.channel} {alert.message_id}: {result.error}")
        return result.outcome == "delivered"

    async def _incidents(self, dead_on: set[str]) -> list[str]:
        """Open an incident (a log line, and a notice on the operator channel) once for
        each channel whose alerts died or that has been failing for an hour."""
        now = self.clock.now()
        operator = self.settings.operator
        opened = []
        for channel, (since, last_error) in (await self.store.failing_channels()).items():
            kinds = ["alert.dead"] if channel in dead_on else []
            if now - since >= notices.FAILING_FOR:
                kinds.append("channel.failing")
            for kind in kinds:
                message = notices.describe(kind, channel, since, last_error)
                notice = (notices.notice_row(operator, kind, channel, since, last_error, now)
                          if operator is not None and operator in self.channels
                          and operator != channel else None)
                if await self.store.open_incident(notices.incident_key(kind, channel, since), kind,
                                            channel, since, now, message, notice):
                    log.error("operator notice: %s", message, extra={"channel": channel})
                    opened.append(message)
        return opened

    async def _attempt(self, alert: QueuedAlert) -> DeliveryResult:
        channel = self.channels[alert.channel]
        started = time.monotonic()
        now = self.clock.now()
        try:
            status = await self.senders.send(alert.channel, alert.message_id, alert.payload,
                                             now)
        except Exception as exc:  # a surprise (a bug) costs one attempt, never a loop
            if isinstance(exc, DeliveryError):
                failure = exc
            else:
                log.exception("%s %s: unexpected error while sending", alert.kind,
                              alert.message_id, extra={"channel": alert.channel})
                failure = DeliveryError(alert.channel, self.senders.scrub(
                    alert.channel, f"unexpected {type(exc).__name__}: {exc}"))
            took = int((time.monotonic() - started) * 1000)
            attempts = alert.attempts + 1
            when = (retry.next_attempt(channel.retry, attempts, self.clock.now(), self.rng,
                                       failure.retry_after) if failure.retryable else None)
            extra = {"channel": alert.channel, "alert": alert.message_id}
            if when is None:
                why = "out of attempts" if failure.retryable else "permanent failure"
                log.error("%s %s is dead after %d attempt(s), %s: %s", alert.kind,
                          alert.message_id, attempts, why, failure.message, extra=extra)
                return DeliveryResult("dead", failure.status, failure.message, took)
            log.warning("%s %s attempt %d failed, retrying at %s: %s", alert.kind,
                        alert.message_id, attempts, when.isoformat(timespec="seconds"),
                        failure.message, extra=extra)
            return DeliveryResult("retry", failure.status, failure.message, took, when)
        took = int((time.monotonic() - started) * 1000)
        log.info("%s %s delivered%s", alert.kind, alert.message_id,
                 f" ({status})" if status else "",
                 extra={"channel": alert.channel, "alert": alert.message_id})
        return DeliveryResult("delivered", status, None, took)
