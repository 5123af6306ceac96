"""The triage desk's commands: desk (serve it alone), users, feeds (docs/desk.md)."""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from crawler.app.desk import auth, standalone
from crawler.cli.base import EXIT_CONFIG, Context, cli, err, out, print_json, show_table
from crawler.config import HttpSettings
from crawler.core.clock import SystemClock


@cli.command()
@click.option("--listen", metavar="HOST:PORT",
              help="Where to listen (default: http.listen, else 127.0.0.1:9108).")
@click.pass_obj
def desk(obj: Context, listen: str | None) -> None:
    """Serve the triage desk alone (no polling, no delivery), until SIGTERM or Ctrl-C.

    It serves the desk whatever http.desk says, with /healthz and the Atom feeds; the
    daemon's own listener stays as configured."""
    config = obj.config()
    where = listen or (config.settings.http or HttpSettings()).listen
    with obj.store(config) as store:
        stop = asyncio.Event()

        async def run() -> None:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await standalone.serve(config, store, where, stop, started=lambda port: click.echo(
                f"the desk is served on http://{where.rpartition(':')[0]}:{port}/ "
                "(it serves the desk whatever http.desk says)", err=True))

        asyncio.run(run())


@cli.group()
def users() -> None:
    """The desk's users: add, remove, list."""


@users.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of stdin (else it is prompted).")
@click.pass_obj
def users_add(obj: Context, name: str, password_stdin: bool) -> None:
    """Add a user, the password stored as an argon2id hash."""
    if not name.strip() or name != name.strip() or any(c.isspace() or not c.isprintable()
                                                        for c in name):
        err.print("a user name is printable text without spaces", style="red")
        raise SystemExit(EXIT_CONFIG)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        err.print("the password is too short: at least 8 characters", style="red")
        raise SystemExit(EXIT_CONFIG)
    config = obj.config()
    with obj.store(config) as store:
        if not store.add_user(name, auth.hash_password(password), SystemClock().now()):
            err.print(f"user {name!r} exists already", style="red", markup=False)
            raise SystemExit(EXIT_CONFIG)
    out.print(f"added user {name!r}", markup=False)


@users.command("remove")
@click.argument("name")
@click.pass_obj
def users_remove(obj: Context, name: str) -> None:
    """Remove a user; their sessions end at once."""
    config = obj.config()
    with obj.store(config) as store:
        if not store.remove_user(name):
            err.print(f"no user {name!r}", style="red", markup=False)
            raise SystemExit(EXIT_CONFIG)
    out.print(f"removed user {name!r} and ended their sessions", markup=False)


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def users_list(obj: Context, as_json: bool) -> None:
    """The users, with when added and their open sessions."""
    config = obj.config()
    with obj.store(config) as store:
        found = store.users()
    if as_json:
        print_json(found)
        return
    show_table("desk users", ["name", "added", "sessions"],
               [(u["name"], u["created_at"][:16], u["sessions"]) for u in found])


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def feeds(obj: Context, as_json: bool) -> None:
    """Each watchlist's Atom feed URL with its token, for readers off loopback (on
    http.public_url when set). The tokens stay valid until the database is replaced."""
    config = obj.config()
    with obj.store(config) as store:
        found = standalone.feed_urls(config, store)
    if as_json:
        print_json([{"watchlist": n, "url": u} for n, u in found])
        return
    show_table("feeds", ["watchlist", "url"], found)
