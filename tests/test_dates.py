"""Publication dates: Kabul time, Solar and lunar Hijri, and the rule between candidates."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from crawler.core.article import Article
from crawler.process import dates, dedup
from crawler.process.extract import extract
from tests.newssite import Story, article_html

# 7 Qaws (Azar) 1405 = 28 November 2026; midnight in Kabul is 19:30 UTC the day before.
KABUL_MIDNIGHT = datetime(2026, 11, 27, 19, 30, tzinfo=UTC)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("year", "month", "day", "expected"), [
    (1403, 1, 1, date(2024, 3, 20)),   # Nowruz 2024
    (1404, 1, 1, date(2025, 3, 21)),   # Nowruz 2025
    (1403, 12, 30, date(2025, 3, 20)),  # last day of a leap year
    (1405, 9, 7, date(2026, 11, 28)),
    (1405, 6, 31, date(2026, 9, 22)),
])
def test_solar_hijri_arithmetic(year: int, month: int, day: int, expected: date) -> None:
    assert dates.solar_to_gregorian(year, month, day) == expected



def test_a_day_the_solar_calendar_lacks_is_no_date() -> None:
    """1404 is a common year: 30 Hut (Esfand) 1404 does not exist (it was read as the
    next Nowruz before jdatetime)."""
    with pytest.raises(ValueError):
        dates.solar_to_gregorian(1404, 12, 30)
    assert dates.parse_date("30 Hut 1404") is None
    assert dates.parse_date("30 Hut 1403") == datetime(2025, 3, 19, 19, 30, tzinfo=UTC)

@pytest.mark.parametrize("text", [
    "۷ قوس ۱۴۰۵",          # Dari month, Persian digits
    "7 Qaws 1405",          # Dari month, Latin letters and digits
    "۷ قوس 1405",           # mixed digits
    "۷ لیندۍ ۱۴۰۵",         # Pashto month
    "7 Lindah 1405",
    "۷ آذر ۱۴۰۵",           # Iranian month
    "7 Azar 1405",
    "شنبه ۷ قوس ۱۴۰۵",      # with a weekday before it
    "1405/09/07",           # numeric Solar Hijri
    "۱۴۰۵/۰۹/۰۷ هـ ش",
])
def test_solar_hijri_in_every_month_name_set_and_digit_form(text: str) -> None:
    assert dates.parse_date(text) == KABUL_MIDNIGHT


def test_every_month_of_each_solar_name_set() -> None:
    dari = ["Hamal", "Sawr", "Jawza", "Saratan", "Asad", "Sonbola", "Mizan", "Aqrab", "Qaws",
            "Jadi", "Dalw", "Hut"]
    pashto = ["وری", "غویی", "غبرگولی", "چنګاښ", "زمری", "وږی", "تله", "لړم", "لیندۍ",
              "مرغومی", "سلواغه", "کب"]
    iranian = ["فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر",
               "دی", "بهمن", "اسفند"]
    for names in (dari, pashto, iranian):
        for month, name in enumerate(names, start=1):
            expected = dates.solar_to_gregorian(1405, month, 2)
            got = dates.parse_date(f"2 {name} 1405")
            assert got is not None, name
            assert got.astimezone(dates.KABUL).date() == expected, name


def test_lunar_hijri() -> None:
    # 17 Jumada al-Ula 1448 (Umm al-Qura) = 28 October 2026.
    expected = datetime(2026, 10, 27, 19, 30, tzinfo=UTC)
    assert dates.parse_date("17 جمادى الأولى 1448") == expected
    assert dates.parse_date("١٧ جمادى الأولى ١٤٤٨ هـ") == expected
    assert dates.parse_date("1448/05/17 هـ ق") == expected
    # 1 Ramadan 1447 = 18 February 2026.
    assert dates.parse_date("1 Ramadan 1447") == datetime(2026, 2, 17, 19, 30, tzinfo=UTC)


def test_times_without_a_zone_are_kabul_time() -> None:
    assert dates.parse_date("2026-11-28 10:00") == datetime(2026, 11, 28, 5, 30, tzinfo=UTC)
    assert dates.parse_date("2026-11-28T10:00:00") == datetime(2026, 11, 28, 5, 30, tzinfo=UTC)
    assert dates.parse_date("Sat, 28 Nov 2026 10:00:00") == \
        datetime(2026, 11, 28, 5, 30, tzinfo=UTC)
    assert dates.parse_date("7 Qaws 1405 14:30") == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    # With a zone, the zone is kept.
    assert dates.parse_date("Sat, 28 Nov 2026 10:00:00 GMT") == \
        datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert dates.parse_date("2026-11-28T10:00:00+03:00") == \
        datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    assert dates.parse_date("no date here") is None
    assert dates.parse_date("") is None


def test_the_rule_when_feed_page_and_url_disagree() -> None:
    page = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    feed = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    url = dates.url_date("https://x.af/2026/11/20/story")
    assert url == datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
    # The page's metadata wins...
    assert dates.choose(NOW, page=page, collected=feed, url=url) == page
    # ...unless it is in the future,
    future = datetime(2026, 12, 5, tzinfo=UTC)
    assert dates.choose(NOW, page=future, collected=feed, url=url) == feed
    # ...or a bare day, and the feed gives a time on that same Kabul day.
    day_only = datetime(2026, 11, 27, 19, 30, tzinfo=UTC)
    assert dates.choose(NOW, page=day_only, page_has_time=False, collected=feed) == feed
    assert dates.choose(NOW, page=day_only, page_has_time=False,
                        collected=page) == day_only
    # Then the feed, then the URL, else nothing.
    assert dates.choose(NOW, page=None, collected=feed, url=url) == feed
    assert dates.choose(NOW, page=None, collected=None, url=url) == url
    assert dates.choose(NOW, page=None, collected=None, url=None) is None


def page_article(story: Story, published: datetime | None = None) -> Article:
    url = f"http://127.0.0.2{story.path}"
    return Article(source="s", url=url, link=url, title=story.title, published_at=published,
                   page_html=article_html(story), final_url=url)


def test_dates_read_from_pages() -> None:
    feed = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    naive = extract(page_article(Story("/a", "T", "Body.", published="2026-11-28T08:00:00"),
                                 feed), NOW)
    assert naive.published_at == datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
    hijri = extract(page_article(Story("/b", "T", "Body.", visible_date="۷ قوس ۱۴۰۵"),
                                 feed), NOW)
    assert hijri.published_at == feed, "a bare page day gives way to the feed's time"
    hijri_only = extract(page_article(Story("/c", "T", "Body.", visible_date="۷ قوس ۱۴۰۵")),
                         NOW)
    assert hijri_only.published_at == KABUL_MIDNIGHT
    undated = extract(page_article(Story("/d", "T", "Body.")), NOW)
    assert undated.published_at is None
    undated_with_feed = extract(page_article(Story("/e", "T", "Body."), feed), NOW)
    assert undated_with_feed.published_at == feed


@pytest.mark.parametrize("variant", [
    "https://amp.example.af/news/1", "https://m.example.af/news/1",
    "https://example.af/news/1/amp", "https://example.af/news/1/amp/",
    "https://example.af/news/1?amp=1", "https://example.af/news/1?outputType=amp",
    "https://example.af/news/1?utm_source=x&amp",
])
def test_amp_and_mobile_variants_share_a_key(variant: str) -> None:
    assert dedup.without_variant(variant) == "https://example.af/news/1"


def test_other_pages_do_not_share_a_key() -> None:
    assert dedup.without_variant("https://example.af/news/1?page=2") != \
        "https://example.af/news/1"
    assert dedup.without_variant("https://example.af/camp") == "https://example.af/camp"


def test_a_canonical_link_to_the_home_page_or_another_site_is_ignored() -> None:
    for canonical in ("http://127.0.0.2/", "http://example.org/news/1"):
        story = Story("/news/7", "T", "Body.", canonical=canonical, og_url=canonical)
        extracted = extract(page_article(story), NOW)
        assert extracted.url == "http://127.0.0.2/news/7"
        assert canonical not in extracted.alternates
    kept = extract(page_article(Story("/news/7/amp", "T", "Body.",
                                      canonical="http://127.0.0.2/news/7")), NOW)
    assert kept.url == "http://127.0.0.2/news/7"
