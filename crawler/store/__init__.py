"""All persistence, behind intent-level methods: nothing else in newswatch writes SQL.

``Store`` (``crawler/store/protocol.py``) is the contract the rest of newswatch depends
on; ``SQLiteStore`` (``crawler/store/sqlite/``) is the embedded backend, and
``PostgresStore`` (``crawler/store/postgres/``) the server backend many daemons share,
``open_store`` the one place a config chooses between them, and ``ThreadedStore`` the
async face the daemon uses. Work is claimed with leases (owner,
expiry) inside write transactions, so two processes on one database never poll a
source or send an alert twice at the same time, and a crashed process's claims simply
expire. Both backends keep the same contract and pass the same suite,
``tests/contract/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawler.store.opening import backend, open_store
from crawler.store.protocol import Store
from crawler.store.records import (
    ArchiveMark,
    ArchivePage,
    DeliveryResult,
    FoundArticle,
    LearnedRule,
    Mute,
    Muted,
    NewArticle,
    OutboxRow,
    PollRecord,
    QueuedAlert,
    SourceState,
    StoredArticle,
    StoryContext,
    StoryRules,
)
from crawler.store.sqlite import SQLiteStore
from crawler.store.threaded import ThreadedStore

__all__ = ["ArchiveMark", "ArchivePage", "DeliveryResult", "FoundArticle", "LearnedRule",
           "Mute", "Muted", "NewArticle", "OutboxRow", "PollRecord", "PostgresStore",
           "QueuedAlert", "SQLiteStore", "SourceState", "Store", "StoredArticle",
           "StoryContext", "StoryRules", "ThreadedStore", "backend", "open_store"]

if TYPE_CHECKING:
    from crawler.store.postgres import PostgresStore


def __getattr__(name: str) -> object:
    """``PostgresStore`` on first use: psycopg is imported only when it is needed."""
    if name == "PostgresStore":
        from crawler.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
