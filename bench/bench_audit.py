"""Audit-trail figures: searching 100,000 calls, appending events, and `duecall audit verify`
over 100,000 events and 1,000 recordings.

Run: .venv/bin/python bench/bench_audit.py [--calls 100000] [--events 100000] [--recordings 1000]
     [--seconds 45] [--dir var/bench-audit]

The database is built with plain SQL on its own sqlite3 connection for the calls (fixture setup,
not what is measured) and with the real `Store.audit` for the chain, so every link is a real one.
Recordings are 8 kHz 16-bit mono WAVs of noise, `--seconds` long (a reminder call lasts about that).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sqlite3
import statistics
import struct
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.search import CallFilter, call_detail, export_rows, search
from audit.verify import verify
from dialer.store import SqliteStore, to_db
from dialer.store.call_events import AmiCallEvent, AttemptDecided, CallEnded, IvrKey, IvrPrompt, Originated
from dialer.store.chain import AuditEvent
from dialer.store.events import Record, RecordingStored

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DISPOSITIONS = ("answered", "no_answer", "no_answer", "busy", "machine", "failed", "answered")
OUTCOMES = ("promise_to_pay", "acknowledged", "dispute", "hardship_callback", "opt_out", "no_response")
FLAGS = ("consent", "cap-reached", "multi-zone", "zone-derived", "wrong-party")


def wav_bytes(seconds: float, rng: random.Random) -> bytes:
    data = rng.randbytes(int(seconds * 8000) * 2)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    return header + b"data" + struct.pack("<I", len(data)) + data


def _events(n: int) -> list[Record]:
    """About twelve events of a call, as the dialer writes them (typed records, real shapes)."""
    return [
        AttemptDecided("+12125550000", 1, f"D{n}", [{"rule": "window", "detail": "inside"}], [], f"/rec/{n}"),
        Originated(),
        AmiCallEvent("DueCallAnswer", {"Event": "UserEvent", "UserEvent": "DueCallAnswer", "Key": str(n)}),
        IvrPrompt("menu", "Press 1 to pay today"),
        IvrKey("menu", digit=str(n % 10), barge_in=False),
        CallEnded("answered", "ANSWER", "16", "HUMAN", "1", "", True, None, "done", to_db(NOW), []),
    ]


def _load_calls(db: Path, calls: int, rng: random.Random) -> None:
    """The calls, accounts and flags the searches run over: fixture rows, on a connection of their own."""
    stamp = to_db(NOW)
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO accounts (account_id, debt_id, name, phone_e164, region, time_zones, tz_derived, "
            "amount_minor, currency, due_date, language, created_at, updated_at) "
            "VALUES (?,?,?,?,'US','[\"America/New_York\"]',0,123450,'USD','2026-12-01','en-US',?,?)",
            [
                (f"A{i}", f"D{i}", f"Borrower {i}", f"+1212555{i:04d}"[:12], stamp, stamp)
                for i in range(calls)
            ],
        )
        conn.executemany(
            "INSERT INTO campaigns (id, name, created_at) VALUES (?,?,?)",
            [(c, f"campaign-{c}", stamp) for c in (1, 2, 3)],
        )
        rows, flags = [], []
        for i in range(calls):
            at = NOW - timedelta(seconds=rng.randrange(90 * 86400))
            disp = rng.choice(DISPOSITIONS)
            outcome = rng.choice(OUTCOMES) if disp == "answered" else None
            rows.append((i + 1, rng.choice((1, 2, 3)), i + 1, "+12125550000", to_db(at), disp, outcome))
            if rng.random() < 0.1:
                flags.append((i + 1, rng.choice(FLAGS)))
        conn.executemany(
            "INSERT INTO attempts (id, campaign_id, account_pk, phone_e164, attempt_no, state, decided_at, "
            "disposition, outcome) VALUES (?,?,?,?,1,'ended',?,?,?)",
            rows,
        )
        conn.executemany("INSERT OR IGNORE INTO attempt_flags (attempt_id, flag) VALUES (?,?)", flags)
    conn.close()


async def build(db: Path, recordings: Path, calls: int, events: int, files: int, seconds: float) -> None:
    rng = random.Random(7)
    store = await SqliteStore.open(db, "NORMAL")  # creates the schema
    try:
        started = time.perf_counter()
        _load_calls(db, calls, rng)
        print(f"built {calls:,} calls in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        recordings.mkdir(parents=True, exist_ok=True)
        stored = []
        for n in range(files):
            path = recordings / f"{n + 1}.wav"
            body = wav_bytes(seconds, rng)
            path.write_bytes(body)
            record = RecordingStored(str(path), "call", _sha(body), len(body), int(seconds * 1000), True)
            stored.append(AuditEvent(record, NOW, "dialer:bench", 1, n + 1, f"A{n}"))
        written = time.perf_counter() - started
        print(
            f"wrote {files:,} recordings of {seconds:.0f} s ({files * len(body) / 1e6:,.0f} MB) "
            f"in {written:.1f} s"
        )

        started = time.perf_counter()
        batch: list[AuditEvent] = []
        for n in range(events - files):
            attempt = n // 12 + 1  # about 12 events per call
            record = _events(attempt)[n % 6]
            batch.append(AuditEvent(record, NOW, "dialer:bench", 1, attempt, f"A{attempt}"))
            if len(batch) == 2000:
                await store.audit(batch)
                batch = []
            if n % ((events - files) // max(1, files)) == 0 and stored:
                batch.append(stored.pop())
        await store.audit(batch + stored)
        print(f"appended {events:,} events (in batches of 2,000) in {time.perf_counter() - started:.1f} s")
    finally:
        await store.close()


def _sha(body: bytes) -> str:
    import hashlib

    return hashlib.sha256(body).hexdigest()


async def bench_append(db: Path, calls: int = 2000, per_call: int = 14) -> None:
    """Events as the dialer appends them: one transaction per finished call."""
    store = await SqliteStore.open(db, "FULL")
    try:
        event = AuditEvent(IvrPrompt("intro", "Hello"), NOW, "dialer:bench", 1, 1, "A1")
        started = time.perf_counter()
        for _ in range(calls):
            await store.audit([event] * per_call)
        took = time.perf_counter() - started
    finally:
        await store.close()
    print(
        f"append: {calls:,} calls x {per_call} events, one transaction each (synchronous=FULL): "
        f"{calls / took:,.0f} calls/s, {1000 * took / calls:.2f} ms per call"
    )


async def bench_search(db: Path) -> None:
    store = await SqliteStore.open(db, "NORMAL")
    week = (NOW - timedelta(days=7)).date()
    cases = {
        "no filter, page 1": (CallFilter(), 1),
        "no filter, page 1000": (CallFilter(), 1000),
        "last 7 days": (CallFilter(date_from=week, date_to=NOW.date()), 1),
        "one account": (CallFilter(account_id="A4242"), 1),
        "campaign + outcome": (CallFilter(campaign="campaign-2", outcome="dispute"), 1),
        "flag consent": (CallFilter(flag="consent"), 1),
        "7 days + disposition + flag": (
            CallFilter(date_from=week, date_to=NOW.date(), disposition="answered", flag="cap-reached"),
            1,
        ),
        "one day, one campaign": (
            CallFilter(date_from=date(2026, 11, 1), date_to=date(2026, 11, 1), campaign="campaign-1"),
            1,
        ),
    }
    try:
        for name, (f, page) in cases.items():
            times = []
            for _ in range(7):
                started = time.perf_counter()
                found = await search(store, f, page)
                times.append(time.perf_counter() - started)
            print(
                f"search {name:30s} {found.total:7,} matches, "
                f"median {1000 * statistics.median(times):6.1f} ms"
            )
        started = time.perf_counter()
        rows = 0
        async for chunk in export_rows(store, CallFilter(date_from=week, date_to=NOW.date())):
            rows += len(chunk)
        print(f"CSV rows of the last 7 days: {rows:,} in {1000 * (time.perf_counter() - started):.0f} ms")
        started = time.perf_counter()
        await call_detail(store, 4242)
        print(f"one call's page data: {1000 * (time.perf_counter() - started):.1f} ms")
    finally:
        await store.close()


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def bench_verify(db: Path) -> None:
    for label in ("cold (page cache dropped)", "warm"):
        if label.startswith("cold") and not drop_caches():
            print("verify cold: cannot drop the page cache here; skipped")
            continue
        started = time.perf_counter()
        report = verify(db)
        took = time.perf_counter() - started
        assert report.ok, (report.broken, report.recording_problems[:3])
        print(
            f"verify {label}: {report.events:,} events in {report.chain_seconds:.2f} s, "
            f"{report.recordings_checked:,} recordings in {report.recordings_seconds:.2f} s; "
            f"total {took:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--recordings", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--dir", type=Path, default=Path("var/bench-audit"))
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    db = args.dir / "bench.db"
    asyncio.run(build(db, args.dir / "recordings", args.calls, args.events, args.recordings, args.seconds))
    print(f"machine: {os.cpu_count()} CPUs; database {db.stat().st_size / 1e6:,.0f} MB")
    asyncio.run(bench_search(db))
    bench_verify(db)
    asyncio.run(bench_append(args.dir / "append.db"))
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
