"""The desk's sign-in against the real app on uvicorn: CSRF on the login form, wrong
passwords, the limit on failures (per user and per address, counted in the database),
a new session id at each login, sign out, and users remove ending sessions."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from crawler.app.desk import auth
from crawler.app.desk.pages import Viewer, acting_user
from tests.desk import HEADLINE, PASSWORD, client, csrf, make_desk, served, sign_in
from tests.helpers import Project, newswatch


@pytest.fixture
def base(project: Project):  # type: ignore[no-untyped-def]
    desk = make_desk(project)
    with served(desk.config) as url:
        yield url


def test_a_page_without_a_session_sends_to_the_login_page_and_back(base: str) -> None:
    with client(base) as browser:
        away = browser.get("/search?q=massoud")
        assert away.status_code == 303
        assert away.headers["location"] == "/login?next=%2Fsearch%3Fq%3Dmassoud"
        form = browser.get(away.headers["location"])
        assert 'name="next" value="/search?q=massoud"' in form.text
        assert '<label for="username">Username</label>' in form.text
        assert '<label for="password">Password</label>' in form.text
        assert '<button type="submit">Sign in</button>' in form.text
        signed = browser.post("/login", data={"csrf": csrf(form), "username": "ana",
                                               "password": PASSWORD,
                                               "next": "/search?q=massoud"})
        assert signed.status_code == 303
        assert signed.headers["location"] == "/search?q=massoud"
        home = browser.get("/")
        assert home.status_code == 200 and HEADLINE in home.text
        assert "Signed in as <strong>ana</strong>" in home.text


@pytest.mark.parametrize("next_", ["https://evil.example/", "//evil.example/x",
                                   "/\\evil.example", "javascript:alert(1)"])
def test_login_goes_back_only_to_a_path_of_this_site(base: str, next_: str) -> None:
    with client(base) as browser:
        form = browser.get("/login")
        signed = browser.post("/login", data={"csrf": csrf(form), "username": "ana",
                                               "password": PASSWORD, "next": next_})
        assert signed.headers["location"] == "/"


def test_the_login_form_needs_its_csrf_token(base: str) -> None:
    with client(base) as browser:
        data = {"username": "ana", "password": PASSWORD}
        assert browser.post("/login", data=data).status_code == 403  # no token, no cookie
        form = browser.get("/login")
        assert browser.post("/login", data={**data, "csrf": "forged"}).status_code == 403
        with client(base) as other:  # a token without its cookie: another browser's
            assert other.post("/login", data={**data, "csrf": csrf(form)}).status_code == 403
        assert auth.SESSION_COOKIE not in browser.cookies


def test_a_wrong_password_or_an_unknown_user_is_refused_alike(base: str) -> None:
    with client(base) as browser:
        for user, password in (("ana", "wrong password"), ("nobody", PASSWORD)):
            refused = sign_in(browser, user, password)
            assert refused.status_code == 401
            assert "Wrong username or password." in refused.text
            assert auth.SESSION_COOKIE not in browser.cookies
        assert browser.get("/").status_code == 303


def test_five_failures_lock_a_user_from_any_address(base: str) -> None:
    with client(base) as browser:
        for n in range(5):
            assert sign_in(browser, "ana", "wrong", **{
                "X-Forwarded-For": f"203.0.113.{n}"}).status_code == 401
        locked = sign_in(browser, "ana", PASSWORD, **{"X-Forwarded-For": "203.0.113.99"})
        assert locked.status_code == 429
        assert "Too many failed attempts: try again in 15 minutes." in locked.text
        assert auth.SESSION_COOKIE not in browser.cookies
        # another user, from an address with no failures, is not held back
        assert sign_in(browser, "bo", PASSWORD, **{
            "X-Forwarded-For": "203.0.113.99"}).status_code == 303


def test_five_failures_lock_an_address_for_every_user(base: str) -> None:
    with client(base) as browser:
        address = {"X-Forwarded-For": "198.51.100.7"}
        for n in range(5):
            assert sign_in(browser, f"guess{n}", "wrong", **address).status_code == 401
        assert sign_in(browser, "ana", PASSWORD, **address).status_code == 429
        assert sign_in(browser, "ana", PASSWORD, **{
            "X-Forwarded-For": "198.51.100.8"}).status_code == 303


def test_each_login_gets_a_new_session_id_and_ends_the_old(base: str) -> None:
    with client(base) as browser:
        planted = "attacker-chosen-id"
        browser.cookies.set(auth.SESSION_COOKIE, planted, domain="127.0.0.1")
        sign_in(browser)
        first = browser.cookies[auth.SESSION_COOKIE]
        assert first != planted
        assert browser.get("/").status_code == 200
        sign_in(browser)
        second = browser.cookies[auth.SESSION_COOKIE]
        assert second != first
        with client(base) as stale:
            stale.cookies.set(auth.SESSION_COOKIE, first)
            assert stale.get("/").status_code == 303


def test_sign_out_is_a_post_with_the_token_and_ends_the_session(base: str) -> None:
    with client(base) as browser:
        sign_in(browser)
        home = browser.get("/")
        session = browser.cookies[auth.SESSION_COOKIE]
        assert browser.get("/logout").status_code == 405  # no state change by GET
        assert browser.post("/logout", data={"csrf": "forged"}).status_code == 403
        assert browser.post("/logout").status_code == 403
        assert browser.get("/").status_code == 200
        out = browser.post("/logout", data={"csrf": csrf(home)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        with client(base) as again:
            again.cookies.set(auth.SESSION_COOKIE, session)
            assert again.get("/").status_code == 303


def test_users_remove_ends_their_sessions_at_once(project: Project) -> None:
    desk = make_desk(project)
    with served(desk.config) as base, client(base) as ana, client(base) as bo:
        sign_in(ana)
        sign_in(bo, "bo")
        assert ana.get("/").status_code == 200
        removed = newswatch("--config", str(project.config_dir), "users", "remove", "ana")
        assert removed.returncode == 0, removed.stderr
        assert ana.get("/").status_code == 303
        assert bo.get("/").status_code == 200
        assert sign_in(ana).status_code == 401


def test_the_session_cookie_flags(project: Project) -> None:
    desk = make_desk(project)
    with served(desk.config) as base, client(base) as browser:
        cookie = sign_in(browser).headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie
    secure = make_desk(Project(project.root / "tls"), public_url="https://desk.example/")
    with served(secure.config) as base, client(base) as browser:
        form = browser.get("/login")
        assert "Secure" in form.headers["set-cookie"]
        # a client over http keeps a Secure cookie but never sends it back: hand it over
        nonce = form.headers["set-cookie"].split(";")[0].partition("=")[2]
        browser.cookies.set(auth.LOGIN_COOKIE, nonce, domain="127.0.0.1", path="/login")
        signed = browser.post("/login", data={"csrf": csrf(form), "username": "ana",
                                               "password": PASSWORD})
        assert signed.status_code == 303
        session = next(c for c in signed.headers.get_list("set-cookie")
                       if c.startswith(auth.SESSION_COOKIE))
        assert "Secure" in session and "HttpOnly" in session


def test_the_acting_user_is_the_signed_in_user() -> None:
    """What the desk records as ``created_by`` (mutes, rules, edits): the user's name."""
    request = Request({"type": "http", "headers": [], "state": {}})
    request.state.viewer = Viewer("ana", "token")
    assert acting_user(request) == "ana"
