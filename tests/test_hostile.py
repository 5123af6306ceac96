"""A hostile local web next to two healthy feeds, in one daemon run.

Every hostile source must end in its documented state (docs/sources-health.md) while the
healthy feeds' alerts all arrive, and memory must stay bounded (compression bombs).
"""

from __future__ import annotations

import functools
import gzip
import json
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import brotli
import pytest

from tests.conftest import Project
from tests.feeds import Item, rss
from tests.helpers import wait_until
from tests.servers import Page, Receiver, Site

BOMB_SIZE = 256 * 2**20  # decompressed; the fetch cap in this test is 1 MiB


@functools.cache
def gzip_bomb() -> bytes:
    return gzip.compress(b"\0" * BOMB_SIZE, compresslevel=6)


@functools.cache
def brotli_bomb() -> bytes:
    return bytes(brotli.compress(b"\0" * BOMB_SIZE, quality=5))


def trickle(write: Callable[[bytes], None]) -> None:
    write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
    for _ in range(120):  # one byte a second, for at most two minutes
        write(b" ")
        time.sleep(1)


def endless(write: Callable[[bytes], None]) -> None:
    write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>')
    chunk = b"x" * 65536
    for _ in range(1024):  # 64 MiB at most
        write(chunk)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>Atta Mohammad Noor &lol9;</title><link>http://x.test/laugh</link></item>
</channel></rss>"""


def xxe(site: Site) -> bytes:
    return f"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY file SYSTEM "file:///etc/passwd">
 <!ENTITY remote SYSTEM "{site.url('/xxe-callback')}">
]>
<rss version="2.0"><channel><title>x</title>
<item><title>Atta Mohammad Noor &file; &remote;</title><link>{site.url('/a/xxe')}</link>
</item></channel></rss>""".encode()


def hostile_site(site: Site, busy_host: Site, down_host: Site) -> dict[str, str]:
    """Serve each hostile page; return source name → expected state (a fragment).

    The Retry-After sources live on hosts of their own (127.0.0.2 and .3), since their
    answer holds back every source of that host (one of them would keep the other from
    being asked at all, whichever came first).
    """
    now = datetime.now(UTC)
    good = rss([Item("Atta Mohammad Noor, moved", site.url("/a/moved"), "", "m", now)])
    later = format_datetime(now + timedelta(hours=2), usegmt=True)
    pages: dict[str, tuple[Page, str]] = {
        "trickle": (Page(b"", stream=trickle), "no complete answer"),
        "endless": (Page(b"", stream=endless), "larger than the 1048576 byte cap"),
        "gzip-bomb": (Page(gzip_bomb(), headers={"content-encoding": "gzip"}),
                      "after decompression"),
        "brotli-bomb": (Page(brotli_bomb(), headers={"content-encoding": "br"}),
                        "after decompression"),
        "loop": (Page(b"", status=302, headers={"location": "/loop2"}), "redirect loop"),
        "moved": (Page(b"", status=301, headers={"location": "/moved2"}), "ok"),
        "temporary": (Page(b"", status=302, headers={"location": "/temp-target"}), "ok"),
        "gone": (Page(b"gone", status=410, content_type="text/plain"), "retired"),
        "charset": (Page(rss([Item("Atta Mohammad Noor à Kaboul", site.url("/a/charset"), "",
                                   "c", now)]).replace(b"UTF-8", b"ISO-8859-1"),
                         content_type="application/rss+xml; charset=windows-1252"), "ok"),
        "empty": (Page(b""), "not a readable feed"),
        "html": (Page(b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                      content_type="text/html"), "not a readable feed"),
        "laughs": (Page(BILLION_LAUGHS), "declares XML entities"),
        "xxe": (Page(xxe(site)), "declares XML entities"),
    }
    site.pages["/loop2"] = Page(b"", status=302, headers={"location": "/loop"})
    site.pages["/moved2"] = Page(b"", status=308, headers={"location": "/moved-final"})
    site.pages["/moved-final"] = Page(good)
    site.pages["/temp-target"] = Page(rss([]))
    for name, (page, _) in pages.items():
        site.pages[f"/{name}"] = page
    busy_host.pages["/busy"] = Page(b"slow down", status=429, headers={"retry-after": "7200"},
                                    content_type="text/plain")
    down_host.pages["/down"] = Page(b"down", status=503, headers={"retry-after": later},
                                    content_type="text/plain")
    return {name: expected for name, (_, expected) in pages.items()} | {
        "busy": "Retry-After 7200s", "down": "HTTP 503"}


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


@pytest.mark.slow
def test_hostile_sources_fail_in_place_while_healthy_ones_alert(
        project: Project, site: Site, receiver: Receiver, request: pytest.FixtureRequest,
        ) -> None:
    busy_host, down_host = Site("127.0.0.2"), Site("127.0.0.3")
    request.addfinalizer(busy_host.close)
    request.addfinalizer(down_host.close)
    expected = hostile_site(site, busy_host, down_host)
    now = datetime.now(UTC)
    site.pages["/healthy-1"] = Page(rss([Item("Ahmad Massoud speaks", site.url("/a/h1"), "",
                                              "h1", now)]))
    site.pages["/healthy-2"] = Page(rss([Item("intra-Afghan dialogue", site.url("/a/h2"), "",
                                              "h2", now)]))
    project.hook(receiver.url("/hook"))
    project.settings["defaults"] = {"timeout": "3s", "max_bytes": "1MiB", "interval": "1s"}
    project.settings["daemon"] = {"tick": "0.2s", "concurrency": 32}  # all in the first tick
    hosts = {"busy": busy_host, "down": down_host}
    project.sources = [{"name": n, "feed": hosts.get(n, site).url(f"/{n}")}
                       for n in expected]
    project.sources += [{"name": "healthy-1", "feed": site.url("/healthy-1")},
                        {"name": "healthy-2", "feed": site.url("/healthy-2")}]

    daemon = project.popen("run")
    store = project.store()

    def rows() -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in store.sources()}

    try:
        delivered = receiver.wait_for(4, timeout=60)
        # Every hostile source polled at least once, "moved" twice (to confirm it), and
        # a healthy source again while 127.0.0.2 is held back by its Retry-After.
        # (the servers log a request when it arrives: the move is waited for in the
        # database, where the second poll's outcome confirms it)
        polled = wait_until(lambda: all(r["last_checked_at"] for r in rows().values())
                            and rows()["moved"]["url"] == site.url("/moved-final")
                            and len(site.requests_to("/healthy-1")) >= 2, timeout=60)
        assert polled, "\n".join(f"{n}: {r['last_checked_at']} {r['url']} {r['last_error']}"
                                  for n, r in rows().items())
        peak = peak_rss_kib(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, stderr[-3000:]

    urls = sorted(json.loads(h.body)["data"]["article"]["url"] for h in delivered)
    assert urls == sorted(site.url(p) for p in ("/a/h1", "/a/h2", "/a/moved", "/a/charset"))

    state = rows()
    for name, fragment in expected.items():
        row = state[name]
        if fragment == "ok":
            assert row["error_count"] == 0, (name, row["last_error"])
        elif fragment == "retired":
            assert row["retired_at"] and "HTTP 410" in row["last_error"], name
        else:
            assert fragment in (row["last_error"] or ""), (name, row["last_error"])
    assert state["moved"]["url"] == site.url("/moved-final"), "confirmed 301 moves the URL"
    assert state["temporary"]["url"] == site.url("/temporary"), "302 does not"
    assert state["busy"]["next_check_at"] >= (now + timedelta(seconds=7000)).strftime(
        "%Y-%m-%dT%H:%M:%S"), "Retry-After is honoured"
    assert state["down"]["next_check_at"] >= (now + timedelta(hours=1, minutes=50)).strftime(
        "%Y-%m-%dT%H:%M:%S"), "an HTTP-date Retry-After is honoured"
    assert len(site.requests_to("/gone")) == 1, "a retired source is not polled again"
    assert (len(busy_host.hits), len(down_host.hits)) == (1, 1), \
        "after Retry-After, nothing more is asked of that host"
    assert site.requests_to("/xxe-callback") == [], "no external entity was fetched"
    assert "root:" not in stderr
    # Bounded memory: a 256 MiB bomb must not be inflated. (Generous: a hang catcher.)
    print(f"\npeak resident memory of the daemon: {peak / 1024:.1f} MiB")
    assert peak < 300 * 1024
    # State changes are logged once, not once per poll.
    assert stderr.count("[source html] source failing") == 1
    assert stderr.count("[source gone] retired") == 1
