"""Borrowers' CSV files as the lender sends them."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
