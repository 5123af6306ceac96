"""Which script a text is written in, and so which way it runs: how the desk tells Dari,
Pashto and Arabic stories from Latin-script ones, filters by it, and sets ``dir="rtl"``
on each text block. Pure.

Letters are counted, not the first strong character (``alerts.readable.direction``,
which is what ``dir="auto"`` does): an English headline quoting one Dari name is still
English, and a Dari one opening with "UN" is still Dari.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

Script = Literal["arabic", "latin", "other"]
SCRIPTS: tuple[Script, ...] = ("arabic", "latin", "other")
#: Languages written right to left in the Arabic script, for a text with no letters.
ARABIC_LANGUAGES = frozenset({"ar", "fa", "prs", "ps", "pbt", "pbu", "ur", "ckb", "sd",
                              "ug"})
#: How much of each text is read: a headline or a lede decides.
SAMPLE = 1000


def script(*texts: str, language: str = "") -> Script:
    """The script of most letters in the first of ``texts`` that has any; the language
    tag (``fa-AF``, ``ps``) decides when none has letters."""
    for text in texts:
        arabic = latin = other = 0
        for ch in text[:SAMPLE]:
            if ch.isascii():
                latin += ch.isalpha()
            elif ch.isalpha():
                if unicodedata.bidirectional(ch) == "AL":
                    arabic += 1
                elif unicodedata.name(ch, "").startswith("LATIN"):
                    latin += 1
                else:
                    other += 1
        if arabic or latin or other:
            best = max(arabic, latin, other)
            return "arabic" if arabic == best else "latin" if latin == best else "other"
    if language.split("-")[0].lower() in ARABIC_LANGUAGES:
        return "arabic"
    return "other"


def direction(written: Script) -> Literal["rtl", "ltr"]:
    """The direction of a block of text in ``written``."""
    return "rtl" if written == "arabic" else "ltr"
