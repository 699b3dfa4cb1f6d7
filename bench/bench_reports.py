"""The reports' queries over a large campaign: seconds and peak memory of each.

    .venv/bin/python bench/bench_reports.py [--accounts 1000000] [--rebuild]

Builds (once; cached as var/bench/reports-<N>.db, keyed by size and BUILD) a store with N accounts
in one campaign with two arms, 10 calls per account on average (dispositions mixed as a dialer sees
them: no answer, machines, busy, person answered; outcomes on most answered calls, promises on about
3.5 % of the calls, the right party confirmed on most outcomes), 2 texts per account (mostly
delivered; replies on 3 %: answers, promises, STOP), payments on 30 % of the accounts, zones on four
continents (a half-hour one among them, and accounts with two zones). Rows are made by SQL alone
(recursive CTEs, big transactions, the indexes built after the rows), so 1,000,000 accounts take
minutes, not hours. Opening the store applies any migration newer than the cached file.

Then runs each report query of the store once (the funnel by every group, contacts by hour, and
the money queries of dialer/store/outcomes.py where the store has them) and prints its wall and
CPU seconds (the process's, SQLite's thread included: other work on the machine does not count),
the resident memory before it and the process's peak while it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.store import SqliteStore  # noqa: E402
from reports.build import build_report  # noqa: E402
from reports.plots import write_plots  # noqa: E402
from reports.report import Report  # noqa: E402

BUILD = 3  # bump when the data below changes: the cached file is built again
START = "2026-10-01"  # the campaign's first day (UTC); calls and texts over the next 60 days
DAY = 86_400
CAMPAIGN = "bench"
TODAY = date(2026, 12, 1)  # the report's day: the campaign's 61st
CALLS_PER_ACCOUNT = 10
TEXTS_PER_ACCOUNT = 2
# (share in 100, zones as stored, currency, UTC hour the local calling day starts at 08:00).
ZONES = (
    (55, '["America/New_York"]', "USD", 13),
    (10, '["America/Chicago"]', "USD", 14),
    (5, '["America/Denver"]', "USD", 15),
    (8, '["America/Los_Angeles"]', "USD", 16),
    (2, '["America/Los_Angeles","America/New_York"]', "USD", 16),
    (12, '["Asia/Shanghai"]', "CNY", 0),
    (3, '["Asia/Kolkata"]', "INR", 2),
    (5, '["Asia/Seoul"]', "KRW", 23),
)
# A call's disposition, by share in 1000 (a dialer's usual mix: most calls reach nobody).
DISPOSITIONS = (
    ("no_answer", 420),
    ("machine", 170),
    ("busy", 60),
    ("failed", 50),
    ("answered", 250),
    ("hung_up_early", 30),
    ("cut", 5),
    ("unknown", 5),
    ("not_placed", 10),
)
# The outcome of the 86 % of answered calls that reach one, by share: 3.5 % of all calls promise.
OUTCOMES = (
    ("promise_to_pay", 37),
    ("acknowledged", 110),
    ("no_response", 40),
    ("paid", 15),
    ("wrong_number", 12),
    ("dispute", 5),
    ("hardship_callback", 5),
    ("opt_out", 3),
)
MESSAGE_STATES = (
    ("delivered", 850),
    ("failed", 50),
    ("expired", 20),
    ("accepted", 20),
    ("submitted", 10),
    ("not_sent", 40),
    ("unknown", 10),
)
CALL_STEPS = (
    "segments[0].steps[0]",
    "segments[0].steps[1]",
    "segments[1].steps[0]",
    "segments[1].steps[1]",
    "segments[1].steps[2]",
    "segments[2].steps[0]",
    "rules.promise_broken",
)
TEXT_STEPS = ("segments[0].steps[2]", "segments[1].steps[3]", "rules.no_answer.switch")
IMPORTED = "2026-12-01T00:00:00.000000Z"  # the payments' import
BULK_TABLES = ("accounts", "targets", "attempts", "outcomes", "messages", "inbound_messages", "payments")


def _cases(expr: str, table: tuple[tuple[str, int], ...]) -> str:
    """A CASE mapping `expr` to the names of `table` by their shares."""
    parts, upper, total = [], 0, sum(share for _, share in table)
    for name, share in table:
        upper += share
        parts.append(f"WHEN ({expr}) % {total} < {upper} THEN '{name}'")
    return "CASE " + " ".join(parts) + " END"


def _zone_case(column: int) -> str:
    """The zone table's `column` for an account, by its pk (so calls know it without a join)."""
    parts, upper = [], 0
    for row in ZONES:
        upper += row[0]
        value = row[column] if isinstance(row[column], int) else f"'{row[column]}'"
        parts.append(f"WHEN {{pk}} % 100 < {upper} THEN {value}")
    return "CASE " + " ".join(parts) + " END"


def _pick(expr: str, names: tuple[str, ...]) -> str:
    return (
        "CASE "
        + " ".join(f"WHEN ({expr}) % {len(names)} = {i} THEN '{n}'" for i, n in enumerate(names))
        + " END"
    )


def _stamp(seconds: str) -> str:
    """SQL for a stored time: UTC, microseconds, 'Z' (dialer/store/times.py)."""
    return f"strftime('%Y-%m-%dT%H:%M:%S.000000Z', unixepoch('{START}') + ({seconds}), 'unixepoch')"


def _series(count: int) -> str:
    """Rows 1..count, each with two random 63-bit numbers fixed in the recursion's queue."""
    return (
        "WITH RECURSIVE n(i, r, s) AS (SELECT 1, abs(random()), abs(random()) UNION ALL "
        f"SELECT i + 1, abs(random()), abs(random()) FROM n WHERE i < {count}) "
    )


def _entry_day(pk: str) -> str:
    return f"CASE WHEN {pk} % 10 = 9 THEN 20 ELSE 0 END"  # a tenth of the accounts join on day 20


def _accounts(n: int) -> str:
    zones, currency = _zone_case(1).format(pk="i"), _zone_case(2).format(pk="i")
    return (
        _series(n) + "INSERT INTO accounts (id, account_id, debt_id, name, phone_e164, region, time_zones, "
        "tz_derived, amount_minor, currency, due_date, language, created_at, updated_at, columns) "
        "SELECT i, printf('A%08d', i), printf('D%08d', i), 'Bench', printf('+1202%08d', i), 'US', "
        f"{zones}, 0, 5000 + r % 500000, {currency}, "
        f"date('{START}', printf('%+d days', 10 - (i * 7919) % 160)), "
        f"'en-US', {_stamp('-86400')}, {_stamp('-86400')}, "
        "json_object('risk_band', char(65 + (i / 7) % 3)) FROM n"
    )


def _campaign_rows(n: int) -> list[str]:
    added = _stamp(f"{_entry_day('id')} * {DAY}")
    arm = "CASE WHEN (account_pk * 2654435761) % 1000 < 500 THEN 'champion' ELSE 'challenger' END"
    return [
        "INSERT INTO campaigns (id, name, created_at, strategy_file, strategy_sha256, seed) "
        f"VALUES (1, 'bench', {_stamp('0')}, 'bench.yaml', 'x', 7)",
        "INSERT INTO targets (campaign_id, account_pk, state, attempts, next_at, last_disposition, note, "
        f"channel, added_at) SELECT 1, id, 'pending', 0, {_stamp(str(60 * DAY))}, NULL, '', NULL, {added} "
        "FROM accounts",
        "INSERT INTO arm_assignments (campaign_id, account_pk, arm, stratum, seed, assigned_at) "
        f"SELECT campaign_id, account_pk, {arm}, '[]', 7, added_at FROM targets",
    ]


def _attempts(n: int, count: int = 0, on_day: int | None = None) -> str:
    pk = f"1 + r % {n}"
    disposition = _cases("r / 10000000", DISPOSITIONS)
    outcome = _cases("s / 1000", OUTCOMES)
    start_hour = _zone_case(3).format(pk=f"({pk})")
    day = f"({_entry_day(f'({pk})')} + (s / 1000000) % (60 - {_entry_day(f'({pk})')}))"
    day = day if on_day is None else str(on_day)
    # Calls in the local day 08:00-21:00; a few at odd hours (a zone's numbers can be elsewhere).
    at = f"{day} * {DAY} + ({start_hour}) * 3600 + (s / 100000000) % (13 * 3600)"
    return (
        "INSERT INTO attempts (campaign_id, account_pk, phone_e164, attempt_no, state, decided_at, "
        "answered_at, ended_at, disposition, outcome, script, step) "
        f"SELECT 1, {pk}, printf('+1202%08d', {pk}), 1, 'ended', {_stamp('at')}, "
        f"CASE WHEN d IN ('answered', 'hung_up_early', 'cut') THEN {_stamp('at + 20')} END, "
        f"{_stamp('at + 60')}, d, CASE WHEN d = 'answered' AND s % 1000 < 860 THEN {outcome} END, "
        f"'reminder-en-US', {_pick('s / 7', CALL_STEPS)} "
        f"FROM (SELECT r, s, {disposition} AS d, {at} AS at FROM ({_series(count or n * CALLS_PER_ACCOUNT)} "
        "SELECT r, s FROM n))"
    )


OUTCOME_ROWS = (
    "INSERT INTO outcomes (attempt_id, outcome, promised_date, promised_amount_minor, detail, at) "
    "SELECT id, outcome, CASE outcome WHEN 'promise_to_pay' THEN date(decided_at, '+3 days') END, NULL, "
    "CASE outcome WHEN 'wrong_number' THEN '{\"right_party\": false}' "
    "WHEN 'no_response' THEN '{\"right_party\": null}' ELSE '{\"right_party\": true}' END, ended_at "
    "FROM attempts WHERE outcome IS NOT NULL"
)


def _messages(n: int) -> str:
    pk = f"1 + r % {n}"
    day = f"({_entry_day(f'({pk})')} + (s / 1000000) % (60 - {_entry_day(f'({pk})')}))"
    start_hour = _zone_case(3).format(pk=f"({pk})")
    at = f"{day} * {DAY} + ({start_hour}) * 3600 + 3600 + (s / 100000000) % (10 * 3600)"
    state = _cases("r / 10000000", MESSAGE_STATES)
    return (
        "INSERT INTO messages (campaign_id, account_pk, phone_e164, batch, purpose, template, text, coding, "
        "segments, gateway, state, policy_reasons, decided_at, updated_at, dialer_id, step) "
        f"SELECT 1, {pk}, printf('+1202%08d', {pk}), printf('bench/due/%d/%d', i, {pk}), "
        "CASE WHEN s % 100 < 97 THEN 'reminder' ELSE 'confirmation' END, 'reminder-en-US.yaml#due', "
        f"'Your payment is due', 'gsm-7', 1, 'kannel', {state}, '[]', {_stamp('at')}, {_stamp('at + 30')}, "
        f"'bench', {_pick('s / 7', TEXT_STEPS)} "
        f"FROM (SELECT i, r, s, {at} AS at FROM ({_series(n * TEXTS_PER_ACCOUNT)} SELECT i, r, s FROM n))"
    )


INBOUND_ROWS = (
    "INSERT INTO inbound_messages (received_at, phone_e164, to_number, text, kind, outcome, account_pk, "
    "message_id) SELECT updated_at, phone_e164, 'DueCall', "
    "CASE WHEN k < 3 THEN 'STOP' ELSE '1' END, "
    "CASE WHEN k < 3 THEN 'opt_out' WHEN k < 9 THEN 'answer' ELSE 'for_person' END, "
    "CASE WHEN k BETWEEN 3 AND 5 THEN 'promise_to_pay' WHEN k BETWEEN 6 AND 8 THEN 'paid' END, "
    # The kind by other digits than the 3 % drawn: drawn by id % 100, the kind by id % 10 was one
    # of three (no promise ever).
    "account_pk, id FROM (SELECT *, (id / 100) % 10 AS k FROM messages) "
    "WHERE state = 'delivered' AND (id * 7919) % 100 < 3"
)


def _payments(n: int) -> list[str]:
    paid_at = _stamp(f"((account_pk * 31) % 55) * {DAY} + 43200 + k * 5 * {DAY}")
    full = "CASE WHEN (a.id / 10) % 3 = 0 THEN a.amount_minor ELSE 1 + a.amount_minor / 3 END"
    return [
        f"INSERT INTO payment_imports (id, file, started_at) VALUES (1, 'bench.csv', '{IMPORTED}')",
        "INSERT INTO payments (payment_id, account_pk, amount_minor, currency, paid_at, import_id, "
        "row_number, imported_at) SELECT printf('P%d-%d', account_pk, k), account_pk, amount, currency, "
        f"{paid_at}, 1, account_pk * 2 + k, '{IMPORTED}' FROM ("
        f"SELECT a.id AS account_pk, a.currency, {full} AS amount, k.k FROM accounts a "
        "JOIN (SELECT 0 AS k UNION ALL SELECT 1) k ON k.k = 0 OR (a.id / 10) % 3 = 1 "
        "WHERE (a.id * 48271) % 10 < 3)",
    ]


def build(path: Path, n: int) -> float:
    """Make the bench store at `path` from nothing; returns the seconds it took."""
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".building")
    for leftover in scratch.parent.glob(scratch.name + "*"):
        leftover.unlink()
    asyncio.run(_migrate(scratch))
    db = sqlite3.connect(scratch, isolation_level=None)
    db.executescript("PRAGMA synchronous=OFF; PRAGMA foreign_keys=OFF; PRAGMA cache_size=-1000000;")
    indexes, triggers = _drop_indexes(db), _drop_triggers(db)
    steps = [_accounts(n), *_campaign_rows(n), _attempts(n), OUTCOME_ROWS, _messages(n), INBOUND_ROWS]
    for sql in [*steps, *_payments(n)]:
        _timed(db, sql)
    for sql in [*indexes, *triggers]:
        _timed(db, sql)
    _timed(db, "ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    scratch.rename(path)
    return time.perf_counter() - t0


async def _migrate(path: Path) -> None:
    store = await SqliteStore.open(path, synchronous="OFF")
    await store.close()


def _drop_indexes(db: sqlite3.Connection) -> list[str]:
    """Drop the bulk tables' indexes (built again after the rows: much faster); their SQL."""
    marks = ",".join("?" * len(BULK_TABLES))
    found = (
        f"SELECT name, sql FROM sqlite_master WHERE type='index' AND sql NOTNULL AND tbl_name IN ({marks})"
    )
    rows = db.execute(found, BULK_TABLES).fetchall()
    for name, _ in rows:
        db.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in rows]


def _drop_triggers(db: sqlite3.Connection) -> list[str]:
    """Drop the rollups' triggers while the rows are made (made again after; the first report
    computes the rollups whole); their SQL."""
    rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'").fetchall()
    for name, _ in rows:
        db.execute(f'DROP TRIGGER "{name}"')
    return [sql for _, sql in rows]


def _timed(db: sqlite3.Connection, sql: str) -> None:
    t0 = time.perf_counter()
    db.execute("BEGIN")
    db.execute(sql)
    db.execute("COMMIT")
    if ARGS.verbose:
        print(f"  {time.perf_counter() - t0:7.1f} s  {sql[:90]}", flush=True)


def _peak_mib() -> float:
    """The peak resident memory since the last reset (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from now


def queries(store: Any, today: date) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    """Each report query of the store, with arguments a report would give."""
    found: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        (f"funnel by {by or 'all'}", functools.partial(store.funnel, 1, by))
        for by in ("", "arm", "step", "segment", "bucket", "period")
    ]
    found.append(("contacts_by_hour", lambda: store.contacts_by_hour(1)))
    start = date.fromisoformat(START)
    money: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("promise_verdicts", lambda: store.promise_verdicts(1, today)),
        ("cures", lambda: store.cures(1, start, today)),
        ("entries", lambda: store.entries(1, start, today)),
        ("roll_matrix", lambda: store.roll_matrix(1, 3)),
        ("curves", lambda: store.curves(1, 120)),
        ("recovered_by_arm", lambda: store.recovered_by_arm(1, None, "USD")),
    ]
    return found + money


NEW_CALLS = 10_000  # and as many payments, written after the first report: the warm one redoes their accounts


async def run(path: Path) -> None:
    t0 = time.perf_counter()
    store = await SqliteStore.open(path)
    print(f"opened (migrations newer than the file applied) in {time.perf_counter() - t0:.1f} s")
    try:
        print(f"{'query':<34} {'seconds':>8} {'CPU s':>6} {'RSS before':>10} {'peak MiB':>9}  rows")
        await _measure("first refresh (rollups built)", lambda: store.refresh_report_rollups(1))
        await _measure("first promise judging", lambda: store.refresh_promise_verdicts(1, TODAY))
        for name, query in queries(store, TODAY):
            await _measure(name, query)
        took = await asyncio.to_thread(_new_calls, path, ARGS.accounts)
        print(f"({NEW_CALLS:,} calls and payments on random accounts, on the last day, in {took:.1f} s)")
        await _measure(f"refresh after {NEW_CALLS:,} calls", lambda: store.refresh_report_rollups(1))
        await _measure("judging their promises again", lambda: store.refresh_promise_verdicts(1, TODAY))
        for name, query in queries(store, TODAY)[:8]:
            await _measure(f"{name} (warm)", query)
        await _whole_reports(store)
    finally:
        await store.close()


async def _whole_reports(store: Any) -> None:
    """What `duecall report` does: every query, the statistics, then the plots (in a thread)."""
    campaign = await store.campaign(CAMPAIGN)
    for by in ("", "arm"):
        report: list[Report] = []

        async def build(by: str = by, into: list[Report] = report) -> Report:
            into.append(await build_report(store, campaign, by=by, since=None, today=TODAY))
            return into[-1]

        await _measure(f"whole report{' by ' + by if by else ''}", build)
    with tempfile.TemporaryDirectory() as plots:
        await _measure("its 5 plots (PNG)", lambda: asyncio.to_thread(write_plots, report[0], Path(plots)))


async def _measure(name: str, query: Callable[[], Awaitable[object]]) -> None:
    _reset_peak()
    before, c1, t1 = _peak_mib(), time.process_time(), time.perf_counter()
    result = await query()
    took, cpu = time.perf_counter() - t1, time.process_time() - c1
    size = len(result) if hasattr(result, "__len__") else 1
    print(f"{name:<34} {took:8.2f} {cpu:6.1f} {before:10.0f} {_peak_mib():9.0f}  {size}", flush=True)


def _new_calls(path: Path, n: int) -> float:
    """NEW_CALLS more calls (and their outcomes) on random accounts, as the dialer would add them,
    and as many payments on random accounts, as a day's payments file would."""
    t0 = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    first = db.execute("SELECT coalesce(max(id), 0) FROM attempts").fetchone()[0]
    db.execute(_attempts(n, NEW_CALLS, on_day=59))  # today's calls: the campaign's last day
    db.execute(OUTCOME_ROWS + f" AND id > {first}")
    tag = db.execute("SELECT max(id) FROM payments").fetchone()[0]
    db.execute(
        _series(NEW_CALLS) + "INSERT INTO payments (payment_id, account_pk, amount_minor, currency, paid_at, "
        f"import_id, row_number, imported_at) SELECT printf('N{tag}-%d', i), a.id, 2500, a.currency, "
        f"{_stamp(str(59 * DAY + 43200))}, 1, i, '{IMPORTED}' FROM n JOIN accounts a ON a.id = 1 + n.r % {n}"
    )
    db.execute("COMMIT")
    db.close()
    return time.perf_counter() - t0


ARGS = argparse.Namespace(verbose=False, accounts=1_000_000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true", help="build the store again even if cached")
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "bench", help="where the store is cached")
    parser.add_argument("--verbose", action="store_true", help="time each build statement")
    args = parser.parse_args()
    ARGS.verbose, ARGS.accounts = args.verbose, args.accounts
    path = args.dir / f"reports-{args.accounts}-b{BUILD}.db"
    if args.rebuild or not path.exists():
        took = build(path, args.accounts)
        print(f"built {path} ({args.accounts:,} accounts) in {took:.1f} s", flush=True)
    else:
        print(f"cached: {path} (--rebuild to build it again)")
    asyncio.run(run(path))


if __name__ == "__main__":
    main()
