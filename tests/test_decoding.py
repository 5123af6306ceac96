"""Bounded decompression and feed encodings."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from crawler.collect.decompress import DecodeError, decoder
from crawler.collect.feeds import parse_feed
from tests.feeds import Item, rss

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
