"""Run one Scrapy crawl in a child process and read its items as they stream in.

Twisted's reactor cannot be restarted and must not share the daemon's asyncio loop, so
each crawl is ``python -m crawler.collect.spiders`` in its own process group, given its spec on
stdin. Its JSON lines are read as they come; at the source's time budget (or when the
daemon stops) the whole group is killed, what arrived is kept, and the overrun is
reported as the poll's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from crawler.config import Source

log = logging.getLogger(__name__)

#: How long a child has to exit after its stdout closed before it is killed.
EXIT_GRACE_S = 10.0


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class PageEvent(_Event):
    """An article page: the URL asked for, where redirects ended, and what the sitemap
    said of it."""

    type: Literal["page"] = "page"
    url: str
    final_url: str
    html: str
    title: str = ""
    published: str | None = None


class ErrorEvent(_Event):
    """A page not had; ``entry`` is the entry point it came from, when it is one."""

    type: Literal["error"] = "error"
    url: str
    reason: str
    entry: str | None = None


class RetryAfterEvent(_Event):
    """A host asked to wait."""

    type: Literal["retry_after"] = "retry_after"
    url: str
    seconds: float


class DoneEvent(_Event):
    """The crawl finished."""

    type: Literal["done"] = "done"
    requests: int
    finished_at: str | None = None


#: One JSON line of the child's stdout.
Event = Annotated[PageEvent | ErrorEvent | RetryAfterEvent | DoneEvent,
                  Field(discriminator="type")]
_EVENT = TypeAdapter[Event](Event)


class BadEventError(ValueError):
    """A line from the crawl child that is not one of its events."""


def parse_event(line: bytes | str) -> Event:
    """The event a line of the child's stdout stands for; BadEventError says what is
    wrong with a line that is none."""
    try:
        return _EVENT.validate_json(line)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}"
                             for e in exc.errors())
        raise BadEventError(f"crawl child wrote a line that is not a crawl event "
                            f"({problems}): {line[:120]!r}") from exc


@dataclass
class CrawlReport:
    """What came back from one crawl."""

    pages: list[PageEvent] = field(default_factory=list)
    errors: list[ErrorEvent] = field(default_factory=list)
    retry_after: list[RetryAfterEvent] = field(default_factory=list)
    requests: int = 0
    finished: bool = False
    killed: bool = False
    exit_code: int | None = None
    stderr: str = ""


def spec_for(source: Source, *, known: list[str], now: datetime,
             allow_private_networks: bool) -> dict[str, Any]:
    """The JSON the child reads: everything it needs, nothing it could look up itself.
    ``entries`` are where it starts (``Source.urls``)."""
    crawl = source.crawl
    return {
        "kind": source.kind, "name": source.name, "sitemap": source.sitemap,
        "entries": list(source.urls),
        "follow": crawl.follow if crawl else [], "max_depth": crawl.max_depth if crawl else 1,
        "max_pages": crawl.max_pages if crawl else 500, "max_age": source.max_age,
        "now": now.isoformat(), "user_agent": source.user_agent, "timeout": source.timeout,
        "max_bytes": source.max_bytes, "delay": source.delay, "retries": source.retries,
        "robots_txt": source.robots_txt, "allow_private_networks": allow_private_networks,
        "known": known,
    }


async def run(spec: dict[str, Any], budget: float, max_bytes: int) -> CrawlReport:
    """Crawl in a child process for at most ``budget`` seconds."""
    report = CrawlReport()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler.collect.spiders", "--source", str(spec["name"]),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True, limit=max_bytes * 7 + 65536)
    tail: deque[str] = deque(maxlen=20)

    async def drain_stderr() -> None:
        assert child.stderr is not None
        async for line in child.stderr:
            tail.append(line.decode("utf-8", "replace").rstrip())

    stderr_task = asyncio.create_task(drain_stderr())
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(spec).encode())
        await child.stdin.drain()
        child.stdin.close()
        async with asyncio.timeout(budget):
            async for line in child.stdout:
                _take(report, line)
            report.exit_code = await asyncio.wait_for(child.wait(), EXIT_GRACE_S)
    except TimeoutError:
        report.killed = True
    finally:
        if child.returncode is None:
            _kill(child.pid)
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
        stderr_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stderr_task
        report.stderr = "\n".join(tail)
    return report


def _take(report: CrawlReport, line: bytes) -> None:
    try:
        event = parse_event(line)
    except BadEventError as exc:
        log.warning("%s", exc)
        return
    match event:
        case PageEvent():
            report.pages.append(event)
        case ErrorEvent():
            report.errors.append(event)
        case RetryAfterEvent():
            report.retry_after.append(event)
        case DoneEvent():
            report.finished = True
            report.requests = event.requests


def _kill(pid: int) -> None:
    """Kill the child's whole process group (the crawl and anything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
