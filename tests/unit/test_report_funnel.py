"""A campaign's funnel from the store (issue 14 item 1): every account counted once, per arm too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.core.messages import InboundText, TextRequest
from dialer.core.models import (
    Account,
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
from dialer.store import SqliteStore, Store
from dialer.strategy.arms import ArmAssignment
from tests.support.records import record

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


async def test_the_funnel_counts_each_account_once_and_splits_by_arm(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "d.db")
    try:
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
    finally:
        await store.close()
    assert whole.accounts == 5 and whole.attempted == 3 and whole.calls == 4
    assert (whole.contacted, whole.right_party, whole.right_party_calls) == (
        1,
        1,
        1,
    )  # a machine is no contact
    assert whole.promised == 2  # A0 on the call, A1 by the text's answer
    assert (whole.texted, whole.texts, whole.delivered, whole.replied, whole.opted_out) == (3, 3, 2, 1, 1)
    a, b = by_arm["A"], by_arm["B"]
    assert (a.accounts, a.attempted, a.promised, a.texted) == (3, 2, 1, 1)
    assert (b.accounts, b.attempted, b.promised, b.opted_out) == (2, 1, 1, 1)
    assert a.accounts + b.accounts == whole.accounts  # intention to treat: every assigned account


async def test_a_funnel_by_something_unknown_is_refused(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "d.db")
    try:
        with pytest.raises(ValueError, match="by one of"):
            await store.funnel(1, "hour; DROP TABLE accounts")
        assert await store.funnel(99) == []  # no such campaign: nothing, not an error
    finally:
        await store.close()
