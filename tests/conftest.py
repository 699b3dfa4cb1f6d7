"""Shared fixtures. Tests marked `asterisk` run against the real Asterisk the suite starts."""

from __future__ import annotations

import csv
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dialer.asterisk.host import AmiCredentials, provision, start
from dialer.core.config import Settings, load_settings, merge

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = PROJECT_ROOT / "var"


@pytest.fixture(scope="session")
def asterisk() -> Iterator[AmiCredentials]:
    """AMI credentials of our Asterisk, (re)started once so it runs the config in the working tree.

    It is left running after the session: the next one reuses the chroot and restarts it in a second.
    """
    install = provision(PROJECT_ROOT, STATE_DIR)
    yield start(install, PROJECT_ROOT, STATE_DIR)


# Zones to pick a borrower's home from, so real-clock tests run at any hour of the day.
ZONES = (
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Europe/London",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Asia/Seoul",
)


def daytime_zone(now: datetime | None = None) -> str:
    """A zone where it is now comfortably inside 08:00-21:00 (at least an hour of margin)."""
    now = now or datetime.now(UTC)
    for zone in ZONES:
        local = now.astimezone(ZoneInfo(zone))
        if 9 <= local.hour < 19:
            return zone
    raise AssertionError("no daytime zone found")  # 8 zones around the globe: cannot happen


@pytest.fixture
def work_dir() -> Iterator[Path]:
    """A folder inside the project root, so the chroot's Asterisk sees the same path (recordings)."""
    path = PROJECT_ROOT / "var" / "test" / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


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


HEADER = ["account_id", "debt_id", "name", "phone", "time_zone", "amount", "currency", "due_date", "language"]


def borrowers_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """rows: (account id, phone, time zone) -> a CSV DueCall imports."""
    due = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for account_id, phone, zone in rows:
            writer.writerow(
                [account_id, "", f"Borrower {account_id}", phone, zone, "1234.50", "USD", due, "en-US"]
            )
    return path
