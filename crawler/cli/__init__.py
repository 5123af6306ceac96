"""The ``newswatch`` command line: one click group, its commands in modules by subject."""

from __future__ import annotations

from crawler.cli import archive, daemon, matching, sources, tuning, watchlists
from crawler.cli.base import cli

__all__ = ["cli", "main"]
_COMMANDS = (archive, daemon, matching, sources, tuning, watchlists)  # registers them


def main() -> None:
    cli(prog_name="newswatch")
