"""Parse a lender's borrowers CSV into account records (no database here).

File format
-----------
UTF-8 text, with or without a byte-order mark, comma separated, fields
quoted with ``"`` where needed (RFC 4180, as Excel's "CSV UTF-8" writes it).
The first line is the header. Header names are case-insensitive and
surrounding spaces are ignored; unknown columns are ignored.

=============  ========  =====================================================
column         required  content
=============  ========  =====================================================
``account_id`` yes       the lender's account id; the key for re-imports.
                         Must be unique within one file.
``debt_id``    no        the debt's id; defaults to ``account_id``.
``name``       yes       the borrower's name (any script).
``phone``      yes       national (read in the configured default region) or
                         international with ``+``; must be a valid number.
``time_zone``  no        IANA zone(s), several separated by ``|`` or ``;``.
                         When empty, derived from the phone number.
``amount``     yes       ``1234.50`` or ``1,234.50``; greater than zero, with no
                         more decimals than the currency has (trailing zeros
                         are fine: ``1000.00`` JPY is 1000 yen). Never rounded.
``currency``   no*       ISO 4217 code; (*) required unless a default is set.
``due_date``   yes       ``YYYY-MM-DD`` or ``YYYY/MM/DD`` (month and day may
                         have one digit).
``language``   no        BCP 47 tag such as ``zh-CN``; ``zh_CN`` is accepted;
                         case is normalised. Defaults to the configured one.
=============  ========  =====================================================

Results
-------
:func:`read_accounts` raises :class:`ImportFileError` before yielding anything
when the file as a whole cannot be used (unreadable, empty, not UTF-8, not a
CSV, missing or repeated columns, a quote never closed). Otherwise every data
row yields exactly one :class:`AccountRecord` or :class:`RejectedRow`, in file
order; no value in a row can make it raise. Blank rows (nothing but separators
and spaces) are skipped. Memory is bounded: the file is read one record at a
time (:mod:`dialer.accounts.csvrecords`), a field over 128 KiB or a record over 1 MiB
is a reject.

Row numbers are physical line numbers in the file, the header being line 1;
a record whose quoted field spans several lines is numbered by the line it
starts on (what a text editor shows, and what ``csv.reader.line_num`` counts).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import multiprocessing
import os
import re
import unicodedata
import zoneinfo
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ParamSpec, TypeVar

import iso4217
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult
from phonenumbers import timezone as phone_timezone

from dialer.accounts.csvrecords import Record, read_records
from dialer.core import csvsafe
from dialer.core.errors import ImportFileError
from dialer.core.models import AccountRecord, RejectedRow

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "AccountRecord",
    "ImportFileError",
    "ImportSettings",
    "RejectedRow",
    "read_accounts",
    "read_header",
    "write_rejects",
]

REQUIRED_COLUMNS = ("account_id", "name", "phone", "amount", "due_date")
OPTIONAL_COLUMNS = ("debt_id", "time_zone", "currency", "language")
REJECT_COLUMNS = ("row_number", "reason")

_MAX_AMOUNT_MINOR = 2**63 - 1  # fits a signed 64-bit database column
_MAX_FIELD_BYTES = 128 << 10  # longer is a reject (csv's old limit, which used to stop the whole file)
_MAX_SHOWN = 40  # longest value quoted back in a reason
_MAX_KEPT = 1000  # characters of an over-long field kept in the rejects
# Characters that show nothing (or reorder what is shown): in an id they make look-alikes.
_HIDDEN_IN_IDS = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_HIDDEN_IN_NAMES = frozenset({"Cc", "Cf"})
_JOINERS = "\u200c\u200d"  # ZWNJ and ZWJ: part of the spelling in Persian and Indic scripts
_QUOTE_HINT = 'quote values that contain commas ("1,234.50")'
_POOL_MIN_PHONES = 20_000  # below this, starting worker processes does not pay

_AMOUNT_RE = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]+))?")
_DATE_RE = re.compile(r"([0-9]{4})([-/])([0-9]{1,2})\2([0-9]{1,2})")
_EXCEL_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?[eE]\+[0-9]+")
_LANGUAGE_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
_ZONE_SPLIT_RE = re.compile(r"[|;]")

_P = ParamSpec("_P")
_Phone = tuple[str, str, tuple[str, ...]]  # E.164, region, derived time zones
_T = TypeVar("_T")


@dataclass(frozen=True)
class ImportSettings:
    """Per-lender defaults; validated and normalised on construction."""

    default_region: str
    default_currency: str | None
    default_language: str

    def __post_init__(self) -> None:
        region = self.default_region.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"default_region: {self.default_region!r} is not a region")
        object.__setattr__(self, "default_region", region)
        if self.default_currency is not None:
            code, _ = _parse_currency(self.default_currency, None)
            object.__setattr__(self, "default_currency", code)
        try:
            language = _parse_language(self.default_language, None)
        except _FieldError as exc:
            raise ValueError(f"default_{exc}") from None
        object.__setattr__(self, "default_language", language)


class _FieldError(ValueError):
    """A problem with one field; the message starts with the field's name."""


# ---------------------------------------------------------------- file level


def read_header(path: Path) -> list[str]:
    """The file's header cells as written (for :func:`write_rejects`)."""
    with _open(path) as handle:
        first = next(read_records(path, handle), None)
    return first.fields if first else []


def read_accounts(
    path: Path, settings: ImportSettings, *, workers: int | None = None
) -> Generator[AccountRecord | RejectedRow, None, None]:
    """Check the file, then return an iterator of one result per data row.

    Raises :class:`ImportFileError` at once (not on first iteration) for
    problems with the whole file: the file is read through once for them, and
    again, one record at a time, by the iterator.

    Checking a phone number is the slow part (~90 us), so in a file with at
    least 20,000 distinct numbers they are checked ahead, in parallel, by
    ``workers`` processes (default: one per usable CPU; 1: none) while this
    process handles the other fields.
    """
    handle = _open(path)
    try:
        header, phones = _scan(path, handle)
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    workers = _usable_cpus() if workers is None else workers
    checker = _phone_checker(settings.default_region, phones, workers)
    return _results(path, handle, header, settings, checker)


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _open(path: Path) -> io.BufferedReader:
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise ImportFileError(path, f"cannot read the file: {exc.strerror or exc}") from None


def _has_content(fields: list[str]) -> bool:
    return any(field.strip() for field in fields)


def _scan(path: Path, handle: io.BufferedReader) -> tuple[_Header, list[str]]:
    """The header and every distinct phone value, in file order. Reads the whole file, so that
    whole-file problems (not UTF-8, a quote never closed) are found before any row is given."""
    records = read_records(path, handle)
    first = next(records, None)
    if first is None or (not _has_content(first.fields) and not any(_has_content(r.fields) for r in records)):
        raise ImportFileError(path, "the file is empty")
    header = _parse_header(path, first)
    position = header.positions["phone"]
    phones: dict[str, None] = {}
    for record in records:
        fields = header.values(record)
        if not record.problem and position < len(fields):
            phones[fields[position].strip()] = None
    return header, list(phones)


@dataclass(frozen=True)
class _Header:
    positions: dict[str, int]  # known column name -> field position
    cells: list[str]  # as written
    from_rejects: bool  # a rejects file: its cells were made safe for spreadsheets (csvsafe)

    @property
    def width(self) -> int:
        return len(self.cells)

    def values(self, record: Record) -> list[str]:
        """The record's values as the lender wrote them."""
        return [csvsafe.uncell(f) for f in record.fields] if self.from_rejects else record.fields

    def column(self, position: int) -> str:
        """A field's name for a reason: the known column's, else its place and header cell."""
        for name, at in self.positions.items():
            if at == position:
                return name
        cell = self.cells[position].strip() if position < self.width else ""
        return f"column {position + 1}" + (f" ({_shown(cell)})" if cell else "")


def _parse_header(path: Path, record: Record) -> _Header:
    if record.problem:
        raise ImportFileError(path, f"line 1 (the header): {record.problem}")
    header = record.fields
    if any("\x00" in cell for cell in header):
        raise ImportFileError(path, "the file contains NUL bytes: UTF-16 without BOM, or not a text file")
    index: dict[str, int] = {}
    for position, cell in enumerate(header):
        name = cell.strip().lower()
        if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            continue
        if name in index:
            raise ImportFileError(
                path, f"column {name!r} appears twice (columns {index[name] + 1} and {position + 1})"
            )
        index[name] = position
    missing = [name for name in REQUIRED_COLUMNS if name not in index]
    if missing:
        found = ", ".join(cell.strip() for cell in header if cell.strip()) or "none"
        raise ImportFileError(path, f"missing required column(s): {', '.join(missing)} (found: {found})")
    names = {cell.strip().lower() for cell in header}
    return _Header(index, header, all(name in names for name in REJECT_COLUMNS))


# ----------------------------------------------------------------- row level


@dataclass
class _Parsers:
    """Per-import caches of the cheap, often-repeated field parsers."""

    phone: Callable[[str], _Phone]
    currency: Callable[[str, str | None], tuple[str, int]]
    zones: Callable[[str], tuple[str, ...]]
    date: Callable[[str], date]
    language: Callable[[str, str | None], str]

    @classmethod
    def new(cls, phone: Callable[[str], _Phone]) -> _Parsers:
        cache = functools.lru_cache(maxsize=4096)
        return cls(
            phone, cache(_parse_currency), cache(_parse_zones), cache(_parse_date), cache(_parse_language)
        )


@contextlib.contextmanager
def _phone_checker(default_region: str, phones: list[str], workers: int) -> Iterator[Callable[[str], _Phone]]:
    """A phone parser for one import. For a large file, ``phones`` (in the
    order the rows need them) are checked ahead by worker processes; if the
    workers cannot run, the rest are checked in this process instead."""
    parse = functools.lru_cache(maxsize=65536)(functools.partial(_parse_phone, default_region=default_region))
    if workers <= 1 or len(phones) < _POOL_MIN_PHONES:
        yield parse
        return
    check = functools.partial(_phone_or_reason, default_region=default_region)
    chunksize = max(1, min(2000, len(phones) // (workers * 8)))
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    ahead: Iterator[tuple[str, _Phone | str]] = zip(
        phones, pool.map(check, phones, chunksize=chunksize), strict=True
    )
    checked: dict[str, _Phone | str] = {}

    def lookup(raw: str) -> _Phone:
        nonlocal ahead
        if not raw:  # a row too short to have a phone field
            return parse(raw)
        while raw not in checked:
            try:
                phone, result = next(ahead)
            except (StopIteration, BrokenProcessPool):  # not in the scan, or no workers
                ahead = iter(())
                return parse(raw)
            checked[phone] = result
        result = checked[raw]
        if isinstance(result, str):
            raise _FieldError(result)
        return result

    try:
        yield lookup
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _phone_or_reason(raw: str, default_region: str) -> _Phone | str:
    try:
        return _parse_phone(raw, default_region)
    except _FieldError as exc:
        return str(exc)


def _results(
    path: Path,
    handle: io.BufferedReader,
    header: _Header,
    settings: ImportSettings,
    phone_checker: contextlib.AbstractContextManager[Callable[[str], _Phone]],
) -> Generator[AccountRecord | RejectedRow, None, None]:
    first_seen: dict[str, int] = {}
    with handle, phone_checker as phone:
        parsers = _Parsers.new(phone)
        records = read_records(path, handle)
        next(records, None)  # the header
        for record in records:
            fields = header.values(record)
            if not record.problem and not _has_content(fields):
                continue
            try:
                if record.problem or max(map(len, fields), default=0) > _MAX_FIELD_BYTES // 4:
                    _check_size(record, fields, header)
                yield _parse_row(fields, header, settings, parsers, first_seen, record.line)
            except _FieldError as exc:
                yield _reject(record, str(exc), fields)


def _oversized(field: str) -> bool:
    # A character takes at most 4 bytes: most fields need no encoding to be measured.
    return len(field) > _MAX_FIELD_BYTES // 4 and len(field.encode()) > _MAX_FIELD_BYTES


def _check_size(record: Record, fields: list[str], header: _Header) -> None:
    """A record cut short or a field over the limit is a reject, naming the field."""
    problems = [f"row: {record.problem}"] if record.problem else []
    problems += [
        f"{header.column(i)}: field longer than {_MAX_FIELD_BYTES} bytes"
        for i, field in enumerate(fields)
        if _oversized(field)
    ]
    if problems:
        raise _FieldError("; ".join(problems))


def _reject(record: Record, reason: str, fields: list[str]) -> RejectedRow:
    if record.end > record.line:
        reason += f" (this record spans lines {record.line}-{record.end}: is a quote left open?)"
    kept = (field[:_MAX_KEPT] + "…" if _oversized(field) else field for field in fields)
    return RejectedRow(record.line, reason, _to_csv(kept))


def _to_csv(fields: Iterable[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(fields)  # its line end makes it quote fields with \r or \n
    return out.getvalue().removesuffix("\r\n")


def _parse_row(
    fields: list[str],
    header: _Header,
    settings: ImportSettings,
    parsers: _Parsers,
    first_seen: dict[str, int],
    row_number: int,
) -> AccountRecord:
    def get(column: str) -> str:
        position = header.positions.get(column)
        return fields[position].strip() if position is not None and position < len(fields) else ""

    errors: list[str] = []
    account_id = _attempt(errors, "account_id", _parse_account_id, get("account_id"), first_seen, row_number)
    debt_id = _attempt(errors, "debt_id", _parse_debt_id, get("debt_id"))
    name = _attempt(errors, "name", _parse_name, get("name"))
    phone = _attempt(errors, "phone", parsers.phone, get("phone"))
    stated_zones = _attempt(errors, "time_zone", parsers.zones, get("time_zone"))
    currency = _attempt(errors, "currency", parsers.currency, get("currency"), settings.default_currency)
    amount = _attempt(errors, "amount", _parse_amount, get("amount"), currency)
    due_date = _attempt(errors, "due_date", parsers.date, get("due_date"))
    language = _attempt(errors, "language", parsers.language, get("language"), settings.default_language)
    longer = len(fields) > header.width and any(field.strip() for field in fields[header.width :])
    if longer or (errors and len(fields) != header.width):  # the likely cause goes first
        errors.insert(0, f"row: {len(fields)} fields but the header has {header.width}; {_QUOTE_HINT}")
    if (
        errors
        or account_id is None
        or name is None
        or phone is None
        or stated_zones is None
        or currency is None
        or amount is None
        or due_date is None
        or language is None
    ):
        raise _FieldError("; ".join(errors))
    e164, region, derived_zones = phone
    return AccountRecord(
        account_id=account_id,
        debt_id=debt_id or account_id,
        name=name,
        phone_e164=e164,
        region=region,
        time_zones=stated_zones or derived_zones,
        tz_derived=not stated_zones,
        amount_minor=amount,
        currency=currency[0],
        due_date=due_date,
        language=language,
    )


def _attempt(
    errors: list[str], column: str, parse: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
) -> _T | None:
    """Run one field parser; on failure note the reason and return None.

    A library failing on a value it should have refused (zoneinfo raised IsADirectoryError for the
    zone "US") is a reject of that field too, never the end of the import."""
    try:
        return parse(*args, **kwargs)
    except _FieldError as exc:
        errors.append(str(exc))
    except (ValueError, LookupError, ArithmeticError, OSError) as exc:
        errors.append(f"{column}: cannot be read ({type(exc).__name__})")
    return None


def _shown(value: str) -> str:
    return repr(value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "…")


# ----------------------------------------------------------- field parsers


def _required(column: str, value: str) -> str:
    if not value:
        raise _FieldError(f"{column}: missing")
    return value


def _parse_name(value: str) -> str:
    """The name with runs of white space (line breaks too) made one space.

    Invisible characters that can disguise a name on the auditors' page (bidi controls, zero-width
    spaces, control characters) are a reject, not silently dropped; ZWNJ and ZWJ inside a word are
    kept, being part of the spelling in Persian and Indic scripts."""
    name = " ".join(_required("name", value).split())
    hidden = _hidden_character(name, _HIDDEN_IN_NAMES, joiners=True)
    if hidden:
        raise _FieldError(f"name: {_shown(name)} contains {hidden}, an invisible character")
    return name


def _parse_id(column: str, value: str) -> str:
    """An id is a key: no invisible characters, and only its NFKC spelling, so that two ids that
    look alike (full-width `Ａ１` and `A1`, or with a zero-width space) cannot make two accounts.
    Not normalised for the lender: the id must stay the one their own system knows."""
    hidden = _hidden_character(value, _HIDDEN_IN_IDS)
    if hidden:
        raise _FieldError(f"{column}: {_shown(value)} contains {hidden}, an invisible character")
    if not unicodedata.is_normalized("NFKC", value):
        plain = unicodedata.normalize("NFKC", value)
        raise _FieldError(
            f"{column}: {_shown(value)} has full-width or other compatibility characters; "
            f"write it as {_shown(plain)}"
        )
    return value


def _hidden_character(value: str, categories: frozenset[str], joiners: bool = False) -> str | None:
    """The first character of `value` in one of the Unicode `categories`, named; None if none."""
    if value.isprintable():  # the common case, in C: no control, format or unassigned character
        return None
    for at, char in enumerate(value):
        if unicodedata.category(char) in categories and not (joiners and _joins(value, at)):
            return f"U+{ord(char):04X} {unicodedata.name(char, 'control character')}"
    return None


def _joins(value: str, at: int) -> bool:
    """A ZWNJ or ZWJ between two visible characters."""
    if value[at] not in _JOINERS or not 0 < at < len(value) - 1:
        return False
    return all(value[i].isprintable() and not value[i].isspace() for i in (at - 1, at + 1))


def _parse_debt_id(value: str) -> str:
    return _parse_id("debt_id", value) if value else ""


def _parse_account_id(value: str, first_seen: dict[str, int], row_number: int) -> str:
    account_id = _required("account_id", value)
    if _EXCEL_NUMBER_RE.fullmatch(account_id):
        raise _FieldError(f"account_id: {_shown(account_id)} looks mangled by Excel (scientific notation)")
    _parse_id("account_id", account_id)
    earlier = first_seen.setdefault(account_id, row_number)
    if earlier != row_number:
        raise _FieldError(f"account_id: {_shown(account_id)} duplicates row {earlier}")
    return account_id


def _parse_phone(value: str, default_region: str) -> _Phone:
    """E.164 form, ISO region and the candidate time zones of a valid number."""
    raw = _required("phone", value)
    if _EXCEL_NUMBER_RE.fullmatch(raw):
        raise _FieldError(f"phone: {_shown(raw)} looks mangled by Excel (scientific notation)")
    try:
        number = phonenumbers.parse(raw, default_region)
    except NumberParseException as exc:
        raise _FieldError(f"phone: {_shown(raw)} is not a phone number ({_parse_problem(exc)})") from None
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:  # exactly is_valid_number's test, type reused below
        raise _FieldError(_invalid_phone_reason(raw, number))
    if number.extension:
        raise _FieldError(f"phone: {_shown(raw)} has an extension, which cannot be dialled")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(number) or ""
    return e164, region, _derived_zones(number, kind)


def _derived_zones(number: phonenumbers.PhoneNumber, kind: int) -> tuple[str, ...]:
    """Every candidate zone of a valid number; () when none is known."""
    if phonenumbers.is_number_type_geographical(kind, number.country_code or 0):
        zones = phone_timezone.time_zones_for_geographical_number(number)
    else:
        zones = phone_timezone.time_zones_for_number(number)
    return tuple(zone for zone in zones if zone != phone_timezone.UNKNOWN_TIMEZONE)


def _parse_problem(exc: NumberParseException) -> str:
    problems = {
        NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        NumberParseException.NOT_A_NUMBER: "no digits in the right form",
        NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
        NumberParseException.TOO_SHORT_NSN: "too short",
        NumberParseException.TOO_LONG: "too long",
    }
    return problems.get(exc.error_type, "unparseable")


def _invalid_phone_reason(raw: str, number: phonenumbers.PhoneNumber) -> str:
    region = phonenumbers.region_code_for_country_code(number.country_code or 0)
    length = phonenumbers.is_possible_number_with_reason(number)
    detail = {
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too short: a local number without its area code?",
        ValidationResult.TOO_SHORT: "too short",
        ValidationResult.TOO_LONG: "too long",
        ValidationResult.INVALID_LENGTH: "wrong length",
        ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    }.get(length, "right length but not an assigned number range")
    return f"phone: {_shown(raw)} is not a valid number for region {region} ({detail})"


def _parse_zones(value: str) -> tuple[str, ...]:
    """Stated IANA zones (canonical spelling), or () when none are stated."""
    zones: list[str] = []
    for part in _ZONE_SPLIT_RE.split(value):
        name = part.strip()
        if name:
            zone = _canonical_zone(name)
            if zone not in zones:
                zones.append(zone)
    return tuple(zones)


def _canonical_zone(name: str) -> str:
    """A zone is valid only if it is a key of the zone database (not a folder such as "US" or
    "Asia", a path, or a long name, which zoneinfo tries to open as files) and loads."""
    canonical = _zones_by_lower_name().get(name.lower())
    if canonical is None:
        raise _FieldError(f"time_zone: {_shown(name)} is not an IANA time zone (like Asia/Shanghai)")
    try:
        zoneinfo.ZoneInfo(canonical)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise _FieldError(f"time_zone: {_shown(name)} is listed but cannot be loaded") from None
    return canonical


@functools.cache
def _zones_by_lower_name() -> dict[str, str]:
    # "localtime" is this machine's zone and "Factory" no place's: neither is where a borrower lives.
    zones = zoneinfo.available_timezones() - {"localtime", "Factory"}
    return {zone.lower(): zone for zone in zones}


def _parse_currency(value: str, default: str | None) -> tuple[str, int]:
    """ISO 4217 code and its number of minor-unit digits."""
    code = value.upper() or default
    if not code:
        raise _FieldError("currency: missing (no default currency is configured)")
    try:
        exponent = iso4217.Currency(code).exponent
    except ValueError:
        raise _FieldError(f"currency: {_shown(code)} is not an ISO 4217 currency code") from None
    if exponent is None:
        raise _FieldError(f"currency: {code} has no minor unit (not money)")
    return code, exponent


def _parse_amount(value: str, currency: tuple[str, int] | None) -> int | None:
    """Exact amount in minor units; None when the currency is unknown."""
    text = _required("amount", value)
    if text.startswith("-"):
        raise _FieldError(f"amount: {_shown(text)} is negative; it must be greater than zero")
    match = _AMOUNT_RE.fullmatch(text)
    if match is None:
        raise _FieldError(f"amount: {_shown(text)} is not an amount like 1234.50 or 1,234.50")
    whole, _, fraction = text.replace(",", "").partition(".")
    fraction = fraction.rstrip("0")
    if int(whole) == 0 and not fraction:
        raise _FieldError(f"amount: {_shown(text)} must be greater than zero")
    if currency is None:
        return None
    code, exponent = currency
    if len(fraction) > exponent:
        raise _FieldError(f"amount: {_shown(text)} has more decimals than {code} allows ({exponent})")
    minor = int(whole + fraction.ljust(exponent, "0"))
    if minor > _MAX_AMOUNT_MINOR:
        raise _FieldError(f"amount: {_shown(text)} is too large")
    return minor


def _parse_date(value: str) -> date:
    text = _required("due_date", value)
    match = _DATE_RE.fullmatch(text)
    if match is None:
        raise _FieldError(f"due_date: {_shown(text)} is not a date like 2025-01-31 or 2025/01/31")
    year, _, month, day = match.groups()
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise _FieldError(f"due_date: {_shown(text)} is not a real date") from None


def _parse_language(value: str, default: str | None) -> str:
    """A BCP 47 tag with normalised case (``zh_cn`` becomes ``zh-CN``)."""
    tag = value or default or ""
    if not _LANGUAGE_RE.fullmatch(tag):
        raise _FieldError(f"language: {_shown(tag)} is not a BCP 47 tag like zh-CN or en-US")
    subtags = re.split("[-_]", tag)
    out = [subtags[0].lower()]
    in_extension = False
    for subtag in subtags[1:]:
        in_extension = in_extension or len(subtag) == 1
        out.append(subtag.lower() if in_extension else _case_subtag(subtag))
    return "-".join(out)


def _case_subtag(subtag: str) -> str:
    if len(subtag) == 4 and subtag.isalpha():
        return subtag.title()  # script, e.g. Hant
    if (len(subtag) == 2 and subtag.isalpha()) or (len(subtag) == 3 and subtag.isdigit()):
        return subtag.upper()  # region, e.g. CN or 419
    return subtag.lower()


# ------------------------------------------------------------------- rejects


def write_rejects(path: Path, header: list[str], rejects: Iterable[RejectedRow]) -> None:
    """Write rejected rows as a CSV that can be fixed and re-imported.

    Columns: ``row_number``, ``reason``, then the original header. Any
    ``row_number``/``reason`` columns already in ``header`` (a rejects file
    being re-imported) are dropped, not repeated. Written as UTF-8 with a BOM
    so that Excel shows Chinese names correctly; :func:`read_accounts` accepts it.
    Cells a spreadsheet would run as formulas get a ``'`` in front
    (:mod:`dialer.core.csvsafe`), which :func:`read_accounts` takes off again.
    """
    keep = [i for i, cell in enumerate(header) if cell.strip().lower() not in REJECT_COLUMNS]
    with Path(path).open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(_safe([*REJECT_COLUMNS, *(header[i] for i in keep)]))
        for reject in rejects:
            fields = next(csv.reader(io.StringIO(reject.raw, newline="")), [])
            kept = [fields[i] if i < len(fields) else "" for i in keep]
            extra = fields[len(header) :]
            writer.writerow(_safe([reject.row_number, reject.reason, *kept, *extra]))


def _safe(cells: Iterable[object]) -> list[str]:
    return [csvsafe.cell(c) for c in cells]
