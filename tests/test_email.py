"""The email channel against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.readable import local_time
from tests.conftest import FakeClock, Project
from tests.feeds import Item, rss
from tests.servers import Page, Site
from tests.smtp import LocalCA, SmtpServer, Staller, make_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


def mail_channel(project: Project, port: int, **smtp: Any) -> None:
    project.settings.setdefault("channels", {})["mail"] = {
        "type": "email", "to": ["desk@example.org", "editor@example.org"],
        "from": "newswatch@example.org",
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none", **smtp},
        "timeout": "2s", "retry": {"attempts": 3, "base_delay": "10s"}}
    project.watchlists = [{**project.watchlists[0], "channels": ["mail"]}]


def one_article(project: Project, site: Site, title: str = "Atta Mohammad Noor speaks",
                body: str = "He spoke in Mazar.") -> None:
    site.pages["/rss.xml"] = Page(rss([Item(title, site.url("/a/1"), body, "g1",
                                            datetime.now(UTC))]))
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]


def outbox_row(project: Project) -> dict[str, Any]:
    (row,) = project.store().alerts()
    return row


def test_starttls_with_private_ca_sends_one_multipart_message(
        project: Project, site: Site, ca: LocalCA) -> None:
    server = SmtpServer("starttls", ca)
    try:
        one_article(project, site)
        mail_channel(project, server.port, security="starttls", ca_file=str(ca.ca_file))
        report = project.once(FakeClock()).delivery
        assert report.delivered == 1, report
        (got,) = server.mailbox.received()
    finally:
        server.close()
    assert got.tls, "the message must travel over TLS"
    assert got.recipients == ["desk@example.org", "editor@example.org"]
    message = got.message
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "[afghan-opposition] Atta Mohammad Noor speaks"
    assert message["From"] == "newswatch@example.org"
    row = outbox_row(project)
    assert message["Message-ID"] == f"<{row['message_id']}@newswatch>"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for body in (text, html):
        assert "Feed" in body and site.url("/a/1") in body and "Atta Mohammad Noor" in body
    assert "<mark>Atta Mohammad Noor</mark>" in html
    assert "*Atta Mohammad Noor*" in text


def test_implicit_tls_with_private_ca(project: Project, site: Site, ca: LocalCA) -> None:
    server = SmtpServer("tls", ca)
    try:
        one_article(project, site)
        mail_channel(project, server.port, security="tls", ca_file=str(ca.ca_file))
        assert project.once(FakeClock()).delivery.delivered == 1
        (got,) = server.mailbox.received()
        assert got.tls
    finally:
        server.close()


def test_untrusted_certificate_is_refused(project: Project, site: Site, ca: LocalCA) -> None:
    server = SmtpServer("starttls", ca)
    try:
        one_article(project, site)
        mail_channel(project, server.port, security="starttls")  # no ca_file
        report = project.once(FakeClock()).delivery
        assert (report.delivered, report.retrying) == (0, 1)
        assert server.mailbox.received() == []
    finally:
        server.close()
    assert "certificate verify failed" in outbox_row(project)["last_error"]


def test_starttls_not_offered_is_an_error_not_plain_text(
        project: Project, site: Site, plain_smtp: SmtpServer) -> None:
    one_article(project, site)
    mail_channel(project, plain_smtp.port, security="starttls")
    report = project.once(FakeClock()).delivery
    assert (report.delivered, report.retrying) == (0, 1)
    assert plain_smtp.mailbox.received() == []
    assert "STARTTLS" in outbox_row(project)["last_error"]


def test_451_then_success_delivers_exactly_one_message_with_the_same_id(
        project: Project, site: Site, plain_smtp: SmtpServer) -> None:
    one_article(project, site)
    mail_channel(project, plain_smtp.port)
    plain_smtp.mailbox.script = ["451 4.3.0 try again later"]
    clock = FakeClock()
    first = project.once(clock).delivery
    assert (first.delivered, first.retrying) == (0, 1)
    assert outbox_row(project)["last_error"].startswith("SMTP 451")

    clock.advance(5)  # the backoff (5-10 s) has not passed
    assert project.once(clock).delivery.delivered == 0
    clock.advance(10)
    assert project.once(clock).delivery.delivered == 1
    clock.advance(3600)
    assert project.once(clock).delivery.delivered == 0
    assert len(plain_smtp.mailbox.received()) == 1
    assert plain_smtp.mailbox.refused == ["451 4.3.0 try again later"]
    row = outbox_row(project)
    assert (row["status"], row["attempts"]) == ("delivered", 2)
    got = plain_smtp.mailbox.received()[0].message
    assert got["Message-ID"] == f"<{row['message_id']}@newswatch>"


def test_550_is_final_and_recorded(project: Project, site: Site,
                                   plain_smtp: SmtpServer) -> None:
    one_article(project, site)
    mail_channel(project, plain_smtp.port)
    plain_smtp.mailbox.script = ["550 5.1.1 mailbox unavailable"]
    clock = FakeClock()
    report = project.once(clock).delivery
    assert len(report.dead) == 1 and "SMTP 550" in report.dead[0]
    for _ in range(3):
        clock.advance(3600)
        project.once(clock)
    assert plain_smtp.mailbox.refused == ["550 5.1.1 mailbox unavailable"], "no retry"
    assert plain_smtp.mailbox.received() == []
    row = outbox_row(project)
    assert (row["status"], row["attempts"]) == ("dead", 1)
    assert row["last_error"] == (f"SMTP 550 from 127.0.0.1:{plain_smtp.port}: "
                                 "5.1.1 mailbox unavailable")


def test_a_stalled_server_times_out_and_is_retried(project: Project, site: Site) -> None:
    staller = Staller()
    try:
        one_article(project, site)
        mail_channel(project, staller.port)
        project.settings["channels"]["mail"]["timeout"] = "1s"
        report = project.once(FakeClock()).delivery
    finally:
        staller.close()
    assert (report.delivered, report.retrying) == (0, 1)
    row = outbox_row(project)
    assert row["state"] == "retrying" and "within 1s" in row["last_error"]


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs


def test_hostile_feed_text_reaches_the_html_part_as_inert_text(
        project: Project, site: Site, plain_smtp: SmtpServer) -> None:
    hostile = ('&lt;script&gt;alert(1)&lt;/script&gt; <p onclick="x()">Atta Mohammad Noor '
               'said</p> &lt;a href="javascript:alert(2)"&gt;more&lt;/a&gt; '
               '&lt;img src=x onerror=alert(3)&gt;')
    one_article(project, site, "<script>alert(0)</script>Atta Mohammad Noor <b>speaks</b>",
                hostile)
    mail_channel(project, plain_smtp.port)
    assert project.once(FakeClock()).delivery.delivered == 1
    message = plain_smtp.mailbox.received()[0].message
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<script>alert(1)</script>" in text, "the text part quotes the feed as written"
    for needle in ("<script", "onerror=", "javascript:", "onclick"):
        assert needle not in html.lower(), needle
    parsed = _Elements()
    parsed.feed(html)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert not any(name.startswith("on") for name, _ in parsed.attributes)
    links = [value for name, value in parsed.attributes if name == "href"]
    assert links == [site.url("/a/1")]


def test_template_override_from_the_config_directory(
        project: Project, site: Site, plain_smtp: SmtpServer, tmp_path: Path) -> None:
    one_article(project, site)
    mail_channel(project, plain_smtp.port)
    project.settings["channels"]["mail"]["templates"] = {"subject": "mail-subject.j2"}
    project.write()
    (project.config_dir / "mail-subject.j2").write_text(
        "ALERT {{ alerts[0].watchlist | upper }}: {{ count }} x {{ alerts[0].article.title }}")
    assert project.once(FakeClock()).delivery.delivered == 1
    got = plain_smtp.mailbox.received()[0].message
    assert got["Subject"] == "ALERT AFGHAN-OPPOSITION: 1 x Atta Mohammad Noor speaks"


def test_the_commands_the_email_gives_work_as_pasted(
        project: Project, site: Site, plain_smtp: SmtpServer) -> None:
    """The mute and not-relevant lines of a real email, run as a reader would paste them."""
    one_article(project, site, "Atta Mohammad Noor speaks in Mazar",
                "Atta Mohammad Noor spoke to elders in Mazar-i-Sharif on Friday.")
    mail_channel(project, plain_smtp.port)
    assert project.once(FakeClock()).delivery.delivered == 1
    text = plain_smtp.mailbox.received()[0].message.get_body(  # type: ignore[union-attr]
        ("plain",)).get_content()
    commands = [shlex.split(line) for line in text.splitlines()
                if line.startswith("  newswatch ")]
    assert [c[:2] for c in commands] == [["newswatch", "mute"], ["newswatch", "not-relevant"]]
    mute, not_relevant = commands
    assert mute == ["newswatch", "mute", "story", site.url("/a/1")]
    assert not_relevant == ["newswatch", "not-relevant", site.url("/a/1"),
                            "Atta Mohammad Noor", "--watchlist", "afghan-opposition"]
    shown = project.cli(*not_relevant[1:], check=True).stdout
    assert "Atta Mohammad Noor" in shown and ("not applied" in shown or "no safe rule" in shown)
    project.cli(*mute[1:], check=True)
    [muted] = json.loads(project.cli("mutes", "--json", check=True).stdout)
    assert muted["kind"] == "story" and muted["state"] == "active"


@pytest.mark.parametrize("group", ["story", "watchlist"])
def test_an_email_per_story_or_per_watchlist_reads_well(
        project: Project, site: Site, plain_smtp: SmtpServer, group: str) -> None:
    """A story matching two watchlists: one email listing both (``group: story``), or one
    version-1 email per watchlist, each still in the new layout (``group: watchlist``)."""
    published = datetime.now(UTC).replace(microsecond=0)
    site.pages["/rss.xml"] = Page(rss([Item(
        "Atta Mohammad Noor and Dostum sign the declaration", site.url("/a/1"),
        "Atta Mohammad Noor met Dostum in Mazar. Dostum spoke first.", "g1", published)]))
    project.sources = [{"name": "Balkh Times", "feed": site.url("/rss.xml")}]
    mail_channel(project, plain_smtp.port)
    project.settings["channels"]["mail"]["group"] = group
    project.settings["timezone"] = "Asia/Kabul"
    project.watchlists.append({"name": "regional", "channels": ["mail"],
                               "watch": [{"name": "Dostum"}]})
    project.once(FakeClock())
    got = [m.message for m in plain_smtp.mailbox.received()]
    # (a subject that fits on the next line is folded there whole, so it parses with a
    # leading space, which mail clients drop)
    if group == "story":
        (message,) = got
        assert message["Subject"].strip() == ("[afghan-opposition +1] Atta Mohammad Noor "
                                              "and Dostum sign the declaration")
    else:
        assert sorted(m["Subject"].strip() for m in got) == [
            "[afghan-opposition] Atta Mohammad Noor and Dostum sign the declaration",
            "[regional] Atta Mohammad Noor and Dostum sign the declaration"]
        message = next(m for m in got if "[regional]" in m["Subject"])
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    lines = text.splitlines()
    kabul = published.astimezone(ZoneInfo("Asia/Kabul"))
    assert f"Published {local_time(published, ZoneInfo('Asia/Kabul'))}, just now" in lines
    assert f"{kabul:%H:%M} Asia/Kabul (UTC+04:30)" in text
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d", text), "no raw ISO time"
    assert "Balkh Times" in lines and site.url("/a/1") in lines
    assert any(line.startswith("- Dostum") for line in lines) and "regional:" in lines
    assert ("afghan-opposition:" in lines) == (group == "story")
    assert "Story " not in text
    assert lines.count("  Atta Mohammad Noor met *Dostum* in Mazar. *Dostum* spoke first.") \
        <= 1, "one snippet per sentence"


def test_a_long_dari_subject_arrives_with_every_space(
        project: Project, site: Site, plain_smtp: SmtpServer) -> None:
    """Folded into several encoded words, a Dari headline keeps the spaces between its
    words (the email package's own folding lost the ones at a word boundary)."""
    title = ("Atta Mohammad Noor: سه جریان مخالف خواستار گفت‌وگوی بین‌الافغانی با حمایت "
             "سازمان ملل متحد و تضمین شورای امنیت شدند")
    one_article(project, site, title=title, body="Atta Mohammad Noor spoke in Mazar.")
    mail_channel(project, plain_smtp.port)
    project.once(FakeClock())
    (message,) = [m.message for m in plain_smtp.mailbox.received()]
    subject = message["Subject"].strip()
    assert re.sub("[\u2066-\u2069]", "", subject) == f"[afghan-opposition] {title}"
