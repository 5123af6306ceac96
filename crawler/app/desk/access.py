"""Who may read /metrics and the Atom feeds: loopback clients freely, others with a token.

"Loopback" is a client address in 127.0.0.0/8 or ::1 on a request with no ``Forwarded``
or ``X-Forwarded-For`` header: a reverse proxy on the same host connects from loopback,
and must not make the whole world loopback.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from starlette.requests import Request

#: the secret feed tokens are derived from, generated once and kept in the database
FEED_SECRET = "feed-tokens"
PROXY_HEADERS = ("forwarded", "x-forwarded-for")


def is_loopback(request: Request) -> bool:
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def bearer_ok(request: Request, token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer TOKEN``; never with no token."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and \
        hmac.compare_digest(given.strip().encode(), token.encode())


def feed_token(secret: bytes, watchlist: str) -> str:
    """The token of one watchlist's feed: HMAC-SHA256 of its name (hex, 32 characters);
    a token read from one feed's URL opens no other."""
    return hmac.new(secret, watchlist.encode(), hashlib.sha256).hexdigest()[:32]


def feed_token_ok(secret: bytes, watchlist: str, given: str) -> bool:
    return hmac.compare_digest(feed_token(secret, watchlist).encode(), given.encode())
