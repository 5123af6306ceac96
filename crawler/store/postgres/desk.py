"""The desk's users, sessions, failed logins and secrets, as
``crawler.store.sqlite.desk`` keeps them (``"user"`` is quoted: a reserved word here)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from crawler.core.clock import iso, parse_iso
from crawler.store.postgres.base import Connected, rows, wrap_exceptions
from crawler.store.records import LoginFailures, Session
from crawler.store.sqlite.desk import TOUCH_EVERY


class Desk(Connected):
    @wrap_exceptions
    def add_user(self, name: str, password_hash: str, now: datetime) -> bool:
        """Add a user; False (and nothing changed) when the name is taken."""
        with self._tx() as conn:
            return bool(conn.execute(
                "INSERT INTO users (name, password_hash, created_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO NOTHING", [name, password_hash, iso(now)]).rowcount)

    @wrap_exceptions
    def remove_user(self, name: str) -> bool:
        """Remove a user and end all their sessions at once; False when unknown."""
        with self._tx() as conn:
            conn.execute('DELETE FROM sessions WHERE "user" = %s', [name])
            return bool(conn.execute("DELETE FROM users WHERE name = %s", [name]).rowcount)

    @wrap_exceptions
    def users(self) -> list[dict[str, Any]]:
        """Every user by name, with when added and how many sessions they hold."""
        return self._rows(
            "SELECT u.name, u.created_at, (SELECT count(*) FROM sessions s "
            'WHERE s."user" = u.name) AS sessions FROM users u ORDER BY u.name')

    @wrap_exceptions
    def password_hash(self, name: str) -> str | None:
        found = self._rows("SELECT password_hash FROM users WHERE name = %s", [name])
        return str(found[0]["password_hash"]) if found else None

    @wrap_exceptions
    def open_session(self, id_hash: str, user: str, csrf: str, now: datetime,
                     expires_at: datetime) -> bool:
        """Store a new session (and forget the expired ones); False when the user is
        gone (removed since the password was checked)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_at <= %s", [iso(now)])
            return bool(conn.execute(
                'INSERT INTO sessions (id_hash, "user", csrf, created_at, expires_at, '
                "last_seen_at) SELECT %s, name, %s, %s, %s, %s FROM users WHERE name = %s",
                [id_hash, csrf, iso(now), iso(expires_at), iso(now), user]).rowcount)

    @wrap_exceptions
    def session(self, id_hash: str, now: datetime, idle: timedelta) -> Session | None:
        """The session if it is neither past its end nor idle longer than ``idle``;
        seeing it counts as activity (written at most once per ``TOUCH_EVERY``)."""
        with self._tx() as conn:
            found = rows(conn, 'SELECT "user", csrf, created_at, expires_at, last_seen_at '
                         "FROM sessions WHERE id_hash = %s AND expires_at > %s "
                         "AND last_seen_at > %s", [id_hash, iso(now), iso(now - idle)])
            if not found:
                return None
            row = found[0]
            if parse_iso(row["last_seen_at"]) <= now - TOUCH_EVERY:
                conn.execute("UPDATE sessions SET last_seen_at = %s WHERE id_hash = %s",
                             [iso(now), id_hash])
        return Session(row["user"], row["csrf"], parse_iso(row["created_at"]),
                       parse_iso(row["expires_at"]))

    @wrap_exceptions
    def end_session(self, id_hash: str) -> bool:
        with self._tx() as conn:
            return bool(conn.execute("DELETE FROM sessions WHERE id_hash = %s",
                                     [id_hash]).rowcount)

    @wrap_exceptions
    def record_login_failure(self, user: str, address: str, now: datetime,
                             keep: timedelta) -> None:
        """Count a failed login; failures older than ``keep`` are forgotten."""
        with self._tx() as conn:
            conn.execute("DELETE FROM login_failures WHERE at < %s", [iso(now - keep)])
            conn.execute('INSERT INTO login_failures ("user", address, at) '
                         "VALUES (%s, %s, %s)", [user, address, iso(now)])

    @wrap_exceptions
    def login_failures(self, user: str, address: str, since: datetime) -> LoginFailures:
        with self._tx() as conn:
            found = [conn.execute(f"SELECT count(*), min(at) FROM login_failures "
                                  f"WHERE {column} = %s AND at >= %s",
                                  [value, iso(since)]).fetchone() or (0, None)
                     for column, value in (('"user"', user), ("address", address))]
        return LoginFailures(found[0][0], found[1][0],
                             parse_iso(found[0][1]) if found[0][1] else None,
                             parse_iso(found[1][1]) if found[1][1] else None)

    @wrap_exceptions
    def secret(self, name: str, candidate: bytes) -> bytes:
        """The secret kept under ``name``: ``candidate`` if none was kept yet (the first
        offered wins, whichever process offered it: the read sees the winner's row)."""
        with self._tx() as conn:
            conn.execute("INSERT INTO secrets (name, value) VALUES (%s, %s) "
                         "ON CONFLICT (name) DO NOTHING", [name, candidate])
            found = conn.execute("SELECT value FROM secrets WHERE name = %s",
                                 [name]).fetchone()
        return bytes(found[0]) if found else candidate
