"""Time dialer.accounts.read_accounts on a generated 100,000-row CSV.

Run: .venv/bin/python bench/bench_import_parse.py [--rows N] [--profile]

The file mixes Chinese mobiles (national form), US numbers (international
form, several zones), stated time zones, thousands separators and about 1%
bad rows, with a fixed random seed so runs are comparable.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import pstats
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.accounts.parse import AccountRecord, ImportSettings, read_accounts

HEADER = ["account_id", "debt_id", "name", "phone", "time_zone", "amount", "currency", "due_date", "language"]
US_AREA_CODES = ["202", "212", "312", "415", "208", "605", "701", "915", "971", "305"]
SURNAMES = "王李张刘陈杨黄赵吴周"


def make_row(i: int, rng: random.Random) -> list[str]:
    due = (date(2025, 1, 1) + timedelta(days=rng.randrange(120))).isoformat()
    amount = f"{rng.randrange(100, 5_000_000) / 100:,.2f}"
    if rng.random() < 0.7:
        phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
        row = [f"CN{i:07d}", "", rng.choice(SURNAMES) + "小明", phone, "", amount, "CNY", due, "zh-CN"]
    else:
        phone = f"+1 {rng.choice(US_AREA_CODES)} {rng.randrange(200, 1000)} {rng.randrange(10**4):04d}"
        zone = "America/New_York" if rng.random() < 0.1 else ""
        row = [f"US{i:07d}", f"D{i}", "John Smith", phone, zone, amount, "USD", due, "en-US"]
    if rng.random() < 0.01:
        row[rng.choice([3, 5, 7])] = "garbage"
    return row


def write_file(path: Path, rows: int) -> None:
    rng = random.Random(1)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(make_row(i, rng) for i in range(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--workers", type=int, default=None, help="processes for phone checks")
    args = parser.parse_args()
    settings = ImportSettings(default_region="CN", default_currency="CNY", default_language="zh-CN")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "accounts.csv"
        write_file(path, args.rows)
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        results = list(read_accounts(path, settings, workers=args.workers))
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
    good = sum(isinstance(result, AccountRecord) for result in results)
    print(f"{len(results)} rows ({good} good, {len(results) - good} rejected) in {elapsed:.2f} s")
    print(f"{len(results) / elapsed:,.0f} rows/s")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
