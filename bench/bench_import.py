"""End-to-end import: a generated 100,000-row CSV into a fresh SQLite database, then again
(every row an update). Prints rows per second for both.

Run: .venv/bin/python bench/bench_import.py [--rows N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_import_parse import write_file
from dialer.accounts.importer import import_accounts
from dialer.accounts.parse import ImportSettings
from dialer.store import SqliteStore


async def run(rows: int, folder: Path) -> None:
    csv_path = folder / "borrowers.csv"
    write_file(csv_path, rows)
    store = await SqliteStore.open(folder / "bench.db")
    settings = ImportSettings("CN", None, "zh-CN")
    try:
        for label in ("first import", "re-import"):
            start = time.perf_counter()
            report = await import_accounts(
                store, csv_path, settings, datetime.now(UTC), folder / "rejects.csv"
            )
            took = time.perf_counter() - start
            print(
                f"{label}: {report.rows} rows in {took:.2f} s = {report.rows / took:,.0f} rows/s "
                f"({report.inserted} new, {report.updated} updated, {len(report.rejects)} rejected)"
            )
    finally:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.rows, Path(tmp)))
