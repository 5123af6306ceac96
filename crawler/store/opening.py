"""Which backend a config's ``database`` selects: the one place a store is opened."""

from __future__ import annotations

from crawler.config import Config
from crawler.store.protocol import Store
from crawler.store.sqlite import SQLiteStore


def open_store(config: Config) -> Store:
    """``postgresql://…`` (or ``${VAR}`` holding one): PostgreSQL; a path: SQLite."""
    url = config.database_url
    if url is not None:
        # psycopg is imported only for a server database: it adds 0.15 s to every command
        from crawler.store.postgres import PostgresStore

        return PostgresStore(url)
    return SQLiteStore(config.database_path)


def backend(config: Config) -> str:
    """The backend's name, for ``check`` and ``status``."""
    return "postgresql" if config.database_url is not None else "sqlite"
