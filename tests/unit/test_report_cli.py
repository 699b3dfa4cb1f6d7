"""`duecall report` as a user runs it (in-process through click's runner): tables, CSV, PNG, errors; on
a SQLite file and on a PostgreSQL database ([store] url)."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from duecall.cli.report import GROUPINGS
from reports.build import BYS
from tests.support.borrowers import borrowers_csv
from tests.support.cli import config, duecall
from tests.support.config import write_config
from tests.support.postgres import fresh_database, start_test_server
from tests.support.stores import BACKENDS


@pytest.fixture(params=BACKENDS)
def cfg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A duecall.toml of the backend: tests/support/cli.py's, or the same on a fresh database."""
    if request.param == "sqlite":
        yield config(tmp_path)
        return
    with fresh_database(start_test_server()) as url:
        yield write_config(
            tmp_path / "duecall.toml",
            {
                "store": {"url": url},
                "asterisk": {"state_dir": str(tmp_path / "var")},
                "accounts": {"default_region": "CN", "default_currency": "CNY", "default_language": "zh-CN"},
            },
        )


def campaign(cfg: Path, tmp_path: Path) -> None:
    rows = [(f"A{i}", f"1391234567{i}", "") for i in range(3)]
    code, out = duecall(cfg, "accounts", "import", str(borrowers_csv(tmp_path / "in.csv", rows)))
    assert code == 0, out
    code, out = duecall(cfg, "campaign", "create", "nov")
    assert code == 0, out


def test_the_report_prints_its_tables_and_writes_csv_and_plots(cfg: Path, tmp_path: Path) -> None:
    campaign(cfg, tmp_path)
    out_csv, out_png = tmp_path / "nov.csv", tmp_path / "plots"
    code, out = duecall(
        cfg, "report", "nov", "--since", "2026-11-01", "--csv", str(out_csv), "--png", str(out_png)
    )
    assert code == 0, out
    assert "campaign nov: contacts over the whole campaign" in out and "from 2026-11-01" in out
    assert "Contact rate" in out and "no accounts attempted: no rate" in out  # 3 accounts, no call yet
    with out_csv.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    contact = next(r for r in rows if r["metric"] == "contact_rate")
    assert (contact["group"], contact["numerator"], contact["denominator"], contact["value"]) == (
        "all",
        "0",
        "0",
        "",
    )
    names = sorted(p.name for p in out_png.iterdir())
    assert names == ["arms.png", "curves.png", "funnel.png", "hours.png", "roll_rates.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in out_png.iterdir())
    assert str(out_png / "funnel.png") in out


def test_by_a_grouping(cfg: Path, tmp_path: Path) -> None:
    campaign(cfg, tmp_path)
    code, out = duecall(cfg, "report", "nov", "--by", "bucket")
    assert code == 0, out
    assert "by bucket" in out
    code, out = duecall(cfg, "report", "nov", "--by", "hour")
    assert code == 2 and "hour" in out  # click's own usage error names the choices


def test_errors_name_the_thing(cfg: Path, tmp_path: Path) -> None:
    campaign(cfg, tmp_path)
    code, out = duecall(cfg, "report", "dec")
    assert code == 1 and "no campaign named 'dec'" in out
    code, out = duecall(cfg, "report", "nov", "--since", "1 Nov")
    assert code == 1 and "--since '1 Nov': not a date like 2026-11-01" in out
    code, out = duecall(cfg, "report", "nov", "--since", "2999-01-01")
    assert code == 1 and "--since 2999-01-01: after today" in out
    code, out = duecall(cfg, "report", "nov", "--csv", str(tmp_path / "missing" / "r.csv"))
    assert code == 1 and f"{tmp_path / 'missing' / 'r.csv'}: No such file or directory" in out
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    code, out = duecall(cfg, "report", "nov", "--png", str(blocker / "plots"))
    assert code == 1 and str(blocker) in out and "Traceback" not in out


def test_other_commands_do_not_load_the_reports() -> None:
    # scipy, statsmodels and matplotlib take over a second to import: only `duecall report` pays it.
    heavy = "('matplotlib', 'scipy', 'reports.build')"
    code = f"import sys, duecall.cli; print([m for m in {heavy} if m in sys.modules])"
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "[]"
    assert tuple(b for b in BYS if b) == GROUPINGS
