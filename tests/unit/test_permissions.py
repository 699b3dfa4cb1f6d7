"""Item 10 of issue 9: what DueCall writes is readable by its own user only (0600 files, 0700 folders).

Tests run as root, who reads everything, so modes are checked with stat rather than by reading as
another user. Each test starts from the usual umask 022, under which the files used to be 0644.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.asterisk import host as asterisk_host
from dialer.asterisk.host import AsteriskInstall
from dialer.store import SqliteStore
from duecall.cli import main
from tests.support.borrowers import borrowers_csv
from tests.support.config import write_config
from tests.support.permissions import assert_private
from tests.support.permissions import usual_umask as support_umask
from tests.support.project import PROJECT_ROOT

TRUNK_PASSWORD = "s3cret-from-the-carrier"


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    yield from support_umask()


def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "duecall.toml",
        {
            "store": {"path": str(tmp_path / "data" / "d.db")},
            "asterisk": {"state_dir": str(tmp_path / "var")},
            "dialer": {"recordings_dir": str(tmp_path / "recordings")},
            "accounts": {"default_region": "US", "default_currency": "USD", "default_language": "en-US"},
        },
    )


def test_cli_import_writes_a_private_database_and_rejects_file(tmp_path: Path) -> None:
    rows = [("A1", "+12025550101", "America/New_York"), ("A2", "12345", "America/New_York")]
    path = borrowers_csv(tmp_path / "in.csv", rows)
    result = CliRunner().invoke(main, ["--config", str(config(tmp_path)), "accounts", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 rejected" in result.output
    rejects = tmp_path / "var" / "rejects" / "in-rejects.csv"
    assert "A2" in rejects.read_text(encoding="utf-8-sig")  # the borrower's row, kept for fixing
    assert_private(tmp_path / "data" / "d.db", rejects, rejects.parent)
    assert os.umask(0o022) == 0o022  # the command put the caller's umask back


def test_cli_tightens_folders_an_older_version_left_open(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    folders = [tmp_path / "recordings", tmp_path / "var" / "rejects", tmp_path / "var" / "prompts"]
    for folder in folders:
        folder.mkdir(parents=True, mode=0o755)
    (tmp_path / "recordings" / "old.wav").write_bytes(b"RIFF")
    result = CliRunner().invoke(main, ["--config", str(cfg), "asterisk", "status"])
    assert result.exit_code == 0, result.output
    assert_private(*folders)


async def test_store_database_wal_and_shm_are_private(tmp_path: Path) -> None:
    db = tmp_path / "new" / "duecall.db"
    store = await SqliteStore.open(db)
    try:
        await store.create_campaign("c", datetime.now(UTC))  # a write: the WAL and SHM exist now
        assert_private(db, Path(f"{db}-wal"), Path(f"{db}-shm"))
    finally:
        await store.close()


async def test_store_tightens_a_database_an_older_version_left_open(tmp_path: Path) -> None:
    db = tmp_path / "duecall.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE kept (x)")
        conn.execute("INSERT INTO kept VALUES ('borrower data')")
    conn.close()
    leftovers = [Path(f"{db}-wal"), Path(f"{db}-shm")]  # as a killed process leaves them
    for extra in leftovers:
        extra.write_bytes(b"")
    for path in (db, *leftovers):
        path.chmod(0o644)
    store = await SqliteStore.open(db)
    try:
        assert_private(db, *(p for p in leftovers if p.exists()))
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [("borrower data",)]  # nothing lost
    conn.close()


def fake_project(tmp_path: Path) -> Path:
    """A copy of the project's Asterisk config with a carrier trunk the operator made 0600."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "asterisk" / "conf", project / "asterisk" / "conf")
    trunk = project / "asterisk" / "conf" / "pjsip_trunk.conf"
    trunk.write_text(f"[carrier-auth]\ntype = auth\npassword = {TRUNK_PASSWORD}\n")
    trunk.chmod(0o600)
    return project


def test_rendered_asterisk_config_keeps_the_trunk_password_private(tmp_path: Path) -> None:
    project, state = fake_project(tmp_path), tmp_path / "state"
    old_base = state / "asterisk"
    (old_base / "etc").mkdir(parents=True, mode=0o755)  # as an older version left it
    (old_base / "etc" / "pjsip_trunk.conf").write_text("password = old\n")
    (old_base / "etc" / "pjsip_trunk.conf").chmod(0o644)
    (old_base / "lib").mkdir(mode=0o755)
    (old_base / "lib" / "astdb.sqlite3").write_bytes(b"")
    (old_base / "lib" / "astdb.sqlite3").chmod(0o644)
    install = AsteriskInstall("system", Path("/"), "Asterisk 22.0.0", Path("/mod"), Path("/data"))

    lay = asterisk_host.prepare_files(install, project, state, 5038)

    rendered = lay.etc / "pjsip_trunk.conf"
    assert TRUNK_PASSWORD in rendered.read_text()
    everything = [p for p in lay.base.rglob("*")]
    assert {p.name for p in everything} >= {
        "asterisk.conf",
        "manager_secret.conf",
        "ami_secret",
        "astdb.sqlite3",
    }
    assert_private(lay.base, *everything)
