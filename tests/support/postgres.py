"""The suite's PostgreSQL: one cluster for the session, a fresh empty database per test.

Use in a test module (or a conftest): `from tests.support.postgres import postgres_db, postgres_server`.
The cluster runs fsync off (a throwaway server) under STATE_DIR/postgres-test on its own port, so it
runs beside a `duecall postgres up` with the default settings. It is left running after the session,
like the suite's Asterisk: the next session finds it up at once, and a session still running
beside this one keeps its server. Stop it with `pg_cluster.stop(TEST_STATE_DIR)`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dialer.store import pg_cluster
from dialer.store.pg_cluster import PgServer
from tests.support.project import STATE_DIR

TEST_STATE_DIR = STATE_DIR / "postgres-test"
TEST_PORT = 55433


def start_test_server() -> PgServer:
    return pg_cluster.start(TEST_STATE_DIR, port=TEST_PORT, fsync=False)


@contextmanager
def fresh_database(server: PgServer) -> Iterator[str]:
    """A new empty database (from template0) for the block; its URL; dropped after, sessions and all."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = pg_cluster.create_database(server, name)
    try:
        yield url
    finally:
        pg_cluster.drop_database(server, name)


@pytest.fixture(scope="session")
def postgres_server() -> PgServer:
    """The suite's PostgreSQL, started (or found running) once per session."""
    return start_test_server()


@pytest.fixture
def postgres_db(postgres_server: PgServer) -> Iterator[str]:
    """URL of a fresh empty database for this test (postgresql://duecall:...@127.0.0.1:55433/test_...)."""
    with fresh_database(postgres_server) as url:
        yield url
