"""What a borrower owes on a day, how late it is, its bucket, and whether their promises held.

Pure: no I/O, no clock. Every function takes the day or the instant it decides for; the store
gives the payments and promises, the caller the time (docs/payments.md has the rules).

Days are the account's local days in one zone, its *decision zone*: of the zones the account may be
in, the one whose day ends last (the lowest UTC offset at the moment of the decision), so that a
borrower is never counted a day late, nor a promise broken, while it is still the day before where
they may be. An account with no zone is counted in UTC.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dialer.core.models import Account
from dialer.core.vocab import PromiseState

# Buckets by days past due: (the most days a bucket holds, its name); past the last one, OVER.
BUCKETS: tuple[tuple[int, str], ...] = ((0, "M0"), (30, "M1"), (60, "M2"), (90, "M3"), (120, "M4"))
OVER = "M5+"
_UPPER = [days for days, _ in BUCKETS]


@dataclass(frozen=True, slots=True)
class Payment:
    """Money received on an account, in the account's currency."""

    payment_id: str  # the lender's reference: the key that makes a re-import count it once
    amount_minor: int
    currency: str
    paid_at: datetime  # aware; for a date-only value, the start of that day in the decision zone
    paid_on: date | None = None  # the day the file gave, when it gave a date and no time


@dataclass(frozen=True, slots=True)
class Promise:
    """A borrower's promise to pay: on a call (an IVR outcome) or by a text's answer."""

    source: str  # "call" (outcomes.attempt_id) or "sms" (inbound_messages.id)
    ref: int
    made_at: datetime
    due_on: date  # paid in full by the end of this local day
    amount_minor: int | None  # None: the balance when it was made


@dataclass(frozen=True, slots=True)
class PromiseVerdict:
    promise: Promise
    amount_minor: int  # what it is judged against: the amount promised, at most the balance then
    paid_minor: int  # paid toward it from when it was made to the end of its day (so far)
    state: PromiseState
    decided_on: date | None  # None while pending


@dataclass(frozen=True, slots=True)
class Standing:
    """An account on one day: what is owed, how late, its bucket, its promises."""

    day: date
    zone: str
    balance_minor: int  # negative when overpaid
    days_past_due: int
    bucket: str
    promises: tuple[PromiseVerdict, ...]


def decision_zone(zones: Iterable[str], at: datetime) -> ZoneInfo:
    """The zone whose local day ends last at `at` (ties: by name); UTC when there is none."""
    loaded = [ZoneInfo(name) for name in sorted(zones)]
    if not loaded:
        return ZoneInfo("UTC")
    return min(loaded, key=lambda zone: at.astimezone(zone).utcoffset() or timedelta(0))


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local day, in UTC (a date-only payment is stored as this)."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def payment_day(payment: Payment, zone: ZoneInfo) -> date:
    return payment.paid_on or payment.paid_at.astimezone(zone).date()


def balance_on(amount_due: int, payments: Iterable[Payment], zone: ZoneInfo, day: date) -> int:
    """The amount due less every payment made up to the end of `day`."""
    return amount_due - sum(p.amount_minor for p in payments if payment_day(p, zone) <= day)


def days_past_due(
    due_date: date, amount_due: int, payments: Sequence[Payment], zone: ZoneInfo, day: date
) -> int:
    """Whole local days since the due date while something is owed; 0 on or before it."""
    if day <= due_date or balance_on(amount_due, payments, zone, day) <= 0:
        return 0
    return (day - due_date).days


def bucket(dpd: int) -> str:
    """M0 not past due, M1 1-30 days, M2 31-60, M3 61-90, M4 91-120, M5+ beyond (BUCKETS)."""
    at = bisect.bisect_left(_UPPER, dpd)
    return BUCKETS[at][1] if at < len(BUCKETS) else OVER


def _before(payment: Payment, promise: Promise, made_day: date) -> bool:
    """Paid before the promise was made (a date-only payment: on an earlier day)."""
    if payment.paid_on is not None:
        return payment.paid_on < made_day
    return payment.paid_at < promise.made_at


def evaluate_promise(
    promise: Promise, amount_due: int, payments: Sequence[Payment], zone: ZoneInfo, today: date
) -> PromiseVerdict:
    """Kept (decided the day the last payment needed came), or once its day has passed partially
    kept or broken (decided the day after it); pending until then. Payments after `today` are not
    looked at: the verdict is what was known on `today`."""
    made_day = promise.made_at.astimezone(zone).date()
    earlier = sum(p.amount_minor for p in payments if _before(p, promise, made_day))
    owed_then = max(amount_due - earlier, 0)
    target = owed_then if promise.amount_minor is None else min(promise.amount_minor, owed_then)
    if target <= 0:
        return PromiseVerdict(promise, target, 0, PromiseState.KEPT, made_day)
    toward = sorted(
        (payment_day(p, zone), p.paid_at, p.amount_minor)
        for p in payments
        if not _before(p, promise, made_day)
    )
    paid = 0
    for day, _, amount in toward:
        if day > min(promise.due_on, today):
            break
        paid += amount
        if paid >= target:
            return PromiseVerdict(promise, target, paid, PromiseState.KEPT, day)
    if today <= promise.due_on:
        return PromiseVerdict(promise, target, paid, PromiseState.PENDING, None)
    state = PromiseState.PARTIALLY_KEPT if paid else PromiseState.BROKEN
    return PromiseVerdict(promise, target, paid, state, promise.due_on + timedelta(days=1))


@dataclass(frozen=True, slots=True)
class PromiseMade:
    """A promise as the store holds it: a call's outcome has a date (or none), a text's never."""

    source: str  # "call" or "sms"
    ref: int
    made_at: datetime
    due_on: date | None
    amount_minor: int | None


def promises(made: Sequence[PromiseMade], zones: Sequence[str], due_date: date) -> tuple[Promise, ...]:
    """Each promise with its day. A text's "1" (or a call promise without a date) confirms the latest
    call promise made before it whose day has not passed; failing that it promises the due date if
    that has not passed; failing that, the day it was made."""
    dated: list[Promise] = []
    for m in sorted(made, key=lambda m: m.made_at):
        day = m.due_on or _implied_day(m.made_at, decision_zone(zones, m.made_at), due_date, dated)
        dated.append(Promise(m.source, m.ref, m.made_at, day, m.amount_minor))
    return tuple(dated)


def _implied_day(made_at: datetime, zone: ZoneInfo, due_date: date, earlier: Sequence[Promise]) -> date:
    today = made_at.astimezone(zone).date()
    open_calls = [p for p in earlier if p.source == "call" and p.due_on >= today]
    if open_calls:
        return open_calls[-1].due_on
    return max(due_date, today)


def standing(
    account: Account, payments: Sequence[Payment], promises: Sequence[Promise], now: datetime
) -> Standing:
    """The account as it stands at `now`, on its local day in its decision zone."""
    zone = decision_zone(account.time_zones, now)
    day = now.astimezone(zone).date()
    due = account.amount_minor
    dpd = days_past_due(account.due_date, due, payments, zone, day)
    verdicts = tuple(evaluate_promise(p, due, payments, zone, day) for p in promises)
    return Standing(day, zone.key, balance_on(due, payments, zone, day), dpd, bucket(dpd), verdicts)
