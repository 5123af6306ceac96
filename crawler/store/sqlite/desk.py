"""The desk's users, sessions, failed logins and secrets (``crawler/app/desk``).

A session is stored by the SHA-256 of its id only, so a copy of the database opens none;
removing a user removes their sessions in the same transaction. Failed logins are rows,
so every process serving the desk counts the same ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from crawler.core.clock import iso, parse_iso
from crawler.store.records import LoginFailures, Session
from crawler.store.sqlite.base import Connected, wrap_exceptions

#: last_seen_at is written again only when older than this: a page view is not a write
TOUCH_EVERY = timedelta(minutes=1)


class Desk(Connected):
    @wrap_exceptions
    def add_user(self, name: str, password_hash: str, now: datetime) -> bool:
        """Add a user; False (and nothing changed) when the name is taken."""
        with self._write() as db:
            return bool(db.execute(
                "INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING", [name, password_hash, iso(now)]).rowcount)

    @wrap_exceptions
    def remove_user(self, name: str) -> bool:
        """Remove a user and end all their sessions at once; False when unknown."""
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE user = ?", [name])
            return bool(db.execute("DELETE FROM users WHERE name = ?", [name]).rowcount)

    @wrap_exceptions
    def users(self) -> list[dict[str, Any]]:
        """Every user by name, with when added and how many sessions they hold."""
        rows = self._db.execute(
            "SELECT u.name, u.created_at, (SELECT count(*) FROM sessions s "
            "WHERE s.user = u.name) FROM users u ORDER BY u.name").fetchall()
        return [{"name": n, "created_at": c, "sessions": s} for n, c, s in rows]

    @wrap_exceptions
    def password_hash(self, name: str) -> str | None:
        row = self._db.execute("SELECT password_hash FROM users WHERE name = ?",
                               [name]).fetchone()
        return None if row is None else str(row[0])

    @wrap_exceptions
    def open_session(self, id_hash: str, user: str, csrf: str, now: datetime,
                     expires_at: datetime) -> bool:
        """Store a new session (and forget the expired ones); False when the user is
        gone (removed since the password was checked)."""
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE expires_at <= ?", [iso(now)])
            return bool(db.execute(
                "INSERT INTO sessions (id_hash, user, csrf, created_at, expires_at, "
                "last_seen_at) SELECT ?, name, ?, ?, ?, ? FROM users WHERE name = ?",
                [id_hash, csrf, iso(now), iso(expires_at), iso(now), user]).rowcount)

    @wrap_exceptions
    def session(self, id_hash: str, now: datetime, idle: timedelta) -> Session | None:
        """The session if it is neither past its end nor idle longer than ``idle``;
        seeing it counts as activity."""
        row = self._db.execute(
            "SELECT user, csrf, created_at, expires_at, last_seen_at FROM sessions "
            "WHERE id_hash = ? AND expires_at > ? AND last_seen_at > ?",
            [id_hash, iso(now), iso(now - idle)]).fetchone()
        if row is None:
            return None
        if parse_iso(row[4]) <= now - TOUCH_EVERY:
            with self._write() as db:
                db.execute("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?",
                           [iso(now), id_hash])
        return Session(row[0], row[1], parse_iso(row[2]), parse_iso(row[3]))

    @wrap_exceptions
    def end_session(self, id_hash: str) -> bool:
        with self._write() as db:
            return bool(db.execute("DELETE FROM sessions WHERE id_hash = ?",
                                   [id_hash]).rowcount)

    @wrap_exceptions
    def record_login_failure(self, user: str, address: str, now: datetime,
                             keep: timedelta) -> None:
        """Count a failed login; failures older than ``keep`` are forgotten."""
        with self._write() as db:
            db.execute("DELETE FROM login_failures WHERE at < ?", [iso(now - keep)])
            db.execute("INSERT INTO login_failures (user, address, at) VALUES (?, ?, ?)",
                       [user, address, iso(now)])

    @wrap_exceptions
    def login_failures(self, user: str, address: str, since: datetime) -> LoginFailures:
        found = [self._db.execute(f"SELECT count(*), min(at) FROM login_failures "
                                  f"WHERE {column} = ? AND at >= ?",
                                  [value, iso(since)]).fetchone()
                 for column, value in (("user", user), ("address", address))]
        return LoginFailures(found[0][0], found[1][0],
                             parse_iso(found[0][1]) if found[0][1] else None,
                             parse_iso(found[1][1]) if found[1][1] else None)

    @wrap_exceptions
    def secret(self, name: str, candidate: bytes) -> bytes:
        """The secret kept under ``name``: ``candidate`` if none was kept yet (the first
        offered wins, whichever process offered it)."""
        with self._write() as db:
            db.execute("INSERT INTO secrets (name, value) VALUES (?, ?) "
                       "ON CONFLICT (name) DO NOTHING", [name, candidate])
            return bytes(db.execute("SELECT value FROM secrets WHERE name = ?",
                                    [name]).fetchone()[0])
