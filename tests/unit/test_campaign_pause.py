"""`duecall run` while its campaign is paused (issue 14 item 4): no new call or text, calls under way
finish, the run waits, and a resume carries on.

A scripted AMI peer (tests/support/fake_ami.py) plays Asterisk and a scripted gateway the carrier;
the store, the policy, the strategy and the engine are the real ones. The same pause against the
real Asterisk is tests/integration/test_pause_asterisk.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dialer.asterisk.ami import AmiEndpoint
from dialer.campaign.engine import Dialer
from dialer.campaign.steering import Steering
from dialer.core.clock import FixedClock
from dialer.core.models import Campaign
from dialer.core.vocab import CampaignState
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import Store
from duecall import steered, texts
from tests.support.config import make_settings
from tests.support.fake_ami import FakeAmi, block
from tests.support.gateway import ScriptedGateway
from tests.support.records import record
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture: every test here runs on SQLite and on PostgreSQL
NOW = datetime(2026, 11, 30, 15, tzinfo=UTC)  # 10:00 in New York, the test accounts' zone
# 10:00 in New York three days before the accounts' due date: the strategy texts them.
BEFORE_DUE = datetime(2026, 11, 28, 15, tzinfo=UTC)
STRATEGY = Path(__file__).parents[2] / "dialer/strategy/strategies/us-regf.yaml"
S = CampaignState
Message = dict[str, str]


@dataclass
class Line:
    """Asterisk's side: each Originate is queued; its call ends busy when the test says (`hold`)
    or at once."""

    fake: FakeAmi
    hold: bool = True
    originates: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, call key)

    def __post_init__(self) -> None:
        self.fake.on_action["Originate"] = self._originate

    def _originate(self, message: Message) -> list[bytes]:
        key = next(
            v.split("=", 1)[1] for v in message["Variable"].split("\n") if v.startswith("DUECALL_ATTEMPT=")
        )
        self.originates.append((time.monotonic(), key))
        if not self.hold:
            asyncio.get_running_loop().call_later(0.05, self.end, key)
        return [
            block(Response="Success", ActionID=message["ActionID"], Message="Originate successfully queued")
        ]

    def end(self, key: str) -> None:
        self.fake.emit(Event="UserEvent", UserEvent="DueCallDial", Attempt=key, DialStatus="BUSY", Cause="17")


@asynccontextmanager
async def voice_rig(
    tmp_path: Path, store: Store, accounts: int
) -> AsyncIterator[tuple[Store, Campaign, Line, Store, Any]]:
    fake = FakeAmi()
    port = await fake.start()
    settings = make_settings(
        tmp_path,
        asterisk={"reconnect_delay": "0.1s", "action_timeout": "1s"},
        dialer={"ring_timeout": "5s", "max_call": "30s", "poll_interval": "0.05s", "shutdown_grace": "10s"},
    )
    try:
        await store.upsert_accounts([record(f"A{i}", f"+1202555{100 + i:04d}") for i in range(accounts)], NOW)
        campaign = await store.create_campaign("c", NOW)
        await store.add_targets(campaign.id, NOW)
        endpoint = AmiEndpoint("127.0.0.1", port, "duecall", "s3cret")

        def dialer() -> Dialer:
            gate = PackGate(load_pack("us-regf"))
            return Dialer(
                settings, store, campaign, gate, FixedClock(NOW), endpoint, started_by="operator:ana"
            )

        yield store, campaign, Line(fake), store, dialer
    finally:
        await fake.stop()


async def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    """Rows read through the store (either backend), as plain tuples."""
    return [tuple(row) for row in await store.fetch_all(sql)]  # type: ignore[arg-type]


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


async def originated(line: Line) -> bool:
    return bool(line.originates)


async def test_a_pause_stops_new_calls_the_call_under_way_ends_and_a_resume_carries_on(
    backend_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "dialer.campaign.switch")
    async with voice_rig(tmp_path, backend_store, accounts=3) as (store, campaign, line, db, make):
        dialer = make()
        dialer.pacer.max_concurrent = 1  # one line: the second account waits for the first call
        reads = _count_state_reads(store)
        run = asyncio.create_task(dialer.run(timedelta(0)))
        await until(lambda: originated(line))
        # `duecall run` started the new campaign, as the CLI's user.
        assert await rows(db, "SELECT actor FROM audit_events WHERE kind='campaign.started'") == [
            ("operator:ana",)
        ]
        await store.set_campaign_state(campaign.id, S.PAUSED, NOW, "web:bo")
        await asyncio.sleep(1.2)  # the switch reads the state at most once a second
        line.end(line.originates[0][1])  # the call under way ends as usual, while paused
        await until(lambda: _one_ended(db))
        paused_at = time.monotonic()
        reads.clear()
        await asyncio.sleep(2.0)
        assert len(line.originates) == 1  # the line is free, but the campaign is paused
        assert not run.done()  # a paused campaign is not finished, even with nothing due later
        assert len(reads) <= 3  # one read a second, shared by the lanes
        line.hold = False
        await store.set_campaign_state(campaign.id, S.RUNNING, NOW, "web:bo")
        summary = await asyncio.wait_for(run, 10)
    assert (summary.placed, summary.finished) == (3, 3)
    assert all(at > paused_at + 2.0 for at, _ in line.originates[1:])  # only after the resume
    assert await rows(db, "SELECT disposition FROM attempts ORDER BY id") == [("busy",)] * 3
    said = [r.getMessage() for r in caplog.records if r.name == "dialer.campaign.switch"]
    assert [m.split(":")[0] for m in said] == ["campaign c is paused", "campaign c resumed"]  # once each


async def test_stop_ends_a_paused_run_promptly(backend_store: Store, tmp_path: Path) -> None:
    async with voice_rig(tmp_path, backend_store, accounts=2) as (store, campaign, line, db, make):
        await store.set_campaign_state(campaign.id, S.RUNNING, NOW, "operator:t")
        await store.set_campaign_state(campaign.id, S.PAUSED, NOW, "operator:t")
        dialer = make()
        run = asyncio.create_task(dialer.run(None))  # until every account is settled
        await asyncio.sleep(1.0)
        assert line.originates == [] and not run.done()
        asked = time.monotonic()
        dialer.stop()
        summary = await asyncio.wait_for(run, 5)
        stopped_in = time.monotonic() - asked
    assert summary.placed == 0 and summary.stopped_by_signal
    assert stopped_in < 1.5
    # It was started before: the run starts nothing again.
    assert await rows(db, "SELECT count(*) FROM audit_events WHERE kind='campaign.started'") == [(1,)]


async def test_a_paused_strategy_routes_nothing_and_sends_no_text(
    backend_store: Store, tmp_path: Path
) -> None:
    store = backend_store
    fake = FakeAmi()
    port = await fake.start()
    settings = make_settings(
        tmp_path,
        asterisk={"reconnect_delay": "0.1s", "action_timeout": "1s"},
        dialer={"poll_interval": "0.05s", "shutdown_grace": "10s"},
        sms={"state_dir": str(tmp_path / "sms")},
    )
    db = store
    gateway = ScriptedGateway()
    try:
        await store.upsert_accounts([record("A0", "+12025550100")], BEFORE_DUE)
        campaign = await store.create_campaign("c", BEFORE_DUE)
        campaign = await steered.attach(store, settings, campaign, STRATEGY, BEFORE_DUE, "operator:t")
        await steered.add_accounts(store, settings, campaign, None, BEFORE_DUE, "operator:t")
        await store.set_campaign_state(campaign.id, S.RUNNING, BEFORE_DUE, "operator:t")
        await store.set_campaign_state(campaign.id, S.PAUSED, BEFORE_DUE, "operator:t")
        clock = FixedClock(BEFORE_DUE)
        gate = PackGate(load_pack("us-regf"))
        channel = texts.build(settings, store, clock, "t", gateway)
        strategy = steered.read_strategy(settings, STRATEGY).strategy
        dialer = Dialer(
            settings,
            store,
            campaign,
            gate,
            clock,
            AmiEndpoint("127.0.0.1", port, "duecall", "s3cret"),
            dialer_id="t",
            steering=Steering(store, campaign, strategy, gate, "dialer:t"),
            texts=texts.StrategyTexts(channel),
        )
        lanes_before = await rows(db, "SELECT channel, next_at, note FROM targets")
        run = asyncio.create_task(dialer.run(timedelta(0)))
        await asyncio.sleep(1.5)
        assert await rows(db, "SELECT channel, next_at, note FROM targets") == lanes_before  # nothing routed
        assert gateway.got == [] and await rows(db, "SELECT count(*) FROM messages") == [(0,)]
        assert not run.done()
        await store.set_campaign_state(campaign.id, S.RUNNING, BEFORE_DUE, "operator:t")
        summary = await asyncio.wait_for(run, 20)
    finally:
        await fake.stop()
    assert (summary.texts, summary.placed) == (1, 0)
    assert len(gateway.got) == 1


async def _one_ended(store: Store) -> bool:
    return await rows(store, "SELECT count(*) FROM attempts WHERE state='ended'") == [(1,)]


def _count_state_reads(store: Store) -> list[float]:
    """Wrap the store's state read: the times it was called."""
    calls: list[float] = []
    read = store.campaign_state

    async def counted(campaign_id: int) -> CampaignState:
        calls.append(time.monotonic())
        return await read(campaign_id)

    store.campaign_state = counted  # type: ignore[method-assign]
    return calls
