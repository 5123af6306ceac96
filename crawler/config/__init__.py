"""Load and validate the config directory: newswatch.yaml, sources.yaml, watchlists.yaml.

Every problem is reported as ``FILE:LINE:COL: message``, all of them at once, so a user
who edits the files by hand fixes everything in one round. Values may use ``${VAR}`` and
``${VAR:-default}`` to take secrets from the environment.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from crawler.core.errors import ConfigError, ConfigProblem

SETTINGS_FILE = "newswatch.yaml"
SOURCES_FILE = "sources.yaml"
WATCHLISTS_FILE = "watchlists.yaml"

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_SIZE = re.compile(r"(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9,
               "gib": 2**30}
M = TypeVar("M", bound="BaseModel")
_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _DurationError(ValueError):
    pass


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"30s"``, ``"15m"``, ``"1h30m"``, ``"2d"``."""
    if isinstance(value, bool):
        raise _DurationError(f"bad duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = _DURATION_PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise _DurationError(
                f"bad duration {value!r}: write a number and a unit such as 30s, 15m, 2h or 1d"
            )
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise _DurationError(f"bad duration {value!r}: write it as text such as 15m")
    if seconds <= 0:
        raise _DurationError(f"bad duration {value!r}: it must be longer than zero")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from ``1048576``, ``"10MB"``, ``"5 MiB"``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.fullmatch(str(value).strip())
    if not match or isinstance(value, bool):
        raise ValueError(f"bad size {value!r}: write a number of bytes or e.g. 10MB")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]


def _http_url(value: Any) -> str:
    text = str(value).strip()
    if not re.match(r"^https?://[^/\s]+", text):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return text


def _optional_http_url(value: Any) -> str:
    return "" if value is None or str(value).strip() == "" else _http_url(value)


def _non_empty(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty text")
    return value.strip()


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Url = Annotated[str, BeforeValidator(_http_url)]
Text = Annotated[str, BeforeValidator(_non_empty)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Model):
    """Per-source settings that a source may override."""

    interval: Duration = 900.0
    timeout: Duration = 20.0
    user_agent: Text = "newswatch/0.1 (+https://example.org/newswatch)"
    max_bytes: Size = 10 * 2**20
    respect_cache_hints: bool = True
    delay: Annotated[float, BeforeValidator(lambda v: 0.0 if v in (0, "0") else
                                            parse_duration(v))] = 1.0
    retries: int = Field(default=2, ge=0, le=10)
    robots_txt: bool = True
    full_text: bool = True
    budget: Duration = 600.0


MAX_RETRY_DELAY = 30 * 86400.0


class RetryPolicy(_Model):
    """Delivery attempts for one channel; the defaults span about a day."""

    attempts: int = Field(default=15, ge=1, le=100)
    base_delay: Duration = 30.0
    max_delay: Duration = 4 * 3600.0

    @model_validator(mode="after")
    def _bounded(self) -> RetryPolicy:
        if self.max_delay > MAX_RETRY_DELAY:
            raise ValueError("max_delay is at most 30d (an alert later than that is "
                             "no longer news)")
        return self


def _digest(value: Any) -> str | None:
    """Check a digest schedule at load time; ``crawler.config.digest_cron`` says its forms."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError(f"bad digest {value!r}: write hourly, \"daily at 08:00\" or a cron "
                         "expression")
    digest_cron(value)
    return value.strip()


def digest_cron(spec: str) -> str:
    """The five-field cron expression for ``hourly``, ``daily at HH:MM`` or a cron line."""
    text = " ".join(spec.split()).lower()
    if text == "hourly":
        return "0 * * * *"
    daily = re.fullmatch(r"daily at (\d{1,2}):(\d{2})", text)
    if daily:
        at_hour, at_minute = int(daily.group(1)), int(daily.group(2))
        if at_hour > 23 or at_minute > 59:
            raise ValueError(f"bad digest {spec!r}: no such time of day")
        return f"{at_minute} {at_hour} * * *"
    if text.startswith("daily"):
        raise ValueError(f"bad digest {spec!r}: write e.g. \"daily at 08:00\"")
    if len(text.split()) != 5:
        raise ValueError(f"bad digest {spec!r}: write hourly, \"daily at 08:00\" or a cron "
                         "expression of five fields (minute hour day month weekday)")
    minute, hour, day, month, weekday = text.split()
    try:
        text = " ".join((minute, hour, day, month, _weekdays(weekday)))
        from apscheduler.triggers.cron import CronTrigger
        CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"bad digest {spec!r}: {exc}") from exc
    return text


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekdays(field: str) -> str:
    """A cron weekday field (0 or 7 = Sunday) as day names, because APScheduler counts
    from Monday = 0 and would shift every numbered weekday by one."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = 0, 6
        else:
            low, _, high = span.partition("-")
            first = _day(low)
            last = _day(high) if high else (6 if step else first)
            if last < first:
                last += 7
        for day in range(first, last + 1, int(step) if step else 1):
            days.add(day % 7)
    if not days:
        raise ValueError(f"no weekday in {field!r}")
    return ",".join(_DAYS[d] for d in sorted(days))


def _day(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text) % 7
    if text[:3] in _DAYS:
        return _DAYS.index(text[:3])
    raise ValueError(f"bad weekday {text!r}: use 0-7 (0 and 7 are Sunday) or sun-sat")


def _timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as "
                         "Asia/Kabul or UTC") from exc
    return str(value)


def _recipients(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError("write one address or a list of addresses")
    found = [str(v).strip() for v in items if str(v).strip()]
    for address in found:
        if not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+", address):
            raise ValueError(f"{address!r} is not an email address")
    return found


Digest = Annotated[str | None, BeforeValidator(_digest)]


class Templates(_Model):
    """Jinja2 files (relative to the config directory) replacing the shipped defaults."""

    subject: str | None = None
    text: str | None = None
    html: str | None = None


class _Channel(_Model):
    """What every channel type shares: delivery deadline, retries, digest, throttle."""

    timeout: Duration = 15.0
    retry: RetryPolicy = RetryPolicy()
    digest: Digest = None
    max_per_hour: int | None = Field(default=None, ge=1)
    templates: Templates = Templates()


class WebhookChannel(_Channel):
    """A Standard Webhooks endpoint; an empty ``url`` disables the channel."""

    type: Literal["webhook"]
    url: Annotated[str, BeforeValidator(_optional_http_url)] = ""
    secret: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.url)


class SmtpServer(_Model):
    """Where an email channel hands its messages over; certificates are always verified."""

    host: str = ""
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: str = ""
    ca_file: str | None = None

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


class EmailChannel(_Channel):
    """Email through an SMTP server; an empty ``to`` disables the channel."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["email"]
    to: Annotated[list[str], BeforeValidator(_recipients)] = []
    sender: Annotated[str, Field(alias="from"), BeforeValidator(_non_empty)]
    smtp: SmtpServer

    @property
    def enabled(self) -> bool:
        return bool(self.to) and bool(self.smtp.host)


class AppriseChannel(_Channel):
    """Apprise URLs (Slack, Telegram, Matrix, ntfy, …); no URL disables the channel."""

    type: Literal["apprise"]
    urls: Annotated[list[str], BeforeValidator(
        lambda v: [v] if isinstance(v, str) else v)] = []

    @property
    def enabled(self) -> bool:
        return any(u.strip() for u in self.urls)


Channel = Annotated[WebhookChannel | EmailChannel | AppriseChannel, Field(discriminator="type")]


class DaemonSettings(_Model):
    """How the daemon looks for due work."""

    tick: Duration = 5.0
    concurrency: int = Field(default=8, ge=1, le=256)


def _listen(value: Any) -> str:
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:9108")
    return str(value)


class HttpSettings(_Model):
    """The optional HTTP listener for /healthz and /metrics."""

    listen: Annotated[str, BeforeValidator(_listen)] = "127.0.0.1:9108"


class Retention(_Model):
    """How long finished records are kept."""

    delivered_alerts: Duration = 90 * 86400.0
    articles: Duration = 180 * 86400.0


class StorySettings(_Model):
    """How copies of one story are grouped (crawler/process/stories.py)."""

    window: Duration = 3 * 86400.0
    threshold: float = Field(default=0.4, gt=0.0, le=1.0)


class AtomSettings(_Model):
    """Atom feeds of each watchlist's matches, written to files."""

    directory: Text = "feeds"
    entries: int = Field(default=50, ge=1, le=1000)


class Settings(_Model):
    """newswatch.yaml."""

    database: Text = "newswatch.db"
    defaults: Defaults = Defaults()
    alert_max_age: Duration = 48 * 3600.0
    allow_private_networks: bool = False
    daemon: DaemonSettings = DaemonSettings()
    retention: Retention = Retention()
    stories: StorySettings = StorySettings()
    atom: AtomSettings | None = None
    http: HttpSettings | None = None
    timezone: Annotated[str, BeforeValidator(_timezone)] = "UTC"
    channels: dict[str, Channel] = {}
    operator: Text | None = None

    @model_validator(mode="after")
    def _stories_outlive_alerts(self) -> Settings:
        # a story knows what it was alerted for from its delivered alerts: forgetting them
        # while copies may still join the story would alert for it again
        if self.retention.delivered_alerts < self.stories.window:
            raise ValueError(
                f"retention.delivered_alerts ({_days(self.retention.delivered_alerts)}) is "
                f"shorter than stories.window ({_days(self.stories.window)}): a story would "
                "alert again once its first alert is forgotten; keep it at least as long")
        return self


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g}d"


def _regex(value: Any) -> str:
    text = _non_empty(value)
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"bad regular expression {text!r}: {exc}") from exc
    return text


def _sitemap(value: Any) -> str:
    return "auto" if str(value).strip() == "auto" else _http_url(value)


class CrawlSpec(_Model):
    """A site crawled from listing pages: which links are articles, how far to go."""

    start: list[Url] = Field(min_length=1)
    follow: list[Annotated[str, BeforeValidator(_regex)]] = Field(min_length=1)
    max_depth: int = Field(default=1, ge=1, le=5)
    max_pages: int = Field(default=50, ge=1, le=10000)


class SourceConfig(_Model):
    """One entry of sources.yaml: exactly one of ``feed``, ``sitemap`` or ``crawl``."""

    name: Text
    feed: Url | None = None
    sitemap: Annotated[str, BeforeValidator(_sitemap)] | None = None
    site: Url | None = None
    crawl: CrawlSpec | None = None
    max_age: Duration = 2 * 86400.0
    interval: Duration | None = None
    timeout: Duration | None = None
    user_agent: Text | None = None
    respect_cache_hints: bool | None = None
    full_text: bool | None = None
    delay: Annotated[float, BeforeValidator(lambda v: 0.0 if v in (0, "0") else
                                            parse_duration(v))] | None = None
    retries: int | None = Field(default=None, ge=0, le=10)
    robots_txt: bool | None = None
    max_bytes: Size | None = None
    budget: Duration | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> SourceConfig:
        given = [k for k in ("feed", "sitemap", "crawl") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"source '{self.name}' needs exactly one of feed, sitemap or "
                             f"crawl (it has {', '.join(given) or 'none'})")
        if self.sitemap == "auto" and self.site is None:
            raise ValueError(f"source '{self.name}': sitemap: auto needs site: (the home "
                             "page whose robots.txt lists the sitemaps)")
        return self

    @property
    def kind(self) -> Literal["feed", "sitemap", "crawl"]:
        return "feed" if self.feed else "sitemap" if self.sitemap else "crawl"


class SourcesFile(_Model):
    sources: list[SourceConfig] = []


FieldName = Literal["title", "summary", "text"]


class Alias(_Model):
    """An alias written as a mapping, to say how it compares (``{text: NRF,
    case_sensitive: true}`` so an acronym does not fire on an ordinary word)."""

    text: Text
    case_sensitive: bool | None = None


class ContextRule(_Model):
    """Terms that must, may or must not also appear, optionally within N words of the
    mention (``{terms: [education], within: 10}``)."""

    terms: list[Text] = Field(min_length=1)
    within: int | None = Field(default=None, ge=1, le=1000)


def _rule(value: Any) -> Any:
    """A bare list of terms is a rule without a distance."""
    if isinstance(value, list):
        return {"terms": value}
    if not isinstance(value, dict):
        raise ValueError("write a list of terms, or {terms: [...], within: N}")
    return value


Rule = Annotated[ContextRule, BeforeValidator(_rule)]
AliasEntry = Annotated[
    Annotated[Text, Tag("text")] | Annotated[Alias, Tag("mapping")],
    Discriminator(lambda v: "mapping" if isinstance(v, dict | Alias) else "text")]


class WatchDefaults(_Model):
    """Watchlist-level values for the keys a watch item leaves out."""

    case_sensitive: bool | None = None
    fields: list[FieldName] | None = Field(default=None, min_length=1)
    exclude: list[Text] | None = None
    all_of: Rule | None = None
    any_of: Rule | None = None
    none_of: Rule | None = None


class WatchItem(_Model):
    """A person or term to watch for; keys left out take the watchlist's ``defaults``."""

    name: Text
    aliases: list[AliasEntry] = []
    exclude: list[Text] | None = None
    case_sensitive: bool | None = None
    fields: list[FieldName] | None = Field(default=None, min_length=1)
    all_of: Rule | None = None
    any_of: Rule | None = None
    none_of: Rule | None = None
    priority: Literal["normal", "high"] = "normal"

    def resolved(self, defaults: WatchDefaults) -> WatchItem:
        """This item with every key it leaves out taken from ``defaults``."""
        inherited = {key: getattr(defaults, key) for key in WatchDefaults.model_fields
                     if getattr(self, key) is None and getattr(defaults, key) is not None}
        return self.model_copy(update=inherited) if inherited else self


class WatchlistConfig(_Model):
    """A named list of watch items and the channels its alerts go to."""

    name: Text
    channels: list[Text] = []
    # only articles from these sources; all when unset (an empty list would match nothing)
    sources: list[Text] | None = Field(default=None, min_length=1)
    defaults: WatchDefaults = WatchDefaults()
    watch: list[WatchItem] = Field(min_length=1)

    def items(self) -> list[WatchItem]:
        """The watch items with the watchlist's defaults applied."""
        return [item.resolved(self.defaults) for item in self.watch]


class WatchlistsFile(_Model):
    watchlists: list[WatchlistConfig] = []


@dataclass(frozen=True)
class Source:
    """A source with its defaults applied: what the pipeline polls."""

    name: str
    url: str
    interval: float
    timeout: float
    user_agent: str
    max_bytes: int
    respect_cache_hints: bool = True
    kind: Literal["feed", "sitemap", "crawl"] = "feed"
    full_text: bool = True
    delay: float = 1.0
    retries: int = 2
    robots_txt: bool = True
    budget: float = 600.0
    max_age: float = 2 * 86400.0
    sitemap: str | None = None
    site: str | None = None
    crawl: CrawlSpec | None = None

    @property
    def lease_seconds(self) -> float:
        """How long a claim on this source lasts: its budget and three fetch deadlines."""
        return self.budget + self.timeout * 3 + 60


@dataclass(frozen=True)
class Config:
    """The whole validated config directory."""

    directory: Path
    settings: Settings
    sources: tuple[SourceConfig, ...]
    watchlists: tuple[WatchlistConfig, ...]
    version: str

    @property
    def database_path(self) -> Path:
        path = Path(os.path.expanduser(self.settings.database))
        return path if path.is_absolute() else (self.directory / path).resolve()

    @property
    def atom_directory(self) -> Path | None:
        """Where the watchlists' Atom feeds are written; None when they are off."""
        if self.settings.atom is None:
            return None
        path = Path(os.path.expanduser(self.settings.atom.directory))
        return path if path.is_absolute() else (self.directory / path).resolve()

    def active_sources(self) -> list[Source]:
        d = self.settings.defaults
        return [
            Source(s.name, source_url(s), s.interval or d.interval, s.timeout or d.timeout,
                   s.user_agent or d.user_agent, s.max_bytes or d.max_bytes,
                   d.respect_cache_hints if s.respect_cache_hints is None
                   else s.respect_cache_hints, s.kind,
                   d.full_text if s.full_text is None else s.full_text,
                   d.delay if s.delay is None else s.delay,
                   d.retries if s.retries is None else s.retries,
                   d.robots_txt if s.robots_txt is None else s.robots_txt,
                   s.budget or d.budget, s.max_age, s.sitemap, s.site, s.crawl)
            for s in self.sources
            if s.enabled
        ]

    def enabled_channels(self) -> dict[str, Channel]:
        return {n: c for n, c in self.settings.channels.items() if c.enabled}

    def disabled_channels(self) -> list[str]:
        return [n for n, c in self.settings.channels.items() if not c.enabled]


def source_url(source: SourceConfig) -> str:
    """The address a source row keeps; when it changes, the source is due at once."""
    if source.feed:
        return source.feed
    if source.sitemap == "auto":
        return f"auto:{source.site}"
    if source.sitemap:
        return source.sitemap
    assert source.crawl is not None
    return " ".join(source.crawl.start)


def default_config_dir() -> Path:
    return Path(os.environ.get("NEWSWATCH_CONFIG", "config"))


# --- loading -------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


@dataclass
class _Loaded:
    """One YAML file as plain data, with the line and column of every key and value."""

    file: str
    data: Any
    values: dict[Path_, tuple[int, int]]
    keys: dict[Path_, tuple[int, int]]

    def where(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """Position of the deepest known prefix of ``path`` (pydantic adds union tags)."""
        known: Path_ = ()
        for part in path:
            if (*known, part) in self.values:
                known = (*known, part)
        if key and known in self.keys:
            return self.keys[known]
        return self.values.get(known, (1, 1))

    def problem(self, path: Path_, message: str, *, key: bool = False) -> ConfigProblem:
        line, col = self.where(path, key=key)
        return ConfigProblem(self.file, line, col, message)


def _read_yaml(path: Path, shown: str, problems: list[ConfigProblem]) -> _Loaded | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(ConfigProblem(shown, 1, 1, "file not found: create it (see "
                                      "docs/configuration.md)"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(ConfigProblem(shown, 1, 1, f"cannot read file: {exc}"))
        return None
    try:
        raw = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or "invalid YAML").replace('"', "'")
        if "duplicate key" in problem and exc.context_mark is not None:
            problem = problem.split(" with value")[0]
            problem += f" (the mapping starts at line {exc.context_mark.line + 1}); " \
                       "remove or rename one of them"
        problems.append(ConfigProblem(shown, line, col, f"YAML: {problem}"))
        return None
    loaded = _Loaded(shown, None, {(): (1, 1)}, {})
    loaded.data = _plain(raw, (), loaded, problems)
    if loaded.data is None:
        loaded.data = {}
    if not isinstance(loaded.data, dict):
        problems.append(ConfigProblem(shown, 1, 1, "the file must be a mapping of keys"))
        return None
    return loaded


def _plain(node: Any, path: Path_, loaded: _Loaded, problems: list[ConfigProblem]) -> Any:
    """Turn ruamel nodes into plain data, recording positions and expanding ``${VAR}``."""
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key in node:
            child = (*path, str(key))
            kl, kc = node.lc.key(key)
            vl, vc = node.lc.value(key)
            loaded.keys[child] = (kl + 1, kc + 1)
            loaded.values[child] = (vl + 1, vc + 1)
            out[str(key)] = _plain(node[key], child, loaded, problems)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            line, col = node.lc.item(index)
            loaded.values[(*path, index)] = (line + 1, col + 1)
            items.append(_plain(item, (*path, index), loaded, problems))
        return items
    if isinstance(node, str):
        return _expand_env(str(node), path, loaded, problems)
    return node


def _expand_env(text: str, path: Path_, loaded: _Loaded, problems: list[ConfigProblem]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is not None:
            return value
        if default is not None:
            return default
        problems.append(loaded.problem(
            path, f"environment variable {name} is not set: set it, or write "
                  f"${{{name}:-default}} to give a default"))
        return ""

    return _ENV.sub(substitute, text)


def _describe(error: Mapping[str, Any], loaded: _Loaded, model: type[BaseModel]) -> ConfigProblem:
    loc: Path_ = tuple(error["loc"])
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
    written: Path_ = ()  # the path without pydantic's union tags: keys the file has
    for part in loc:
        if (*written, part) in loaded.values:
            written = (*written, part)
    # A whole list entry (a source's kind check) is named in its message already.
    field = "" if len(loc) == 2 and isinstance(loc[-1], int) else \
        next((str(p) for p in reversed(written) if isinstance(p, str)), "")
    return loaded.problem(loc, f"{field}: {text}" if field else text)


def _fields_at(model: type[BaseModel], loc: Path_) -> set[str]:
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


def _validate(model: type[M], loaded: _Loaded | None,
              problems: list[ConfigProblem]) -> M | None:
    if loaded is None:
        return None
    try:
        return model.model_validate(loaded.data)
    except ValidationError as exc:
        problems.extend(_describe(e, loaded, model) for e in exc.errors())
        return None


def _duplicates(items: list[Any], what: str, path: str, loaded: _Loaded) -> list[ConfigProblem]:
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


def _channel_problems(root: Path, settings: Settings, loaded: _Loaded) -> list[ConfigProblem]:
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


def load_config(directory: Path | str | None = None) -> Config:
    """Read and validate the config directory, or raise ConfigError listing every problem."""
    root = Path(directory) if directory is not None else default_config_dir()
    problems: list[ConfigProblem] = []
    if not root.is_dir():
        raise ConfigError([ConfigProblem(str(root), 1, 1, "config directory not found: pass "
                                         "--config DIR or set NEWSWATCH_CONFIG")])
    files = {name: _read_yaml(root / name, str(root / name), problems)
             for name in (SETTINGS_FILE, SOURCES_FILE, WATCHLISTS_FILE)}
    settings = _validate(Settings, files[SETTINGS_FILE], problems)
    sources = _validate(SourcesFile, files[SOURCES_FILE], problems)
    watchlists = _validate(WatchlistsFile, files[WATCHLISTS_FILE], problems)

    if sources is not None and (src := files[SOURCES_FILE]):
        problems += _duplicates(sources.sources, "source", "sources", src)
    if watchlists is not None and (wl := files[WATCHLISTS_FILE]):
        problems += _duplicates(watchlists.watchlists, "watchlist", "watchlists", wl)
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
                        problems.append(wl.problem(
                            ("watchlists", i, key, j),
                            f"watchlist '{watchlist.name}' names {key[:-1]} '{name}', which "
                            f"{file} does not define"
                            + (f": did you mean '{hint[0]}'?" if hint else "")
                            + f" (defined: {', '.join(defined) or 'none'})"))
    if settings is not None and (st := files[SETTINGS_FILE]):
        problems += _channel_problems(root, settings, st)
    if problems or settings is None or sources is None or watchlists is None:
        raise ConfigError(problems)
    digest = hashlib.sha256()
    for name in (SETTINGS_FILE, SOURCES_FILE, WATCHLISTS_FILE):
        digest.update((root / name).read_bytes())
    return Config(root.resolve(), settings, tuple(sources.sources),
                  tuple(watchlists.watchlists), digest.hexdigest()[:12])
