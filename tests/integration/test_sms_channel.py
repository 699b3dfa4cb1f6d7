"""Texts end to end through the real Kannel (fake SMSC handsets on loopback): the policy, the row
before the gateway, delivery reports by DueCall's own id, a STOP reply, its one confirmation,
and no more texts after it (issue 12, items 3-6)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dialer.core.clock import SystemClock
from dialer.core.config import Settings
from dialer.core.models import AccountRecord
from dialer.store import SqliteStore, Store
from duecall import texts
from sms import kannel
from tests.support.config import make_settings
from tests.support.handsets import Handsets, connected_handsets
from tests.support.project import daytime_zone
from tests.support.records import borrower

PORTS = {"admin_port": 13500, "smsbox_port": 13501, "sendsms_port": 13513, "fake_port": 13520}
RECEIVER = 13530
PHONE = "+12025550161"
PHONE_CN = "+8613912345678"


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    s = make_settings(
        tmp_path, sms={"state_dir": str(tmp_path / "state"), **PORTS, "receiver_port": RECEIVER}
    )
    kannel.start(s.sms, s.path(s.sms.state_dir))
    try:
        yield s
    finally:
        kannel.stop(s.sms, s.path(s.sms.state_dir))


@pytest.fixture
def handsets(settings: Settings) -> Iterator[Handsets]:
    with connected_handsets(settings) as phones:
        yield phones


def _account(account_id: str, phone: str, language: str, zone: str) -> AccountRecord:
    return borrower(account_id, phone, zone, language)


@contextlib.asynccontextmanager
async def channel(settings: Settings, receive: bool = True) -> AsyncIterator[tuple[Store, texts.TextChannel]]:
    store = await SqliteStore.open(settings.path(settings.store.path))
    clock = SystemClock()
    now = clock.now()
    zone = daytime_zone(now)
    await store.upsert_accounts(
        [_account("A1", PHONE, "en-US", zone), _account("A2", PHONE_CN, "zh-CN", zone)], now
    )
    campaign = await store.create_campaign("texts", now)
    await store.add_targets(campaign.id, now)
    built = texts.build(settings, store, clock, "test")
    try:
        if not receive:
            yield store, built
            return
        async with texts.receiving(settings, built, clock):
            yield store, built
    finally:
        await built.gateway.aclose()
        await store.close()


async def _until(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def _states(store: Store) -> dict[str, str]:
    return {r["account_id"]: r["state"] for r in await store.messages_in()}


async def test_texts_are_delivered_and_a_stop_reply_ends_them(settings: Settings, handsets: Handsets) -> None:
    async with channel(settings) as (store, built):
        campaign = await store.campaign("texts")
        assert campaign is not None
        accounts = await store.campaign_accounts(campaign.id)
        requests = texts.requests_for(built, accounts, "before_due", "b1", campaign.id)
        summary = await built.sender.send_batch(requests)
        assert summary.counts() == {"submitted": 2}
        lines = handsets.received(3)  # the English text in one line, the Chinese one in two segments
        assert any(
            line.startswith(f"Acme Lending {PHONE} text ") or f" {PHONE} text " in line for line in lines
        )
        assert sum(f" {PHONE_CN} udh " in line for line in lines) == 2  # 【...】 over 70 UCS-2 units

        async def delivered() -> bool:
            return set((await _states(store)).values()) == {"delivered"}

        await _until(delivered)

        handsets.reply(PHONE, "Stop. Thank you")
        handsets.reply(PHONE, "STOP this terrible bill")

        async def replied() -> bool:
            return len(await store.inbox(everything=True)) == 2

        await _until(replied)
        kinds = {r["text"]: r["kind"] for r in await store.inbox(everything=True)}
        assert kinds == {"Stop. Thank you": "opt_out", "STOP this terrible bill": "for_person"}
        assert [r["text"] for r in await store.inbox()] == ["STOP this terrible bill"]
        assert await store.opted_out(PHONE) == {"sms"}  # us-regf: an SMS opt-out stops texts only
        [confirmation] = handsets.received(1)
        assert "no more texts" in urllib.parse.unquote_plus(confirmation)

        again = await built.sender.send_batch(
            texts.requests_for(built, accounts, "due_today", "b2", campaign.id)
        )
        refused = [r for r in again.results if r.state == "refused"]
        assert [r.request.account.account_id for r in refused] == ["A1"]
        assert "opt-out" in refused[0].reason


async def test_a_rerun_of_a_batch_sends_nothing_twice(settings: Settings, handsets: Handsets) -> None:
    async with channel(settings) as (store, built):
        campaign = await store.campaign("texts")
        assert campaign is not None
        accounts = await store.campaign_accounts(campaign.id)
        first = await built.sender.send_batch(
            texts.requests_for(built, accounts, "before_due", "b1", campaign.id)
        )
        second = await built.sender.send_batch(
            texts.requests_for(built, accounts, "before_due", "b1", campaign.id)
        )
        assert first.counts() == {"submitted": 2} and second.counts() == {"skipped": 2}
        assert len(handsets.received(3)) == 3
        assert handsets.received(1, timeout=1.0) == []
        assert len(await store.messages_in("b1")) == 2


async def test_reports_sent_while_the_receiver_is_down_arrive_when_it_is_back(
    settings: Settings, handsets: Handsets
) -> None:
    async with channel(settings, receive=False) as (store, built):
        campaign = await store.campaign("texts")
        assert campaign is not None
        accounts = await store.campaign_accounts(campaign.id)
        summary = await built.sender.send_batch(
            texts.requests_for(built, accounts, "due_today", "b1", campaign.id)
        )
        assert summary.counts() == {"submitted": 2}
        assert len(handsets.received(2)) >= 2
        await asyncio.sleep(1.0)  # Kannel's callbacks fail now (nothing listens) and are queued for retry
        assert set((await _states(store)).values()) == {"submitted"}
        async with texts.receiving(settings, built, SystemClock()):

            async def delivered() -> bool:
                return set((await _states(store)).values()) == {"delivered"}

            await _until(delivered, timeout=40.0)
