"""The project's own PostgreSQL (issue 15): a real cluster from Debian's `postgresql` package, started
once for the session; a fresh database per test; start twice, a killed server, stop, the CLI, and
the errors that name the setting or the package to install."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from dialer.core.config import load_settings
from dialer.core.errors import ConfigError, StoreError
from dialer.store import pg_cluster
from dialer.store.pg_cluster import PgServer
from tests.support.cli import duecall
from tests.support.config import write_config
from tests.support.postgres import (
    TEST_PORT,
    TEST_STATE_DIR,
    postgres_db,  # noqa: F401 (a fixture)
    postgres_server,  # noqa: F401 (a fixture)
    start_test_server,
)
from tests.support.project import STATE_DIR

# Killing and stopping happen on a cluster of this module's own: the session's stays up for every
# other test, and for a session running beside this one.
CRASH_DIR = STATE_DIR / "postgres-crash"
CRASH_PORT = 55434
BUSY_PORT = 55435


@pytest.fixture(scope="module")
def crash_dir() -> Iterator[Path]:
    pg_cluster.start(CRASH_DIR, port=CRASH_PORT, fsync=False)
    yield CRASH_DIR
    pg_cluster.stop(CRASH_DIR)


def wait_stopped(state_dir: Path, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while pg_cluster.status(state_dir)["running"]:
        assert time.monotonic() < deadline, f"PostgreSQL in {state_dir} still runs after {seconds} s"
        time.sleep(0.02)


async def answers(url: str) -> int:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        value: int = await conn.fetchval("SELECT 40 + 2")
        return value
    finally:
        await conn.close()


async def test_a_fresh_database_takes_an_asyncpg_connection(postgres_db: str) -> None:  # noqa: F811
    conn = await asyncpg.connect(postgres_db, timeout=10)
    try:
        assert await conn.fetchval("SELECT current_database()") == postgres_db.rsplit("/", 1)[1]
        assert (
            await conn.fetchval("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")
            == 0
        )
        await conn.execute("CREATE TABLE promises (account text PRIMARY KEY, amount_minor bigint NOT NULL)")
        await conn.execute("INSERT INTO promises VALUES ($1, $2)", "A-1", 12_345)
        assert await conn.fetchval("SELECT amount_minor FROM promises WHERE account = 'A-1'") == 12_345
        assert int(await conn.fetchval("SHOW server_version_num")) >= 150000
        assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
        assert await conn.fetchval("SHOW unix_socket_directories") == str(TEST_STATE_DIR / "run")
        assert await conn.fetchval("SHOW fsync") == "off"
        assert await conn.fetchval("SHOW TimeZone") == "UTC"
    finally:
        await conn.close()


async def test_every_connection_needs_the_password(postgres_server: PgServer) -> None:  # noqa: F811
    s = postgres_server
    for host in (s.host, str(TEST_STATE_DIR / "run")):  # TCP on loopback, then the unix socket
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host=host, port=s.port, user=s.user, password="wrong", database="duecall")
        conn = await asyncpg.connect(
            host=host, port=s.port, user=s.user, password=s.password, database="duecall"
        )
        await conn.close()


def test_files_are_private_and_the_server_is_not_root(postgres_server: PgServer) -> None:  # noqa: F811
    password = pg_cluster.password_file(TEST_STATE_DIR)
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    assert password.read_text().strip() == postgres_server.password
    assert pg_cluster.url(TEST_STATE_DIR, "x") == (
        f"postgresql://duecall:{postgres_server.password}@127.0.0.1:{TEST_PORT}/x"
    )
    pid = pg_cluster.status(TEST_STATE_DIR)["pid"]
    assert isinstance(pid, int)
    owner = Path(f"/proc/{pid}").stat().st_uid
    if os.geteuid() == 0:
        assert owner == pwd.getpwnam("postgres").pw_uid  # PostgreSQL refuses root
        assert (TEST_STATE_DIR / "data").stat().st_uid == owner
    assert stat.S_IMODE((TEST_STATE_DIR / "data").stat().st_mode) == 0o700


def test_start_twice_is_fine(postgres_server: PgServer) -> None:  # noqa: F811
    pid = pg_cluster.status(TEST_STATE_DIR)["pid"]
    assert start_test_server() == postgres_server
    assert pg_cluster.status(TEST_STATE_DIR)["pid"] == pid  # found running, not restarted


async def test_fresh_databases_are_dropped_after(postgres_server: PgServer) -> None:  # noqa: F811
    url = pg_cluster.create_database(postgres_server, "test_dropped_after")
    assert await answers(url) == 42
    pg_cluster.drop_database(postgres_server, "test_dropped_after")
    pg_cluster.drop_database(postgres_server, "test_dropped_after")  # gone already: fine
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await answers(url)


async def test_a_killed_server_starts_again(crash_dir: Path) -> None:
    pg_cluster.start(crash_dir, port=CRASH_PORT, fsync=False)
    pid = pg_cluster.status(crash_dir)["pid"]
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)  # its postmaster.pid and socket lock stay behind, naming a zombie
    wait_stopped(crash_dir)
    assert (crash_dir / "data" / "postmaster.pid").exists()
    server = pg_cluster.start(crash_dir, port=CRASH_PORT, fsync=False)
    assert pg_cluster.status(crash_dir)["pid"] not in (None, pid)
    assert await answers(server.url()) == 42


async def test_a_pid_file_naming_another_live_process_is_stale(crash_dir: Path) -> None:
    pg_cluster.stop(crash_dir)
    # A pid reused after a reboot: PostgreSQL alone would take this process for a server and refuse.
    (crash_dir / "data" / "postmaster.pid").write_text(f"{os.getpid()}\n{crash_dir / 'data'}\n")
    server = pg_cluster.start(crash_dir, port=CRASH_PORT, fsync=False)
    assert await answers(server.url()) == 42


def test_stop_works_and_twice_is_fine(crash_dir: Path) -> None:
    pg_cluster.start(crash_dir, port=CRASH_PORT, fsync=False)
    pg_cluster.stop(crash_dir)
    assert pg_cluster.status(crash_dir)["running"] is False
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", CRASH_PORT), timeout=2),
    ):
        pass
    pg_cluster.stop(crash_dir)


def test_clients_name_the_one_subnet_that_may_connect_over_tcp() -> None:
    state = STATE_DIR / "postgres-clients"
    hba = state / "data" / "pg_hba.conf"
    try:
        pg_cluster.init(state, host="10.231.15.10", port=55441, fsync=False, clients="10.231.15.0/24")
        assert hba.read_text().splitlines()[-1] == "host all all 10.231.15.0/24 scram-sha-256"
        assert "samenet" not in hba.read_text()
        pg_cluster.init(state, host="10.231.15.10", port=55441, fsync=False)  # no subnet given
        assert hba.read_text().splitlines()[-1] == "host all all samenet scram-sha-256"
        with pytest.raises(StoreError, match=r"clients '10.231.15.0/33' is not a subnet"):
            pg_cluster.init(state, host="10.231.15.10", clients="10.231.15.0/33")
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_a_busy_port_names_the_setting(crash_dir: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", BUSY_PORT))
        holder.listen()
        with pytest.raises(StoreError, match=rf"\[postgres\] port {BUSY_PORT} on 127.0.0.1 cannot be used"):
            pg_cluster.start(crash_dir, port=BUSY_PORT, fsync=False)


def test_the_command_line_up_status_url_down(crash_dir: Path, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "duecall.toml",
        {"postgres": {"state_dir": str(crash_dir), "port": CRASH_PORT, "fsync": False}},
    )
    code, out = duecall(cfg, "postgres", "up")
    assert code == 0, out
    assert f"is up on 127.0.0.1:{CRASH_PORT} (user duecall, password in {crash_dir}/password)" in out
    code, out = duecall(cfg, "postgres", "status")
    assert code == 0 and "'running': True" in out, out
    code, out = duecall(cfg, "postgres", "url", "--database", "other")
    assert (code, out.strip()) == (0, pg_cluster.url(crash_dir, "other"))
    code, out = duecall(cfg, "postgres", "down")
    assert code == 0 and "stopped" in out, out
    code, out = duecall(cfg, "postgres", "status")
    assert code == 0 and "'running': False" in out, out


@pytest.mark.parametrize(
    ("section", "field", "why"),
    [
        ("port = 0", "postgres.port", "greater than or equal to 1024"),
        ("port = 70000", "postgres.port", "less than or equal to 65535"),
        ('port = "x"', "postgres.port", "valid integer"),
        ('host = "localhost"', "postgres.host", "'localhost' is not an IP address"),
        ('host = "127.0.0.1 -c fsync=off"', "postgres.host", "is not an IP address"),
        ('fsync = "sometimes"', "postgres.fsync", "valid boolean"),
        ('clients = "10.0.0.0/33"', "postgres.clients", "is not a subnet"),
        ('clients = "all"', "postgres.clients", "'all' is not a subnet"),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, section: str, field: str, why: str) -> None:
    path = tmp_path / "duecall.toml"
    path.write_text(f"[postgres]\n{section}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert f"{path}: invalid settings" in str(info.value)
    assert f"  {field}: " in str(info.value) and why in str(info.value), str(info.value)


def test_no_postgresql_says_which_package_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_cluster, "SEARCH_ROOT", tmp_path / "lib")
    with pytest.raises(
        StoreError, match=r"PostgreSQL 15\+ not found .*found: none.*apt-get install postgresql"
    ):
        pg_cluster.start(tmp_path / "state", port=55436)
    old = tmp_path / "lib" / "13" / "bin"
    old.mkdir(parents=True)
    for tool in pg_cluster.TOOLS:
        (old / tool).touch()
    with pytest.raises(StoreError, match=r"found: 13\).*install Debian's `postgresql` package"):
        pg_cluster.find_binaries()
    assert not (tmp_path / "state" / "data").exists()  # nothing made before the binaries were found


def test_the_newest_postgresql_is_chosen(tmp_path: Path) -> None:
    for major in ("15", "17", "16", "9"):
        bindir = tmp_path / major / "bin"
        bindir.mkdir(parents=True)
        for tool in pg_cluster.TOOLS:
            (bindir / tool).touch()
    assert pg_cluster.find_binaries(search_root=tmp_path) == pg_cluster.PgBinaries(
        17, tmp_path / "17" / "bin"
    )
    assert pg_cluster.find_binaries(15, search_root=tmp_path).version == 15  # an existing cluster's
