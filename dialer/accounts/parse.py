"""Parse a lender's borrowers CSV into account records (no database here).

File format
-----------
UTF-8 text, with or without a byte-order mark, comma separated, fields
quoted with ``"`` where needed (RFC 4180, as Excel's "CSV UTF-8" writes it).
The first line is the header. Header names are case-insensitive and
surrounding spaces are ignored. Any other column is the lender's own
(``product``, ``risk_band``), kept per account as text
(:mod:`dialer.accounts.columns`: names, limits, reserved names).

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
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import ParamSpec, TypeVar

import phonenumbers

from dialer.accounts.columns import extra_columns, row_columns, unnamed_columns
from dialer.accounts.csvrecords import Record, read_records
from dialer.accounts.fields import (
    FieldError,
    Phone,
    parse_account_id,
    parse_amount,
    parse_currency,
    parse_date,
    parse_debt_id,
    parse_language,
    parse_name,
    parse_phone,
    parse_zones,
    shown,
)
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
    "kept_columns",
    "read_accounts",
    "read_header",
    "write_rejects",
]

REQUIRED_COLUMNS = ("account_id", "name", "phone", "amount", "due_date")
OPTIONAL_COLUMNS = ("debt_id", "time_zone", "currency", "language")
REJECT_COLUMNS = ("row_number", "reason")

_MAX_FIELD_BYTES = 128 << 10  # longer is a reject (csv's old limit, which used to stop the whole file)
_MAX_KEPT = 1000  # characters of an over-long field kept in the rejects
# Characters that show nothing (or reorder what is shown): in an id they make look-alikes.
QUOTE_HINT = 'quote values that contain commas ("1,234.50")'
_POOL_MIN_PHONES = 20_000  # below this, starting worker processes does not pay


_P = ParamSpec("_P")
_T = TypeVar("_T")
_Parsed = TypeVar("_Parsed")


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
            code, _ = parse_currency(self.default_currency, None)
            object.__setattr__(self, "default_currency", code)
        try:
            language = parse_language(self.default_language, None)
        except FieldError as exc:
            raise ValueError(f"default_{exc}") from None
        object.__setattr__(self, "default_language", language)


# ---------------------------------------------------------------- file level


def read_header(path: Path) -> list[str]:
    """The file's header cells as written (for :func:`write_rejects`)."""
    with open_file(path) as handle:
        first = next(read_records(path, handle), None)
    return first.fields if first else []


def kept_columns(path: Path) -> tuple[str, ...]:
    """The lender's own columns named in the file's header, in its order (see read_accounts)."""
    with open_file(path) as handle:
        first = next(read_records(path, handle), None)
    return tuple(parse_header(path, first, keep_extra=True).extras) if first else ()


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
    handle = open_file(path)
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


def open_file(path: Path) -> io.BufferedReader:
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise ImportFileError(path, f"cannot read the file: {exc.strerror or exc}") from None


def has_content(fields: list[str]) -> bool:
    return any(field.strip() for field in fields)


def _scan(path: Path, handle: io.BufferedReader) -> tuple[Header, list[str]]:
    """The header and every distinct phone value, in file order. Reads the whole file, so that
    whole-file problems (not UTF-8, a quote never closed) are found before any row is given."""
    records = read_records(path, handle)
    first = next(records, None)
    if first is None or (not has_content(first.fields) and not any(has_content(r.fields) for r in records)):
        raise ImportFileError(path, "the file is empty")
    header = parse_header(path, first, keep_extra=True)
    position = header.positions["phone"]
    phones: dict[str, None] = {}
    for record in records:
        fields = header.values(record)
        if not record.problem and position < len(fields):
            phones[fields[position].strip()] = None
    return header, list(phones)


@dataclass(frozen=True)
class Header:
    positions: dict[str, int]  # known column name -> field position
    cells: list[str]  # as written
    from_rejects: bool  # a rejects file: its cells were made safe for spreadsheets (csvsafe)
    extras: dict[str, int] = field(default_factory=dict)  # the lender's own columns -> position
    unnamed: tuple[int, ...] = ()  # positions of empty header cells (where extras are kept)

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
        return f"column {position + 1}" + (f" ({shown(cell)})" if cell else "")


def parse_header(
    path: Path,
    record: Record,
    required: tuple[str, ...] = REQUIRED_COLUMNS,
    optional: tuple[str, ...] = OPTIONAL_COLUMNS,
    *,
    keep_extra: bool = False,
) -> Header:
    """The header's known columns (`required` and `optional`: the borrowers file's by default),
    and with `keep_extra` every other named column (else those are ignored)."""
    if record.problem:
        raise ImportFileError(path, f"line 1 (the header): {record.problem}")
    header = record.fields
    if any("\x00" in cell for cell in header):
        raise ImportFileError(path, "the file contains NUL bytes: UTF-16 without BOM, or not a text file")
    index: dict[str, int] = {}
    for position, cell in enumerate(header):
        name = cell.strip().lower()
        if name not in required + optional:
            continue
        if name in index:
            raise ImportFileError(
                path, f"column {name!r} appears twice (columns {index[name] + 1} and {position + 1})"
            )
        index[name] = position
    missing = [name for name in required if name not in index]
    if missing:
        found = ", ".join(cell.strip() for cell in header if cell.strip()) or "none"
        raise ImportFileError(path, f"missing required column(s): {', '.join(missing)} (found: {found})")
    names = {cell.strip().lower() for cell in header}
    from_rejects = all(name in names for name in REJECT_COLUMNS)
    if not keep_extra:
        return Header(index, header, from_rejects)
    extras = extra_columns(path, header, required + optional, from_rejects)
    return Header(index, header, from_rejects, extras, unnamed_columns(header))


# ----------------------------------------------------------------- row level


@dataclass
class _Parsers:
    """Per-import caches of the cheap, often-repeated field parsers."""

    phone: Callable[[str], Phone]
    currency: Callable[[str, str | None], tuple[str, int]]
    zones: Callable[[str], tuple[str, ...]]
    date: Callable[[str], date]
    language: Callable[[str, str | None], str]

    @classmethod
    def new(cls, phone: Callable[[str], Phone]) -> _Parsers:
        cache = functools.lru_cache(maxsize=4096)
        return cls(
            phone,
            cache(parse_currency),
            cache(parse_zones),
            cache(parse_date),
            cache(parse_language),
        )


@contextlib.contextmanager
def _phone_checker(default_region: str, phones: list[str], workers: int) -> Iterator[Callable[[str], Phone]]:
    """A phone parser for one import. For a large file, ``phones`` (in the
    order the rows need them) are checked ahead by worker processes; if the
    workers cannot run, the rest are checked in this process instead."""
    parse = functools.lru_cache(maxsize=65536)(functools.partial(parse_phone, default_region=default_region))
    if workers <= 1 or len(phones) < _POOL_MIN_PHONES:
        yield parse
        return
    check = functools.partial(_phone_or_reason, default_region=default_region)
    chunksize = max(1, min(2000, len(phones) // (workers * 8)))
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    ahead: Iterator[tuple[str, Phone | str]] = zip(
        phones, pool.map(check, phones, chunksize=chunksize), strict=True
    )
    checked: dict[str, Phone | str] = {}

    def lookup(raw: str) -> Phone:
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
            raise FieldError(result)
        return result

    try:
        yield lookup
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _phone_or_reason(raw: str, default_region: str) -> Phone | str:
    try:
        return parse_phone(raw, default_region)
    except FieldError as exc:
        return str(exc)


def _results(
    path: Path,
    handle: io.BufferedReader,
    header: Header,
    settings: ImportSettings,
    phone_checker: contextlib.AbstractContextManager[Callable[[str], Phone]],
) -> Generator[AccountRecord | RejectedRow, None, None]:
    first_seen: dict[str, int] = {}
    with handle, phone_checker as phone:
        parsers = _Parsers.new(phone)

        def parse(line: int, fields: list[str]) -> AccountRecord:
            return _parse_row(fields, header, settings, parsers, first_seen, line)

        yield from each_row(path, handle, header, parse)


def each_row(
    path: Path, handle: io.BufferedReader, header: Header, parse: Callable[[int, list[str]], _Parsed]
) -> Generator[_Parsed | RejectedRow, None, None]:
    """Every data record of a CSV file (the header read before): `parse(line, fields)`, or the
    reject naming the row and field (a record cut short, a field over the limit, a bad value).
    Blank lines are skipped. Shared by the borrowers' and the payments' files."""
    records = read_records(path, handle)
    next(records, None)  # the header
    for record in records:
        fields = header.values(record)
        if not record.problem and not has_content(fields):
            continue
        try:
            # A character takes at most 4 bytes: most rows need no size check at all.
            if record.problem or max(map(len, fields), default=0) > _MAX_FIELD_BYTES // 4:
                check_size(record, fields, header)
            yield parse(record.line, fields)
        except FieldError as exc:
            yield reject_row(record, str(exc), fields)


def _oversized(field: str) -> bool:
    # A character takes at most 4 bytes: most fields need no encoding to be measured.
    return len(field) > _MAX_FIELD_BYTES // 4 and len(field.encode()) > _MAX_FIELD_BYTES


def check_size(record: Record, fields: list[str], header: Header) -> None:
    """A record cut short or a field over the limit is a reject, naming the field."""
    problems = [f"row: {record.problem}"] if record.problem else []
    problems += [
        f"{header.column(i)}: field longer than {_MAX_FIELD_BYTES} bytes"
        for i, field in enumerate(fields)
        if _oversized(field)
    ]
    if problems:
        raise FieldError("; ".join(problems))


def reject_row(record: Record, reason: str, fields: list[str]) -> RejectedRow:
    if record.end > record.line:
        reason += f" (this record spans lines {record.line}-{record.end}: is a quote left open?)"
    kept = (field[:_MAX_KEPT] + "…" if _oversized(field) else field for field in fields)
    return RejectedRow(record.line, reason, to_csv(kept))


def to_csv(fields: Iterable[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(fields)  # its line end makes it quote fields with \r or \n
    return out.getvalue().removesuffix("\r\n")


def _parse_row(
    fields: list[str],
    header: Header,
    settings: ImportSettings,
    parsers: _Parsers,
    first_seen: dict[str, int],
    row_number: int,
) -> AccountRecord:
    def get(column: str) -> str:
        position = header.positions.get(column)
        return fields[position].strip() if position is not None and position < len(fields) else ""

    errors: list[str] = []
    account_id = attempt(errors, "account_id", parse_account_id, get("account_id"), first_seen, row_number)
    debt_id = attempt(errors, "debt_id", parse_debt_id, get("debt_id"))
    name = attempt(errors, "name", parse_name, get("name"))
    phone = attempt(errors, "phone", parsers.phone, get("phone"))
    stated_zones = attempt(errors, "time_zone", parsers.zones, get("time_zone"))
    currency = attempt(errors, "currency", parsers.currency, get("currency"), settings.default_currency)
    amount = attempt(errors, "amount", parse_amount, get("amount"), currency)
    due_date = attempt(errors, "due_date", parsers.date, get("due_date"))
    language = attempt(errors, "language", parsers.language, get("language"), settings.default_language)
    columns = attempt(errors, "columns", row_columns, fields, header.extras, header.unnamed)
    longer = len(fields) > header.width and any(field.strip() for field in fields[header.width :])
    if longer or (errors and len(fields) != header.width):  # the likely cause goes first
        errors.insert(0, f"row: {len(fields)} fields but the header has {header.width}; {QUOTE_HINT}")
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
        or columns is None
    ):
        raise FieldError("; ".join(errors))
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
        columns=columns,
    )


def attempt(
    errors: list[str], column: str, parse: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
) -> _T | None:
    """Run one field parser; on failure note the reason and return None.

    A library failing on a value it should have refused (zoneinfo raised IsADirectoryError for the
    zone "US") is a reject of that field too, never the end of the import."""
    try:
        return parse(*args, **kwargs)
    except FieldError as exc:
        errors.append(str(exc))
    except (ValueError, LookupError, ArithmeticError, OSError) as exc:
        errors.append(f"{column}: cannot be read ({type(exc).__name__})")
    return None


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
