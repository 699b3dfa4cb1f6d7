"""The CLI's one error boundary (duecall/cli/errors.py): every command group, given a bad input,
says what is wrong in one line on stderr and exits 1; Ctrl-C exits 130; a bug keeps its traceback."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import duecall.cli.asterisk as asterisk_cli
from duecall.cli import main
from tests.support.borrowers import borrowers_csv
from tests.support.config import write_config
from tests.support.project import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "ivr" / "scripts" / "reminder-en-US.yaml"


def config(tmp_path: Path, **store: str) -> Path:
    return write_config(
        tmp_path / "duecall.toml",
        {
            "store": {"path": str(tmp_path / "d.db"), **store},
            "asterisk": {"state_dir": str(tmp_path / "var")},
            "audit": {"anchor_file": str(tmp_path / "anchors.log")},
        },
    )


def run(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin)


def assert_one_line_error(result: Result, *expected: str) -> str:
    """Exit 1, exactly one line on stderr (`duecall: error: ...`), nothing else, no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # not a bug's exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("duecall: error: "), result.stderr
    assert "Traceback" not in result.output
    for part in expected:
        assert part in lines[0], (part, lines[0])
    return lines[0]


# One command of every group (and each top-level command): the settings are read before any of them.
EVERY_GROUP = [
    ["accounts", "import", str(SCRIPT)],
    ["accounts", "opt-out", "+12025550101"],
    ["asterisk", "status"],
    ["audit", "verify"],
    ["audit", "anchor"],
    ["audit", "user", "list"],
    ["audit", "serve"],
    ["recordings", "purge", "--dry-run"],
    ["campaign", "create", "nov"],
    ["run", "nov"],
    ["status", "nov"],
    ["ivr", "render", str(SCRIPT)],
    ["policy", "check", str(SCRIPT)],
    ["demo"],
]


@pytest.mark.parametrize("command", EVERY_GROUP, ids=lambda c: " ".join(c[:2]))
def test_a_bad_settings_file_is_one_line_for_every_command(tmp_path: Path, command: list[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[dialer]\ncalls_per_second = -3\nring_timeout = "soon"\n', encoding="utf-8")
    line = assert_one_line_error(run("--config", bad, *command), str(bad), "invalid settings")
    assert "dialer.calls_per_second" in line and "dialer.ring_timeout" in line  # both, on the one line
    folder = tmp_path / "conf.d"
    folder.mkdir()
    # Was an IsADirectoryError traceback.
    assert_one_line_error(run("--config", folder, *command), f"{folder}: Is a directory")
    missing = tmp_path / "nope.toml"
    assert_one_line_error(run("--config", missing, *command), f"{missing}: settings file not found")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "conf.d"]  # nothing was written


def test_accounts_bad_files(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cols = tmp_path / "cols.csv"
    cols.write_text("account_id,name\nA1,x\n", encoding="utf-8")
    assert_one_line_error(run("--config", cfg, "accounts", "import", cols), str(cols), "phone")
    rejected = borrowers_csv(tmp_path / "in.csv", [("A1", "12345", "")])  # one row to reject
    folder = tmp_path / "rejects"
    folder.mkdir()
    # Was an IsADirectoryError traceback when the rejected rows were written.
    cmd = ("--config", cfg, "accounts", "import", rejected, "--rejects", folder)
    assert_one_line_error(run(*cmd), f"{folder}: Is a directory")
    bad_time = ("--config", cfg, "accounts", "preferences", "+12025550101", "--inconvenient", "25:00-26:00")
    assert_one_line_error(run(*bad_time), "preferences: hour must be in 0..23")


def test_a_folder_for_a_database_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    cfg = config(tmp_path, path=str(folder))
    for command in (["campaign", "create", "nov"], ["recordings", "purge"], ["accounts", "opt-out", "+1202"]):
        assert_one_line_error(run("--config", cfg, *command), str(folder), "cannot open the database")
    # The auditors' read-only commands open the file themselves: was a sqlite3 traceback.
    for command in (["audit", "verify"], ["audit", "anchor"]):
        assert_one_line_error(run("--config", cfg, *command), f"{folder}: not a database file")
    not_ours = tmp_path / "notes.db"
    not_ours.write_text("not a database\n", encoding="utf-8")
    cfg = config(tmp_path, path=str(not_ours))
    assert_one_line_error(run("--config", cfg, "audit", "verify"), f"{not_ours}: cannot be read as a DueCall")


def test_audit_bad_inputs(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    db = tmp_path / "d.db"
    # Was a FileNotFoundError traceback.
    assert_one_line_error(run("--config", cfg, "audit", "anchor"), f"{db}: no such database")
    assert_one_line_error(run("--config", cfg, "audit", "verify"), f"{db}: no such database")
    assert_one_line_error(run("--config", cfg, "status", "nov"), "no campaign named 'nov'")  # makes d.db
    (tmp_path / "anchors.log").mkdir()
    # Was an IsADirectoryError traceback.
    assert_one_line_error(
        run("--config", cfg, "audit", "anchor"), f"{tmp_path / 'anchors.log'}: Is a directory"
    )
    latin = tmp_path / "latin.log"
    latin.write_bytes(b"\xff\xfe 1 2\n")
    cmd = ("--config", cfg, "audit", "verify", "--anchors", latin)
    assert_one_line_error(run(*cmd), "can't decode byte 0xff")
    garbage = tmp_path / "garbage.log"
    garbage.write_text("garbage\n", encoding="utf-8")
    cmd = ("--config", cfg, "audit", "check-bundle", SCRIPT, "--anchors", garbage)
    assert_one_line_error(run(*cmd), f"{garbage}:1: not 'SEQ HASH [TIME]'")
    short = ("--config", cfg, "audit", "user", "add", "cy", "--password-stdin")
    assert_one_line_error(run(*short, stdin="short\n"), "at least 12 characters")
    assert_one_line_error(
        run("--config", cfg, "audit", "user", "disable", "zed"), "zed: no such enabled user"
    )


def test_serve_with_a_session_key_others_can_read_is_one_line(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    key = tmp_path / "audit-secret.key"
    key.write_text("x" * 64 + "\n", encoding="ascii")
    key.chmod(0o644)
    assert_one_line_error(run("--config", cfg, "audit", "serve"), f"{key}: readable by others")


def test_campaign_and_ivr_bad_inputs(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert_one_line_error(run("--config", cfg, "run", "nov"), "no campaign named 'nov'")
    script = tmp_path / "bad.yaml"
    script.write_text("locale: en-US\nlender: &x [*x]\nstart: [1\n", encoding="utf-8")
    for command in (["render", script], ["try", script], ["lint", script, "--policy", "us-regf"]):
        assert_one_line_error(run("--config", cfg, "ivr", *command), f"{script}:")


def test_verdicts_and_usage_errors_keep_their_exit_codes(tmp_path: Path) -> None:
    """Not errors of the boundary: a validation report (one line per file), click's usage errors (2)."""
    cfg = config(tmp_path)
    script = tmp_path / "bad.yaml"
    script.write_text("locale: en-US\nlender: &x [*x]\n", encoding="utf-8")
    report = run("--config", cfg, "ivr", "validate", script, SCRIPT)
    assert report.exit_code == 1 and "duecall: error" not in report.output, report.output
    assert f"{script}:2: anchors and aliases" in report.output and "reminder-en-US.yaml: ok" in report.output
    usage = run("--config", cfg, "policy", "check", "--policy", "nope")
    assert usage.exit_code == 2 and "unknown policy pack 'nope'" in usage.output
    missing = run("--config", cfg, "accounts", "import", tmp_path / "nope.csv")
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_ctrl_c_is_one_line_and_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(state_dir: Path) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(asterisk_cli.asterisk_host, "status", interrupted)
    result = run("--config", config(tmp_path), "asterisk", "status")
    assert result.exit_code == 130 and result.stderr == "duecall: interrupted\n", result.output


@pytest.mark.parametrize("bug", [RuntimeError("a bug"), ConnectionResetError(104, "reset by peer")])
def test_a_bug_keeps_its_exception(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bug: Exception) -> None:
    """Only what a user can cause is turned into a line: an OSError naming no file is not."""

    def broken(state_dir: Path) -> str:
        raise bug

    monkeypatch.setattr(asterisk_cli.asterisk_host, "status", broken)
    result = run("--config", config(tmp_path), "asterisk", "status")
    assert result.exception is bug and result.exit_code == 1
    assert "duecall: error" not in result.output


def test_the_real_process_writes_one_line_and_no_traceback(tmp_path: Path) -> None:
    """`python -m duecall` as a user runs it: stdout empty, one line on stderr, exit 1, quickly."""
    cfg = config(tmp_path)
    env = {**os.environ, "COLUMNS": "80"}  # narrow: the line must not be wrapped either
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "duecall", "--config", str(cfg), "audit", "anchor"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    assert done.stderr == f"duecall: error: {tmp_path / 'd.db'}: no such database\n", done.stderr


def test_a_reader_closing_the_pipe_ends_the_command_quietly() -> None:
    """`duecall policy check < many.jsonl | head -1`: exit 1, no traceback (the boundary lets
    click's EPIPE handling do it, rather than reporting the pipe as an error)."""
    line = json.dumps(
        {
            "id": "x",
            "policy": "us-regf",
            "at": "2026-11-30T15:00:00Z",
            "channel": "voice",
            "consumer": {"time_zones": ["America/New_York"]},
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "duecall", "policy", "check", "--policy", "us-regf"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin = proc.stdin

    def feed() -> None:  # from a thread: the command's output fills its pipe long before this ends
        with contextlib.suppress(BrokenPipeError):
            try:
                stdin.write(("\n".join([line] * 20_000) + "\n").encode())
            finally:
                stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader leaves after one line, as head -1 does
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 1
    feeder.join(10)
    assert json.loads(first)["id"] == "x"
    assert "Traceback" not in err and "BrokenPipe" not in err, err
