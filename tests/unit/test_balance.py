"""Balances, days past due, buckets and promises (dialer/core/balance.py): pure, by the local day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.core.balance import (
    BUCKETS,
    OVER,
    Payment,
    Promise,
    PromiseMade,
    balance_on,
    bucket,
    day_start,
    days_past_due,
    decision_zone,
    evaluate_promise,
    payment_day,
    promises,
    standing,
)
from dialer.core.models import Account
from dialer.core.vocab import PromiseState

NY = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")
DUE = date(2026, 10, 31)


def paid(amount: int, at: datetime, paid_on: date | None = None, pid: str = "") -> Payment:
    return Payment(pid or f"P{amount}-{at.isoformat()}", amount, "USD", at, paid_on)


def account(zones: tuple[str, ...] = ("America/New_York",), amount: int = 10_000) -> Account:
    return Account(1, "A1", "A1", "Ann", "+12025550101", zones, False, amount, "USD", DUE, "en-US")


def promise(made: datetime, due_on: date, amount: int | None = None) -> Promise:
    return Promise("call", 1, made, due_on, amount)


# ------------------------------------------------------------------ buckets


@pytest.mark.parametrize(
    ("dpd", "name"),
    [(0, "M0"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3"), (90, "M3"), (91, "M4"),
     (120, "M4"), (121, "M5+"), (5000, "M5+")],
)  # fmt: skip
def test_bucket_boundaries(dpd: int, name: str) -> None:
    assert bucket(dpd) == name


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=10_000))
def test_buckets_follow_the_table_and_never_go_back_as_days_pass(a: int, b: int) -> None:
    order = [name for _, name in BUCKETS] + [OVER]
    low, high = sorted((a, b))
    assert order.index(bucket(low)) <= order.index(bucket(high))
    limit = next((days for days, name in BUCKETS if name == bucket(high)), None)
    assert (limit is None and high > BUCKETS[-1][0]) or (limit is not None and high <= limit)


# ------------------------------------------------------------ days past due


def test_days_past_due_counts_from_the_day_after_the_due_date() -> None:
    assert days_past_due(DUE, 100, [], NY, DUE) == 0
    assert days_past_due(DUE, 100, [], NY, DUE - timedelta(days=3)) == 0
    assert days_past_due(DUE, 100, [], NY, DUE + timedelta(days=1)) == 1
    assert days_past_due(DUE, 100, [], NY, DUE + timedelta(days=31)) == 31


def test_paid_in_full_is_not_past_due_and_a_part_payment_still_is() -> None:
    half = paid(50, datetime(2026, 11, 3, 15, tzinfo=UTC))
    rest = paid(50, datetime(2026, 11, 9, 15, tzinfo=UTC))
    assert days_past_due(DUE, 100, [half], NY, date(2026, 11, 5)) == 5
    assert balance_on(100, [half, rest], NY, date(2026, 11, 8)) == 50
    assert days_past_due(DUE, 100, [half, rest], NY, date(2026, 11, 9)) == 0
    assert balance_on(100, [half, rest], NY, date(2026, 11, 9)) == 0


def test_a_payment_late_on_the_dst_day_counts_on_that_local_day() -> None:
    # 2026-11-01 is 25 hours long in New York; 04:30 UTC on the 2nd is still 23:30 on the 1st (EST).
    late_evening = paid(100, datetime(2026, 11, 2, 4, 30, tzinfo=UTC))
    after_midnight = paid(100, datetime(2026, 11, 2, 5, 30, tzinfo=UTC))
    assert payment_day(late_evening, NY) == date(2026, 11, 1)
    assert payment_day(after_midnight, NY) == date(2026, 11, 2)
    assert days_past_due(DUE, 100, [late_evening], NY, date(2026, 11, 1)) == 0
    assert days_past_due(DUE, 100, [after_midnight], NY, date(2026, 11, 1)) == 1
    # The spring-forward day has 23 hours: its first instant is 05:00 UTC (EST), the next day's 04:00 (EDT).
    assert day_start(date(2026, 3, 8), NY) == datetime(2026, 3, 8, 5, tzinfo=UTC)
    assert day_start(date(2026, 3, 9), NY) == datetime(2026, 3, 9, 4, tzinfo=UTC)


def test_with_two_zones_the_day_is_the_one_that_ends_last() -> None:
    # 05:30 UTC on Nov 2: already the 2nd in New York (00:30), still the 1st in Chicago (23:30).
    now = datetime(2026, 11, 2, 5, 30, tzinfo=UTC)
    assert decision_zone(["America/New_York", "America/Chicago"], now).key == "America/Chicago"
    both = standing(account(("America/New_York", "America/Chicago")), [], [], now)
    alone = standing(account(("America/New_York",)), [], [], now)
    assert (both.day, both.days_past_due, both.zone) == (date(2026, 11, 1), 1, "America/Chicago")
    assert (alone.day, alone.days_past_due) == (date(2026, 11, 2), 2)
    assert decision_zone([], now).key == "UTC"


@given(
    st.lists(st.tuples(st.integers(1, 500), st.integers(-20 * 24, 60 * 24)), max_size=8),
    st.integers(-20, 60),
    st.integers(0, 30),
)
def test_the_balance_only_falls_and_days_past_due_is_zero_or_the_days_since_the_due_date(
    pays: list[tuple[int, int]], offset: int, later: int
) -> None:
    start = datetime.combine(DUE, datetime.min.time(), NY)
    payments = [
        paid(amount, start + timedelta(hours=hours), pid=f"P{i}") for i, (amount, hours) in enumerate(pays)
    ]
    day = DUE + timedelta(days=offset)
    after = day + timedelta(days=later)
    assert balance_on(1000, payments, NY, after) <= balance_on(1000, payments, NY, day)
    dpd = days_past_due(DUE, 1000, payments, NY, day)
    owed = balance_on(1000, payments, NY, day) > 0
    assert dpd == ((day - DUE).days if owed and day > DUE else 0)


def test_a_date_only_payment_counts_on_the_day_the_file_gave() -> None:
    start = day_start(date(2026, 11, 4), SHANGHAI)
    assert start == datetime(2026, 11, 3, 16, tzinfo=UTC)
    on_the_4th = paid(100, start, date(2026, 11, 4))
    assert payment_day(on_the_4th, NY) == date(2026, 11, 4)  # not the 3rd, though it is then in New York


# ----------------------------------------------------------------- promises

MADE = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)  # 10:00 in New York
BY = date(2026, 11, 10)


def test_a_promise_paid_in_full_early_is_kept_on_the_day_of_the_payment() -> None:
    pays = [paid(60, datetime(2026, 11, 5, 15, tzinfo=UTC)), paid(40, datetime(2026, 11, 7, 15, tzinfo=UTC))]
    verdict = evaluate_promise(promise(MADE, BY, 100), 100, pays, NY, date(2026, 11, 8))
    assert (verdict.state, verdict.decided_on, verdict.paid_minor) == (
        PromiseState.KEPT,
        date(2026, 11, 7),
        100,
    )


def test_a_promise_paid_by_the_end_of_its_local_day_is_kept() -> None:
    last_minute = paid(100, datetime(2026, 11, 11, 4, 59, tzinfo=UTC))  # 23:59 on the 10th in New York
    verdict = evaluate_promise(promise(MADE, BY, 100), 100, [last_minute], NY, date(2026, 11, 20))
    assert (verdict.state, verdict.decided_on) == (PromiseState.KEPT, BY)


def test_a_promise_half_paid_is_partially_kept_the_day_after_its_date() -> None:
    pays = [paid(30, datetime(2026, 11, 6, 15, tzinfo=UTC)), paid(70, datetime(2026, 11, 11, 15, tzinfo=UTC))]
    verdict = evaluate_promise(promise(MADE, BY, 100), 100, pays, NY, date(2026, 11, 20))
    assert verdict.state is PromiseState.PARTIALLY_KEPT
    assert (verdict.decided_on, verdict.paid_minor, verdict.amount_minor) == (date(2026, 11, 11), 30, 100)


def test_a_promise_with_nothing_paid_is_broken_the_day_after_its_date() -> None:
    verdict = evaluate_promise(promise(MADE, BY, 100), 100, [], NY, date(2026, 11, 11))
    assert (verdict.state, verdict.decided_on, verdict.paid_minor) == (
        PromiseState.BROKEN,
        date(2026, 11, 11),
        0,
    )


def test_a_promise_is_pending_until_its_day_ends() -> None:
    part = [paid(30, datetime(2026, 11, 6, 15, tzinfo=UTC))]
    for today in (date(2026, 11, 3), BY):
        verdict = evaluate_promise(promise(MADE, BY, 100), 100, part, NY, today)
        assert (verdict.state, verdict.decided_on) == (PromiseState.PENDING, None)
    assert evaluate_promise(promise(MADE, BY), 100, part, NY, BY + timedelta(days=1)).decided_on == date(
        2026, 11, 11
    )


def test_a_payment_after_today_is_not_known_yet() -> None:
    later = [paid(100, datetime(2026, 11, 9, 15, tzinfo=UTC))]
    assert (
        evaluate_promise(promise(MADE, BY), 100, later, NY, date(2026, 11, 8)).state is PromiseState.PENDING
    )


def test_the_amount_of_a_promise_without_one_is_the_balance_when_it_was_made() -> None:
    before = paid(40, MADE - timedelta(hours=1))
    after = paid(60, MADE + timedelta(days=1))
    verdict = evaluate_promise(promise(MADE, BY), 100, [before, after], NY, date(2026, 11, 5))
    assert (verdict.amount_minor, verdict.paid_minor, verdict.state) == (60, 60, PromiseState.KEPT)
    # A promise of more than is owed is kept by paying what is owed.
    verdict = evaluate_promise(promise(MADE, BY, 500), 100, [before, after], NY, date(2026, 11, 5))
    assert (verdict.amount_minor, verdict.state) == (60, PromiseState.KEPT)


def test_a_promise_made_when_nothing_was_owed_is_kept_at_once() -> None:
    verdict = evaluate_promise(
        promise(MADE, BY), 100, [paid(100, MADE - timedelta(days=1))], NY, date(2026, 11, 3)
    )
    assert (verdict.state, verdict.decided_on) == (PromiseState.KEPT, date(2026, 11, 3))


def test_a_text_confirms_the_open_call_promise_else_promises_the_due_date_else_its_own_day() -> None:
    call = PromiseMade("call", 7, MADE, BY, 100)
    confirm = PromiseMade("sms", 3, MADE + timedelta(hours=2), None, None)
    late = PromiseMade("sms", 4, datetime(2026, 11, 15, 15, tzinfo=UTC), None, None)
    early = PromiseMade("sms", 5, datetime(2026, 10, 20, 15, tzinfo=UTC), None, None)
    found = {p.ref: p.due_on for p in promises([late, confirm, call, early], ("America/New_York",), DUE)}
    assert found == {7: BY, 3: BY, 4: date(2026, 11, 15), 5: DUE}


def test_standing_puts_it_together() -> None:
    now = datetime(2026, 12, 5, 15, tzinfo=UTC)
    pays = [paid(2_500, datetime(2026, 11, 4, 15, tzinfo=UTC))]
    made = promises([PromiseMade("call", 1, MADE, BY, 10_000)], ("America/New_York",), DUE)
    st_ = standing(account(), pays, made, now)
    assert (st_.balance_minor, st_.days_past_due, st_.bucket) == (7_500, 35, "M2")
    assert [(v.state, v.decided_on) for v in st_.promises] == [
        (PromiseState.PARTIALLY_KEPT, date(2026, 11, 11))
    ]
