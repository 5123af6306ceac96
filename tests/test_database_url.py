"""``database:`` chooses the backend: a path is a SQLite file, ``postgresql://`` a
server. A URL never becomes a file name, and its password is never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.core.errors import StoreError
from crawler.core.redact import dsn_shown
from crawler.store import SQLiteStore
from tests.conftest import Project

#: Nothing listens on port 1: connecting fails at once, with no server needed.
NOWHERE = "postgresql://newswatch:hunter2secret@127.0.0.1:1/news"


@pytest.fixture(autouse=True)
def hooked(project: Project) -> None:
    project.hook("http://127.0.0.1:9/hook")


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_postgresql_url_selects_the_server_and_never_becomes_a_file(
        project: Project) -> None:
    project.settings["database"] = NOWHERE
    config = project.config()
    assert config.database_url == NOWHERE
    with pytest.raises(ValueError, match="not a file"):
        _ = config.database_path
    before = files_under(project.root)
    checked = project.cli("check", "--json")
    assert checked.returncode == 0, checked.stderr
    summary = json.loads(checked.stdout)
    assert summary["database"] == "postgresql://newswatch:***@127.0.0.1:1/news"
    assert summary["backend"] == "postgresql"
    status = project.cli("status")
    assert status.returncode == 2
    assert "cannot reach database postgresql://newswatch:***@127.0.0.1:1/news" in status.stderr
    for result in (checked, status):
        assert "hunter2secret" not in result.stdout + result.stderr
    assert files_under(project.root) == before, "no file was made of the URL"


def test_the_url_may_come_from_the_environment(project: Project,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NW_DATABASE", NOWHERE)
    project.settings["database"] = "${NW_DATABASE}"
    config = project.config()
    assert config.database_url == NOWHERE
    assert config.database_shown == "postgresql://newswatch:***@127.0.0.1:1/news"
    shown = project.cli("check", env={"NW_DATABASE": NOWHERE})
    assert "postgresql://newswatch:***@127.0.0.1:1/news (postgresql)" in shown.stdout
    assert "hunter2secret" not in shown.stdout + shown.stderr


def test_another_url_scheme_is_a_config_error_not_a_file(project: Project) -> None:
    project.settings["database"] = "mysql://root:hunter2secret@db/news"
    result = project.cli("check")
    assert result.returncode == 1
    assert "a mysql:// URL is not a database newswatch can use" in result.stderr
    assert "hunter2secret" not in result.stdout + result.stderr
    assert not any("mysql" in name for name in files_under(project.root))


def test_the_sqlite_backend_refuses_a_url(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match="is a database URL, not a SQLite file") as caught:
        SQLiteStore(NOWHERE)
    assert "hunter2secret" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_path_keeps_sqlite(project: Project) -> None:
    config = project.config()
    assert config.database_url is None
    assert config.database_shown == str(config.database_path)
    assert "(sqlite)" in project.cli("check", check=True).stdout


def test_a_password_is_hidden_wherever_the_url_puts_it() -> None:
    assert dsn_shown("postgresql://u:p%40ss@h:5/d?sslmode=require&password=x") == \
        "postgresql://u:***@h:5/d?sslmode=require&password=***"
    assert dsn_shown("postgresql://h/d") == "postgresql://h/d"


def test_every_postgresql_method_turns_driver_errors_into_store_errors() -> None:
    """As on SQLite (tests/store/test_sqlite.py): each method of the contract is wrapped,
    so a driver error leaves it as a ``StoreError`` with the password scrubbed."""
    from crawler.store import PostgresStore, Store

    public = {n for n in dir(Store) if not n.startswith("_")}
    unwrapped = {n for n in public - {"close", "location", "writable"}
                 if not hasattr(getattr(PostgresStore, n), "__wrapped__")}
    assert unwrapped == set()
