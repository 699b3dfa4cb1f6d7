"""Contact-policy figures: decisions per second on one core, and the time to find the callable
accounts among 1,000,000 with 10,000,000 history rows in SQLite.

Run: .venv/bin/python bench/bench_policy.py decisions [--n 50000]
     .venv/bin/python bench/bench_policy.py scan [--accounts 1000000] [--history 10000000]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.core.models import Account, Disposition, PastAttempt
from dialer.policy.engine import Consumer, Contact, Proposal, decide
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import from_db, to_db

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Asia/Shanghai")
OUTCOMES = ("answered", "no_answer", "voicemail", "busy", "not_in_service", "no_answer")
DISPOSITIONS = ("answered", "no_answer", "machine", "busy", "failed", "no_answer")


def proposals(n: int, rng: random.Random) -> list[Proposal]:
    out = []
    for i in range(n):
        zones = tuple(rng.sample(ZONES[:4], rng.choice((1, 1, 2))))
        history = tuple(
            Contact(
                str(j),
                NOW - timedelta(hours=rng.uniform(1, 24 * 8)),
                "voice",
                "outbound",
                "consumer",
                ("D1",),
                rng.choice(OUTCOMES),
                rng.random() < 0.05,
            )
            for j in range(rng.randrange(0, 12))
        )
        at = NOW + timedelta(minutes=rng.randrange(0, 24 * 60))
        out.append(Proposal(str(i), at, "voice", "consumer", ("D1",), Consumer(zones), history))
    return out


def bench_decisions(n: int) -> None:
    rng = random.Random(1)
    items = proposals(n, rng)
    pack = load_pack("us-regf")
    start = time.process_time()
    allowed = sum(1 for p in items if decide(pack, p).allowed)
    took = time.process_time() - start
    print(
        f"{n} decisions (0-11 history rows each, 1-2 zones, us-regf) in {took:.2f} s CPU: "
        f"{n / took:,.0f} decisions/s on one core; {allowed} allowed"
    )


def build(db: Path, accounts: int, history: int, rng: random.Random) -> None:
    from dialer.store import _migrations, _statements

    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    for _, sql in _migrations():
        for statement in _statements(sql):
            conn.execute(statement)
    stamp = to_db(NOW)
    conn.execute("INSERT INTO campaigns (id, name, created_at) VALUES (1, 'bench', ?)", (stamp,))
    batch = 100_000
    for start in range(0, accounts, batch):
        rows = [
            (
                i + 1,
                f"A{i}",
                f"D{i}",
                "X",
                f"+1{2000000000 + i}",
                "US",
                json.dumps([rng.choice(ZONES[:4])]),
                1,
                10000,
                "USD",
                "2026-12-01",
                "en-US",
                stamp,
                stamp,
            )
            for i in range(start, min(accounts, start + batch))
        ]
        conn.executemany("INSERT INTO accounts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.executemany(
            "INSERT INTO targets (campaign_id, account_pk, state, attempts, next_at) "
            "VALUES (1, ?, 'pending', 0, ?)",
            [(r[0], stamp) for r in rows],
        )
    for start in range(0, history, batch):
        rows = []
        for _ in range(min(batch, history - start)):
            i = rng.randrange(accounts)
            at = NOW - timedelta(hours=rng.uniform(1, 24 * 60))
            rows.append((1, i + 1, f"+1{2000000000 + i}", 1, "ended", to_db(at), rng.choice(DISPOSITIONS)))
        conn.executemany(
            "INSERT INTO attempts (campaign_id, account_pk, phone_e164, attempt_no, state, "
            "decided_at, disposition) VALUES (?,?,?,?,?,?,?)",
            rows,
        )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


SCAN = """
SELECT a.id, a.account_id, a.debt_id, a.phone_e164, a.time_zones,
       h.id, h.decided_at, h.disposition, h.cause, h.outcome
FROM targets t JOIN accounts a ON a.id = t.account_pk
LEFT JOIN attempts h ON h.phone_e164 = a.phone_e164 AND h.decided_at >= ?
WHERE t.campaign_id = 1 AND t.state = 'pending' AND t.next_at <= ?
ORDER BY a.id
"""


def scan(db: Path) -> None:
    gate = PackGate(load_pack("us-regf"))
    conn = sqlite3.connect(db)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    callable_, seen, rows_read = 0, 0, 0
    current: tuple[int, str, str, str, str] | None = None
    past: list[PastAttempt] = []

    def flush() -> None:
        nonlocal callable_, seen
        if current is None:
            return
        pk, account_id, debt, phone, zones = current
        account = Account(
            pk,
            account_id,
            debt,
            "X",
            phone,
            tuple(json.loads(zones)),
            False,
            10000,
            "USD",
            NOW.date(),
            "en-US",
        )
        seen += 1
        callable_ += gate.decide(account, NOW, past, False).allowed

    for row in conn.execute(SCAN, (to_db(NOW - gate.history_window), to_db(NOW))):
        rows_read += 1
        if current is None or row[0] != current[0]:
            flush()
            current, past = (row[0], row[1], row[2], row[3], row[4]), []
        if row[5] is not None:
            past.append(
                PastAttempt(
                    row[5], from_db(row[6]), 1, Disposition(row[7]), row[2], row[8] or "", row[9] or ""
                )
            )
    flush()
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    print(
        f"scanned {seen:,} accounts ({rows_read:,} rows with their last 8 days of history) in "
        f"{wall:.1f} s ({cpu:.1f} s CPU, one core): {callable_:,} callable now"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["decisions", "scan"])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse (or keep) this database file")
    args = parser.parse_args()
    if args.what == "decisions":
        bench_decisions(args.n)
        return
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent / "var") as tmp:
        db = args.db or Path(tmp) / "scan.db"
        if not db.exists():
            start = time.perf_counter()
            build(db, args.accounts, args.history, random.Random(2))
            print(
                f"built {args.accounts:,} accounts and {args.history:,} history rows in "
                f"{time.perf_counter() - start:.0f} s"
            )
        scan(db)


if __name__ == "__main__":
    main()
