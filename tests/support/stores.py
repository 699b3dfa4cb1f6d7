"""A store on each backend for the tests that run on both: SQLite in the test's folder, and
PostgreSQL in a fresh database of the suite's cluster (tests/support/postgres.py).

Use in a test module: `from tests.support.stores import backend_store` (the fixture, parametrised
by backend: each test that asks for it, or for a fixture built on it, runs twice, `[sqlite]` and
`[postgresql]`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path

import pytest

from dialer.store import Store
from dialer.store.pg_cluster import PgServer
from dialer.store.postgres import PostgresStore
from dialer.store.sqlite import SqliteStore
from tests.support.postgres import fresh_database, start_test_server

BACKENDS = ("sqlite", "postgresql")
# For a test that reads or writes the SQLite file itself (not yet through the store): its own
# backend only, said where it is defined.
SQLITE_ONLY = pytest.mark.parametrize("backend_store", ["sqlite"], indirect=True)


@cache
def _server() -> PgServer:
    return start_test_server()


@pytest.fixture(params=BACKENDS)
async def backend_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened: Store = await SqliteStore.open(tmp_path / "t.db")
        yield opened
        await opened.close()
        return
    with fresh_database(_server()) as url:
        opened = await PostgresStore.open(url)
        yield opened
        await opened.close()
