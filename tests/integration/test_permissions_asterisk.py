"""A real call through the CLI leaves only private files (issue 9 item 10): Asterisk's recording,
every folder, the database and the rendered Asterisk configuration."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.asterisk.host import AmiCredentials
from duecall.cli import main
from tests.support.borrowers import borrowers_csv
from tests.support.config import make_settings
from tests.support.permissions import assert_private
from tests.support.permissions import usual_umask as support_umask
from tests.support.project import STATE_DIR, daytime_zone


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    yield from support_umask()


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
