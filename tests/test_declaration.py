"""The joint declaration, end to end: the shipped config as it is, over an English and a
Dari report of the three opposition blocs' declaration, to a webhook and an inbox.

This is the case newswatch was built for. Each page names the six leaders and the three
blocs, calls for intra-Afghan dialogue and states the declaration's themes as outlets
write them; each must reach the team as ONE webhook and ONE email that name all of it.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from crawler.config import load_config
from tests.feeds import Item, rss
from tests.helpers import SECRET, newswatch
from tests.servers import Page, Receiver, Site
from tests.smtp import SmtpServer

ROOT = Path(__file__).parent.parent
PAGES = Path(__file__).parent / "data" / "declaration"
LEDES = {  # what the feed gives as each item's summary
    "en": "Three Afghan opposition blocs call for a UN-backed intra-Afghan dialogue.",
    "fa": "سه جریان مخالف طالبان خواستار گفت‌وگوی بین‌الافغانی با میانجی‌گری سازمان ملل شدند.",
}
HEADLINES = {
    "en": "Afghan opposition blocs call for UN-backed intra-Afghan dialogue",
    "fa": "سه جریان مخالف خواستار گفت‌وگوی بین‌الافغانی با حمایت سازمان ملل شدند",
}
# how each page's article begins: the email's lede, joiners (U+200C) and all
OPENINGS = {
    "en": "Three Afghan opposition blocs, the National Resistance Council for the Salvation "
          "of Afghanistan, the National Assembly for Salvation",
    "fa": "سه جریان سیاسی مخالف طالبان، شورای عالی مقاومت ملی برای نجات افغانستان، مجمع ملی "
          "نجات افغانستان و جنبش ملی صلح و عدالت، روز سه‌شنبه",
}


def shipped_config(tmp_path: Path, site: Site) -> Path:
    """config/ as shipped, with one change a local test needs: private addresses allowed
    (the site, the receiver and the mail server are on 127.0.0.1); and sources.yaml, whose
    real outlets this machine cannot reach, replaced by the local site's feed."""
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    settings = config / "newswatch.yaml"
    text = settings.read_text(encoding="utf-8")
    assert "allow_private_networks: false" in text
    settings.write_text(text.replace("allow_private_networks: false",
                                     "allow_private_networks: true"), encoding="utf-8")
    (config / "sources.yaml").write_text(
        f'sources:\n  - name: Hindu Kush Herald\n    feed: "{site.url("/feed.xml")}"\n',
        encoding="utf-8")
    return config


def serve(site: Site) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    for lang in LEDES:
        site.pages[f"/{lang}/declaration"] = Page((PAGES / f"{lang}.html").read_bytes(),
                                                  content_type="text/html; charset=utf-8")
    site.pages["/feed.xml"] = Page(rss([
        Item(HEADLINES["en"], site.url("/en/declaration"), LEDES["en"], "en-1", now),
        Item(HEADLINES["fa"], site.url("/fa/declaration"), LEDES["fa"], "fa-1", now),
    ]))


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_the_declaration_reaches_the_team_once_per_page_naming_everyone(
        tmp_path: Path, site: Site, receiver: Receiver, smtp: SmtpServer) -> None:
    serve(site)
    config_dir = shipped_config(tmp_path, site)
    env = {"NEWSWATCH_WEBHOOK_URL": receiver.url("/hook"), "NEWSWATCH_WEBHOOK_SECRET": SECRET,
           "NEWSWATCH_EMAIL_TO": "desk@example.org", "NEWSWATCH_SMTP_HOST": "127.0.0.1",
           "NEWSWATCH_SMTP_PORT": str(smtp.port), "NEWSWATCH_SMTP_SECURITY": "none"}
    run = newswatch("--config", str(config_dir), "once", env=dict(env))
    assert run.returncode == 0, run.stderr

    watchlists = load_config(config_dir).watchlists
    named = {(w.name, i.name) for w in watchlists for i in w.watch}
    assert {w.name for w in watchlists} == {"afghan-opposition", "opposition-blocs",
                                            "joint-declaration-themes"}

    delivered = receiver.payloads()
    assert len(delivered) == 2, "one webhook per page, whatever the watchlists it matched"
    payloads = {p["data"]["article"]["url"]: p for p in delivered}
    assert sorted(payloads) == [site.url("/en/declaration"), site.url("/fa/declaration")]
    mails = smtp.mailbox.received()
    assert len(mails) == 2, [m.message["Subject"] for m in mails]

    for lang in LEDES:
        url = site.url(f"/{lang}/declaration")
        data = payloads[url]["data"]
        assert payloads[url]["version"] == 2
        found = {(w["name"], item["watch"]) for w in data["watchlists"] for item in w["items"]}
        missing = named - found
        assert not missing, f"{lang}: not matched: {sorted(missing)}"

        [mail] = [m for m in mails if url in body(m.message, "plain")]
        assert mail.recipients == ["desk@example.org"]
        text, html = body(mail.message, "plain"), body(mail.message, "html")
        for _, watch in sorted(found):
            assert watch in text, f"{lang}: the email's text does not name {watch}"
            assert watch.replace("'", "&#39;") in html or watch in html, \
                f"{lang}: the email's HTML does not name {watch}"
        assert OPENINGS[lang] in text
        subject = re.sub("[\u2066-\u2069]", "", mail.message["Subject"])
        assert subject.endswith(HEADLINES[lang])
        assert "[afghan-opposition +2]" in subject
