"""One transaction's connection as every store module sees it, whichever the backend.

The store's modules write their SQL once, with `?` (or `?1`) parameters, and run it through a
`Conn`: SQLite's (aiosqlite) here; PostgreSQL's translates the parameters. What differs between
the two beyond that is asked of `Conn.dialect` where it is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
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
