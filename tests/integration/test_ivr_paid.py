"""A payment during a call (issue 13 item 2): the account is paid in full while its call is being
placed, so the borrower, once confirmed, hears that it is paid, never the amount or the menu.

A real call through the dialer and the real Asterisk: the payment is imported into the store after
the attempt is claimed and before the IVR reaches the amount; the IVR's balance check (composed in
duecall/runtime.py `build_ivr` from the store) sees it.
"""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.accounts.payments_import import import_payments
from dialer.asterisk.host import AmiCredentials
from dialer.core.clock import SystemClock
from dialer.store import SqliteStore, Store
from duecall.runtime import dial
from ivr.script import load_script
from ivr.tts import PromptCache
from tests.support.project import daytime_zone
from tests.support.sim import SCRIPTS, ami, attempts, ivr_settings, prepare, prompt_seconds, put, reset_counts

pytestmark = pytest.mark.asterisk
PHONE = "+14045550103"  # answers, then presses the keys set in AstDB (its own number: no other test's)


async def _claimed_attempt(store: Store, within: float) -> dict[str, object]:
    """The campaign's attempt as soon as the dialer has claimed it (the call is being placed)."""
    campaign = await store.campaign("test")
    assert campaign is not None
    async with asyncio.timeout(within):
        while True:
            rows = await store.attempts_for(campaign.id)
            if rows:
                return rows[0]
            await asyncio.sleep(0.05)


def _payment_csv(path: Path, account_id: str) -> Path:
    paid_at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["payment_id", "account_id", "amount", "currency", "paid_at"])
        writer.writerow(["PAY-1", account_id, "1234.50", "USD", paid_at])  # the whole amount due
    return path


async def test_a_payment_while_the_call_is_placed_stops_the_request_for_money(
    asterisk: AmiCredentials, work_dir: Path
) -> None:
    settings = ivr_settings(work_dir)
    cache = PromptCache(settings.path(settings.ivr.prompts_dir))
    intro = await prompt_seconds(cache, "en-US", ["intro"], "Borrower PAID1")
    await put(asterisk, PHONE, "keys", "1")  # "yes, it's me", during the right-party question
    await put(asterisk, PHONE, "delay", f"{intro + 2:.1f}")
    await reset_counts(asterisk, [PHONE])
    await prepare(settings, work_dir, [("PAID1", PHONE, daytime_zone())])

    run = asyncio.create_task(dial(settings, "test", SystemClock(), timedelta(0)))
    store = await SqliteStore.open(settings.path(settings.store.path))
    try:
        claimed = await _claimed_attempt(store, within=90)  # prompts are rendered first: slow when busy
        report = await import_payments(
            store,
            _payment_csv(work_dir / "payments.csv", "PAID1"),
            "USD",
            datetime.now(UTC),
            work_dir / "rej.csv",
        )
        assert (report.inserted, report.rejected) == (1, 0)
        # Written while the call was being placed, before the IVR reached the amount.
        so_far = await store.ivr_steps(int(claimed["id"]))  # type: ignore[call-overload]
        assert not any(node == "details" for node, _, _ in so_far), so_far
        summary = await asyncio.wait_for(run, 90)
        steps = await store.ivr_steps(int(claimed["id"]))  # type: ignore[call-overload]
    finally:
        if not run.done():
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        await store.close()
        async with ami(asterisk) as client:
            for key in ("keys", "delay"):
                await client.send("DBDel", {"Family": f"sim/{PHONE.lstrip('+')}", "Key": key})

    assert summary.placed == 1
    [row] = await attempts(settings)
    assert (row["disposition"], row["outcome"]) == ("answered", "already_paid"), row
    script = load_script(SCRIPTS / "reminder-en-US.yaml")
    said = [d["text"] for _, kind, d in steps if kind == "prompt"]
    assert said[-1] == script.paid_in_full
    assert not any("1,234" in text or "dollars" in text for text in said), said  # no amount
    nodes = {node for node, _, _ in steps}
    assert nodes.isdisjoint({"details", "menu", "pay_today", "promise_date"}), nodes  # no menu, no ask
    assert ("paid_in_full", "outcome", {"outcome": "already_paid", "via": "balance"}) in steps
    assert ("confirm", "key", {"digit": "1", "barge_in": True}) in steps  # the right person, first
