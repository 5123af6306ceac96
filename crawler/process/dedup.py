"""Which collected items are new: canonical URLs and per-source GUIDs. Pure, no I/O.

Canonical URLs are computed here, not by w3lib or courlan: both give other keys for URLs
the tests hold (w3lib sorts the query; courlan keeps fragments or drops queries), and a
changed key would ingest and alert stored articles again."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crawler.core.article import Article

# Query parameters that only track the reader, never change the page.
_TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "hmsr", "__hs")
_TRACKING = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
    "mc_cid", "mc_eid", "_ga", "_gl", "ocid", "cmpid", "ref_src", "ref_url", "s_cid",
    "smid", "at_medium", "at_campaign", "spm", "share", "ito",
})
_DEFAULT_PORTS = {"http": 80, "https": 443}


# Whitespace and control characters at either end, all that urlsplit or str.strip would
# drop, so that the canonical form of a canonical URL is itself.
_EDGES = re.compile(r"^[\s\x00-\x20]+|[\s\x00-\x20]+$")


def canonical_url(url: str) -> str:
    """The identity of a URL: lower-case scheme and host, no default port, no fragment,
    no tracking parameters, and an explicit root path."""
    url = _EDGES.sub("", url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # "http://[::1" or a port over 65535: no identity but its text
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in _TRACKING and not key.lower().startswith(_TRACKING_PREFIXES)
    ]
    # (stripped again: dropping a fragment can leave a control character at the end)
    return _EDGES.sub("", urlunsplit((scheme, netloc, parts.path or "/",
                                      urlencode(query, doseq=True), "")))


_VARIANT_HOST = re.compile(r"^(?:amp|m|mobile)\.")
_VARIANT_PATH = re.compile(r"(?:/amp/?|\.amp(?=\.html?$|$)|/amp\.html?)$")
_VARIANT_QUERY = frozenset({"amp", "outputtype", "output", "mobile", "m"})


def without_variant(url: str) -> str:
    """The canonical URL of the page an AMP or mobile variant stands for (``amp.`` / ``m.``
    hosts, ``/amp`` paths and ``?amp=1``, ``?outputType=amp``, ``?m=1`` queries)."""
    return _without_variant(canonical_url(url))


def _without_variant(canonical: str) -> str:
    """``without_variant`` of a URL already canonical (canonicalising is idempotent)."""
    parts = urlsplit(canonical)
    netloc = _VARIANT_HOST.sub("", parts.netloc)
    path = _VARIANT_PATH.sub("", parts.path) or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not (k.lower() in _VARIANT_QUERY and v.lower() in {"", "1", "amp", "true"})]
    return urlunsplit((parts.scheme, netloc, path, urlencode(query, doseq=True), ""))


def same_site(a: str, b: str) -> bool:
    """Whether two URLs are on one site, ignoring ``www.``, ``amp.`` and ``m.``."""
    def site(url: str) -> str:
        host = (urlsplit(url).hostname or "").lower()
        return _VARIANT_HOST.sub("", host.removeprefix("www."))
    return site(a) == site(b) != ""


def keys(article: Article) -> list[str]:
    """The dedup keys an article claims: its canonical URL, the URLs its page gave for
    itself (final URL, rel=canonical, og:url), each also without AMP or mobile markers, and
    its source's GUID for it."""
    found = [f"url:{article.url}"]
    _add_url_keys(found, (article.url, *article.alternates))
    if article.guid:
        found.append(f"guid:{article.source}\x1f{article.guid}")
    return found


def _add_url_keys(found: list[str], urls: Iterable[str]) -> None:
    for url in urls:
        canonical = canonical_url(url)  # once per URL: it is most of the keys' cost
        for key in (f"url:{canonical}", f"url:{_without_variant(canonical)}"):
            if key not in found:
                found.append(key)


@dataclass(frozen=True, slots=True)
class Keyed:
    """An article on its way through the chain with its dedup keys, computed once when
    it is collected and extended, not recomputed, when its page names more URLs."""

    article: Article
    keys: tuple[str, ...]

    @classmethod
    def of(cls, article: Article) -> Keyed:
        return cls(article, tuple(keys(article)))

    def extracted(self, article: Article) -> Keyed:
        """This article after extraction: its keys plus those of the URLs its page gave."""
        before = {self.article.url, *self.article.alternates}
        found = list(self.keys)
        _add_url_keys(found, (u for u in (article.url, *article.alternates)
                              if u not in before))
        return Keyed(article, tuple(found))


def select_new(items: Sequence[Keyed], known: Iterable[str]) -> list[Keyed]:
    """The articles none of whose keys are known, each only once (first one wins)."""
    seen = set(known)
    fresh = []
    for item in items:
        if seen.isdisjoint(item.keys):
            fresh.append(item)
        seen.update(item.keys)
    return fresh
