"""Account records for store tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

from dialer.core.models import AccountRecord

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def record(account_id: str, phone: str = "+12025550101", name: str = "Test") -> AccountRecord:
    return AccountRecord(
        account_id,
        f"D-{account_id}",
        name,
        phone,
        "US",
        ("America/New_York",),
        True,
        123450,
        "USD",
        date(2026, 12, 1),
        "en-US",
    )


def borrower(
    account_id: str,
    phone: str,
    zone: str = "America/New_York",
    language: str = "en-US",
    name: str = "Olivia",
    currency: str = "USD",
    amount_minor: int = 12345,
) -> AccountRecord:
    """A borrower for the SMS tests and benchmarks: its own number and zone, due 2026-12-20."""
    region = "CN" if phone.startswith("+86") else "US"
    return AccountRecord(
        account_id,
        f"D-{account_id}",
        name,
        phone,
        region,
        (zone,),
        False,
        amount_minor,
        currency,
        date(2026, 12, 20),
        language,
    )
