"""Calls our side cuts, against the real Asterisk (issue 9, items 13 and 15).

- The dialer SIGKILLed while its IVR serves a call: the dialplan marks the call `cut` and
  apologises (no dead air), the IVR steps reached are in the store, and the next run stores the
  call as `cut` (retried), never as the borrower hanging up or as a normal ending.
- Asterisk killed (-9) and restarted mid-call: answered calls (OriginateResponse Reason 4) are
  `cut`, not `failed`.
- Asterisk stopped (`core stop now`) mid-call: the calls it hangs up are `cut`, not `answered` or
  `hung_up_early`; no claim is counted while it refuses Originates.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from audit.verify import verify
from dialer.asterisk.ami import AmiEndpoint
from dialer.asterisk.host import AmiCredentials, provision, run_cli, start, status
from dialer.campaign.engine import Dialer
from dialer.core.clock import SystemClock
from dialer.core.config import Settings
from dialer.core.dialplan import DIAL_HANGUP_PUSH
from dialer.core.errors import AmiActionFailed
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import SqliteStore
from tests.support.config import make_settings
from tests.support.project import PROJECT_ROOT, STATE_DIR, daytime_zone
from tests.support.sim import ami, attempts, calls_received, prepare, reset_counts, start_run, wait_for

pytestmark = pytest.mark.asterisk


def rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql, params))


async def astdb_ivr(creds: AmiCredentials, key: str, timeout: float) -> tuple[str, float]:
    """The call's `duecall/<key>/ivr` entry once its hangup handler wrote it, and when."""
    deadline = time.monotonic() + timeout
    async with ami(creds) as client:
        while time.monotonic() < deadline:
            try:
                events = await client.send_list("DBGet", {"Family": f"duecall/{key}", "Key": "ivr"})
                return events[0]["Val"], time.monotonic()
            except AmiActionFailed:
                await asyncio.sleep(0.05)
    raise AssertionError(f"no AstDB ivr entry for {key} within {timeout} s")


async def test_dialer_killed_mid_ivr_cuts_the_call_with_an_apology(
    asterisk: AmiCredentials, work_dir: Path
) -> None:
    settings = make_settings(
        work_dir,
        dialer={"amd": False, "ring_timeout": "8s"},
        ivr={"enabled": True, "prompts_dir": str(work_dir / "prompts"), "speech_model": "", "agi_port": 0},
    )
    phone = "+12165550170"  # answers, says hello, then stays silent: the script asks and asks
    await reset_counts(asterisk, [phone])
    await prepare(settings, work_dir, [("K1", phone, daytime_zone())])
    db = settings.path(settings.store.path)
    first = start_run(settings)
    try:
        # The IVR is speaking to the borrower: its steps are reaching the store as they happen.
        wait_for(lambda: bool(rows(db, "SELECT 1 FROM ivr_steps WHERE kind='prompt'")), 60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
    killed_at = time.monotonic()
    [(attempt_id, state)] = rows(db, "SELECT id, state FROM attempts")
    assert state == "decided"  # open: the dialer died with the call
    store = await SqliteStore.open(db)
    try:
        key = f"{await store.instance_id()}-{attempt_id}"
    finally:
        await store.close()
    value, hung_up_at = await astdb_ivr(asterisk, key, 15)
    # The dialplan saw its FastAGI session end before the script did: `cut`, and it apologised
    # ("We're sorry. Goodbye.", 2 s) before hanging up, instead of hanging up at once.
    assert value.startswith("cut,"), value
    assert hung_up_at - killed_at >= 1.5
    second = start_run(settings, "--exit-when-idle")
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output
    [row] = await attempts(settings)
    assert row["disposition"] == "cut", row
    assert "cut by the dialer" in str(row["note"])
    steps = rows(db, "SELECT kind FROM ivr_steps WHERE attempt_id=?", attempt_id)
    assert ("prompt",) in steps  # the steps reached survived the kill
    assert rows(db, "SELECT state, last_disposition FROM targets") == [("pending", "cut")]  # retried
    assert (await calls_received(asterisk, [phone]))[phone] == 1
    report = verify(db)
    assert report.ok, report


def broadcast_settings(work_dir: Path) -> Settings:
    return make_settings(
        work_dir,
        asterisk={"reconnect_delay": "0.5s"},
        dialer={"amd": False, "ring_timeout": "8s", "prompt": "demo-congrats", "max_concurrent": 2},
    )


async def until_answered(dialer: Dialer, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sum(t.call.answered_at is not None for t in list(dialer._calls.values())) < count:
        assert time.monotonic() < deadline, "calls not answered in time"
        await asyncio.sleep(0.05)


def restart_asterisk() -> None:
    start(provision(PROJECT_ROOT, STATE_DIR), PROJECT_ROOT, STATE_DIR)


async def test_asterisk_killed_mid_call_answered_calls_are_cut_not_failed(
    asterisk: AmiCredentials, work_dir: Path
) -> None:
    settings = broadcast_settings(work_dir)
    phones = ["+13125550170", "+13135550170"]
    await reset_counts(asterisk, phones)
    await prepare(settings, work_dir, [(f"K{i}", p, daytime_zone()) for i, p in enumerate(phones)])
    store = await SqliteStore.open(settings.path(settings.store.path))
    try:
        campaign = await store.campaign("test")
        assert campaign is not None
        dialer = Dialer(
            settings, store, campaign, PackGate(load_pack("us-regf")), SystemClock(), _endpoint(asterisk)
        )
        run = asyncio.create_task(dialer.run(timedelta(0)))
        try:
            await until_answered(dialer, 2)
            pid = status(STATE_DIR)["pid"]
            assert isinstance(pid, int)
            os.kill(pid, signal.SIGKILL)  # no hangup handler runs: AstDB and events say nothing
            await asyncio.to_thread(restart_asterisk)
            await asyncio.wait_for(run, 90)
        finally:
            run.cancel()
    finally:
        await store.close()
    got = await attempts(settings)
    assert [r["disposition"] for r in got] == ["cut", "cut"], got
    assert all("cut by Asterisk" in str(r["note"]) for r in got)


async def test_asterisk_stopped_mid_call_cuts_calls_and_counts_no_refused_originate(
    asterisk: AmiCredentials, work_dir: Path
) -> None:
    settings = broadcast_settings(work_dir)
    phones = ["+13145550170", "+13155550170", "+13165550130"]  # the third is busy
    await reset_counts(asterisk, phones)
    await prepare(settings, work_dir, [(f"S{i}", p, daytime_zone()) for i, p in enumerate(phones)])
    db = settings.path(settings.store.path)
    store = await SqliteStore.open(db)
    try:
        campaign = await store.campaign("test")
        assert campaign is not None
        dialer = Dialer(
            settings, store, campaign, PackGate(load_pack("us-regf")), SystemClock(), _endpoint(asterisk)
        )
        run = asyncio.create_task(dialer.run(timedelta(0)))
        try:
            await until_answered(dialer, 2)  # two lines: the third account waits for one
            stopper = threading.Thread(target=run_cli, args=(STATE_DIR, "core stop now"))
            stopper.start()
            await asyncio.to_thread(stopper.join)
            await asyncio.sleep(1.0)  # Asterisk is down now; the dialer must not count anything
            await asyncio.to_thread(restart_asterisk)
            await asyncio.wait_for(run, 90)
        finally:
            run.cancel()
    finally:
        await store.close()
    got = await attempts(settings)
    first_two = [r for r in got if r["phone_e164"] in phones[:2]]
    assert [r["disposition"] for r in first_two] == ["cut", "cut"], got
    assert all("cut by Asterisk: it was shutting down" in str(r["note"]) for r in first_two)
    # The third: refused during the stop (not counted), or placed after the restart, or not claimed.
    third = [r for r in got if r["phone_e164"] == phones[2]]
    assert all(r["disposition"] in ("not_placed", "busy") for r in third), third
    counted = sum(r["disposition"] != "not_placed" for r in third)
    [(attempts_no,)] = rows(
        db, "SELECT t.attempts FROM targets t JOIN accounts a ON a.id=t.account_pk WHERE a.account_id='S2'"
    )
    assert attempts_no == counted
    assert (await calls_received(asterisk, phones))[phones[2]] == counted


def _endpoint(creds: AmiCredentials) -> AmiEndpoint:
    return AmiEndpoint(creds.host, creds.port, creds.username, creds.secret)


async def test_no_dialer_on_the_fastagi_port_gives_an_apology_not_silence(asterisk: AmiCredentials) -> None:
    """The borrower answers while no dialer serves: AGI() fails to connect (AGISTATUS FAILURE)."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = f"nodialer-{time.time_ns()}"
    variables = [
        DIAL_HANGUP_PUSH,
        f"DUECALL_ATTEMPT={key}",
        "DUECALL_AMD=no",
        f"DUECALL_RECORDING={PROJECT_ROOT / 'var' / 'test' / key}",
        f"DUECALL_AGI_PORT={port}",
    ]
    async with ami(asterisk) as client:
        await client.send(
            "Originate",
            {
                "Channel": "Local/12205550170@duecall-sim",  # as the dialer does: the borrower's channel
                "Timeout": "8000",
                "Context": "duecall-ivr",
                "Exten": "s",
                "Priority": "1",
                "Async": "true",
                "Variable": variables,
            },
        )
        answered = time.monotonic()
        try:
            value, ended = await astdb_ivr(asterisk, key, 20)
        finally:
            with contextlib.suppress(AmiActionFailed):  # nothing written: the assertion says so
                await client.send("DBDelTree", {"Family": f"duecall/{key}"})
    (PROJECT_ROOT / "var" / "test" / f"{key}.wav").unlink(missing_ok=True)
    assert value.startswith("cut,"), value
    assert ended - answered >= 1.5 + 1.0  # rings 1 s, then "We're sorry. Goodbye." (2 s)
