"""The config as the CLI and the daemon load it for use: the config layer's checks, then
the alerts layer's (Apprise URLs, templates), every problem reported at once."""

from __future__ import annotations

from pathlib import Path

from alerts.checks import channel_problems
from crawler.config import Config, load_config


def load_checked_config(directory: Path | str | None = None) -> Config:
    """``load_config`` with the alerts layer's checks; raises ConfigError listing all."""
    return load_config(directory, checks=(channel_problems,))
