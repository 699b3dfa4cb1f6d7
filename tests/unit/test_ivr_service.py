"""The IVR service over FastAGI with Asterisk's side played by the test (tests/support/agi_peer.py):
the per-call secret (issue 9, item 5) and the dialer's clock on every step (issue 10, item 6)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dialer.core.clock import FixedClock, SystemClock
from dialer.core.models import Account
from dialer.core.vocab import Outcome
from ivr.script import parse_script
from ivr.service import IvrService, account_fields
from tests.support.agi_peer import SECRET_SCRIPT, CannedPrompts, agi_problems, drive


async def test_only_the_calls_own_secret_drives_its_session(
    work_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A local process that knows the call key (the database id is world-readable) but not the
    secret tries to opt the borrower out: refused, nothing sent, nothing stored; the real call
    then runs; its secret cannot be used a second time."""
    opt_outs: list[tuple[str, int]] = []

    async def on_opt_out(account: Account, attempt_id: int) -> None:
        opt_outs.append((account.account_id, attempt_id))

    script = parse_script(SECRET_SCRIPT, work_dir / "secret.yaml")
    prompts = CannedPrompts(work_dir / "prompt.wav")
    service = IvrService({"en-US": script}, "en-US", prompts, None, on_opt_out, port=0, clock=SystemClock())  # type: ignore[arg-type]
    account = Account(
        1, "A1", "D1", "Olivia Smith", "+12025550101", (), False, 1000, "USD", date.today(), "en-US"
    )
    key = "db1-42"
    service.register(key, account, account_fields(script, account), work_dir / "replies", 42)
    secret = service.agi_secret(key)
    assert len(secret) >= 43 and service.agi_secret(key) == secret

    task = asyncio.create_task(service.server.serve())
    try:
        await asyncio.wait_for(service.server.ready.wait(), 5)
        port = service.server.port
        for attempt in [(), ("",), ("guess",), (secret[:-1] + "x",)]:
            assert await drive(port, key, *attempt) == []  # hung up before any command
        assert opt_outs == [] and service.server.refused == 4

        commands = await drive(port, key, secret)  # the real call
        assert opt_outs == [("A1", 42)]
        assert commands[-2:] == [
            'SET VARIABLE "DUECALL_OUTCOME" "opt_out"',
            'SET VARIABLE "DUECALL_STAGE" "done"',
        ]

        assert await drive(port, key, secret) == []  # a replay of the secret, e.g. read from a log
        assert opt_outs == [("A1", 42)] and service.server.refused == 5
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    prepared = service.take(key)
    assert prepared is not None and prepared.result is not None
    assert prepared.result.outcome is Outcome.OPT_OUT
    refusals = [m for m in agi_problems(caplog) if "refused" in m]
    assert len(refusals) == 5 and all(key in m for m in refusals)
    assert sum("no AGI secret" in m for m in refusals) == 2
    assert sum("a wrong AGI secret" in m for m in refusals) == 2
    assert "its AGI secret was already used" in refusals[-1]
    assert not any(secret in r.getMessage() for r in caplog.records)  # never logged


async def test_every_step_is_stamped_with_the_dialers_clock(work_dir: Path) -> None:
    """The dialer's clock (here fixed years away from the wall clock, as a demo's shifted clock
    is) stamps the first prompt and every IVR step: they line up with the dialer's own events."""
    dialer_time = datetime(2031, 5, 5, 10, 0, tzinfo=UTC)

    async def on_opt_out(account: Account, attempt_id: int) -> None:
        return None

    script = parse_script(SECRET_SCRIPT, work_dir / "one-menu.yaml")
    service = IvrService(
        {"en-US": script},
        "en-US",
        CannedPrompts(work_dir / "prompt.wav"),  # type: ignore[arg-type]
        None,
        on_opt_out,
        port=0,
        clock=FixedClock(dialer_time),
    )
    account = Account(
        1, "A1", "D1", "Olivia Smith", "+12025550101", (), False, 1000, "USD", date.today(), "en-US"
    )
    service.register("db1-7", account, account_fields(script, account), work_dir / "replies", 7)
    task = asyncio.create_task(service.server.serve())
    try:
        await asyncio.wait_for(service.server.ready.wait(), 5)
        await drive(service.server.port, "db1-7", service.agi_secret("db1-7"))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    prepared = service.take("db1-7")
    assert prepared is not None and prepared.result is not None
    steps = prepared.result.steps
    assert [s.kind for s in steps][:1] == ["prompt"] and len(steps) >= 3
    assert {s.at for s in steps} == {dialer_time}
    assert prepared.first_prompt_at == dialer_time
