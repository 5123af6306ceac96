"""Who may read what on the listener: the desk off (404), security headers on every
answer, /metrics on loopback or with its bearer token, the feeds on loopback or with
their tokens, forged POSTs; the desk served by the daemon and by ``newswatch desk``."""

from __future__ import annotations

import json
import re
import signal

import pytest
from starlette.requests import Request

from crawler.app import atom
from crawler.app.desk import access
from crawler.app.desk.app import CSP
from crawler.config import load_config
from tests.desk import HEADLINE, client, csrf, make_desk, served, sign_in
from tests.helpers import Project, free_port, newswatch
from tests.test_observability import get

ELSEWHERE = {"X-Forwarded-For": "203.0.113.5"}
WATCHLIST = "afghan-opposition"


def test_with_the_desk_off_every_desk_path_answers_404(project: Project) -> None:
    desk = make_desk(project, desk=False)
    with served(desk.config, desk=False) as base, client(base) as browser:
        for path in ("/", "/login", "/search?q=x", "/static/desk.css", "/static/htmx.min.js"):
            assert browser.get(path).status_code == 404, path
        assert browser.post("/login", data={"username": "ana"}).status_code == 404
        assert browser.get("/healthz").status_code == 200


def test_every_answer_carries_the_security_headers(project: Project) -> None:
    desk = make_desk(project)
    with served(desk.config) as base, client(base) as browser:
        answers = [browser.get(p) for p in ("/login", "/", "/healthz", "/metrics", "/nothing",
                                            "/static/desk.css")]
        sign_in(browser)
        answers += [browser.get("/"), browser.get("/search?q=massoud")]
        for found in answers:
            assert found.headers["content-security-policy"] == CSP, found.url
            assert found.headers["x-content-type-options"] == "nosniff"
            assert found.headers["referrer-policy"] == "same-origin"
            assert found.headers["x-frame-options"] == "DENY"
        for found in answers[:-3] + answers[-2:]:
            if not found.url.path.startswith("/static/"):
                assert found.headers["cache-control"] == "no-store", found.url
        for page in answers[-2:]:  # no inline script or style for the CSP to refuse
            assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son\w+=",
                                 page.text), page.text
        assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP


def test_search_and_stories_escape_remote_text(project: Project) -> None:
    desk = make_desk(project)
    with served(desk.config) as base, client(base) as browser:
        sign_in(browser)
        home = browser.get("/")
        assert HEADLINE in home.text and 'dir="auto"' in home.text
        assert "first seen" in home.text and "+0430" in home.text  # Asia/Kabul
        found = browser.get("/search", params={"q": 'massoud <b>"x'})
        assert found.status_code == 200
        assert "<b>" not in found.text and "&lt;b&gt;" in found.text
        hits = browser.get("/search", params={"q": "Panjshir"})
        assert HEADLINE in hits.text and "1 result for" in hits.text
        assert '<label for="q">Search</label>' in hits.text


def test_a_forged_post_is_refused(project: Project) -> None:
    desk = make_desk(project)
    with served(desk.config) as base, client(base) as browser:
        sign_in(browser)
        assert browser.post("/logout", data={"csrf": "x" * 43}).status_code == 403
        with client(base) as stranger:  # a cross-site form: no session cookie, no token
            assert stranger.post("/logout", data={"csrf": ""}).status_code == 403
        assert browser.get("/").status_code == 200  # still signed in
        assert browser.put("/logout").status_code == 405
        huge = browser.post("/login", content=b"username=" + b"a" * 100_000,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert huge.status_code == 413

        def chunks():  # type: ignore[no-untyped-def]
            yield b"username=a"

        assert browser.post("/logout", content=chunks()).status_code == 413
        assert browser.delete("/").status_code == 405


def test_metrics_is_open_on_loopback_and_needs_the_bearer_token_elsewhere(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_METRICS_TOKEN", "s3cret-token")
    desk = make_desk(project, metrics_token="${TEST_METRICS_TOKEN}")
    untokened = make_desk(Project(project.root / "bare"))
    config = load_config(desk.project.config_dir)
    assert config.settings.http and config.settings.http.metrics_token == "s3cret-token"
    with served(config) as base, client(base) as scraper:
        assert scraper.get("/metrics").status_code == 200
        assert scraper.get("/metrics", headers=ELSEWHERE).status_code == 401
        # a proxy on this host forwarding for a loopback address is still a proxy
        assert scraper.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}
                           ).status_code == 401
        assert scraper.get("/metrics", headers={**ELSEWHERE, "Forwarded": "for=1.2.3.4"}
                           ).status_code == 401
        assert scraper.get("/metrics", headers={
            **ELSEWHERE, "Authorization": "Bearer wrong"}).status_code == 401
        ok = scraper.get("/metrics", headers={**ELSEWHERE,
                                              "Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and "newswatch_outbox_pending" in ok.text
        assert scraper.get("/healthz", headers=ELSEWHERE).status_code == 200
    with served(untokened.config) as base, client(base) as scraper:
        refused = scraper.get("/metrics", headers={**ELSEWHERE, "Authorization": "Bearer x"})
        assert refused.status_code == 403 and "http.metrics_token" in refused.text
        assert scraper.get("/metrics").status_code == 200


def test_feeds_need_their_own_token_off_loopback(project: Project) -> None:
    desk = make_desk(project)
    listed = newswatch("--config", str(project.config_dir), "feeds", "--json")
    assert listed.returncode == 0, listed.stderr
    urls = {f["watchlist"]: f["url"] for f in json.loads(listed.stdout)}
    url = urls[WATCHLIST]
    assert url.startswith(f"http://127.0.0.1:9108/feeds/{atom.file_name(WATCHLIST)}.atom?token=")
    token = url.partition("token=")[2]
    with served(desk.config) as base, client(base) as reader:
        path = f"/feeds/{atom.file_name(WATCHLIST)}.atom"
        loopback = reader.get(path)  # as before
        assert loopback.status_code == 200
        assert loopback.headers["content-type"].startswith("application/atom+xml")
        assert "<title>newswatch: afghan-opposition</title>" in loopback.text
        assert reader.get(path, headers=ELSEWHERE).status_code == 403
        assert reader.get(path, params={"token": "0" * 32}, headers=ELSEWHERE
                          ).status_code == 403
        assert reader.get(path, params={"token": token}, headers=ELSEWHERE).status_code == 200
        assert reader.get("/feeds/nothing.atom", params={"token": token}).status_code == 404
    assert access.feed_token(b"k", "a") != access.feed_token(b"k", "b")
    again = newswatch("--config", str(project.config_dir), "feeds", "--json")
    assert again.stdout == listed.stdout  # the secret is kept in the database


def test_feed_urls_use_the_public_url(project: Project) -> None:
    make_desk(project, public_url="https://desk.example/nw/")
    listed = newswatch("--config", str(project.config_dir), "feeds")
    assert listed.returncode == 0, listed.stderr
    assert "https://desk.example/nw/feeds/afghan-opposition.atom?token=" in \
        listed.stdout.replace("\n", "").replace(" ", "").replace("│", "")


def test_the_daemon_serves_the_desk_and_stops_on_sigterm(project: Project) -> None:
    port = free_port()
    desk = make_desk(project)
    desk.project.settings["http"] = {"listen": f"127.0.0.1:{port}", "desk": True}
    desk.project.settings["daemon"] = {"workers": 0}
    desk.project.write()
    daemon = project.popen("run")
    try:
        login = get(f"http://127.0.0.1:{port}/login")
        assert login.status_code == 200 and "Sign in" in login.text
        with client(f"http://127.0.0.1:{port}") as browser:
            assert sign_in(browser).status_code == 303
            assert HEADLINE in browser.get("/").text
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, stderr
    assert "the desk is on at http://127.0.0.1" in stderr


def test_newswatch_desk_serves_the_desk_alone(project: Project) -> None:
    port = free_port()
    make_desk(project, desk=False)  # `newswatch desk` serves it whatever http.desk says
    process = project.popen("desk", "--listen", f"127.0.0.1:{port}")
    try:
        login = get(f"http://127.0.0.1:{port}/login")
        assert login.status_code == 200 and csrf(login)
        assert get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok"
        assert get(f"http://127.0.0.1:{port}/metrics").status_code == 404
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "it serves the desk whatever http.desk says" in stderr


def test_users_commands(project: Project) -> None:
    make_desk(project)
    config = str(project.config_dir)
    added = newswatch("--config", config, "users", "add", "cy", "--password-stdin",
                      input="a long password\n")
    assert added.returncode == 0, added.stderr
    assert newswatch("--config", config, "users", "add", "cy", "--password-stdin",
                     input="a long password\n").returncode == 1
    assert newswatch("--config", config, "users", "add", "dee", "--password-stdin",
                     input="short\n").returncode == 1
    listed = json.loads(newswatch("--config", config, "users", "list", "--json").stdout)
    assert [u["name"] for u in listed] == ["ana", "bo", "cy"]
    assert "cy" in newswatch("--config", config, "users", "list").stdout
    with served(load_config(project.config_dir)) as base, client(base) as browser:
        assert sign_in(browser, "cy", "a long password").status_code == 303
    assert newswatch("--config", config, "users", "remove", "cy").returncode == 0
    assert newswatch("--config", config, "users", "remove", "cy").returncode == 1


@pytest.mark.parametrize(("client_host", "headers", "loopback"), [
    ("127.0.0.1", [], True), ("127.8.9.10", [], True), ("::1", [], True),
    ("::ffff:127.0.0.1", [], True), ("10.0.0.1", [], False), ("2001:db8::1", [], False),
    ("127.0.0.1", [(b"x-forwarded-for", b"127.0.0.1")], False),
    ("::1", [(b"forwarded", b"for=127.0.0.1")], False), ("testclient", [], False)])
def test_the_loopback_rule(client_host: str, headers: list[tuple[bytes, bytes]],
                           loopback: bool) -> None:
    """A proxy on the same host connects from loopback: its header makes it elsewhere."""
    request = Request({"type": "http", "client": (client_host, 5000), "headers": headers})
    assert access.is_loopback(request) is loopback
