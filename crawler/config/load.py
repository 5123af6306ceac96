"""Load the config directory: read each file with positions, validate it, run the checks
across files, and report every problem at once as ``FILE:LINE:COL: message``."""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from crawler.config.checks import (
    SettingsCheck,
    context_rule_warnings,
    digest_warnings,
    duplicate_names,
    listener_warnings,
    operator_problems,
    reference_problems,
)
from crawler.config.models import (
    SETTINGS_FILE,
    SOURCES_FILE,
    WATCHLISTS_FILE,
    Channel,
    Settings,
    SourceConfig,
    SourcesFile,
    WatchlistConfig,
    WatchlistsFile,
)
from crawler.config.source import Source, source_key
from crawler.config.yamlfile import KeyPath, LoadedFile, read_yaml
from crawler.core.errors import ConfigError, ConfigProblem
from crawler.core.redact import DATABASE_URL, dsn_shown

M = TypeVar("M", bound="BaseModel")


@dataclass(frozen=True)
class Config:
    """The whole validated config directory, and what ``check`` warns about in it."""

    directory: Path
    settings: Settings
    sources: tuple[SourceConfig, ...]
    watchlists: tuple[WatchlistConfig, ...]
    version: str
    warnings: tuple[ConfigProblem, ...] = ()

    @property
    def database_url(self) -> str | None:
        """The server database's URL (``postgresql://…``); None for a SQLite file."""
        value = self.settings.database
        return value if DATABASE_URL.match(value) else None

    @property
    def database_path(self) -> Path:
        """The SQLite file; a database URL is never taken for one (a ``ValueError``)."""
        if self.database_url is not None:
            raise ValueError("database is a URL, not a file")
        path = Path(os.path.expanduser(self.settings.database))
        return path if path.is_absolute() else (self.directory / path).resolve()

    @property
    def database_shown(self) -> str:
        """The database as messages show it: the path, or the URL without its password."""
        url = self.database_url
        return str(self.database_path) if url is None else dsn_shown(url)

    @property
    def atom_directory(self) -> Path | None:
        """Where the watchlists' Atom feeds are written; None when they are off."""
        if self.settings.atom is None:
            return None
        path = Path(os.path.expanduser(self.settings.atom.directory))
        return path if path.is_absolute() else (self.directory / path).resolve()

    def active_sources(self) -> list[Source]:
        return [self.resolve(s) for s in self.sources if s.enabled]

    def resolve(self, s: SourceConfig) -> Source:
        """The source with the config's defaults applied."""
        d = self.settings.defaults
        return Source(s.name, source_key(s), s.interval or d.interval,
                      s.timeout or d.timeout,
                      s.user_agent or d.user_agent, s.max_bytes or d.max_bytes,
                      d.respect_cache_hints if s.respect_cache_hints is None
                      else s.respect_cache_hints, s.kind,
                      d.full_text if s.full_text is None else s.full_text,
                      d.delay if s.delay is None else s.delay,
                      d.retries if s.retries is None else s.retries,
                      d.robots_txt if s.robots_txt is None else s.robots_txt,
                      s.budget or d.budget, s.max_age, s.sitemap, s.site, s.crawl)

    def enabled_channels(self) -> dict[str, Channel]:
        return {n: c for n, c in self.settings.channels.items() if c.enabled}

    def disabled_channels(self) -> list[str]:
        return [n for n, c in self.settings.channels.items() if not c.enabled]


def default_config_dir() -> Path:
    return Path(os.environ.get("NEWSWATCH_CONFIG", "config"))


def _settings_env(path: KeyPath) -> bool:
    """Where newswatch.yaml reads ``${VAR}``: the secrets and endpoints an operator keeps
    out of the file. Elsewhere, and in the files remote text is written into, it is not
    read (a feed could otherwise carry a secret out in its own URL)."""
    match path:
        case ("database",) | ("channels", _, "url" | "secret") | ("channels", _, "smtp", _):
            return True
        case ("http", "metrics_token"):
            return True
        case ("channels", _, "urls" | "to", *_) | ("channels", _, "from"):
            return True
    return False


def _describe(error: Mapping[str, Any], loaded: LoadedFile,
              model: type[BaseModel]) -> ConfigProblem:
    loc: KeyPath = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = sorted(_fields_at(model, loc[:-1]))
        hint = difflib.get_close_matches(key, allowed, n=1)
        message = f"unknown key '{key}'"
        message += f": did you mean '{hint[0]}'?" if hint else ""
        message += f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return loaded.problem(loc, message, key=True)
    if kind == "missing":
        return loaded.problem(loc[:-1], f"missing required key '{loc[-1]}'")
    if kind == "union_tag_not_found":
        return loaded.problem(loc, "missing required key 'type' (webhook, email or apprise)")
    if kind == "union_tag_invalid":
        return loaded.problem((*loc, "type"), f"type: must be 'webhook', 'email' or 'apprise', "
                                              f"not {error['ctx']['tag']!r}")
    text = str(error.get("msg", "invalid value"))
    text = text.removeprefix("Value error, ")
    if kind == "literal_error":
        text = f"must be {error['ctx']['expected']}"
    written = loaded.written(loc)  # the path without pydantic's union tags
    # A whole list entry (a source's kind check) is named in its message already.
    field = "" if len(loc) == 2 and isinstance(loc[-1], int) else \
        next((str(p) for p in reversed(written) if isinstance(p, str)), "")
    return loaded.problem(loc, f"{field}: {text}" if field else text)


def _fields_at(model: type[BaseModel], loc: KeyPath) -> set[str]:
    """The keys a model accepts at ``loc``, for the 'allowed here' hint."""
    current: list[Any] = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        fields = [m.model_fields[part] for m in current if part in m.model_fields]
        if fields:
            current = _models_in(fields[0].annotation)
            continue
        # dict values (channels) pass through; a union tag ('email') picks its model
        tagged = [m for m in current if _tag_of(m) == part]
        current = tagged or current
    if len(current) != 1:
        return set()
    return {f.alias or n for n, f in current[0].model_fields.items()}


def _tag_of(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    args: tuple[Any, ...] = getattr(field.annotation, "__args__", ()) if field else ()
    return args[0] if len(args) == 1 else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def _validate(model: type[M], loaded: LoadedFile | None,
              problems: list[ConfigProblem]) -> M | None:
    """The file as ``model``, or None with its problems; a ``${`` under an unknown key is
    left to that key's own problem."""
    if loaded is None:
        return None
    try:
        validated: M | None = model.model_validate(loaded.data)
        unknown: list[KeyPath] = []
    except ValidationError as exc:
        problems.extend(_describe(e, loaded, model) for e in exc.errors())
        validated = None
        unknown = [loaded.written(tuple(e["loc"])) for e in exc.errors()
                   if e["type"] == "extra_forbidden"]
    unexpanded = [p for path, p in loaded.unexpanded
                  if not any(path[:len(u)] == u for u in unknown)]
    problems.extend(unexpanded)
    return None if unexpanded else validated


def load_config(directory: Path | str | None = None, *,
                checks: Sequence[SettingsCheck] = (),
                texts: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config directory, or raise ConfigError listing every problem.

    ``checks`` are the settings checks of the layers above (the alerts layer's Apprise
    URLs and templates): they run when newswatch.yaml validates, and their problems are
    reported with the others, so one round fixes everything. ``texts`` stands in for
    files by name (an edit validated before it is saved: ``crawler.config.edit``); the
    problems still name the file on disk."""
    texts = texts or {}
    root = Path(directory) if directory is not None else default_config_dir()
    problems: list[ConfigProblem] = []
    warnings: list[ConfigProblem] = []
    if not root.is_dir():
        raise ConfigError([ConfigProblem(str(root), 1, 1, "config directory not found: pass "
                                         "--config DIR or set NEWSWATCH_CONFIG")])
    files = {name: read_yaml(root / name, str(root / name), problems,
                             _settings_env if name == SETTINGS_FILE else lambda _: False,
                             texts.get(name))
             for name in (SETTINGS_FILE, SOURCES_FILE, WATCHLISTS_FILE)}
    settings = _validate(Settings, files[SETTINGS_FILE], problems)
    sources = _validate(SourcesFile, files[SOURCES_FILE], problems)
    watchlists = _validate(WatchlistsFile, files[WATCHLISTS_FILE], problems)

    if sources is not None and (src := files[SOURCES_FILE]):
        problems += duplicate_names(sources.sources, "source", "sources", src)
    if watchlists is not None and (wl := files[WATCHLISTS_FILE]):
        problems += duplicate_names(watchlists.watchlists, "watchlist", "watchlists", wl)
        problems += reference_problems(watchlists, wl, settings, sources)
        warnings += context_rule_warnings(watchlists, wl)
    if settings is not None and (st := files[SETTINGS_FILE]):
        problems += operator_problems(settings, st)
        warnings += digest_warnings(settings, st) + listener_warnings(settings, st)
        for check in checks:
            problems += check(root, settings, st)
    if problems or settings is None or sources is None or watchlists is None:
        raise ConfigError(problems)
    digest = hashlib.sha256()
    for name in (SETTINGS_FILE, SOURCES_FILE, WATCHLISTS_FILE):
        digest.update(texts[name].encode() if name in texts else (root / name).read_bytes())
    return Config(root.resolve(), settings, tuple(sources.sources),
                  tuple(watchlists.watchlists), digest.hexdigest()[:12],
                  tuple(warnings))
