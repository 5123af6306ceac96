"""The webhook channel: Standard Webhooks signing and one POST per attempt.

Only 2xx is success and redirects are not followed. 408, 429 and 5xx (and network
errors) are worth retrying, honouring ``Retry-After``; any other status is permanent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import httpx

from crawler.collect.headers import parse_retry_after
from crawler.config import WebhookChannel
from crawler.core.errors import DeliveryError
from crawler.core.redact import scrub, shown_url

RETRYABLE_STATUS = frozenset({408, 425, 429}) | frozenset(range(500, 600))
USER_AGENT = "newswatch-webhooks/0.1"


def secret_key(secret: str) -> bytes:
    """A ``whsec_`` secret is base64 (as Standard Webhooks issues them); anything else is
    used as its UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            pass
    return secret.encode("utf-8")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def render(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def send(client: httpx.AsyncClient, name: str, channel: WebhookChannel,
               message_id: str, payload: dict[str, Any], now: datetime) -> int:
    """POST one alert; returns the status, or raises DeliveryError saying if it may retry."""
    body = render(payload)
    timestamp = int(now.timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
    }
    if channel.secret:
        headers["webhook-signature"] = sign(channel.secret, message_id, timestamp, body)
    shown = shown_url(channel.url)  # the URL may carry a token, even in its path
    try:
        async with asyncio.timeout(channel.timeout):  # httpx's timeout is per read
            response = await client.post(channel.url, content=body, headers=headers,
                                         timeout=channel.timeout, follow_redirects=False)
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise DeliveryError(name, f"no answer from {shown} within "
                                  f"{channel.timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(name, f"cannot reach {shown}: "
                                  f"{scrub(str(exc)) or type(exc).__name__}") from exc
    status = response.status_code
    if 200 <= status < 300:
        return status
    detail = scrub(response.text[:200].strip())  # a receiver may echo the URL
    message = f"HTTP {status} from {shown}" + (f": {detail}" if detail else "")
    if 300 <= status < 400:
        message += " (redirects are not followed: put the final URL in the config)"
    raise DeliveryError(name, message, status=status, retryable=status in RETRYABLE_STATUS,
                        retry_after=parse_retry_after(response.headers.get("retry-after"),
                                                      now))
