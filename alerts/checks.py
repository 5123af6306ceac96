"""The config checks only the alerts layer can make: Apprise understands each URL, and
every template compiles and renders a sample alert and digest.

``crawler.config`` cannot import this layer, so the callers that load a config for
real use (``check``, the daemon's startup and reload) pass ``channel_problems`` to
``load_config(checks=...)``; its problems are reported with the config's own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alerts.apprise_channel import invalid_urls
from alerts.channels import template_problems
from crawler.config import AppriseChannel, LoadedFile, Settings
from crawler.core.errors import ConfigProblem


def channel_problems(root: Path, settings: Settings, loaded: LoadedFile) -> list[ConfigProblem]:
    """Unknown Apprise URLs at their place in newswatch.yaml, template errors at their
    own file and line."""
    found = []
    for name, channel in settings.channels.items():
        if isinstance(channel, AppriseChannel):
            found += [loaded.problem(("channels", name, "urls", i),
                                     f"urls: Apprise does not understand URL number {i + 1}")
                      for i in invalid_urls(channel)]
    found += [ConfigProblem(p.file, p.line, 1, p.message)
              for p in template_problems(root, settings.channels, datetime.now(UTC),
                                         settings.timezone)]
    return found
