"""Claims per second: dialers claiming one campaign at once through the store, as the engine does
(due targets in batches, then `Store.claim` per target: the policy's decision on the number's
history inside the write transaction, the attempt and its audit event). No Asterisk: what is
measured is the store and the policy, the part several machines share.

Each dialer is its own process with its own store (its own connection pool), as on its own machine;
accounts share numbers (three per number) under the pack's caps, so claims also refuse. The
PostgreSQL runs are on the project's own cluster (started here under var/bench/postgres-claims,
port 55439, fsync on as in production); SQLite runs one dialer (one machine).

Run: .venv/bin/python bench/bench_claims.py [--accounts 30000] [--dialers 1 3] [--seconds 20]
         [--backend postgresql sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.core.models import AccountRecord, Attempt
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import Store, pg_cluster
from dialer.store.postgres import PostgresStore
from dialer.store.sqlite import SqliteStore

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York
STATE = Path("var/bench/postgres-claims")
PORT = 55439
BATCH = 50  # the engine's batch for 20 lines: max(50, 2 * max_concurrent)


@dataclass(frozen=True)
class Tally:
    dialer: int
    claimed: int
    refused: int  # by the policy (a cap), or taken by another dialer first
    seconds: float


async def _open(url: str) -> Store:
    if url.startswith("postgresql://"):
        return await PostgresStore.open(url)
    return await SqliteStore.open(Path(url.removeprefix("sqlite:///")))


def _accounts(n: int) -> list[AccountRecord]:
    return [
        AccountRecord(
            f"A{i}",
            f"D{i}",
            "Test",
            f"+1202{5550000 + i // 3:07d}",
            "US",
            ("America/New_York",),
            True,
            12345,
            "USD",
            date(2026, 11, 20),
            "en-US",
        )
        for i in range(n)
    ]


async def _prepare(url: str, accounts: int) -> int:
    store = await _open(url)
    try:
        rows = _accounts(accounts)
        for start in range(0, len(rows), 5000):
            await store.upsert_accounts(rows[start : start + 5000], NOW)
        campaign = await store.create_campaign(f"claims-{uuid.uuid4().hex[:6]}", NOW)
        await store.add_targets(campaign.id, NOW)
        return campaign.id
    finally:
        await store.close()


async def _dial(url: str, campaign_id: int, dialer: int, seconds: float) -> Tally:
    store = await _open(url)
    gate = PackGate(load_pack("us-regf"))

    def decide(account, history, opted_out, prefs):  # type: ignore[no-untyped-def]
        return gate.decide(account, NOW, history, opted_out, prefs)

    claimed = refused = 0
    try:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            due = await store.due_targets(campaign_id, NOW, BATCH)
            if not due:
                break
            for target in due:
                got = await store.claim(
                    target,
                    NOW,
                    lambda account, history, opted_out, prefs: gate.decide(
                        account, NOW, history, opted_out, prefs
                    ),
                    lambda i, at: f"/r/{i}",
                    f"bench-{dialer}",
                    NOW - gate.history_window,
                )
                if isinstance(got, Attempt):
                    claimed += 1
                else:
                    refused += 1
        return Tally(dialer, claimed, refused, time.perf_counter() - start)
    finally:
        await store.close()


def _dial_process(url: str, campaign_id: int, dialer: int, seconds: float) -> Tally:
    return asyncio.run(_dial(url, campaign_id, dialer, seconds))


def _run(url: str, label: str, accounts: int, dialers: int, seconds: float) -> None:
    campaign_id = asyncio.run(_prepare(url, accounts))
    with ProcessPoolExecutor(dialers, mp_context=get_context("spawn")) as pool:
        tallies = list(
            pool.map(
                _dial_process, [url] * dialers, [campaign_id] * dialers, range(dialers), [seconds] * dialers
            )
        )
    wall = max(t.seconds for t in tallies)
    claimed = sum(t.claimed for t in tallies)
    refused = sum(t.refused for t in tallies)
    per = ", ".join(f"{t.claimed}" for t in tallies)
    print(
        f"{label}, {dialers} dialer(s): {claimed:,} claims in {wall:.1f} s = {claimed / wall:,.0f} claims/s "
        f"(per dialer: {per}); {refused:,} refused or taken first ({(claimed + refused) / wall:,.0f} tries/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=30_000)
    parser.add_argument("--dialers", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backend", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL, fsync off: the commits' cost")
    args = parser.parse_args()
    if "postgresql" in args.backend:
        server = pg_cluster.start(STATE, port=PORT, fsync=not args.no_fsync)
        for n in args.dialers:
            name = f"claims_{uuid.uuid4().hex[:8]}"
            url = pg_cluster.create_database(server, name)
            try:
                _run(url, "PostgreSQL", args.accounts, n, args.seconds)
            finally:
                pg_cluster.drop_database(server, name)
        pg_cluster.stop(STATE)
    if "sqlite" in args.backend:
        with tempfile.TemporaryDirectory() as tmp:
            _run(f"sqlite:///{tmp}/claims.db", "SQLite", args.accounts, 1, args.seconds)


if __name__ == "__main__":
    main()
