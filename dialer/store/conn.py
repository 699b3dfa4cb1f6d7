"""One transaction's connection as every store module sees it, whichever the backend.

The store's modules write their SQL once, with `?` (or `?1`) parameters, and run it through a
`Conn`: SQLite's (aiosqlite) here; PostgreSQL's translates the parameters. What differs between
the two beyond that is asked of `Conn.dialect` where it is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from importlib import resources
from typing import Any, Literal, Protocol

import aiosqlite

Dialect = Literal["sqlite", "postgresql"]


class Row(Protocol):
    """A result row: by column name or position (sqlite3.Row, asyncpg.Record)."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def keys(self) -> Any: ...


class Conn(Protocol):
    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the rows it changed (inserted, updated, deleted)."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class Database(Protocol):
    """A backend's connections: `write()` is the one write path (one transaction, committed when
    the block ends without an error, rolled back otherwise), `read()` one read transaction on a
    committed snapshot."""

    def write(self) -> AbstractAsyncContextManager[Conn]: ...

    def read(self) -> AbstractAsyncContextManager[Conn]: ...

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    async def close(self) -> None: ...


class SqliteConn:
    """A `Conn` over an aiosqlite connection (rows are sqlite3.Row: the connection's row_factory)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Dialect:
        return "sqlite"

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self._conn.execute(sql, params)
        changed = cursor.rowcount
        await cursor.close()
        return max(changed, 0)  # -1 for a statement that changes no rows by definition

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, params))


def read_migrations(folder: str) -> list[tuple[int, str]]:
    """A backend's migrations (dialer/store/<folder>/NNNN_name.sql), by number."""
    found = []
    for entry in (resources.files("dialer.store") / folder).iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


async def take_batch(db: Conn, batch: str, marked: str, campaign_id: int, size: int) -> bool:
    """Fill the temp table `batch` with up to `size` of the campaign's accounts marked in `marked`
    (lowest first); False when none is marked."""
    # INTEGER PRIMARY KEY: SQLite's rowid itself (no second index); PostgreSQL's int4: 2^31 accounts.
    await db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {batch} (account_pk INTEGER PRIMARY KEY)")
    await db.execute(f"DELETE FROM {batch}")
    pick = f"SELECT account_pk FROM {marked} WHERE campaign_id = ? ORDER BY account_pk LIMIT ?"
    taken = await db.execute(f"INSERT INTO {batch} {pick}", (campaign_id, size))
    return taken > 0
