"""The operations page's refusals of the last hour (dialer/store/live.py) on both backends: counted
once per refusing rule of each refusal, the latest one's detail kept, informative rules left out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from dialer.core.messages import TextRequest
from dialer.core.models import Decision, Reason
from dialer.core.vocab import RuleId
from dialer.store import Store
from tests.support.records import record
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture, on both backends

NOW = datetime(2026, 12, 2, 15, tzinfo=UTC)


@pytest.fixture
def store(backend_store: Store) -> Store:
    return backend_store


def _refuse(at: datetime, *reasons: Reason) -> Callable[..., Decision]:
    return lambda *_: Decision(False, reasons, at + timedelta(hours=2))


async def _refuse_call(
    store: Store, campaign_id: int, account_id: str, at: datetime, *reasons: Reason
) -> None:
    due = await store.due_targets(campaign_id, NOW + timedelta(days=1), 50)
    target = next(t for t in due if t.account.account_id == account_id)
    refused = await store.claim(target, at, _refuse(at, *reasons), lambda i, _: "", "t", at)
    assert isinstance(refused, Decision) and not refused.allowed


async def test_refusals_of_the_last_hour_by_rule_with_the_latest_detail(store: Store) -> None:
    await store.upsert_accounts([record(f"A{i}", f"+1202555{100 + i:04d}") for i in range(4)], NOW)
    campaign = await store.create_campaign("c", NOW - timedelta(hours=3))
    await store.add_targets(campaign.id, NOW - timedelta(hours=3))
    accounts = await store.accounts_named(["A3"])
    consent = Reason(RuleId.CONSENT, "within a consent window")  # informs only: never counted
    seven, window = RuleId.SEVEN_IN_SEVEN, RuleId.WINDOW
    await _refuse_call(store, campaign.id, "A0", NOW - timedelta(hours=2), Reason(seven, "too old"))
    await _refuse_call(store, campaign.id, "A0", NOW - timedelta(minutes=30), Reason(seven, "first"), consent)
    # Two reasons of one rule in the latest refusal: the first of them is its detail.
    await _refuse_call(
        store,
        campaign.id,
        "A1",
        NOW - timedelta(minutes=5),
        Reason(seven, "latest"),
        Reason(seven, "its second"),
    )
    await _refuse_call(
        store, campaign.id, "A2", NOW - timedelta(minutes=10), consent, Reason(window, "21:30")
    )
    request = TextRequest(accounts["A3"], "b1", "reminder.yaml#due", "Pay", "gsm-7", 1, "test", campaign.id)
    text_at = NOW - timedelta(minutes=1)
    refused = await store.claim_message(
        request, text_at, _refuse(text_at, Reason(window, "a text")), "t", text_at
    )
    assert isinstance(refused, Decision)
    live = await store.live_state(campaign.id, NOW)
    assert live.refusals_last_hour == {"7-in-7": 3, "window": 2}
    assert live.latest_refusal == {"7-in-7": "latest", "window": "a text"}
