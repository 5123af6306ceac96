"""Subjects and bodies from Jinja2 templates: shipped defaults, per-channel overrides.

The HTML template is autoescaped, so no feed text can add markup; ``safe_url`` keeps only
http(s) links and ``highlight`` / ``marked`` mark mentions inside an escaped snippet. For
chat targets (Apprise), whose services read Markdown and mentions, every value is defused
by ``chat_text`` instead. ``readable()`` gives the shipped templates their view of the
alert (``alerts.readable``); ``isolate`` and ``block`` keep right-to-left text readable
(see ``isolate_text``). A template problem (syntax, or a name it uses that the alert does
not have) is reported with the template's file and line, at ``check`` time as well as
when sending.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from markupsafe import Markup, escape

from alerts.payload import as_story_data, story_data
from alerts.readable import Snippet, direction, find, has_rtl, view

DEFAULTS = Path(__file__).parent / "templates"
DEFAULT_FILES = {"subject": "subject.txt", "text": "body.txt", "html": "body.html"}
SUBJECT_MAX = 200


class TemplateProblem(Exception):
    """A template that does not compile or render, with where to look."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(f"{file}:{line}: {message}")


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def safe_url(value: object) -> Markup:
    """The URL if it is http(s), else the empty string (no ``javascript:`` links)."""
    text = str(value or "").strip()
    return Markup(escape(text)) if re.match(r"(?i)^https?://[^\s\"'<>`]+$", text) \
        else Markup("")


def html_text(value: object) -> Markup:
    """Feed text for HTML: escaped, and with ``=`` and ``:`` as character references too,
    so not even the letters of ``onerror=`` or ``javascript:`` reach the markup."""
    if isinstance(value, Markup):
        return value
    return Markup(str(escape(value)).replace("=", "&#61;").replace(":", "&#58;"))


# What a chat service acts on: a mention (@channel, @here, @all, @user) at a word start,
# Slack's <!channel>, <@U123>, <#C123> and <http://…|…>, and the `](`, `][` and `]:` that
# turn bracketed text into a Markdown link, image or reference.
_CHAT_SYNTAX = re.compile(r"(?<![\w.])@(?=\w)|<(?=[!@#a-zA-Z])|\](?=[(\[:])")
_ZERO_WIDTH_SPACE = "\u200b"


def chat_text(value: object) -> str:
    """Feed text for chat messages: a zero-width space after each character that would
    start a mention or a link, so the words read the same and do nothing."""
    return _CHAT_SYNTAX.sub(lambda m: m.group() + _ZERO_WIDTH_SPACE,
                            "" if value is None else str(value))


def highlight_html(snippet: object, matched: object) -> Markup:
    text, mention = str(snippet or ""), str(matched or "")
    span = find(text, mention)
    if span is None:
        return html_text(text)
    start, end = span
    return (html_text(text[:start]) + Markup("<mark>") + html_text(text[start:end])
            + Markup("</mark>") + html_text(text[end:]))


def highlight_text(snippet: object, matched: object) -> str:
    text, mention = str(snippet or ""), str(matched or "")
    span = find(text, mention)
    if span is None:
        return text
    start, end = span
    return f"{text[:start]}*{text[start:end]}*{text[end:]}"


def marked_html(snippet: Snippet) -> Markup:
    """The sentence escaped, each mention in ``<mark>`` and isolated (``<bdi>``), so a
    Latin name inside Dari (or the reverse) keeps its neighbours' punctuation in place."""
    out, at = Markup(""), 0
    for start, end in snippet.marks:
        out += html_text(snippet.text[at:start]) + Markup("<bdi><mark>") \
            + html_text(snippet.text[start:end]) + Markup("</mark></bdi>")
        at = end
    return out + html_text(snippet.text[at:])


def marked_text(snippet: Snippet) -> str:
    """The sentence with each mention between ``*`` (plain-text bold)."""
    out, at = "", 0
    for start, end in snippet.marks:
        out += f"{snippet.text[at:start]}*{snippet.text[start:end]}*"
        at = end
    return out + snippet.text[at:]


def isolate_html(value: object) -> Markup:
    """A remote string (a name, an outlet) inside an English sentence: ``<bdi>``."""
    return Markup("<bdi>") + html_text(value) + Markup("</bdi>")


FSI, PDI, RLI, RLM = "\u2068", "\u2069", "\u2067", "\u200f"


def isolate_text(value: object) -> str:
    """Plain text has no markup, so right-to-left text is marked with the invisible
    Unicode bidi controls, and only where it needs them, so English stays clean for
    grep and copy-paste:

    - a remote string inside an English sentence (an outlet, a name) that holds
      right-to-left letters is isolated with FSI … PDI: without it, "Tolo News, طلوع, آمو"
      would show the two Dari names swapped, their comma joining them into one run;
    - a block of remote text (``block_text``) that reads right to left starts with RLM
      (so clients that pick a line's direction from its first letter right-align it) and
      is wrapped in RLI … PDI (so clients that show every line left to right still order
      its words, and place its full stop, as Dari does).
    """
    text = "" if value is None else str(value)
    return f"{FSI}{text}{PDI}" if has_rtl(text) else text


def block_text(value: object) -> str:
    """A block of remote text for the plain-text part: see ``isolate_text``."""
    text = "" if value is None else str(value)
    return f"{RLM}{RLI}{text}{PDI}" if direction(text) == "rtl" else text


def and_list_text(values: Iterable[object]) -> str:
    """"A", "A and B", "A, B and C"."""
    words = [str(v) for v in values]
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def and_list_html(values: Iterable[object]) -> Markup:
    words = [html_text(v) for v in values]
    return (Markup(", ").join(words[:-1]) + Markup(" and ") + words[-1] if len(words) > 1
            else Markup("").join(words))


@jinja2.pass_context
def readable(ctx: jinja2.runtime.Context) -> Any:
    """The reader's view of this alert or digest (``alerts.readable.view``)."""
    return view(ctx.get("stories") or [], ctx.get("timezone") or "UTC",
                ctx.get("sent_at") or ctx.get("timestamp"), ctx.get("desk_url") or "")


def _environment(html: bool, chat: bool = False) -> jinja2.Environment:
    env = jinja2.Environment(autoescape=html, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=False,
                             finalize=html_text if html else chat_text if chat else None)
    env.filters["highlight"] = highlight_html if html else highlight_text
    env.filters["safe_url"] = safe_url if html else lambda v: str(safe_url(v))
    env.filters["marked"] = marked_html if html else marked_text
    env.filters["isolate"] = isolate_html if html else isolate_text
    env.filters["block"] = html_text if html else block_text
    env.filters["and_list"] = and_list_html if html else and_list_text
    env.globals["readable"] = readable
    return env


def _line_in(file: str, tb: TracebackType | None) -> int:
    """The template line a runtime error happened on (Jinja rewrites the traceback)."""
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == file:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class Renderer:
    """The three templates of one channel, compiled once."""

    def __init__(self, config_dir: Path | None = None,
                 overrides: Mapping[str, str | None] | None = None, *,
                 chat: bool = False) -> None:
        """``chat``: the subject and text go to a chat service (see ``chat_text``)."""
        self.files: dict[str, str] = {}
        self._templates: dict[str, jinja2.Template] = {}
        for part, default in DEFAULT_FILES.items():
            chosen = (overrides or {}).get(part)
            path = (config_dir / chosen if config_dir is not None and chosen
                    else DEFAULTS / default)
            shown = str(path)
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise TemplateProblem(shown, 1, f"cannot read template: {exc}") from exc
            try:
                self._templates[part] = _compile(part == "html", chat, source, shown)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateProblem(shown, exc.lineno or 1,
                                      f"template syntax error: {exc.message}") from exc
            self.files[part] = shown

    def render(self, context: Mapping[str, Any], now: datetime | None = None) -> Rendered:
        """``now``: the send time, from which the shipped templates count an article's
        age (the alert's own timestamp when not given)."""
        context = {**context, "sent_at": now}
        subject = " ".join(self._render("subject", context).split())[:SUBJECT_MAX]
        text = self._render("text", context).strip() + "\n"
        html = self._render("html", {**context, "subject": subject})
        return Rendered(subject, text, html)

    def _render(self, part: str, context: Mapping[str, Any]) -> str:
        try:
            return self._templates[part].render(context)
        except jinja2.TemplateError as exc:
            file = self.files[part]
            raise TemplateProblem(file, _line_in(file, exc.__traceback__),
                                  f"template error: {exc}") from exc
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            file = self.files[part]
            raise TemplateProblem(file, _line_in(file, exc.__traceback__),
                                  f"template error: {type(exc).__name__}: {exc}") from exc


def _compile(html: bool, chat: bool, source: str, filename: str) -> jinja2.Template:
    """Compile with the real file name, so runtime tracebacks point into the template."""
    env = _environment(html, chat)
    code = env.compile(source, filename=filename)
    return env.template_class.from_code(env, code, env.make_globals(None))


def context(payload: Mapping[str, Any], channel: str,
            timezone: str = "UTC", desk_url: str = "") -> dict[str, Any]:
    """What a template sees for one delivery: an alert, a digest or an operator notice,
    of either payload version.

    ``kind`` is ``alert``, ``digest`` or ``notice``; ``stories`` lists the alerts as
    version-2 ``data`` objects (one story each, its watchlists grouped; a digest's also
    have ``queued_at``); ``timezone`` is the config's. The version-1 variables stay for
    the templates written before: ``groups`` lists the watchlists, each with its
    ``alerts`` (``watchlist``, ``article``, ``matches``, ``story``); ``alerts`` is the
    flat list and ``count`` its length; ``notice`` is set for operator notices.
    ``desk_url`` is the desk's address (``http.public_url`` when the desk is on; empty
    otherwise), which the shipped templates link each story's desk page on.
    """
    data = payload.get("data", {})
    kind = {"digest": "digest", "operator.notice": "notice"}.get(payload.get("type", ""),
                                                                "alert")
    stories: list[dict[str, Any]] = []
    if kind == "digest" and payload.get("version") == 2:
        stories = list(data["alerts"])
        groups = _groups(stories)
    elif kind == "digest":
        groups = [{"watchlist": g["watchlist"],
                   "alerts": [{"watchlist": g["watchlist"], **a} for a in g["alerts"]]}
                  for g in data.get("watchlists", [])]
        stories = [{**as_story_data(a), "queued_at": a["queued_at"]}
                   for g in groups for a in g["alerts"]]
    elif kind == "alert":
        stories = [story_data(payload)]
        groups = (_groups(stories) if payload.get("version") == 2
                  else [{"watchlist": data["watchlist"], "alerts": [data]}])
    else:
        groups = []
    alerts = [a for g in groups for a in g["alerts"]]
    return {"kind": kind, "channel": channel, "timestamp": payload.get("timestamp"),
            "groups": groups, "alerts": alerts, "count": len(alerts),
            "notice": data if kind == "notice" else None, "stories": stories,
            "timezone": timezone, "desk_url": desk_url}


def _groups(stories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Version-2 stories as the version-1 ``groups``: per watchlist, in order of first
    appearance, one alert per story naming it, with its items' mentions as ``matches``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for story in stories:
        extra: dict[str, Any] = {k: story[k] for k in ("story", "queued_at") if k in story}
        for watchlist in story["watchlists"]:
            groups.setdefault(watchlist["name"], []).append({
                "watchlist": watchlist["name"], "article": story["article"],
                "matches": [m for item in watchlist["items"] for m in item["mentions"]],
                **extra})
    return [{"watchlist": w, "alerts": a} for w, a in groups.items()]
