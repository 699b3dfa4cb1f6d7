"""Opening the store that the settings name ([store] url): the one place a backend is chosen."""

from __future__ import annotations

from pathlib import Path

from dialer.core.config import Settings
from dialer.core.errors import DueCallError
from dialer.store.interface import Store
from dialer.store.postgres import PostgresStore
from dialer.store.sqlite import SqliteStore


async def open_store(s: Settings) -> Store:
    """The store [store] url names: PostgreSQL, or SQLite (the default, `path` when no url)."""
    if (url := s.store.postgres_url()) is not None:
        return await PostgresStore.open(url)
    return await SqliteStore.open(s.path(s.store.sqlite_file()), s.store.synchronous)


def sqlite_file(s: Settings) -> Path:
    """The SQLite file of the store, for the commands that read it directly (the audit's checks);
    an error naming the setting for a PostgreSQL store, which they do not read yet."""
    if s.store.postgres_url() is not None:
        raise DueCallError("[store] url: this command reads a SQLite store's file; not yet PostgreSQL")
    return s.path(s.store.sqlite_file())
