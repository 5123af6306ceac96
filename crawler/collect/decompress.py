"""Content-Encoding decoders whose output is bounded, so a compression bomb costs nothing.

httpx decompresses each received chunk without an output limit (an 841-byte brotli body
can become 512 MiB in one call). The fetcher reads the raw stream and feeds it here; each
decoder yields at most ``limit + 1`` bytes in all before the caller stops it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import brotli

ACCEPT_ENCODING = "gzip, deflate, br"
_STEP = 64 * 1024


class DecodeError(Exception):
    """The body is not valid for its declared Content-Encoding."""


class Decoder(Protocol):
    def feed(self, data: bytes, limit: int) -> Iterator[bytes]: ...


class _Identity:
    def feed(self, data: bytes, limit: int) -> Iterator[bytes]:
        yield data


class _Zlib:
    """gzip and zlib-wrapped deflate (auto-detected), or raw deflate as servers send it."""

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._inner = zlib.decompressobj(wbits)
        self._first = True

    def feed(self, data: bytes, limit: int) -> Iterator[bytes]:
        pending = data
        while pending:
            try:
                out = self._inner.decompress(pending, min(_STEP, limit + 1))
            except zlib.error as exc:
                if self._first and self._wbits == 15 + 32:
                    # "deflate" sent without the zlib wrapper: retry as raw deflate.
                    self._wbits, self._inner = -15, zlib.decompressobj(-15)
                    continue
                raise DecodeError(f"bad compressed body: {exc}") from exc
            self._first = False
            pending = self._inner.unconsumed_tail
            if out:
                yield out


class _Brotli:
    def __init__(self) -> None:
        self._inner = brotli.Decompressor()

    def feed(self, data: bytes, limit: int) -> Iterator[bytes]:
        try:
            out = self._inner.process(data, output_buffer_limit=min(_STEP, limit + 1))
            while True:
                if out:
                    yield out
                if self._inner.can_accept_more_data():
                    return
                out = self._inner.process(b"", output_buffer_limit=min(_STEP, limit + 1))
        except brotli.error as exc:
            raise DecodeError(f"bad brotli body: {exc}") from exc


def decoder(content_encoding: str | None) -> Decoder:
    """The decoder for a Content-Encoding header (one coding; identity when absent)."""
    coding = (content_encoding or "identity").strip().lower()
    if coding in ("identity", ""):
        return _Identity()
    if coding in ("gzip", "x-gzip", "deflate"):
        return _Zlib(15 + 32)
    if coding == "br":
        return _Brotli()
    raise DecodeError(f"unsupported Content-Encoding {content_encoding!r}")


def decompress_capped(data: bytes, coding: str, limit: int) -> bytes:
    """The first ``limit`` bytes of ``data`` decoded, inflating no further than that
    (a gzip sitemap, say, which comes compressed as a file, not as a Content-Encoding)."""
    out = bytearray()
    for chunk in decoder(coding).feed(data, limit):
        out += chunk
        if len(out) > limit:
            break
    return bytes(out[:limit])
