"""Looking after the database: backups (``pg_dump``), retention of delivered alerts,
the schema version, and whether it takes writes."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from crawler.core.clock import iso
from crawler.core.errors import StoreError
from crawler.core.redact import scrub
from crawler.store.postgres.base import Connected, wrap_exceptions
from crawler.store.records import HOST_ROWS_KEPT

#: How long ``backup`` lets pg_dump run.
BACKUP_TIMEOUT_S = 3600


class Maintenance(Connected):
    _dsn: str
    _password: str | None

    @wrap_exceptions
    def backup(self, destination: Path) -> None:
        """A consistent copy of the database (pg_dump's snapshot; writers may go on), in
        pg_dump's custom format (``pg_restore`` reads it), owner-only. The password
        reaches pg_dump in its environment, never on its command line."""
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise StoreError("cannot back up: pg_dump is not installed (Debian: "
                             "apt-get install postgresql-client)")
        destination.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **({"PGPASSWORD": self._password} if self._password else {})}
        os.close(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        done = subprocess.run([pg_dump, "--format=custom", "--file", str(destination),
                               "--dbname", self._dsn], env=env, capture_output=True,
                              text=True, timeout=BACKUP_TIMEOUT_S, check=False)
        if done.returncode != 0:
            destination.unlink(missing_ok=True)
            raise StoreError(f"pg_dump of {self.location} failed: "
                             f"{scrub(done.stderr.strip(), self._secrets)}")

    @wrap_exceptions
    def maintain(self, now: datetime, keep_delivered: timedelta) -> int:
        """Forget delivered alerts (and their attempts) older than ``keep_delivered``; as
        ``SQLiteStore.maintain`` (autovacuum does the rest). Returns the alerts removed."""
        with self._tx() as conn:
            old = ("SELECT o.id FROM outbox o WHERE o.status = 'delivered' "
                   "AND o.delivered_at < %(cutoff)s AND NOT EXISTS (SELECT 1 FROM articles a "
                   "JOIN stories s ON s.id = a.story_id WHERE a.id = o.article_id "
                   "AND s.last_seen_at >= %(cutoff)s)")
            cutoff = {"cutoff": iso(now - keep_delivered)}
            for table in ("delivery_attempts", "outbox_items"):
                conn.execute(f"DELETE FROM {table} WHERE outbox_id IN ({old})", cutoff)
            conn.execute("DELETE FROM hosts WHERE next_at < %(gone)s AND coalesce(held_until, "
                         "next_at) < %(gone)s", {"gone": iso(now - HOST_ROWS_KEPT)})
            return conn.execute(f"DELETE FROM outbox WHERE id IN ({old})", cutoff).rowcount

    @wrap_exceptions
    def schema_version(self) -> int:
        """The highest migration applied."""
        with self._tx() as conn:
            found = conn.execute("SELECT max(version) FROM migrations").fetchone()
        return int(found[0]) if found and found[0] is not None else 0

    def writable(self) -> str | None:
        """None when a write transaction can be taken now, else the reason it cannot (the
        server unreachable, or a read-only standby)."""
        try:
            return self._read_only()
        except StoreError as exc:
            return str(exc)

    @wrap_exceptions
    def _read_only(self) -> str | None:
        with self._tx() as conn:
            found = conn.execute("SELECT current_setting('transaction_read_only')").fetchone()
        if found and found[0] == "on":
            return f"database {self.location} is read-only (a standby?)"
        return None
