"""The matcher: the case table in tests/data/match_cases.yaml, explanations, and properties
that hold for any text."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from alerts.outbox import event_data
from crawler.config import WatchItem, WatchlistConfig, WatchlistsFile
from crawler.core.article import Article
from crawler.process.extract import extract
from crawler.process.fold import _aligned_by_character, aligned, fold, spaced_fold
from crawler.process.match import Matcher, _Phrases
from tests.helpers import make_article, massoud_noor_dialogue
from tests.payloads import valid_payload

TABLE = YAML(typ="safe").load((Path(__file__).parent / "data" / "match_cases.yaml").read_text())
MATCHER = Matcher(WatchlistsFile.model_validate({"watchlists": TABLE["watchlists"]}).watchlists)
CASES: list[dict[str, Any]] = TABLE["cases"]


def article(case: dict[str, Any]) -> Article:
    a = Article(source="S", url="https://e.org/a", link="https://e.org/a",
                title=case.get("title", ""), summary=case.get("summary", ""),
                text=case.get("text", ""), content_html=case.get("html", ""))
    return extract(a, datetime.now(UTC)) if "html" in case else a


def test_the_table_is_big_enough_and_has_both_kinds() -> None:
    assert len(CASES) >= 60
    assert sum(1 for c in CASES if c["expect"]) >= 30
    assert sum(1 for c in CASES if not c["expect"]) >= 12


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['rule']}" for i, c in enumerate(CASES)])
def test_case(case: dict[str, Any]) -> None:
    a = article(case)
    found = MATCHER.match(a)
    assert sorted({m.watch for m in found}) == sorted(case["expect"]), case["rule"]
    for m in found:
        original = getattr(a, m.field)
        assert original[m.start:m.end] == m.matched
        assert f"**{' '.join(m.matched.split())}**" in m.highlight


def matcher(*items: WatchItem, **watchlist: Any) -> Matcher:
    return Matcher([WatchlistConfig(name="w", watch=list(items), **watchlist)])


def test_a_match_explains_itself() -> None:
    m = matcher(WatchItem.model_validate({
        "name": "women", "all_of": ["Taliban"],
        "any_of": {"terms": ["education"], "within": 10}}))
    text = ("Officials spoke at length about the economy and the weather. " * 3
            + "The Taliban barred women from education. " + "More words follow here. " * 5)
    [found] = m.match(Article("S", "u", "u", "", text=text))
    assert (found.watch, found.alias, found.field) == ("women", "women", "text")
    assert text[found.start:found.end] == "women"
    assert found.context == ("all_of: Taliban", "any_of: education (within 10 words)")
    assert found.highlight.startswith("…") and "barred **women** from" in found.highlight
    assert found.snippet.replace("**", "") == found.highlight.replace("**", "")


def test_offsets_point_into_the_original_text_past_folded_characters() -> None:
    m = matcher(WatchItem(name="دوستم"))
    text = "بیانیه‌ای از دُوســتم" + " و " + "دوستم"
    found = m.match(Article("S", "u", "u", "", text=text))
    assert [text[f.start:f.end] for f in found] == ["دُوســتم"]
    assert found[0].matched == "دُوســتم"


def test_first_mention_per_item_and_field() -> None:
    m = matcher(WatchItem(name="Noor", aliases=["Nur"]))
    found = m.match(Article("S", "u", "u", "Nur and Noor", text="Noor, then Nur"))
    assert [(f.field, f.matched, f.start) for f in found] == [("title", "Nur", 0),
                                                                ("text", "Noor", 0)]


def test_a_watchlist_can_keep_to_some_sources() -> None:
    m = Matcher([WatchlistConfig(name="dari", sources=["8am", "Etilaatroz"],
                                 watch=[WatchItem(name="Noor")]),
                 WatchlistConfig(name="all", watch=[WatchItem(name="Noor")])])
    for source, expected in (("8am", ["all", "dari"]), ("BBC Asia", ["all"])):
        found = m.match(Article(source, "u", "u", "Noor returns to Mazar"))
        assert sorted(f.watchlist for f in found) == expected, source


def test_case_sensitive_can_be_a_watchlist_default() -> None:
    m = matcher(WatchItem(name="NRC"), WatchItem(name="Taliban", case_sensitive=False),
                defaults={"case_sensitive": True})
    assert sorted(f.watch for f in m.match(Article("S", "u", "u", "nrc taliban NRC"))) == [
        "NRC", "Taliban"]
    assert m.match(Article("S", "u", "u", "nrc")) == []


def test_the_compiled_matcher_is_cached_per_config_version(project: Any) -> None:
    project.hook("http://127.0.0.1:9/hook")
    config = project.config()
    assert Matcher.for_config(config) is Matcher.for_config(config)
    project.watchlists = [{"name": "x", "watch": [{"name": "Dostum"}]}]
    other = project.config()
    assert other.version != config.version
    assert Matcher.for_config(other) is not Matcher.for_config(config)


def test_fold_equates_the_documented_forms() -> None:
    assert fold("Intra‑Afghan") == fold("intra Afghan") == fold("INTRA-AFGHAN")
    assert fold("يكي") == fold("یکی")
    assert fold("۱۴۰۳") == fold("١٤٠٣") == "1403"
    assert fold("Moḥaqiq") == "mohaqiq"


ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=300)
WORDS = st.lists(st.sampled_from([
    "Noor", "nur", "NRF", "Ahmad", "Shah", "Massoud", "دوستم", "دُوســتم", "بیانیه‌ای",
    "intra‑Afghan", "dialogue", " ", "\n", "’s", "-", "ＮＯＯＲ", "é", "\u0301", "\u200c",
    "ß", "İ", "ﷺ", "ﬁ", "\u00a0", "  "]), max_size=40).map("".join)
FUZZ = Matcher([WatchlistConfig.model_validate({"name": "f", "watch": [
    {"name": "Noor", "aliases": ["Nur", {"text": "NRF", "case_sensitive": True}]},
    {"name": "Ahmad Massoud", "exclude": ["Ahmad Shah Massoud"]},
    {"name": "دوستم", "aliases": ["بیانیه‌ای", "ss", "i"]},
    {"name": "intra-Afghan dialogue", "any_of": {"terms": ["nur"], "within": 3}},
    {"name": "Shah*", "none_of": ["ss*"], "any_of": [{"terms": ["No*"]}]},
]})])


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, WORDS), st.one_of(ANY_TEXT, WORDS))
@example("ＮＯＯＲ in Kabul", "Nur\u2019s بیانیه\u200cای and دُوســتم")  # matches, for sure
def test_matching_never_raises_and_offsets_slice_the_original(title: str, text: str) -> None:
    a = Article("S", "u", "u", title, text=text)
    assert FUZZ.explain(a).matches == FUZZ.match(a)
    for m in FUZZ.match(a):
        original = getattr(a, m.field)
        assert 0 <= m.start < m.end <= len(original)
        assert original[m.start:m.end] == m.matched
        assert fold(m.matched).strip() != ""


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, WORDS))
def test_aligned_is_the_fold_with_a_map_back(text: str) -> None:
    folded, origin = aligned(text)
    assert len(origin) == len(folded) + 1
    assert all(0 <= origin[i] <= origin[i + 1] <= len(text) for i in range(len(folded)))


@settings(max_examples=1000, deadline=None)
@given(st.one_of(ANY_TEXT, WORDS, st.text(max_size=200),
                 st.text(st.characters(min_codepoint=0x300, max_codepoint=0x6ff), max_size=60),
                 st.text(st.characters(min_codepoint=0x1100, max_codepoint=0x11ff)
                         | st.characters(min_codepoint=0xac00, max_codepoint=0xac40), max_size=30)))
def test_fast_alignment_agrees_with_the_plain_one(text: str) -> None:
    folded, origin = aligned(text)
    plain, plain_origin = _aligned_by_character(text)
    reordered = any(c == "\u0345" or (ord(c) > 0xFFFF and unicodedata.combining(c))
                    for c in text)
    assert folded == plain or reordered
    if folded == plain:
        assert list(origin) == plain_origin


FOLDING = _Phrases()
FOLDING.build()


@settings(max_examples=1000, deadline=None)
@given(st.one_of(ANY_TEXT, WORDS, st.text(max_size=200),
                 st.text(st.characters(min_codepoint=0x80, max_codepoint=0x6ff), max_size=80),
                 st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)))
def test_the_fast_byte_fold_is_the_fold(text: str) -> None:
    """Articles are folded as UTF-8 bytes in one automaton pass that also spots what is
    left to fold; that must agree with ``fold``, the plain definition, on any text."""
    folded = FOLDING.fold(text)
    assert folded.spaced.decode("utf-8", "surrogatepass") == spaced_fold(text)
    assert folded.data.decode("utf-8", "surrogatepass") == fold(text)


def test_lone_surrogates_do_not_break_matching() -> None:
    a = Article("S", "u", "u", "\ud800 Noor \udfff", text="Nur\ud83d")
    assert [m.matched for m in FUZZ.match(a)] == ["Noor", "Nur"]


def test_the_webhook_payload_carries_the_explanation() -> None:
    a = Article("S", "https://e.org/a", "https://e.org/a", "Taliban bar women from education")
    found = MATCHER.match(a)
    payload = event_data(a, [m for m in found if m.watchlist == "rules"], datetime.now(UTC))
    valid_payload(payload)
    [m] = payload["data"]["matches"]
    assert m["highlight"] == "Taliban bar **women** from education"
    assert m["context"] == ["all_of: Taliban", "any_of: education (within 10 words)"]


@pytest.mark.parametrize(("text", "found"), [
    ("women a b education", True),  # 3 words apart
    ("education a b women", True),
    ("women a b c education", False),  # 4
    ("women, a - b education", True),  # punctuation is not a word
    ("education", False),  # no mention at all
])
def test_within_counts_words_between_mention_and_term(text: str, found: bool) -> None:
    m = matcher(WatchItem.model_validate(
        {"name": "women", "any_of": {"terms": ["education"], "within": 3}}))
    assert bool(m.match(Article("S", "u", "u", text))) is found


@pytest.mark.parametrize(("text", "expected"), [
    ("AHMAD MASOUD spoke", {"Ahmad Massoud"}),
    ("Ahmad Shah Massoud was killed in 2001", set()),
    ("Ahmad Shah Massoud's son Massoud spoke", {"Ahmad Massoud"}),
    ("Massoud’s forces", {"Ahmad Massoud"}),
    ("Noorzai was there", set()),
    ("the intra‑Afghan dialogue resumed", {"intra-Afghan dialogue"}),  # U+2011
    ("the intra–Afghan\n  dialogue", {"intra-Afghan dialogue"}),  # en dash, line break
    ("ＮＯＯＲ in full width", {"Noor"}),  # NFKC
])
def test_matching(text: str, expected: set[str]) -> None:
    found = massoud_noor_dialogue().match(make_article(text=text))
    assert {m.watch for m in found} == expected
    for m in found:
        assert text[m.start:m.end] == m.matched


def test_match_records_field_alias_and_snippet() -> None:
    text = ("Opening words. " * 10) + "Then Ahmad Masoud said the talks failed." + (
        " More words." * 10)
    [m] = massoud_noor_dialogue().match(make_article(text=text))
    assert (m.field, m.alias, m.matched) == ("text", "Ahmad Masoud", "Ahmad Masoud")
    assert "Ahmad Masoud said" in m.snippet and m.snippet.startswith("…")
    assert len(m.snippet) < 200


def test_a_prefix_takes_the_whole_word_it_starts() -> None:
    m = matcher(WatchItem(name="guarantees", aliases=["guarant*", "تضمین*"]),
                WatchItem(name="NRF", aliases=[{"text": "NRF*", "case_sensitive": True}]))
    text = "talks guaranteed by the UN; تضمین‌های شورا; NRFs and nrfs"
    found = m.match(Article("S", "u", "u", "", text=text))
    assert [(f.watch, f.alias, f.matched) for f in found] == [
        ("guarantees", "guarant*", "guaranteed"), ("NRF", "NRF*", "NRFs")]
    assert "talks **guaranteed** by" in found[0].highlight


def test_several_rules_of_one_kind_must_each_hold() -> None:
    """The shipped themes ask for a term near the mention and the Afghan context anywhere:
    two any_of rules."""
    m = matcher(WatchItem.model_validate({
        "name": "Security Council", "any_of": [
            {"terms": ["guarant*"], "within": 3}, {"terms": ["Afghan*", "Taliban"]}]}))
    def found(text: str) -> bool:
        return bool(m.match(Article("S", "u", "u", "", text=text)))
    assert found("Afghans want talks guaranteed by the Security Council.")
    assert not found("Talks guaranteed by the Security Council.")  # no Afghan context
    assert not found("Afghans want the Security Council to meet in New York; guarantees later.")


def test_explain_says_why_a_mention_did_not_count() -> None:
    m = Matcher(WatchlistsFile.model_validate({"watchlists": [{"name": "w", "watch": [
        {"name": "Ahmad Massoud", "aliases": ["Massoud"], "exclude": ["Ahmad Shah Massoud"]},
        {"name": "sanctions", "none_of": ["cricket"]},
        {"name": "women", "all_of": ["Taliban"], "any_of": {"terms": ["school*"], "within": 3}},
        {"name": "Council", "any_of": {"terms": ["guarant*"], "within": 2}},
        {"name": "breaking", "fields": ["title"]},
        {"name": "NRF", "case_sensitive": True},
        {"name": "Dostum"}]}]}).watchlists)
    a = Article("S", "u", "u", "Dostum returns", text=(
        "Ahmad Shah Massoud died in 2001. New sanctions hit cricket. Women returned to "
        "school. The Council met; no guarantees. Breaking: nrf. Dostum spoke."))
    explained = m.explain(a)
    assert explained.matches == m.match(a)
    assert [m.watch for m in explained.matches] == ["Dostum", "Dostum"]  # no miss for it
    assert [(x.watch, x.rule, x.terms, x.reason) for x in explained.misses] == [
        ("Ahmad Massoud", "exclude", ("Ahmad Shah Massoud",),
         "inside the excluded 'Ahmad Shah Massoud'"),
        ("sanctions", "none_of", ("cricket",), "none_of: cricket"),
        ("women", "all_of", ("Taliban",), "all_of: no Taliban"),
        ("Council", "any_of", ("guarant*",), "any_of: none of guarant* (within 2 words)"),
        ("breaking", "fields", (), "in the text; the item looks only in title"),
        ("NRF", "case", ("NRF",), "not written 'NRF' (case-sensitive)")]
    [veto] = [x for x in explained.misses if x.rule == "none_of"]
    assert a.text[veto.start:veto.end] == veto.matched == "sanctions"
    assert "New **sanctions** hit" in veto.highlight


@pytest.mark.parametrize("term", ["a*", "guarantee *", "*", "intra-*"])
def test_a_prefix_needs_a_word_before_its_star(term: str) -> None:
    with pytest.raises(ValueError, match="a \\* ends a word of at least two letters"):
        WatchItem.model_validate({"name": "x", "aliases": [term]})
    with pytest.raises(ValueError, match="a \\* ends a word"):
        WatchItem.model_validate({"name": "x", "none_of": [term]})


def test_an_exclude_phrase_may_be_a_prefix() -> None:
    m = matcher(WatchItem(name="guarantees", aliases=["guarant*"],
                          exclude=["guaranteed loan*", "وام تضمین*"]))
    def found(text: str) -> list[str]:
        return [f.matched for f in m.match(Article("S", "u", "u", "", text=text))]
    assert found("Banks offered guaranteed loans.") == []
    assert found("وام تضمین‌شده") == []
    assert found("Guaranteed loans and UN guarantees.") == ["guarantees"]
