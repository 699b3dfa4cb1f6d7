"""Settings for a test, written as a real duecall.toml and loaded by the real loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dialer.core.config import Settings, load_settings, merge
from tests.support.project import STATE_DIR


def make_settings(work_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: its own database and recordings, the suite's Asterisk, quick retries."""
    base: dict[str, Any] = {
        "store": {"path": str(work_dir / "duecall.db"), "synchronous": "NORMAL"},
        "asterisk": {"state_dir": str(STATE_DIR)},
        "dialer": {
            "recordings_dir": str(work_dir / "recordings"),
            "ring_timeout": "4s",
            "amd": True,
            "calls_per_second": 20,
            "max_concurrent": 20,
            "prompt": "demo-thanks",
            "shutdown_grace": "60s",
            "poll_interval": "0.2s",
        },
        # The dialer tests use the dialplan's one-key broadcast; the IVR tests switch the IVR on.
        "ivr": {"enabled": False, "prompts_dir": str(STATE_DIR / "prompts")},
        "retry": {
            d: {"delay": "1s", "max_attempts": 1}
            for d in ("no_answer", "busy", "failed", "machine", "hung_up_early", "unknown")
        },
    }
    merge(base, overrides)
    return load_settings(write_config(work_dir / "duecall.toml", base))


def write_config(path: Path, data: dict[str, Any]) -> Path:
    lines: list[str] = []
    _toml(lines, [], data)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(lines: list[str], prefix: list[str], data: dict[str, Any]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    if prefix and scalars:
        lines.append(f"[{'.'.join(prefix)}]")
    for key, value in scalars.items():
        lines.append(f"{key} = {_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            _toml(lines, [*prefix, key], value)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
