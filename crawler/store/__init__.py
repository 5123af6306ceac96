"""All persistence, behind intent-level methods: nothing else in newswatch writes SQL.

``Store`` (``crawler/store/protocol.py``) is the contract the rest of newswatch depends
on; ``SQLiteStore`` (``crawler/store/sqlite/``) is the embedded backend, and
``ThreadedStore`` the async face the daemon uses. Work is claimed with leases (owner,
expiry) inside write transactions, so two processes on one database never poll a
source or send an alert twice at the same time, and a crashed process's claims simply
expire. Another backend (a server database) keeps the same contract and passes the same
suite, ``tests/contract/``.
"""

from __future__ import annotations

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
           "Mute", "Muted", "NewArticle",
           "OutboxRow", "PollRecord", "QueuedAlert", "SQLiteStore", "SourceState", "Store",
           "StoredArticle", "StoryContext", "StoryRules", "ThreadedStore"]
