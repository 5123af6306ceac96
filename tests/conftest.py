"""Fixtures: real local servers started once a session and reset for each test, and a
config directory in each test's temporary folder. The helpers are in ``tests/helpers.py``
(re-exported here, where tests have long imported them from)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import launched_chromium
from tests.helpers import SECRET, WATCHLIST, FakeClock, Project
from tests.servers import Receiver, Site
from tests.smtp import SmtpServer

__all__ = ["SECRET", "WATCHLIST", "FakeClock", "Project"]


@pytest.fixture(scope="session")
def _site_server() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


@pytest.fixture(scope="session")
def _receiver_server() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def site(_site_server: Site) -> Site:
    """The session's site on 127.0.0.1, with no pages and no requests recorded."""
    _site_server.reset()
    return _site_server


@pytest.fixture
def receiver(_receiver_server: Receiver) -> Receiver:
    """The session's webhook receiver, answering 200 with nothing recorded."""
    _receiver_server.reset()
    return _receiver_server


@pytest.fixture(scope="session")
def _smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer("none")
    yield server
    server.close()


@pytest.fixture
def smtp(_smtp_server: SmtpServer) -> SmtpServer:
    """The session's plain SMTP server on 127.0.0.1, its mailbox empty."""
    _smtp_server.mailbox.reset()
    return _smtp_server


@pytest.fixture(name="plain_smtp")
def _plain_smtp(smtp: SmtpServer) -> SmtpServer:
    """The same server, under the name the email tests know it by."""
    return smtp


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-screenshots", action="store_true",
                     help="write docs/email-en.png and docs/email-fa.png from the Chromium "
                          "email tests (tests/test_email_chromium.py)")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium for one test (tests/browser.py), closed after it."""
    with launched_chromium() as launched:
        yield launched
