"""The strategy's decisions in `duecall run`: the store read and the choice, per account.

    .venv/bin/python bench/bench_steering.py [--accounts 20000] [--history 3]

A fresh SQLite store with N accounts (New York, 5 days late, the shipped us-regf strategy), each
with `--history` earlier calls and a payment, in a campaign created with the strategy. Then what
the strategy's lane does for every due account: read the snapshots of a batch of 200
(`Steering.choose_all`, or one at a time with `--batch 1` as a call's or a text's lane asks
again: payments, promises, contacts, what was said, the policy's history,
opt-outs, preferences, columns) and choose. Prints the time per account and this process's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import resource
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.campaign.steering import ContactNow, Steering  # noqa: E402
from dialer.core.balance import Payment  # noqa: E402
from dialer.core.config import Settings  # noqa: E402
from dialer.core.models import (  # noqa: E402
    Attempt,
    CallResult,
    Campaign,
    Decision,
    Disposition,
    TargetState,
    TargetUpdate,
)
from dialer.policy.gate import PackGate, pack_from_settings  # noqa: E402
from dialer.store import SqliteStore  # noqa: E402
from dialer.store.payments import NewPayment  # noqa: E402
from dialer.strategy.loader import SHIPPED_STRATEGIES  # noqa: E402
from dialer.strategy.model import Strategy  # noqa: E402
from duecall import steered  # noqa: E402
from tests.support.config import make_settings  # noqa: E402
from tests.support.records import borrower  # noqa: E402

NOW = datetime(2026, 12, 7, 15, tzinfo=UTC)  # 10:00 in New York


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _allow(*_: object) -> Decision:
    return Decision(True)


async def prepare(
    store: SqliteStore, settings: Settings, accounts: int, history: int
) -> tuple[Campaign, Strategy]:
    due = (NOW - timedelta(days=5)).date()
    records = [
        dataclasses.replace(borrower(f"B{i:06d}", f"+1202{i:07d}", "America/New_York"), due_date=due)
        for i in range(accounts)
    ]
    await store.upsert_accounts(records, NOW - timedelta(days=9))
    earlier = await store.create_campaign("earlier", NOW - timedelta(days=9))
    await store.add_targets(earlier.id, NOW - timedelta(days=9))
    for day in range(history):  # calls on the days before: the policy's and the strategy's history
        at = NOW - timedelta(days=history - day)
        for target in await store.due_targets(earlier.id, at, accounts):
            got = await store.claim(target, at, _allow, lambda i, _: "", "bench", at - timedelta(days=9))
            assert isinstance(got, Attempt)
            result = CallResult(Disposition.NO_ANSWER, at + timedelta(seconds=30))
            await store.finish_attempt(got, result, TargetUpdate(TargetState.PENDING, at + timedelta(days=1)))
    import_id = await store.start_payment_import("bench.csv", NOW)
    named = await store.accounts_named([r.account_id for r in records])
    payments = [
        NewPayment(i + 2, "raw", a.pk, Payment(f"P{i}", 1000, "USD", NOW - timedelta(days=2)))
        for i, a in enumerate(named.values())
    ]
    await store.payment_import_batch(import_id, 1, payments, [], NOW)
    campaign = await store.create_campaign("bench", NOW)
    file = SHIPPED_STRATEGIES / "us-regf.yaml"
    campaign = await steered.attach(store, settings, campaign, file, NOW, "bench")
    await store.add_targets(campaign.id, NOW)
    return campaign, steered.read_strategy(settings, file).strategy


async def main(accounts: int, history: int, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))
        store = await SqliteStore.open(Path(tmp) / "duecall.db", "NORMAL")
        try:
            campaign, strategy = await prepare(store, settings, accounts, history)
            gate = PackGate(pack_from_settings(settings.policy))
            steering = Steering(store, campaign, strategy, gate, "bench")
            due = await store.due_targets(campaign.id, NOW, accounts, channel=None)
            started, cpu0, asked = time.perf_counter(), cpu(), Counter[str]()
            for start in range(0, len(due), batch):
                for choice, _ in await steering.choose_all(due[start : start + batch], NOW):
                    asked[choice.channel if isinstance(choice, ContactNow) else type(choice).__name__] += 1
            wall, used = time.perf_counter() - started, cpu() - cpu0
        finally:
            await store.close()
    print(f"{len(due)} accounts, {history} earlier unanswered calls each: {dict(asked)}")
    per = 1e6 / len(due)
    print(f"strategy decisions: {per * wall:.0f} us per account wall, {per * used:.0f} us CPU")
    print(f"({len(due) / wall:.0f} accounts/s; store read + next_contact, batches of {batch})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--history", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200, help="200: the strategy's lane; 1: a contact's")
    args = parser.parse_args()
    asyncio.run(main(args.accounts, args.history, args.batch))
