"""Bounded decompression, feed encodings, and the three feed formats parsed."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime

import brotli
import pytest

from crawler.collect.decompress import DecodeError, decoder
from crawler.collect.feeds import parse_feed
from crawler.core.errors import ParseError
from tests.feeds import Item, atom, json_feed, rss

BODY = b"<rss>" + b"Atta Mohammad Noor " * 5000 + b"</rss>"


def decode_all(coding: str, data: bytes, limit: int = 10**9) -> bytes:
    out, step = b"", decoder(coding)
    for start in range(0, len(data), 1000):  # as the network delivers it, in pieces
        for piece in step.feed(data[start:start + 1000], limit - len(out)):
            out += piece
            if len(out) > limit:
                return out
    return out


@pytest.mark.parametrize(("coding", "encode"), [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),  # zlib-wrapped, as the RFC says
    ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as many servers send
    ("br", brotli.compress),
    ("identity", lambda b: b),
])
def test_each_coding_round_trips(coding: str, encode: object) -> None:
    assert decode_all(coding, encode(BODY)) == BODY  # type: ignore[operator]


@pytest.mark.parametrize(("coding", "encode"), [
    ("gzip", gzip.compress), ("deflate", zlib.compress),
    ("br", lambda b: brotli.compress(b, quality=5))])
def test_a_bomb_stops_just_past_the_limit(coding: str, encode: object) -> None:
    bomb = encode(b"\0" * (32 * 2**20))  # type: ignore[operator]
    out = decode_all(coding, bomb, limit=100_000)
    # Each step yields at most about 64 KiB (brotli may round its buffer up once).
    assert 100_000 < len(out) <= 100_000 + 2 * 64 * 1024


def test_garbage_and_unknown_codings_are_errors() -> None:
    with pytest.raises(DecodeError):
        decode_all("gzip", b"this is not gzip at all")
    with pytest.raises(DecodeError, match="unsupported"):
        decoder("compress")


def test_bom_prolog_and_wrong_http_charset() -> None:
    item = [Item("Atta Mohammad Noor à Kaboul", "https://e.org/a/1")]
    with_bom = b"\xef\xbb\xbf" + rss(item)
    assert parse_feed("S", with_bom, {}, "https://e.org/").articles[0].title.startswith("Atta")
    latin = rss(item).replace(b"UTF-8", b"ISO-8859-1").replace("à".encode(), b"\xe0")
    [parsed] = parse_feed("S", latin, {"content-type": "application/xml"},
                          "https://e.org/").articles
    assert parsed.title == "Atta Mohammad Noor à Kaboul"
    # The server says UTF-8, the bytes are Latin-1: the item survives.
    wrong = {"content-type": "application/rss+xml; charset=utf-8"}
    [survived] = parse_feed("S", latin, wrong, "https://e.org/").articles
    assert survived.title.startswith("Atta Mohammad Noor")


@pytest.mark.parametrize("render", [rss, atom, json_feed])
def test_each_feed_format_parses(render: object) -> None:
    when = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    body = render([Item("Noor speaks", "/a/1?utm_source=x", "<p>Body</p>", "urn:x:1", when),  # type: ignore[operator]
                   Item("No date", "https://e.org/a/2", "", "urn:x:2")])
    articles = parse_feed("S", body, {}, "https://e.org/feed").articles
    assert [a.url for a in articles] == ["https://e.org/a/1", "https://e.org/a/2"]
    assert articles[0].link == "https://e.org/a/1?utm_source=x"
    assert articles[0].guid == "urn:x:1" and articles[0].published_at == when
    assert articles[1].published_at is None
    assert "Body" in articles[0].summary_html + articles[0].content_html


def test_not_a_feed_is_a_parse_error_naming_the_source() -> None:
    with pytest.raises(ParseError, match=r"^Tolo: not a readable feed"):
        parse_feed("Tolo", b"<html><body>Gateway timeout</body></html>",
                   {"content-type": "text/html"}, "https://e.org/feed")
    with pytest.raises(ParseError, match="not a JSON Feed"):
        parse_feed("J", b'{"hello": 1}', {"content-type": "application/json"}, "https://e.org")


def test_slightly_broken_feed_keeps_its_items() -> None:
    body = rss([Item("Noor speaks", "https://e.org/a/1")]).replace(b"</channel></rss>", b"")
    assert [a.url for a in parse_feed("S", body, {}, "https://e.org/feed").articles] == [
        "https://e.org/a/1"]
