"""The ``newswatch`` command line: one click group, its commands in modules by subject."""

from __future__ import annotations

from crawler.cli import (
    archive,
    daemon,
    database,
    desk,
    matching,
    sources,
    tuning,
    watchlists,
)
from crawler.cli.base import cli

__all__ = ["cli", "main"]
# importing them registers their commands
_COMMANDS = (archive, daemon, database, desk, matching, sources, tuning, watchlists)


def main() -> None:
    cli(prog_name="newswatch")
