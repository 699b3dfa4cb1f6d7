"""The dialer when Asterisk stops, restarts, refuses, times out or keeps leftovers (issue 9, 13-19).

A scripted AMI peer (tests/support/fake_ami.py) plays Asterisk's side, so each fault happens exactly
when the test wants it. The same paths run against the real Asterisk in test_dialer_cut.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dialer.asterisk.ami import AmiEndpoint
from dialer.campaign.engine import Dialer
from dialer.campaign.retry import after_attempt
from dialer.core.clock import FixedClock
from dialer.core.config import Settings
from dialer.core.models import Attempt, CallResult, Decision, Disposition, IvrStep, Reason
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import Store
from tests.support.config import make_settings
from tests.support.fake_ami import FakeAmi, block
from tests.support.records import record
from tests.support.stores import backend_store

NOW = datetime(2026, 11, 30, 15, tzinfo=UTC)  # 10:00 in New York, the test accounts' zone
Message = dict[str, str]
__all__ = ["backend_store"]  # the fixture
DIALER = "dialer-a"  # every run here is this one dialer's (it reconciles only its own attempts)


@dataclass
class Rig:
    ami: FakeAmi
    store: Store
    settings: Settings
    campaign_id: int = 0
    originates: list[Message] = field(default_factory=list)

    port: int = 0

    def dialer(self, campaign: Any, ivr: Any = None) -> Dialer:
        endpoint = AmiEndpoint("127.0.0.1", self.port, "duecall", "s3cret")
        gate = PackGate(load_pack("us-regf"))
        clock = FixedClock(NOW)
        return Dialer(self.settings, self.store, campaign, gate, clock, endpoint, dialer_id=DIALER, ivr=ivr)

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows read through the store (either backend), as plain tuples."""
        return [tuple(row) for row in await self.store.fetch_all(sql, params)]  # type: ignore[arg-type]


@pytest.fixture
def store(backend_store: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL."""
    return backend_store


@asynccontextmanager
async def rig(tmp_path: Path, store: Store, accounts: int = 1) -> AsyncIterator[tuple[Rig, Any]]:
    fake = FakeAmi()
    port = await fake.start()
    settings = make_settings(
        tmp_path,
        asterisk={"reconnect_delay": "0.1s", "action_timeout": "1s"},
        dialer={"ring_timeout": "1s", "max_call": "5s", "poll_interval": "0.05s", "shutdown_grace": "10s"},
    )
    try:
        phones = [f"+1202555{100 + i:04d}" for i in range(accounts)]
        await store.upsert_accounts([record(f"A{i}", p) for i, p in enumerate(phones)], NOW)
        campaign = await store.create_campaign("c", NOW)
        await store.add_targets(campaign.id, NOW)
        yield Rig(fake, store, settings, campaign.id, port=port), campaign
    finally:
        await fake.stop()


def originate_reply(fake: FakeAmi, then: Callable[[Message], list[Message]]) -> None:
    """Asterisk queues every Originate, then (a moment later) sends the events `then` gives."""

    def reply(message: Message) -> list[bytes]:
        events = then(message)
        asyncio.get_running_loop().call_later(0.05, lambda: [fake.emit(**e) for e in events])
        return [
            block(Response="Success", ActionID=message["ActionID"], Message="Originate successfully queued")
        ]

    fake.on_action["Originate"] = reply


class Stopping:
    """While `on`, Asterisk answers every Ping (and Originate, if asked) "Asterisk is shutting down"."""

    def __init__(self, fake: FakeAmi, originates_too: bool = False) -> None:
        self.on = True
        self.refused: list[Message] = []
        fake.on_action["Ping"] = self._ping
        if originates_too:
            fake.on_action["Originate"] = self._refuse

    def _refuse(self, message: Message) -> list[bytes]:
        self.refused.append(message)
        return [block(Response="Error", ActionID=message["ActionID"], Message="Asterisk is shutting down")]

    def _ping(self, message: Message) -> list[bytes]:
        if self.on:
            return self._refuse(message)
        return [block(Response="Success", ActionID=message["ActionID"], Ping="Pong")]


def key_of(message: Message) -> str:
    """The call key the dialer gave the Originate (repeated Variable headers arrive joined by \\n)."""
    variables = message["Variable"].split("\n")
    return next(v.split("=", 1)[1] for v in variables if v.startswith("DUECALL_ATTEMPT="))


async def run(dialer: Dialer, timeout: float = 20) -> None:
    await asyncio.wait_for(dialer.run(timedelta(0)), timeout)


# -- item 15: refused Originates, Asterisk shutting down ------------------------------------


async def test_refused_originate_is_not_counted_and_claiming_stops(store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, store, accounts=3) as (r, campaign):
        stopping = Stopping(r.ami, originates_too=True)
        dialer = r.dialer(campaign)
        task = asyncio.create_task(run(dialer))
        while not stopping.refused:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        # Asterisk is stopping: one refusal, then no more claims (3 accounts were due).
        assert [m["Action"] for m in stopping.refused].count("Originate") == 1
        assert await r.rows("SELECT count(*) FROM attempts") == [(1,)]
        # Asterisk is back (a new login): the two others are placed, and answer busy.
        originate_reply(
            r.ami,
            lambda m: [
                {
                    "Event": "OriginateResponse",
                    "ActionID": m["ActionID"],
                    "Response": "Failure",
                    "Reason": "5",
                },
                {
                    "Event": "UserEvent",
                    "UserEvent": "DueCallDial",
                    "Attempt": key_of(m),
                    "DialStatus": "BUSY",
                },
            ],
        )
        stopping.on = False
        r.ami.drop_all()
        await task
    rows = await r.rows("SELECT disposition, note FROM attempts ORDER BY id")
    assert [d for d, _ in rows] == ["not_placed", "busy", "busy"]
    assert "originate refused: Asterisk is shutting down" in rows[0][1]
    # Not counted: the account's attempt number is given back, the policy never sees it.
    targets = await r.rows(
        "SELECT a.account_id, t.attempts, t.state FROM targets t JOIN accounts a ON a.id=t.account_pk"
    )
    assert ("A0", 0, "pending") in targets
    [(data,)] = await r.rows("SELECT data FROM audit_events WHERE kind='call.ended' AND attempt_id=1")
    assert json.loads(data)["counted"] is False and json.loads(data)["disposition"] == "not_placed"
    seen: list[int] = []

    def count_history(account, history, opted_out, prefs):  # type: ignore[no-untyped-def]
        seen.append(len(history))
        return Decision(False, (Reason("test", "just looking"),), NOW + timedelta(hours=1))

    [target] = [t for t in await store.due_targets(r.campaign_id, NOW + timedelta(minutes=2), 10)]
    await store.claim(target, NOW, count_history, lambda i, at: "", "t", NOW - timedelta(days=7))
    assert seen == [0]


async def test_shutdown_event_stops_claiming(store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, store, accounts=2) as (r, campaign):
        originate_reply(r.ami, lambda m: [])
        dialer = r.dialer(campaign)
        dialer.pacer.max_concurrent = 1  # one line: the second account waits for the first call
        task = asyncio.create_task(run(dialer))
        while not r.ami.actions("Originate"):
            await asyncio.sleep(0.02)
        key = key_of(r.ami.actions("Originate")[0])
        stopping = Stopping(r.ami)
        r.ami.emit(Event="Shutdown", Shutdown="Cleanly", Restart="False")
        await asyncio.sleep(0.1)
        r.ami.emit(Event="UserEvent", UserEvent="DueCallDial", Attempt=key, DialStatus="BUSY", Cause="17")
        await asyncio.sleep(0.5)
        assert len(r.ami.actions("Originate")) == 1  # the line is free, but Asterisk is stopping
        stopping.on = False  # it comes back: the next login lets the dialer claim again
        r.ami.drop_all()
        while len(r.ami.actions("Originate")) < 2:
            await asyncio.sleep(0.02)
        key = key_of(r.ami.actions("Originate")[1])
        r.ami.emit(Event="UserEvent", UserEvent="DueCallDial", Attempt=key, DialStatus="BUSY", Cause="17")
        await task


async def test_a_cancelled_shutdown_lets_claiming_resume(store: Store, tmp_path: Path) -> None:
    """`core abort shutdown`: same AMI session, Asterisk answers again, so calls resume."""
    async with rig(tmp_path, store, accounts=2) as (r, campaign):
        stopping = Stopping(r.ami, originates_too=True)
        task = asyncio.create_task(run(r.dialer(campaign)))
        while not stopping.refused:
            await asyncio.sleep(0.02)
        originate_reply(
            r.ami,
            lambda m: [
                {"Event": "UserEvent", "UserEvent": "DueCallDial", "Attempt": key_of(m), "DialStatus": "BUSY"}
            ],
        )
        stopping.on = False
        await task
    assert await r.rows("SELECT disposition FROM attempts ORDER BY id") == [("not_placed",), ("busy",)]
    assert r.ami.connections == 1


async def test_calls_cut_by_asterisk_stopping_are_cut_not_early_hangups(store: Store, tmp_path: Path) -> None:
    """`core stop now`: every call is hung up and reported like a hang-up (ANSWER/16, stage prompt)."""
    async with rig(tmp_path, store, accounts=2) as (r, campaign):
        stopping = Stopping(r.ami)
        stopping.on = False

        def answered_then_stopped(m: Message) -> list[Message]:
            stopping.on = True  # `core stop now` arrives while the call plays the first prompt
            k = key_of(m)
            return [
                {"Event": "UserEvent", "UserEvent": "DueCallAnswer", "Attempt": k},
                {
                    "Event": "OriginateResponse",
                    "ActionID": m["ActionID"],
                    "Response": "Success",
                    "Reason": "4",
                },
                {"Event": "UserEvent", "UserEvent": "DueCallIvr", "Attempt": k, "Stage": "prompt", "Amd": ""},
                {
                    "Event": "UserEvent",
                    "UserEvent": "DueCallDial",
                    "Attempt": k,
                    "DialStatus": "ANSWER",
                    "Cause": "16",
                },
            ]

        originate_reply(r.ami, answered_then_stopped)
        dialer = r.dialer(campaign)
        dialer.pacer.max_concurrent = 1
        task = asyncio.create_task(run(dialer))
        while not await r.rows("SELECT 1 FROM attempts WHERE state='ended'"):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert len(r.ami.actions("Originate")) == 1  # stopping: no second claim
        stopping.on = False
        r.ami.drop_all()
        await task
    rows = await r.rows("SELECT disposition, note, ivr_stage FROM attempts ORDER BY id")
    assert [d for d, _, _ in rows] == ["cut", "cut"]
    assert all("cut by Asterisk: it was shutting down" in note for _, note, _ in rows)
    # retried per [retry.cut], not blamed on the borrower
    assert await r.rows("SELECT DISTINCT last_disposition FROM targets") == [("cut",)]


# -- item 15: Asterisk killed and restarted ----------------------------------------------------


async def test_answered_calls_lost_with_asterisk_are_cut_not_failed(store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, store, accounts=1) as (r, campaign):
        originate_reply(
            r.ami,
            lambda m: [
                {"Event": "UserEvent", "UserEvent": "DueCallAnswer", "Attempt": key_of(m)},
                {
                    "Event": "OriginateResponse",
                    "ActionID": m["ActionID"],
                    "Response": "Success",
                    "Reason": "4",
                },
            ],
        )
        dialer = r.dialer(campaign)
        task = asyncio.create_task(run(dialer))
        while not r.ami.actions("Originate"):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        r.ami.drop_all()  # kill -9: no hangup handler ran, AstDB has nothing, no channel is left
        await task
    [(disposition, note, answered_at)] = await r.rows("SELECT disposition, note, answered_at FROM attempts")
    assert disposition == "cut" and answered_at is not None
    assert "no channel and no result after reconnect" in note and "cut by Asterisk" in note


# -- items 17 and 19: the Originate timed out as the borrower answered ----------------------------


async def test_dial_answer_without_ivr_report_is_not_answered(store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, store, accounts=1) as (r, campaign):
        originate_reply(
            r.ami,
            lambda m: [
                {
                    "Event": "OriginateResponse",
                    "ActionID": m["ActionID"],
                    "Response": "Failure",
                    "Reason": "0",
                },
                {
                    "Event": "UserEvent",
                    "UserEvent": "DueCallDial",
                    "Attempt": key_of(m),
                    "DialStatus": "ANSWER",
                    "Cause": "16",
                },
            ],
        )
        started = asyncio.get_running_loop().time()
        await run(r.dialer(campaign))
        elapsed = asyncio.get_running_loop().time() - started
    [(disposition, note, answered_at)] = await r.rows("SELECT disposition, note, answered_at FROM attempts")
    assert (disposition, answered_at) == ("cut", None)
    assert "the IVR side never ran" in note
    assert elapsed < 10  # it settles within seconds, it does not wait out the call's deadline


# -- items 13 and 14: a dialer killed mid-call ---------------------------------------------------


class StubIvr:
    """The IVR service's calls in flight, as the engine reads them (`peek`; tested for real in
    test_dialer_cut.py)."""

    def __init__(self) -> None:
        self._calls: dict[str, Any] = {}

    def peek(self, key: str) -> Any:
        return self._calls.get(key)


@dataclass
class _Prepared:
    script: Any
    result: Any
    account: Any = None


@dataclass
class _Result:
    steps: list[Any]


@dataclass
class _Script:
    name: str


async def left_open(r: Rig, campaign: Any) -> Attempt:
    [target] = await r.store.due_targets(r.campaign_id, NOW, 10)
    attempt = await r.store.claim(
        target,
        NOW,
        lambda *a: Decision(True, (Reason("test", "ok"),)),
        lambda i, at: str(r.settings.path(Path("recordings")) / str(i)),
        DIALER,
        NOW - timedelta(days=7),
    )
    assert isinstance(attempt, Attempt)
    return attempt


def step(node: str, kind: str, **detail: object) -> IvrStep:
    return IvrStep(NOW, node, kind, detail)


async def test_steps_saved_as_they_happen_survive_a_kill_and_the_cut_is_recorded(
    store: Store, tmp_path: Path
) -> None:
    async with rig(tmp_path, store, accounts=1) as (r, campaign):
        attempt = await left_open(r, campaign)
        instance = await r.store.instance_id()
        key = f"{instance}-{attempt.id}"
        # The first run: its IVR had reached the menu and the borrower promised to pay.
        ivr = StubIvr()
        first = r.dialer(campaign, ivr)
        first._instance = instance
        tracked = first._track(attempt)
        steps = [step("intro", "prompt", text="Hello"), step("menu", "prompt", text="Press 1")]
        ivr._calls[key] = _Prepared(_Script("reminder-en-US"), _Result(steps))
        await first._save_ivr_progress()
        steps += [step("menu", "key", digit="1", barge_in=True), step("menu", "outcome", outcome="paid")]
        await first._save_ivr_progress()
        assert tracked.saved_steps == 4
        # ... then it was SIGKILLed. The dialplan cut the call, apologised and wrote AstDB.
        r.ami.astdb[f"duecall/{key}/dial"] = "ANSWER,16"
        r.ami.astdb[f"duecall/{key}/ivr"] = "cut,HUMAN,1,"
        await run(r.dialer(campaign))
    [(disposition, outcome, script, note)] = await r.rows(
        "SELECT disposition, outcome, script, note FROM attempts"
    )
    assert (disposition, outcome, script) == ("cut", "paid", "reminder-en-US")
    assert "cut by the dialer" in note
    assert [k for (k,) in await r.rows("SELECT kind FROM ivr_steps ORDER BY seq")] == [
        "prompt",
        "prompt",
        "key",
        "outcome",
    ]
    kinds = [
        k
        for (k,) in await r.rows("SELECT kind FROM audit_events WHERE attempt_id=? ORDER BY seq", attempt.id)
    ]
    assert kinds.count("ivr.outcome") == 1 and "call.outcome" in kinds
    # the borrower chose: the cut call is final, not retried
    assert await r.rows("SELECT state FROM targets") == [("done",)]
    assert r.ami.astdb == {}  # reconciled, so cleaned up


async def test_outcome_in_astdb_is_kept_on_reconcile(store: Store, tmp_path: Path) -> None:
    """Issue 9 item 14: 8 of 8 'pay today' outcomes were lost after a kill."""
    async with rig(tmp_path, store, accounts=1) as (r, campaign):
        attempt = await left_open(r, campaign)
        key = f"{await r.store.instance_id()}-{attempt.id}"
        r.ami.astdb[f"duecall/{key}/dial"] = "ANSWER,16"
        r.ami.astdb[f"duecall/{key}/ivr"] = "done,HUMAN,1,paid"
        await run(r.dialer(campaign))
    assert await r.rows("SELECT disposition, outcome, digits FROM attempts") == [("answered", "paid", "1")]
    assert await r.rows("SELECT outcome, promised_amount_minor FROM outcomes") == [("paid", 123450)]


async def test_a_live_call_is_adopted_after_a_restart(store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, store, accounts=1) as (r, campaign):
        attempt = await left_open(r, campaign)
        key = f"{await r.store.instance_id()}-{attempt.id}"
        r.ami.channels.add(f"dc-{key}")
        dialer = r.dialer(campaign)
        task = asyncio.create_task(run(dialer))
        while not dialer._calls:
            await asyncio.sleep(0.02)
        r.ami.emit(Event="UserEvent", UserEvent="DueCallDial", Attempt=key, DialStatus="NOANSWER", Cause="19")
        await task
    [(disposition, note)] = await r.rows("SELECT disposition, note FROM attempts")
    assert disposition == "no_answer" and "adopted after restart" in note


# -- item 17: AstDB entries leak when their cleanup fails ------------------------------------------


async def test_failed_astdb_cleanup_is_retried_and_old_leftovers_are_swept(
    store: Store, tmp_path: Path
) -> None:
    async with rig(tmp_path, store, accounts=1) as (r, campaign):
        instance = await r.store.instance_id()
        old = await left_open(r, campaign)
        await r.store.finish_attempt(
            old,
            CallResult(Disposition.BUSY, NOW),
            after_attempt(Disposition.BUSY, 1, r.settings.retry, NOW),
        )
        # A previous run stored attempt 1's result but died before deleting its AstDB facts;
        # another database's call (another instance id) is none of our business.
        r.ami.astdb[f"duecall/{instance}-{old.id}/dial"] = "BUSY,17"
        r.ami.astdb["duecall/otherdb-1/dial"] = "BUSY,17"
        failures = 1

        def deltree(message: Message) -> list[bytes] | None:
            nonlocal failures
            if failures:  # the first cleanup gets no reply (Asterisk busy): it times out
                failures -= 1
                return []
            r.ami.astdb = {k: v for k, v in r.ami.astdb.items() if not k.startswith(message["Family"] + "/")}
            return [block(Response="Success", ActionID=message["ActionID"], Message="Key tree deleted")]

        r.ami.on_action["DBDelTree"] = deltree
        await run(r.dialer(campaign))
    assert r.ami.astdb == {"duecall/otherdb-1/dial": "BUSY,17"}
    assert len(r.ami.actions("DBDelTree")) == 2  # the failed one, then the sweep's


def test_cut_with_a_chosen_outcome_is_final() -> None:
    rules = Settings().retry
    assert after_attempt(Disposition.CUT, 1, rules, NOW, "promise_to_pay").state.value == "done"
    assert after_attempt(Disposition.CUT, 1, rules, NOW, "").state.value == "pending"
    assert after_attempt(Disposition.CUT, 1, rules, NOW, "no_response").state.value == "pending"
