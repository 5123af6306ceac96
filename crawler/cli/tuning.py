"""Mutes and feedback from the terminal: mute, mutes, unmute, not-relevant, rules.

Thin: the logic is ``crawler.app.tuning``'s, which the web desk calls too.
"""

from __future__ import annotations

import getpass
from datetime import timedelta

import click

from crawler.app import tuning
from crawler.cli.base import (
    EXIT_CONFIG,
    Context,
    cli,
    err,
    known_name,
    known_watch,
    known_watchlist,
    out,
    print_json,
    show_table,
)
from crawler.config import parse_duration
from crawler.core.clock import SystemClock, iso

_BY = click.option("--by", "by", metavar="NAME",
                   help="Who makes it, as recorded (default: the OS user).")
_FROM = click.option("--article", "article", metavar="URL",
                     help="The article that prompted it, kept with the mute.")


def _user(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "unknown"


def _duration(value: str | None, option: str = "--for") -> timedelta | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc
    if seconds <= 0:
        raise click.BadParameter("give a positive duration such as 24h or 7d",
                                 param_hint=option)
    return timedelta(seconds=seconds)


def _fail(exc: tuning.TuningError) -> SystemExit:
    click.echo(f"error: {exc}", err=True)
    return SystemExit(EXIT_CONFIG)


def _muted(made: tuning.Muting) -> None:
    mute = made.mute
    until = f"until {iso(mute.until)[:16]}Z" if mute.until else "until unmuted"
    what = {"story": f"story {made.title!r}" if made.title else "story",
            "watch": f"watch item {mute.target!r}"
            + (f" of watchlist {mute.watchlist!r}" if mute.watchlist else ""),
            "source": f"source {mute.target!r}"}[mute.kind]
    out.print(f"mute {made.id}: {what} is muted on every channel, {until}; "
              f"{made.alerts_muted} waiting alert(s) recorded as muted. "
              f"Undo: newswatch unmute {made.id}", markup=False)


@cli.group()
def mute() -> None:
    """Stop alerts for a story, a watch item or a source, on every channel.

    Alerts of it waiting to be sent (pending, held for a digest) are recorded as `muted`
    and never sent, even after `newswatch unmute`. Matches are still stored and searched.
    """


@mute.command("story")
@click.argument("url")
@click.option("--for", "span", metavar="DURATION",
              help="Only for this long (7d, 12h); indefinitely when left out.")
@_BY
@click.pass_obj
def mute_story(obj: Context, url: str, span: str | None, by: str | None) -> None:
    """Mute the story of the article at URL (any URL of any of its copies)."""
    duration = _duration(span)
    config = obj.config()
    with obj.store(config) as store:
        try:
            made = tuning.mute_story(store, url, _user(by), SystemClock().now(), duration)
        except tuning.TuningError as exc:
            raise _fail(exc) from exc
    _muted(made)


@mute.command("watch")
@click.argument("name")
@click.option("--for", "span", metavar="DURATION", required=True,
              help="How long (24h, 7d).")
@click.option("--watchlist", help="Only the item of this watchlist (default: every "
                                  "watchlist that has an item of that name).")
@_BY
@_FROM
@click.pass_obj
def mute_watch(obj: Context, name: str, span: str, watchlist: str | None,
               by: str | None, article: str | None) -> None:
    """Mute a watch item for a while: its matches alert nobody meanwhile."""
    duration = _duration(span)
    assert duration is not None
    config = obj.config()
    known_watch(config, name, known_watchlist(config, watchlist), "NAME")
    with obj.store(config) as store:
        made = tuning.mute_watch(config, store, name, _user(by), SystemClock().now(),
                                 duration, watchlist, article)
    _muted(made)


@mute.command("source")
@click.argument("name")
@click.option("--for", "span", metavar="DURATION", required=True,
              help="How long (24h, 7d).")
@_BY
@_FROM
@click.pass_obj
def mute_source(obj: Context, name: str, span: str, by: str | None,
                article: str | None) -> None:
    """Mute every alert of one source's articles for a while."""
    duration = _duration(span)
    assert duration is not None
    config = obj.config()
    known_name(name, [s.name for s in config.sources], "NAME", "source")
    with obj.store(config) as store:
        made = tuning.mute_source(config, store, name, _user(by), SystemClock().now(),
                                  duration, article)
    _muted(made)


@cli.command("mutes")
@click.option("--all", "everything", is_flag=True,
              help="Also the mutes that expired or were undone.")
@click.option("--json", "as_json", is_flag=True, help="Print the mutes as JSON.")
@click.pass_obj
def mutes_command(obj: Context, everything: bool, as_json: bool) -> None:
    """The mutes in force: who made each, when, until when, and what it mutes."""
    config = obj.config()
    with obj.store(config) as store:
        rows = store.mutes(SystemClock().now(), everything=everything)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no mutes" + ("" if everything else " in force"))
        return
    show_table("mutes", ["id", "state", "what", "by", "when", "until", "alerts muted"],
               [(r["id"], r["state"], _what(r), r["created_by"], r["created_at"][:16],
                 (r["until"] or "until unmuted")[:16] if r["state"] == "active" else
                 f"{r['state']} {(r['ended_at'] or r['until'] or '')[:16]}",
                 r["alerts_muted"]) for r in rows])


def _what(row: dict[str, object]) -> str:
    if row["kind"] == "story":
        return f"story: {row['story_title'] or ''}\n{row['article_url'] or row['target']}"
    if row["kind"] == "watch" and row["watchlist"]:
        return f"watch: {row['watchlist']}: {row['target']}"
    return f"{row['kind']}: {row['target']}"


@cli.command()
@click.argument("ids", nargs=-1, type=int, required=True)
@_BY
@click.pass_obj
def unmute(obj: Context, ids: tuple[int, ...], by: str | None) -> None:
    """Undo mutes by ID (from `newswatch mutes`). Alerts they muted stay unsent."""
    config = obj.config()
    with obj.store(config) as store:
        missed = [i for i in ids if not tuning.unmute(store, i, _user(by),
                                                      SystemClock().now())]
    out.print(f"{len(ids) - len(missed)} mute(s) undone")
    if missed:
        err.print(f"not in force (unknown, expired or undone already): "
                  f"{', '.join(map(str, missed))}", style="yellow")
        raise SystemExit(1)


@cli.command("not-relevant")
@click.argument("url")
@click.argument("watch")
@click.option("--watchlist", help="The watchlist of WATCH, when several have it.")
@click.option("--since", default="90d", show_default=True,
              help="How far back the backtest replays the item's stored matches.")
@click.option("--apply", "apply_rule", is_flag=True,
              help="Keep the proposed rule (in the database, over watchlists.yaml).")
@_BY
@click.option("--json", "as_json", is_flag=True, help="Print the proposal as JSON.")
@click.pass_obj
def not_relevant(obj: Context, url: str, watch: str, watchlist: str | None, since: str,
                 apply_rule: bool, by: str | None, as_json: bool) -> None:
    """Say an article's match of WATCH was not relevant: propose a rule that would have
    left it out (an `exclude` phrase around the mention, or a `none_of` term), with what
    it would have removed from the stored matches. A rule is proposed only if it removes
    this match and at most 20% of the item's other matches. --apply keeps it."""
    span = _duration(since, "--since")
    assert span is not None
    config = obj.config()
    known_watch(config, watch, known_watchlist(config, watchlist), "WATCH")
    with obj.store(config) as store:
        try:
            proposal = tuning.propose(config, store, url, watch, _user(by),
                                      SystemClock().now(), watchlist=watchlist, since=span)
            rule_id = tuning.apply(store, proposal.rule) \
                if apply_rule and proposal.rule else None
        except tuning.TuningError as exc:
            raise _fail(exc) from exc
    chosen = proposal.rule
    if as_json:
        print_json({"url": proposal.article.article.url, "watch": watch,
                    "mention": proposal.match.matched, "field": proposal.match.field,
                    "since": proposal.since.isoformat(timespec="seconds"),
                    "rule": chosen.as_dict() if chosen else None,
                    "alternatives": [e.as_dict() for e in proposal.alternatives],
                    "applied": rule_id})
        if chosen is None:
            raise SystemExit(1)
        return
    m = proposal.match
    out.print(f"{proposal.article.article.title or proposal.article.article.url}\n"
              f"{m.watchlist}: {m.watch} matched {m.matched!r} in the {m.field}: "
              f"{m.snippet}", markup=False)
    if chosen is None:
        tried = len(proposal.tried)
        out.print(f"no safe rule found: none of the {tried} rule(s) tried removes this "
                  f"match and at most {tuning.SAFE_SHARE:.0%} of the item's other matches "
                  f"since {proposal.since.date()}. Edit watchlists.yaml by hand, or mute "
                  "the story.", markup=False)
        raise SystemExit(1)
    r = chosen.rule
    out.print(f"proposed rule for {r.watchlist}: {r.watch}: {r.kind} {r.term!r}\n"
              f"backtest since {proposal.since.date()}: removes this match and "
              f"{len(chosen.removed)} of {chosen.others} other match(es) "
              f"({chosen.share:.0%})", markup=False)
    for other in chosen.removed[:10]:
        out.print(f"  would no longer match: {other}", markup=False)
    if proposal.alternatives:
        out.print("other safe rules: " + "; ".join(
            f"{e.rule.kind} {e.rule.term!r} ({len(e.removed)} of {e.others})"
            for e in proposal.alternatives[:5]), markup=False)
    if rule_id is None:
        out.print("not applied: run again with --apply to keep it")
    else:
        out.print(f"applied as learned rule {rule_id}: the daemon's next poll uses it; "
                  "`newswatch rules` lists it")


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the rules as JSON.")
@click.pass_context
def rules(ctx: click.Context, as_json: bool) -> None:
    """Rules learned from `not-relevant`, kept in the database over watchlists.yaml:
    who made each, when, from which article, and what it does on this config.

    `newswatch rules export` prints them as YAML to fold into watchlists.yaml;
    `newswatch rules remove ID` forgets one.
    """
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    config = obj.config()
    with obj.store(config) as store:
        states = tuning.rule_states(config, store.rules())
    if as_json:
        print_json([{"id": r.id, "watchlist": r.watchlist, "watch": r.watch,
                     "kind": r.kind, "term": r.term, "by": r.created_by,
                     "at": r.created_at.isoformat(timespec="seconds"),
                     "article": r.article_url, "note": r.note, "state": state}
                    for r, state in states])
        return
    if not states:
        out.print("no learned rules")
        return
    show_table("learned rules", ["id", "watchlist", "watch", "rule", "state", "by", "when",
                                 "from"],
               [(r.id, r.watchlist, r.watch, f"{r.kind}: {r.term}", state, r.created_by,
                 r.created_at.isoformat(timespec="minutes"), r.article_url)
                for r, state in states])


@rules.command("remove")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.pass_obj
def rules_remove(obj: Context, ids: tuple[int, ...]) -> None:
    """Forget learned rules by ID (from `newswatch rules`)."""
    config = obj.config()
    with obj.store(config) as store:
        missed = [i for i in ids if not store.remove_rule(i)]
    out.print(f"{len(ids) - len(missed)} rule(s) removed")
    if missed:
        err.print(f"no such rule: {', '.join(map(str, missed))}", style="yellow")
        raise SystemExit(1)


@rules.command("export")
@click.pass_obj
def rules_export(obj: Context) -> None:
    """Print the learned rules as YAML: the watch items they concern, written out with
    the rules added, to replace in watchlists.yaml."""
    config = obj.config()
    with obj.store(config) as store:
        learned = store.rules()
    if not learned:
        err.print("no learned rules")
        return
    click.echo(tuning.export(config, learned), nl=False)

