"""How the store writes a time: UTC, ISO 8601 text with microseconds and a 'Z' (sortable as text)."""

from __future__ import annotations

from datetime import UTC, datetime


def to_db(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db(text: str) -> datetime:
    # fromisoformat reads what to_db writes ~50 times faster than strptime (the reports read millions).
    return datetime.fromisoformat(text).astimezone(UTC)


def to_db_or_none(at: datetime | None) -> str | None:
    return to_db(at) if at else None
