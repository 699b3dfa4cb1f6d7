"""The sender and the store's texts, with a scripted gateway (the project's own boundary): the row
before the gateway, states only forward, a lost answer reconciled and never re-sent, a batch
re-run skipping what was sent, an unreachable gateway retried (issue 12, items 3 and 4).
The same paths against the real Kannel: tests/integration/test_sms_channel.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.verify import verify
from dialer.core.clock import FixedClock
from dialer.core.messages import TextRequest
from dialer.core.models import Account, Decision, PastAttempt, Preferences
from dialer.core.vocab import MessageState
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import Store
from sms.gateway import SubmitStatus
from sms.sender import RetryPlan, Sender
from tests.support.gateway import ScriptedGateway
from tests.support.raw_db import execute
from tests.support.records import borrower
from tests.support.stores import SQLITE_ONLY, backend_store

# 15:00 UTC is 10:00 in New York: inside the 08:00-21:00 window.
NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


__all__ = ["backend_store"]  # the fixture, on both backends


@pytest.fixture
async def store(backend_store: Store) -> Store:
    records = [borrower(f"A{i}", f"+1202555{i:04d}") for i in range(3)]
    await backend_store.upsert_accounts(records, NOW)
    return backend_store


async def _accounts(store: Store) -> list[Account]:
    found = [await store.account(f"A{i}") for i in range(3)]
    return [a for a in found if a is not None]


def _request(account: Account, batch: str = "b1") -> TextRequest:
    return TextRequest(account, batch, "reminder-en-US#due_today", "Acme: pay today.", "gsm-7", 1, "scripted")


def _sender(store: Store, gateway: ScriptedGateway, clock: FixedClock, pack: str = "us-regf") -> Sender:
    return Sender(store, PackGate(load_pack(pack)), gateway, clock, "t1", retry=RetryPlan(3, timedelta(0)))


async def test_the_row_is_written_before_the_gateway_and_follows_its_answer(store: Store) -> None:
    gateway, clock = ScriptedGateway(), FixedClock(NOW)
    [a0, *_] = await _accounts(store)
    sent = await _sender(store, gateway, clock).send(_request(a0))
    assert sent.state == "submitted" and sent.message_id == gateway.got[0].message_id
    rows = await store.messages_in("b1")
    assert [(r["state"], r["text"]) for r in rows] == [("submitted", "Acme: pay today.")]
    kinds = [r["kind"] for r in await store.fetch_all("SELECT kind FROM audit_events ORDER BY seq")]
    assert kinds[-2:] == ["message.queued", "message.state"]


async def test_states_only_move_forward(store: Store) -> None:
    gateway, clock = ScriptedGateway(), FixedClock(NOW)
    [a0, *_] = await _accounts(store)
    sent = await _sender(store, gateway, clock).send(_request(a0))
    assert sent.message_id is not None
    advance = store.advance_message
    assert await advance(sent.message_id, MessageState.DELIVERED, NOW, "gw", "report") is True
    # A late "accepted" (Kannel's type 8 after the type 1) or a repeat changes nothing.
    assert await advance(sent.message_id, MessageState.ACCEPTED, NOW, "gw", "report") is False
    assert await advance(sent.message_id, MessageState.DELIVERED, NOW, "gw", "report") is False
    assert await advance(sent.message_id, MessageState.NOT_SENT, NOW, "gw", "submit") is False
    assert await advance(99999, MessageState.DELIVERED, NOW, "gw", "report") is None
    [row] = await store.messages_in("b1")
    assert row["state"] == "delivered"


async def test_a_lost_answer_is_reconciled_as_unknown_and_never_resent(store: Store) -> None:
    gateway, clock = ScriptedGateway(hang=asyncio.Event()), FixedClock(NOW)
    [a0, *_] = await _accounts(store)
    sender = _sender(store, gateway, clock)
    task = asyncio.create_task(sender.send(_request(a0)))
    while not gateway.got:
        await asyncio.sleep(0.01)
    task.cancel()  # the process stops while the gateway is being asked
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = await store.messages_in("b1")
    assert row["state"] == "queued"  # written and counted before the gateway was asked
    clock.advance(timedelta(minutes=5))
    restarted = _sender(store, ScriptedGateway(), clock)
    assert await restarted.reconcile() == [row["id"]]
    [row] = await store.messages_in("b1")
    assert row["state"] == "unknown" and "not re-sent" in row["reason"]
    again = await restarted.send(_request(a0))
    assert again.state == "skipped"  # the batch remembers it: no second text
    # A delivery report that still arrives settles it.
    assert await store.advance_message(row["id"], MessageState.DELIVERED, clock.now(), "gw", "report")


async def test_an_unreachable_gateway_is_tried_again_with_a_new_decision(store: Store) -> None:
    answers = [SubmitStatus.UNREACHABLE, SubmitStatus.UNREACHABLE]
    gateway, clock = ScriptedGateway(answers), FixedClock(NOW)
    [a0, *_] = await _accounts(store)
    sent = await _sender(store, gateway, clock).send(_request(a0))
    assert sent.state == "submitted" and len(gateway.got) == 3
    states = [r["state"] for r in await store.messages_in("b1")]
    assert states == ["not_sent", "not_sent", "submitted"]  # each try is on record


async def test_a_refusing_gateway_is_recorded_not_retried(store: Store) -> None:
    gateway, clock = ScriptedGateway([SubmitStatus.REFUSED]), FixedClock(NOW)
    [a0, *_] = await _accounts(store)
    sent = await _sender(store, gateway, clock).send(_request(a0))
    assert sent.state == "not_sent" and "refused" in sent.reason and len(gateway.got) == 1
    [row] = await store.messages_in("b1")
    assert row["state"] == "not_sent" and "scripted refused" in row["reason"]


async def test_a_batch_rerun_sends_only_what_was_not_sent(store: Store) -> None:
    gateway, clock = ScriptedGateway([SubmitStatus.REFUSED]), FixedClock(NOW)
    accounts = await _accounts(store)
    sender = _sender(store, gateway, clock)
    first = await sender.send_batch([_request(a) for a in accounts])
    assert first.counts() == {"submitted": 2, "not_sent": 1}
    second = await sender.send_batch([_request(a) for a in accounts])
    assert second.counts() == {"skipped": 2, "submitted": 1}
    per_account = [r["account_id"] for r in await store.messages_in("b1") if r["state"] != "not_sent"]
    assert sorted(per_account) == ["A0", "A1", "A2"]


async def test_outside_the_window_a_text_is_refused_with_the_reason(store: Store) -> None:
    gateway, clock = ScriptedGateway(), FixedClock(datetime(2026, 11, 30, 3, 0, tzinfo=UTC))  # 22:00 NY
    [a0, *_] = await _accounts(store)
    sent = await _sender(store, gateway, clock).send(_request(a0))
    assert sent.state == "refused" and "window" in sent.reason and gateway.got == []
    assert sent.decision is not None and sent.decision.next_allowed_at == datetime(
        2026, 11, 30, 13, 0, tzinfo=UTC
    )
    assert await store.messages_in("b1") == []
    [data] = [
        r["data"] for r in await store.fetch_all("SELECT data FROM audit_events WHERE kind='message.refused'")
    ]
    assert '"rule":"window"' in data


async def test_an_sms_opt_out_refuses_texts(store: Store) -> None:
    gateway, clock = ScriptedGateway(), FixedClock(NOW)
    [a0, *_] = await _accounts(store)
    await store.opt_out(a0.phone_e164, "sms", NOW, "test")
    sent = await _sender(store, gateway, clock).send(_request(a0))
    assert sent.state == "refused" and "opt-out" in sent.reason and gateway.got == []


@SQLITE_ONLY  # reads the database file
async def test_audit_verify_checks_texts_against_the_chain(store: Store, tmp_path: Path) -> None:
    gateway, clock = ScriptedGateway(), FixedClock(NOW)
    await _sender(store, gateway, clock).send_batch([_request(a) for a in await _accounts(store)])
    report = verify(tmp_path / "t.db")
    assert report.ok and report.messages_checked == 3
    execute(tmp_path / "t.db", "UPDATE messages SET text='Acme: all is forgiven.' WHERE id=1")
    execute(tmp_path / "t.db", "UPDATE messages SET state='delivered' WHERE id=2")
    report = verify(tmp_path / "t.db")
    assert not report.ok and report.broken is None  # the chain itself is intact: the table lies
    assert report.message_problems == [
        "text 1: its number or text differs from the chain's",
        "text 2: state 'delivered' in the table, 'submitted' in the chain",
    ]


async def test_under_us_ma_a_call_counts_the_texts_before_it(store: Store) -> None:
    """940 CMR 7.04(1)(f): texts and calls together, at most 2 in 7 days per debt."""
    gateway, clock = ScriptedGateway(), FixedClock(NOW)
    gate = PackGate(load_pack("us-ma"))
    [a0, *_] = await _accounts(store)
    sender = Sender(store, gate, gateway, clock, "t1")
    for batch in ("b1", "b2"):
        assert (await sender.send(_request(a0, batch))).state == "submitted"
    campaign = await store.create_campaign("calls", NOW)
    await store.add_targets(campaign.id, NOW, ["A0"])
    [target] = await store.due_targets(campaign.id, NOW, 10)

    def decide(
        account: Account, history: Sequence[PastAttempt], opted_out: bool, prefs: Preferences
    ) -> Decision:
        return gate.decide(account, NOW, history, opted_out, prefs)

    claimed = await store.claim(
        target, NOW, decide, lambda i, _: f"/rec/{i}", "t1", NOW - gate.history_window
    )
    assert isinstance(claimed, Decision) and not claimed.allowed
    assert [r.rule for r in claimed.reasons] == ["7-in-7"]
