"""The one persistence layer: per-patient MICRON state, the feedback ledger, the card
ledger, pending review actions and used JWT ids, in Redis or in process.

`open_store(url)` gives a `RedisStore` when a Redis URL is configured (the production
set-up: every replica shares it) and an in-process `MemoryStore` when none is (the
embedded default of `fhir-assist serve` / `demo`). Both have the same API, honour TTLs
and key every record by a `Scope` (tenant, optionally its token issuer). The key
layout and what happens to each record when Redis fails: docs/storage.md.
"""
from __future__ import annotations

from .base import CARD_TTL_S, FEEDBACK_MAX_EVENTS, JTI_GRACE_S, StateWrite, Store, StoreUnavailable
from .connection import RETRY_AFTER_S
from .keys import DEFAULT_TENANT, KEY_PREFIX, Scope
from .memory import MemoryStore
from .redis_store import RedisStore
from .sqlite_store import SqliteStore

__all__ = ["CARD_TTL_S", "DEFAULT_TENANT", "FEEDBACK_MAX_EVENTS", "JTI_GRACE_S", "KEY_PREFIX",
           "MemoryStore", "RETRY_AFTER_S", "RedisStore", "Scope", "SqliteStore", "StateWrite", "Store",
           "StoreUnavailable", "open_store"]


def open_store(redis_url: str | None, state_file: str | None = None, *, durable: bool = True,
               **options) -> Store:
    """A RedisStore for a redis:// / rediss:// / unix:// URL; without one, a SqliteStore in
    `state_file` when given (server processes of one machine share it; `durable`: flushed to
    disk), else the in-process store.

    Opening never connects: a Redis that is down at start-up shows in `ping()` and as
    `StoreUnavailable` on use, so the service can start and recover when Redis returns.
    """
    if not redis_url:
        return SqliteStore(state_file, durable=durable) if state_file else MemoryStore()
    return RedisStore(redis_url, **options)
