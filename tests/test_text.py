"""Text as published: pages decoded as browsers decode them, and the Persian joiners
(U+200C, U+200D) kept from the page to storage, alerts, search snippets and export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from crawler.core.article import Article
from crawler.process.extract import extract
from tests import schema
from tests.conftest import Project
from tests.feeds import Item, rss
from tests.newssite import FILLER, HTML
from tests.payloads import mentions
from tests.servers import Page, Receiver, Site

ZWNJ = "\u200c"

#: Real Dari news sentences; U+200C joins سه‌شنبه, گفت‌وگو, بین‌الافغانی, شرکت‌کنندگان.
DARI = (
    "روز سه‌شنبه نشست گفت‌وگوی بین‌الافغانی در دوحه برگزار شد و نمایندگان سه جبهه در آن "
    "شرکت کردند.",
    "احمد مسعود گفت که این گفت‌وگوها باید با حضور زنان و جوانان ادامه یابد و تصمیم‌ها "
    "به گونه‌ای گرفته شود که همه مردم افغانستان در آن سهم داشته باشند.",
    "به گفته شرکت‌کنندگان، نشست بعدی در ماه آینده در شهر استانبول برگزار خواهد شد و "
    "نمایندگان زنان نیز در آن حضور خواهند داشت.",
    "عطا محمد نور در پیامی از برگزارکنندگان این نشست سپاس‌گزاری کرد و گفت که راه حل "
    "بحران کنونی تنها از راه گفت‌وگو به دست می‌آید.",
)
GERMAN = (
    "Die Gespräche über die Zukunft Afghanistans wurden am Dienstag in Doha fortgesetzt.",
    "Ahmad Massoud sagte, die Verhandlungen müssten unter Beteiligung von Frauen geführt "
    "werden, und er begrüßte die gemeinsame Erklärung der drei Bündnisse ausdrücklich.",
    "Nach Angaben der Teilnehmer soll das nächste Treffen im kommenden Monat in Istanbul "
    "stattfinden; Vertreterinnen der Frauen würden ebenfalls eingeladen.",
)

DARI_WATCHLIST = {"name": "dari", "channels": ["hook"],
                  "watch": [{"name": "Ahmad Massoud", "aliases": ["احمد مسعود"]}]}


def page(paragraphs: tuple[str, ...], head: str = "", lang: str = "fa",
         title: str = "خبر") -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!doctype html><html lang="{lang}"><head>{head}<title>{title}</title></head>'
            f'<body><nav><a href="/">Home</a></nav><article><h1>{paragraphs[0][:30]}</h1>'
            f"{body}</article><footer>© 2026</footer></body></html>")


def old_dari(text: str) -> str:
    """Dari as windows-1256 sites write it: Arabic yeh (U+064A), which the code page has,
    for the Persian yeh (U+06CC), which it has not."""
    return text.replace("ی", "ي")


def stored_text(project: Project, site: Site, served: Page) -> str:
    project.hook(site.url("/hook"))  # nothing here matches: no alert is sent
    project.watchlists = [DARI_WATCHLIST | {"watch": [{"name": "Zalmay Khalilzad"}]}]
    site.pages["/a/1"] = served
    site.pages["/feed.xml"] = Page(rss([Item("News", site.url("/a/1"), "Read more.", "g1")]))
    project.sources = [{"name": "Local", "feed": site.url("/feed.xml")}]
    report = project.once()
    assert report.polls[0].error is None
    store = project.store()
    try:
        [row] = schema.rows(store, "SELECT extraction, text FROM articles")
    finally:
        store.close()
    assert row["extraction"] == "ok"
    return str(row["text"])


def test_windows_1256_declared_only_in_meta(project: Project, site: Site) -> None:
    dari = tuple(old_dari(p) for p in DARI)
    markup = page(dari, head="<meta charset=windows-1256>")
    text = stored_text(project, site, Page(markup.encode("cp1256"), "text/html"))
    assert old_dari("در دوحه برگزار شد و نمایندگان سه جبهه") in text
    assert "\ufffd" not in text


def test_iso_8859_1_declared_in_http_equiv(project: Project, site: Site) -> None:
    head = '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
    markup = page(GERMAN, head=head, lang="de", title="Nachrichten")
    text = stored_text(project, site, Page(markup.encode("iso-8859-1"), "text/html"))
    assert "begrüßte die gemeinsame Erklärung der drei Bündnisse" in text
    assert "\ufffd" not in text


def test_a_utf8_bom_outweighs_a_wrong_header_charset(project: Project, site: Site) -> None:
    body = b"\xef\xbb\xbf" + page(GERMAN, lang="de", title="Nachrichten").encode()
    text = stored_text(project, site, Page(body, "text/html; charset=iso-8859-1"))
    assert "begrüßte die gemeinsame Erklärung" in text


def test_an_undeclared_legacy_page_is_detected(project: Project, site: Site) -> None:
    markup = page(GERMAN, lang="de", title="Nachrichten")
    text = stored_text(project, site, Page(markup.encode("iso-8859-1"), "text/html"))
    assert "begrüßte die gemeinsame Erklärung der drei Bündnisse" in text


def test_match_url_decodes_by_meta(project: Project, site: Site) -> None:
    markup = page(tuple(old_dari(p) for p in DARI), head="<meta charset=windows-1256>")
    site.pages["/a/1"] = Page(markup.encode("cp1256"), "text/html")
    project.watchlists = [DARI_WATCHLIST]
    project.hook(site.url("/hook"))
    result = project.cli("match", "--url", site.url("/a/1"), "--json", check=True)
    assert "Ahmad Massoud" in result.stdout


@pytest.mark.parametrize("joiner", [ZWNJ, "&zwnj;", "&#8204;"])
def test_joiners_are_kept_through_extraction_alerts_search_and_export(
        project: Project, site: Site, receiver: Receiver, joiner: str) -> None:
    # A page that already holds trafilatura's placeholder must not gain joiners.
    markup = page((*DARI[:3], DARI[3] + " \U0001d1e8"), head='<meta charset="utf-8">')
    site.pages["/a/1"] = Page(markup.replace(ZWNJ, joiner).encode(), "text/html")
    site.pages["/feed.xml"] = Page(rss([Item("News", site.url("/a/1"), "Read more.", "g1")]))
    project.sources = [{"name": "Local", "feed": site.url("/feed.xml")}]
    project.watchlists = [DARI_WATCHLIST]
    project.hook(receiver.url("/hook"))

    project.once()

    store = project.store()
    try:
        [row] = schema.rows(store, "SELECT text FROM articles")
    finally:
        store.close()
    assert "روز سه‌شنبه نشست گفت‌وگوی بین‌الافغانی در دوحه" in row["text"]
    assert "\U0001d1e8" not in row["text"] and "سپاس‌گزاری کرد" in row["text"]
    [payload] = receiver.payloads()
    [match] = mentions(payload)
    assert match["matched"] == "احمد مسعود" and "این گفت‌وگوها باید" in match["snippet"]
    # The index folds the joiners away: a query typed without them still finds it.
    for query in ("گفتوگوی", "گفت‌وگوی"):
        found: list[dict[str, Any]] = json.loads(
            project.cli("search", query, "--json", check=True).stdout)
        assert [r["url"] for r in found] == [site.url("/a/1")]
        assert "«گفت‌وگوی»" in found[0]["snippet"]
    exported = project.cli("export", check=True).stdout
    assert "گفت‌وگوها" in json.dumps(json.loads(exported.splitlines()[0]),
                                       ensure_ascii=False)


def test_both_joiners_are_kept_in_the_title_and_body() -> None:
    title = "نشست گفت‌وگوی بین‌الافغانی"
    # U+200D keeps the heh joined in the abbreviation of the solar Hijri era, ه‍.ش
    paragraphs = (*DARI, "این نشست در سال ۱۴۰۵ ه\u200d.ش برگزار شد.")
    markup = page(paragraphs, head=f'<meta property="og:title" content="{title}">')
    link = "https://e.org/a/1"
    article = extract(Article(source="S", url=link, link=link, title="News",
                              page_html=markup, final_url=link), datetime.now(UTC))
    assert article.title == title
    assert "ه\u200d.ش" in article.text and "سه‌شنبه" in article.text


BLOCS = ('<table><thead><tr><th>Bloc</th><th>Leader</th></tr></thead><tbody>'
         '<tr><td>National Resistance Front</td><td>Ahmad Massoud</td></tr>'
         '<tr><td>Jamiat-e Islami</td><td>Atta Mohammad Noor</td></tr></tbody></table>')
PROSE = "".join(f"<p>{p}</p>" for p in FILLER)


def matched_watches(project: Project, site: Site, receiver: Receiver, markup: str) -> set[str]:
    site.pages["/a/1"] = Page(markup.encode(), HTML)
    site.pages["/feed.xml"] = Page(rss([Item("Delegations named", site.url("/a/1"),
                                             "Read more.", "g1")]))
    project.sources = [{"name": "Local", "feed": site.url("/feed.xml")}]
    project.hook(receiver.url("/hook"))
    project.once()
    return {m["watch"] for p in receiver.payloads() for m in mentions(p)}


def test_names_in_a_table_of_the_article_match(project: Project, site: Site,
                                               receiver: Receiver) -> None:
    markup = (f"<!doctype html><html lang=en><head><title>Delegations</title></head><body>"
              f"<article><h1>Delegations named</h1>{PROSE}{BLOCS}{PROSE}</article>"
              f"</body></html>")
    assert matched_watches(project, site, receiver, markup) == {
        "Ahmad Massoud", "Atta Mohammad Noor"}


def test_a_table_laid_out_page_brings_no_navigation_or_comments(
        project: Project, site: Site, receiver: Receiver) -> None:
    markup = (
        "<!doctype html><html lang=en><head><title>Delegations</title></head><body>"
        '<table width="100%"><tr><td class="menu"><a href="/">Home</a><br>'
        '<a href="/t/1">intra-Afghan dialogue</a><br><a href="/t/2">Politics</a></td>'
        f'<td class="content"><h1>Delegations named</h1>{PROSE}'
        "<table><tr><th>Bloc</th><th>Leader</th></tr>"
        "<tr><td>National Resistance Front</td><td>Ahmad Massoud</td></tr></table>"
        f'{PROSE}<div class="comments"><h3>Comments</h3><p>Atta Mohammad Noor should '
        "have been there too, wrote a reader.</p></div></td>"
        '<td class="side">Most read: <a href="/m/1">Atta Mohammad Noor meets envoys</a>'
        "</td></tr></table></body></html>")
    assert matched_watches(project, site, receiver, markup) == {"Ahmad Massoud"}
