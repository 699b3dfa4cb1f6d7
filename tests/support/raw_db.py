"""Plain SQL on a test's database, beside the store: for bulk test data and for tampering.

The code under test never does this (every write goes through the store); tests do, to build
data fast or to break the chain on purpose. `execute` and `executemany` take a SQLite file;
`tamper` and `tamper_in` take a store or the settings naming one, on either backend.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from dialer.core.config import Settings
from dialer.store import Store
from dialer.store.opening import open_store


def execute(db: Path, sql: str, params: Sequence[Any] = ()) -> None:
    with sqlite3.connect(db) as conn:  # commits on leaving the block
        conn.execute(sql, params)
    conn.close()


def executemany(db: Path, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany(sql, rows)
    conn.close()


async def tamper(store: Store, sql: str, params: Sequence[Any] = ()) -> int:
    """Run one statement (`?` parameters) in its own transaction, on either backend, past every
    method of the store (as someone with write access to the database would); the rows it changed."""
    database = cast(Any, store)._db  # the store's own connections: no second way in to keep in step
    async with database.write() as db:
        changed: int = await db.execute(sql, params)
    return changed


def tamper_in(settings: Settings, sql: str, params: Sequence[Any] = ()) -> int:
    """`tamper` on the store `settings` name, from a test without an event loop."""

    async def run() -> int:
        store = await open_store(settings)
        try:
            return await tamper(store, sql, params)
        finally:
            await store.close()

    return asyncio.run(run())
