"""The lender's own columns in a borrowers file (`product`, `risk_band` ...): kept per account,
refused at the header when they cannot be names, bounded against hostile files (issue 13)."""

from __future__ import annotations

import csv
import sqlite3
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.accounts.importer import ImportReport, import_accounts
from dialer.accounts.parse import (
    AccountRecord,
    ImportFileError,
    ImportSettings,
    RejectedRow,
    read_accounts,
    read_header,
    write_rejects,
)
from dialer.store import SqliteStore, Store
from duecall.cli import main
from tests.support.config import write_config

CN = ImportSettings(default_region="CN", default_currency="CNY", default_language="zh-CN")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KNOWN = ["account_id", "name", "phone", "amount", "due_date"]


def row(i: int, *extra: str) -> list[str]:
    return [f"A{i}", f"Borrower {i}", f"1391234{i:04d}", "10.00", "2026-12-20", *extra]


def csv_file(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def parse(path: Path) -> list[AccountRecord | RejectedRow]:
    return list(read_accounts(path, CN, workers=1))


def header_error(path: Path) -> str:
    with pytest.raises(ImportFileError) as caught:
        read_accounts(path, CN, workers=1)
    return str(caught.value)


async def imported(store: Store, path: Path, tmp_path: Path) -> ImportReport:
    return await import_accounts(store, path, CN, NOW, tmp_path / "rejects.csv")


async def columns_of(store: Store, *account_ids: str) -> dict[str, dict[str, str]]:
    pks = {}
    for account_id in account_ids:
        account = await store.account(account_id)
        assert account is not None, account_id
        pks[account.pk] = account_id
    return {pks[pk]: columns for pk, columns in (await store.account_columns(list(pks))).items()}


# ----------------------------------------------------------------- kept, and replaced


async def test_kept_columns_round_trip_through_the_store(tmp_path: Path) -> None:
    header = [*KNOWN, " Product ", "RISK_BAND", "branch"]
    rows = [
        row(1, "card", " B ", "Cafe\u0301 上海"),  # decomposed é: stored in NFC
        row(2, "loan", "", ""),  # empty cells are no value
        row(3, "", "", ""),
    ]
    store = await SqliteStore.open(tmp_path / "t.db")
    try:
        report = await imported(store, csv_file(tmp_path / "b.csv", header, rows), tmp_path)
        found = await columns_of(store, "A1", "A2", "A3")
    finally:
        await store.close()
    assert report.columns == ("product", "risk_band", "branch")
    assert (report.inserted, report.rejects) == (3, ())
    assert found == {
        "A1": {"product": "card", "risk_band": "B", "branch": "Caf\u00e9 上海"},
        "A2": {"product": "loan"},
    }  # A3 has none: not a key
    with sqlite3.connect(tmp_path / "t.db") as raw:
        stored = dict(raw.execute("SELECT account_id, columns FROM accounts").fetchall())
    raw.close()
    assert stored == {
        "A1": '{"branch":"Café 上海","product":"card","risk_band":"B"}',
        "A2": '{"product":"loan"}',
        "A3": "{}",
    }


async def test_a_re_import_replaces_the_accounts_columns(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "t.db")
    try:
        first = csv_file(
            tmp_path / "1.csv", [*KNOWN, "product", "risk_band"], [row(1, "card", "B"), row(2, "loan", "A")]
        )
        await imported(store, first, tmp_path)
        again = csv_file(
            tmp_path / "2.csv", [*KNOWN, "product", "region_code"], [row(1, "loan", "N"), row(2, "", "")]
        )
        report = await imported(store, again, tmp_path)
        found = await columns_of(store, "A1", "A2")
    finally:
        await store.close()
    assert (report.updated, report.columns) == (2, ("product", "region_code"))
    assert found == {"A1": {"product": "loan", "region_code": "N"}}  # risk_band gone; A2 has none now


def test_a_fixed_rejects_file_brings_the_columns_back(tmp_path: Path) -> None:
    """A rejects file brings the columns back; its own row_number and reason are not kept."""
    rows = [row(1, "card"), ["A2", "Bad", "12345", "10.00", "2026-12-20", "loan"]]
    source = csv_file(tmp_path / "b.csv", [*KNOWN, "product"], rows)
    rejects = [r for r in parse(source) if isinstance(r, RejectedRow)]
    out = tmp_path / "rejects.csv"
    write_rejects(out, read_header(source), rejects)
    fixed = out.read_text(encoding="utf-8-sig").replace(",12345,", ",13912340002,")
    out.write_text(fixed, encoding="utf-8-sig")
    (record,) = parse(out)
    assert isinstance(record, AccountRecord)
    assert (record.account_id, record.columns) == ("A2", (("product", "loan"),))


# ------------------------------------------------------------------ header refusals


@pytest.mark.parametrize("name", ["bucket", "Locale", " ARM ", "dpd", "balance"])
def test_a_name_the_strategy_computes_is_refused_at_the_header(tmp_path: Path, name: str) -> None:
    path = csv_file(tmp_path / "b.csv", [*KNOWN, "product", name], [row(1, "card", "x")])
    message = header_error(path)
    assert str(path) in message and "line 1 (the header): column 7" in message
    assert repr(name.strip().lower()) in message and "computes" in message


def test_currency_stays_the_known_column_not_a_kept_one(tmp_path: Path) -> None:
    (record,) = parse(csv_file(tmp_path / "b.csv", [*KNOWN, "currency"], [row(1, "usd")]))
    assert isinstance(record, AccountRecord)
    assert (record.currency, record.columns) == ("USD", ())


@pytest.mark.parametrize("name", ["reason", "row_number"])
def test_one_rejects_file_column_alone_is_refused(tmp_path: Path, name: str) -> None:
    """Else a rejects file (which drops both) would silently lose the lender's column."""
    message = header_error(csv_file(tmp_path / "b.csv", [*KNOWN, name], [row(1, "x")]))
    assert f"column 6 ({name!r})" in message and "rejects file" in message


def test_32_extra_columns_are_kept_and_33_refused_naming_the_count(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(33)]
    ok = csv_file(tmp_path / "ok.csv", [*KNOWN, *names[:32]], [row(1, *names[:32])])
    (record,) = parse(ok)
    assert isinstance(record, AccountRecord) and len(record.columns) == 32
    message = header_error(csv_file(tmp_path / "b.csv", [*KNOWN, *names], [row(1, *names)]))
    assert "line 1 (the header): 33 columns besides the known ones; at most 32" in message


def test_a_10000_column_header_is_refused_quickly_in_little_memory(tmp_path: Path) -> None:
    names = [f"col{i}" for i in range(10_000)]
    path = csv_file(tmp_path / "wide.csv", [*KNOWN, *names], [row(i, *names) for i in range(50)])
    tracemalloc.start()
    started = time.perf_counter()
    try:
        message = header_error(path)
        elapsed, peak = time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "10000 columns besides the known ones; at most 32" in message
    assert elapsed < 1.0  # 0.025 s measured
    assert peak < 8 << 20  # 1.9 MiB measured: the header record, never the rows


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("Risk Band", "'Risk Band'"),
        ("=1+1", "'=1+1'"),  # a formula
        ("1st_product", "'1st_product'"),
        ("\u212aind", "'\u212aind'"),  # KELVIN SIGN lower-cases to an ASCII k: a look-alike
        ("x" * 65, "'" + "x" * 40 + "…'"),
    ],
)
def test_a_header_cell_that_is_no_name_refuses_the_file(tmp_path: Path, cell: str, shown: str) -> None:
    path = csv_file(tmp_path / "b.csv", [*KNOWN, "product", cell], [row(1, "card", "x")])
    message = header_error(path)
    assert message.startswith(f"{path}: line 1 (the header): column 7 ({shown}): not a column name")


def test_every_bad_header_cell_is_named_up_to_five(tmp_path: Path) -> None:
    cells = [f"bad {i}" for i in range(8)]
    message = header_error(csv_file(tmp_path / "b.csv", [*KNOWN, *cells], [row(1)]))
    assert "column 6 ('bad 0')" in message and "column 10 ('bad 4')" in message
    assert "and 3 more: not a column name" in message and "bad 5" not in message


def test_an_extra_column_named_twice_is_refused(tmp_path: Path) -> None:
    message = header_error(csv_file(tmp_path / "b.csv", [*KNOWN, "product", "PRODUCT"], [row(1, "a", "b")]))
    assert "column 'product' appears twice (columns 6 and 7)" in message


# --------------------------------------------------------------------- row rejects


async def test_a_too_long_value_rejects_only_its_row_kept_with_the_field_named(tmp_path: Path) -> None:
    long = "p" * 257
    rows = [row(1, "card", "x" * 256), row(2, "card", long), row(3, "loan", "e\u0301" * 200)]
    store = await SqliteStore.open(tmp_path / "t.db")
    try:
        report = await imported(
            store, csv_file(tmp_path / "b.csv", [*KNOWN, "product", "note"], rows), tmp_path
        )
        found = await columns_of(store, "A1", "A3")
        assert await store.account("A2") is None
    finally:
        await store.close()
    assert (report.inserted, [r.row_number for r in report.rejects]) == (2, [3])
    assert report.rejects[0].reason == "note: 257 characters, more than 256"
    assert found["A1"]["note"] == "x" * 256
    assert found["A3"]["note"] == "\u00e9" * 200  # 400 code points written, 200 in NFC
    assert report.rejects_file is not None
    with report.rejects_file.open(encoding="utf-8-sig", newline="") as handle:
        kept = list(csv.DictReader(handle))
    assert [(r["row_number"], r["reason"], r["account_id"], r["note"]) for r in kept] == [
        ("3", "note: 257 characters, more than 256", "A2", long)
    ]


def test_an_invisible_character_in_a_value_is_a_reject_naming_the_field(tmp_path: Path) -> None:
    rows = [row(1, "gold\u200b"), row(2, "two\nlines\tand a tab")]
    bad, good = parse(csv_file(tmp_path / "b.csv", [*KNOWN, "tier"], rows))
    assert isinstance(bad, RejectedRow)
    assert bad.reason == "tier: 'gold\\u200b' contains U+200B ZERO WIDTH SPACE, an invisible character"
    assert isinstance(good, AccountRecord) and good.columns == (("tier", "two\nlines\tand a tab"),)


def test_a_value_under_an_unnamed_column_is_a_reject_and_empty_ones_are_fine(tmp_path: Path) -> None:
    """Excel often writes empty header cells after the last column: harmless while they hold nothing."""
    rows = [row(1, "card", "", ""), row(2, "card", "", "a note")]
    good, bad = parse(csv_file(tmp_path / "b.csv", [*KNOWN, "product", "", " "], rows))
    assert isinstance(good, AccountRecord) and good.columns == (("product", "card"),)
    assert isinstance(bad, RejectedRow) and bad.row_number == 3
    assert bad.reason == "column 8: a value under no name (name the column in the header)"


# ------------------------------------------------------------------ reads and the CLI


async def test_account_columns_for_100000_accounts_in_bounded_time(tmp_path: Path) -> None:
    base = AccountRecord(
        "",
        "",
        "B",
        "+8613912345678",
        "CN",
        ("Asia/Shanghai",),
        True,
        1000,
        "CNY",
        date(2026, 12, 20),
        "zh-CN",
    )
    store = await SqliteStore.open(tmp_path / "t.db", synchronous="OFF")
    try:
        for start in range(0, 100_000, 20_000):
            batch = [
                replace(
                    base, account_id=f"A{i}", columns=(("product", f"p{i % 3}"), ("risk_band", "AB"[i % 2]))
                )
                for i in range(start, start + 20_000)
            ]
            await store.upsert_accounts(batch, NOW)
        with sqlite3.connect(tmp_path / "t.db") as raw:
            pks = [pk for (pk,) in raw.execute("SELECT id FROM accounts ORDER BY id")]
        raw.close()
        started = time.perf_counter()
        found = await store.account_columns([*pks, *pks[:10], 10**9])  # repeats and an unknown pk
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    assert len(found) == 100_000 and 10**9 not in found
    assert found[pks[7]] == {"product": "p1", "risk_band": "B"}
    assert elapsed < 5.0  # 0.2-0.5 s measured (2 vCPU)


def test_the_import_summary_lists_the_kept_columns(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "duecall.toml",
        {
            "store": {"path": str(tmp_path / "d.db")},
            "asterisk": {"state_dir": str(tmp_path / "var")},
            "accounts": {"default_region": "CN", "default_currency": "CNY", "default_language": "zh-CN"},
        },
    )
    path = csv_file(tmp_path / "b.csv", [*KNOWN, "product", "risk_band"], [row(1, "card", "B")])
    result = CliRunner().invoke(
        main, ["--config", str(cfg), "accounts", "import", str(path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "kept columns: product, risk_band" in result.output
    plain = csv_file(tmp_path / "p.csv", KNOWN, [row(2)])
    result = CliRunner().invoke(
        main, ["--config", str(cfg), "accounts", "import", str(plain)], env={"COLUMNS": "200"}
    )
    assert "kept columns: none" in result.output
