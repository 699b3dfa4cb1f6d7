"""The demo's texts: reminders through the local Kannel to simulated handsets behind a simulated
SMPP carrier, with delivery reports, one failed and one expired delivery, a STOP and a 退订 reply.

The carrier decides each text's fate by the number's last four digits (docs/number-plan.md):
0141 (not in service) is undeliverable, 0120 (never answers: the phone is off) expires. The
borrowers 0170 and 0160 reply STOP and 退订; the demo's settings make an SMS opt-out stop calls
too, so the campaign that follows refuses to call them, with the reason.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dialer.core.clock import SystemClock
from dialer.core.config import Settings, SmppLink
from dialer.core.private_files import make_private_dir, write_private
from dialer.store import Store
from duecall import texts
from duecall.demo.carrier import Behaviour, FakeCarrier
from duecall.storage import open_store
from sms import kannel

CARRIER_PORT = 13190
SYSTEM_ID = "duecall-demo"
PASSWORD = "sim-pass"  # the simulated carrier's; SMPP 3.4 allows 8 characters
SHORT_CODE = "10690000"
FATES = {"0141": Behaviour.UNDELIVERABLE, "0120": Behaviour.EXPIRE}
REPLIES = {"0170": "STOP", "0160": "退订"}
WAIT = 30.0
_RECEIPT = re.compile(r"stat:\S+ err:\S+")


def texts_settings(s: Settings, state: Path) -> Settings:
    """The demo's SMS settings: Kannel on an SMPP link to the simulated carrier on loopback."""
    make_private_dir(state)
    password = state / "carrier-password"
    write_private(password, PASSWORD + "\n")
    link = SmppLink(host="127.0.0.1", port=CARRIER_PORT, system_id=SYSTEM_ID, password_file=password)
    sms = s.sms.model_copy(update={"state_dir": state, "smsc": "smpp", "smpp": link})
    return s.model_copy(update={"sms": sms})


async def run_texts(s: Settings, console: Console) -> None:
    """Send the reminders, wait for their reports, bring the two replies in, print both tables."""
    store = await open_store(s)
    try:
        campaign = await store.campaign("demo")
        assert campaign is not None  # created by the import step
        accounts = await store.campaign_accounts(campaign.id)
        fates = {a.phone_e164: FATES[a.phone_e164[-4:]] for a in accounts if a.phone_e164[-4:] in FATES}
        replies = [
            (a.phone_e164, REPLIES[a.phone_e164[-4:]]) for a in accounts if a.phone_e164[-4:] in REPLIES
        ]
        state = s.path(s.sms.state_dir)
        started = time.monotonic()
        async with FakeCarrier(CARRIER_PORT, SYSTEM_ID, PASSWORD, behaviours=fates) as carrier:
            await asyncio.to_thread(kannel.start, s.sms, state)
            try:
                await carrier.wait_bound()
                await _exchange(s, store, campaign.id, carrier, replies)
            finally:
                await carrier.close()  # first: Kannel then stops at once
                await asyncio.to_thread(kannel.stop, s.sms, state)
        await _print(store, console, time.monotonic() - started)
    finally:
        await store.close()


async def _exchange(
    s: Settings, store: Store, campaign_id: int, carrier: FakeCarrier, replies: list[tuple[str, str]]
) -> None:
    clock = SystemClock()
    channel = texts.build(s, store, clock, "demo")
    try:
        async with texts.receiving(s, channel, clock):
            accounts = await store.campaign_accounts(campaign_id)
            batch = texts.default_batch("demo", "before_due", clock.now())
            await channel.sender.send_batch(
                texts.requests_for(channel, accounts, "before_due", batch, campaign_id)
            )
            await _until(lambda: _settled(store), WAIT)
            for phone, text in replies:
                await carrier.send_mo(phone, SHORT_CODE, text)
            await _until(lambda: _replied(store, len(replies)), WAIT)
            await _until(lambda: _settled(store), WAIT)  # the opt-out confirmations
    finally:
        await channel.gateway.aclose()


async def _settled(store: Store) -> bool:
    """Every text has a final state (or one that no report will change: unknown)."""
    waiting = {"queued", "submitted", "accepted"}
    return not any(r["state"] in waiting for r in await store.messages_in())


async def _replied(store: Store, count: int) -> bool:
    return len(await store.inbox(everything=True)) >= count


async def _until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Poll the store (another process's writes, too) until `check` holds or `timeout` passes."""
    for _ in range(int(timeout / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)


async def _print(store: Store, console: Console, seconds: float) -> None:
    rows = await store.messages_in()
    table = Table(
        "text", "account", "to", "template", "coding", "parts", "state", "gateway's words", title="Texts"
    )
    for r in rows:
        found = _RECEIPT.search(str(r["reason"]))  # an SMPP receipt: its stat and err say it all
        words = found.group(0) if found else str(r["reason"])
        table.add_row(
            str(r["id"]),
            r["account_id"],
            r["phone_e164"],
            str(r["template"]).split("#", 1)[1],
            r["coding"],
            str(r["segments"]),
            r["state"],
            words[-60:],
        )
    console.print(table)
    refused = await store.fetch_all(
        "SELECT account_id, data FROM audit_events WHERE kind='message.refused' ORDER BY seq"
    )
    for row in refused:
        console.print(f"   not texted {row['account_id']}: {_first_reason(row['data'])}", highlight=False)
    inbound = await store.inbox(everything=True)
    replies = Table("from", "text", "taken as", "account", title="Replies")
    for r in inbound:
        replies.add_row(r["phone_e164"], r["text"], r["kind"], r["account_id"])
    console.print(replies)
    states: dict[str, int] = {}
    for r in rows:
        states[str(r["state"])] = states.get(str(r["state"]), 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    console.print(
        f"   {len(rows)} texts ({summary}), {len(refused)} refused, {len(inbound)} replies in {seconds:.1f} s"
    )


def _first_reason(data: str) -> str:
    reasons = json.loads(data).get("reasons", [])
    return f"{reasons[0]['rule']}: {reasons[0]['detail']}"[:150] if reasons else "refused"
