"""The SQLite store (aiosqlite, WAL): the `Store` interface, one part per aggregate."""

from __future__ import annotations

from pathlib import Path

from dialer.store.db import SCHEMA_VERSION, SqliteDatabase
from dialer.store.interface import Store
from dialer.store.parts import StoreParts


class SqliteStore(StoreParts):
    """SQLite implementation of `Store`. Open with `await SqliteStore.open(path)`."""

    @classmethod
    async def open(cls, path: Path, synchronous: str = "FULL") -> SqliteStore:
        store = cls(await SqliteDatabase.open(path, synchronous))
        await store.fill_payment_days()  # payments stored before their day was kept (migration 0014)
        return store

    async def schema_version(self) -> int:
        row = await self._db.fetch_one(SCHEMA_VERSION)
        return int(row["user_version"]) if row else 0


def _implements(store: SqliteStore) -> Store:
    return store  # mypy checks here that SqliteStore has every method of the interface
