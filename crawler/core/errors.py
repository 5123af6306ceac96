"""Every error newswatch raises on purpose, each carrying what it concerns.

    NewswatchError
    ├── ConfigError          one or more FILE:LINE:COL problems in the config directory
    ├── StoreError           the database cannot be opened, migrated, read or written
    │   ├── SchemaTooNewError
    │   ├── DiskFullError    the daemon stops safely rather than lose work
    │   ├── DatabaseDamagedError   the file is corrupt or not a database
    │   └── DatabaseBusyError      another process held the write lock past the timeout
    ├── SourceError          one poll of one source failed; the source keeps it as data
    │   ├── FetchError
    │   │   ├── BlockedAddressError   a private/loopback target while that is not allowed
    │   │   ├── HTTPStatusError       a status that is neither 2xx nor 304
    │   │   │   └── GoneError         410: the source is retired
    │   │   ├── RedirectError         a redirect loop, or too many redirects
    │   │   ├── BodyTooLargeError
    │   │   ├── FetchTimeoutError
    │   │   └── HostDeferredError   the host's turn is further off than a poll waits
    │   ├── ParseError       the body is not a feed we can read
    │   ├── CrawlError       a crawl's child process failed or overran its budget
    │   └── WorkerDiedError  the worker process doing the poll's parsing or matching died
    └── DeliveryError        one attempt to deliver one alert on one channel failed
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class NewswatchError(Exception):
    """Base of every deliberate newswatch error.

    Each one pickles whole (its type and attributes), whatever its constructor takes: a
    worker process's error reaches the daemon as what it is (``crawler/app/workers.py``).
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(kind: type[NewswatchError], args: tuple[Any, ...],
             state: dict[str, Any]) -> NewswatchError:
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    return error


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem found in a config file, with where to look."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class ConfigError(NewswatchError):
    """The config directory has problems; all of them are listed, not just the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreError(NewswatchError):
    """The database cannot be opened, migrated, read or written; the driver's error is
    the ``__cause__``."""


class SchemaTooNewError(StoreError):
    """The database was migrated by a newer newswatch than this one."""


class DiskFullError(StoreError):
    """The disk (or the database's size limit) is full; nothing more can be stored."""


class DatabaseDamagedError(StoreError):
    """The database file is damaged (or is not a database): restore it from a backup."""


class DatabaseBusyError(StoreError):
    """Another process held the database's lock for longer than the busy timeout."""


class SourceError(NewswatchError):
    """A poll of one source failed; the message is what the source row keeps."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}")


class FetchError(SourceError):
    """The source could not be fetched."""


class HostDeferredError(FetchError):
    """The host's next turn is further off than a poll waits (a long Retry-After, or
    another daemon holding the host): the request is not made."""


class BlockedAddressError(FetchError):
    """The target resolves to a loopback, private or link-local address."""


class HTTPStatusError(FetchError):
    """The server answered with a status that is neither 2xx nor 304."""

    def __init__(self, source: str, status: int, url: str,
                 retry_after: float | None = None) -> None:
        self.status = status
        self.url = url
        self.retry_after = retry_after
        message = f"HTTP {status} from {url}"
        if retry_after is not None:
            message += f" (Retry-After {retry_after:g}s)"
        super().__init__(source, message)


class GoneError(HTTPStatusError):
    """410 Gone: the feed was removed on purpose; polling it again is pointless."""


class RedirectError(FetchError):
    """A redirect loop, or more redirects than allowed."""


class BodyTooLargeError(FetchError):
    """The body is larger than the configured cap."""


class FetchTimeoutError(FetchError):
    """The request did not complete within its deadline."""


class ParseError(SourceError):
    """The body is not an RSS, Atom or JSON feed that can be read."""


class CrawlError(SourceError):
    """A crawl (sitemap or crawl source) failed, or was killed at its time budget."""


class WorkerDiedError(SourceError):
    """The worker process parsing or matching for this poll died (killed, out of
    memory); the pool is restarted and the next poll starts afresh."""


class DeliveryError(NewswatchError):
    """One attempt to deliver one alert on one channel failed."""

    def __init__(self, channel: str, message: str, *, status: int | None = None,
                 retryable: bool = True, retry_after: float | None = None) -> None:
        self.channel = channel
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(f"channel {channel}: {message}")
