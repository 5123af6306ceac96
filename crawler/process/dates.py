"""Publication dates to aware UTC datetimes, and which of several candidates wins. Pure.

Afghan outlets need care: a time without a zone is Kabul time (UTC+04:30); dates may be
Solar Hijri, written with the Dari month names (Hamal … Hut), the Pashto ones (Wray …
Kab) or the Iranian ones (Farvardin … Esfand), or lunar Hijri (Muharram … Dhu al-Hijjah),
in Persian, Arabic-Indic or Latin digits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import jdatetime
from hijridate import Hijri

KABUL = ZoneInfo("Asia/Kabul")
#: A date further in the future than this is a typo or a scheduled post, never trusted.
FUTURE_SLACK = timedelta(days=1)

DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")

# Month number → spellings (Latin transliterations and the Persian/Pashto/Arabic script).
_SOLAR: dict[int, tuple[str, ...]] = {
    1: ("hamal", "حمل", "wray", "وری", "وري", "farvardin", "farwardin", "فروردین"),
    2: ("sawr", "saur", "sowr", "ثور", "ghwayay", "ghwayai", "غویی", "غويي",
        "ordibehesht", "اردیبهشت"),
    3: ("jawza", "jauza", "jowza", "جوزا", "gharghumay", "gharguli", "غبرگولی", "غبرګولی",
        "khordad", "خرداد"),
    4: ("saratan", "سرطان", "chungash", "changakh", "چنګاښ", "چنگاښ", "tir", "تیر"),
    5: ("asad", "اسد", "zmaray", "zmarai", "زمری", "mordad", "amordad", "مرداد", "امرداد"),
    6: ("sonbola", "sunbula", "sonbula", "سنبله", "wazhay", "wagai", "وږی", "وږي",
        "shahrivar", "shahriwar", "شهریور"),
    7: ("mizan", "میزان", "talah", "tala", "تله", "mehr", "mihr", "مهر"),
    8: ("aqrab", "عقرب", "laram", "لړم", "aban", "آبان", "ابان"),
    9: ("qaws", "qaus", "qows", "قوس", "lindah", "linda", "لیندۍ", "ليندۍ", "azar", "آذر",
        "اذر"),
    10: ("jadi", "jaddi", "جدی", "جدي", "marghumay", "marghumai", "مرغومی", "dey", "دی",
         "دي"),
    11: ("dalw", "dalv", "دلو", "salwagah", "salwaga", "سلواغه", "bahman", "بهمن"),
    12: ("hut", "hoot", "حوت", "kab", "کب", "esfand", "isfand", "اسفند"),
}
_LUNAR: dict[int, tuple[str, ...]] = {
    1: ("muharram", "محرم"),
    2: ("safar", "صفر"),
    3: ("rabi al-awwal", "rabi ul-awwal", "rabi al-awal", "ربیع الاول", "ربيع الأول",
        "ربيع الاول"),
    4: ("rabi al-thani", "rabi al-akhir", "rabi ul-sani", "ربیع الثانی", "ربيع الثاني",
        "ربيع الآخر"),
    5: ("jumada al-awwal", "jumada al-ula", "جمادی الاول", "جمادى الأولى", "جمادی الاولی"),
    6: ("jumada al-thani", "jumada al-akhirah", "جمادی الثانی", "جمادى الآخرة",
        "جمادی الآخر"),
    7: ("rajab", "رجب"),
    8: ("shaban", "sha'ban", "شعبان"),
    9: ("ramadan", "ramazan", "رمضان"),
    10: ("shawwal", "شوال"),
    11: ("dhu al-qadah", "dhul-qadah", "ذو القعدة", "ذی القعده", "ذیقعده"),
    12: ("dhu al-hijjah", "dhul-hijjah", "ذو الحجة", "ذی الحجه", "ذیحجه"),
}


def _month_pattern(table: dict[int, tuple[str, ...]]) -> tuple[str, dict[str, int]]:
    lookup = {name.casefold(): number for number, names in table.items() for name in names}
    names = sorted(lookup, key=len, reverse=True)
    return "|".join(re.escape(n).replace(r"\ ", r"[\s\-]*") for n in names), lookup


_SOLAR_RE, _SOLAR_MONTHS = _month_pattern(_SOLAR)
_LUNAR_RE, _LUNAR_MONTHS = _month_pattern(_LUNAR)
_TIME = r"(?:\D{0,12}?(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?)?"
_NAMED = {
    kind: re.compile(rf"(?<![^\W\d_])(?P<d>\d{{1,2}})\s*(?:ام|م)?\s*(?P<m>{pattern})"
                     rf"(?![^\W\d_])[\s,،]*(?:سال\s*)?(?P<y>\d{{4}}){_TIME}", re.IGNORECASE)
    for kind, pattern in (("solar", _SOLAR_RE), ("lunar", _LUNAR_RE))
}
_NUMERIC_HIJRI = re.compile(
    r"(?P<y>1[34]\d\d)[/\-.](?P<m>\d{1,2})[/\-.](?P<d>\d{1,2})"
    r"(?:\s*(?P<mark>هـ\s*\.?\s*ق|ه\.ق|ق|AH|هـ\s*\.?\s*ش|ه\.ش|ش|SH))?" + _TIME)
_LUNAR_MARK = re.compile(r"^(هـ\s*\.?\s*ق|ه\.ق|ق|AH)$")
_URL_DATE = re.compile(r"/(?P<y>20\d\d)[/\-](?P<m>[01]?\d)[/\-](?P<d>[0-3]?\d)(?:/|[-_]|$)")


def solar_to_gregorian(year: int, month: int, day: int) -> date:
    """The Gregorian day of a Solar Hijri date (jdatetime: the 33-year arithmetic of the
    calendar); ValueError for a day the calendar lacks, 30 Esfand of a common year too."""
    gregorian: date = jdatetime.date(year, month, day).togregorian()
    return gregorian


def _kabul(day: date, match: re.Match[str]) -> datetime:
    hour = int(match.group("h") or 0)
    minute = int(match.group("mi") or 0)
    second = int(match.group("s") or 0)
    return datetime(day.year, day.month, day.day, hour, minute, second,
                    tzinfo=KABUL).astimezone(UTC)


def _hijri(text: str) -> datetime | None:
    for kind, pattern in _NAMED.items():
        match = pattern.search(text)
        if match:
            months = _SOLAR_MONTHS if kind == "solar" else _LUNAR_MONTHS
            month = months[re.sub(r"[\s\-]+", " ", match.group("m").casefold())
                           if kind == "lunar" else match.group("m").casefold()]
            return _convert(kind, int(match.group("y")), month, int(match.group("d")), match)
    match = _NUMERIC_HIJRI.search(text)
    if match:
        kind = "lunar" if _LUNAR_MARK.match(match.group("mark") or "") else "solar"
        return _convert(kind, int(match.group("y")), int(match.group("m")),
                        int(match.group("d")), match)
    return None


def _convert(kind: str, year: int, month: int, day: int,
             match: re.Match[str]) -> datetime | None:
    if not 1200 <= year <= 1600:  # a Gregorian year after an English word, not Hijri
        return None
    try:
        if kind == "solar":
            return _kabul(solar_to_gregorian(year, month, day), match)
        return _kabul(Hijri(year, month, day).to_gregorian(), match)
    except (ValueError, OverflowError):
        return None


def parse_date(value: str | None, *, naive_zone: timezone | ZoneInfo = KABUL) -> datetime | None:
    """An aware UTC datetime from ISO 8601, RFC 2822, Solar or lunar Hijri text; None when
    the text holds no date. A time without a zone is read in ``naive_zone`` (Kabul)."""
    if not value or not value.strip():
        return None
    text = value.strip().translate(DIGITS)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1)
                                        if re.match(r"^\d{4}-\d\d-\d\d", text) else text)
    except ValueError:
        moment = None
    if moment is None and re.search(r"[A-Za-z]{3},?\s+\d|\d{1,2}\s+[A-Za-z]{3}\s+\d{4}", text):
        try:
            moment = parsedate_to_datetime(text)
            if re.search(r"-0000\s*$", text):  # RFC 2822: UTC, local zone unknown
                moment = moment.replace(tzinfo=UTC)
            elif not re.search(r"(?:[+-]\d{4}|\b(?:GMT|UT|UTC|[ECMP][SD]T|Z)\b)\s*$", text):
                moment = moment.replace(tzinfo=None)
        except (ValueError, TypeError, IndexError):
            moment = None
    if moment is None:
        return _hijri(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_zone)
    return moment.astimezone(UTC)


def url_date(url: str) -> datetime | None:
    """The day a URL such as ``/2026/11/28/slug`` names, at noon Kabul time."""
    match = _URL_DATE.search(url)
    if not match:
        return None
    try:
        day = date(int(match.group("y")), int(match.group("m")), int(match.group("d")))
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, 12, tzinfo=KABUL).astimezone(UTC)


def choose(now: datetime, *, page: datetime | None, page_has_time: bool = True,
           collected: datetime | None = None, url: datetime | None = None) -> datetime | None:
    """The publication date, from the page's metadata, the feed or sitemap, and the URL.

    Rule: candidates more than a day in the future are dropped; then the page's own
    metadata wins, except that a page date without a time of day gives way to the feed's
    (or sitemap's) date-time on the same Kabul day; then the feed or sitemap; then the URL.
    """
    def usable(moment: datetime | None) -> datetime | None:
        return moment if moment is not None and moment <= now + FUTURE_SLACK else None

    page, collected, url = usable(page), usable(collected), usable(url)
    if page is not None:
        if (not page_has_time and collected is not None
                and collected.astimezone(KABUL).date() == page.astimezone(KABUL).date()):
            return collected
        return page
    return collected or url


def first(values: Iterable[str | None]) -> datetime | None:
    """The first of ``values`` that reads as a date."""
    for value in values:
        moment = parse_date(value)
        if moment is not None:
            return moment
    return None
