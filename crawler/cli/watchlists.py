"""Editing a watch item from the terminal: watchlists show, watchlists edit.

Thin: the edit is ``crawler.config.edit``'s and the preview ``crawler.app.preview``'s,
which the web desk calls too.
"""

from __future__ import annotations

import difflib
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from crawler.app import preview
from crawler.app.configure import CHECKS
from crawler.cli.base import (
    EXIT_CONFIG,
    LIMIT,
    Context,
    cli,
    err,
    known_watch,
    known_watchlist,
    out,
    print_json,
    show_table,
    shown,
)
from crawler.cli.progress import progress
from crawler.config import Config, edit, parse_duration
from crawler.core.clock import SystemClock


@cli.group("watchlists")
def watchlists() -> None:
    """Show and edit a watch item of watchlists.yaml, keeping the file's comments and
    layout. `newswatch backtest` replays the watchlists as they are."""


def _loaded(obj: Context, watchlist: str, item: str) -> tuple[Config, edit.Loaded,
                                                               edit.ItemValue]:
    config = obj.config()
    known_watch(config, item, known_watchlist(config, watchlist), "ITEM")
    loaded = edit.load(config.directory)
    try:
        value = edit.item_value(loaded.text, watchlist, item, str(loaded.path))
    except edit.EditError as exc:
        raise _fail(exc) from exc
    return config, loaded, value


def _fail(exc: edit.EditError) -> SystemExit:
    click.echo(f"error: {exc}", err=True)
    return SystemExit(EXIT_CONFIG)


@watchlists.command("show")
@click.argument("watchlist")
@click.argument("item")
@click.option("--json", "as_json", is_flag=True, help="Print the item as JSON.")
@click.pass_obj
def show(obj: Context, watchlist: str, item: str, as_json: bool) -> None:
    """What `watchlists edit` can change of ITEM in WATCHLIST, and the file's version
    (for `edit --if-version`)."""
    _, loaded, value = _loaded(obj, watchlist, item)
    if as_json:
        print_json({**value.as_dict(), "file": str(loaded.path), "version": loaded.version})
        return
    show_table(f"{watchlist}: {value.name}", ["key", "value"],
               [("aliases", "\n".join(value.aliases)),
                *[(kind, "\n".join(getattr(value, kind)) if getattr(value, kind) is not None
                   else f"(not editable here: {value.fixed[kind]})") for kind in edit.RULE_KEYS]])
    out.print(f"{loaded.path} version {loaded.version[:16]}", markup=False)


@watchlists.command("edit")
@click.argument("watchlist")
@click.argument("item")
@click.option("--rename", metavar="NAME", help="Give the item this name.")
@click.option("--add-alias", "add_aliases", multiple=True, metavar="TEXT",
              help="Add an alias (repeatable).")
@click.option("--remove-alias", "remove_aliases", multiple=True, metavar="TEXT",
              help="Remove an alias, as written (repeatable).")
@click.option("--add-any-of", "add_any_of", multiple=True, metavar="TERM",
              help="Add an any_of term (repeatable), where any_of is a list of terms.")
@click.option("--remove-any-of", "remove_any_of", multiple=True, metavar="TERM",
              help="Remove an any_of term (repeatable).")
@click.option("--add-none-of", "add_none_of", multiple=True, metavar="TERM",
              help="Add a none_of term (repeatable), where none_of is a list of terms.")
@click.option("--remove-none-of", "remove_none_of", multiple=True, metavar="TERM",
              help="Remove a none_of term (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show the change (and --preview); save nothing.")
@click.option("--preview", "with_preview", is_flag=True,
              help="Replay the edited item over the stored archive first: which articles "
                   "it would newly match, still match, and no longer match.")
@click.option("--since", default="30d", show_default=True,
              help="How far back --preview replays, by when articles were fetched.")
@click.option("--limit", default=20, show_default=True, type=LIMIT,
              help="How many articles each preview table lists (the counts cover all).")
@click.option("--if-version", metavar="VERSION",
              help="Save only if watchlists.yaml is still at this version (from "
                   "`watchlists show`; 8 hex digits or more): refuse if it changed since.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the diff, the preview and the outcome as JSON.")
@click.pass_obj
def edit_command(obj: Context, watchlist: str, item: str, rename: str | None,
                 add_aliases: tuple[str, ...], remove_aliases: tuple[str, ...],
                 add_any_of: tuple[str, ...], remove_any_of: tuple[str, ...],
                 add_none_of: tuple[str, ...], remove_none_of: tuple[str, ...],
                 dry_run: bool, with_preview: bool, since: str, limit: int,
                 if_version: str | None, as_json: bool) -> None:
    """Edit ITEM of WATCHLIST in watchlists.yaml: rename it, add or remove aliases and
    any_of / none_of terms. Prints the diff, then saves it if the edited config passes
    `newswatch check` (exits 1 listing the problems if not), keeping every comment and
    the rest of the file as written. The running daemon picks the change up as it does
    any edit of the file.

    Where the config directory cannot be written (the shipped systemd unit makes /etc
    read-only), nothing is saved: the edited file is printed on stdout to copy, and the
    command exits 1."""
    try:
        span = timedelta(seconds=parse_duration(since))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    config, loaded, value = _loaded(obj, watchlist, item)
    try:
        if if_version is not None and (len(if_version) < 8
                                       or not loaded.version.startswith(if_version)):
            raise edit.ChangedSince(watchlist, item, f"{loaded.path} is at version "
                                    f"{loaded.version[:16]}, not {if_version}: show it again "
                                    "and redo the edit")
        new = value.changed(rename=rename, add_aliases=add_aliases,
                            remove_aliases=remove_aliases, add_any_of=add_any_of,
                            remove_any_of=remove_any_of, add_none_of=add_none_of,
                            remove_none_of=remove_none_of)
        if new == value:
            raise click.UsageError("nothing to change: give --rename, --add-alias, "
                                   "--remove-alias or a rule's terms")
        text = edit.edit(loaded.text, new, item, str(loaded.path))
        after = edit.validate(config.directory, text, new, CHECKS, item)
    except edit.InvalidEdit as exc:
        if as_json:
            print_json({"saved": False, "problems": [str(p) for p in exc.problems]})
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        err.print(f"{len(exc.problems)} problem(s): the edit is not saved", style="red")
        raise SystemExit(EXIT_CONFIG) from exc
    except edit.EditError as exc:
        raise _fail(exc) from exc
    diff = "".join(difflib.unified_diff(loaded.text.splitlines(keepends=True),
                                        text.splitlines(keepends=True),
                                        str(loaded.path), str(loaded.path)))
    report: dict[str, Any] = {"file": str(loaded.path), "before": value.as_dict(),
                              "after": new.as_dict(), "diff": diff}
    if not as_json:
        click.echo(diff, nl=False)
    if with_preview:
        report["preview"] = _preview(obj, config, after, watchlist, item, new.name, span,
                                     limit, as_json)
    report.update(_save(config.directory, new, loaded.version, item, dry_run, as_json))
    if as_json:
        print_json(report)
    if not report["saved"] and not dry_run:
        raise SystemExit(EXIT_CONFIG)


def _preview(obj: Context, config: Config, after: Config, watchlist: str, item: str,
             renamed: str, span: timedelta, limit: int, as_json: bool) -> dict[str, Any]:
    start = SystemClock().now() - span
    rules = obj.learned_rules(config)
    rows: list[preview.Change] = []
    with obj.store(config) as store:
        running = preview.ItemPreview(store, config, after, watchlist, item, renamed, start,
                                      rules)
        last: preview.PreviewBatch | None = None
        with progress("previewing", store.count_archive(start), quiet=as_json) as advance:
            for batch in running:
                rows += batch.rows
                for _ in range(batch.scanned - (last.scanned if last else 0)):
                    advance("")
                last = batch
    counts = running.totals()
    summary = {"since": start.isoformat(timespec="seconds"),
               "articles": last.scanned if last else 0, "counts": counts}
    if as_json:
        return {**summary, "results": [r.as_dict() for r in rows]}
    out.print(f"preview over {summary['articles']} stored article(s) since "
              f"{summary['since']}: {counts['new']} would newly match, {counts['unchanged']} "
              f"would still match, {counts['lost']} would no longer match", markup=False)
    for status, title in (("new", "would newly match"), ("lost", "would no longer match")):
        found = [r for r in rows if r.status == status]
        if found:
            show_table(shown(title, len(found), limit),
                       ["fetched", "title", "source", "snippet" if status == "new" else "why not"],
                       [((r.fetched_at.isoformat(timespec="minutes") if r.fetched_at else ""),
                         r.article.title or r.article.url, r.article.source,
                         r.match.highlight if r.match else r.why) for r in found[:limit]])
    return summary


def _save(directory: Path, new: edit.ItemValue, version: str, item: str, dry_run: bool,
          as_json: bool) -> dict[str, Any]:
    if dry_run:
        if not as_json:
            out.print("dry run: nothing saved", markup=False)
        return {"saved": False, "dry_run": True}
    try:
        saved = edit.save(directory, new, version, item, checks=CHECKS,
                          probe=edit.unwritable)
    except edit.ReadOnly as exc:
        click.echo(f"error: {exc}", err=True)
        if not as_json:
            click.echo(exc.text, nl=False)
        return {"saved": False, "error": str(exc), "read_only": True, "yaml": exc.text}
    except edit.EditError as exc:  # changed since, or invalid by now
        click.echo(f"error: {exc}", err=True)
        return {"saved": False, "error": str(exc)}
    if not as_json:
        out.print(f"saved {saved.path} (version {saved.version[:16]}); a running daemon "
                  "picks it up at its next config check", markup=False)
    return {"saved": True, "version": saved.version}
