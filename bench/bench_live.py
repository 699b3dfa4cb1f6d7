"""The operations page's live read of one large campaign: `Store.live_state`, in milliseconds.

    .venv/bin/python bench/bench_live.py [--accounts 1000000] [--attempts 10000000] [--rebuild]

Builds (once; cached as var/bench/live-<accounts>-<attempts>.db) a store with two campaigns, nine
in ten of the accounts, attempts and texts in the measured one: the attempts one a second up to
now (the last 20 still open), a text per account (mostly delivered, a tenth accepted: in flight),
and 200,000 policy refusals (`contact.blocked`, one every 10 s, two reasons each). Rows are made
by SQL alone (recursive CTEs), not through the store: nothing here is about writing. Then reads
the live state five times and prints each read's time and the figures it found.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.store import SqliteStore  # noqa: E402
from dialer.store.times import to_db  # noqa: E402

NOW = datetime(2026, 12, 2, 15, tzinfo=UTC)
REFUSALS = 200_000
ROWS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
# A time `i` seconds before NOW, as the store writes times.
AGO = "strftime('%Y-%m-%dT%H:%M:%S.000000Z', '2026-12-02 15:00:00', printf('%+d seconds', -({})))"


async def build(path: Path, accounts: int, attempts: int) -> None:
    store = await SqliteStore.open(path)
    try:
        await store.create_campaign("big", NOW)
        await store.create_campaign("other", NOW)
    finally:
        await store.close()
    now = to_db(NOW)
    with sqlite3.connect(path) as conn:
        conn.execute(
            ROWS + "INSERT INTO accounts (id, account_id, debt_id, name, phone_e164, region, time_zones, "
            "tz_derived, amount_minor, currency, due_date, language, created_at, updated_at) "
            "SELECT i, 'A' || i, 'D' || i, 'n', printf('+1202%07d', i), 'US', '[\"America/New_York\"]', 0, "
            "10000, 'USD', '2026-12-01', 'en-US', ?, ? FROM n",
            (accounts, now, now),
        )
        conn.execute(
            ROWS + "INSERT INTO targets (campaign_id, account_pk, state, attempts, next_at, channel, note, "
            f"added_at) SELECT CASE WHEN i % 10 THEN 1 ELSE 2 END, i, 'pending', 0, {AGO.format('-i')}, "
            "'voice', '', ? FROM n",
            (accounts, now),
        )
        conn.execute(
            ROWS
            + "INSERT INTO attempts (campaign_id, account_pk, phone_e164, attempt_no, state, decided_at, "
            f"disposition) SELECT CASE WHEN i % 10 THEN 1 ELSE 2 END, i % ? + 1, '+1', 1, "
            f"CASE WHEN i > ? THEN 'decided' ELSE 'ended' END, {AGO.format('? - i')}, "
            "CASE WHEN i > ? THEN NULL ELSE "
            "(CASE i % 5 WHEN 0 THEN 'busy' WHEN 1 THEN 'no_answer' WHEN 2 THEN 'answered' "
            "WHEN 3 THEN 'machine' ELSE 'failed' END) END FROM n",
            (attempts, accounts, attempts - 20, attempts, attempts - 20),
        )
        conn.execute(
            ROWS
            + "INSERT INTO messages (campaign_id, account_pk, phone_e164, batch, purpose, template, text, "
            "coding, segments, gateway, state, policy_reasons, decided_at, updated_at, dialer_id) "
            "SELECT CASE WHEN i % 10 THEN 1 ELSE 2 END, i, '+1', 'b', 'reminder', 't', 'x', 'gsm-7', 1, 'g', "
            f"CASE i % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'accepted' ELSE 'delivered' END, '[]', "
            f"{AGO.format('? - i')}, ?, 't' FROM n",
            (accounts, accounts, now),
        )
        conn.execute(
            ROWS + "INSERT INTO audit_events (at, kind, actor, campaign_id, data, prev_hash, hash) "
            f"SELECT {AGO.format('(? - i) * 10')}, 'contact.blocked', 'dialer:b', 1, "
            "json_object('reasons', json_array(json_object('rule', CASE i % 3 WHEN 0 THEN '7-in-7' "
            "WHEN 1 THEN 'window' ELSE 'daily-cap' END, 'detail', 'refusal ' || i), "
            "json_object('rule', 'consent', 'detail', 'informs'))), '', '' FROM n",
            (REFUSALS, REFUSALS),
        )
    conn.close()


async def measure(path: Path) -> None:
    store = await SqliteStore.open(path)
    try:
        for _ in range(5):
            started = time.perf_counter()
            live = await store.live_state(1, NOW)
            ms = 1000 * (time.perf_counter() - started)
            print(
                f"live_state {ms:6.0f} ms: calls in flight {live.calls_in_flight}, texts in flight "
                f"{live.texts_in_flight}, last minute {live.calls_last_minute} calls "
                f"{live.texts_last_minute} texts, {sum(live.dispositions.values())} calls ended, "
                f"{sum(live.deliveries.values())} texts, refusals {live.refusals_last_hour}, "
                f"{len(live.next_due)} due next"
            )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--attempts", type=int, default=10_000_000)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    path = ROOT / "var" / "bench" / f"live-{args.accounts}-{args.attempts}.db"
    if args.rebuild or not path.exists():
        for old in path.parent.glob(f"{path.name}*"):
            old.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        asyncio.run(build(path, args.accounts, args.attempts))
        print(f"built {path.name} in {time.perf_counter() - started:.0f} s")
    asyncio.run(measure(path))


if __name__ == "__main__":
    main()
