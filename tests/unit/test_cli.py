"""The `duecall` command as a user runs it (in-process through click's runner)."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.support.borrowers import borrowers_csv
from tests.support.cli import config, duecall

DATA = Path(__file__).parents[1] / "data"


def test_import_reports_bad_rows_and_keeps_them(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    rows = [("A1", "13912345678", ""), ("A2", "12345", ""), ("A3", "+12025550101", "Mars/Base")]
    path = borrowers_csv(tmp_path / "in.csv", rows)
    code, out = duecall(cfg, "accounts", "import", str(path), "--rejects", str(tmp_path / "bad.csv"))
    assert code == 0, out
    assert "3 rows: 1 new, 0 updated, 2 rejected" in out
    assert "row 3: phone" in out and "row 4: time_zone" in out
    with (tmp_path / "bad.csv").open(encoding="utf-8-sig") as handle:  # BOM: opens in Excel
        kept = list(csv.DictReader(handle))
    assert [r["account_id"] for r in kept] == ["A2", "A3"]
    assert [r["row_number"] for r in kept] == ["3", "4"]
    code, out = duecall(cfg, "accounts", "import", str(path), "--rejects", str(tmp_path / "bad.csv"))
    assert "0 new, 1 updated, 2 rejected" in out  # re-import updates, never duplicates


def test_missing_columns_name_the_file_and_columns(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    path = tmp_path / "cols.csv"
    path.write_text("account_id,name\nA1,x\n", encoding="utf-8")
    code, out = duecall(cfg, "accounts", "import", str(path))
    assert code == 1
    assert str(path) in out and "phone" in out


def test_bad_setting_names_file_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "duecall.toml"
    cfg.write_text('[dialer]\ncalls_per_second = -3\nring_timeout = "soon"\n', encoding="utf-8")
    code, out = duecall(cfg, "status", "x")
    assert code == 1
    assert str(cfg) in out
    assert "dialer.calls_per_second" in out and "dialer.ring_timeout" in out


def test_unknown_campaign_is_a_clear_error(tmp_path: Path) -> None:
    code, out = duecall(config(tmp_path), "status", "nope")
    assert code == 1 and "no campaign named 'nope'" in out


def test_campaign_create_and_status(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    path = borrowers_csv(tmp_path / "in.csv", [("A1", "13912345678", ""), ("A2", "13912345679", "")])
    duecall(cfg, "accounts", "import", str(path))
    code, out = duecall(cfg, "campaign", "create", "nov")
    assert code == 0 and "2 accounts added" in out
    code, out = duecall(cfg, "status", "nov")
    assert code == 0 and "pending" in out and "+8613912345678" in out


def test_run_without_asterisk_set_up_says_what_to_do(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    duecall(cfg, "campaign", "create", "nov")
    code, out = duecall(cfg, "run", "nov")
    assert code == 1 and "duecall asterisk up" in out


def test_preferences_are_recorded_and_checked(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    code, out = duecall(
        cfg,
        "accounts",
        "preferences",
        "+12025550101",
        "--inconvenient",
        "12:00-13:00",
        "--consent",
        "2026-11-30T20:00:00-05:00/2026-11-30T23:00:00-05:00",
    )
    assert code == 0 and "1 inconvenient time(s), 1 consent window(s)" in out
    code, out = duecall(cfg, "accounts", "preferences", "+12025550101", "--inconvenient", "noon")
    assert code == 1 and "preferences:" in out
