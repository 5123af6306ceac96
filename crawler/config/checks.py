"""Checks a schema cannot make: unique names, names that point into another file, and
the channels' operator, Apprise URLs and templates."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from crawler.config.models import (
    SETTINGS_FILE,
    SOURCES_FILE,
    AppriseChannel,
    Settings,
    SourcesFile,
    WatchlistsFile,
)
from crawler.config.yamlfile import LoadedFile
from crawler.core.errors import ConfigProblem


def duplicate_names(items: list[Any], what: str, path: str,
                    loaded: LoadedFile) -> list[ConfigProblem]:
    seen: dict[str, int] = {}
    found = []
    for index, item in enumerate(items):
        if item.name in seen:
            first_line = loaded.where((path, seen[item.name], "name"))[0]
            found.append(loaded.problem(
                (path, index, "name"),
                f"duplicate {what} name '{item.name}' (first defined at line {first_line}): "
                "names must be unique"))
        else:
            seen[item.name] = index
    return found


def channel_problems(root: Path, settings: Settings, loaded: LoadedFile) -> list[ConfigProblem]:
    """What a schema cannot see: the operator channel exists, Apprise understands each
    URL, every template compiles and renders a sample (reported at its own file:line)."""
    from datetime import UTC, datetime

    from alerts.apprise_channel import invalid_urls
    from alerts.channels import template_problems

    found = []
    if settings.operator is not None and settings.operator not in settings.channels:
        defined = sorted(settings.channels)
        found.append(loaded.problem(("operator",), f"operator: channel '{settings.operator}' "
                                    f"is not defined (defined: {', '.join(defined) or 'none'})"))
    for name, channel in settings.channels.items():
        if isinstance(channel, AppriseChannel):
            found += [loaded.problem(("channels", name, "urls", i),
                                     f"urls: Apprise does not understand URL number {i + 1}")
                      for i in invalid_urls(channel)]
    found += [ConfigProblem(p.file, p.line, 1, p.message)
              for p in template_problems(root, settings.channels, datetime.now(UTC))]
    return found


def reference_problems(watchlists: WatchlistsFile, loaded: LoadedFile,
                       settings: Settings | None,
                       sources: SourcesFile | None) -> list[ConfigProblem]:
    """Each channel and source a watchlist names is defined, with the nearest name as a
    hint; a file that failed to load is not held against the watchlists."""
    problems = []
    names = {"channels": (SETTINGS_FILE, sorted(settings.channels) if settings else None),
             "sources": (SOURCES_FILE, sorted(s.name for s in sources.sources)
                         if sources else None)}
    for i, watchlist in enumerate(watchlists.watchlists):
        for key, (file, defined) in names.items():
            for j, name in enumerate(getattr(watchlist, key) or ()):
                if defined is not None and name not in defined:
                    folded = {d.casefold(): d for d in defined}
                    hint = [folded[h] for h in difflib.get_close_matches(
                        name.casefold(), list(folded), n=1)]
                    problems.append(loaded.problem(
                        ("watchlists", i, key, j),
                        f"watchlist '{watchlist.name}' names {key[:-1]} '{name}', which "
                        f"{file} does not define"
                        + (f": did you mean '{hint[0]}'?" if hint else "")
                        + f" (defined: {', '.join(defined) or 'none'})"))
    return problems
