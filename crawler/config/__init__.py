"""Load and validate the config directory: newswatch.yaml, sources.yaml, watchlists.yaml.

Every problem is reported as ``FILE:LINE:COL: message``, all of them at once, so a user
who edits the files by hand fixes everything in one round. A channel's ``url``, ``secret``
and ``urls``, ``smtp.*``, ``http.metrics_token`` and ``database`` may use ``${VAR}`` and
``${VAR:-default}`` to take secrets from the environment; nowhere else is ``${`` read
(``$$`` is a ``$``).

The modules, by job: ``units`` (durations, sizes), ``schedule`` (digest schedules),
``models`` (the pydantic models of the files), ``yamlfile`` (YAML with positions and
``${VAR}``), ``checks`` (what spans files), ``load`` (``load_config`` and ``Config``) and
``source`` (the runtime ``Source``). The names below are the package's public face.
"""

from crawler.config.checks import SettingsCheck
from crawler.config.load import Config, default_config_dir, load_config
from crawler.config.models import (
    FIELDS,
    MAX_RETRY_DELAY,
    SETTINGS_FILE,
    SOURCES_FILE,
    WATCHLISTS_FILE,
    Alias,
    AppriseChannel,
    AtomSettings,
    Channel,
    ContextRule,
    CrawlSpec,
    DaemonSettings,
    Defaults,
    EmailChannel,
    FieldName,
    HttpSettings,
    Retention,
    RetryPolicy,
    Settings,
    SmtpServer,
    SourceConfig,
    SourcesFile,
    StorySettings,
    Templates,
    WatchDefaults,
    WatchItem,
    WatchlistConfig,
    WatchlistsFile,
    WebhookChannel,
)
from crawler.config.schedule import digest_cron, next_digest_time, restricts_both_days
from crawler.config.source import Source, source_key
from crawler.config.units import Duration, Size, Text, Url, parse_duration, parse_size
from crawler.config.yamlfile import CONTROL, LoadedFile, escape_env, one_line

__all__ = [
    "CONTROL", "FIELDS", "MAX_RETRY_DELAY", "SETTINGS_FILE", "SOURCES_FILE", "WATCHLISTS_FILE",
    "Alias",
    "AppriseChannel", "AtomSettings", "Channel", "Config", "ContextRule", "CrawlSpec",
    "DaemonSettings", "Defaults", "Duration", "EmailChannel", "FieldName", "HttpSettings",
    "LoadedFile", "Retention", "RetryPolicy", "Settings", "SettingsCheck", "Size", "SmtpServer",
    "Source", "SourceConfig", "SourcesFile", "StorySettings", "Templates", "Text", "Url",
    "WatchDefaults", "WatchItem", "WatchlistConfig", "WatchlistsFile", "WebhookChannel",
    "default_config_dir", "digest_cron", "escape_env", "load_config", "next_digest_time",
    "one_line", "parse_duration", "parse_size", "restricts_both_days", "source_key",
]
