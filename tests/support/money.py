"""What the money tests write into a real store: accounts, a campaign, payments through the import's
own path, arms, and promises made on calls and in answers to texts."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from dialer.accounts.payments_import import check_against_accounts
from dialer.accounts.payments_parse import PaymentRecord
from dialer.core import balance
from dialer.core.messages import InboundText, TextRequest
from dialer.core.models import (
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
from dialer.core.vocab import Outcome, ReplyKind
from dialer.store import SqliteStore
from dialer.strategy.arms import ArmAssignment

NOW = datetime(2026, 12, 2, 15, tzinfo=UTC)  # 10:00 in New York
NY = ("America/New_York",)


def account(
    account_id: str,
    due: date,
    amount: int = 10000,
    zones: Sequence[str] = NY,
    currency: str = "USD",
    phone: str = "",
) -> AccountRecord:
    phone = phone or f"+1202555{sum(map(ord, account_id)) % 10000:04d}"
    return AccountRecord(
        account_id, f"D-{account_id}", "T", phone, "US", tuple(zones), False, amount, currency, due, "en-US"
    )


async def campaign_of(store: SqliteStore, records: Sequence[AccountRecord], name: str = "c") -> int:
    await store.upsert_accounts(list(records), NOW)
    campaign = await store.create_campaign(name, NOW)
    await store.add_targets(campaign.id, NOW, [r.account_id for r in records])
    return campaign.id


_IDS = itertools.count(1)


async def pay(store: SqliteStore, account_id: str, amount: int, when: datetime | date) -> None:
    """A payment through the import's own path: a date-only one is placed at the start of its day
    in the decision zone, and its day is kept as the file gave it."""
    paid_at = when if isinstance(when, datetime) else datetime(when.year, when.month, when.day, tzinfo=UTC)
    paid_on = None if isinstance(when, datetime) else when
    accounts = await store.accounts_named([account_id])
    currency = accounts[account_id].currency
    payment = balance.Payment(f"P{next(_IDS)}", amount, currency, paid_at, paid_on)
    later = NOW + timedelta(days=400)  # random payments reach into 2027
    good, bad = check_against_accounts([PaymentRecord(2, "", account_id, payment)], accounts, later)
    assert not bad, bad
    import_id = await store.start_payment_import("p.csv", NOW)
    await store.payment_import_batch(import_id, 1, good, [], NOW)


async def arms(store: SqliteStore, campaign_id: int, arm_of: dict[str, str], at: datetime = NOW) -> None:
    accounts = await store.accounts_named(list(arm_of))
    assigned = [ArmAssignment(a.pk, a.account_id, arm_of[a.account_id], ("x",), 1) for a in accounts.values()]
    await store.save_arms(campaign_id, assigned, at, "operator:test")


def _allow(*_: object) -> Decision:
    return Decision(True)


async def promise_call(
    store: SqliteStore,
    cid: int,
    account_id: str,
    day: date | None,
    amount: int | None,
    step: str,
    at: datetime = NOW,
) -> None:
    """A call of the campaign at `at` on which the borrower promised (by `day`, `amount`)."""
    due = await store.due_targets(cid, at + timedelta(days=400), 1000)
    [target] = [t for t in due if t.account.account_id == account_id]
    attempt = await store.claim(
        target, at, _allow, lambda i, _: f"/rec/{i}", "t", at - timedelta(days=7), step=step
    )
    assert isinstance(attempt, Attempt)
    steps = (IvrStep(at, "menu", "outcome", {"outcome": "promise_to_pay"}),)
    ivr = IvrSummary("reminder-en-US", "promise_to_pay", day, amount, True, steps)
    result = CallResult(Disposition.ANSWERED, at + timedelta(seconds=30), answered_at=at, ivr=ivr)
    await store.finish_attempt(attempt, result, TargetUpdate(TargetState.PENDING, at), "dialer:t")


async def promise_text(store: SqliteStore, cid: int, account_id: str, step: str, at: datetime = NOW) -> None:
    """A reminder of the campaign at `at`, answered at once with "1": a promise."""
    found = (await store.accounts_named([account_id]))[account_id]
    request = TextRequest(
        found, f"b{at}", "reminder-en-US.yaml#due", "Pay", "gsm-7", 1, "test", cid, step=step
    )
    message = await store.claim_message(request, at, lambda *_: Decision(True), "t", at - timedelta(days=7))
    assert message is not None and not isinstance(message, Decision)
    reply = InboundText(found.phone_e164, "DueCall", "1", at, ReplyKind.ANSWER, Outcome.PROMISE_TO_PAY)
    await store.record_inbound(reply, [], at, "gateway:test")
