"""The policy gate: may this account be called now, and if not, when?

Pure code (no I/O): the store hands it the account, the contact history and
the opt-out flag inside the transaction that records the attempt. This first
gate enforces the local-time window in every candidate zone, a per-day cap per
person across all campaigns, and opt-outs. The full engine (policy packs,
7-in-7, consents) replaces it behind the same `PolicyGate` interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from dialer.models import Account, Decision, PastAttempt, Reason

# How far back the store must read history for this gate (a local day, any zone).
HISTORY_WINDOW = timedelta(days=2)
_SEARCH_DAYS = 3


class PolicyGate(Protocol):
    @property
    def history_window(self) -> timedelta:
        """How much contact history `decide` needs."""
        ...

    def decide(
        self, account: Account, at: datetime, history: Sequence[PastAttempt], opted_out: bool
    ) -> Decision: ...


@dataclass(frozen=True)
class BasicPolicy:
    window_start: time = time(8, 0)
    window_end: time = time(21, 0)  # exclusive: a call at 21:00:00 is too late
    max_attempts_per_day: int = 3
    history_window: timedelta = HISTORY_WINDOW

    def decide(
        self, account: Account, at: datetime, history: Sequence[PastAttempt], opted_out: bool
    ) -> Decision:
        if opted_out:
            return Decision(False, (Reason("opt-out", "the borrower asked not to be called"),))
        if not account.time_zones:
            return Decision(False, (Reason("zone-unknown", "no time zone is known for this number"),))
        zones = [ZoneInfo(name) for name in account.time_zones]
        blocked = self._cap_block(zones, at, history)
        if blocked:
            return blocked
        if not self._in_window(zones, at):
            nxt = self.next_window(zones, at)
            detail = f"outside {self.window_start:%H:%M}-{self.window_end:%H:%M} in " + ", ".join(
                f"{z.key} ({at.astimezone(z):%H:%M})" for z in zones
            )
            if nxt is None:
                detail += "; the zones share no calling window"
            return Decision(False, (Reason("window", detail),), nxt)
        return Decision(True, self._allow_reasons(zones, at, history))

    def _in_window(self, zones: Sequence[ZoneInfo], at: datetime) -> bool:
        return all(self.window_start <= at.astimezone(z).time() < self.window_end for z in zones)

    def next_window(self, zones: Sequence[ZoneInfo], at: datetime) -> datetime | None:
        """The earliest moment at or after `at` inside the window in every zone."""
        candidates = {at}
        for zone in zones:
            day = at.astimezone(zone).date()
            for offset in range(_SEARCH_DAYS + 1):
                local = datetime.combine(day + timedelta(days=offset), self.window_start, zone)
                candidates.add(local.astimezone(UTC))
        for moment in sorted(c for c in candidates if c >= at):
            if self._in_window(zones, moment):
                return moment
        return None

    def _cap_block(
        self, zones: Sequence[ZoneInfo], at: datetime, history: Sequence[PastAttempt]
    ) -> Decision | None:
        # Every dialled call counts, busy ones too (China's rule counts dialled calls).
        # The earliest local midnight among the zones counts the most calls: conservative.
        day_start = min(_midnight(at, z) for z in zones)
        today = [h for h in history if h.at >= day_start]
        if len(today) < self.max_attempts_per_day:
            return None
        next_day = max(_midnight(at, z) + _day_length(at, z) for z in zones)
        ids = ", ".join(str(h.attempt_id) for h in today)
        reason = Reason(
            "daily-cap", f"{len(today)} of {self.max_attempts_per_day} calls today (attempts {ids})"
        )
        return Decision(False, (reason,), self.next_window(zones, next_day))

    def _allow_reasons(
        self, zones: Sequence[ZoneInfo], at: datetime, history: Sequence[PastAttempt]
    ) -> tuple[Reason, ...]:
        day_start = min(_midnight(at, z) for z in zones)
        count = sum(1 for h in history if h.at >= day_start)
        local = ", ".join(f"{z.key} {at.astimezone(z):%H:%M}" for z in zones)
        return (
            Reason("window", f"inside {self.window_start:%H:%M}-{self.window_end:%H:%M}: {local}"),
            Reason("daily-cap", f"call {count + 1} of {self.max_attempts_per_day} today"),
        )


def _midnight(at: datetime, zone: ZoneInfo) -> datetime:
    local = at.astimezone(zone)
    return datetime.combine(local.date(), time(0), zone).astimezone(UTC)


def _day_length(at: datetime, zone: ZoneInfo) -> timedelta:
    """23, 24 or 25 hours: the length of `at`'s local day (DST days differ)."""
    day = at.astimezone(zone).date()
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return end.astimezone(UTC) - start.astimezone(UTC)
