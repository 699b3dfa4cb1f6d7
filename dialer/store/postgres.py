"""The PostgreSQL store (asyncpg): the same `Store` interface and parts as SQLite's, for several
dialer machines on one database (dialer/store/pg.py: the pool, the write lock, migrations)."""

from __future__ import annotations

from dialer.store.interface import Store
from dialer.store.parts import StoreParts
from dialer.store.pg import SCHEMA_VERSION, PgDatabase


class PostgresStore(StoreParts):
    """PostgreSQL implementation of `Store`. Open with `await PostgresStore.open(url)`."""

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        store = cls(await PgDatabase.open(url))
        await store.fill_payment_days()
        return store

    async def schema_version(self) -> int:
        row = await self._db.fetch_one(SCHEMA_VERSION)
        return int(row["v"]) if row else 0


def _implements(store: PostgresStore) -> Store:
    return store  # mypy checks here that PostgresStore has every method of the interface
