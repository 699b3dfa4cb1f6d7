"""Several dialers on one campaign (issue 15 item 3): each reconciles only its own attempts, a
silent dialer's open attempts are closed by another once its lease ran out (never dialled again),
and a result that comes late after such a takeover is kept in the trail. Then the database going
away mid-campaign (issue 15, "Bad input and safety"): no claims while it is away, results held
and written once it is back, a claim whose commit was lost is never placed.

Asterisk is the scripted AMI peer (tests/support/fake_ami.py); the store runs on both backends
(the takeover tests) or is wrapped to go away on cue (a mock at the Store boundary). The real
PostgreSQL stopped mid-campaign is in tests/integration/test_pg_away.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from dialer.asterisk.ami import AmiEndpoint
from dialer.campaign.engine import UNCERTAIN_CLAIM, Dialer
from dialer.core.clock import FixedClock
from dialer.core.errors import StoreUnavailable
from dialer.core.models import (
    Attempt,
    CallResult,
    Campaign,
    Decision,
    Disposition,
    IvrStep,
    Reason,
    TargetState,
    TargetUpdate,
)
from dialer.core.vocab import RuleId
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import IvrProgress, SqliteStore, Store
from tests.support.config import make_settings
from tests.support.fake_ami import FakeAmi, block
from tests.support.records import record
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture
NOW = datetime(2026, 11, 30, 15, tzinfo=UTC)  # 10:00 in New York, the test accounts' zone
LEASE = "0.4s"
Message = dict[str, str]


@dataclass
class Rig:
    ami: FakeAmi
    store: Store
    tmp: Path
    campaign: Campaign
    port: int

    def dialer(self, dialer_id: str, store: Store | None = None, **dialer: str) -> Dialer:
        settings = make_settings(
            self.tmp,
            asterisk={"reconnect_delay": "0.1s", "action_timeout": "1s"},
            dialer={
                "ring_timeout": "1s",
                "max_call": "5s",
                "poll_interval": "0.05s",
                "shutdown_grace": "10s",
                "lease": LEASE,
                **dialer,
            },
        )
        endpoint = AmiEndpoint("127.0.0.1", self.port, "duecall", "s3cret")
        gate, clock = PackGate(load_pack("us-regf")), FixedClock(NOW)
        used = store or self.store
        return Dialer(settings, used, self.campaign, gate, clock, endpoint, dialer_id=dialer_id)

    async def claim_as(self, dialer_id: str) -> Attempt:
        """One account claimed by `dialer_id` and left open, as a dialer killed mid-call leaves it."""
        target = (await self.store.due_targets(self.campaign.id, NOW, 1))[0]
        allow = lambda *a: Decision(True, (Reason(RuleId.WINDOW, "inside"),))  # noqa: E731
        path = lambda i, at: f"{self.tmp}/r/{i}"  # noqa: E731
        attempt = await self.store.claim(target, NOW, allow, path, dialer_id, NOW)
        assert isinstance(attempt, Attempt)
        return attempt

    def originated(self) -> list[int]:
        """The attempt ids Originates were sent for (ChannelId dc-<instance>-<attempt id>)."""
        return [int(m["ChannelId"].rsplit("-", 1)[1]) for m in self.ami.actions("Originate")]


@asynccontextmanager
async def rig(tmp_path: Path, store: Store, accounts: int = 1) -> AsyncIterator[Rig]:
    fake = FakeAmi()
    port = await fake.start()
    try:
        phones = [f"+1202555{100 + i:04d}" for i in range(accounts)]
        await store.upsert_accounts([record(f"A{i}", p) for i, p in enumerate(phones)], NOW)
        campaign = await store.create_campaign("c", NOW)
        await store.add_targets(campaign.id, NOW)
        yield Rig(fake, store, tmp_path, campaign, port)
    finally:
        await fake.stop()


def busy_after(fake: FakeAmi, delay: float) -> None:
    """Every Originate is queued, and the line is busy `delay` seconds later."""

    def reply(message: Message) -> list[bytes]:
        variables = message["Variable"].split("\n")
        key = next(v.split("=", 1)[1] for v in variables if v.startswith("DUECALL_ATTEMPT="))
        event = {"Event": "UserEvent", "UserEvent": "DueCallDial", "Attempt": key, "DialStatus": "BUSY"}
        asyncio.get_running_loop().call_later(delay, lambda: fake.emit(**event, Cause="17"))
        queued = "Originate successfully queued"
        return [block(Response="Success", ActionID=message["ActionID"], Message=queued)]

    fake.on_action["Originate"] = reply


async def attempt_row(store: Store, campaign_id: int, attempt_id: int) -> dict[str, Any]:
    return next(a for a in await store.attempts_for(campaign_id) if a["id"] == attempt_id)


async def chain_events(store: Store, attempt_id: int) -> list[Any]:
    sql = "SELECT kind, actor, data FROM audit_events WHERE attempt_id=? ORDER BY seq"
    return list(await store.fetch_all(sql, (attempt_id,)))


# -- one dialer's restart, another's takeover ---------------------------------------------


async def test_a_restarted_dialer_reconciles_only_its_own_attempts(
    backend_store: Store, tmp_path: Path
) -> None:
    async with rig(tmp_path, backend_store, accounts=2) as r:
        mine = await r.claim_as("dialer-a")
        theirs = await r.claim_as("dialer-b")
        await backend_store.renew_lease("dialer-b", "b", NOW, 60.0)  # b is alive (a long lease)
        a = r.dialer("dialer-a", lease="60s")
        task = asyncio.create_task(a.run(timedelta(0)))
        while (await attempt_row(backend_store, r.campaign.id, mine.id))["state"] != "ended":
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a has had time to touch b's attempt if it were going to
        assert (await attempt_row(backend_store, r.campaign.id, theirs.id))["state"] == "decided"
        a.stop()
        await asyncio.wait_for(task, 20)
        assert (await attempt_row(backend_store, r.campaign.id, theirs.id))["state"] == "decided"


async def test_a_silent_dialers_attempts_are_closed_by_another_never_dialled(
    backend_store: Store, tmp_path: Path
) -> None:
    """b claimed two calls and died: one had reached the menu and the borrower promised (steps
    saved as they happened), one never got that far. a closes both once b's lease ran out."""
    async with rig(tmp_path, backend_store, accounts=2) as r:
        answered = await r.claim_as("dialer-b")
        silent = await r.claim_as("dialer-b")
        await backend_store.renew_lease("dialer-b", "b", NOW, 0.4)
        steps = (
            IvrStep(NOW, "menu", "prompt", {"text": "Press 1 to promise"}),
            IvrStep(NOW, "menu", "key", {"digit": "1"}),
            IvrStep(NOW, "menu", "outcome", {"outcome": "paid"}),
        )
        await backend_store.save_ivr_progress([IvrProgress(answered.id, "reminder-en-US", 0, steps)])
        a = r.dialer("dialer-a")
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Until nothing is due (as `--exit-when-idle`): it stays while a silent dialer has calls.
        await asyncio.wait_for(a.run(timedelta(0)), 20)
        waited = loop.time() - started
        first = await attempt_row(backend_store, r.campaign.id, answered.id)
        second = await attempt_row(backend_store, r.campaign.id, silent.id)
    assert (first["state"], first["disposition"], first["outcome"]) == ("ended", "cut", "paid")
    assert (second["state"], second["disposition"]) == ("ended", "unknown")
    for row in (first, second):
        assert "dialer dialer-b stopped renewing its lease; closed by dialer dialer-a" in row["note"]
    assert waited >= 0.4  # a watched b's beat stand still for a whole lease first
    assert r.originated() == []  # neither was dialled again: both accounts were settled by it
    assert a.summary.reconciled == 2
    kinds = [e["kind"] for e in await chain_events(backend_store, answered.id)]
    assert "call.outcome" in kinds


async def test_a_dialer_that_renews_its_lease_keeps_its_calls(backend_store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, backend_store, accounts=2) as r:
        theirs = await r.claim_as("dialer-b")
        await r.claim_as("dialer-a")  # something for a to do while it watches
        a = r.dialer("dialer-a", lease="0.4s")
        task = asyncio.create_task(a.run(timedelta(0)))
        for _ in range(20):  # 2 s: five leases, b renewing every 0.1 s
            await backend_store.renew_lease("dialer-b", "b", NOW, 0.4)
            await asyncio.sleep(0.1)
        assert (await attempt_row(backend_store, r.campaign.id, theirs.id))["state"] == "decided"
        a.stop()
        await asyncio.wait_for(task, 20)


async def test_two_dialers_with_one_id_both_stop(backend_store: Store, tmp_path: Path) -> None:
    """Two machines left with the same host name (no `[dialer] id`): either would close the
    other's calls as its own leftovers. Each finds the other's token in the lease: both stop."""
    async with rig(tmp_path, backend_store, accounts=2) as r:
        # Their calls never end (no event): neither run ends before it has renewed a few times;
        # once stopped, each leaves its call open at once (a short grace) for its next start.
        first, second = (r.dialer("same", shutdown_grace="0.2s") for _ in range(2))
        runs = [asyncio.create_task(d.run()) for d in (first, second)]
        summaries = await asyncio.wait_for(asyncio.gather(*runs), 20)
    assert all(s.duplicate_id for s in summaries)


async def test_a_result_after_a_takeover_is_kept_as_a_late_result(
    backend_store: Store, tmp_path: Path
) -> None:
    async with rig(tmp_path, backend_store) as r:
        attempt = await r.claim_as("dialer-b")
        closed = CallResult(Disposition.UNKNOWN, NOW + timedelta(minutes=2), note="closed by dialer-a")
        update = TargetUpdate(TargetState.PENDING, NOW + timedelta(hours=1))
        assert await backend_store.finish_attempt(attempt, closed, update, "dialer:dialer-a", takeover=True)
        # A third dialer racing to close it writes nothing.
        again = CallResult(Disposition.UNKNOWN, NOW + timedelta(minutes=3), note="by dialer-c")
        c = "dialer:dialer-c"
        assert not await backend_store.finish_attempt(attempt, again, update, c, takeover=True)
        # b was only cut off from the database; its real result arrives late.
        real = CallResult(Disposition.BUSY, NOW + timedelta(seconds=20), dial_status="BUSY", note="busy")
        assert not await backend_store.finish_attempt(attempt, real, update, "dialer:dialer-b")
        # The first write retried (its commit looked lost) changes nothing and is no late result.
        assert await backend_store.finish_attempt(attempt, closed, update, "dialer:dialer-a", takeover=True)
        row = await attempt_row(backend_store, r.campaign.id, attempt.id)
        events = await chain_events(backend_store, attempt.id)
    assert (row["disposition"], row["note"]) == ("unknown", "closed by dialer-a")
    kinds = [e["kind"] for e in events]
    assert kinds.count("call.ended") == 1 and kinds.count("call.late-result") == 1
    late = next(e for e in events if e["kind"] == "call.late-result")
    assert late["actor"] == "dialer:dialer-b" and json.loads(late["data"])["disposition"] == "busy"


# -- the database going away -----------------------------------------------------------------


class AwayStore:
    """A store that goes away on cue: every call raises StoreUnavailable while `away` is set.
    `lose_next_claim`: the next claim commits, then its reply is lost (raises)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.away = False
        self.lose_next_claim = False
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not asyncio.iscoroutinefunction(found):
            return found

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.away:
                self.refused += 1
                raise StoreUnavailable("PostgreSQL is unavailable: (test) connection refused")
            done = await found(*args, **kwargs)
            if name == "claim" and self.lose_next_claim and isinstance(done, Attempt):
                self.lose_next_claim = False
                raise StoreUnavailable("PostgreSQL is unavailable: (test) connection lost at commit")
            return done

        return call


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await SqliteStore.open(tmp_path / "t.db")
    yield store
    await store.close()


async def wait_until(check: Callable[[], Any], timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_while_the_database_is_away_no_call_is_placed_and_results_wait(
    sqlite_store: Store, tmp_path: Path
) -> None:
    async with rig(tmp_path, sqlite_store, accounts=3) as r:
        busy_after(r.ami, 0.5)
        away = AwayStore(sqlite_store)
        dialer = r.dialer("dialer-a", store=cast(Store, away), max_concurrent="1", lease="60s")
        task = asyncio.create_task(dialer.run(timedelta(0)))
        await wait_until(lambda: _true(len(r.originated()) == 1))
        away.away = True  # the first call is up; its busy signal comes while the database is away
        await asyncio.sleep(1.5)
        assert len(r.originated()) == 1  # nothing claimed, nothing placed
        assert dialer.calls_in_flight == 1  # its result held
        assert away.refused > 0 and not dialer.database_available  # duecall_database_available 0
        away.away = False
        await asyncio.wait_for(task, 20)
        assert dialer.database_available
        rows = await sqlite_store.attempts_for(r.campaign.id)
    assert [a["disposition"] for a in rows] == ["busy", "busy", "busy"]
    assert len(r.originated()) == 3


async def test_a_claim_whose_commit_was_lost_is_never_placed(sqlite_store: Store, tmp_path: Path) -> None:
    async with rig(tmp_path, sqlite_store, accounts=2) as r:
        busy_after(r.ami, 0.05)
        away = AwayStore(sqlite_store)
        away.lose_next_claim = True
        dialer = r.dialer("dialer-a", store=cast(Store, away), lease="60s")
        await asyncio.wait_for(dialer.run(timedelta(0)), 20)
        rows = await sqlite_store.attempts_for(r.campaign.id)
    lost = rows[0]
    assert (lost["disposition"], lost["note"]) == ("not_placed", UNCERTAIN_CLAIM)
    assert lost["id"] not in r.originated()
    assert len(r.originated()) == 1  # the other account's call
    due_again = await sqlite_store.count_targets(r.campaign.id, [TargetState.PENDING])
    # The other account was called; this one is due again a little later, its attempt not counted.
    assert sorted(a["disposition"] for a in rows) == ["busy", "not_placed"]
    assert due_again == 1


async def _true(value: bool) -> bool:
    return value


async def test_the_originate_calls_the_borrowers_channel_directly(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """No Local pair of ours: the Originate's Channel is the trunk with the number, it rings for the
    ring timeout, and its first variable pushes the hangup handler that reports the dial result."""
    async with rig(tmp_path, sqlite_store) as r:
        busy_after(r.ami, 0.05)
        dialer = r.dialer("dialer-a", trunk="PJSIP/{number}@carrier", ring_timeout="7s")
        await asyncio.wait_for(dialer.run(timedelta(0)), 20)
        rows = await sqlite_store.attempts_for(r.campaign.id)
    [originate] = r.ami.actions("Originate")
    assert (originate["Channel"], originate["Timeout"]) == ("PJSIP/12025550100@carrier", "7000")
    assert (originate["Context"], originate["Exten"]) == ("duecall-ivr", "s")
    assert originate["ChannelId"] == f"dc-{await sqlite_store.instance_id()}-{rows[0]['id']}"
    assert originate["Variable"].split("\n")[0] == 'CHANNEL(hangup_handler_push)="duecall-dial-hangup,s,1"'
    assert [(a["disposition"], a["cause"]) for a in rows] == [("busy", "17")]
