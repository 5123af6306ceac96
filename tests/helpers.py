"""The helpers the tests share: a config directory builder, the CLI in process and as the
real command, a hand-moved clock, and bounded waits.

The servers the tests talk to live in ``tests/servers.py`` (HTTP) and ``tests/smtp.py``
(SMTP); the documents they serve in ``tests/feeds.py`` and ``tests/newssite.py``; the
fixtures in ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from click.testing import CliRunner

from alerts.dispatch import Dispatcher
from crawler.app.daemon import OnceReport, Runner, _ConfigWatcher, _Work
from crawler.app.pipeline import Pipeline
from crawler.config import Config, WatchItem, WatchlistConfig, load_config
from crawler.core.article import Article
from crawler.core.clock import Clock
from crawler.process import dedup
from crawler.process.match import Matcher
from crawler.store import Store, open_store

SECRET = "whsec_" + base64.b64encode(b"newswatch-test-secret-0123456789").decode()

WATCHLIST = {
    "name": "afghan-opposition",
    "channels": ["hook"],
    "watch": [
        {"name": "Ahmad Massoud", "aliases": ["Ahmad Masoud", "Ahmed Massoud", "Massoud"],
         "exclude": ["Ahmad Shah Massoud"]},
        {"name": "Atta Mohammad Noor", "aliases": ["Atta Muhammad Nur"]},
        {"name": "intra-Afghan dialogue"},
    ],
}

#: The wide terminal the CLI's tables are printed on, so no cell is folded.
COLUMNS = "200"
# The CLI's rich consoles fix their width when built if COLUMNS is set then (pytest-xdist
# workers inherit COLUMNS=80); unset, they read it at each print, from each run's env.
# Hence also the late import of crawler.cli below.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)


def _real_command() -> list[str]:
    """The installed ``newswatch`` script beside this interpreter (``python -m crawler``
    where the package is not installed with its scripts)."""
    script = Path(sys.executable).with_name("newswatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "crawler"]


NEWSWATCH = _real_command()


def make_article(url: str = "https://e.org/a", guid: str | None = None, source: str = "S",
                 **fields: object) -> Article:
    """An article as a feed gives it: the canonical URL, the link as written."""
    fields.setdefault("title", "t")
    return Article(source=source, url=dedup.canonical_url(url), link=url, guid=guid,
                   **fields)  # type: ignore[arg-type]


def massoud_noor_dialogue() -> Matcher:
    """One watchlist ``w``: Ahmad Massoud (not his father), Noor, the intra-Afghan dialogue."""
    return Matcher([WatchlistConfig(name="w", watch=[
        WatchItem(name="Ahmad Massoud", aliases=["Ahmad Masoud", "Massoud"],
                  exclude=["Ahmad Shah Massoud"]),
        WatchItem(name="Noor"),
        WatchItem(name="intra-Afghan dialogue"),
    ])])


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def wait_until(check: Callable[[], bool], timeout: float = 30.0,
               every: float = 0.05) -> bool:
    """Poll ``check`` until it holds or ``timeout`` passes; whether it held. Only for
    what happens in another thread or process: a bound on a wait, never a timing claim."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


def wait_for_log(lines: list[str], fragment: str, timeout: float = 30) -> bool:
    """Wait (bounded) until a line of a daemon's collected log contains ``fragment``."""
    return wait_until(lambda: any(fragment in line for line in lines), timeout, 0.1)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound and released at once)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def newswatch(*args: str, input: str | None = None,
              env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    """``newswatch ARGS`` run in this process by click's runner: the exit code, stdout and
    stderr a subprocess would give, without paying the imports again on every call.

    An exception the CLI lets through becomes exit code 1 with its traceback on stderr,
    as Python itself would do. The CLI points the root logger at its own stderr; that is
    undone afterwards so that later tests log where pytest expects.
    """
    from crawler.cli import cli as newswatch_group

    root = logging.getLogger()
    saved = root.handlers[:], root.level, {
        name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    try:
        result = CliRunner().invoke(newswatch_group, list(args), input=input,
                                    env={"COLUMNS": COLUMNS, **(env or {})},
                                    prog_name="newswatch", catch_exceptions=True)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess(["newswatch", *args], result.exit_code,
                                       result.stdout, stderr)


def newswatch_process(*args: str, timeout: float = 120,
                      env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``newswatch`` command as a subprocess: for the few smoke tests of the
    installed entry point."""
    return subprocess.run([*NEWSWATCH, *args], capture_output=True, text=True,
                          timeout=timeout,
                          env={**os.environ, "COLUMNS": COLUMNS} if env is None else env)


def _checked(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(result.args)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Project:
    """A config directory in a temporary folder, and ways to run newswatch on it."""

    root: Path
    settings: dict[str, Any] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    watchlists: list[dict[str, Any]] = field(default_factory=lambda: [WATCHLIST])

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    def write(self) -> Path:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        settings = {"database": "../data/test.db", "allow_private_networks": True,
                    **self.settings}
        # All test sites share one host: the 1 s per-host politeness delay would only
        # make the suite slow. Tests of politeness set their own.
        settings["defaults"] = {"delay": "0", **settings.get("defaults", {})}
        # JSON is YAML, and keeps the files exact.
        (self.config_dir / "newswatch.yaml").write_text(json.dumps(settings, indent=1))
        (self.config_dir / "sources.yaml").write_text(json.dumps({"sources": self.sources}))
        (self.config_dir / "watchlists.yaml").write_text(
            json.dumps({"watchlists": self.watchlists}, ensure_ascii=False))
        return self.config_dir

    def hook(self, url: str, **extra: Any) -> None:
        self.settings.setdefault("channels", {})["hook"] = {
            "type": "webhook", "url": url, "secret": SECRET,
            "retry": {"attempts": 3, "base_delay": "1s"}, **extra}

    def config(self) -> Config:
        return load_config(self.write())

    def store(self) -> Store:
        """The project's store, on whichever backend its ``database`` selects."""
        return open_store(self.config())

    def cli(self, *args: str, check: bool = False, write: bool = True,
            input: str | None = None,
            env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
        """``newswatch --config DIR ARGS`` in process (see :func:`newswatch`); ``write``
        rewrites the config files first."""
        if write:
            self.write()
        result = newswatch("--config", str(self.config_dir), *args, input=input, env=env)
        return _checked(result) if check else result

    def once(self, clock: Clock | None = None) -> OnceReport:
        """One in-process pass over the config, on its own store."""
        config = self.config()
        store = open_store(config)
        try:
            return asyncio.run(Runner(config, store, clock=clock).once())
        finally:
            store.close()

    def run_logged(self) -> tuple[subprocess.Popen[str], list[str]]:
        """``newswatch run`` as a subprocess, with its log lines collected as they come."""
        daemon = self.popen("run")
        lines: list[str] = []
        assert daemon.stderr is not None
        stderr = daemon.stderr
        threading.Thread(target=lambda: lines.extend(iter(stderr.readline, "")),
                         daemon=True).start()
        return daemon, lines

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """The real ``newswatch --config DIR ARGS`` as a subprocess (the daemon's tests)."""
        self.write()
        return subprocess.Popen(
            [*NEWSWATCH, "--config", str(self.config_dir), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "COLUMNS": COLUMNS})


async def _no_build(_: Config) -> tuple[Pipeline, Dispatcher]:
    raise AssertionError("a rejected reload builds nothing")


def reload_after(project: Project, edit: Callable[[], object],
                 build: Callable[[Config], Any] = _no_build) -> bool:
    """Run a runner on the project's config, ``edit`` the files, reload once in process
    (what SIGHUP and the file watcher do), with ``build`` making the new pipeline; True
    if the running config was kept. What it logged is the caller's ``caplog``'s."""
    config = project.config()
    store = project.store()
    try:
        runner = Runner(config, store)
        watcher = _ConfigWatcher(runner, cast(_Work, None), build)
        edit()
        project.write()
        asyncio.run(watcher.reload())
    finally:
        store.close()
    return runner.config is config
