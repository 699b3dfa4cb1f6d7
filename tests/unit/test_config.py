"""Settings: hostile values in duecall.toml are refused at load, naming the file and the key."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from dialer.core.config import MAX_DURATION, load_settings, parse_duration
from dialer.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "duecall.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid settings"), message
    return message


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("-1", "finite and not negative"),  # purge would list every recording
        ("-0.5", "finite and not negative"),
        ("inf", "finite and not negative"),  # was an OverflowError traceback
        ("-inf", "finite and not negative"),
        ("nan", "finite and not negative"),
        ("1e300", "longer than 100 years"),
        ('"99999999999999999999d"', "longer than 100 years"),  # overflows timedelta
        ('"9' + "9" * 400 + 's"', "finite and not negative"),  # a float that is inf
        ("0", "longer than zero"),
        ('"0d"', "longer than zero"),
        ('"-3d"', "is not a duration like"),
        ("true", "is not a duration like"),
    ],
)
def test_recordings_retention_must_be_positive_and_finite(tmp_path: Path, value: str, why: str) -> None:
    message = refused(tmp_path, f"[audit]\nrecordings_retention = {value}\n")
    assert "audit.recordings_retention: " in message and why in message, message


@pytest.mark.parametrize("key", ["connect_timeout", "action_timeout", "ping_interval", "reconnect_delay"])
def test_every_timeout_refuses_zero_negative_and_inf(tmp_path: Path, key: str) -> None:
    for value in ("0", "-1", "inf"):
        assert f"asterisk.{key}: " in refused(tmp_path, f"[asterisk]\n{key} = {value}\n")


def test_a_retry_delay_may_be_zero_but_not_negative(tmp_path: Path) -> None:
    path = tmp_path / "duecall.toml"
    path.write_text("[retry.busy]\ndelay = 0\nmax_attempts = 2\n", encoding="utf-8")
    assert load_settings(path).retry["busy"].delay == timedelta(0)  # type: ignore[index]
    message = refused(tmp_path, "[retry.busy]\ndelay = -60\nmax_attempts = 2\n")
    assert "retry.busy.delay: " in message


def test_parse_duration_bounds() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration(MAX_DURATION.total_seconds()) == MAX_DURATION
    for bad in (float("inf"), float("nan"), -1, 10**30, timedelta(days=-1)):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("default_region", "XX", "not a region"),
        ("default_region", "us", "not a region"),
        ("default_region", "USA", "not a region"),
        ("default_currency", "ZZZ", "not an ISO 4217 currency code"),
        ("default_currency", "XAU", "no minor unit"),
        ("default_language", "klingon", "not a valid BCP 47 language tag"),
        ("default_language", "", "not a valid BCP 47 language tag"),
        ("default_language", "en-", "not a valid BCP 47 language tag"),
    ],
)
def test_accounts_defaults_are_checked_at_load(tmp_path: Path, key: str, value: str, why: str) -> None:
    message = refused(tmp_path, f'[accounts]\n{key} = "{value}"\n')
    assert f"accounts.{key}: " in message and why in message, message


def test_good_accounts_defaults_load(tmp_path: Path) -> None:
    path = tmp_path / "duecall.toml"
    path.write_text(
        '[accounts]\ndefault_region = "CN"\ndefault_currency = "CNY"\ndefault_language = "zh-CN"\n'
    )
    accounts = load_settings(path).accounts
    assert (accounts.default_region, accounts.default_currency, accounts.default_language) == (
        "CN",
        "CNY",
        "zh-CN",
    )


def test_shipped_settings_file_loads() -> None:
    load_settings(ROOT / "duecall.toml")


def test_import_with_a_bad_default_is_a_settings_error_not_a_traceback(tmp_path: Path) -> None:
    """The reviewer's case: a bad [accounts] default failed only at import, with a traceback."""
    config = tmp_path / "duecall.toml"
    config.write_text('[accounts]\ndefault_region = "XX"\n', encoding="utf-8")
    rows = tmp_path / "borrowers.csv"
    rows.write_text("account_id,phone,name,amount,due_date\nA1,2025550101,Ann,10.00,2026-12-01\n")
    result = subprocess.run(
        [sys.executable, "-m", "duecall", "--config", str(config), "accounts", "import", str(rows)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert "accounts.default_region" in result.stdout + result.stderr
    assert not (tmp_path / "var").exists()  # nothing was written


def test_an_unknown_policy_pack_is_refused_at_load(tmp_path: Path) -> None:
    message = refused(tmp_path, '[policy]\npack = "cn-strict"\n')
    assert (
        "policy.pack: unknown policy pack 'cn-strict' (known: cn, cn-as-written, us-ma, us-regf)" in message
    )
    path = tmp_path / "duecall.toml"
    path.write_text('[policy]\npack = "cn-as-written"\n', encoding="utf-8")
    assert load_settings(path).policy.pack == "cn-as-written"
