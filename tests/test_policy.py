"""The basic policy gate: window in every candidate zone, daily cap, opt-out."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dialer.models import Account, Disposition, PastAttempt
from dialer.policy import BasicPolicy

POLICY = BasicPolicy()


def account(*zones: str) -> Account:
    return Account(
        1, "A1", "D1", "Test", "+12025550101", tuple(zones), False, 1000, "USD", date(2026, 12, 1), "en-US"
    )


def local(zone: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def past(n: int, at: datetime) -> PastAttempt:
    return PastAttempt(n, at, 1, Disposition.NO_ANSWER)


@pytest.mark.parametrize(
    ("zone", "when", "allowed"),
    [
        ("America/New_York", (2026, 11, 28, 8, 0), True),  # first allowed minute
        ("America/New_York", (2026, 11, 28, 7, 59, 59), False),
        ("America/New_York", (2026, 11, 28, 20, 59, 59), True),
        ("America/New_York", (2026, 11, 28, 21, 0), False),  # 21:00 itself is too late
        ("Asia/Shanghai", (2026, 11, 28, 12, 0), True),
        ("Asia/Shanghai", (2026, 11, 28, 22, 30), False),
        ("America/Phoenix", (2026, 7, 1, 8, 0), True),  # no DST in Arizona
        ("Pacific/Honolulu", (2026, 3, 8, 7, 30), False),
        ("America/New_York", (2026, 3, 8, 8, 0), True),  # DST starts that night at 02:00
        ("America/New_York", (2026, 11, 1, 8, 0), True),  # DST ends that night
    ],
)
def test_window_edges(zone: str, when: tuple[int, ...], allowed: bool) -> None:
    decision = POLICY.decide(account(zone), local(zone, *when), [], False)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.reasons[0].rule == "window"
        assert decision.next_allowed_at is not None
        assert decision.next_allowed_at.astimezone(ZoneInfo(zone)).time().isoformat() == "08:00:00"


def test_every_candidate_zone_must_be_in_window() -> None:
    # 08:30 in New York is 07:30 in Chicago: blocked until 08:00 Chicago = 09:00 New York.
    at = local("America/New_York", 2026, 11, 30, 8, 30)
    decision = POLICY.decide(account("America/New_York", "America/Chicago"), at, [], False)
    assert not decision.allowed
    assert decision.next_allowed_at == local("America/Chicago", 2026, 11, 30, 8, 0)
    assert "America/Chicago (07:30)" in decision.reasons[0].detail


def test_zones_without_common_window_never_allow() -> None:
    # Two 13-hour windows always overlap somewhere; an office-hours window need not.
    office = BasicPolicy(window_start=time(9), window_end=time(17))
    at = local("Asia/Shanghai", 2026, 11, 30, 10, 0)
    decision = office.decide(account("Asia/Shanghai", "America/New_York"), at, [], False)
    assert not decision.allowed
    assert decision.next_allowed_at is None
    assert "no calling window" in decision.reasons[0].detail


def test_next_window_across_dst_start() -> None:
    # Saturday 22:00 before DST starts: next is Sunday 08:00 EDT (12:00 UTC, not 13:00).
    at = local("America/New_York", 2026, 3, 7, 22, 0)
    decision = POLICY.decide(account("America/New_York"), at, [], False)
    assert decision.next_allowed_at == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def test_daily_cap_counts_calls_since_local_midnight() -> None:
    zone = "Asia/Shanghai"
    at = local(zone, 2026, 11, 30, 15, 0)
    history = [
        past(1, local(zone, 2026, 11, 29, 20, 0)),  # yesterday: not counted
        past(2, local(zone, 2026, 11, 30, 9, 0)),
        past(3, local(zone, 2026, 11, 30, 11, 0)),
    ]
    allowed = POLICY.decide(account(zone), at, history, False)
    assert allowed.allowed
    assert any(r.rule == "daily-cap" and "call 3 of 3" in r.detail for r in allowed.reasons)
    history.append(past(4, local(zone, 2026, 11, 30, 13, 0)))
    blocked = POLICY.decide(account(zone), at, history, False)
    assert not blocked.allowed
    assert blocked.reasons[0].rule == "daily-cap"
    assert "attempts 2, 3, 4" in blocked.reasons[0].detail
    assert blocked.next_allowed_at == local(zone, 2026, 12, 1, 8, 0)


def test_busy_calls_count_toward_the_daily_cap() -> None:
    zone = "Asia/Shanghai"
    at = local(zone, 2026, 11, 30, 15, 0)
    history = [PastAttempt(i, at - timedelta(hours=i), 1, Disposition.BUSY) for i in (1, 2, 3)]
    assert not POLICY.decide(account(zone), at, history, False).allowed


def test_opt_out_blocks_for_good() -> None:
    decision = POLICY.decide(account("Asia/Shanghai"), local("Asia/Shanghai", 2026, 11, 30, 10, 0), [], True)
    assert not decision.allowed
    assert decision.reasons[0].rule == "opt-out"
    assert decision.next_allowed_at is None


def test_unknown_zone_blocks() -> None:
    decision = POLICY.decide(account(), datetime(2026, 11, 30, 12, tzinfo=UTC), [], False)
    assert not decision.allowed
    assert decision.reasons[0].rule == "zone-unknown"


def test_configurable_window() -> None:
    policy = BasicPolicy(window_start=time(9), max_attempts_per_day=1)
    zone = "Asia/Shanghai"
    assert not policy.decide(account(zone), local(zone, 2026, 11, 30, 8, 30), [], False).allowed
    at = local(zone, 2026, 11, 30, 9, 30)
    assert policy.decide(account(zone), at, [], False).allowed
    assert not policy.decide(account(zone), at, [past(1, at - timedelta(minutes=5))], False).allowed
