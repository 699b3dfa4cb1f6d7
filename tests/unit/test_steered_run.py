"""`duecall run` following a strategy, across days with a settable clock (issue 13 items 3 and 6).

A scripted AMI peer (tests/support/fake_ami.py) plays Asterisk and a scripted gateway the SMS
carrier; the store, the policy, the strategy, the sender and the engine are the real ones. The
same run against the real Asterisk and Kannel is tests/integration/test_strategy_run.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dialer.asterisk.ami import AmiEndpoint
from dialer.campaign.engine import Dialer, RunSummary
from dialer.campaign.steering import Steering
from dialer.core.balance import Payment
from dialer.core.clock import FixedClock
from dialer.core.config import Settings
from dialer.core.models import (
    Attempt,
    CallResult,
    Campaign,
    Decision,
    Disposition,
    IvrStep,
    IvrSummary,
    Reason,
    TargetState,
    TargetUpdate,
)
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import Store
from dialer.store.payments import NewPayment
from duecall import steered, texts
from tests.support.config import make_settings
from tests.support.fake_ami import FakeAmi, block
from tests.support.gateway import ScriptedGateway
from tests.support.records import record
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture


@pytest.fixture
def store(backend_store: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL."""
    return backend_store


STRATEGY = Path(__file__).parents[2] / "dialer/strategy/strategies/us-regf.yaml"
DUE = datetime(2026, 12, 1, tzinfo=UTC).date()  # tests.support.records.record's due date
Message = dict[str, str]


def at_ny(day_offset: int, hour: int = 10) -> datetime:
    """`hour` o'clock in New York on the due date + `day_offset` (EST: UTC-5)."""
    return datetime(DUE.year, DUE.month, DUE.day, hour + 5, tzinfo=UTC) + timedelta(days=day_offset)


@dataclass
class Rig:
    ami: FakeAmi
    store: Store
    settings: Settings
    db: Path
    campaign: Campaign
    clock: FixedClock
    gateway: ScriptedGateway
    port: int
    strategy: Path = STRATEGY

    def dialer(self) -> Dialer:
        endpoint = AmiEndpoint("127.0.0.1", self.port, "duecall", "s3cret")
        gate = PackGate(load_pack("us-regf"))
        strategy = steered.read_strategy(self.settings, self.strategy).strategy
        channel = texts.build(self.settings, self.store, self.clock, "t", self.gateway)
        steering = Steering(self.store, self.campaign, strategy, gate, "dialer:t")
        return Dialer(
            self.settings,
            self.store,
            self.campaign,
            gate,
            self.clock,
            endpoint,
            dialer_id="t",
            steering=steering,
            texts=texts.StrategyTexts(channel),
        )

    async def run_until_idle(self) -> RunSummary:
        return await asyncio.wait_for(self.dialer().run(timedelta(0)), 20)

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows read through the store (either backend), as plain tuples."""
        return [tuple(row) for row in await self.store.fetch_all(sql, params)]  # type: ignore[arg-type]


@asynccontextmanager
async def rig(
    tmp_path: Path, store: Store, start: datetime, accounts: int = 1, strategy: Path = STRATEGY
) -> AsyncIterator[Rig]:
    fake = FakeAmi()
    port = await fake.start()
    settings = make_settings(
        tmp_path,
        asterisk={"reconnect_delay": "0.1s", "action_timeout": "1s"},
        dialer={"ring_timeout": "1s", "max_call": "5s", "poll_interval": "0.05s", "shutdown_grace": "10s"},
        sms={"state_dir": str(tmp_path / "sms")},
    )
    no_answer(fake)
    db = settings.path(settings.store.path)  # (recordings go beside it)
    clock = FixedClock(start)
    try:
        await store.upsert_accounts(
            [record(f"A{i}", f"+1202555{100 + i:04d}") for i in range(accounts)], start
        )
        campaign = await store.create_campaign("c", start)
        campaign = await steered.attach(store, settings, campaign, strategy, start, "operator:test")
        await steered.add_accounts(store, settings, campaign, None, start, "operator:test")
        yield Rig(fake, store, settings, db, campaign, clock, ScriptedGateway(), port, strategy)
    finally:
        await fake.stop()


def no_answer(fake: FakeAmi) -> None:
    """Every Originate is queued, then the dialplan reports NOANSWER."""

    def reply(message: Message) -> list[bytes]:
        key = next(
            v.split("=", 1)[1] for v in message["Variable"].split("\n") if v.startswith("DUECALL_ATTEMPT=")
        )
        events = [
            {
                "Event": "OriginateResponse",
                "ActionID": message["ActionID"],
                "Response": "Failure",
                "Reason": "3",
            },
            {"Event": "UserEvent", "UserEvent": "DueCallDial", "Attempt": key, "DialStatus": "NOANSWER"},
        ]
        asyncio.get_running_loop().call_later(0.05, lambda: [fake.emit(**e) for e in events])
        return [
            block(Response="Success", ActionID=message["ActionID"], Message="Originate successfully queued")
        ]

    fake.on_action["Originate"] = reply


async def pay(r: Rig, amount_minor: int, at: datetime) -> None:
    import_id = await r.store.start_payment_import("payments.csv", at)
    [account] = (await r.store.accounts_named(["A0"])).values()
    payment = Payment(f"P{at:%m%d%H}", amount_minor, "USD", at)
    await r.store.payment_import_batch(import_id, 1, [NewPayment(2, "raw", account.pk, payment)], [], at)


async def test_texts_then_calls_by_days_past_due(store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, store, at_ny(-3)) as r:
        day_minus_3 = await r.run_until_idle()
        assert (day_minus_3.texts, day_minus_3.placed) == (1, 0)
        assert await r.run_until_idle() == RunSummary()  # the same day again: nothing more
        r.clock.at = at_ny(-1)
        assert (await r.run_until_idle()).texts == 0  # no step on day -1
        r.clock.at = at_ny(0)
        assert (await r.run_until_idle()).texts == 1
        for day in (1, 2):
            r.clock.at = at_ny(day)
            summary = await r.run_until_idle()
            assert (summary.placed, summary.texts) == (1, 0)
    templates = [m.text for m in r.gateway.got]
    assert len(templates) == 2 and "1,234.50" in templates[0]
    texts = await r.rows("SELECT batch, step FROM messages ORDER BY id")
    assert texts == [
        ("c/before_due/2026-11-28/1", "segments[1].steps[0]"),
        ("c/due_today/2026-12-01/1", "segments[1].steps[1]"),
    ]
    calls = await r.rows("SELECT decided_at, disposition, step FROM attempts ORDER BY id")
    assert [(d[:10], disp, step) for d, disp, step in calls] == [
        ("2026-12-02", "no_answer", "segments[1].steps[2]"),
        ("2026-12-03", "no_answer", "segments[1].steps[2]"),
    ]


async def test_a_payment_stops_the_strategy_and_the_amount_is_the_balance(
    store: Store, tmp_path: Path
) -> None:
    async with rig(tmp_path, store, at_ny(0)) as r:
        await pay(r, 34_450, at_ny(-1))  # 1,234.50 owed, 344.50 paid: 890.00 left
        await r.run_until_idle()
        assert "890.00" in r.gateway.got[0].text
        await pay(r, 89_000, at_ny(0, 12))
        r.clock.at = at_ny(1)
        summary = await r.run_until_idle()
        assert (summary.placed, summary.texts, summary.stopped) == (0, 0, 1)
    [(state, note)] = await r.rows("SELECT state, note FROM targets")
    assert state == "done" and "paid in full" in note
    [(data,)] = await r.rows("SELECT data FROM audit_events WHERE kind='target.stopped'")
    assert json.loads(data) == {"reason": note, "to_person": False}


async def test_a_contact_the_policy_allows_later_waits_for_it_in_its_lane(
    store: Store, tmp_path: Path
) -> None:
    async with rig(tmp_path, store, at_ny(1, hour=6)) as r:  # 06:00 in New York: no call before 08:00
        summary = await r.run_until_idle()
        assert summary.placed == 0
        [(state, channel, next_at, note)] = await r.rows("SELECT state, channel, next_at, note FROM targets")
        # The strategy asks for the call now; the policy would allow it from 08:00 local: it waits
        # for then in the calls' lane. Scheduling is not a decision: nothing is recorded for it.
        assert (state, channel) == ("pending", "voice") and next_at.startswith("2026-12-02T13:00")
        assert "waits for the policy: window" in note
        assert await r.rows("SELECT count(*) FROM audit_events WHERE kind='contact.blocked'") == [(0,)]
        r.clock.at = at_ny(1, hour=8)
        assert (await r.run_until_idle()).placed == 1
    [(data,)] = await r.rows("SELECT data FROM audit_events WHERE kind='attempt.decided'")
    assert {reason["rule"] for reason in json.loads(data)["reasons"]} >= {"window"}


async def test_a_refusal_in_the_claim_sends_the_account_back_to_the_strategy(
    store: Store, tmp_path: Path
) -> None:
    """The policy said yes when the account was routed, no when the call was claimed (here: the
    number opted out meanwhile): recorded, and the strategy decides again (texts may go on)."""
    async with rig(tmp_path, store, at_ny(1)) as r:
        dialer = r.dialer()
        [target] = await r.store.due_targets(r.campaign.id, at_ny(1), 10, channel=None)
        await r.store.route_target(target, "voice", at_ny(1), "routed")
        await r.store.opt_out(target.account.phone_e164, "voice", at_ny(1), "test")
        [target] = await r.store.due_targets(r.campaign.id, at_ny(1), 10)
        claimed = await r.store.claim(
            target, at_ny(1), dialer._decide_at(at_ny(1)), str, "t", at_ny(-8), True
        )
        assert isinstance(claimed, Decision) and not claimed.allowed
        [(state, channel)] = await r.rows("SELECT state, channel FROM targets")
        assert (state, channel) == ("pending", None)  # not opted_out: the strategy may still text
        assert await r.rows("SELECT count(*) FROM audit_events WHERE kind='contact.blocked'") == [(1,)]


async def test_strategy_change_is_recorded_before_it_is_used(store: Store, tmp_path: Path) -> None:
    copy = tmp_path / "mine.yaml"
    copy.write_text(STRATEGY.read_text(encoding="utf-8"), encoding="utf-8")
    async with rig(tmp_path, store, at_ny(0)) as r:
        campaign = await r.store.create_campaign("mine", at_ny(0))
        campaign = await steered.attach(r.store, r.settings, campaign, copy, at_ny(0), "operator:test")
        copy.write_text(copy.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        await steered.current_strategy(r.store, r.settings, campaign, at_ny(0), "dialer:t")
        found = await r.store.campaign("mine")
        assert found is not None and found.strategy_sha256 != campaign.strategy_sha256
        assert found.seed == campaign.seed
    kinds = [k for (k,) in await r.rows("SELECT kind FROM audit_events WHERE kind='campaign.strategy'")]
    assert len(kinds) == 3  # campaign c, campaign mine, and mine's edit


ARMS = """
arms:
  variants:
    - {name: champion, weight: 1}
    - {name: due-today-early, weight: 1, messages: {before_due: due_today}}
"""


async def test_arms_are_drawn_before_the_first_contact_and_each_gets_its_own(
    store: Store, tmp_path: Path
) -> None:
    mine = tmp_path / "arms.yaml"
    mine.write_text(STRATEGY.read_text(encoding="utf-8") + ARMS, encoding="utf-8")
    async with rig(tmp_path, store, at_ny(-3), accounts=20, strategy=mine) as r:
        drawn = await r.store.arms(r.campaign.id)
        assert len(drawn) == 20 and Counter(drawn.values()) == {"champion": 10, "due-today-early": 10}
        assert (await r.run_until_idle()).texts == 20
        again = await steered.add_accounts(r.store, r.settings, r.campaign, None, at_ny(-3), "operator:test")
        assert again == (0, 0) and await r.store.arms(r.campaign.id) == drawn  # never changes
    pks = {account_id: pk for pk, account_id in await r.rows("SELECT id, account_id FROM accounts")}
    sent = dict(
        await r.rows("SELECT a.account_id, m.template FROM messages m JOIN accounts a ON a.id=m.account_pk")
    )
    for account_id, template in sent.items():
        want = "before_due" if drawn[pks[account_id]] == "champion" else "due_today"
        assert template.endswith(f"#{want}"), (account_id, template)
    [(seed,)] = await r.rows("SELECT seed FROM campaigns")
    assigned = [
        json.loads(d) for (d,) in await r.rows("SELECT data FROM audit_events WHERE kind='arm.assigned'")
    ]
    assert len(assigned) == 20 and {a["seed"] for a in assigned} == {seed}


async def test_a_crash_while_a_text_is_handed_over_sends_no_second_one(store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, store, at_ny(-3)) as r:
        r.gateway.hang = asyncio.Event()  # the gateway never answers: the dialer dies meanwhile
        run = asyncio.create_task(r.dialer().run(timedelta(0)))
        while not r.gateway.got:
            await asyncio.sleep(0.02)
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        assert await r.rows("SELECT state FROM messages") == [("queued",)]  # written and counted first
        r.gateway.hang = None
        r.clock.advance(timedelta(minutes=5))
        stale = await texts.build(r.settings, r.store, r.clock, "t", r.gateway).sender.reconcile()
        again = await r.run_until_idle()
        assert again.texts == 0 and len(r.gateway.got) == 1
    assert await r.rows("SELECT state FROM messages") == [("unknown",)] and len(stale) == 1


def _allow(*_: object) -> Decision:
    return Decision(True, (Reason("test", "allowed"),))


async def said(r: Rig, outcome: str, at: datetime, promised: date | None = None) -> None:
    """An earlier answered call (another campaign) on which the borrower chose `outcome`."""
    earlier = await r.store.create_campaign("earlier", at)
    await r.store.add_targets(earlier.id, at)
    [target] = await r.store.due_targets(earlier.id, at, 1)
    attempt = await r.store.claim(target, at, _allow, lambda i, _: str(r.db.parent / str(i)), "t", at)
    assert isinstance(attempt, Attempt)
    step = IvrStep(at, "menu", "outcome", {"outcome": outcome})
    ivr = IvrSummary("reminder-en-US", outcome, promised, 123450 if promised else None, True, (step,))
    result = CallResult(Disposition.ANSWERED, at + timedelta(seconds=40), answered_at=at, ivr=ivr)
    await r.store.finish_attempt(attempt, result, TargetUpdate(TargetState.DONE, at), "dialer:t")


async def days(
    r: Rig, first: int, last: int, notes: dict[int, str] | None = None
) -> dict[int, tuple[int, int]]:
    """Run each day from `first` to `last` at 10:00 New York: (calls, texts) per day; `notes`
    gets the campaign's target's note at the end of each day."""
    out = {}
    for day in range(first, last + 1):
        r.clock.at = at_ny(day)
        summary = await r.run_until_idle()
        out[day] = (summary.placed, summary.texts)
        if notes is not None:
            [(notes[day],)] = await r.rows("SELECT note FROM targets WHERE campaign_id=?", r.campaign.id)
    return out


async def test_a_promise_is_waited_for_then_a_broken_one_brings_a_call(store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, store, at_ny(1)) as r:
        await said(r, "promise_to_pay", at_ny(1, 9), promised=DUE + timedelta(days=3))
        notes: dict[int, str] = {}
        got = await days(r, 1, 9, notes)
    # Silent through the promised day (day 3) and its day of grace (day 4). From day 5 the broken
    # promise asks for a call, and Regulation F allows none until 7 days after the conversation
    # of day 1 (the promise was one): the call comes on day 8. The strategy asks, the policy decides.
    assert got == {d: (1 if d >= 8 else 0, 0) for d in range(1, 10)}
    assert (
        notes[5].startswith("promise of 2026-12-04 broken")
        and "waits for the policy: conversation" in notes[5]
    )


async def test_a_kept_promise_stops_everything(store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, store, at_ny(1)) as r:
        await said(r, "promise_to_pay", at_ny(1, 9), promised=DUE + timedelta(days=3))
        await pay(r, 123_450, at_ny(3, 9))
        got = await days(r, 1, 6)
    assert got == {d: (0, 0) for d in range(1, 7)}
    [(state, note)] = await r.rows("SELECT state, note FROM targets WHERE campaign_id=1")
    assert state == "done" and "paid in full" in note


async def test_a_dispute_goes_to_a_person_and_nothing_more_is_sent(store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, store, at_ny(2)) as r:
        await said(r, "dispute", at_ny(1, 9))
        got = await days(r, 2, 4)
    assert got == {2: (0, 0), 3: (0, 0), 4: (0, 0)}
    [(data,)] = await r.rows("SELECT data FROM audit_events WHERE kind='target.stopped'")
    assert json.loads(data)["to_person"] is True and "dispute" in json.loads(data)["reason"]


async def test_a_new_bucket_moves_the_account_to_the_next_step(store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, store, at_ny(29)) as r:
        got = await days(r, 29, 35)
    # Days 1-30 (M1): a call a day (20 h apart); from day 31 (M2) 44 h apart: the call of day 30
    # at 10:00 makes day 31 silent. After three unanswered calls a text takes the next call's place.
    calls = [d for d, (placed, _) in got.items() if placed]
    texts = [d for d, (_, sent) in got.items() if sent]
    assert calls == [29, 30, 32, 35] and texts == [34], got
