"""Refuse XML that declares entities, wherever the declaration stands.

Entity declarations are how billion-laughs and quadratic blow-up bombs expand, and how
XXE reads local files or makes requests. News feeds and sitemaps never need them, so a
document that declares any is refused whole, with a message that says why.

The verdict is the parser's own: defusedxml's expat reader reads the whole document
(streaming, keeping nothing) and stops at the first entity declaration, before any use of
it, however far into the file it stands. A document expat cannot read to the end is
still parsed leniently by feedparser, which keeps "simple" entities; so for such a
document any ``<!ENTITY`` at all refuses it.
"""

from __future__ import annotations

import re
import xml.sax
from xml.sax.handler import ContentHandler

from defusedxml import DefusedXmlException
from defusedxml.expatreader import create_parser

from crawler.core.errors import ParseError

_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
REFUSED = ("document declares XML entities (a possible entity-expansion or XXE attack); "
           "refused without parsing")


def refuse_entities(source: str, body: bytes) -> None:
    """Raise ParseError if the document declares XML entities anywhere."""
    parser = create_parser(forbid_dtd=False, forbid_entities=True, forbid_external=True)
    parser.setContentHandler(ContentHandler())
    try:
        parser.feed(body)
        parser.close()
    except DefusedXmlException as exc:
        raise ParseError(source, REFUSED) from exc
    except (xml.sax.SAXException, ValueError, LookupError):
        # Not well-formed (or in an encoding expat lacks): judge the raw bytes, NULs
        # dropped so that UTF-16 and UTF-32 declarations are seen too.
        if _ENTITY.search(body.replace(b"\x00", b"")):
            raise ParseError(source, REFUSED) from None
