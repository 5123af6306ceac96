"""Alert emails link to the desk when it is on and ``http.public_url`` is set: the story's
page, its Mute story button and each item's Not relevant, all plain GET links that open
the page (the actions stay POSTs after login); without them, the CLI commands as before.
A link followed from a mail client comes without the SameSite=Strict cookie: the desk
reloads it from its own site."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage

from alerts.templates import Renderer, context
from tests import alerts_v2
from tests.desk import client, make_desk, served, sign_in
from tests.feeds import Item, rss
from tests.helpers import FakeClock, Project
from tests.servers import Page, Site
from tests.smtp import SmtpServer
from tests.test_email import mail_channel

SENT = datetime(2026, 11, 28, 10, 5, tzinfo=UTC)
DESK = "https://desk.example.org/newswatch"


def test_the_email_links_the_story_s_desk_page_and_its_actions() -> None:
    payload = alerts_v2.english()
    shown = Renderer().render(context(payload, "mail", "Asia/Kabul", DESK + "/"), SENT)
    page = f"{DESK}/stories/{alerts_v2.STORY_ID}"
    assert f'<a href="{page}">Open on the desk</a>' in shown.html
    assert f'<a href="{page}#mute">Mute story</a>' in shown.html
    assert f'<a href="{page}?watch=Ahmad+Massoud#copies"><bdi>Ahmad Massoud</bdi></a>' \
        in shown.html
    assert f"On the desk: {page}\n" in shown.text
    assert f"Mute this story: {page}#mute\n" in shown.text
    assert f"  Ahmad Massoud: {page}?watch=Ahmad+Massoud#copies\n" in shown.text
    for body in (shown.text, shown.html):
        assert "newswatch mute" not in body and "newswatch not-relevant" not in body
    # no desk: the CLI commands, and no story number
    plain = Renderer().render(context(payload, "mail", "Asia/Kabul"), SENT)
    assert "newswatch mute story" in plain.text and "newswatch not-relevant" in plain.text
    assert "/stories/" not in plain.text + plain.html


def test_a_delivered_email_links_the_desk_only_when_the_desk_is_on(
        project: Project, site: Site, smtp: SmtpServer) -> None:
    site.pages["/rss.xml"] = Page(rss([Item("Atta Mohammad Noor speaks", site.url("/a/1"),
                                            "He spoke in Mazar.", "g1",
                                            datetime.now(UTC))]))
    project.sources = [{"name": "Feed", "feed": site.url("/rss.xml")}]
    mail_channel(project, smtp.port)
    project.settings["http"] = {"desk": False, "public_url": DESK}
    assert project.once(FakeClock()).delivery.delivered == 1
    project.settings["http"] = {"desk": True, "public_url": DESK}
    site.pages["/rss.xml"] = Page(rss([Item("Atta Mohammad Noor speaks again",
                                            site.url("/a/2"), "He spoke in Balkh.", "g2",
                                            datetime.now(UTC))]))
    assert project.once(FakeClock()).delivery.delivered == 1
    off, on = (text(m.message) for m in smtp.mailbox.received())
    assert "newswatch mute story" in off and "/stories/" not in off
    store = project.store()
    try:
        found = store.find_article(site.url("/a/2"))
    finally:
        store.close()
    assert found is not None
    assert f"On the desk: {DESK}/stories/{found.story_id}\n" in on
    assert "newswatch mute story" not in on


def text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def test_a_link_from_a_mail_client_is_reloaded_from_the_desk(project: Project) -> None:
    desk = make_desk(project)
    with served(desk.config) as base, client(base) as browser:
        sign_in(browser)
        # what the mail client's click sends: no Strict cookie, Sec-Fetch-Site cross-site
        with client(base) as clicked:
            bounce = clicked.get("/stories/1?watch=Ahmad+Massoud",
                                 headers={"Sec-Fetch-Site": "cross-site"})
        assert bounce.status_code == 200
        assert re.search(r'<meta http-equiv="refresh" content="0; '
                         r'url=/stories/1\?watch=Ahmad\+Massoud">', bounce.text)
        assert "<script" not in bounce.text
        # the reload from the desk's own page carries the cookie; without one, login
        assert browser.get("/stories/1", headers={"Sec-Fetch-Site": "same-origin"}
                           ).status_code == 200
        with client(base) as anonymous:
            away = anonymous.get("/stories/1?watch=Ahmad+Massoud",
                                 headers={"Sec-Fetch-Site": "same-origin"})
            assert away.status_code == 303
            assert away.headers["location"] == \
                "/login?next=%2Fstories%2F1%3Fwatch%3DAhmad%2BMassoud"
