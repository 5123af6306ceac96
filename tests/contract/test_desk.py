"""Contract: the desk's users, sessions (by id hash; ended with their user), failed
logins counted across handles, and secrets kept once."""

from __future__ import annotations

from datetime import timedelta

from crawler.store import Store
from tests.contract.conftest import NOW, Opener

HOUR = timedelta(hours=1)
IDLE = timedelta(hours=12)


def test_users_are_added_once_listed_and_removed(store: Store) -> None:
    assert store.add_user("ana", "$argon2id$a", NOW)
    assert not store.add_user("ana", "$argon2id$other", NOW)
    assert store.add_user("bo", "$argon2id$b", NOW)
    assert store.password_hash("ana") == "$argon2id$a"
    assert store.password_hash("nobody") is None
    assert [u["name"] for u in store.users()] == ["ana", "bo"]
    assert store.remove_user("ana")
    assert not store.remove_user("ana")
    assert store.password_hash("ana") is None
    assert [u["name"] for u in store.users()] == ["bo"]


def test_a_session_is_found_by_its_hash_until_idle_or_expired(store: Store) -> None:
    store.add_user("ana", "h", NOW)
    assert store.open_session("s1", "ana", "csrf1", NOW, NOW + timedelta(days=7))
    found = store.session("s1", NOW + HOUR, IDLE)
    assert found is not None and (found.user, found.csrf) == ("ana", "csrf1")
    assert store.session("unknown", NOW, IDLE) is None
    # seen at NOW + 1 h: still open 11 h later, idle 12 h after that
    assert store.session("s1", NOW + 12 * HOUR, IDLE) is not None
    assert store.session("s1", NOW + 25 * HOUR, IDLE) is None
    assert store.open_session("s2", "ana", "csrf2", NOW, NOW + 2 * HOUR)
    assert store.session("s2", NOW + 2 * HOUR, IDLE) is None  # past its absolute end
    assert not store.open_session("s3", "nobody", "c", NOW, NOW + HOUR)


def test_ending_a_session_or_removing_its_user_closes_it(backend: Opener) -> None:
    one, other = backend(), backend()
    one.add_user("ana", "h", NOW)
    one.add_user("bo", "h", NOW)
    for sid, user in (("a1", "ana"), ("a2", "ana"), ("b1", "bo")):
        one.open_session(sid, user, "c", NOW, NOW + HOUR)
    assert other.end_session("a1")
    assert not other.end_session("a1")
    assert one.session("a1", NOW, IDLE) is None
    assert {u["name"]: u["sessions"] for u in one.users()} == {"ana": 1, "bo": 1}
    other.remove_user("ana")
    assert one.session("a2", NOW, IDLE) is None
    assert one.session("b1", NOW, IDLE) is not None
    one.add_user("ana", "h2", NOW)  # the name again: the old sessions stay gone
    assert one.session("a2", NOW, IDLE) is None


def test_failed_logins_are_counted_per_user_and_per_address(backend: Opener) -> None:
    one, other = backend(), backend()
    for minutes, user, address in ((0, "ana", "10.0.0.1"), (5, "ana", "10.0.0.2"),
                                   (10, "bo", "10.0.0.1")):
        one.record_login_failure(user, address, NOW + timedelta(minutes=minutes),
                                 timedelta(days=1))
    found = other.login_failures("ana", "10.0.0.1", NOW)
    assert (found.user, found.address) == (2, 2)
    assert found.user_oldest == NOW and found.address_oldest == NOW
    later = other.login_failures("ana", "10.0.0.1", NOW + timedelta(minutes=1))
    assert (later.user, later.address) == (1, 1)
    assert later.user_oldest == NOW + timedelta(minutes=5)
    none = other.login_failures("cy", "10.0.0.9", NOW)
    assert (none.user, none.address, none.user_oldest) == (0, 0, None)
    # a failure two days on forgets those older than a day
    one.record_login_failure("cy", "10.0.0.9", NOW + timedelta(days=2), timedelta(days=1))
    assert other.login_failures("ana", "10.0.0.1", NOW - HOUR).user == 0


def test_a_secret_is_kept_from_the_first_offer(backend: Opener) -> None:
    one, other = backend(), backend()
    assert one.secret("feeds", b"first") == b"first"
    assert other.secret("feeds", b"second") == b"first"
    assert other.secret("csrf", b"x") == b"x"
