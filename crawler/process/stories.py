"""Which stored article a new one is a copy of: MinHash over word shingles. Pure, no I/O.

An article's *fingerprint* is taken from its title and text (the summary when it has no
text) in the comparable form the full-text index holds (``crawler.process.search.document``:
the matcher's normalisation, letter variants folded), cut into words, then into
overlapping runs of ``SHINGLE`` words. Its MinHash *signature* holds,
for each of ``HASHES`` independent hash functions, the smallest hash of any shingle; the
share of positions where two signatures agree estimates the Jaccard similarity of the
two shingle sets (|A ∩ B| / |A ∪ B|). That estimate is the *similarity score* stored
with each article.

To find candidates without comparing with every recent article, the signature is cut
into ``BANDS`` bands of ``ROWS`` values; each band hashes to a *band key* stored in the
database. Two articles sharing any band key are candidates (with a Jaccard similarity of
0.5 they share one with probability 1 − (1 − 0.5²)³² > 0.9999; at 0.1 with about 0.27),
and only candidates are scored.

An article joins the story of its most similar candidate when the score reaches
``threshold`` (``stories.threshold``, default 0.4). On the fixture set of
``tests/test_stories.py`` a copy under another URL scores 1.0, retitled copies with an
outlet's boilerplate or one rewritten paragraph 0.48–0.9, and different articles on the
same events at most 0.11. Articles with fewer than
``MIN_SHINGLES`` shingles (a headline and a line) say too little to tell a copy from a
look-alike: they join a story only as exact copies (score 1.0).
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

SHINGLE = 3
HASHES = 64
BANDS = 32
ROWS = HASHES // BANDS
MIN_SHINGLES = 12
DEFAULT_THRESHOLD = 0.4

_WORD = re.compile(r"\w+")
_VALUES = struct.Struct(f"<{HASHES}I")
_BAND = struct.Struct(f"<B{ROWS}I")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What the store needs to place an article in a story."""

    signature: bytes  # HASHES little-endian uint32, empty when the article has no words
    bands: tuple[int, ...]  # one signed 64-bit key per band
    shingles: int

    @property
    def short(self) -> bool:
        return self.shingles < MIN_SHINGLES


def shingles(text: str) -> set[str]:
    """Overlapping runs of ``SHINGLE`` words of ``text``, already in comparable form (the
    words themselves when there are fewer)."""
    words = _WORD.findall(text)
    if len(words) < SHINGLE:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def signature(parts: set[str]) -> bytes:
    """The MinHash signature: per hash function (a slice of one SHAKE-128 output per
    shingle), the smallest value over the shingles."""
    if not parts:
        return b""
    rows = [_VALUES.unpack(hashlib.shake_128(p.encode("utf-8")).digest(_VALUES.size))
            for p in parts]
    return _VALUES.pack(*map(min, zip(*rows, strict=True)))


def band_keys(sig: bytes) -> tuple[int, ...]:
    """One key per band of ``ROWS`` signature values, tagged with the band's number."""
    if not sig:
        return ()
    values = _VALUES.unpack(sig)
    return tuple(
        int.from_bytes(hashlib.blake2b(_BAND.pack(band, *values[band * ROWS:(band + 1) * ROWS]),
                                       digest_size=8).digest(), "little", signed=True)
        for band in range(BANDS))


def fingerprint(document: tuple[str, str, str]) -> Fingerprint:
    """The fingerprint of an article's comparable (title, summary, text)."""
    title, summary, text = document
    parts = shingles(f"{title}\n{text or summary}")
    sig = signature(parts)
    return Fingerprint(sig, band_keys(sig), len(parts))


def similarity(one: bytes, other: bytes) -> float:
    """Estimated Jaccard similarity: the share of signature positions that agree."""
    if not one or not other or len(one) != len(other):
        return 0.0
    a, b = _VALUES.unpack(one), _VALUES.unpack(other)
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / HASHES


def joins(score: float, new: Fingerprint, other_shingles: int, threshold: float) -> bool:
    """Whether a candidate with this score is the same story (short texts: exact only)."""
    if new.short or other_shingles < MIN_SHINGLES:
        return score >= 1.0
    return score >= threshold


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored article that shares a band key with the new one, and its story."""

    article_id: int
    story_id: int
    signature: bytes
    shingles: int


@dataclass(frozen=True, slots=True)
class Placement:
    """The story a new article joins, through which article, and how similar they are."""

    story_id: int
    similar_to: int
    score: float


def place(new: Fingerprint, candidates: Iterable[Candidate],
          threshold: float) -> Placement | None:
    """The story of the most similar candidate that counts as the same story (the first
    such when scores tie), or None: the article starts a story of its own."""
    best: Placement | None = None
    for candidate in candidates:
        score = similarity(new.signature, candidate.signature)
        if joins(score, new, candidate.shingles, threshold) and (
                best is None or score > best.score):
            best = Placement(candidate.story_id, candidate.article_id, score)
    return best
