"""Tests for dialer.accounts: parsing a borrowers CSV into records."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dialer.accounts as accounts
from dialer.accounts import (
    AccountRecord,
    ImportFileError,
    ImportSettings,
    RejectedRow,
    read_accounts,
    read_header,
    write_rejects,
)

DATA = Path(__file__).parent / "data"
CN = ImportSettings(default_region="CN", default_currency="CNY", default_language="zh-CN")
US = ImportSettings(default_region="US", default_currency="USD", default_language="en-US")
HEADER = "account_id,name,phone,amount,currency,due_date\n"


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


def test_header_names_ignore_case_and_spaces_and_unknown_columns() -> None:
    assert read_header(DATA / "accounts_good.csv")[0] == " Account_ID "
    assert "CN001" in records_by_id(DATA / "accounts_good.csv")


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
            accounts._parse_phone(raw, "CN")
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
