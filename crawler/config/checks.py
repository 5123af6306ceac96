"""Checks a schema cannot make: unique names, names that point into another file, the
operator channel. The checks of the layers above (Apprise URLs, templates) come in as
``SettingsCheck`` functions passed to ``load_config``."""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crawler.config.models import (
    FIELDS,
    SETTINGS_FILE,
    SOURCES_FILE,
    Settings,
    SourcesFile,
    WatchlistsFile,
)
from crawler.config.schedule import restricts_both_days
from crawler.config.yamlfile import LoadedFile
from crawler.core.errors import ConfigProblem

SettingsCheck = Callable[[Path, Settings, LoadedFile], list[ConfigProblem]]
"""A check of newswatch.yaml's settings from a layer above config: it gets the config
directory, the settings and their file with positions, and returns located problems."""


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


def operator_problems(settings: Settings, loaded: LoadedFile) -> list[ConfigProblem]:
    """The operator channel, when set, is one of the channels defined."""
    if settings.operator is None or settings.operator in settings.channels:
        return []
    defined = sorted(settings.channels)
    return [loaded.problem(("operator",), f"operator: channel '{settings.operator}' "
                           f"is not defined (defined: {', '.join(defined) or 'none'})")]


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


def digest_warnings(settings: Settings, loaded: LoadedFile) -> list[ConfigProblem]:
    """Digest schedules that restrict both the day of the month and the weekday: their
    meaning changed to standard cron's (either day fires), so ``check`` points at them."""
    return [loaded.problem(("channels", name, "digest"),
                           f"digest: '{channel.digest}' restricts both the day of the month "
                           "and the weekday, so it fires on a day matching either (as in "
                           "cron); earlier releases needed both. Write * in one of them if "
                           "you meant only the other")
            for name, channel in settings.channels.items()
            if channel.digest and restricts_both_days(channel.digest)]


def listener_warnings(settings: Settings, loaded: LoadedFile) -> list[ConfigProblem]:
    """A listener off loopback serves /healthz to anyone who can reach it, and /metrics
    and the Atom feeds to whoever holds their tokens: allowed, but ``check`` says so."""
    if settings.http is None:
        return []
    listen = settings.http.listen
    host = listen.rpartition(":")[0].strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host.lower() == "localhost"
    if loopback:
        return []
    return [loaded.problem(("http", "listen"), f"listen: {listen} is not a loopback address: "
                           "/healthz is open to anyone who can reach it, /metrics to holders "
                           "of http.metrics_token and the Atom feeds to holders of their "
                           "tokens (newswatch feeds); listen on 127.0.0.1 behind a proxy "
                           "unless that is meant")]


def context_rule_warnings(watchlists: WatchlistsFile,
                          loaded: LoadedFile) -> list[ConfigProblem]:
    """Items whose context rules changed meaning: they read every field now, where they
    once read only the item's ``fields``. A rule with ``within`` (which reads the mention's
    own field) or its own ``fields`` is unchanged, and so is an item reading every field.
    Items sharing a rule from ``defaults`` get one warning there."""
    found: dict[tuple[tuple[str | int, ...], str, str], list[str]] = {}
    for i, watchlist in enumerate(watchlists.watchlists):
        for j, (written, item) in enumerate(zip(watchlist.watch, watchlist.items(),
                                                strict=True)):
            narrowed = sorted(set(item.fields or FIELDS))
            if len(narrowed) == len(FIELDS):
                continue
            for kind in ("all_of", "any_of", "none_of"):
                rules = getattr(item, kind) or []
                if not any(r.within is None and r.fields is None for r in rules):
                    continue
                where: tuple[str | int, ...] = (
                    ("watchlists", i, "watch", j, kind) if getattr(written, kind) is not None
                    else ("watchlists", i, "defaults", kind))
                found.setdefault((where, kind, ", ".join(narrowed)), []).append(item.name)
    warnings = []
    for (where, kind, shown), names in found.items():
        quoted = ", ".join(f"'{n}'" for n in names[:3]) + (
            f" and {len(names) - 3} more" if len(names) > 3 else "")
        warnings.append(loaded.problem(where, (
            f"{kind} of watch item{'s' if len(names) > 1 else ''} {quoted} now reads the "
            f"whole article (title, summary, text), though the item is looked for only in "
            f"{shown}; earlier releases read only {shown}. Give the rule fields: [{shown}] "
            "to keep that (see docs/watchlists.md)")))
    return warnings
