"""A campaign's funnel from the store (issue 14 item 1): every account counted once, per arm too; on both
backends."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from dialer.core.balance import Payment, bucket, days_past_due, decision_zone
from dialer.core.messages import InboundText, TextRequest
from dialer.core.models import (
    Account,
    AccountRecord,
    Attempt,
    CallResult,
    Decision,
    Disposition,
    IvrStep,
    IvrSummary,
    TargetState,
    TargetUpdate,
)
from dialer.core.vocab import MessageState, Outcome, ReplyKind
from dialer.store import Store
from dialer.store.payments import NewPayment
from dialer.store.reports import HourRow
from dialer.strategy.arms import ArmAssignment
from tests.support.records import record
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture, on both backends


@pytest.fixture
def store(backend_store: Store) -> Store:
    return backend_store


NOW = datetime(2026, 12, 2, 15, tzinfo=UTC)


def _allow(*_: object) -> Decision:
    return Decision(True)


async def _call(
    store: Store, campaign_id: int, account_id: str, disposition: Disposition, outcome: str = ""
) -> None:
    [target] = [
        t for t in await store.due_targets(campaign_id, NOW, 10) if t.account.account_id == account_id
    ]
    attempt = await store.claim(target, NOW, _allow, lambda i, _: f"/rec/{i}", "t", NOW - timedelta(days=7))
    assert isinstance(attempt, Attempt)
    ivr = None
    if outcome:
        step = IvrStep(NOW, "menu", "outcome", {"outcome": outcome})
        ivr = IvrSummary("reminder-en-US", outcome, None, None, True, (step,))
    result = CallResult(disposition, NOW + timedelta(seconds=30), answered_at=NOW if ivr else None, ivr=ivr)
    await store.finish_attempt(attempt, result, TargetUpdate(TargetState.PENDING, NOW), "dialer:t")


async def _text(store: Store, campaign_id: int, account: Account, delivered: bool) -> None:
    request = TextRequest(
        account, "b", "reminder-en-US.yaml#due_today", "Pay", "gsm-7", 1, "test", campaign_id
    )
    message = await store.claim_message(request, NOW, lambda *_: Decision(True), "t", NOW - timedelta(days=7))
    assert message is not None and not isinstance(message, Decision)
    state = MessageState.DELIVERED if delivered else MessageState.FAILED
    await store.advance_message(message.id, state, NOW, "gateway:test", "report")


async def _reply(store: Store, phone: str, kind: ReplyKind, outcome: Outcome | None = None) -> None:
    inbound = InboundText(phone, "DueCall", "1" if outcome else "STOP", NOW, kind, outcome)
    await store.record_inbound(inbound, ["sms"] if kind is ReplyKind.OPT_OUT else [], NOW, "gateway:test")


async def test_the_funnel_counts_each_account_once_and_splits_by_arm(store: Store) -> None:
    phones = [f"+1202555{100 + i:04d}" for i in range(5)]
    await store.upsert_accounts([record(f"A{i}", p) for i, p in enumerate(phones)], NOW)
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    accounts = await store.accounts_named([f"A{i}" for i in range(5)])
    arms = [
        ArmAssignment(a.pk, a.account_id, "B" if a.account_id in ("A1", "A2") else "A", ("M1",), 7)
        for a in accounts.values()
    ]
    await store.save_arms(campaign.id, arms, NOW, "operator:test")
    await _call(store, campaign.id, "A0", Disposition.NO_ANSWER)
    await _call(store, campaign.id, "A0", Disposition.ANSWERED, "promise_to_pay")
    await _call(store, campaign.id, "A1", Disposition.BUSY)
    await _call(store, campaign.id, "A3", Disposition.MACHINE)
    await _text(store, campaign.id, accounts["A1"], delivered=True)
    await _reply(store, phones[1], ReplyKind.ANSWER, Outcome.PROMISE_TO_PAY)
    await _text(store, campaign.id, accounts["A2"], delivered=True)
    await _reply(store, phones[2], ReplyKind.OPT_OUT)
    await _text(store, campaign.id, accounts["A3"], delivered=False)
    [whole] = await store.funnel(campaign.id)
    by_arm = {row.group: row for row in await store.funnel(campaign.id, "arm")}
    assert whole.accounts == 5 and whole.attempted == 3 and whole.calls == 4
    assert (whole.contacted, whole.right_party, whole.right_party_calls) == (
        1,
        1,
        1,
    )  # a machine is no contact
    assert whole.promised == 1  # A0 on the call, with the right party
    assert whole.promised_unconfirmed == 1  # A1 by the text's answer, no right-party call
    assert (whole.texted, whole.texts, whole.delivered, whole.replied, whole.opted_out) == (3, 3, 2, 1, 1)
    a, b = by_arm["A"], by_arm["B"]
    assert (a.accounts, a.attempted, a.promised, a.texted) == (3, 2, 1, 1)
    assert (b.accounts, b.attempted, b.promised, b.promised_unconfirmed, b.opted_out) == (2, 1, 0, 1, 1)
    assert a.accounts + b.accounts == whole.accounts  # intention to treat: every assigned account


async def test_a_funnel_by_something_unknown_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="by one of"):
        await store.funnel(1, "hour; DROP TABLE accounts")
    assert await store.funnel(99) == []  # no such campaign: nothing, not an error


# -- by step, segment, bucket at entry, week of first contact; contacts by local hour

ENTRY = datetime(2026, 12, 2, 3, tzinfo=UTC)  # 22:00 on Dec 1 in New York, Dec 2 in UTC
FAR = datetime(2027, 6, 1, tzinfo=UTC)


def _borrower(
    account_id: str, phone: str, zones: tuple[str, ...], due: date, amount: int = 10_000
) -> AccountRecord:
    return AccountRecord(
        account_id, f"D-{account_id}", "T", phone, "US", zones, False, amount, "USD", due, "en-US"
    )


async def _campaign(store: Store, borrowers: list[AccountRecord]) -> tuple[int, dict[str, Account]]:
    await store.upsert_accounts(borrowers, ENTRY - timedelta(days=30))
    campaign = await store.create_campaign("c", ENTRY - timedelta(days=1))
    await store.add_targets(campaign.id, ENTRY)
    return campaign.id, await store.accounts_named([b.account_id for b in borrowers])


async def _call_at(
    store: Store, campaign_id: int, account: Account, at: datetime, disposition: Disposition, step: str = ""
) -> None:
    """A call placed at `at` for `step`; an answered one promises and confirms the right party."""
    [target] = [t for t in await store.due_targets(campaign_id, FAR, 50) if t.account.pk == account.pk]
    attempt = await store.claim(
        target, at, _allow, lambda i, _: f"/rec/{i}", "t", at - timedelta(days=7), step=step
    )
    assert isinstance(attempt, Attempt)
    ivr = None
    if disposition is Disposition.ANSWERED:
        steps = (IvrStep(at, "menu", "outcome", {"outcome": "promise_to_pay"}),)
        ivr = IvrSummary("reminder-en-US", "promise_to_pay", None, None, True, steps)
    result = CallResult(disposition, at + timedelta(seconds=30), answered_at=at if ivr else None, ivr=ivr)
    await store.finish_attempt(attempt, result, TargetUpdate(TargetState.PENDING, at), "dialer:t")


async def _text_at(store: Store, campaign_id: int, account: Account, at: datetime, step: str = "") -> None:
    request = TextRequest(account, f"b{at}", "r.yaml#due", "Pay", "gsm-7", 1, "test", campaign_id, step=step)
    message = await store.claim_message(request, at, lambda *_: Decision(True), "t", at - timedelta(days=7))
    assert message is not None and not isinstance(message, Decision)
    await store.advance_message(message.id, MessageState.DELIVERED, at, "gateway:test", "report")


async def _pay(store: Store, account: Account, amount: int, at: datetime) -> None:
    import_id = await store.start_payment_import("p.csv", at)
    payment = Payment(f"P-{account.account_id}-{at:%d%H}", amount, "USD", at)
    await store.payment_import_batch(import_id, 1, [NewPayment(2, "raw", account.pk, payment)], [], at)


def _segment_of(step: str) -> str:
    return step.split(".", 1)[0] if step else ""


async def test_by_step_and_segment_an_account_counts_in_each_one_that_contacted_it(store: Store) -> None:
    borrowers = [
        _borrower(f"A{i}", f"+1202555{200 + i:04d}", ("America/New_York",), date(2026, 11, 1))
        for i in range(4)
    ]
    campaign_id, accounts = await _campaign(store, borrowers)
    calls = [  # (account, step, disposition); A3 is never contacted
        ("A0", "segments[0].steps[0]", Disposition.NO_ANSWER),
        ("A0", "segments[0].steps[1]", Disposition.ANSWERED),
        ("A1", "segments[0].steps[0]", Disposition.BUSY),
        ("A1", "segments[0].steps[0]", Disposition.ANSWERED),
        ("A2", "rules.promise_broken", Disposition.MACHINE),
    ]
    texts = [("A1", "segments[1].steps[0]"), ("A2", "segments[0].steps[2]")]
    for n, (account_id, step, disposition) in enumerate(calls):
        await _call_at(
            store, campaign_id, accounts[account_id], ENTRY + timedelta(hours=n), disposition, step
        )
    for n, (account_id, step) in enumerate(texts):
        await _text_at(store, campaign_id, accounts[account_id], ENTRY + timedelta(hours=10 + n), step)
    by_step = {row.group: row for row in await store.funnel(campaign_id, "step")}
    by_segment = {row.group: row for row in await store.funnel(campaign_id, "segment")}
    for key, rows in ((lambda s: s, by_step), (_segment_of, by_segment)):
        groups = {key(step) for _, step, _ in calls} | {key(step) for _, step in texts}
        assert set(rows) == groups  # A3, never contacted, is in none
        for group in groups:
            mine = [(a, d) for a, s, d in calls if key(s) == group]
            row = rows[group]
            assert row.accounts == len({a for a, _ in mine} | {a for a, s in texts if key(s) == group})
            assert (row.attempted, row.calls) == (len({a for a, _ in mine}), len(mine))
            answered = {a for a, d in mine if d is Disposition.ANSWERED}
            assert (row.contacted, row.right_party, row.promised) == (len(answered),) * 3
            assert row.texted == row.delivered == len([a for a, s in texts if key(s) == group])
    assert by_segment["segments[0]"].accounts == 3  # A0 and A1 by calls, A2 by a text
    assert by_segment["rules"].accounts == 1


async def test_by_bucket_each_account_counts_in_its_bucket_on_its_local_day_of_entry(store: Store) -> None:
    york, utc = ("America/New_York",), ("UTC",)
    borrowers = [
        _borrower("due-tomorrow", "+12025550301", york, date(2026, 12, 2)),
        _borrower(
            "due-today-local", "+12025550302", york, date(2026, 12, 1)
        ),  # 1 day late in UTC, 0 in New York
        _borrower("late-in-utc", "+12025550303", utc, date(2026, 12, 1)),
        _borrower("late-45", "+12025550304", york, date(2026, 10, 17)),
        _borrower("paid-before", "+12025550305", york, date(2026, 9, 1)),
        _borrower("paid-part", "+12025550306", york, date(2026, 9, 1)),
        _borrower("paid-after", "+12025550307", york, date(2026, 9, 1)),
        _borrower("late-200", "+12025550308", ("America/Los_Angeles", "Asia/Shanghai"), date(2026, 5, 16)),
    ]
    campaign_id, accounts = await _campaign(store, borrowers)
    paid = {  # amount, currency, when
        "paid-before": (10_000, "USD", ENTRY - timedelta(days=3)),
        "paid-part": (4_000, "USD", ENTRY - timedelta(days=3)),
        "paid-after": (10_000, "USD", ENTRY + timedelta(hours=1)),  # after the entry: still late then
    }
    for account_id, (amount, _, at) in paid.items():
        await _pay(store, accounts[account_id], amount, at)
    await _call_at(store, campaign_id, accounts["late-45"], ENTRY + timedelta(hours=2), Disposition.ANSWERED)
    rows = {row.group: row for row in await store.funnel(campaign_id, "bucket")}
    expected: Counter[str] = Counter()
    for b in borrowers:  # the pure rules of dialer/core/balance.py, payments up to the entry
        zone = decision_zone(b.time_zones, ENTRY)
        made = [Payment("p", *paid[b.account_id])] if b.account_id in paid else []
        day = ENTRY.astimezone(zone).date()
        before = [p for p in made if p.paid_at <= ENTRY]
        expected[bucket(days_past_due(b.due_date, b.amount_minor, before, zone, day))] += 1
    assert {group: row.accounts for group, row in rows.items()} == dict(expected)
    assert expected == Counter({"M0": 3, "M1": 1, "M2": 1, "M4": 2, "M5+": 1})  # the cases, as meant
    assert rows["M2"].calls == rows["M2"].promised == 1


async def test_by_period_the_iso_week_of_the_first_contact_on_the_local_day(store: Store) -> None:
    york = ("America/New_York",)
    borrowers = [_borrower(f"A{i}", f"+1202555{400 + i:04d}", york, date(2026, 11, 1)) for i in range(4)]
    campaign_id, accounts = await _campaign(store, borrowers)
    monday_utc = datetime(2026, 11, 30, 3, tzinfo=UTC)  # still Sunday in New York: week 48, not 49
    first = {"A0": monday_utc, "A1": monday_utc + timedelta(days=1), "A2": monday_utc + timedelta(days=8)}
    await _call_at(store, campaign_id, accounts["A0"], first["A0"], Disposition.NO_ANSWER)
    await _call_at(store, campaign_id, accounts["A0"], first["A0"] + timedelta(days=9), Disposition.BUSY)
    await _text_at(store, campaign_id, accounts["A1"], first["A1"])
    await _call_at(store, campaign_id, accounts["A1"], first["A1"] + timedelta(days=7), Disposition.BUSY)
    await _call_at(store, campaign_id, accounts["A2"], first["A2"], Disposition.ANSWERED)
    rows = {row.group: row for row in await store.funnel(campaign_id, "period")}
    weeks = Counter(
        "{}-W{:02d}".format(*at.astimezone(decision_zone(york, at)).isocalendar()[:2])
        for at in first.values()
    )
    assert {group: row.accounts for group, row in rows.items()} == {**weeks, "": 1}  # A3: never contacted
    assert "2026-W48" in rows and "2026-W49" in rows
    assert rows["2026-W48"].calls == 2  # every call of an account counts in the week it was first contacted


async def test_contacts_by_hour_are_counted_in_the_borrowers_local_hour(store: Store) -> None:
    borrowers = [
        _borrower("york", "+12025550501", ("America/New_York",), date(2026, 11, 1)),
        _borrower("kolkata", "+12025550502", ("Asia/Kolkata",), date(2026, 11, 1)),  # UTC+05:30
        _borrower("two", "+12025550503", ("America/Los_Angeles", "America/New_York"), date(2026, 11, 1)),
    ]
    campaign_id, accounts = await _campaign(store, borrowers)
    dst_end = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT; an hour later 01:30 EST again
    calls = [
        ("york", dst_end, Disposition.ANSWERED),
        ("york", dst_end + timedelta(hours=1), Disposition.NO_ANSWER),
        (
            "york",
            datetime(2026, 3, 8, 7, 10, tzinfo=UTC),
            Disposition.MACHINE,
        ),  # 03:10 EDT, just sprung forward
        ("kolkata", datetime(2026, 11, 2, 10, 20, tzinfo=UTC), Disposition.ANSWERED),  # 15:50
        ("kolkata", datetime(2026, 11, 2, 10, 40, tzinfo=UTC), Disposition.BUSY),  # 16:10: same UTC hour
        ("two", datetime(2026, 11, 2, 17, 5, tzinfo=UTC), Disposition.HUNG_UP_EARLY),  # 09:05 in Los Angeles
    ]
    texts = [
        ("two", datetime(2026, 11, 2, 23, 59, tzinfo=UTC)),
        ("kolkata", datetime(2026, 11, 2, 18, 29, tzinfo=UTC)),
    ]
    for account_id, at, disposition in calls:
        await _call_at(store, campaign_id, accounts[account_id], at, disposition)
    for account_id, at in texts:
        await _text_at(store, campaign_id, accounts[account_id], at)
    rows = await store.contacts_by_hour(campaign_id)
    assert await store.contacts_by_hour(campaign_id + 1) == [HourRow(h, 0, 0, 0, 0) for h in range(24)]

    def hour(account_id: str, at: datetime) -> int:
        zones = next(b.time_zones for b in borrowers if b.account_id == account_id)
        return at.astimezone(decision_zone(zones, at)).hour

    person = {Disposition.ANSWERED, Disposition.HUNG_UP_EARLY}
    expected = {h: [0, 0, 0, 0] for h in range(24)}
    for account_id, at, disposition in calls:
        counts = expected[hour(account_id, at)]
        counts[0] += 1
        counts[1] += disposition in person
        counts[2] += disposition is Disposition.ANSWERED  # the answered calls confirmed the right party
    for account_id, at in texts:
        expected[hour(account_id, at)][3] += 1
    assert rows == [HourRow(h, *expected[h]) for h in range(24)]
    assert [r.hour for r in rows if r.calls] == [1, 3, 9, 15, 16]  # none at UTC's hours 5, 6, 7, 10, 17
    assert rows[1].calls == 2 and rows[15].texts == rows[23].texts == 1  # 15:59 PST, 23:59 IST
