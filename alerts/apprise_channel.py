"""The apprise channel: Apprise URLs reach Slack, Telegram, Discord, Matrix, Teams, ntfy…

Apprise only says whether each service accepted the notification, so every failure is
retried with backoff until the channel's attempts run out. Apprise URLs carry tokens:
errors name the service, and any URL in them is shown by :func:`shown`.
"""

from __future__ import annotations

import asyncio
import logging
import re

import apprise

from alerts.templates import Rendered
from crawler.config import AppriseChannel
from crawler.core.errors import DeliveryError
from crawler.core.redact import scrub, shown_url

#: Apprise's generic webhooks, whose privacy mode keeps the path (and its tokens).
_GENERIC = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
#: Apprise's own log lines quote URLs with their tokens: they go no further than the
#: capture behind ``result.logs()``, whose lines reach the delivery error scrubbed.
logging.getLogger("apprise").propagate = False


def secrets(channel: AppriseChannel) -> dict[str, str]:
    """What of the channel's URLs must not be printed, and what to print instead: each
    URL, and each part of one that looks like a token (8 characters or more, not a host
    name, not a plain lower-case word), should a service quote it alone."""
    known: dict[str, str] = {}
    for url in filter(None, (u.strip() for u in channel.urls)):
        parts = re.split(r"[/?&=:@#]+", url.split("://", 1)[-1])
        known.update({p: "…" for p in parts if len(p) >= 8 and "." not in p
                      and not (p.isalpha() and p.islower())})
        known[url] = shown(url)
    return known


def shown(url: str) -> str:
    """An Apprise URL as it may be printed: through Apprise's privacy mode, less the
    query of defaults it appends; the generic webhooks as ``scheme://host/…#hash``."""
    url = url.strip()
    if url.split(":", 1)[0].lower() in _GENERIC:
        return shown_url(url)
    plugin = apprise.Apprise.instantiate(url)
    if not plugin:
        return "(an apprise URL)"
    return str(plugin.url(privacy=True)).split("?", 1)[0]  # type: ignore[no-untyped-call]


def invalid_urls(channel: AppriseChannel) -> list[int]:
    """Positions of the URLs Apprise does not understand (for ``check``)."""
    return [i for i, url in enumerate(channel.urls)
            if url.strip() and not apprise.Apprise().add(url.strip())]


def _notify(channel: AppriseChannel, rendered: Rendered) -> tuple[bool, str]:
    client = apprise.Apprise()
    for url in channel.urls:
        if url.strip():
            client.add(url.strip())
    # Plain text: Apprise escapes it for HTML services; templates.chat_text has already
    # defused what Markdown services would act on.
    result = client.notify(rendered.text, title=rendered.subject,
                           body_format=apprise.NotifyFormat.TEXT,
                           timeout=max(1, int(channel.timeout)))
    failed = [r.name for r in result.results
              if getattr(r.status, "name", str(r.status)) != "SUCCESS"]
    messages = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
    return bool(result), "; ".join(messages[-3:]) or ", ".join(failed) or "failed"


async def send(name: str, channel: AppriseChannel, rendered: Rendered) -> None:
    """Notify every URL of the channel; raises a retryable DeliveryError if any failed."""
    try:
        async with asyncio.timeout(channel.timeout + 5):
            ok, detail = await asyncio.to_thread(_notify, channel, rendered)
    except TimeoutError as exc:
        raise DeliveryError(name, f"apprise did not finish within {channel.timeout:g}s") \
            from exc
    if not ok:
        raise DeliveryError(name, "apprise: " + scrub(detail, secrets(channel)))
