"""The config as the CLI and the daemon load it for use: the config layer's checks, then
the alerts layer's (Apprise URLs, templates), every problem reported at once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from alerts.checks import channel_problems
from crawler.config import Config, load_config

#: The checks of the layers above config that ``check``, the daemon and an edit run.
CHECKS = (channel_problems,)


def load_checked_config(directory: Path | str | None = None,
                        texts: Mapping[str, str] | None = None) -> Config:
    """``load_config`` with the alerts layer's checks; raises ConfigError listing all.
    ``texts``: files by name read from these texts instead (an edit before it is saved)."""
    return load_config(directory, checks=CHECKS, texts=texts)
