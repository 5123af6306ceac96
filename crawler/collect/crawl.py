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
from typing import Any
from urllib.parse import urljoin

from crawler.config import Source

log = logging.getLogger(__name__)

#: How long a child has to exit after its stdout closed before it is killed.
EXIT_GRACE_S = 10.0


@dataclass
class CrawlReport:
    """What came back from one crawl."""

    pages: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    retry_after: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    finished: bool = False
    killed: bool = False
    exit_code: int | None = None
    stderr: str = ""


def spec_for(source: Source, *, known: list[str], now: datetime,
             allow_private_networks: bool) -> dict[str, Any]:
    """The JSON the child reads: everything it needs, nothing it could look up itself."""
    crawl = source.crawl
    return {
        "kind": source.kind, "name": source.name, "sitemap": source.sitemap,
        "site": source.site, "start": crawl.start if crawl else [],
        "follow": crawl.follow if crawl else [], "max_depth": crawl.max_depth if crawl else 1,
        "max_pages": crawl.max_pages if crawl else 500, "max_age": source.max_age,
        "now": now.isoformat(), "user_agent": source.user_agent, "timeout": source.timeout,
        "max_bytes": source.max_bytes, "delay": source.delay, "retries": source.retries,
        "robots_txt": source.robots_txt, "allow_private_networks": allow_private_networks,
        "known": known,
    }


def entry_urls(spec: dict[str, Any]) -> list[str]:
    """Where a crawl starts: its listing pages, its sitemap, or robots.txt for ``auto``.
    When none of them can be had, the source is failing, not merely quiet."""
    if spec["kind"] == "crawl":
        return list(spec["start"])
    if spec["sitemap"] == "auto":
        return [urljoin(spec["site"], "/robots.txt")]
    return [spec["sitemap"]]


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
        event = json.loads(line)
    except ValueError:
        log.warning("crawl child wrote a line that is not JSON: %.120r", line)
        return
    kind = event.get("type") if isinstance(event, dict) else None
    if kind == "page":
        report.pages.append(event)
    elif kind == "error":
        report.errors.append(event)
    elif kind == "retry_after":
        report.retry_after.append(event)
    elif kind == "done":
        report.finished = True
        report.requests = int(event.get("requests", 0))


def _kill(pid: int) -> None:
    """Kill the child's whole process group (the crawl and anything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
