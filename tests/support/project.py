"""Where the project and its state live, and a zone where it is daytime now."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = PROJECT_ROOT / "var"
DATA = PROJECT_ROOT / "tests" / "data"


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
