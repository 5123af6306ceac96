"""Debian's Chromium for the browser tests, driven by Playwright (never ``playwright
install``: it downloads a browser). Without Chromium or Playwright a test skips and says
why, or fails where ``.ci/run`` requires them (``NEWSWATCH_REQUIRE_CHROMIUM``)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def chromium_path() -> str | None:
    return next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and Path(p).exists()), None)


@contextlib.contextmanager
def launched_chromium() -> Iterator[Any]:
    """A headless Chromium browser, closed on the way out."""
    executable = chromium_path()
    required = bool(os.environ.get("NEWSWATCH_REQUIRE_CHROMIUM"))  # set by .ci/run
    if executable is None:
        (pytest.fail if required else pytest.skip)(
            "no Chromium found: install Debian's chromium package "
            "(apt-get install -y chromium; .ci/run does it as root)")
    try:
        from playwright import sync_api
    except ImportError:
        (pytest.fail if required else pytest.skip)(
            "playwright is missing: pip install -e '.[test]'")
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable,
                                         args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()

