"""Item 10 of issue 9: what DueCall writes is readable by its own user only (0600 files, 0700 folders).

Tests run as root, who reads everything, so modes are checked with stat rather than by reading as
another user. Each test starts from the usual umask 022, under which the files used to be 0644.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.asterisk import host as asterisk_host
from dialer.asterisk.host import AmiCredentials, AsteriskInstall
from dialer.store import Store
from duecall.cli import main
from tests.conftest import STATE_DIR, borrowers_csv, daytime_zone, make_settings, write_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TRUNK_PASSWORD = "s3cret-from-the-carrier"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(*paths: Path) -> None:
    """Files 0600 and folders 0700 (or tighter): nothing for group or others."""
    modes = {str(p): oct(mode(p)) for p in paths}
    assert all(mode(p) & 0o077 == 0 for p in paths), modes
    assert all(mode(p) & 0o600 == 0o600 for p in paths), modes  # and still usable by the owner


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask a shell usually has; the CLI must not leave its own private umask behind either."""
    old = os.umask(0o022)
    yield
    os.umask(old)


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
    store = await Store.open(db)
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
    store = await Store.open(db)
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


@pytest.mark.asterisk
def test_a_real_call_leaves_only_private_files(asterisk: AmiCredentials, work_dir: Path) -> None:
    """Import, campaign and run through the CLI; Asterisk's recording and every folder are private."""
    settings = make_settings(work_dir)
    cfg = str(work_dir / "duecall.toml")
    path = borrowers_csv(work_dir / "in.csv", [("P1", "+12025550101", daytime_zone())])
    runner = CliRunner()
    for args in (
        ["accounts", "import", str(path)],
        ["campaign", "create", "perm"],
        ["run", "perm", "--exit-when-idle"],
    ):
        result = runner.invoke(main, ["--config", cfg, *args])
        assert result.exit_code == 0, (args, result.output)
    with sqlite3.connect(settings.path(settings.store.path)) as conn:
        [(recording, disposition)] = conn.execute(
            "SELECT recording_path, disposition FROM attempts"
        ).fetchall()
    conn.close()
    assert disposition == "answered"
    wav = Path(f"{recording}.wav")
    assert wav.stat().st_size > 1000  # Asterisk recorded the call
    recordings = settings.path(settings.dialer.recordings_dir)
    folders = [wav.parent, *(p for p in wav.parents if recordings in p.parents or p == recordings)]
    state = STATE_DIR / "asterisk"
    assert_private(wav, *folders, settings.path(settings.store.path), state, state / "etc" / "pjsip.conf")
