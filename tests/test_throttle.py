"""Per-channel throttling decides alone, from the due alerts and what went out this hour."""

from __future__ import annotations

from datetime import UTC, datetime

from crawler.process.throttle import Due, Throttle, decide

DIGEST = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)


def due(n: int, channel: str = "hook", kind: str = "alert", priority: bool = False,
        attempted: bool = False) -> Due:
    return Due(n, channel, kind, priority, attempted)


def test_alerts_over_the_limit_are_held_for_the_next_digest_in_order() -> None:
    decision = decide([due(1), due(2), due(3), due(4)], {"hook": 1},
                      {"hook": Throttle(3, DIGEST)})
    assert decision.claim == [1, 2]
    assert decision.hold == {3: DIGEST, 4: DIGEST}


def test_urgent_alerts_digests_notices_and_retries_are_not_counted() -> None:
    decision = decide([due(1, priority=True), due(2, kind="digest"), due(3, kind="notice"),
                       due(4, attempted=True), due(5), due(6)], {"hook": 0},
                      {"hook": Throttle(1, DIGEST)})
    assert decision.claim == [1, 2, 3, 4, 5]
    assert decision.hold == {6: DIGEST}


def test_channels_without_a_limit_and_other_channels_are_claimed() -> None:
    decision = decide([due(1, "mail"), due(2, "hook"), due(3, "mail")], {"hook": 5},
                      {"hook": Throttle(5, DIGEST)})
    assert decision.claim == [1, 3] and decision.hold == {2: DIGEST}
    assert decide([due(1), due(2)], {}, {}).claim == [1, 2]
