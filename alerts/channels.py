"""One delivery attempt on any channel type: render if the channel needs text, then send.

Webhooks get the JSON event as is; email and apprise get the channel's templates
rendered from it. The dispatcher and ``newswatch test-alert`` both send through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from alerts import apprise_channel, digest, email, outbox, webhook
from alerts.templates import Renderer, TemplateProblem, context
from crawler.config import (
    AppriseChannel,
    Channel,
    EmailChannel,
    WatchItem,
    WatchlistConfig,
    WebhookChannel,
)
from crawler.core.article import Article
from crawler.core.errors import DeliveryError
from crawler.core.redact import scrub, shown_url
from crawler.process.extract import extract
from crawler.process.match import Matcher


def renderer_for(channel: Channel, config_dir: Path) -> Renderer | None:
    """The channel's compiled templates (None for webhooks, which send JSON)."""
    if isinstance(channel, WebhookChannel):
        return None
    return Renderer(config_dir, channel.templates.model_dump(),
                    chat=isinstance(channel, AppriseChannel))


def secret_urls(channel: Channel) -> dict[str, str]:
    """The channel's URLs (which may carry tokens) and how each may be shown."""
    if isinstance(channel, WebhookChannel):
        return {channel.url: shown_url(channel.url)}
    if isinstance(channel, AppriseChannel):
        return apprise_channel.secrets(channel)
    return {}


class Senders:
    """The channels of one config with their templates, sharing one HTTP client."""

    def __init__(self, channels: Mapping[str, Channel], config_dir: Path,
                 client: httpx.AsyncClient, timezone: str = "UTC",
                 desk_url: str = "") -> None:
        """``timezone``: the config's, in which emails show times; ``desk_url``: the
        desk's address the emails link stories to (``HttpSettings.desk_links``)."""
        self.channels = dict(channels)
        self.timezone = timezone
        self.desk_url = desk_url
        self.client = client
        self.renderers = {n: renderer_for(c, config_dir) for n, c in channels.items()}
        # operator notices use the shipped templates
        self.default_renderer = Renderer()
        self.chat_renderer = Renderer(chat=True)
        self.secrets = {n: secret_urls(c) for n, c in channels.items()}

    def scrub(self, name: str, text: str) -> str:
        """``text`` (an unexpected error's, say) with no URL of channel ``name`` in it."""
        return scrub(text, self.secrets.get(name))

    async def send(self, name: str, message_id: str, payload: dict[str, Any],
                   now: datetime) -> int | None:
        """Deliver one payload; returns the HTTP or SMTP status (None for apprise), or
        raises DeliveryError saying whether it may be retried."""
        channel = self.channels[name]
        if isinstance(channel, WebhookChannel):
            return await webhook.send(self.client, name, channel, message_id, payload, now)
        renderer = (self.renderers[name] if payload.get("type") != "operator.notice"
                    else self.chat_renderer if isinstance(channel, AppriseChannel)
                    else self.default_renderer)
        assert renderer is not None
        try:
            rendered = renderer.render(context(payload, name, self.timezone,
                                               self.desk_url), now)
        except TemplateProblem as exc:
            raise DeliveryError(name, str(exc), retryable=False) from exc
        if isinstance(channel, EmailChannel):
            return await email.send(name, channel,
                                    email.build(channel, message_id, rendered, now))
        assert isinstance(channel, AppriseChannel)
        await apprise_channel.send(name, channel, rendered)
        return None


def sample_payload(watchlist: str, watch: str, now: datetime,
                   group: str = "story") -> dict[str, Any]:
    """A realistic ``article.matched`` event naming ``watch``, through the real matcher:
    version 2, or version 1 for a ``group: watchlist`` channel."""
    item = WatchItem(name=watch)
    article = Article(
        source="newswatch test", url="https://example.org/newswatch/test-alert",
        link="https://example.org/newswatch/test-alert",
        title=f"Test alert: {watch} in the news", published_at=now,
        summary_html=f"This is a sample alert from newswatch. It mentions {watch} so that "
                     "you can see how a real alert looks on this channel.")
    article = extract(article, now)
    matcher = Matcher([WatchlistConfig(name=watchlist, watch=[item])])
    matches = matcher.match(article)
    if group == "watchlist":
        return outbox.event_data(article, matches, now)
    return outbox.story_event(article, matches, now, every=matcher.match(article, every=True))


def template_problems(config_dir: Path, channels: Mapping[str, Channel],
                      now: datetime, timezone: str = "UTC") -> list[TemplateProblem]:
    """Compile every channel's templates and render a sample alert and digest of both
    payload versions, so a mistake shows at ``check`` time with its file and line.
    (Operator notices always use the shipped templates.)"""
    samples = []
    for group in ("story", "watchlist"):
        alert = sample_payload("sample-watchlist", "Ahmad Massoud", now, group)
        samples += [alert, digest.digest_payload("sample", [alert, alert], now)]
    problems: list[TemplateProblem] = []
    for name, channel in channels.items():
        if isinstance(channel, WebhookChannel):
            continue
        for part, file in channel.templates.model_dump().items():
            if file is None:
                continue
            try:  # each template alone, so every broken one is reported
                renderer = Renderer(config_dir, {part: file})
                for payload in samples:
                    renderer.render(context(payload, name, timezone))
            except TemplateProblem as exc:
                if all(str(p) != str(exc) for p in problems):
                    problems.append(exc)
    return problems
