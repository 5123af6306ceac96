"""A small local news site: article pages with realistic chrome, listings, sitemaps.

The chrome (menu, "most read", related links, footer) names watched people on purpose:
a match from it is a false alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

from tests.servers import Page, Site

HTML = "text/html; charset=utf-8"
XML = "application/xml"

CHROME_NAMES = ("Ahmad Massoud", "Atta Mohammad Noor", "intra-Afghan dialogue")

FILLER = (
    "The meeting in the provincial capital lasted several hours, officials said, and "
    "covered water rights, trade across the northern border and the reopening of schools "
    "for the coming winter term. Local elders asked for more clinics in the districts.",
    "Traders in the bazaar said prices of flour and cooking oil had risen again this month, "
    "and that the road to the border crossing was closed twice because of snow. Drivers "
    "waited for days before the pass was cleared by the highway authority.",
    "A spokesman for the provincial department said a committee would publish its findings "
    "within a fortnight, and that the budget for the repairs had already been agreed with "
    "the ministry in the capital after long discussions.",
)


@dataclass
class Story:
    path: str
    title: str
    body: str  # the sentence that matters, put among filler paragraphs
    published: str | None = None  # the page's article:published_time, as written
    visible_date: str | None = None  # a date shown on the page, as written
    canonical: str | None = None
    og_url: str | None = None


def chrome_header() -> str:
    return (
        '<header><nav class="menu"><ul>'
        '<li><a href="/">Home</a></li><li><a href="/politics/">Politics</a></li>'
        f'<li><a href="/tag/massoud">{CHROME_NAMES[0]}</a></li>'
        f'<li><a href="/tag/noor">{CHROME_NAMES[1]}</a></li>'
        '</ul></nav><div class="ticker">Breaking: '
        f'<a href="/ticker/1">{CHROME_NAMES[2]} resumes in Doha</a></div></header>')


def chrome_footer() -> str:
    return (
        '<aside class="sidebar"><h3>Most read</h3><ol>'
        f'<li><a href="/most/1">{CHROME_NAMES[0]} speaks to supporters</a></li>'
        f'<li><a href="/most/2">{CHROME_NAMES[1]} meets envoys</a></li>'
        '<li><a href="/most/3">Snow closes the Salang pass</a></li></ol></aside>'
        '<footer><p>© 2026 Local News. Follow our coverage of '
        f'{CHROME_NAMES[0]} and {CHROME_NAMES[1]}.</p>'
        '<ul><li><a href="/about">About</a></li><li><a href="/contact">Contact</a></li>'
        '</ul></footer>')


def article_html(story: Story) -> str:
    head = [f"<title>{escape(story.title)} | Local News</title>"]
    if story.canonical:
        head.append(f'<link rel="canonical" href="{escape(story.canonical)}">')
    if story.og_url:
        head.append(f'<meta property="og:url" content="{escape(story.og_url)}">')
    if story.published:
        head.append(f'<meta property="article:published_time" content="{story.published}">')
    date_line = (f'<span class="date">{escape(story.visible_date)}</span>'
                 if story.visible_date else "")
    paragraphs = [FILLER[0], story.body, FILLER[1], FILLER[2]]
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs if p)
    related = ('<div class="related"><h3>Related</h3><ul>'
               f'<li><a href="/rel/1">{CHROME_NAMES[1]} and the northern alliance</a></li>'
               f'<li><a href="/rel/2">What {CHROME_NAMES[0]} wants</a></li></ul></div>')
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">{"".join(head)}'
            f"</head><body>{chrome_header()}<main><article><h1>{escape(story.title)}</h1>"
            f"{date_line}{body}</article>{related}</main>{chrome_footer()}</body></html>")


def publish(site: Site, story: Story) -> None:
    site.pages[story.path] = Page(article_html(story).encode(), content_type=HTML)


def listing_html(links: list[tuple[str, str]]) -> str:
    items = "".join(f'<li><a href="{escape(href)}">{escape(text)}</a></li>'
                    for href, text in links)
    return (f"<!doctype html><html><head><title>Politics</title></head><body>"
            f"{chrome_header()}<main><ul class=\"list\">{items}</ul></main>{chrome_footer()}"
            f"</body></html>")


def news_sitemap(entries: list[tuple[str, str, datetime]]) -> bytes:
    urls = "".join(
        f"<url><loc>{escape(loc)}</loc><news:news><news:publication>"
        "<news:name>Local News</news:name><news:language>en</news:language>"
        f"</news:publication><news:publication_date>{when.isoformat()}"
        f"</news:publication_date><news:title>{escape(title)}</news:title></news:news></url>"
        for loc, title, when in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
            f"{urls}</urlset>").encode()


def plain_sitemap(entries: list[tuple[str, datetime | None]]) -> bytes:
    urls = "".join(f"<url><loc>{escape(loc)}</loc>"
                   + (f"<lastmod>{when.isoformat()}</lastmod>" if when else "") + "</url>"
                   for loc, when in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
            ).encode()


def sitemap_index(entries: list[tuple[str, datetime | None]]) -> bytes:
    maps = "".join(f"<sitemap><loc>{escape(loc)}</loc>"
                   + (f"<lastmod>{when.isoformat()}</lastmod>" if when else "")
                   + "</sitemap>" for loc, when in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{maps}</sitemapindex>").encode()
