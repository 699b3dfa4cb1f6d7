"""Reads never see another coroutine's open write transaction, and cannot write themselves: on both
backends, and SQLite's read connections taken in turn."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import dialer.store.accounts as accounts_module
from audit.search import CallFilter, search
from dialer.store import Store
from dialer.store.chain import AuditEvent
from dialer.store.db import READERS, SqliteDatabase
from tests.support.records import NOW, record
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture, on both backends


class Injected(Exception):
    """A failure inside a write transaction."""


@pytest.fixture
def store(backend_store: Store) -> Store:
    return backend_store


async def test_a_read_during_an_open_write_sees_only_committed_rows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.upsert_accounts([record("A1")], NOW)
    inside, release = asyncio.Event(), asyncio.Event()
    real_append = accounts_module.append_audit

    async def held_open(db: Any, events: Sequence[AuditEvent]) -> None:
        # Inside import_batch's transaction: its accounts are inserted, not committed.
        inside.set()
        await release.wait()
        await real_append(db, events)

    monkeypatch.setattr(accounts_module, "append_audit", held_open)
    try:
        import_id = await store.start_import("b.csv", NOW)
        batch = [record("A2", "+12025550102"), record("A3", "+12025550103")]
        writing = asyncio.create_task(store.import_batch(import_id, 1, batch, [], NOW))
        async with asyncio.timeout(5):  # a read does not wait for the writer either
            await inside.wait()
            assert await store.count_accounts() == 1
            assert await store.account("A2") is None
            assert await store.fetch_all("SELECT account_id FROM accounts WHERE account_id='A3'") == []
            assert (await search(store, CallFilter())).total == 0
        assert not writing.done()  # the write was open all along
        release.set()
        await writing
        assert await store.count_accounts() == 3
        found = await store.account("A2")
        assert found is not None and found.phone_e164 == "+12025550102"
    finally:
        release.set()


async def test_a_rolled_back_write_is_never_seen(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(db: Any, events: Sequence[AuditEvent]) -> None:
        assert await store.count_accounts() == 0  # read while the batch's rows sit uncommitted
        raise Injected("disk I/O error (injected)")

    monkeypatch.setattr(accounts_module, "append_audit", failing)
    import_id = await store.start_import("b.csv", NOW)
    with pytest.raises(Injected, match="injected"):
        await store.import_batch(import_id, 1, [record("A1")], [], NOW)
    assert await store.count_accounts() == 0


async def test_the_read_path_cannot_write(store: Store) -> None:
    await store.upsert_accounts([record("A1")], NOW)
    # SQLite's read connections are query_only; PostgreSQL's reads are READ ONLY transactions.
    refused = (sqlite3.OperationalError, asyncpg.ReadOnlySQLTransactionError)
    with pytest.raises(refused, match=r"readonly|read-only"):
        await store.fetch_all("DELETE FROM accounts")
    assert await store.count_accounts() == 1


async def test_reads_run_side_by_side_on_the_read_connections_and_wait_for_a_free_one(
    tmp_path: Path,
) -> None:
    """A report's queries overlap (one per read connection); one more waits, and gets a
    connection back when a read ends, even one that failed. SQLite's own read connections
    (`READERS`; PostgreSQL's are its pool's)."""
    database = await SqliteDatabase.open(tmp_path / "t.db")
    try:
        inside = 0

        async def hold(release: asyncio.Event) -> None:
            nonlocal inside
            async with database.read() as db:
                inside += 1
                await db.execute("SELECT 1")
                await release.wait()

        held = [asyncio.Event() for _ in range(READERS)]
        holders = [asyncio.create_task(hold(e)) for e in held]
        async with asyncio.timeout(5):
            while inside < READERS:  # every read connection is in a read at once
                await asyncio.sleep(0.01)
        waiting = asyncio.create_task(database.fetch_one("SELECT 2 AS n"))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # none free: it waits
        held[0].set()
        async with asyncio.timeout(5):
            row = await waiting
        assert row is not None and row["n"] == 2
        for e in held:
            e.set()
        await asyncio.gather(*holders)
        with pytest.raises(sqlite3.OperationalError):
            await database.fetch_one("SELECT * FROM no_such_table")
        for _ in range(READERS + 1):  # the failed read gave its connection back
            async with asyncio.timeout(5):
                assert await database.fetch_one("SELECT 3") is not None
    finally:
        await database.close()
