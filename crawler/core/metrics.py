"""Counters the daemon keeps in memory, rendered in the Prometheus text format."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

_Key = tuple[str, tuple[tuple[str, str], ...]]

HELP = {
    "newswatch_fetches_total": ("counter", "Polls of a source, by outcome."),
    "newswatch_fetch_seconds": ("summary", "Time to fetch and process one poll."),
    "newswatch_articles_stored_total": ("counter", "New articles stored."),
    "newswatch_matches_total": ("counter", "Watch item matches stored."),
    "newswatch_alerts_queued_total": ("counter", "Alerts written to the outbox."),
    "newswatch_alerts_delivered_total": ("counter", "Alerts delivered."),
    "newswatch_alerts_retried_total": ("counter", "Failed attempts that will be retried."),
    "newswatch_alerts_dead_total": ("counter", "Alerts given up on."),
}


class Metrics:
    """Process-local counters and summaries, with labels."""

    def __init__(self) -> None:
        self._values: dict[_Key, float] = defaultdict(float)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self._values[(name, tuple(sorted(labels.items())))] += value

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        self.inc(f"{name}_sum", seconds, **labels)
        self.inc(f"{name}_count", 1, **labels)

    def value(self, name: str, **labels: str) -> float:
        return self._values.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self, gauges: Mapping[str, float]) -> str:
        """The exposition text: counters, summaries, then the gauges given."""
        lines: list[str] = []
        for family, (kind, text) in HELP.items():
            lines += [f"# HELP {family} {text}", f"# TYPE {family} {kind}"]
            for (name, labels), value in sorted(self._values.items()):
                if name == family or (name.startswith(family + "_") and kind == "summary"):
                    lines.append(f"{name}{_labels(labels)} {value:g}")
        for name, value in gauges.items():
            lines += [f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    quoted = (f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + ",".join(quoted) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
