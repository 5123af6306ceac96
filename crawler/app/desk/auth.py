"""Users and sessions: argon2id passwords, server-side sessions, CSRF tokens and the
limit on failed logins.

A session id is 32 random bytes in the ``newswatch_session`` cookie; the database keeps
only its SHA-256. Every login makes a new id (no session fixation). A session ends after
12 hours without a request, and 7 days after login whatever happens.

Forms carry a CSRF token: a signed-in user's is kept with the session; the login form's is
a signed double submit (a random nonce in a short-lived cookie, and its HMAC under a
secret kept in the database in the form), so no row is written for anonymous visitors.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from crawler.store import Store

SESSION_COOKIE = "newswatch_session"
LOGIN_COOKIE = "newswatch_login"
LOGIN_SECRET = "login-csrf"
IDLE = timedelta(hours=12)
LIFETIME = timedelta(days=7)
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 5
#: failed logins are kept this long, then forgotten
FAILURE_MEMORY = timedelta(days=1)

_hasher = PasswordHasher()  # argon2id, the library's (RFC 9106) defaults


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_hex(16))


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches; an unknown user (``stored`` None) is checked against
    a dummy hash, so both take about as long."""
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def login_token(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, b"login\x1f" + nonce.encode(), hashlib.sha256).hexdigest()


def same(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Opened:
    session_id: str
    csrf: str


def open_session(store: Store, user: str, now: datetime) -> Opened | None:
    """A new session for ``user`` (None when the user is gone)."""
    opened = Opened(new_token(), new_token())
    if store.open_session(session_hash(opened.session_id), user, opened.csrf, now,
                          now + LIFETIME):
        return opened
    return None


def locked_minutes(store: Store, user: str, address: str, now: datetime) -> int:
    """0 when a login may be tried, else the minutes until the oldest of the failures
    over the limit (per user name or per client address) leaves the window."""
    found = store.login_failures(user, address, now - FAILURE_WINDOW)
    oldest = [t for count, t in ((found.user, found.user_oldest),
                                 (found.address, found.address_oldest))
              if count >= MAX_FAILURES and t is not None]
    if not oldest:
        return 0
    wait = max(oldest) + FAILURE_WINDOW - now
    return max(1, math.ceil(wait.total_seconds() / 60))
