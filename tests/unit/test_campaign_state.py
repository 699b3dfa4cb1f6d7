"""A campaign's state (issue 14 item 4): start, pause, resume into the audit chain; the live read (on
SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.verify import verify_store
from dialer.core.config import load_settings
from dialer.core.errors import CampaignStateError
from dialer.core.messages import TextRequest
from dialer.core.models import (
    Account,
    Attempt,
    CallResult,
    Decision,
    Disposition,
    Reason,
    Target,
    TargetState,
    TargetUpdate,
)
from dialer.core.vocab import CampaignState, MessageState, RuleId
from dialer.store import SqliteStore, Store
from dialer.store.db import _migrations, _statements
from dialer.store.opening import open_store
from duecall.cli import main
from tests.support.audit_seed import backend_url
from tests.support.config import write_config
from tests.support.records import record
from tests.support.stores import backend_store

__all__ = ["backend_store", "backend_url"]  # the fixtures, on both backends

NOW = datetime(2026, 12, 2, 15, tzinfo=UTC)
S = CampaignState


async def rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in await store.fetch_all(sql)]


@pytest.fixture
def store(backend_store: Store) -> Store:
    return backend_store


async def _accounts(store: Store, accounts: int) -> None:
    phones = [f"+1202555{100 + i:04d}" for i in range(accounts)]
    await store.upsert_accounts([record(f"A{i}", p) for i, p in enumerate(phones)], NOW)


# -- transitions ------------------------------------------------------------------------------


async def test_start_pause_resume_each_go_into_the_chain_with_who(store: Store) -> None:
    campaign = await store.create_campaign("c", NOW)
    assert campaign.state is S.NEW and await store.campaign_state(campaign.id) is S.NEW
    started = await store.set_campaign_state(campaign.id, S.RUNNING, NOW, "operator:ana", expected=S.NEW)
    paused = await store.set_campaign_state(campaign.id, S.PAUSED, NOW, "web:bo")
    resumed = await store.set_campaign_state(campaign.id, S.RUNNING, NOW, "operator:ana", expected=S.PAUSED)
    found = await store.campaign("c")
    assert (started.state, paused.state, resumed.state) == (S.RUNNING, S.PAUSED, S.RUNNING)
    assert found is not None and found.state is S.RUNNING and found.name == "c"
    events = await rows(
        store,
        "SELECT kind, actor, campaign_id, data FROM audit_events WHERE kind LIKE 'campaign.%' ORDER BY seq",
    )
    assert [(k, a, c, json.loads(str(d))) for k, a, c, d in events] == [
        ("campaign.created", "operator", campaign.id, {"name": "c"}),
        ("campaign.started", "operator:ana", campaign.id, {"name": "c"}),
        ("campaign.paused", "web:bo", campaign.id, {"name": "c"}),
        ("campaign.resumed", "operator:ana", campaign.id, {"name": "c"}),
    ]
    report = await verify_store(store)
    assert report.broken is None and report.events == 4


@pytest.mark.parametrize(
    ("path", "to", "expected", "message"),
    [
        ([], S.PAUSED, None, "campaign 'c' is new: it cannot be paused"),
        ([], S.RUNNING, S.PAUSED, "campaign 'c' is new: it cannot be resumed"),
        ([S.RUNNING], S.RUNNING, S.NEW, "campaign 'c' is running: it cannot be started"),
        ([S.RUNNING], S.RUNNING, None, "campaign 'c' is running: it cannot be started or resumed"),
        ([S.RUNNING, S.PAUSED], S.PAUSED, None, "campaign 'c' is paused: it cannot be paused"),
        ([S.RUNNING, S.PAUSED], S.RUNNING, S.NEW, "campaign 'c' is paused: it cannot be started"),
        ([S.RUNNING], S.NEW, None, "campaign 'c' is running: it cannot be made new again"),
    ],
)
async def test_a_change_that_makes_no_sense_is_refused_and_writes_nothing(
    store: Store, path: list[CampaignState], to: CampaignState, expected: CampaignState | None, message: str
) -> None:
    campaign = await store.create_campaign("c", NOW)
    for state in path:
        await store.set_campaign_state(campaign.id, state, NOW, "operator:t")
    before = await rows(store, "SELECT count(*) FROM audit_events")
    with pytest.raises(CampaignStateError) as refused:
        await store.set_campaign_state(campaign.id, to, NOW, "operator:t", expected=expected)
    assert await store.campaign_state(campaign.id) is (path[-1] if path else S.NEW)
    assert str(refused.value) == message
    assert refused.value.campaign == "c"
    assert await rows(store, "SELECT count(*) FROM audit_events") == before


async def test_campaigns_made_before_the_states_are_running(tmp_path: Path) -> None:
    """Migration 0012 on a database of the version before: its campaigns have run, so they run."""
    # SQLite only: its file at schema 11 (PostgreSQL's schema starts at 16, with the states).
    with sqlite3.connect(tmp_path / "d.db") as conn:  # schema 11, as DueCall left it before this
        for number, script in _migrations():
            if number <= 11:
                for statement in _statements(script):
                    conn.execute(statement)
        conn.execute("INSERT INTO campaigns (name, created_at) VALUES ('old', '2026-11-01T00:00:00.000000Z')")
        conn.execute("PRAGMA user_version=11")
    conn.close()
    store = await SqliteStore.open(tmp_path / "d.db")
    try:
        old = await store.campaign("old")
        new = await store.create_campaign("new", NOW)
    finally:
        await store.close()
    assert old is not None and old.state is S.RUNNING
    assert new.state is S.NEW


async def test_an_unknown_campaign_id_is_an_error(store: Store) -> None:
    with pytest.raises(Exception, match="no campaign with id 99"):
        await store.set_campaign_state(99, S.RUNNING, NOW, "operator:t")
    with pytest.raises(Exception, match="no campaign with id 99"):
        await store.live_state(99, NOW)


# -- the live read -------------------------------------------------------------------------------


def _allow(*_: object) -> Decision:
    return Decision(True)


def _refuse(rule: RuleId, detail: str, at: datetime) -> Callable[..., Decision]:
    def decide(*_: object) -> Decision:
        reasons = (Reason(rule, detail), Reason(RuleId.CONSENT, "within a consent window"))
        return Decision(False, reasons, at + timedelta(hours=2))

    return decide


async def _target(store: Store, campaign_id: int, account_id: str) -> Target:
    due = await store.due_targets(campaign_id, NOW + timedelta(days=1), 50)
    return next(t for t in due if t.account.account_id == account_id)


async def _claim(store: Store, campaign_id: int, account_id: str, at: datetime) -> Attempt:
    target = await _target(store, campaign_id, account_id)
    attempt = await store.claim(target, at, _allow, lambda i, _: f"/rec/{i}", "t", at - timedelta(days=7))
    assert isinstance(attempt, Attempt)
    return attempt


async def _finish(store: Store, attempt: Attempt, disposition: Disposition, at: datetime) -> None:
    result = CallResult(disposition, at)
    await store.finish_attempt(attempt, result, TargetUpdate(TargetState.PENDING, at + timedelta(hours=3)))


async def _text(
    store: Store, campaign_id: int, account: Account, at: datetime, state: MessageState | None
) -> None:
    request = TextRequest(account, f"b{at:%H%M}", "reminder.yaml#due", "Pay", "gsm-7", 1, "test", campaign_id)
    message = await store.claim_message(request, at, _allow, "t", at - timedelta(days=7))
    assert message is not None and not isinstance(message, Decision)
    if state is not None:
        await store.advance_message(message.id, state, at, "gateway:test", "report")


async def test_live_state_counts_what_is_under_way_and_what_ended(store: Store) -> None:
    await _accounts(store, 8)
    campaign = await store.create_campaign("c", NOW - timedelta(hours=3))
    await store.add_targets(campaign.id, NOW - timedelta(hours=3))
    other = await store.create_campaign("other", NOW)  # its calls and refusals never count here
    await store.add_targets(other.id, NOW)
    accounts = await store.accounts_named([f"A{i}" for i in range(8)])
    long_ago, recent = NOW - timedelta(minutes=20), NOW - timedelta(seconds=20)
    # Calls: two ended (long ago: busy; recently: no answer), one still open (recent).
    await _finish(store, await _claim(store, campaign.id, "A0", long_ago), Disposition.BUSY, long_ago)
    await _finish(store, await _claim(store, campaign.id, "A1", recent), Disposition.NO_ANSWER, recent)
    await _claim(store, campaign.id, "A2", recent)
    await _claim(store, other.id, "A3", recent)
    # Texts: one delivered long ago, one accepted (in flight) recently, one queued recently.
    await _text(store, campaign.id, accounts["A4"], long_ago, MessageState.DELIVERED)
    await _text(store, campaign.id, accounts["A5"], recent, MessageState.ACCEPTED)
    await _text(store, campaign.id, accounts["A6"], recent, None)
    # Refusals: 7-in-7 twice (the latest detail wins), the window once, one two hours ago.
    for account, rule, detail, at in [
        ("A7", RuleId.SEVEN_IN_SEVEN, "call 8 of 7", NOW - timedelta(hours=2)),
        ("A7", RuleId.SEVEN_IN_SEVEN, "call 8 of 7 (first)", NOW - timedelta(minutes=30)),
        ("A3", RuleId.WINDOW, "21:30 local is after 21:00", NOW - timedelta(minutes=10)),
        ("A7", RuleId.SEVEN_IN_SEVEN, "call 8 of 7 (latest)", NOW - timedelta(minutes=5)),
    ]:
        target = await _target(store, campaign.id, account)
        refused = await store.claim(target, at, _refuse(rule, detail, at), lambda i, _: "", "t", at)
        assert isinstance(refused, Decision) and not refused.allowed
    target = await _target(store, other.id, "A4")
    await store.claim(target, recent, _refuse(RuleId.WINDOW, "x", recent), lambda i, _: "", "t", recent)
    await store.set_campaign_state(campaign.id, S.RUNNING, NOW, "operator:t")
    live = await store.live_state(campaign.id, NOW)
    await store.set_campaign_state(campaign.id, S.PAUSED, NOW, "operator:t")
    paused = await store.live_state(campaign.id, NOW, upcoming=2)
    assert live.state is S.RUNNING
    assert (live.calls_in_flight, live.texts_in_flight) == (1, 2)
    assert (live.calls_last_minute, live.texts_last_minute) == (2, 2)
    assert live.dispositions == {"busy": 1, "no_answer": 1}
    assert live.deliveries == {"delivered": 1, "accepted": 1, "queued": 1}
    assert live.refusals_last_hour == {"7-in-7": 2, "window": 1}  # consent only informs: not counted
    assert live.latest_refusal == {"7-in-7": "call 8 of 7 (latest)", "window": "21:30 local is after 21:00"}
    # Next due, soonest first: the accounts with no call yet (in any order: one time), then those
    # the policy put off (till 2 hours after the refusal), then those called (3 hours after).
    ids = [d.account_id for d in live.next_due]
    assert sorted(ids[:3]) == ["A4", "A5", "A6"] and ids[3:] == ["A3", "A7", "A0", "A1"]
    first, put_off = live.next_due[0], live.next_due[4]
    assert (first.at, first.channel, first.note) == (NOW - timedelta(hours=3), "voice", "")
    assert put_off.at == NOW + timedelta(hours=1, minutes=55)
    assert put_off.note == "7-in-7: call 8 of 7 (latest); consent: within a consent window"
    assert paused.state is S.PAUSED and len(paused.next_due) == 2


async def test_live_state_of_an_empty_campaign_is_all_zero(store: Store) -> None:
    campaign = await store.create_campaign("c", NOW)
    live = await store.live_state(campaign.id, NOW)
    assert live.state is S.NEW
    assert (live.calls_in_flight, live.texts_in_flight, live.calls_last_minute, live.texts_last_minute) == (
        0,
        0,
        0,
        0,
    )
    assert live.dispositions == live.deliveries == live.refusals_last_hour == {} and live.next_due == []


# -- the CLI ------------------------------------------------------------------------------------


def test_the_cli_starts_pauses_resumes_and_refuses_with_one_line(backend_url: str, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "duecall.toml", {"store": {"path": str(tmp_path / "d.db"), "url": backend_url}}
    )

    def duecall(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--config", str(cfg), *args], env={"COLUMNS": "200"})
        return result.exit_code, result.output

    assert duecall("campaign", "create", "nov")[0] == 0
    code, out = duecall("campaign", "resume", "nov")
    assert (code, out.strip()) == (1, "duecall: error: campaign 'nov' is new: it cannot be resumed")
    assert duecall("campaign", "start", "nov") == (0, "campaign nov: running.\n")
    assert duecall("campaign", "pause", "nov") == (0, "campaign nov: paused.\n")
    code, out = duecall("status", "nov")
    assert code == 0 and out.startswith("campaign nov: paused\n")
    assert duecall("campaign", "resume", "nov") == (0, "campaign nov: running.\n")
    code, out = duecall("campaign", "start", "nov")
    assert (code, out.strip()) == (1, "duecall: error: campaign 'nov' is running: it cannot be started")
    code, out = duecall("campaign", "pause", "nope")
    assert code == 1 and "no campaign named 'nope'" in out
    actors = asyncio.run(_campaign_events(cfg))
    assert [k for k, _ in actors] == [
        "campaign.created",
        "campaign.started",
        "campaign.paused",
        "campaign.resumed",
    ]
    assert len({a for _, a in actors}) == 1 and str(actors[0][1]).startswith("operator:")


async def _campaign_events(cfg: Path) -> list[tuple[object, ...]]:
    store = await open_store(load_settings(cfg))
    try:
        return await rows(
            store, "SELECT kind, actor FROM audit_events WHERE kind LIKE 'campaign.%' ORDER BY seq"
        )
    finally:
        await store.close()
