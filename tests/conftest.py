"""Shared fixtures: real local servers, a config directory builder, the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crawler.app.daemon import OnceReport, Runner
from crawler.config import Config, load_config
from crawler.store import SQLiteStore
from tests.servers import Receiver, Site

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


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


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

    def store(self) -> SQLiteStore:
        return SQLiteStore(self.config().database_path)

    def cli(self, *args: str, timeout: float = 90, check: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        self.write()
        result = subprocess.run(
            [sys.executable, "-m", "crawler", "--config", str(self.config_dir), *args],
            capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "COLUMNS": "200", **(env or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"newswatch {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def once(self) -> OnceReport:
        """One in-process pass over the config, on its own store."""
        config = self.config()
        store = SQLiteStore(config.database_path)
        try:
            return asyncio.run(Runner(config, store).once())
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
        self.write()
        return subprocess.Popen(
            [sys.executable, "-m", "crawler", "--config", str(self.config_dir), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)
