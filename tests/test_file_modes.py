"""Issue #12 finding 8: the database (which holds delivery errors, payloads and matches)
and its copies are the owner's alone; Atom feeds stay readable, as a web server serves
them. Modes are read with os.stat, which holds for root too."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.app.atom import write_feed
from crawler.store import SQLiteStore
from tests.helpers import Project
from tests.servers import Receiver

FIXTURE = Path(__file__).parent / "fixtures" / "store" / "v6.db"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask() -> object:
    """The common 022 umask, under which files came out 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_database_its_wal_and_shm_and_backups_are_0600(
        project: Project, receiver: Receiver, tmp_path: Path, open_umask: object) -> None:
    project.hook(receiver.url("/hook"))
    project.cli("once", check=True)
    database = project.config().database_path
    store = SQLiteStore(database)  # held open: the WAL and SHM files exist meanwhile
    try:
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert mode(path) == 0o600, path
        copy = tmp_path / "copies" / "backup.db"
        project.cli("backup", str(copy), check=True)
        assert mode(copy) == 0o600
    finally:
        store.close()


def test_an_old_database_its_wal_shm_and_premigration_copy_become_0600(
        tmp_path: Path, open_umask: object) -> None:
    database = tmp_path / "newswatch.db"
    shutil.copyfile(FIXTURE, database)
    old = tmp_path / "newswatch.db.v5.bak"  # a copy an earlier upgrade left, world-readable
    shutil.copyfile(FIXTURE, old)
    for path in (database, old):
        os.chmod(path, 0o644)
    SQLiteStore(database).close()  # migrates: keeps newswatch.db.v6.bak
    assert mode(database) == 0o600
    assert mode(tmp_path / "newswatch.db.v6.bak") == 0o600
    assert mode(old) == 0o600
    for suffix in ("-wal", "-shm"):  # left by a process that did not close cleanly
        Path(f"{database}{suffix}").touch(mode=0o644)
        os.chmod(f"{database}{suffix}", 0o644)
    SQLiteStore(database).close()
    for path in tmp_path.iterdir():
        assert mode(path) == 0o600, path


def test_atom_feeds_are_world_readable_on_purpose(tmp_path: Path) -> None:
    old = os.umask(0o077)  # as under the systemd unit's UMask
    try:
        feed = write_feed(tmp_path / "feeds", "w", [], datetime.now(UTC))
    finally:
        os.umask(old)
    assert mode(feed) == 0o644


def test_the_systemd_unit_sets_a_private_umask() -> None:
    unit = (Path(__file__).parent.parent / "deploy" / "newswatch.service").read_text()
    assert "\nUMask=0077\n" in unit
