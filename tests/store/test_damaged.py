"""A damaged database file gives a clear message and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import cli
from tests import schema
from tests.conftest import Project
from tests.feeds import Item, rss
from tests.servers import Page, Receiver, Site

DAMAGED = ("sources", "articles", "matches", "stories", "outbox")


def damage(path: Path) -> None:
    """Write garbage over the pages of the tables the read commands use, in the middle
    of the file; the schema and the migrations table stay whole, so the file opens and
    the damage shows only when those tables are read (as a bad disk sector would)."""
    size = schema.value(path, "PRAGMA page_size")  # where the tables lie in the file
    pages = [r["pageno"] for r in schema.rows(
        path, f"SELECT pageno FROM dbstat WHERE name IN ({','.join('?' * len(DAMAGED))})",
        DAMAGED)]
    assert pages
    with path.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * size)
            f.write(bytes([0xA5, 0x5A]) * (size // 2))


@pytest.mark.parametrize("command", [["matches"], ["stories"], ["alerts"], ["status"]])
def test_a_damaged_database_exits_2_with_a_message(project: Project, site: Site,
                                                   receiver: Receiver,
                                                   command: list[str]) -> None:
    site.pages["/feed.xml"] = Page(rss([
        Item(f"Ahmad Massoud statement {n}", site.url(f"/a/{n}"), "word " * 400, f"g{n}")
        for n in range(30)]))
    project.sources = [{"name": "F", "feed": site.url("/feed.xml")}]
    project.hook(receiver.url("/hook"))
    project.once()
    damage(project.config().database_path)

    result = CliRunner().invoke(cli, ["--config", str(project.config_dir), *command])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert result.exit_code == 2, result.output
    assert "database" in result.output and "Traceback" not in result.output
