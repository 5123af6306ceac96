"""Refuse XML that declares entities before any parser sees it.

Entity declarations are how billion-laughs and quadratic blow-up bombs expand, and how
XXE reads local files or makes requests. News feeds and sitemaps never need them, so a
document whose DOCTYPE declares any is refused whole, with a message that says why.
"""

from __future__ import annotations

import re

from crawler.core.errors import ParseError

_PROLOG_BYTES = 64 * 1024
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)


def refuse_entities(source: str, body: bytes) -> None:
    """Raise ParseError if the document's prolog declares XML entities."""
    head = body[:_PROLOG_BYTES]
    if b"\x00" in head[:4]:  # UTF-16/32: look at the ASCII bytes only
        head = head.replace(b"\x00", b"")
    doctype = _DOCTYPE.search(head)
    if doctype and _ENTITY.search(head, doctype.start()):
        raise ParseError(source, "document declares XML entities (a possible entity-"
                                 "expansion or XXE attack); refused without parsing")
