"""Contact-policy figures: decisions per second on one core, and the time to find the callable
accounts among 1,000,000 with 10,000,000 history rows in SQLite.

Run: .venv/bin/python bench/bench_policy.py decisions [--n 50000]
     .venv/bin/python bench/bench_policy.py scan [--accounts 1000000] [--history 10000000]
         [--db var/bench/policy-scan-1m.db] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
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
    from dialer.store.db import _migrations, _statements

    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")  # 1 GB: the index builds sort in memory
    for _, sql in _migrations():
        for statement in _statements(sql):
            conn.execute(statement)
    # A bulk load: the indexes are dropped now and built again once the rows are in (the same schema
    # in the end, minutes faster). The reports' rollup triggers (dirty accounts and days) are no part
    # of the policy scan and would make the 10,000,000 inserts many times slower: they are dropped.
    indexes = list(
        conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    )
    triggers = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    for name in triggers:
        conn.execute(f"DROP TRIGGER {name}")
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
        conn.executemany(
            "INSERT INTO accounts (id, account_id, debt_id, name, phone_e164, region, time_zones, "
            "tz_derived, amount_minor, currency, due_date, language, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
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
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.close()


SCAN = """
SELECT a.id, a.account_id, a.debt_id, a.phone_e164, a.time_zones,
       h.id, h.decided_at, h.disposition, h.cause, h.outcome
FROM targets t JOIN accounts a ON a.id = t.account_pk
LEFT JOIN attempts h ON h.phone_e164 = a.phone_e164 AND h.decided_at >= ?
WHERE t.campaign_id = 1 AND t.state = 'pending' AND t.next_at <= ? AND a.id BETWEEN ? AND ?
ORDER BY a.id
"""


@dataclass(frozen=True)
class Part:
    """One process's share of the scan: accounts, rows read, callable accounts, its CPU seconds."""

    seen: int
    rows: int
    callable: int
    cpu: float


def scan(db: Path, processes: int) -> None:
    """The callable accounts, the account range split across `processes` (SQLite reads in parallel)."""
    conn = sqlite3.connect(db)
    (last,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM accounts").fetchone()
    conn.close()
    step = max(1, -(-last // processes))  # ceiling: every id in one range
    ranges = [(lo, min(last, lo + step - 1)) for lo in range(1, last + 1, step)] or [(1, 0)]
    start_wall = time.perf_counter()
    if processes == 1:
        parts = [scan_range(db, *ranges[0])]
    else:
        with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as pool:
            parts = list(pool.map(scan_range, [db] * len(ranges), *zip(*ranges, strict=True)))
    wall = time.perf_counter() - start_wall
    seen, rows = sum(p.seen for p in parts), sum(p.rows for p in parts)
    cpu = " + ".join(f"{p.cpu:.1f}" for p in parts)
    where = "one process" if processes == 1 else f"{processes} processes"
    print(
        f"scanned {seen:,} accounts ({rows:,} rows with their last 8 days of history) in "
        f"{wall:.1f} s ({cpu} s CPU, {where}): {sum(p.callable for p in parts):,} callable now"
    )


def scan_range(db: Path, lo: int, hi: int) -> Part:
    """Decide every pending account with lo <= id <= hi, streaming its rows in id order."""
    gate = PackGate(load_pack("us-regf"))
    conn = sqlite3.connect(db)
    start_cpu = time.process_time()
    callable_, seen, rows_read = 0, 0, 0
    current: tuple[int, str, str, str, str] | None = None
    past: list[PastAttempt] = []
    zone_lists: dict[str, tuple[str, ...]] = {}  # the few distinct time_zones texts, parsed once
    dispositions = {d.value: d for d in Disposition}  # a dict lookup, not Enum's by-value call

    def flush() -> None:
        nonlocal callable_, seen
        if current is None:
            return
        pk, account_id, debt, phone, zones = current
        parsed = zone_lists.get(zones)
        if parsed is None:
            parsed = zone_lists[zones] = tuple(json.loads(zones))
        account = Account(pk, account_id, debt, "X", phone, parsed, False, 10000, "USD", NOW.date(), "en-US")
        seen += 1
        callable_ += gate.decide(account, NOW, past, False).allowed

    for row in conn.execute(SCAN, (to_db(NOW - gate.history_window), to_db(NOW), lo, hi)):
        rows_read += 1
        if current is None or row[0] != current[0]:
            flush()
            current, past = (row[0], row[1], row[2], row[3], row[4]), []
        if row[5] is not None:
            past.append(
                PastAttempt(
                    row[5], from_db(row[6]), 1, dispositions[row[7]], row[2], row[8] or "", row[9] or ""
                )
            )
    flush()
    conn.close()
    return Part(seen, rows_read, callable_, time.process_time() - start_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["decisions", "scan"])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse (or keep) this database file")
    parser.add_argument("--processes", type=int, default=1, help="scan: split the accounts across N")
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
        scan(db, args.processes)


if __name__ == "__main__":
    main()
