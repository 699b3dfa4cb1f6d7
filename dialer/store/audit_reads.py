"""The audit's own reads, on either backend: the chain in order, in batches keyed by seq, and the
tables it vouches for (`duecall audit verify`, `audit anchor`, `audit check-bundle --against-chain`
and the trail page).

A check reads everything inside one read transaction (`audit_view()`): the tables are compared with
the chain as it stood at that same moment, so a call or a text written while a check runs is never
"in the table but not in the chain". The events come in batches, so memory stays flat however long
the chain is.

`SqliteFile` opens a SQLite store's file read-only for those checks: a copy of a database is never
changed, migrated or created by checking it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from dialer.core.errors import StoreError
from dialer.store.chain import COLUMNS, GENESIS, HEAD, StoredEvent
from dialer.store.conn import Conn, Database, Row, SqliteConn

BATCH = 5000  # events per read: a few MB, and few enough round trips not to matter

EVENTS_AFTER = f"SELECT {COLUMNS} FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?"
EVENTS_BETWEEN = f"SELECT {COLUMNS} FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
EVENT_AT = f"SELECT {COLUMNS} FROM audit_events WHERE seq = ?"
RECORDINGS = "SELECT path, sha256, purged_at FROM recordings"
TEXTS_AFTER = "SELECT id, phone_e164, text, state FROM messages WHERE id > ? ORDER BY id LIMIT ?"
REPLIES_AFTER = "SELECT id, phone_e164, text FROM inbound_messages WHERE id > ? ORDER BY id LIMIT ?"
SQLITE_HAS_TEXTS = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='messages'"
CALL_PERSON = (
    "SELECT a.name, a.phone_e164 FROM attempts t JOIN accounts a ON a.id = t.account_pk WHERE t.id = ?"
)
CALL_EVENTS = "SELECT seq FROM audit_events WHERE attempt_id = ? AND seq <= ? ORDER BY seq"


@dataclass(frozen=True, slots=True)
class StoredRecording:
    path: str
    sha256: str
    purged: bool


@dataclass(frozen=True, slots=True)
class StoredText:
    """A text sent (with its state) or received (state "") as its table holds it."""

    id: int
    phone: str
    text: str
    state: str = ""


class AuditView:
    """The audit's reads inside one read transaction (one committed snapshot). Rows are read by
    position, so a `SqliteFile`'s plain tuples serve as well as the stores' named rows."""

    def __init__(self, db: Conn) -> None:
        self._db = db

    async def events(self, after: int, upto: int | None = None, limit: int = BATCH) -> list[StoredEvent]:
        """Up to `limit` events after seq `after` (and at most `upto`), in order."""
        if upto is None:
            rows = await self._db.fetch_all(EVENTS_AFTER, (after, limit))
        else:
            rows = await self._db.fetch_all(EVENTS_BETWEEN, (after, upto, limit))
        return [_event(row) for row in rows]

    async def event(self, seq: int) -> StoredEvent | None:
        rows = await self._db.fetch_all(EVENT_AT, (seq,))
        return _event(rows[0]) if rows else None

    async def head(self) -> tuple[int, str]:
        """The newest event's (seq, hash); (0, genesis) on an empty chain."""
        rows = await self._db.fetch_all(HEAD)
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)

    async def recordings(self) -> list[StoredRecording]:
        """Every row of the recordings table, by path."""
        rows = await self._db.fetch_all(RECORDINGS)
        found = [StoredRecording(str(r[0]), str(r[1]), r[2] is not None) for r in rows]
        return sorted(found, key=lambda r: r.path)  # in Python: the same order whatever the collation

    async def has_texts(self) -> bool:
        """False for a SQLite file from before texts (PostgreSQL's baseline has them)."""
        if self._db.dialect == "postgresql":
            return True
        return bool(await self._db.fetch_all(SQLITE_HAS_TEXTS))

    async def texts(self, after: int, limit: int = BATCH) -> list[StoredText]:
        """Texts sent, by id, after id `after`."""
        rows = await self._db.fetch_all(TEXTS_AFTER, (after, limit))
        return [StoredText(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    async def replies(self, after: int, limit: int = BATCH) -> list[StoredText]:
        """Texts received, by id, after id `after`."""
        rows = await self._db.fetch_all(REPLIES_AFTER, (after, limit))
        return [StoredText(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def call_person(self, attempt_id: int) -> tuple[str, str] | None:
        """The (name, number) of the account a call was to, as the database holds them now."""
        rows = await self._db.fetch_all(CALL_PERSON, (attempt_id,))
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    async def call_events(self, attempt_id: int, upto: int) -> list[int]:
        """The seqs of a call's events, up to seq `upto`."""
        return [int(r[0]) for r in await self._db.fetch_all(CALL_EVENTS, (attempt_id, upto))]


def _event(row: Any) -> StoredEvent:
    return StoredEvent(*row)  # a row of COLUMNS, in order: no lookup by name for each field


class AuditReading(Protocol):
    """What the audit's checks read through: a store on either backend, or a `SqliteFile`."""

    def audit_view(self) -> AbstractAsyncContextManager[AuditView]: ...

    async def close(self) -> None: ...


class AuditReads:
    """The audit's reads (a part of both stores)."""

    _db: Database

    @asynccontextmanager
    async def audit_view(self) -> AsyncIterator[AuditView]:
        """One read transaction for a whole check: hold it for reads only (not while hashing files)."""
        async with self._db.read() as db:
            yield AuditView(db)


class _ReadOnlyFile:
    """A `Database` over one read-only connection: `read()` only; rows are tuples (`AuditView`)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    def write(self) -> AbstractAsyncContextManager[Conn]:
        raise StoreError("this database was opened read-only, for the audit's checks")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        await self._conn.execute("BEGIN")  # one snapshot for the block
        try:
            yield SqliteConn(self._conn)
        finally:
            await self._conn.execute("COMMIT")

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self.read() as db:
            return await db.fetch_all(sql, params)

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return next(iter(await self.fetch_all(sql, params)), None)

    async def close(self) -> None:
        await self._conn.close()


class SqliteFile(AuditReads):
    """A SQLite store's file, opened read-only (`mode=ro`) for the audit's checks."""

    def __init__(self, db: _ReadOnlyFile) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> SqliteFile:
        await asyncio.to_thread(_a_file, path)
        # Plain tuples (no row_factory): a fifth faster over a long chain than sqlite3.Row.
        conn = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        try:  # a file that is not a DueCall database fails here, not halfway through a report
            await conn.execute("PRAGMA busy_timeout=10000")
            await conn.execute("SELECT seq FROM audit_events LIMIT 0")
        except sqlite3.Error as exc:
            await conn.close()
            raise StoreError(f"{path}: cannot be read as a DueCall database ({exc})") from exc
        return cls(_ReadOnlyFile(conn))

    async def close(self) -> None:
        await self._db.close()


def _a_file(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such database")
    if not path.is_file():
        raise StoreError(f"{path}: not a database file")
