"""The SQLite database behind the store: its two connections, the one write path, migrations.

One write connection behind one asyncio lock: `Database.write()` is the only way to change a
row (BEGIN IMMEDIATE, then COMMIT, or ROLLBACK on any error), so two coroutines never interleave
statements inside each other's transactions.

Reads go through a second, read-only connection (`Database.read()`), never through the writer.
A read on the writer's connection while another coroutine holds it inside BEGIN ... COMMIT would
see that coroutine's uncommitted rows, which may yet be rolled back; waiting for the write lock
instead would stall every audit page and status read behind the dialer's writes. In WAL mode a
second connection reads the last committed snapshot and neither blocks the writer nor waits for
it (datasette's layout: one write connection, separate read connections). Each `read()` is one
read transaction, so the statements of one read see one snapshot.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from dialer.core.errors import StoreError
from dialer.core.private_files import create_private, tighten
from dialer.store.conn import Conn, Database, Row, SqliteConn, read_migrations

__all__ = [
    "READERS",
    "SCHEMA_VERSION",
    "Conn",
    "Database",
    "Row",
    "SqliteDatabase",
    "fetch_all",
    "fetch_one",
    "insert_id",
]

SCHEMA_VERSION = "PRAGMA user_version"


def _migrations() -> list[tuple[int, str]]:
    return read_migrations("migrations")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (no semicolons inside our literals; a trigger's body,
    whose statements end in semicolons, stays one statement: sqlite3.complete_statement)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    found, part = [], ""
    for piece in "\n".join(lines).split(";"):
        part += piece + ";"
        if sqlite3.complete_statement(part):
            found.append(part.strip().removesuffix(";").strip())
            part = ""
    return [s for s in found if s]


def _make_private(path: Path) -> None:
    """The database holds borrowers' data: 0600, and SQLite gives its -wal and -shm the same mode.

    Files left by an older version (or by a killed process) are tightened first.
    """
    create_private(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten(path.with_name(path.name + suffix))


async def _connect(path: Path, synchronous: str, read_only: bool) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row  # rows are read by column name
    if not read_only:
        await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute(f"PRAGMA synchronous={synchronous}")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=10000")
    if read_only:
        await conn.execute("PRAGMA query_only=ON")  # a statement that writes fails here
    return conn


# Read connections: a report's queries run side by side (one per core of a small machine), and a
# long read does not hold up the dialer's short ones.
READERS = 2


class SqliteDatabase:
    """The write connection (behind `write()`) and the read connections (behind `read()`)."""

    def __init__(self, writer: aiosqlite.Connection, readers: Sequence[aiosqlite.Connection]) -> None:
        self._writer = writer
        self._readers = tuple(readers)
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for reader in self._readers:
            self._idle.put_nowait(reader)
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, synchronous: str = "FULL") -> SqliteDatabase:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer, readers = None, []
        try:
            _make_private(path)
            writer = await _connect(path, synchronous, read_only=False)
            await _migrate(writer, path)
            for _ in range(READERS):
                readers.append(await _connect(path, synchronous, read_only=True))
        except StoreError:
            await _close_all([writer, *readers])
            raise
        except Exception as exc:  # sqlite3 errors and OSError alike
            await _close_all([writer, *readers])
            raise StoreError(f"{path}: cannot open the database: {exc}") from exc
        return cls(writer, readers)

    async def close(self) -> None:
        for reader in self._readers:
            await reader.close()
        await self._writer.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Conn]:
        """The one write path: one transaction, committed when the block ends without an error."""
        async with self._write_lock, _transaction(self._writer, "BEGIN IMMEDIATE") as conn:
            yield SqliteConn(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        """One read transaction on an idle read-only connection: a committed snapshot."""
        reader = await self._idle.get()
        try:
            async with _transaction(reader, "BEGIN") as conn:
                yield SqliteConn(conn)
        finally:
            self._idle.put_nowait(reader)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self.read() as db:
            return await fetch_all(db, sql, params)

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self.read() as db:
            return await fetch_one(db, sql, params)


async def _close_all(conns: Sequence[aiosqlite.Connection | None]) -> None:
    for conn in conns:
        if conn is not None:
            await conn.close()


@asynccontextmanager
async def _transaction(conn: aiosqlite.Connection, begin: str) -> AsyncIterator[aiosqlite.Connection]:
    await conn.execute(begin)
    try:
        yield conn
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def fetch_all(db: Conn, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    return await db.fetch_all(sql, params)


async def fetch_one(db: Conn, sql: str, params: Sequence[Any] = ()) -> Row | None:
    return next(iter(await db.fetch_all(sql, params)), None)


async def insert_id(db: Conn, sql: str, params: Sequence[Any] = ()) -> int:
    """Run one INSERT of one row; its id (RETURNING: both backends have it, neither needs lastrowid)."""
    row = await fetch_one(db, f"{sql} RETURNING id", params)
    assert row is not None, "an INSERT without ON CONFLICT returns its row"
    return int(row["id"])


async def _migrate(conn: aiosqlite.Connection, path: Path) -> None:
    async with _transaction(conn, "BEGIN IMMEDIATE") as raw:
        db = SqliteConn(raw)
        row = await fetch_one(db, SCHEMA_VERSION)
        version = int(row["user_version"]) if row else 0
        known = _migrations()
        if version > known[-1][0]:
            raise StoreError(f"{path}: schema version {version} is newer than this DueCall")
        for number, sql in known:
            if number > version:
                for statement in _statements(sql):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version={number}")
