"""Opening the configured store (the one place the app picks its backend)."""

from __future__ import annotations

from dialer.core.config import Settings
from dialer.store import SqliteStore, Store


async def open_store(s: Settings) -> Store:
    return await SqliteStore.open(s.path(s.store.path), s.store.synchronous)
