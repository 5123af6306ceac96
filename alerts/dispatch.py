"""Deliver due outbox rows: claim with a lease, send, record, decide what comes next."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from alerts import retry, webhook
from crawler.clock import Clock
from crawler.config import WebhookChannel
from crawler.errors import DeliveryError
from crawler.metrics import Metrics
from crawler.store import DeliveryResult, QueuedAlert, Store

log = logging.getLogger(__name__)

MAX_ROUNDS = 1000  # bounds one call even if rows keep becoming due


@dataclass
class DeliveryReport:
    """What one ``deliver_due`` call did."""

    delivered: int = 0
    retrying: int = 0
    dead: list[str] = field(default_factory=list)


class Dispatcher:
    """Sends what the outbox holds for the enabled channels, at most ``concurrency`` at once."""

    def __init__(self, store: Store, channels: Mapping[str, WebhookChannel],
                 client: httpx.AsyncClient, clock: Clock, owner: str, *,
                 concurrency: int = 8, rng: random.Random | None = None,
                 metrics: Metrics | None = None) -> None:
        self.store = store
        self.channels = {n: c for n, c in channels.items() if c.enabled}
        self.client = client
        self.clock = clock
        self.owner = owner
        self.concurrency = concurrency
        self.rng = rng or random.Random()
        self.metrics = metrics or Metrics()

    def lease(self) -> timedelta:
        slowest = max((c.timeout for c in self.channels.values()), default=15.0)
        return timedelta(seconds=slowest * 2 + 60)

    async def deliver_due(self) -> DeliveryReport:
        report = DeliveryReport()
        for _ in range(MAX_ROUNDS):
            claimed = self.store.claim_alerts(self.owner, self.clock.now(), self.lease(),
                                              self.channels, limit=self.concurrency)
            if not claimed:
                break
            results = await asyncio.gather(*(self._attempt(a) for a in claimed))
            for alert, result in zip(claimed, results, strict=True):
                self.store.record_delivery(alert.id, self.clock.now(), result)
                counter = {"delivered": "delivered", "retry": "retried", "dead": "dead"}
                self.metrics.inc(f"newswatch_alerts_{counter[result.outcome]}_total",
                                 channel=alert.channel)
                if result.outcome == "delivered":
                    report.delivered += 1
                elif result.outcome == "retry":
                    report.retrying += 1
                else:
                    report.dead.append(f"{alert.channel} {alert.message_id}: {result.error}")
        return report

    async def _attempt(self, alert: QueuedAlert) -> DeliveryResult:
        channel = self.channels[alert.channel]
        started = time.monotonic()
        now = self.clock.now()
        try:
            status = await webhook.send(self.client, alert.channel, channel, alert.message_id,
                                        alert.payload, now)
        except DeliveryError as exc:
            took = int((time.monotonic() - started) * 1000)
            attempts = alert.attempts + 1
            when = (retry.next_attempt(channel.retry, attempts, self.clock.now(), self.rng,
                                       exc.retry_after) if exc.retryable else None)
            extra = {"channel": alert.channel, "alert": alert.message_id}
            if when is None:
                why = "out of attempts" if exc.retryable else "permanent failure"
                log.error("alert %s is dead after %d attempt(s), %s: %s", alert.message_id,
                          attempts, why, exc.message, extra=extra)
                return DeliveryResult("dead", exc.status, exc.message, took)
            log.warning("alert %s attempt %d failed, retrying at %s: %s", alert.message_id,
                        attempts, when.isoformat(timespec="seconds"), exc.message, extra=extra)
            return DeliveryResult("retry", exc.status, exc.message, took, when)
        took = int((time.monotonic() - started) * 1000)
        log.info("alert %s delivered (HTTP %d)", alert.message_id, status,
                 extra={"channel": alert.channel, "alert": alert.message_id})
        return DeliveryResult("delivered", status, None, took)
