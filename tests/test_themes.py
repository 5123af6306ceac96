"""The shipped watchlists, as they are, against how news writes: each theme's table of
phrasings (tests/data/themes.yaml) and the opposition's joint declaration as an English and
a Dari outlet report it."""

from __future__ import annotations

import pytest

from crawler.config import load_config
from crawler.core.article import Article
from crawler.process.match import Matcher
from scripts.theme_table import SHIPPED, WATCHLIST, explain, phrasings, table

WATCHLISTS = load_config(SHIPPED).watchlists
MATCHER = Matcher(WATCHLISTS)
ROWS = list(phrasings())


@pytest.mark.parametrize(("theme", "phrasing", "expected"), ROWS,
                         ids=[f"{t}-{'yes' if e else 'no'}-{i}"
                              for i, (t, _, e) in enumerate(ROWS)])
def test_theme_phrasing(theme: str, phrasing: str, expected: bool) -> None:
    found = explain(MATCHER, phrasing)
    matched = {m.watch for m in found.matches if m.watchlist == WATCHLIST}
    assert (theme in matched) is expected, (phrasing, matched, [
        m.reason for m in found.misses if m.watch == theme])


def test_every_shipped_theme_has_a_table_in_both_scripts() -> None:
    [themes] = [w for w in WATCHLISTS if w.name == WATCHLIST]
    assert {t for t, _, _ in ROWS} == {item.name for item in themes.watch}
    for item in themes.watch:
        rows = [(p, e) for t, p, e in ROWS if t == item.name]
        dari = [e for p, e in rows if not p.isascii()]
        assert sum(e for _, e in rows) >= 5 and len(rows) - sum(e for _, e in rows) >= 3
        assert True in dari and False in dari, item.name


def test_the_table_prints_one_row_per_phrasing_all_as_expected() -> None:
    lines = table(MATCHER)
    assert len(lines) == 2 + len(ROWS)
    assert all(line.endswith("| ✓ |") for line in lines[2:]), [
        line for line in lines[2:] if not line.endswith("| ✓ |")]


ENGLISH = Article(
    "Wire", "https://wire.example/declaration", "https://wire.example/declaration",
    "Afghan opposition blocs call for UN-backed intra-Afghan dialogue",
    summary="Three blocs issue a joint declaration on the future of Afghanistan.",
    text=(
        "Three Afghan opposition blocs, the National Resistance Council for the Salvation of "
        "Afghanistan, the National Assembly for Salvation and the National Movement for Peace "
        "and Justice, issued a joint declaration on Tuesday calling for an intra-Afghan "
        "dialogue backed by the United Nations. The declaration was signed by Ahmad Massoud, "
        "leader of the National Resistance Front, Atta Mohammad Noor, Yunus Qanuni, Hanif "
        "Atmar, Mohammad Mohaqiq and Abdul Rashid Dostum.\n\n"
        "The blocs said negotiations with the Taliban must take place with guarantees from "
        "the United Nations Security Council. They called for the participation of women and "
        "youth in decision-making, the reopening of schools for girls, education and "
        "employment for women, and an end to the ban on female aid workers. The declaration "
        "proposed a new constitution and national elections, and urged that humanitarian aid "
        "reach all Afghans without discrimination."))
DARI = Article(
    "Wire", "https://wire.example/fa/declaration", "https://wire.example/fa/declaration",
    "بلوک‌های مخالف خواستار گفت‌وگوی بین‌الافغانی با حمایت سازمان ملل شدند",
    text=(
        "سه بلوک مخالف، شورای عالی مقاومت ملی برای نجات افغانستان، مجمع ملی نجات و حرکت ملی "
        "صلح و عدالت، روز سه‌شنبه با نشر اعلامیه‌ای مشترک خواستار گفت‌وگوی بین‌الافغانی با "
        "حمایت سازمان ملل متحد شدند. این اعلامیه را احمد مسعود، رهبر جبهه مقاومت ملی، عطا "
        "محمد نور، یونس قانونی، حنیف اتمر، محمد محقق و عبدالرشید دوستم امضا کرده‌اند.\n\n"
        "در این اعلامیه آمده است که مذاکره با طالبان باید با تضمین شورای امنیت سازمان ملل "
        "متحد انجام شود. امضاکنندگان بر مشارکت زنان و جوانان در تصمیم‌گیری، بازگشایی مکاتب "
        "و آموزش دختران، حق کار زنان و لغو ممنوعیت کار کارمندان زن در موسسات غیردولتی تأکید "
        "کردند. آنان خواستار تدوین قانون اساسی جدید، برگزاری انتخابات آزاد و رسیدن کمک‌های "
        "بشردوستانه به همه مردم افغانستان شدند."))


@pytest.mark.parametrize("page", [ENGLISH, DARI], ids=["English", "Dari"])
def test_the_declaration_matches_every_leader_bloc_and_theme(page: Article) -> None:
    everything = {(w.name, item.name) for w in WATCHLISTS for item in w.watch}
    found = {(m.watchlist, m.watch) for m in MATCHER.match(page)}
    assert everything - found == set()


@pytest.mark.parametrize(("written", "item"), [
    ("Ahmad Masood", "Ahmad Massoud"), ("احمد مسعود", "Ahmad Massoud"),
    ("Ata Mohammad Noor", "Atta Mohammad Noor"), ("Ustad Atta", "Atta Mohammad Noor"),
    ("عطامحمد نور", "Atta Mohammad Noor"), ("Younus Qanooni", "Yunus Qanuni"),
    ("محمد یونس قانونی", "Yunus Qanuni"), ("Mohammad Hanif Atmar", "Hanif Atmar"),
    ("حنیف اتمر", "Hanif Atmar"), ("Mohaqqeq", "Mohammad Mohaqiq"),
    ("استاد محمد محقق", "Mohammad Mohaqiq"), ("Marshal Dostum", "Abdul Rashid Dostum"),
    ("جنرال عبدالرشید دوستم", "Abdul Rashid Dostum"),
    ("Supreme National Resistance Council",
     "National Resistance Council for the Salvation of Afghanistan"),
    ("شورای عالی مقاومت ملی افغانستان",
     "National Resistance Council for the Salvation of Afghanistan"),
    ("مجمع ملی برای نجات افغانستان", "National Assembly for Salvation"),
    ("جنبش ملی صلح و عدالت", "National Movement for Peace and Justice"),
    ("جبهه مقاومت ملی افغانستان", "National Resistance Front"),
    ("intra-Afghan negotiations", "intra-Afghan dialogue"),
    ("مذاکرات بین‌الافغانی", "intra-Afghan dialogue"),
])
def test_the_leaders_and_blocs_are_known_by_their_usual_names(written: str, item: str) -> None:
    found = {m.watch for m in MATCHER.match(Article("S", "u", "u", "", text=f"{written} said"))}
    assert item in found
