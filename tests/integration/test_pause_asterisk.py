"""Pausing and resuming a running campaign against the real Asterisk (issue 14 item 4).

The engine's side with a scripted peer is tests/unit/test_campaign_pause.py; here the calls are
real: the one under way rings out while the campaign is paused, no new call reaches a simulated
borrower until it is resumed, and then every account is called.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.asterisk.host import AmiCredentials
from dialer.core.clock import ShiftedClock
from dialer.core.vocab import CampaignState
from dialer.store import SqliteStore
from duecall.runtime import dial
from tests.support.config import make_settings
from tests.support.project import daytime_zone
from tests.support.sim import attempts, calls_received, prepare, reset_counts

pytestmark = pytest.mark.asterisk

# Simulated borrowers who never answer (last four digits 0120): each call rings for ring_timeout.
PHONES = ["+12025550120", "+12125550120", "+13125550120", "+14155550120"]


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        (found,) = conn.execute(sql).fetchone()
    conn.close()
    return int(found)


async def until(db: Path, sql: str, wanted: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while count(db, sql) < wanted:
            await asyncio.sleep(0.05)


async def set_state(db: Path, state: CampaignState, actor: str) -> None:
    """As the operations page or `duecall campaign pause` does: its own connection to the store."""
    store = await SqliteStore.open(db)
    try:
        campaign = await store.campaign("test")
        assert campaign is not None
        await store.set_campaign_state(campaign.id, state, datetime.now(UTC), actor)
    finally:
        await store.close()


async def test_a_paused_campaign_places_no_call_until_resumed(
    asterisk: AmiCredentials, work_dir: Path
) -> None:
    settings = make_settings(work_dir, dialer={"max_concurrent": 1, "ring_timeout": "3s"})
    zone = daytime_zone()
    await prepare(settings, work_dir, [(f"P{i}", phone, zone) for i, phone in enumerate(PHONES)])
    await reset_counts(asterisk, PHONES)
    db = settings.path(settings.store.path)
    run = asyncio.create_task(
        dial(settings, "test", ShiftedClock(datetime.now(UTC)), timedelta(0), started_by="operator:itest")
    )
    await until(db, "SELECT count(*) FROM attempts", 1, 30)
    await set_state(db, CampaignState.PAUSED, "operator:pauser")
    # The call under way rings out and is stored as usual.
    await until(db, "SELECT count(*) FROM attempts WHERE state='ended'", 1, 30)
    await asyncio.sleep(4.0)  # longer than a call: the free line would have placed the next one
    assert count(db, "SELECT count(*) FROM attempts") == 1
    assert sum((await calls_received(asterisk, PHONES)).values()) == 1  # no new Originate reached one
    assert not run.done()
    await set_state(db, CampaignState.RUNNING, "operator:pauser")
    summary = await asyncio.wait_for(run, 60)
    assert summary.placed == len(PHONES)
    assert [r["disposition"] for r in await attempts(settings)] == ["no_answer"] * len(PHONES)
    assert await calls_received(asterisk, PHONES) == dict.fromkeys(PHONES, 1)
    with sqlite3.connect(db) as conn:
        trail = list(
            conn.execute("SELECT kind, actor FROM audit_events WHERE kind LIKE 'campaign.%' ORDER BY seq")
        )
    conn.close()
    assert trail[1:] == [
        ("campaign.started", "operator:itest"),
        ("campaign.paused", "operator:pauser"),
        ("campaign.resumed", "operator:pauser"),
    ]
