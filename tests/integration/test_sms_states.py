"""Every delivery state through DueCall's own path: sender, the real Kannel on an SMPP link, the
simulated carrier deciding each number's fate, reports back through the receiver into the store;
the SMS caps and a gateway that is down (issue 12, items 3, 4 and 8)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dialer.core.clock import FixedClock, SystemClock
from dialer.core.config import Settings
from dialer.core.models import Account
from dialer.store import SqliteStore, Store
from duecall import texts
from duecall.demo.carrier import Behaviour, FakeCarrier
from duecall.demo.texting import texts_settings
from sms import kannel
from tests.support.config import make_settings
from tests.support.project import daytime_zone
from tests.support.records import borrower

PORTS = {"admin_port": 13700, "smsbox_port": 13701, "sendsms_port": 13713, "fake_port": 13720}
RECEIVER = 13730
CARRIER = 13740
FATES = {
    "+12025550201": Behaviour.DELIVER,
    "+12025550202": Behaviour.UNDELIVERABLE,
    "+12025550203": Behaviour.EXPIRE,
    "+12025550204": Behaviour.REJECT_RECEIPT,
    "+12025550205": Behaviour.REFUSE_SUBMIT,
}


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path, **policy: object
) -> AsyncIterator[tuple[Settings, Store, texts.TextChannel, FakeCarrier]]:
    base = make_settings(
        tmp_path,
        sms={**PORTS, "receiver_port": RECEIVER, "retry_delay": "0.2s"},
        policy={"pack": "us-regf", **policy},
    )
    s = texts_settings(base, tmp_path / "sms")
    assert s.sms.smpp is not None
    s = s.model_copy(
        update={"sms": s.sms.model_copy(update={"smpp": s.sms.smpp.model_copy(update={"port": CARRIER})})}
    )
    store = await SqliteStore.open(s.path(s.store.path), "NORMAL")
    now = SystemClock().now()
    zone = daytime_zone(now)
    records = [borrower(f"S{i}", phone, zone) for i, phone in enumerate(FATES)]
    await store.upsert_accounts(records, now)
    campaign = await store.create_campaign("states", now)
    await store.add_targets(campaign.id, now)
    state = s.path(s.sms.state_dir)
    async with FakeCarrier(CARRIER, "duecall-demo", "sim-pass", behaviours=FATES) as carrier:
        await asyncio.to_thread(kannel.start, s.sms, state)
        channel = texts.build(s, store, SystemClock(), "test")
        try:
            await carrier.wait_bound()
            async with texts.receiving(s, channel, SystemClock()):
                yield s, store, channel, carrier
        finally:
            await channel.gateway.aclose()
            await carrier.close()
            await asyncio.to_thread(kannel.stop, s.sms, state)
            await store.close()


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _send(store: Store, channel: texts.TextChannel, batch: str) -> dict[str, str]:
    campaign = await store.campaign("states")
    assert campaign is not None
    accounts = await store.campaign_accounts(campaign.id)
    summary = await channel.sender.send_batch(
        texts.requests_for(channel, accounts, "due_today", batch, campaign.id)
    )
    return {r.request.account.phone_e164: r.state for r in summary.results}


async def test_each_carrier_fate_is_its_state_in_the_store(tmp_path: Path) -> None:
    async with rig(tmp_path) as (_, store, channel, carrier):
        assert set((await _send(store, channel, "b1")).values()) == {"submitted"}  # Kannel took all five

        async def final() -> bool:
            rows = await store.messages_in("b1")
            return all(r["state"] not in ("queued", "submitted", "accepted") for r in rows)

        await _until(final)
        got = {r["phone_e164"]: (r["state"], r["reason"]) for r in await store.messages_in("b1")}
    assert {phone: state for phone, (state, _) in got.items()} == {
        "+12025550201": "delivered",
        "+12025550202": "failed",
        "+12025550203": "expired",
        "+12025550204": "failed",
        "+12025550205": "failed",
    }
    assert "stat:UNDELIV" in got["+12025550202"][1] and "stat:REJECTD" in got["+12025550204"][1]
    assert "NACK" in got["+12025550205"][1]  # the carrier refused the submit itself
    assert sorted(m.to for m in carrier.messages) == sorted(FATES)  # each offered once, none again


async def test_the_daily_text_cap_refuses_the_next_text_with_its_reason(tmp_path: Path) -> None:
    async with rig(tmp_path, max_sms_per_day=2) as (_, store, channel, _carrier):
        assert set((await _send(store, channel, "b1")).values()) == {"submitted"}
        assert set((await _send(store, channel, "b2")).values()) == {"submitted"}
        third = await channel.sender.send_batch(
            texts.requests_for(channel, await _accounts(store), "due_today", "b3", None)
        )
    assert {r.state for r in third.results} == {"refused"}
    assert all(r.reason.startswith("sms-daily-cap:") for r in third.results), third.results[0].reason
    assert all(r.decision and r.decision.next_allowed_at for r in third.results)


async def test_a_gateway_that_is_down_leaves_each_text_not_sent_with_the_reason(tmp_path: Path) -> None:
    async with rig(tmp_path) as (s, store, channel, _carrier):
        await asyncio.to_thread(kannel.stop, s.sms, s.path(s.sms.state_dir))
        states = await _send(store, channel, "b1")
        rows = await store.messages_in("b1")
    assert set(states.values()) == {"not_sent"}
    # Tried 3 times each (a new decision and row per try), every row saying why.
    assert len(rows) == 3 * len(FATES)
    assert all(r["state"] == "not_sent" and "unreachable" in r["reason"] for r in rows)


async def _accounts(store: Store) -> list[Account]:
    campaign = await store.campaign("states")
    assert campaign is not None
    return await store.campaign_accounts(campaign.id)


async def test_outside_the_window_nothing_reaches_the_carrier(tmp_path: Path) -> None:
    async with rig(tmp_path) as (s, store, _, carrier):
        zone = ZoneInfo((await _accounts(store))[0].time_zones[0])
        night = datetime.now(zone).replace(hour=3, minute=0, second=0, microsecond=0).astimezone(UTC)
        channel = texts.build(s, store, FixedClock(night), "night")
        try:
            summary = await channel.sender.send_batch(
                texts.requests_for(channel, await _accounts(store), "due_today", "b1", None)
            )
        finally:
            await channel.gateway.aclose()
        assert await store.messages_in("b1") == []
    assert {r.state for r in summary.results} == {"refused"}
    assert all(r.reason.startswith("window:") for r in summary.results)
    assert carrier.messages == []
