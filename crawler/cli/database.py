"""``db copy``: a database moved between SQLite and PostgreSQL (``crawler.store.copying``);
``db migrate``: the config's database brought to this newswatch's schema."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

import click

from crawler.app import fleet
from crawler.cli.base import (
    EXIT_CONFIG,
    EXIT_DATABASE,
    Context,
    cli,
    err,
    out,
    print_json,
    show_table,
)
from crawler.cli.progress import Advance, progress
from crawler.config.yamlfile import expand_env
from crawler.core.clock import SystemClock
from crawler.core.errors import StoreError
from crawler.core.redact import DATABASE_URL
from crawler.store import backend
from crawler.store.copying import copy_database, open_side

#: The exit status of a command stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


@cli.group("db")
def db() -> None:
    """The database itself: migrate it, or move it between SQLite files and PostgreSQL
    servers."""


def _location(value: str) -> str:
    """A side as given, ``${VAR}`` read from the environment (so a password need not be
    on the command line, where ``ps`` shows it)."""
    unset: list[str] = []
    expanded = expand_env(value, unset.append)
    if unset:
        err.print(f"environment variable {unset[0]} is not set", style="red", markup=False)
        raise SystemExit(EXIT_CONFIG)
    return expanded


@db.command("copy")
@click.argument("source")
@click.argument("target")
@click.option("--batch-size", type=click.IntRange(1, 1_000_000), default=5000,
              show_default=True, help="Rows per committed batch; an interrupted copy "
              "resumes after the last one committed.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def copy_command(source: str, target: str, batch_size: int, as_json: bool) -> None:
    """Copy every table of SOURCE into TARGET: each a SQLite file or a postgresql:// URL
    (or ${VAR} holding one). TARGET is created or brought to this newswatch's schema and
    must be empty, or this copy interrupted: run the same command again and it goes on
    where it stopped. The search index is rebuilt on TARGET; row counts are compared at
    the end. Stop the daemons first, or the copy is the source as it was when it began."""
    with ExitStack() as stack:
        bar: list[Advance] = []

        def planned(batches: int) -> None:
            bar.append(stack.enter_context(progress("copying", batches, quiet=as_json)))

        try:
            report = copy_database(_location(source), _location(target), batch=batch_size,
                                   planned=planned,
                                   progress=lambda step, table: bar[0](f"{step} {table}"))
        except StoreError as exc:
            click.echo(f"database error: {exc}", err=True)
            raise SystemExit(EXIT_DATABASE) from exc
        except KeyboardInterrupt:
            err.print("interrupted: every batch committed so far is kept; run the same "
                      "command again to go on where it stopped", style="yellow",
                      markup=False)
            raise SystemExit(EXIT_INTERRUPTED) from None
    if as_json:
        print_json(asdict(report))
        return
    show_table(f"copied {report.source} to {report.target} (schema {report.version}"
               f"{', resumed' if report.resumed else ''})",
               ["table", "rows", "already there", "copied now"],
               [(c.table, c.rows, c.before, c.copied) for c in report.tables])
    out.print(f"search index: {report.indexed} article(s) indexed by this run; every "
              "table's row count matches the source", markup=False)


@db.command("migrate")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def migrate_command(obj: Context, as_json: bool) -> None:
    """Bring the config's database to this newswatch's schema, then stop: the step of an
    upgrade between stopping every daemon and starting them again (docs/deployment.md).
    Any command that opens the database migrates it too, one process at a time (under
    an advisory lock on PostgreSQL); this one says what it did, and warns about daemons
    still running."""
    config = obj.config()
    location = config.database_url or str(config.database_path)
    try:
        before = _version(location)
    except StoreError as exc:
        click.echo(f"database error: {exc}", err=True)
        raise SystemExit(EXIT_DATABASE) from exc
    with obj.store(config) as store:
        after = store.schema_version()
        running = [d for d in store.daemons(SystemClock().now(), fleet.GONE_AFTER)
                   if d["live"]]
    warning = (f"{len(running)} daemon(s) still running on this database "
               f"({', '.join(fleet.name(d) for d in running)}): stop every daemon before "
               "an upgrade, then start them with the new release") if running else ""
    if as_json:
        print_json({"database": config.database_shown, "backend": backend(config),
                    "from": before, "to": after, "migrated": after != before,
                    "warnings": [warning] if warning else []})
    elif after == before:
        out.print(f"database {config.database_shown} is at schema {after}, this "
                  "newswatch's: nothing to do", markup=False)
    else:
        out.print(f"database {config.database_shown} migrated from schema {before} to "
                  f"{after}", markup=False)
    if warning and not as_json:
        err.print(f"warning: {warning}", style="yellow", markup=False)


def _version(location: str) -> int:
    """The schema version a database has now, read without migrating it (0: none yet)."""
    if not DATABASE_URL.match(location) and not Path(location).exists():
        return 0
    side = open_side(location, source=True)
    try:
        return side.version()
    finally:
        side.close()
