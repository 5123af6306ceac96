"""Web addresses in messages shown as ``scheme://host/…#hash``, so no token leaks.

Webhook services (Slack, Discord, many Apprise targets) put the secret in the path, not
only in the query or the user-info, so all three go. The hash (8 hex of SHA-256 of the
whole URL) tells two channels on one host apart, the same in every message.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: An http(s) URL in running text; closing punctuation after it is not part of it.
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}"
_SHOWN = re.compile(r"https?://[^/\s]*/…#[0-9a-f]{8}", re.IGNORECASE)


def shown_url(url: str) -> str:
    """``url`` with its user-info, path, query and fragment replaced by a short hash."""
    tag = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # a broken port or bracket: show nothing of it
        return f"{url.split(':', 1)[0]}://…#{tag}"
    return f"{parts.scheme}://{host}{port}/…#{tag}"


def scrub(text: str, known: dict[str, str] | None = None) -> str:
    """``text`` with each ``known`` secret replaced by its shown form, then every http(s)
    URL left in it replaced by :func:`shown_url`. Scrubbing twice changes nothing."""
    for secret in sorted(known or {}, key=len, reverse=True):
        if secret:
            text = text.replace(secret, (known or {})[secret])
    return _URL.sub(_shown_match, text)


def _shown_match(match: re.Match[str]) -> str:
    url = match.group(0)
    tail = len(url) - len(url.rstrip(_TRAILING))
    url, rest = url[:len(url) - tail], url[len(url) - tail:]
    if _SHOWN.fullmatch(url):
        return url + rest
    return shown_url(url) + rest


#: A database URL: ``scheme://``; anything else in ``database:`` is a file path.
DATABASE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def dsn_shown(url: str) -> str:
    """A database URL as logs, ``check``, ``status`` and ``/healthz`` may show it: user,
    host, port and database name kept (an operator needs them to tell databases apart),
    a password in the user-info or a ``password=`` parameter replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}{':***' if colon else ''}@{hostport}"
        query = urlencode([(k, "***" if k.lower() == "password" else v)
                           for k, v in parse_qsl(parts.query, keep_blank_values=True)],
                          safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # unparsable: show no more than the scheme
        return f"{url.split(':', 1)[0]}://…"
