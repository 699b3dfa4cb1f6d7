"""The PostgreSQL database behind the store (asyncpg): a pool, the one write path, migrations.

Every write transaction takes one transaction-scoped advisory lock first (`WRITE_LOCK`), so the
writes of every dialer machine are serialised as SQLite serialises a machine's: a claim reads a
number's history and adds its attempt with no other claim in between (no cap can be passed by
two machines at once), and the audit chain has one head. Taken first, it is the only lock a write
waits for: no two writes can deadlock. Reads run in parallel, each one REPEATABLE READ, READ ONLY
transaction: one committed snapshot, never another transaction's rows.

The SQL is the store's own (`?` or `?1` parameters, translated here to `$1`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache
from typing import Any

import asyncpg

from dialer.core.errors import StoreError, StoreUnavailable
from dialer.store.conn import Dialect, Row, read_migrations

WRITE_LOCK = 0x44756543  # 'DueC': the writers' advisory lock
MIGRATE_LOCK = 0x44756544  # several machines starting at once migrate one after the other
SCHEMA_VERSION = "SELECT coalesce(max(version), 0) AS v FROM schema_version"
POOL_SIZE = 4  # at most; no floor (min 0): asyncpg would log a traceback per retry to restore it
CONNECT_TIMEOUT = 10.0  # seconds: a server that does not answer is an error, not a hang
COMMAND_TIMEOUT = 120.0  # seconds for one statement (a report's biggest query takes a few)
# The server went away, is shutting down or refuses connections for now: the same work may succeed
# later (the dialer holds its results and retries; docs/postgres.md).
_GONE = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError)
# The server answers but will not let us in: a wrong user or password, no such database.
_REFUSED = (
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidPasswordError,
    asyncpg.exceptions.InvalidCatalogNameError,
)
_PARAM = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"])*\"|\?(\d*)")


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """`?` and `?N` parameters as PostgreSQL's `$N` (none inside quoted text or names). As in
    SQLite, a bare `?` is numbered one more than the largest number given so far."""
    largest = 0

    def one(match: re.Match[str]) -> str:
        nonlocal largest
        if not match.group(0).startswith("?"):
            return match.group(0)
        number = int(match.group(1)) if match.group(1) else largest + 1
        largest = max(largest, number)
        return f"${number}"

    return _PARAM.sub(one, sql)


def _changed(status: str) -> int:
    """The rows a statement changed, from its command tag ('INSERT 0 3', 'UPDATE 2', 'DELETE 0')."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PgConn:
    """A `Conn` over one asyncpg connection inside its transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Dialect:
        return "postgresql"

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _changed(await self._conn.execute(translate(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(r) for r in rows]
        if batch:
            await self._conn.executemany(translate(sql), batch)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.fetch(translate(sql), *params))


class PgDatabase:
    """A pool of connections to one PostgreSQL database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, size: int = POOL_SIZE) -> PgDatabase:
        try:
            pool = await asyncpg.create_pool(
                url, min_size=0, max_size=size, timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise StoreError(f"[store] url: cannot connect to PostgreSQL at {_shown(url)}: {exc}") from exc
        database = cls(pool)
        try:
            await database._migrate()  # the first connection (the pool keeps none open)
        except (*_GONE, *_REFUSED) as exc:
            await pool.close()
            raise StoreError(f"[store] url: cannot connect to PostgreSQL at {_shown(url)}: {exc}") from exc
        except BaseException:
            await pool.close()
            raise
        return database

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[PgConn]:
        with _unavailable_when_gone():
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
                yield PgConn(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PgConn]:
        with _unavailable_when_gone():
            async with (
                self._pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                yield PgConn(conn)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self.read() as db:
            return await db.fetch_all(sql, params)

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return next(iter(await self.fetch_all(sql, params)), None)

    async def _migrate(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY)")
            version = await conn.fetchval(SCHEMA_VERSION)
            known = migrations()
            if version > known[-1][0]:
                raise StoreError(f"the database's schema version {version} is newer than this DueCall")
            for number, sql in known:
                if number > version:
                    await conn.execute(sql)  # a whole script: PostgreSQL runs it as one
                    await conn.execute("INSERT INTO schema_version VALUES ($1)", number)


@contextmanager
def _unavailable_when_gone() -> Iterator[None]:
    try:
        yield
    except _GONE as exc:
        raise StoreUnavailable(f"PostgreSQL is unavailable: {type(exc).__name__}: {exc}") from exc
    except asyncpg.InterfaceError as exc:
        if "closed" not in str(exc):  # else a misuse: a bug, not the server
            raise
        raise StoreUnavailable(f"PostgreSQL is unavailable: {exc}") from exc


def migrations() -> list[tuple[int, str]]:
    return read_migrations("migrations_pg")


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
