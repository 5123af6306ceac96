"""Counters the daemon keeps in memory, exposed in the Prometheus text format.

Each ``Metrics`` has its own prometheus_client registry, not the process-wide default, so
several runners in one process (and tests) keep separate counts.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Summary
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# name: (kind, help, label names)
FAMILIES: dict[str, tuple[type[Counter] | type[Summary], str, tuple[str, ...]]] = {
    "newswatch_fetches_total": (Counter, "Polls of a source, by outcome.",
                                ("source", "outcome")),
    "newswatch_fetch_seconds": (Summary, "Time to fetch and process one poll.", ("source",)),
    "newswatch_stage_seconds": (Summary, "Time one poll spent in a stage of the pipeline "
                                "(parse, dedup, extract, match, fold, fingerprint, store, "
                                "plan).",
                                ("stage",)),
    "newswatch_articles_stored_total": (Counter, "New articles stored.", ("source",)),
    "newswatch_items_rejected_total": (Counter, "Items refused alone (the rest of their "
                                       "feed kept), by reason.", ("source", "reason")),
    "newswatch_matches_total": (Counter, "Watch item matches stored.", ("watchlist",)),
    "newswatch_alerts_queued_total": (Counter, "Alerts written to the outbox.", ("channel",)),
    "newswatch_alerts_delivered_total": (Counter, "Alerts delivered.", ("channel",)),
    "newswatch_alerts_retried_total": (Counter, "Failed attempts that will be retried.",
                                       ("channel",)),
    "newswatch_alerts_dead_total": (Counter, "Alerts given up on.", ("channel",)),
}
GAUGES = {
    "newswatch_outbox_pending": "Alerts waiting in the outbox.",
    "newswatch_oldest_pending_alert_seconds": "Age of the oldest alert waiting.",
    "newswatch_sources_failing": "Active sources whose last poll failed.",
}


class Metrics:
    """Process-local counters, summaries and gauges, with labels."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._families = {name: kind(name, text, labels, registry=self.registry)
                          for name, (kind, text, labels) in FAMILIES.items()}
        self._gauges = {name: Gauge(name, text, registry=self.registry)
                        for name, text in GAUGES.items()}

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        counter = self._families[name]
        assert isinstance(counter, Counter), name
        counter.labels(**labels).inc(value)

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        summary = self._families[name]
        assert isinstance(summary, Summary), name
        summary.labels(**labels).observe(seconds)

    def render(self, gauges: Mapping[str, float]) -> str:
        """The exposition text (``CONTENT_TYPE``), with the gauges set to the values given."""
        for name, value in gauges.items():
            self._gauges[name].set(value)
        return generate_latest(self.registry).decode("utf-8")
