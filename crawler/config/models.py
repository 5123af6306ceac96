"""The pydantic models of the three config files: newswatch.yaml, sources.yaml and
watchlists.yaml. They check one value at a time; ``checks`` sees across files."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    model_validator,
)

from crawler.config.schedule import Digest
from crawler.config.units import (
    Delay,
    Duration,
    Size,
    Text,
    Url,
    http_url,
    non_empty,
    optional_http_url,
)
from crawler.core.redact import DATABASE_URL

SETTINGS_FILE = "newswatch.yaml"
SOURCES_FILE = "sources.yaml"
WATCHLISTS_FILE = "watchlists.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Model):
    """Per-source settings that a source may override."""

    interval: Duration = 900.0
    timeout: Duration = 20.0
    user_agent: Text = "newswatch/0.1 (+https://example.org/newswatch)"
    max_bytes: Size = 10 * 2**20
    respect_cache_hints: bool = True
    delay: Delay = 1.0
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


def _timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as "
                         "Asia/Kabul or UTC") from exc
    return str(value)


def _header(value: Any) -> str:
    """Text for an email header, which a line break would end (and begin another)."""
    text = non_empty(value)
    if re.search(r"[\x00-\x1f\x7f]", text):
        raise ValueError("a line break or control character cannot be in an email header")
    return text


def _recipients(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError("write one address or a list of addresses")
    found = [str(v).strip() for v in items if str(v).strip()]
    for address in found:
        if not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+", address):
            raise ValueError(f"{address!r} is not an email address")
    return found


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
    group: Literal["story", "watchlist"] = "story"


class WebhookChannel(_Channel):
    """A Standard Webhooks endpoint; an empty ``url`` disables the channel."""

    type: Literal["webhook"]
    url: Annotated[str, BeforeValidator(optional_http_url)] = ""
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
    sender: Annotated[str, Field(alias="from"), BeforeValidator(_header)]
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


MIN_LEASE = 2.0
MAX_LEASE = 60.0


class DaemonSettings(_Model):
    """How the daemon looks for due work, and how long its claims on it last."""

    tick: Duration = 5.0
    #: how long a claim on a source or an alert lasts; renewed every third of it while
    #: the work runs, so a dead daemon's work is taken over within lease + tick
    lease: Duration = MAX_LEASE
    concurrency: int = Field(default=8, ge=1, le=256)
    #: worker processes for parsing, extraction, matching and fingerprints; None is one
    #: per core, 0 runs them in the daemon's own process (crawler/app/workers.py)
    workers: StrictInt | None = Field(default=None, ge=0, le=256)

    @model_validator(mode="after")
    def _takeover_bounded(self) -> DaemonSettings:
        # tick < lease <= 60 s keeps the takeover of a dead daemon's work (lease + tick)
        # under two minutes, and a renewal (every lease / 3) well inside its lease
        if not MIN_LEASE <= self.lease <= MAX_LEASE:
            raise ValueError(f"lease is {self.lease:g}s: it must be from {MIN_LEASE:g}s to "
                             f"{MAX_LEASE:g}s (a dead daemon's work waits for it to expire)")
        if self.tick >= self.lease:
            raise ValueError(f"tick ({self.tick:g}s) must be shorter than lease "
                             f"({self.lease:g}s): a dead daemon's work is taken over within "
                             "lease + tick")
        return self


def _listen(value: Any) -> str:
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:9108")
    return str(value)


class HttpSettings(_Model):
    """The optional HTTP listener: /healthz, /metrics, the Atom feeds and, with ``desk``,
    the triage desk (docs/desk.md)."""

    listen: Annotated[str, BeforeValidator(_listen)] = "127.0.0.1:9108"
    desk: bool = False
    #: where users reach the desk (links in alert emails; https makes the cookie Secure)
    public_url: Annotated[str, BeforeValidator(optional_http_url)] = ""
    #: the bearer token /metrics needs from anywhere but loopback (``${VAR}``)
    metrics_token: str = ""

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.lower().startswith("https://")

    @property
    def desk_links(self) -> str:
        """Where alert emails link a story's desk page: ``public_url`` (no trailing
        slash) when the desk is on, else nothing (the emails give CLI commands)."""
        return self.public_url.rstrip("/") if self.desk and self.public_url else ""


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


#: The URL schemes of the PostgreSQL backend (libpq reads both).
DATABASE_SCHEMES = ("postgresql", "postgres")


def _database(value: Any) -> str:
    """A SQLite file path or a ``postgresql://`` URL; any other URL is an error, never a
    file name. The message never repeats the value: it may hold a password."""
    text = non_empty(value)
    if DATABASE_URL.match(text):
        scheme = text.split(":", 1)[0].lower()
        if scheme not in DATABASE_SCHEMES:
            raise ValueError(f"a {scheme}:// URL is not a database newswatch can use: give a "
                             "file path (SQLite) or postgresql://USER@HOST:PORT/NAME")
        if not text.startswith(tuple(f"{s}://" for s in DATABASE_SCHEMES)):
            raise ValueError("write the URL scheme in lower case: postgresql://")
    return text


class Settings(_Model):
    """newswatch.yaml."""

    database: Annotated[str, BeforeValidator(_database)] = "newswatch.db"
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
    text = non_empty(value)
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"bad regular expression {text!r}: {exc}") from exc
    return text


def _sitemap(value: Any) -> str:
    return "auto" if str(value).strip() == "auto" else http_url(value)


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
    delay: Delay | None = None
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
FIELDS: tuple[FieldName, ...] = ("title", "summary", "text")


def _term(value: Any) -> str:
    """A phrase to look for; a ``*`` at its end makes it a prefix (``guarantee*``: the
    last word may go on, as in guarantees, guaranteed), whole-word at its start."""
    text = non_empty(value)
    if unicodedata.normalize("NFKC", text).endswith("*"):
        stem = unicodedata.normalize("NFKC", text)[:-1]
        word = re.split(r"[\W_]+", stem)[-1]
        if len(word) < 2 or not stem[-1:].isalnum():
            raise ValueError(f"{text!r}: a * ends a word of at least two letters, as in "
                             "guarantee* (a prefix of guarantees, guaranteed)")
    return text


Term = Annotated[str, BeforeValidator(_term)]


class Alias(_Model):
    """An alias written as a mapping, to say how it compares (``{text: NRF,
    case_sensitive: true}`` so an acronym does not fire on an ordinary word)."""

    text: Term
    case_sensitive: bool | None = None


class ContextRule(_Model):
    """Terms that must, may or must not also appear, optionally within N words of the
    mention (``{terms: [education], within: 10}``), in every field unless ``fields`` says
    which: the whole article, even when the item's own ``fields`` is narrower."""

    terms: list[Term] = Field(min_length=1)
    within: int | None = Field(default=None, ge=1, le=1000)
    fields: list[FieldName] | None = Field(default=None, min_length=1)


def _rules(value: Any) -> Any:
    """A bare list of terms is one rule without a distance; a list of mappings is several
    rules, each of which must hold."""
    if isinstance(value, dict | ContextRule):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(v, dict | ContextRule) for v in value):
            return value
        if not any(isinstance(v, dict | list | ContextRule) for v in value):
            return [{"terms": value}]
    raise ValueError("write a list of terms, {terms: [...], within: N}, or a list of such "
                     "mappings (each must hold)")


Rules = Annotated[list[ContextRule], BeforeValidator(_rules)]
AliasEntry = Annotated[
    Annotated[Term, Tag("text")] | Annotated[Alias, Tag("mapping")],
    Discriminator(lambda v: "mapping" if isinstance(v, dict | Alias) else "text")]


class WatchDefaults(_Model):
    """Watchlist-level values for the keys a watch item leaves out."""

    case_sensitive: bool | None = None
    fields: list[FieldName] | None = Field(default=None, min_length=1)
    exclude: list[Term] | None = None
    all_of: Rules | None = None
    any_of: Rules | None = None
    none_of: Rules | None = None


class WatchItem(_Model):
    """A person or term to watch for; keys left out take the watchlist's ``defaults``."""

    name: Term
    aliases: list[AliasEntry] = []
    exclude: list[Term] | None = None
    case_sensitive: bool | None = None
    fields: list[FieldName] | None = Field(default=None, min_length=1)
    all_of: Rules | None = None
    any_of: Rules | None = None
    none_of: Rules | None = None
    priority: Literal["normal", "high"] = "normal"

    def spellings(self) -> list[str]:
        """The name and every alias as written: what ``search --watch`` looks for."""
        return [self.name, *(a.text if isinstance(a, Alias) else a for a in self.aliases)]

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

