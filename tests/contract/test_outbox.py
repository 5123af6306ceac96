"""Contract: alerts are claimed under leases, delivered once, retried, throttled into
digests, requeued, forgotten after retention; incidents open once."""

from __future__ import annotations

from datetime import timedelta

from crawler.process.throttle import Throttle
from crawler.store import DeliveryResult, OutboxRow, Store
from tests.contract.conftest import (
    LEASE,
    NOW,
    TEXT,
    Opener,
    alert_row,
    article,
    match,
    new,
    source,
)


def queue(store: Store, *rows: OutboxRow) -> list[int]:
    """Store an article (a new one each time) whose plan queues ``rows``."""
    store.sync_sources([source("Kabul"), source("North")], NOW)
    n = len(store.alerts(limit=1000)) + 1
    store.add_articles([new(article("Kabul", n, TEXT if n == 1 else f"Text {n} alone."),
                            [match()])], NOW, "v1", lambda *_: list(rows))
    return sorted(a["id"] for a in store.alerts(limit=1000))[-len(rows):]


def test_alert_leases_and_delivered_rows_are_final(backend: Opener) -> None:
    one, two = backend(), backend()
    [alert_id] = queue(one, alert_row("w", "s1"))
    [claimed] = one.claim_alerts("p1", NOW, LEASE, ["hook"])
    assert claimed.id == alert_id and claimed.payload == {"subject": "s1"}
    assert two.claim_alerts("p2", NOW, LEASE, ["hook"]) == []
    assert one.record_delivery(alert_id, "p1", NOW, DeliveryResult("delivered", 200))
    later = NOW + timedelta(days=2)
    assert two.claim_alerts("p2", later, LEASE, ["hook"]) == []
    assert not two.record_delivery(alert_id, "p2", later,
                                   DeliveryResult("retry", 503, "x", 0, later))
    assert one.alert_counts() == {"delivered": 1}
    assert one.requeue(later, [alert_id]) == 0, "a delivered alert is never requeued"


def test_a_late_report_from_a_lost_lease_leaves_the_new_holder_alone(backend: Opener) -> None:
    one, two = backend(), backend()
    [alert_id] = queue(one, alert_row("w", "s1"))
    one.claim_alerts("p1", NOW, LEASE, ["hook"])
    later = NOW + LEASE + timedelta(seconds=1)
    assert [a.id for a in two.claim_alerts("p2", later, LEASE, ["hook"])] == [alert_id]
    assert not one.record_delivery(alert_id, "p1", later,
                                   DeliveryResult("retry", 503, "x", 0, later))
    assert one.requeue(later, [alert_id]) == 0, "no requeue while p2 is sending it"
    assert one.claim_alerts("p3", later, LEASE, ["hook"]) == []
    assert two.record_delivery(alert_id, "p2", later, DeliveryResult("delivered", 200))
    assert one.alert_counts() == {"delivered": 1}


def test_retries_wait_their_time_dead_alerts_are_requeued(store: Store) -> None:
    [alert_id] = queue(store, alert_row("w", "s1"))
    store.claim_alerts("p", NOW, LEASE, ["hook"])
    retry_at = NOW + timedelta(minutes=1)
    store.record_delivery(alert_id, "p", NOW, DeliveryResult("retry", 503, "busy", 5, retry_at))
    assert store.alert_counts() == {"retrying": 1}
    assert store.claim_alerts("p", NOW, LEASE, ["hook"]) == []
    [again] = store.claim_alerts("p", retry_at, LEASE, ["hook"])
    assert again.attempts == 1
    store.record_delivery(alert_id, "p", retry_at, DeliveryResult("dead", 400, "bad"))
    assert [(a["status"], a["last_error"]) for a in store.alerts()] == [("dead", "bad")]
    assert store.failing_channels()["hook"][1] == "bad"
    assert store.requeue(retry_at, dead=True) == 1
    assert [a.attempts for a in store.claim_alerts("p", retry_at, LEASE, ["hook"])] == [0]


def test_only_the_given_channels_are_claimed(store: Store) -> None:
    queue(store, alert_row("w", "s1"))
    assert store.claim_alerts("p", NOW, LEASE, ["other"]) == []
    assert store.claim_alerts("p", NOW, LEASE, []) == []


def test_throttled_alerts_wait_for_the_digest_whose_members_follow_it(store: Store) -> None:
    digest_at = NOW + timedelta(hours=1)
    ids = queue(store, alert_row("w", "s1"), alert_row("w", "s2"), alert_row("w", "s3"),
                alert_row("w", "urgent", priority=True))
    claimed = store.claim_alerts("p", NOW, LEASE, ["hook"],
                                 throttles={"hook": Throttle(1, digest_at)})
    assert [a.id for a in claimed] == [ids[0], ids[3]]
    for sent in claimed:
        store.record_delivery(sent.id, "p", NOW, DeliveryResult("delivered", 200))
    assert store.alert_counts() == {"delivered": 2, "held": 2}
    assert store.fold_digests(NOW, ["hook"], lambda *_: alert_row("", "digest")) == 0

    def build(channel: str, payloads: list[dict[str, object]]) -> OutboxRow:
        assert channel == "hook" and payloads == [{"subject": "s2"}, {"subject": "s3"}]
        return alert_row("", "digest-1")

    assert store.fold_digests(digest_at, ["hook"], build) == 1
    [digest] = store.claim_alerts("p", digest_at, LEASE, ["hook"])
    assert digest.kind == "digest"
    store.record_delivery(digest.id, "p", digest_at, DeliveryResult("delivered", 200))
    states = {a["id"]: a["status"] for a in store.alerts()}
    assert states[ids[1]] == states[ids[2]] == "delivered"


def test_alerts_held_for_a_digest_channel_are_folded_when_it_is_due(store: Store) -> None:
    digest_at = NOW + timedelta(hours=3)
    queue(store, alert_row("w", "s1", hold_until=digest_at))
    assert store.alert_counts() == {"held": 1}
    assert store.claim_alerts("p", digest_at, LEASE, ["hook"]) == []
    assert store.fold_digests(digest_at, ["hook"], lambda *_: alert_row("", "d")) == 1
    assert store.alert_counts() == {"pending": 1, "digested": 1}
    assert store.outbox_backlog(digest_at) == (1, 0.0)


def test_retention_keeps_the_alerts_of_a_story_still_being_seen(store: Store) -> None:
    """Past retention an alert goes, with the items it named (outbox_items)."""
    [alert_id] = queue(store, alert_row("w", "s1", items=(("opposition", "Ahmad Massoud"),)))
    store.claim_alerts("p", NOW, LEASE, ["hook"])
    store.record_delivery(alert_id, "p", NOW, DeliveryResult("delivered", 200))
    keep = timedelta(days=90)
    seen = NOW
    for n in range(2, 42):  # a copy joins the story every other day, for 80 days
        seen = NOW + timedelta(days=2 * (n - 1))
        store.add_articles([new(article("North", n), [match()])], seen, "v1", lambda *_: [])
    assert len(store.recent_stories(seen)) == 1
    assert store.maintain(NOW + timedelta(days=91), keep) == 0
    assert [a["id"] for a in store.alerts()] == [alert_id]
    assert store.maintain(seen + timedelta(days=91), keep) == 1
    assert store.alerts() == []


def test_an_incident_opens_once_with_its_notice(store: Store) -> None:
    notice = alert_row("", "notice", "ops", priority=True)
    assert store.open_incident("k", "alert.dead", "hook", NOW, NOW, "hook died", notice)
    assert not store.open_incident("k", "alert.dead", "hook", NOW, NOW, "again", notice)
    assert [(i["key"], i["message"]) for i in store.incidents()] == [("k", "hook died")]
    [sent] = store.claim_alerts("p", NOW, LEASE, ["ops"])
    assert sent.kind == "notice"


def test_the_store_says_it_is_writable_and_its_schema(store: Store) -> None:
    assert store.writable() is None
    assert store.schema_version() >= 6
    assert store.location
