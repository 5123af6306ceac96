"""Which stored article a new one is a copy of: MinHash over word shingles. Pure, no I/O.

An article's *fingerprint* is taken from its title and text (the summary when it has no
text) in the comparable form the full-text index holds (``crawler.process.search.document``:
the matcher's normalisation, letter variants folded), cut into words, then into
overlapping runs of ``SHINGLE`` words. Its MinHash *signature* holds,
for each of ``HASHES`` hash functions, the smallest hash of any shingle; the
share of positions where two signatures agree estimates the Jaccard similarity of the
two shingle sets (|A ∩ B| / |A ∪ B|). That estimate is the *similarity score* stored
with each article.

It is computed in arrays (numpy), not shingle by shingle: each word is hashed once with
xxh3-64, a shingle's 64-bit hash is combined from its words' hashes, and the hash
functions are ``(a·x + b) mod 2³¹ − 1`` with coefficients fixed by BLAKE2b of their
names, so a signature is the same in every process, run and version (never Python's
``hash()``). A change to any of this changes stored signatures: it needs a migration
that recomputes them (``crawler/store/sqlite/schema.py``, step 10).

To find candidates without comparing with every recent article, the signature is cut
into ``BANDS`` bands of ``ROWS`` values; each band hashes to a *band key* stored in the
database. Two articles sharing any band key are candidates (with a Jaccard similarity of
0.5 they share one with probability 1 − (1 − 0.5²)³² > 0.9999; at 0.1 with about 0.27),
and only candidates are scored.

An article joins the story of its most similar candidate when the score reaches
``threshold`` (``stories.threshold``, default 0.4). On the fixture set of
``tests/test_stories.py`` a copy under another URL scores 1.0, retitled copies with an
outlet's boilerplate or one rewritten paragraph 0.48–0.92, and different articles on the
same events at most 0.125. Articles with fewer than
``MIN_SHINGLES`` shingles (a headline and a line) say too little to tell a copy from a
look-alike: they join a story only as exact copies (score 1.0).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import xxhash

SHINGLE = 3
HASHES = 64
BANDS = 32
ROWS = HASHES // BANDS
MIN_SHINGLES = 12
#: The most recent articles under one band key that a new article is compared with: a
#: story of thousands of near-identical copies would otherwise make every new copy
#: read and score them all. Older ones are of the same story, or of none nearer.
CANDIDATES_PER_BAND = 50
DEFAULT_THRESHOLD = 0.4
#: The Mersenne prime 2³¹ − 1 of the hash functions ``(a·x + b) mod PRIME``: with x, a
#: and b below it, a·x + b stays under 2⁶³, so uint64 arithmetic never overflows.
PRIME = (1 << 31) - 1

_WORD = re.compile(r"\w+")
_U64 = np.uint64
_Hashes = npt.NDArray[np.uint64]


def _coefficients(name: str) -> _Hashes:
    """``HASHES`` fixed values in [1, PRIME) derived from ``name`` by BLAKE2b: the same in
    every process, run and numpy version (a seeded numpy generator promises less)."""
    return np.array([1 + int.from_bytes(hashlib.blake2b(f"newswatch-minhash-{name}-{i}"
                                                        .encode(), digest_size=8).digest(),
                                        "little") % (PRIME - 1)
                     for i in range(HASHES)], dtype=_U64)


_A, _B_COLUMN = _coefficients("a"), _coefficients("b")[:, np.newaxis]
_CHUNK = 4096  # shingles hashed at once: a 4096 × HASHES uint64 array, 2 MiB
_MULTIPLIER = _U64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection mod 2⁶⁴


def _mix(z: _Hashes) -> _Hashes:
    """SplitMix64's finaliser over an array: a bijection of uint64 that spreads every input
    bit over the output. Array arithmetic wraps modulo 2⁶⁴, as this wants."""
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def _combine(hashes: _Hashes, following: _Hashes) -> _Hashes:
    """The hashes of sequences one element longer (order matters)."""
    return _mix(hashes * _MULTIPLIER + following)


_BAND_SEEDS = _mix(np.arange(1, BANDS + 1, dtype=_U64))  # one per band: keys differ by band


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What the store needs to place an article in a story."""

    signature: bytes  # HASHES little-endian uint32, empty when the article has no words
    bands: tuple[int, ...]  # one signed 64-bit key per band
    shingles: int

    @property
    def short(self) -> bool:
        return self.shingles < MIN_SHINGLES


def shingles(text: str) -> _Hashes:
    """The distinct 64-bit hashes of the overlapping runs of ``SHINGLE`` words of ``text``,
    already in comparable form (of all its words as one run when there are fewer), sorted.

    Each word is hashed once (xxh3-64 of its UTF-8); a run's hash is combined from its
    words' hashes in arrays, which is twice as fast as hashing each run's string."""
    words = _WORD.findall(text)
    hashed = np.fromiter(map(xxhash.xxh3_64_intdigest, map(str.encode, words)),
                         dtype=_U64, count=len(words))
    if not words:
        return hashed
    runs = len(words) - SHINGLE + 1
    if runs < 1:  # a single run of the few words there are
        runs, width = 1, len(words)
    else:
        width = SHINGLE
    combined = hashed[:runs]
    for offset in range(1, width):
        combined = _combine(combined, hashed[offset:offset + runs])
    return np.unique(combined)


def signature(parts: _Hashes) -> bytes:
    """The MinHash signature: for each of ``HASHES`` hash functions
    ``(a·x + b) mod PRIME`` (x: a shingle's hash mod PRIME), the smallest over the
    shingles, as little-endian uint32."""
    if not parts.size:
        return b""
    x = parts % _U64(PRIME)
    smallest = np.full(HASHES, PRIME, dtype=_U64)
    for start in range(0, x.size, _CHUNK):  # memory bounded for a text of any length
        # one row per hash function, so that each minimum runs over contiguous memory
        values = np.multiply.outer(_A, x[start:start + _CHUNK])
        values += _B_COLUMN
        np.minimum(smallest, _mod_prime(values).min(axis=1), out=smallest)
    return bytes(smallest.astype("<u4").tobytes())


def _mod_prime(v: _Hashes) -> _Hashes:
    """``v mod PRIME`` for ``v`` below 2⁶³, in place, without a division: since
    2³¹ ≡ 1 (mod 2³¹ − 1), folding the high bits onto the low ones keeps the residue;
    twice brings any such ``v`` under PRIME + 2, and the smaller of ``v`` and
    ``v − PRIME`` (which wraps round to a huge value when ``v`` < PRIME) finishes. The
    very same values as numpy's ``%``, which divides."""
    high = v >> _U64(31)
    v &= _U64(PRIME)
    v += high
    np.right_shift(v, _U64(31), out=high)
    v &= _U64(PRIME)
    v += high
    np.subtract(v, _U64(PRIME), out=high)
    np.minimum(v, high, out=v)
    return v


def band_keys(sig: bytes) -> tuple[int, ...]:
    """One key per band of ``ROWS`` signature values, tagged with the band's number: a
    64-bit hash of (band, values), signed as SQLite stores integers."""
    if not sig:
        return ()
    rows = np.frombuffer(sig, dtype="<u4").astype(_U64).reshape(BANDS, ROWS)
    keys = _BAND_SEEDS
    for column in range(ROWS):
        keys = _combine(keys, rows[:, column])
    return tuple(keys.view(np.int64).tolist())


def fingerprint(document: tuple[str, str, str]) -> Fingerprint:
    """The fingerprint of an article's comparable (title, summary, text)."""
    title, summary, text = document
    parts = shingles(f"{title}\n{text or summary}")
    sig = signature(parts)
    return Fingerprint(sig, band_keys(sig), int(parts.size))


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
    such when scores tie), or None: the article starts a story of its own.

    Scored all at once, in arrays: a story with hundreds of copies (an outlet's
    boilerplate item, a wire story everyone runs) brings as many candidates."""
    listed = [c for c in candidates if c.signature and len(c.signature) == len(new.signature)]
    if not new.signature or not listed:
        return None
    mine = np.frombuffer(new.signature, dtype="<u4")
    theirs = np.frombuffer(b"".join(c.signature for c in listed), dtype="<u4")
    scores = np.count_nonzero(theirs.reshape(len(listed), -1) == mine, axis=1) / HASHES
    short = np.array([new.short or c.shingles < MIN_SHINGLES for c in listed])
    joining = np.where(short, scores >= 1.0, scores >= threshold)
    if not joining.any():
        return None
    best = int(np.argmax(np.where(joining, scores, -1.0)))  # the first of the highest
    return Placement(listed[best].story_id, listed[best].article_id, float(scores[best]))
