"""The command line as a user runs it, in-process through click's runner, on a test's own config."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from duecall.cli import main
from tests.support.config import write_config


def config(tmp_path: Path) -> Path:
    """A duecall.toml with its own database and state folder, importing CN borrowers by default."""
    return write_config(
        tmp_path / "duecall.toml",
        {
            "store": {"path": str(tmp_path / "d.db")},
            "asterisk": {"state_dir": str(tmp_path / "var")},
            "accounts": {"default_region": "CN", "default_currency": "CNY", "default_language": "zh-CN"},
        },
    )


def duecall(cfg: Path, *args: str) -> tuple[int, str]:
    """Run `duecall --config CFG ARGS...`: its exit code and what it printed."""
    result = CliRunner().invoke(main, ["--config", str(cfg), *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output
