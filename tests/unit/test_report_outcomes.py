"""The reports' money from the store (issue 14 item 1): promises kept, cures and recovery, entries
(入催率), roll rates, cure curves and the amount recovered per arm, on a real store of each backend.

Each expected figure is worked out in the comments from the rules (docs/payments.md, and
docs/reports.md "How the money metrics are counted"); the last tests check the SQL against the pure
functions of dialer.core.balance on random data."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialer.core import balance
from dialer.core.models import (
    Account,
)
from dialer.store import SqliteStore, Store
from dialer.store.db import _migrations, _statements
from dialer.store.outcomes import CureRow, CurveRow, EntryRow, PromiseRow, RollRow
from tests.support.money import NOW, NY, account, arms, campaign_of, pay, promise_call, promise_text
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture, on both backends

SHANGHAI = ("Asia/Shanghai",)
LA_NY = ("America/Los_Angeles", "America/New_York")  # two zones: Los Angeles's day ends last


@pytest.fixture
async def store(backend_store: Store) -> AsyncIterator[Store]:
    yield backend_store


# ------------------------------------------------------------------ cures and recovery

START, END = date(2026, 11, 10), date(2026, 11, 30)


async def test_cures_count_accounts_late_at_the_start_and_their_money_per_currency(
    store: Store,
) -> None:
    nov1 = date(2026, 11, 1)
    cid = await campaign_of(
        store,
        [
            account("C1", nov1),
            account("C2", nov1),
            account("C3", nov1),
            account("C4", nov1),
            account("C5", date(2026, 11, 9)),
            account("C6", date(2026, 11, 20)),
            account("C9", date(2026, 9, 15)),
            account("C7", nov1, 50000, SHANGHAI, "CNY"),
            account("C8", nov1, 50000, SHANGHAI, "CNY"),
        ],
    )
    await pay(store, "C1", 4000, date(2026, 11, 5))  # before the period: C1 owes 6000 at its start
    await pay(store, "C1", 6000, date(2026, 11, 20))  # ... all of it paid during it: cured
    await pay(store, "C2", 15000, date(2026, 11, 15))  # overpaid: cured, recovered only the 10000 owed
    await pay(store, "C3", 3000, date(2026, 11, 25))  # partly: not cured, 3000 recovered
    # C4 pays nothing. C5 pays in full on its due day, 23:30 in New York (04:30 UTC the next day):
    # not late at the period's start. C6 is not due yet at the start. C9 is 56 days late (M2).
    await pay(store, "C5", 10000, datetime(2026, 11, 10, 4, 30, tzinfo=UTC))
    # C7 pays by a date-only row of 2026-11-10 (stored as 2026-11-09T16:00Z, Shanghai's midnight):
    # it counts on the 10th, in the period, not the UTC day before it. C8 pays at 01:00 on December
    # 1st in Shanghai (17:00 UTC on November 30th): after the period.
    await pay(store, "C7", 50000, date(2026, 11, 10))
    await pay(store, "C8", 50000, datetime(2026, 11, 30, 17, tzinfo=UTC))
    await arms(store, cid, {"C1": "B", "C2": "B", "C3": "A", "C4": "A", "C9": "A", "C7": "A"})

    rows = await store.cures(cid, START, END)
    by_bucket = {(r.group, r.currency): r for r in await store.cures(cid, START, END, "bucket")}
    by_arm = {(r.group, r.currency): r for r in await store.cures(cid, START, END, "arm")}
    # USD late at the start: C1 C2 C3 C4 C9 (5); cured C1 C2; owed 6000 + 3 x 10000 + 10000; recovered
    # 6000 + 10000 + 3000; paying C1 C2 C3. CNY: C7 and C8 late, C7 cured and 50000 recovered.
    assert rows == [
        CureRow("", "CNY", 2, 1, 100000, 50000, 1),
        CureRow("", "USD", 5, 2, 46000, 19000, 3),
    ]
    # Buckets at the start (November 10th): due Nov 1 is 9 days late (M1), due Sep 15 is 56 (M2);
    # C5 (paid) and C6 (not due) are M0 and late at the start for none.
    assert by_bucket[("M1", "USD")] == CureRow("M1", "USD", 4, 2, 36000, 19000, 3)
    assert by_bucket[("M2", "USD")] == CureRow("M2", "USD", 1, 0, 10000, 0, 0)
    assert by_bucket[("M0", "USD")].late_at_start == 0
    assert by_bucket[("M1", "CNY")].late_at_start == 2
    # Arms: B has C1 C2 (both cured, 16000 recovered); A has C3 C4 C9 in USD and C7 in CNY; C5 C6 C8
    # were never assigned: group "".
    assert by_arm[("B", "USD")] == CureRow("B", "USD", 2, 2, 16000, 16000, 2)
    assert by_arm[("A", "USD")] == CureRow("A", "USD", 3, 0, 30000, 3000, 1)
    assert by_arm[("A", "CNY")] == CureRow("A", "CNY", 1, 1, 50000, 50000, 1)
    assert by_arm[("", "CNY")] == CureRow("", "CNY", 1, 0, 50000, 0, 0)


# ------------------------------------------------------------------ entries (入催率)


async def test_entries_count_accounts_due_in_the_period_still_owing_when_their_due_date_ended(
    store: Store,
) -> None:
    nov10 = date(2026, 11, 10)
    records = [account(f"E{i}", nov10) for i in (1, 2, 3, 7)]
    records += [account("E4", date(2026, 11, 29)), account("E5", date(2026, 11, 30))]
    records += [account("E6", date(2026, 10, 31))]
    cid = await campaign_of(store, records)
    await pay(store, "E1", 10000, datetime(2026, 11, 11, 4, 59, tzinfo=UTC))  # 23:59 on the 10th in NY
    await pay(store, "E2", 9999, nov10)  # one cent short on the due day: unpaid on day 1
    await pay(store, "E3", 10000, date(2026, 11, 11))  # in full, but on day 1: it entered collection
    await pay(store, "E7", 12000, date(2026, 11, 5))  # overpaid before its due date
    rows = await store.entries(cid, date(2026, 11, 1), date(2026, 11, 30))
    # Due from Nov 1 to Nov 29 (so that day 1 is in the period): E1 E2 E3 E7 (Nov 10) and E4 (Nov 29);
    # E5's first day late is December 1st, E6 was due before. Unpaid when the due date ended: E2 E3 E4.
    assert rows == [EntryRow("", 5, 3)]
    weeks = {r.group: r for r in await store.entries(cid, date(2026, 11, 1), date(2026, 11, 30), "period")}
    week = lambda d: f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}"  # noqa: E731
    assert weeks == {
        week(nov10): EntryRow(week(nov10), 4, 2),
        week(date(2026, 11, 29)): EntryRow(week(date(2026, 11, 29)), 1, 1),
    }


# ------------------------------------------------------------------ roll rates


async def test_the_roll_matrix_follows_each_account_from_bucket_to_bucket_month_by_month(
    store: Store,
) -> None:
    records = [account("R1", date(2026, 10, 15)), account("R2", date(2026, 10, 15))]
    records += [account("R3", date(2026, 11, 20)), account("R4", date(2026, 12, 20))]
    records += [account("R5", date(2026, 11, 30))]
    cid = await campaign_of(store, records)
    await pay(store, "R2", 10000, date(2026, 11, 20))
    await pay(store, "R5", 10000, datetime(2026, 12, 1, 3, tzinfo=UTC))  # 22:00 on its due day in NY
    rows = await store.roll_matrix(cid, 2, today=date(2026, 12, 15))
    nov, dec = date(2026, 11, 1), date(2026, 12, 1)
    # November: R1 17 days late on the 1st (M1), 47 on December 1st (M2); R2 M1, paid on the 20th: M0;
    # R3 due on the 20th: M0, then 11 days late (M1); R4 and R5 (paid on its due day) stay M0.
    # December, so far (to the end of the 15th): R1 47 -> 62 days (M2 -> M3); R3 11 -> 26 (M1 -> M1).
    assert rows == [
        RollRow(nov, "M0", "M0", 2),
        RollRow(nov, "M0", "M1", 1),
        RollRow(nov, "M1", "M0", 1),
        RollRow(nov, "M1", "M2", 1),
        RollRow(dec, "M0", "M0", 3),
        RollRow(dec, "M1", "M1", 1),
        RollRow(dec, "M2", "M3", 1),
    ]


# ------------------------------------------------------------------ cure curves


async def test_curves_cumulate_cures_and_money_by_day_past_due(store: Store) -> None:
    dec1 = date(2026, 12, 1)
    records = [account(f"K{i}", dec1) for i in (1, 2, 3, 5)]
    records += [account("K4", date(2026, 12, 3)), account("K6", date(2026, 12, 10))]
    cid = await campaign_of(store, records)
    await pay(store, "K1", 10000, date(2026, 12, 2))  # day 1: cured on day 1
    await pay(store, "K2", 5000, date(2026, 12, 3))  # day 2: half
    await pay(store, "K2", 5000, date(2026, 12, 4))  # day 3: the rest, cured on day 3
    await pay(store, "K3", 15000, date(2026, 12, 2))  # overpaid on day 1: cured, 10000 recovered
    await pay(store, "K5", 10000, dec1)  # on its due date: never late
    rows = await store.curves(cid, 5, today=date(2026, 12, 5))
    # Late: K1 K2 K3 (due Dec 1) and K4 (due Dec 3, nothing paid); K6 not due yet. Day k counts the
    # accounts whose k-th day late has come by Dec 5: K4 for days 1 and 2 only, nobody on day 5.
    assert rows == [
        CurveRow(1, 4, 2, 40000, 20000, "USD"),
        CurveRow(2, 4, 2, 40000, 25000, "USD"),
        CurveRow(3, 3, 3, 30000, 30000, "USD"),
        CurveRow(4, 3, 3, 30000, 30000, "USD"),
        CurveRow(5, 0, 0, 0, 0, "USD"),
    ]


# ------------------------------------------------------------------ promises


async def test_promise_verdicts_follow_the_balance_rules(store: Store) -> None:
    dec1, dec5 = date(2026, 12, 1), date(2026, 12, 5)
    cid = await campaign_of(store, [account(f"P{i}", dec1) for i in range(1, 6)])
    other = await store.create_campaign("other", NOW)
    await store.add_targets(other.id, NOW, ["P3"])
    await promise_call(store, cid, "P1", dec5, 10000, "segments[0].steps[1]")
    await promise_call(store, cid, "P2", dec5, 10000, "segments[0].steps[1]")
    await promise_call(store, cid, "P3", dec5, 6000, "rules.promise_broken")
    await promise_call(store, cid, "P4", date(2026, 12, 15), None, "segments[1].steps[0]")
    await promise_call(store, other.id, "P3", dec5, 6000, "")  # another campaign's: not counted here
    await promise_text(store, cid, "P5", "segments[1].steps[2]")
    await pay(store, "P1", 10000, date(2026, 12, 4))  # before its day: kept
    await pay(store, "P2", 4000, dec5)  # some of it on its day: partially kept
    # P3 pays nothing by Dec 5: broken. P4's day (Dec 15) has not come: pending.
    # P5's text promise has no date: the due date (Dec 1) has passed and no call promise is open, so
    # it promises the day of the reply, Dec 2 (10:00 in New York), and its balance: paid that day.
    await pay(store, "P5", 10000, datetime(2026, 12, 2, 20, tzinfo=UTC))
    today = date(2026, 12, 10)
    assert await store.promise_verdicts(cid, today) == [PromiseRow("", 5, 4, 2, 1, 1, 1)]
    steps = {r.group: r for r in await store.promise_verdicts(cid, today, "step")}
    assert steps["segments[0].steps[1]"] == PromiseRow("segments[0].steps[1]", 2, 2, 1, 1, 0, 0)
    assert steps["rules.promise_broken"] == PromiseRow("rules.promise_broken", 1, 1, 0, 0, 1, 0)
    segments = {r.group: r for r in await store.promise_verdicts(cid, today, "segment")}
    assert segments["segments[1]"] == PromiseRow("segments[1]", 2, 1, 1, 0, 0, 1)  # P4 pending, P5 kept
    assert segments[""].broken == 1  # a rule's step has no segment
    # All made on Dec 2, one day after the due date: M1, in ISO week 49.
    assert [r.group for r in await store.promise_verdicts(cid, today, "bucket")] == ["M1"]
    assert [r.group for r in await store.promise_verdicts(cid, today, "period")] == ["2026-W49"]
    # On Dec 5 itself P2's and P3's day has not ended: pending, as P4; P1 and P5 are kept already.
    assert await store.promise_verdicts(cid, dec5) == [PromiseRow("", 5, 2, 2, 0, 0, 3)]


# ------------------------------------------------------------------ amounts per arm


async def test_recovered_by_arm_has_every_assigned_account_and_one_currency(store: Store) -> None:
    nov1 = date(2026, 11, 1)
    records = [account(f"X{i}", nov1) for i in range(1, 5)] + [account("Y1", nov1, 50000, SHANGHAI, "CNY")]
    cid = await campaign_of(store, records)
    await arms(store, cid, {"X1": "A", "X2": "A", "X3": "B", "X4": "B", "Y1": "B"})
    await pay(store, "X1", 3000, date(2026, 11, 5))  # before `since`: not recovered, owes 7000 then
    await pay(store, "X1", 9000, date(2026, 11, 20))  # recovered: the 7000 owed (overpaid by 2000)
    await pay(store, "X3", 2500, datetime(2026, 12, 2, 16, tzinfo=UTC))  # after the assignment (NOW)
    await pay(store, "Y1", 50000, date(2026, 11, 20))
    with pytest.raises(ValueError, match="CNY, USD: name one currency"):
        await store.recovered_by_arm(cid, date(2026, 11, 10))
    # X2 and X4 never paid: 0 each, still counted (intention to treat).
    assert await store.recovered_by_arm(cid, date(2026, 11, 10), "USD") == {"A": [0, 7000], "B": [0, 2500]}
    # From each account's assignment (NOW): only X3's payment came after it.
    assert await store.recovered_by_arm(cid, None, "USD") == {"A": [0, 0], "B": [0, 2500]}
    assert await store.recovered_by_arm(cid, None, "CNY") == {"B": [0]}
    # Every currency in one read: the same as asking for each.
    assert await store.recovered_by_currency(cid, None) == {
        "CNY": {"B": [0]},
        "USD": {"A": [0, 0], "B": [0, 2500]},
    }


# ------------------------------------------------------------------ empty, tiny, refused


async def test_an_empty_campaign_gives_zeros_not_errors(store: Store) -> None:
    campaign = await store.create_campaign("empty", NOW)
    cid = campaign.id
    assert await store.promise_verdicts(cid, NOW.date()) == [PromiseRow("", 0, 0, 0, 0, 0, 0)]
    assert await store.cures(cid, START, END) == [CureRow("", "", 0, 0, 0, 0, 0)]
    assert await store.entries(cid, START, END) == [EntryRow("", 0, 0)]
    assert await store.roll_matrix(cid, 3, NOW.date()) == []
    assert await store.curves(cid, 2, NOW.date()) == [
        CurveRow(1, 0, 0, 0, 0, ""),
        CurveRow(2, 0, 0, 0, 0, ""),
    ]
    assert await store.recovered_by_arm(cid, None) == {}
    assert await store.cures(cid, START, END, "arm") == []


async def test_a_campaign_of_one_account_with_nothing_paid(store: Store) -> None:
    cid = await campaign_of(store, [account("T1", date(2026, 11, 1))])
    assert await store.cures(cid, START, END) == [CureRow("", "USD", 1, 0, 10000, 0, 0)]
    assert await store.promise_verdicts(cid, END) == [PromiseRow("", 0, 0, 0, 0, 0, 0)]
    assert await store.entries(cid, date(2026, 11, 1), END) == [EntryRow("", 1, 1)]


@pytest.mark.parametrize(
    ("query", "by"),
    [("cures", "step"), ("cures", "period"), ("entries", "bucket"), ("promise_verdicts", "hour")],
)
async def test_a_grouping_that_makes_no_sense_is_refused_naming_the_allowed_ones(
    store: Store, query: str, by: str
) -> None:
    with pytest.raises(ValueError, match="by one of '', 'arm'"):
        if query == "promise_verdicts":
            await store.promise_verdicts(1, END, by)
        else:
            await getattr(store, query)(1, START, END, by)
    with pytest.raises(ValueError, match="ends before it starts"):
        await store.cures(1, END, START)


# ------------------------------------------------------------------ the payment's day


async def test_payments_get_their_local_day_when_imported(store: Store) -> None:
    await store.upsert_accounts([account("D1", date(2026, 11, 1), zones=LA_NY)], NOW)
    await pay(store, "D1", 100, datetime(2026, 11, 10, 7, tzinfo=UTC))  # 23:00 on the 9th in Los Angeles
    await pay(store, "D1", 100, date(2026, 11, 12))  # date-only: that day
    days = [tuple(r) for r in await store.fetch_all("SELECT paid_day FROM payments ORDER BY id")]
    assert days == [("2026-11-09",), ("2026-11-12",)]


async def test_payments_stored_before_migration_0014_get_their_day_when_the_store_opens(
    tmp_path: Path,
) -> None:
    # SQLite's own migrations: PostgreSQL's schema starts at 0016.
    path = tmp_path / "d.db"
    with sqlite3.connect(path) as raw:  # schema 13, as DueCall left it before the payment's day was kept
        for number, script in _migrations():
            if number <= 13:
                for statement in _statements(script):
                    raw.execute(statement)
        raw.execute("PRAGMA user_version=13")
        raw.execute(
            "INSERT INTO accounts (account_id, debt_id, name, phone_e164, region, time_zones, tz_derived, "
            "amount_minor, currency, due_date, language, created_at, updated_at) VALUES ('D1', 'D', 'T', "
            "'+12025550100', 'US', '[\"Asia/Shanghai\"]', 0, 100, 'CNY', '2026-11-01', 'zh-CN', '', '')"
        )
        raw.execute("INSERT INTO payment_imports (file, started_at) VALUES ('p.csv', '')")
        raw.executemany(
            "INSERT INTO payments (payment_id, account_pk, amount_minor, currency, paid_at, paid_on, "
            "import_id, row_number, imported_at) VALUES (?, 1, 10, 'CNY', ?, ?, 1, 2, '')",
            [
                ("P1", "2026-11-09T16:00:00.000000Z", "2026-11-10"),  # date-only: the day the file gave
                ("P2", "2026-11-30T17:00:00.000000Z", None),  # 01:00 on December 1st in Shanghai
            ],
        )
    raw.close()
    store = await SqliteStore.open(path)
    await store.close()
    with sqlite3.connect(path) as raw:
        days = raw.execute("SELECT payment_id, paid_day FROM payments ORDER BY id").fetchall()
    raw.close()
    assert days == [("P1", "2026-11-10"), ("P2", "2026-12-01")]


# ------------------------------------------------------------------ against the pure functions


ZONES = (NY, SHANGHAI, LA_NY, ("Asia/Kolkata",), ())
UTC_ZONE = ZoneInfo("UTC")
Made = dict[str, tuple[Account, list[balance.Payment]]]


async def _random_campaign(store: Store, rng: random.Random) -> tuple[int, Made]:
    """40 accounts (five zones, two currencies, one with none), each with 0-3 payments, date-only or
    timed. Each payment comes back with its day (`paid_on`) in the decision zone when it was paid."""
    records = []
    for i in range(40):
        zones = ZONES[i % len(ZONES)]
        currency = "CNY" if zones == SHANGHAI else "USD"
        due = date(2026, 9, 1) + timedelta(days=rng.randrange(100))
        records.append(account(f"Z{i}", due, rng.randrange(1, 5) * 5000, zones, currency))
    cid = await campaign_of(store, records)
    await arms(store, cid, {r.account_id: rng.choice("AB") for r in records})
    found = await store.accounts_named([r.account_id for r in records])
    made: Made = {}
    for r in records:
        for _ in range(rng.randrange(4)):
            minutes = timedelta(minutes=rng.randrange(130 * 1440))
            when: datetime | date = datetime(2026, 9, 1, tzinfo=UTC) + minutes
            await pay(
                store, r.account_id, rng.randrange(1, 4) * 2500, when.date() if rng.random() < 0.3 else when
            )
        stored = await store.account_payments(r.account_id)
        assert stored is not None
        zones = r.time_zones
        days = [
            replace(p, paid_on=balance.payment_day(p, balance.decision_zone(zones, p.paid_at)))
            for p in stored.payments
        ]
        made[r.account_id] = (found[r.account_id], days)
    return cid, made


def _owed_at_start(a: Account, pays: Sequence[balance.Payment], day: date) -> int:
    """What the account owed at the start of `day`: the balance at the end of the day before."""
    return balance.balance_on(a.amount_minor, pays, UTC_ZONE, day - timedelta(days=1))


def _dpd_at_start(a: Account, pays: Sequence[balance.Payment], day: date) -> int:
    earlier = [p for p in pays if balance.payment_day(p, UTC_ZONE) < day]
    return balance.days_past_due(a.due_date, a.amount_minor, earlier, UTC_ZONE, day)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_sql_agrees_with_the_balance_functions_on_random_accounts(store: Store, seed: int) -> None:
    cid, made = await _random_campaign(store, random.Random(seed))
    start, end = date(2026, 10, 10), date(2026, 11, 20)
    # Cures, by bucket at the start: recomputed account by account.
    expect: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 5)
    for a, pays in made.values():
        dpd = _dpd_at_start(a, pays, start)
        row = expect[(balance.bucket(dpd), a.currency)]
        if dpd:
            owed = _owed_at_start(a, pays, start)
            during = owed - _owed_at_start(a, pays, end + timedelta(days=1))
            row[0] += 1
            row[1] += during >= owed
            row[2] += owed
            row[3] += min(during, owed)
            row[4] += during > 0
    cures = await store.cures(cid, start, end, "bucket")
    got = {
        (r.group, r.currency): [r.late_at_start, r.cured, r.overdue_minor, r.recovered_minor, r.paying]
        for r in cures
    }
    assert got == dict(expect)
    # Entries: due from the start to the day before the end, owing when the due date ended.
    due = [(a, p) for a, p in made.values() if start <= a.due_date < end]
    unpaid = sum(_owed_at_start(a, p, a.due_date + timedelta(days=1)) > 0 for a, p in due)
    assert await store.entries(cid, start, end) == [EntryRow("", len(due), unpaid)]
    # Roll matrix: buckets at the start of each month and of the next one (of the day after today).
    today = date(2026, 12, 15)
    months = ((date(2026, 11, 1), date(2026, 12, 1)), (date(2026, 12, 1), date(2026, 12, 16)))
    counts: Counter[tuple[date, str, str]] = Counter()
    for a, pays in made.values():
        for first, after in months:
            moved = (
                balance.bucket(_dpd_at_start(a, pays, first)),
                balance.bucket(_dpd_at_start(a, pays, after)),
            )
            counts[(first, *moved)] += 1
    rolls = await store.roll_matrix(cid, 2, today)
    assert {(r.month, r.from_bucket, r.to_bucket): r.accounts for r in rolls} == dict(counts)
    # Curves: day k past due, for the accounts owing when their due date ended and due k days ago.
    curve: dict[tuple[int, str], list[int]] = {
        (k, cur): [0] * 4 for k in range(1, 31) for cur in ("CNY", "USD")
    }
    for k in range(1, 31):
        for a, pays in made.values():
            owed = _owed_at_start(a, pays, a.due_date + timedelta(days=1))
            if owed <= 0 or a.due_date + timedelta(days=k) > today:
                continue
            left = _owed_at_start(a, pays, a.due_date + timedelta(days=k + 1))
            row = curve[(k, a.currency)]
            row[0] += 1
            row[1] += left <= 0
            row[2] += owed
            row[3] += min(owed - left, owed)
    curves = await store.curves(cid, 30, today)
    assert {
        (r.days_past_due, r.currency): [r.late, r.cured, r.overdue_minor, r.recovered_minor] for r in curves
    } == curve
    # Recovered per arm from the start, in USD: each account's payments from then, at most what it owed.
    arm_of = await store.arms(cid)
    per_arm: dict[str, list[int]] = defaultdict(list)
    for a, pays in sorted(made.values(), key=lambda m: m[0].pk):
        if a.currency == "USD":
            owed = _owed_at_start(a, pays, start)
            paid = sum(p.amount_minor for p in pays) - (a.amount_minor - owed)
            per_arm[arm_of[a.pk]].append(max(0, min(paid, owed)))
    expected = {arm: sorted(amounts) for arm, amounts in per_arm.items()}  # smallest first
    assert await store.recovered_by_arm(cid, start, "USD") == expected
