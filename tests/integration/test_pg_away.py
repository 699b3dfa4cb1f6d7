"""The database goes away mid-campaign (issue 15, "Bad input and safety"): PostgreSQL is stopped
while calls are up. The dialer places no call while it is away, the calls in flight finish, their
results are held and written once it is back, and the campaign goes on: every account called
exactly once, no attempt left open, the chain whole.

A real PostgreSQL of its own (stopped and started by the test, so not the suite's shared one);
Asterisk is the scripted AMI peer (the calls' side is not what this test is about: the dialer's
real-Asterisk crash tests are in test_dialer_crash.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.asterisk.ami import AmiEndpoint
from dialer.campaign.engine import Dialer
from dialer.core.clock import FixedClock
from dialer.core.errors import StoreUnavailable
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import pg_cluster
from dialer.store.chain import COLUMNS, StoredEvent, first_break
from dialer.store.pg_cluster import PgServer
from dialer.store.postgres import PostgresStore
from tests.support.config import make_settings
from tests.support.fake_ami import FakeAmi, block
from tests.support.project import STATE_DIR
from tests.support.records import record

STATE = STATE_DIR / "postgres-away"
PORT = 55438  # its own: the test stops it
NOW = datetime(2026, 11, 30, 15, tzinfo=UTC)  # 10:00 in New York, the test accounts' zone
ACCOUNTS = 12
CALL_SECONDS = 1.5  # every call is answered by nobody and ends busy this long after the Originate


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    started = pg_cluster.start(STATE, port=PORT, fsync=False)
    yield started
    pg_cluster.stop(STATE)


@pytest.fixture
async def fake_ami() -> AsyncIterator[tuple[FakeAmi, int]]:
    fake = FakeAmi()
    port = await fake.start()

    def reply(message: dict[str, str]) -> list[bytes]:
        variables = message["Variable"].split("\n")
        key = next(v.split("=", 1)[1] for v in variables if v.startswith("DUECALL_ATTEMPT="))
        busy = {"Event": "UserEvent", "UserEvent": "DueCallDial", "Attempt": key, "DialStatus": "BUSY"}
        asyncio.get_running_loop().call_later(CALL_SECONDS, lambda: fake.emit(**busy, Cause="17"))
        return [
            block(Response="Success", ActionID=message["ActionID"], Message="Originate successfully queued")
        ]

    fake.on_action["Originate"] = reply
    yield fake, port
    await fake.stop()


async def test_postgresql_stopped_mid_campaign_loses_no_result_and_places_no_extra_call(
    server: PgServer, fake_ami: tuple[FakeAmi, int], tmp_path: Path
) -> None:
    url = pg_cluster.create_database(server, "away")
    try:
        store = await PostgresStore.open(url)
        try:
            await _campaign(store, *fake_ami, tmp_path)
        finally:
            await store.close()
    finally:
        await asyncio.to_thread(pg_cluster.start, STATE, port=PORT, fsync=False)
        pg_cluster.drop_database(server, "away")


async def _campaign(store: PostgresStore, fake: FakeAmi, port: int, tmp_path: Path) -> None:
    phones = [f"+1202555{100 + i:04d}" for i in range(ACCOUNTS)]
    await store.upsert_accounts([record(f"A{i}", p) for i, p in enumerate(phones)], NOW)
    campaign = await store.create_campaign("away", NOW)
    await store.add_targets(campaign.id, NOW)
    settings = make_settings(
        tmp_path,
        asterisk={"reconnect_delay": "0.1s", "action_timeout": "1s"},
        dialer={
            "max_concurrent": "4",
            "calls_per_second": "20",
            "ring_timeout": "5s",
            "poll_interval": "0.05s",
        },
    )
    endpoint = AmiEndpoint("127.0.0.1", port, "duecall", "s3cret")
    gate, clock = PackGate(load_pack("us-regf")), FixedClock(NOW)
    dialer = Dialer(settings, store, campaign, gate, clock, endpoint, dialer_id="dialer-a")
    run = asyncio.create_task(dialer.run(timedelta(0)))
    while len(fake.actions("Originate")) < 4:  # four calls up
        await asyncio.sleep(0.02)
    await asyncio.to_thread(pg_cluster.stop, STATE)  # fast: every session is ended
    placed_when_stopped = len(fake.actions("Originate"))
    with pytest.raises(StoreUnavailable):
        await store.attempts_for(campaign.id)
    await asyncio.sleep(2 * CALL_SECONDS)  # the calls in flight end while it is away
    assert len(fake.actions("Originate")) == placed_when_stopped  # no claim, no call
    assert dialer.calls_in_flight == placed_when_stopped  # their results held, not dropped
    await asyncio.to_thread(pg_cluster.start, STATE, port=PORT, fsync=False)
    await asyncio.wait_for(run, 60)

    rows = await store.attempts_for(campaign.id)
    assert len(rows) == ACCOUNTS == len(fake.actions("Originate"))  # each called once, once only
    assert {r["state"] for r in rows} == {"ended"}
    assert {r["disposition"] for r in rows} == {"busy"}
    assert sorted(r["phone_e164"] for r in rows) == phones
    chain = await store.fetch_all(f"SELECT {COLUMNS} FROM audit_events ORDER BY seq")
    last, _, broken = first_break(StoredEvent.from_row(r) for r in chain)
    assert broken is None and last == len(chain) > ACCOUNTS
