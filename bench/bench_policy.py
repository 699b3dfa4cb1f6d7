"""Contact-policy figures: decisions per second on one core, and the time to find the callable
accounts among 1,000,000 with 10,000,000 history rows, in SQLite or in PostgreSQL.

Run: .venv/bin/python bench/bench_policy.py decisions [--n 50000]
     .venv/bin/python bench/bench_policy.py scan [--accounts 1000000] [--history 10000000]
         [--db var/bench/policy-scan-1m.db] [--processes 2]
     .venv/bin/python bench/bench_policy.py scan --url postgresql://user:password@host:port/database
     .venv/bin/python bench/bench_policy.py scan --pg-cluster var/bench/postgres [--pg-port 55441]

With --url the database is built (the project's PostgreSQL schema, the same rows) unless an earlier
run finished building it there, and kept; --pg-cluster starts a throwaway cluster of its own (fsync
off) in that folder and uses its database policy_scan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

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


Rows = list[tuple[object, ...]]
BATCH = 100_000
ACCOUNT_COLUMNS = [
    "id",
    "account_id",
    "debt_id",
    "name",
    "phone_e164",
    "region",
    "time_zones",
    "tz_derived",
    "amount_minor",
    "currency",
    "due_date",
    "language",
    "created_at",
    "updated_at",
]
ATTEMPT_COLUMNS = [
    "campaign_id",
    "account_pk",
    "phone_e164",
    "attempt_no",
    "state",
    "decided_at",
    "disposition",
]


def account_batches(accounts: int, rng: random.Random) -> Iterator[Rows]:
    """The accounts, BATCH at a time: one zone each, every one a target of campaign 1."""
    stamp = to_db(NOW)
    for start in range(0, accounts, BATCH):
        yield [
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
            for i in range(start, min(accounts, start + BATCH))
        ]


def attempt_batches(accounts: int, history: int, rng: random.Random) -> Iterator[Rows]:
    """The history: calls to random accounts over the last 60 days, BATCH at a time."""
    for start in range(0, history, BATCH):
        rows: Rows = []
        for _ in range(min(BATCH, history - start)):
            i = rng.randrange(accounts)
            at = NOW - timedelta(hours=rng.uniform(1, 24 * 60))
            rows.append((1, i + 1, f"+1{2000000000 + i}", 1, "ended", to_db(at), rng.choice(DISPOSITIONS)))
        yield rows


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
    conn.execute("INSERT INTO campaigns (id, name, created_at) VALUES (1, 'bench', ?)", (to_db(NOW),))
    marks = ",".join("?" * len(ACCOUNT_COLUMNS))
    for rows in account_batches(accounts, rng):
        conn.executemany(f"INSERT INTO accounts ({', '.join(ACCOUNT_COLUMNS)}) VALUES ({marks})", rows)
        conn.executemany(
            "INSERT INTO targets (campaign_id, account_pk, state, attempts, next_at) "
            "VALUES (1, ?, 'pending', 0, ?)",
            [(r[0], r[12]) for r in rows],
        )
    marks = ",".join("?" * len(ATTEMPT_COLUMNS))
    for rows in attempt_batches(accounts, history, rng):
        conn.executemany(f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES ({marks})", rows)
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


def scan(source: Path | str, processes: int) -> None:
    """The callable accounts, the account range split across `processes` (both stores read in
    parallel). `source`: the SQLite file, or the PostgreSQL database's URL."""
    last = asyncio.run(pg_last(source)) if isinstance(source, str) else sqlite_last(source)
    step = max(1, -(-last // processes))  # ceiling: every id in one range
    ranges = [(lo, min(last, lo + step - 1)) for lo in range(1, last + 1, step)] or [(1, 0)]
    start_wall = time.perf_counter()
    if processes == 1:
        parts = [scan_range(source, *ranges[0])]
    else:
        with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as pool:
            parts = list(pool.map(scan_range, [source] * len(ranges), *zip(*ranges, strict=True)))
    wall = time.perf_counter() - start_wall
    seen, rows = sum(p.seen for p in parts), sum(p.rows for p in parts)
    cpu = " + ".join(f"{p.cpu:.1f}" for p in parts)
    where = "one process" if processes == 1 else f"{processes} processes"
    store = "PostgreSQL" if isinstance(source, str) else "SQLite"
    print(
        f"scanned {seen:,} accounts ({rows:,} rows with their last 8 days of history) in {store} in "
        f"{wall:.1f} s ({cpu} s CPU, {where}): {sum(p.callable for p in parts):,} callable now"
    )


def sqlite_last(db: Path) -> int:
    conn = sqlite3.connect(db)
    (last,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM accounts").fetchone()
    conn.close()
    return int(last)


def scan_range(source: Path | str, lo: int, hi: int) -> Part:
    """Decide every pending account with lo <= id <= hi, streaming its rows in id order."""
    scanner = Scanner(PackGate(load_pack("us-regf")))
    start_cpu = time.process_time()
    params = (to_db(NOW - scanner.gate.history_window), to_db(NOW), lo, hi)
    if isinstance(source, str):
        asyncio.run(pg_scan(source, params, scanner))
    else:
        conn = sqlite3.connect(source)
        # Pages read through a memory map, not a read() call each: a third less CPU for the SQL. SQLite
        # maps at most its build's limit (2 GB here) of the file.
        conn.execute("PRAGMA mmap_size = 8000000000")
        scanner.feed(conn.execute(SCAN, params))
        conn.close()
    scanner.flush()
    return Part(scanner.seen, scanner.rows, scanner.callable, time.process_time() - start_cpu)


class Scanner:
    """Takes the scan's rows in account order and decides each account once its rows are in."""

    def __init__(self, gate: PackGate) -> None:
        self.gate = gate
        self.seen = self.rows = self.callable = 0
        self._current: tuple[int, str, str, str, str] | None = None
        self._past: list[PastAttempt] = []
        self._zone_lists: dict[str, tuple[str, ...]] = {}  # the few distinct time_zones texts, parsed once
        self._dispositions = {d.value: d for d in Disposition}  # a dict lookup, not Enum's by-value call

    def feed(self, rows: Iterable[Sequence[object]]) -> None:
        past, current, dispositions = self._past, self._current, self._dispositions
        n = 0
        for row in rows:
            n += 1
            if current is None or row[0] != current[0]:
                self.flush()
                current = self._current = (row[0], row[1], row[2], row[3], row[4])
                past = self._past = []
            if row[5] is not None:
                at = from_db(row[6])
                past.append(
                    PastAttempt(row[5], at, 1, dispositions[row[7]], row[2], row[8] or "", row[9] or "")
                )
        self.rows += n

    def flush(self) -> None:
        if self._current is None:
            return
        pk, account_id, debt, phone, zones = self._current
        parsed = self._zone_lists.get(zones)
        if parsed is None:
            parsed = self._zone_lists[zones] = tuple(json.loads(zones))
        account = Account(pk, account_id, debt, "X", phone, parsed, False, 10000, "USD", NOW.date(), "en-US")
        self.seen += 1
        self.callable += self.gate.decide(account, NOW, self._past, False).allowed
        self._current = None


# --- PostgreSQL -----------------------------------------------------------------------------------

# The scan's query for PostgreSQL: the same rows in the same order, read as SQLite reads them (account
# by account, its history through the (phone_e164, decided_at) index) so they stream from the first.
# As a plain join the planner hashes the whole attempts table and sorts: no row before the end, and
# each process would read all 10,000,000. OFFSET 0 keeps the lateral subquery from being flattened.
SCAN_PG = """
SELECT a.id, a.account_id, a.debt_id, a.phone_e164, a.time_zones,
       h.id, h.decided_at, h.disposition, h.cause, h.outcome
FROM targets t JOIN accounts a ON a.id = t.account_pk
LEFT JOIN LATERAL (
    SELECT id, decided_at, disposition, cause, outcome FROM attempts
    WHERE phone_e164 = a.phone_e164 AND decided_at >= $1 OFFSET 0
) h ON true
WHERE t.campaign_id = 1 AND t.state = 'pending' AND t.next_at <= $2 AND a.id BETWEEN $3 AND $4
ORDER BY a.id
"""
PG_BUILT = "bench_policy: {accounts} accounts, {history} history rows"  # the database's comment, once built
PG_FETCH = 20_000  # rows per round trip of the scan's server-side cursor


async def pg_connect(url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(url)


async def pg_last(url: str) -> int:
    conn = await pg_connect(url)
    try:
        return int(await conn.fetchval("SELECT COALESCE(MAX(id), 0) FROM accounts"))
    finally:
        await conn.close()


async def pg_scan(url: str, params: tuple[object, ...], scanner: Scanner) -> None:
    """The scan's query through a server-side cursor, PG_FETCH rows at a time: the next rows are asked
    for before these are decided, so the server reads them meanwhile (on the other core)."""
    conn = await pg_connect(url)
    try:
        await conn.execute("SET jit = off")  # compiling the plan costs more than this query saves
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = await conn.cursor(SCAN_PG, *params)
            rows = await cursor.fetch(PG_FETCH)
            while rows:
                ahead = asyncio.ensure_future(cursor.fetch(PG_FETCH))
                await asyncio.sleep(0)  # the request goes out now
                scanner.feed(rows)
                rows = await ahead
    finally:
        await conn.close()


async def pg_built(url: str) -> str | None:
    conn = await pg_connect(url)
    try:
        return await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
        )
    finally:
        await conn.close()


async def pg_build(url: str, accounts: int, history: int, rng: random.Random) -> None:
    """The same rows as `build`, in the project's PostgreSQL schema (the store's migrations, run by
    PgDatabase), loaded with COPY; the indexes and foreign keys made again after, as `build` does."""
    from dialer.store.pg import PgDatabase

    database = await PgDatabase.open(url)  # the schema: every migration, as the store makes it
    await database.close()
    conn = await pg_connect(url)
    try:
        await conn.execute("SET maintenance_work_mem = '1GB'")  # the index builds sort in memory
        tables = ["accounts", "targets", "attempts", "campaigns"]
        # A bulk load, as `build`: the rollup triggers go; the indexes and foreign keys are dropped
        # and made again once the rows are in (the primary keys stay).
        triggers = await conn.fetch(
            "SELECT tgname, tgrelid::regclass::text AS rel FROM pg_trigger "
            "WHERE NOT tgisinternal AND tgrelid::regclass::text = ANY($1)",
            tables,
        )
        for t in triggers:
            await conn.execute(f'DROP TRIGGER "{t["tgname"]}" ON {t["rel"]}')
        keys = await conn.fetch(
            "SELECT conname, conrelid::regclass::text AS rel, pg_get_constraintdef(oid) AS def "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY($1)",
            tables,
        )
        for k in keys:
            await conn.execute(f'ALTER TABLE {k["rel"]} DROP CONSTRAINT "{k["conname"]}"')
        indexes = await conn.fetch(
            "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def "
            "FROM pg_index i WHERE i.indrelid::regclass::text = ANY($1) AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            tables,
        )
        for ix in indexes:
            await conn.execute(f"DROP INDEX {ix['name']}")
        await conn.execute("INSERT INTO campaigns (id, name, created_at) VALUES (1, 'bench', $1)", to_db(NOW))
        for rows in account_batches(accounts, rng):
            await conn.copy_records_to_table("accounts", records=rows, columns=ACCOUNT_COLUMNS)
            targets = [(1, r[0], "pending", 0, r[12]) for r in rows]
            await conn.copy_records_to_table(
                "targets",
                records=targets,
                columns=["campaign_id", "account_pk", "state", "attempts", "next_at"],
            )
        for rows in attempt_batches(accounts, history, rng):
            await conn.copy_records_to_table("attempts", records=rows, columns=ATTEMPT_COLUMNS)
        for table in ("accounts", "attempts", "campaigns"):  # identities past the ids given
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        for ix in indexes:
            await conn.execute(ix["def"])
        for k in keys:
            await conn.execute(f'ALTER TABLE {k["rel"]} ADD CONSTRAINT "{k["conname"]}" {k["def"]}')
        await conn.execute("ANALYZE")
        name = await conn.fetchval("SELECT current_database()")
        text = PG_BUILT.format(accounts=accounts, history=history).replace("'", "")
        await conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{text}'")
    finally:
        await conn.close()


async def pg_size(url: str) -> int:
    conn = await pg_connect(url)
    try:
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()


def pg_cluster_url(folder: Path, port: int) -> str:
    """A cluster of the bench's own (throwaway: fsync off), started if need be, and its database."""
    from dialer.store import pg_cluster

    server = pg_cluster.start(folder, port=port, fsync=False)
    try:
        return pg_cluster.create_database(server, "policy_scan")
    except Exception:  # already there (kept from an earlier run)
        return server.url("policy_scan")


def prepare_pg(url: str, accounts: int, history: int) -> None:
    wanted = PG_BUILT.format(accounts=accounts, history=history)
    built = asyncio.run(pg_built(url))
    if built == wanted:
        return
    if built is not None or asyncio.run(pg_last_or_none(url)):
        raise SystemExit(f"{url}: holds other data ({built!r}): give an empty database")
    start = time.perf_counter()
    asyncio.run(pg_build(url, accounts, history, random.Random(2)))
    size = asyncio.run(pg_size(url))
    print(
        f"built {accounts:,} accounts and {history:,} history rows in PostgreSQL in "
        f"{time.perf_counter() - start:.0f} s: {size / 1e9:.2f} GB"
    )


async def pg_last_or_none(url: str) -> int | None:
    conn = await pg_connect(url)
    try:
        if await conn.fetchval("SELECT to_regclass('accounts')") is None:
            return None
        return int(await conn.fetchval("SELECT count(*) FROM accounts"))
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["decisions", "scan"])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse (or keep) this database file")
    parser.add_argument("--url", default=None, help="scan PostgreSQL: this database (built if empty, kept)")
    parser.add_argument("--pg-cluster", type=Path, default=None, help="scan PostgreSQL: a cluster of its own")
    parser.add_argument("--pg-port", type=int, default=55441, help="the port of --pg-cluster")
    parser.add_argument("--processes", type=int, default=1, help="scan: split the accounts across N")
    args = parser.parse_args()
    if args.what == "decisions":
        bench_decisions(args.n)
        return
    url = pg_cluster_url(args.pg_cluster, args.pg_port) if args.pg_cluster else args.url
    if url:
        prepare_pg(url, args.accounts, args.history)
        scan(url, args.processes)
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
