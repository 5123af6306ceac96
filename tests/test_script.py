"""The script of a text (Latin or Arabic, by its letters) and the pieces a template wraps
in ``<mark>``: pure functions the web desk reads stories through."""

from __future__ import annotations

import pytest

from crawler.process.fold import excerpt_span, excerpts
from crawler.process.script import direction, script
from crawler.process.search import passage
from crawler.process.sentences import pieces


@pytest.mark.parametrize(("texts", "language", "expected"), [
    (("UN envoy meets Ahmad Massoud in Dushanbe",), "", "latin"),
    (("UN با احمد مسعود در دوشنبه دیدار کرد",), "", "arabic"),
    (("Talks with «احمد مسعود» resumed on Monday in Doha",), "", "latin"),
    (("د سولې خبرې اترې بیا پیل شوې",), "", "arabic"),
    (("Ünlü Çavuşoğlu görüştü",), "", "latin"),
    (("Встреча в Душанбе",), "", "other"),
    (("", "۱۴۰۳ — 2025", "احمد مسعود"), "", "arabic"),
    (("1403", ""), "fa-AF", "arabic"),
    (("1403",), "en", "other"),
])
def test_the_script_is_that_of_most_letters_in_the_first_text_with_any(
        texts: tuple[str, ...], language: str, expected: str) -> None:
    assert script(*texts, language=language) == expected


def test_arabic_script_runs_right_to_left() -> None:
    assert (direction("arabic"), direction("latin"), direction("other")) == (
        "rtl", "ltr", "ltr")


def test_pieces_cut_text_at_merged_marks_and_keep_markup_as_text() -> None:
    text = "<b>Ahmad Massoud</b> & Noor"
    assert pieces(text, [(3, 8), (3, 16), (23, 27), (40, 50)]) == (
        (("<b>", "Ahmad Massoud"), ("</b> & ", "Noor")), "")
    assert pieces(text, []) == ((), text)


def test_the_mention_is_found_again_in_a_stored_excerpt_whatever_it_holds() -> None:
    text = "He said **no** to Ahmad Massoud ** and left"
    start = text.index("Ahmad")
    plain, shown = excerpts(text, start, start + len("Ahmad Massoud"))
    span = excerpt_span(plain, shown)
    assert span is not None and plain[span[0]:span[1]] == "Ahmad Massoud"
    assert excerpt_span("plain", "plain") is None
    assert excerpt_span("a b", "**a b**x") is None


def test_a_search_passage_is_the_sentence_of_the_hit_across_letter_variants() -> None:
    found = passage("خبر اول. احمد مسعود در پنجشیر بود. خبر دوم.", ("احمد مسعود",))
    assert found is not None and found.text == "احمد مسعود در پنجشیر بود."
    assert found.marks == ((0, len("احمد مسعود")),)
    found = passage("گفت: «کمک های زمستاني» رسید.", ("زمستانی",))
    assert found is not None and found.text[found.marks[0][0]:found.marks[0][1]] == "زمستاني"
    assert passage("nothing here", ("massoud",)) is None
