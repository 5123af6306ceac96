"""Subjects and bodies from Jinja2 templates: shipped defaults, per-channel overrides.

The HTML template is autoescaped, so no feed text can add markup; ``safe_url`` keeps only
http(s) links and ``highlight`` marks the mention inside an escaped snippet. For chat
targets (Apprise), whose services read Markdown and mentions, every value is defused by
``chat_text`` instead. A template
problem (syntax, or a name it uses that the alert does not have) is reported with the
template's file and line, at ``check`` time as well as when sending.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from markupsafe import Markup, escape

from alerts.payload import as_story_data, story_data

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


def _find(snippet: str, matched: str) -> tuple[int, int] | None:
    if not matched:
        return None
    at = snippet.find(matched)
    if at < 0:
        at = snippet.casefold().find(matched.casefold())
        if at < 0 or len(snippet.casefold()) != len(snippet):
            return None
    return at, at + len(matched)


def highlight_html(snippet: object, matched: object) -> Markup:
    text, mention = str(snippet or ""), str(matched or "")
    span = _find(text, mention)
    if span is None:
        return html_text(text)
    start, end = span
    return (html_text(text[:start]) + Markup("<mark>") + html_text(text[start:end])
            + Markup("</mark>") + html_text(text[end:]))


def highlight_text(snippet: object, matched: object) -> str:
    text, mention = str(snippet or ""), str(matched or "")
    span = _find(text, mention)
    if span is None:
        return text
    start, end = span
    return f"{text[:start]}*{text[start:end]}*{text[end:]}"


def _environment(html: bool, chat: bool = False) -> jinja2.Environment:
    env = jinja2.Environment(autoescape=html, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=False,
                             finalize=html_text if html else chat_text if chat else None)
    env.filters["highlight"] = highlight_html if html else highlight_text
    env.filters["safe_url"] = safe_url if html else lambda v: str(safe_url(v))
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

    def render(self, context: Mapping[str, Any]) -> Rendered:
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
            timezone: str = "UTC") -> dict[str, Any]:
    """What a template sees for one delivery: an alert, a digest or an operator notice,
    of either payload version.

    ``kind`` is ``alert``, ``digest`` or ``notice``; ``stories`` lists the alerts as
    version-2 ``data`` objects (one story each, its watchlists grouped; a digest's also
    have ``queued_at``); ``timezone`` is the config's. The version-1 variables stay for
    the templates written before: ``groups`` lists the watchlists, each with its
    ``alerts`` (``watchlist``, ``article``, ``matches``, ``story``); ``alerts`` is the
    flat list and ``count`` its length; ``notice`` is set for operator notices.
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
            "timezone": timezone}


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
