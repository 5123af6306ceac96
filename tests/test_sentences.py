"""Sentence lookup by bisection gives what a scan over every sentence gives (snippets
ask it once per mention, so it must not cost a pass over the text each time)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crawler.process import sentences

WORDS = st.sampled_from(["Kabul", "Atmar", "said.", "U.S.", "talks!", "دوستم", "گفت؟",
                         "\n", "  ", "Mr.", "…", "end."])


def scanned(text: str, a: int, b: int) -> tuple[int, int]:
    found = sentences.spans(text)
    lo = next((s for s, e in found if s <= a < e), a)
    hi = next((e for s, e in found if s < b <= e), b)
    return min(lo, a), max(hi, b)


@given(st.lists(WORDS, max_size=40).map(" ".join), st.data())
def test_the_sentence_around_a_mention_is_found_by_bisection(text: str,
                                                            data: st.DataObject) -> None:
    if not text:
        return
    a = data.draw(st.integers(0, len(text) - 1))
    b = data.draw(st.integers(a + 1, len(text)))
    found = sentences.spans(text)
    assert sentences._around(found, [s for s, _ in found], a, b) == scanned(text, a, b)


def whole_lede(text: str, limit: int) -> str | None:
    """The lede as taken from the whole text (``lede`` reads only its head)."""
    chosen: list[str] = []
    for sentence in sentences.split(" ".join(text.split("\n"))):
        if chosen and len(" ".join([*chosen, sentence])) > limit:
            break
        chosen.append(sentence)
        if len(sentence) >= limit:
            break
    return sentences._shorten(" ".join(chosen), limit) if chosen else None


@given(st.lists(WORDS, max_size=60).map(" ".join), st.integers(4, 40))
def test_the_lede_read_from_the_head_is_the_lede_of_the_whole_text(text: str,
                                                                   limit: int) -> None:
    assert sentences.lede(text, limit=limit) == whole_lede(text, limit)
