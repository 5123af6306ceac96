"""Dedup keys: canonical URLs, and new articles told from known ones by URL and by GUID."""

from __future__ import annotations

import dataclasses

import pytest

from crawler.process import dedup
from tests.helpers import make_article


@pytest.mark.parametrize(("url", "canonical"), [
    ("https://E.org/a?utm_source=x&utm_medium=rss&id=3#comments", "https://e.org/a?id=3"),
    ("HTTP://e.org:80/a?fbclid=1", "http://e.org/a"),
    ("https://e.org:8443/a?gclid=z&b=2&a=1", "https://e.org:8443/a?b=2&a=1"),
    ("https://e.org", "https://e.org/"),
    ("https://e.org/a?q=", "https://e.org/a?q="),
])
def test_canonical_url(url: str, canonical: str) -> None:
    assert dedup.canonical_url(url) == canonical


def test_select_new_by_url_and_by_guid() -> None:
    known = {"url:https://e.org/old", "guid:S\x1fg-old"}
    items = [
        make_article("https://e.org/old?utm_campaign=x"),  # known URL
        make_article("https://e.org/moved", guid="g-old"),  # known GUID from this source
        make_article("https://e.org/other", guid="g-old", source="T"),  # GUIDs are per source
        make_article("https://e.org/new#x"),
        make_article("https://e.org/new"),  # same article twice in one batch
    ]
    fresh = dedup.select_new([dedup.Keyed.of(a) for a in items], known)
    assert [k.article.url for k in fresh] == ["https://e.org/other", "https://e.org/new"]


def test_keys_after_extraction_add_only_what_the_page_gave() -> None:
    collected = dedup.Keyed.of(make_article("https://amp.e.org/a/1/amp?utm_source=x",
                                            guid="g",
                                            alternates=("https://e.org/a/1?ref_src=feed",)))
    page = dataclasses.replace(collected.article, url="https://e.org/story/1",
                               alternates=(*collected.article.alternates,
                                           collected.article.url, "https://m.e.org/story/1",
                                           "https://e.org/story/1"))
    extracted = collected.extracted(page)
    assert extracted.keys[:len(collected.keys)] == collected.keys
    assert sorted(extracted.keys) == sorted(dedup.keys(page))
