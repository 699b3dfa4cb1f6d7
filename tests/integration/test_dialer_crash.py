"""A crash, a signal or a dropped AMI connection never loses an outcome or places an extra call.

Everything here runs against the real Asterisk. Each simulated number counts the calls it
receives in AstDB (sim/<number>/calls), so "never twice" is checked on Asterisk's side.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from audit.verify import verify
from dialer.asterisk.ami import AmiEndpoint
from dialer.asterisk.host import AmiCredentials
from dialer.campaign.engine import Dialer
from dialer.core.clock import SystemClock
from dialer.core.config import Settings
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import SqliteStore
from tests.support.config import make_settings
from tests.support.project import daytime_zone
from tests.support.sim import attempts, calls_received, prepare, reset_counts, start_run, wait_for

pytestmark = pytest.mark.asterisk
EXPECTED = {
    "0170": "answered",
    "0111": "answered",
    "0101": "answered",
    "0120": "no_answer",
    "0130": "busy",
    "0104": "answered",
}


def numbers(area: str) -> dict[str, str]:
    return {f"+1{area}555{k}": v for k, v in EXPECTED.items()}


def open_attempts(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM attempts WHERE state != 'ended'").fetchone()[0])


def count_attempts(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM attempts").fetchone()[0])


async def check_every_account_once(
    settings: Settings, creds: AmiCredentials, phones: dict[str, str]
) -> list[dict[str, object]]:
    rows = await attempts(settings)
    assert sorted(str(r["phone_e164"]) for r in rows) == sorted(phones)  # one attempt each, none lost
    assert all(r["state"] == "ended" and r["disposition"] for r in rows)
    received = await calls_received(creds, list(phones))
    for row in rows:
        phone = str(row["phone_e164"])
        if row["disposition"] == "unknown":
            # killed between writing the attempt and sending the Originate: no call was placed
            assert received[phone] == 0 and "outcome lost" in str(row["note"])
        else:
            assert row["disposition"] == phones[phone], row
            assert received[phone] == 1
    return rows


async def test_sigkill_mid_campaign_then_restart(asterisk: AmiCredentials, work_dir: Path) -> None:
    settings = make_settings(work_dir, dialer={"max_concurrent": 3, "calls_per_second": 2})
    phones = numbers("213")
    await reset_counts(asterisk, list(phones))
    zone = daytime_zone()
    await prepare(settings, work_dir, [(f"K{i}", p, zone) for i, p in enumerate(phones)])
    db = settings.path(settings.store.path)
    first = start_run(settings)
    wait_for(lambda: open_attempts(db) >= 2, 30)
    time.sleep(0.7)  # let the Originates reach Asterisk
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    left_open = open_attempts(db)
    assert left_open >= 1
    assert count_attempts(db) < len(phones)  # killed mid-campaign
    second = start_run(settings)
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output
    assert f"{left_open} reconciled (from an earlier run" in output
    rows = await check_every_account_once(settings, asterisk, phones)
    notes = " ".join(str(r["note"]) for r in rows)
    assert "adopted after restart" in notes or "reconciled from AstDB" in notes
    # The audit trail lost nothing and doubled nothing: one decision and one end per attempt,
    # every answered call's recording sealed, and the whole chain verifies.
    with sqlite3.connect(db) as conn:
        decided = conn.execute("SELECT count(*) FROM audit_events WHERE kind='attempt.decided'").fetchone()
        ended = conn.execute(
            "SELECT count(DISTINCT attempt_id), count(*) FROM audit_events WHERE kind='call.ended'"
        ).fetchone()
        unsealed = conn.execute(
            "SELECT count(*) FROM attempts t WHERE answered_at IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.attempt_id=t.id)"
        ).fetchone()
    assert decided == (len(rows),) and ended == (len(rows), len(rows))
    assert unsealed == (0,)
    report = verify(db)
    assert report.ok and report.recordings_checked >= 1, report


async def test_sigterm_lets_calls_in_flight_finish(asterisk: AmiCredentials, work_dir: Path) -> None:
    settings = make_settings(work_dir, dialer={"max_concurrent": 2, "calls_per_second": 1})
    phones = {f"+1214555{k}": "answered" for k in ("0170", "0111", "0101", "0104", "0102", "0103")}
    await reset_counts(asterisk, list(phones))
    await prepare(settings, work_dir, [(f"T{i}", p, daytime_zone()) for i, p in enumerate(phones)])
    db = settings.path(settings.store.path)
    run = start_run(settings)
    wait_for(lambda: count_attempts(db) >= 2, 30)
    run.send_signal(signal.SIGTERM)
    signalled_at = count_attempts(db)
    output, _ = run.communicate(timeout=60)
    assert run.returncode == 0, output
    assert open_attempts(db) == 0  # the calls in flight finished and were stored
    placed = count_attempts(db)
    assert placed <= signalled_at + 1 < len(phones)  # no new calls after the signal (one may be mid-claim)
    rows = await attempts(settings)
    assert all(r["disposition"] == "answered" for r in rows), rows


async def test_ami_drop_mid_call_resyncs_without_a_second_originate(
    asterisk: AmiCredentials, work_dir: Path
) -> None:
    settings = make_settings(work_dir, dialer={"max_concurrent": 6, "calls_per_second": 10})
    phones = numbers("215")
    await reset_counts(asterisk, list(phones))
    await prepare(settings, work_dir, [(f"R{i}", p, daytime_zone()) for i, p in enumerate(phones)])
    store = await SqliteStore.open(settings.path(settings.store.path))
    try:
        campaign = await store.campaign("test")
        assert campaign is not None
        endpoint = AmiEndpoint(asterisk.host, asterisk.port, asterisk.username, asterisk.secret)
        dialer = Dialer(settings, store, campaign, PackGate(load_pack("us-regf")), SystemClock(), endpoint)
        run = asyncio.create_task(dialer.run(timedelta(0)))
        while dialer.summary.placed < len(phones):
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        writer = dialer.ami._writer
        assert writer is not None
        writer.transport.abort()  # the network drops: events sent meanwhile are lost
        summary = await asyncio.wait_for(run, 90)
    finally:
        await store.close()
    assert dialer.ami.sessions >= 2
    assert summary.finished == len(phones)
    await check_every_account_once(settings, asterisk, phones)


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "duecall", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    assert "duecall" in result.stdout.lower()
