"""Parse a lender's payments CSV (no database here): one result per data row, in file order.

The file is read as the borrowers file is (`dialer.accounts.parse`): UTF-8, the header's names
case-insensitive, unknown columns ignored, one record at a time in bounded memory, an over-long
field or record a reject, a rejects file read back with its formula guards taken off. The columns
and their rules are in docs/payments.md. Whether an account exists and has the payment's currency
is checked against the store by `dialer.accounts.payments_import`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from dialer.accounts.csvrecords import read_records
from dialer.accounts.fields import FieldError, parse_amount, parse_currency, parse_id, shown
from dialer.accounts.parse import (
    QUOTE_HINT,
    Header,
    attempt,
    each_row,
    has_content,
    open_file,
    parse_header,
    to_csv,
)
from dialer.core.balance import Payment
from dialer.core.errors import ImportFileError
from dialer.core.models import RejectedRow

REQUIRED_COLUMNS = ("account_id", "amount", "paid_at", "payment_id")
OPTIONAL_COLUMNS = ("currency",)
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MAX_TIME_CHARS = 40  # longer is no ISO date-time: refused before it is parsed
_TIME_HINT = "like 2026-12-01 or 2026-12-01T10:30:00+08:00"


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """One valid row of a payments file, before its account is looked up."""

    row_number: int
    raw: str  # the row as one CSV record, for a reject found later (unknown account, conflict)
    account_id: str
    payment: Payment


def parse_paid_at(value: str) -> date | datetime:
    """A date (the account's local day) or a date-time with a UTC offset, made UTC."""
    if not value:
        raise FieldError("paid_at: missing")
    if len(value) > _MAX_TIME_CHARS:
        raise FieldError(f"paid_at: {shown(value)} is not a date or date-time {_TIME_HINT}")
    if _DATE_RE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise FieldError(f"paid_at: {shown(value)} is not a real date") from None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(f"paid_at: {shown(value)} is not a date or date-time {_TIME_HINT}") from None
    if at.tzinfo is None:
        raise FieldError(f"paid_at: {shown(value)} has no UTC offset (add one: +08:00, -05:00 or Z)")
    return at.astimezone(UTC)  # OverflowError at year 1 or 9999: a reject of the field (`attempt`)


def parse_account(value: str) -> str:
    if not value:
        raise FieldError("account_id: missing")
    return parse_id("account_id", value)


def parse_payment_id(value: str) -> str:
    """The lender's own reference for the payment: the key that makes a re-import count it once."""
    if not value:
        raise FieldError("payment_id: missing (the lender's reference makes a re-import count it once)")
    return parse_id("payment_id", value)


def read_payments(
    path: Path, default_currency: str | None
) -> Generator[PaymentRecord | RejectedRow, None, None]:
    """Check the whole file, then return an iterator of one result per data row (blank rows skipped).

    Raises :class:`ImportFileError` at once (the file is read through once for it) for a file that
    cannot be used as a whole: unreadable, empty, not UTF-8, a bad header, a quote never closed.
    After that no value in a row can make it raise: a bad value is a reject naming its field."""
    handle = open_file(path)
    try:
        header = _scan(path, handle)
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return _results(path, handle, header, default_currency)


def _scan(path: Path, handle: io.BufferedReader) -> Header:
    records = read_records(path, handle)
    first = next(records, None)
    if first is None or (not has_content(first.fields) and not any(has_content(r.fields) for r in records)):
        raise ImportFileError(path, "the file is empty")
    header = parse_header(path, first, REQUIRED_COLUMNS, OPTIONAL_COLUMNS)
    for _ in records:  # to its end: a byte that is not UTF-8 or a quote never closed refuses the file
        pass
    return header


def _results(
    path: Path, handle: io.BufferedReader, header: Header, default_currency: str | None
) -> Generator[PaymentRecord | RejectedRow, None, None]:
    def parse(line: int, fields: list[str]) -> PaymentRecord:
        return _row(line, fields, header, default_currency)

    with handle:
        yield from each_row(path, handle, header, parse)


def _row(line: int, fields: list[str], header: Header, default_currency: str | None) -> PaymentRecord:
    def get(column: str) -> str:
        position = header.positions.get(column)
        return fields[position].strip() if position is not None and position < len(fields) else ""

    errors: list[str] = []
    account_id = attempt(errors, "account_id", parse_account, get("account_id"))
    payment_id = attempt(errors, "payment_id", parse_payment_id, get("payment_id"))
    currency = attempt(errors, "currency", parse_currency, get("currency"), default_currency)
    amount = attempt(errors, "amount", parse_amount, get("amount"), currency)
    paid = attempt(errors, "paid_at", parse_paid_at, get("paid_at"))
    longer = len(fields) > header.width and any(field.strip() for field in fields[header.width :])
    if longer or (errors and len(fields) != header.width):  # the likely cause goes first
        errors.insert(0, f"row: {len(fields)} fields but the header has {header.width}; {QUOTE_HINT}")
    if errors or not account_id or payment_id is None or currency is None or amount is None or paid is None:
        raise FieldError("; ".join(errors))
    payment = Payment(payment_id, amount, currency[0], *_when(paid))
    return PaymentRecord(line, to_csv(fields), account_id, payment)


def _when(paid: date | datetime) -> tuple[datetime, date | None]:
    """(paid_at, paid_on): a date-only value starts its day at UTC midnight until its account's zone
    is known (`payments_import` moves it to the start of the account's local day)."""
    if isinstance(paid, datetime):
        return paid, None
    return datetime.combine(paid, time(0), UTC), paid
