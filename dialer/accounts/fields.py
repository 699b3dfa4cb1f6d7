"""One field of a borrowers CSV row: each parser returns the value or raises `FieldError`,
whose message starts with the column's name (`dialer.accounts.parse` collects them per row)."""

from __future__ import annotations

import functools
import re
import unicodedata
import zoneinfo
from datetime import date

import iso4217
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult
from phonenumbers import timezone as phone_timezone

_MAX_AMOUNT_MINOR = 2**63 - 1  # fits a signed 64-bit database column
_MAX_SHOWN = 40  # longest value quoted back in a reason
MAX_COLUMN_CHARS = 256  # longest value of a lender's own column (dialer.accounts.columns)
_TABS_AND_BREAKS = str.maketrans("\t\n\r", "   ")  # white space, not hidden, in a column's value
_HIDDEN_IN_IDS = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_HIDDEN_IN_NAMES = frozenset({"Cc", "Cf"})
_JOINERS = "\u200c\u200d"  # ZWNJ and ZWJ: part of the spelling in Persian and Indic scripts
_AMOUNT_RE = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]+))?")
_DATE_RE = re.compile(r"([0-9]{4})([-/])([0-9]{1,2})\2([0-9]{1,2})")
_EXCEL_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?[eE]\+[0-9]+")
_LANGUAGE_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
_ZONE_SPLIT_RE = re.compile(r"[|;]")

Phone = tuple[str, str, tuple[str, ...]]  # E.164, region, derived time zones


class FieldError(ValueError):
    """A problem with one field; the message starts with the field's name."""


def shown(value: str) -> str:
    return repr(value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "…")


# ----------------------------------------------------------- field parsers


def _required(column: str, value: str) -> str:
    if not value:
        raise FieldError(f"{column}: missing")
    return value


def parse_name(value: str) -> str:
    """The name with runs of white space (line breaks too) made one space.

    Invisible characters that can disguise a name on the auditors' page (bidi controls, zero-width
    spaces, control characters) are a reject, not silently dropped; ZWNJ and ZWJ inside a word are
    kept, being part of the spelling in Persian and Indic scripts."""
    name = " ".join(_required("name", value).split())
    hidden = _hidden_character(name, _HIDDEN_IN_NAMES, joiners=True)
    if hidden:
        raise FieldError(f"name: {shown(name)} contains {hidden}, an invisible character")
    return name


def parse_column_value(column: str, value: str) -> str:
    """A value of one of the lender's own columns: NFC, stripped ("" is no value).

    Kept as written otherwise, since a strategy's segment compares it exactly; so a value longer
    than MAX_COLUMN_CHARS, or with an invisible character (as in names: a zero-width space would
    make a look-alike that no segment matches), is a reject naming the column."""
    text = unicodedata.normalize("NFC", value).strip()
    if len(text) > MAX_COLUMN_CHARS:
        raise FieldError(f"{column}: {len(text)} characters, more than {MAX_COLUMN_CHARS}")
    hidden = _hidden_character(text.translate(_TABS_AND_BREAKS), _HIDDEN_IN_NAMES, joiners=True)
    if hidden:
        raise FieldError(f"{column}: {shown(text)} contains {hidden}, an invisible character")
    return text


def parse_id(column: str, value: str) -> str:
    """An id is a key: no invisible characters, and only its NFKC spelling, so that two ids that
    look alike (full-width `Ａ１` and `A1`, or with a zero-width space) cannot make two accounts.
    Not normalised for the lender: the id must stay the one their own system knows."""
    hidden = _hidden_character(value, _HIDDEN_IN_IDS)
    if hidden:
        raise FieldError(f"{column}: {shown(value)} contains {hidden}, an invisible character")
    if not unicodedata.is_normalized("NFKC", value):
        plain = unicodedata.normalize("NFKC", value)
        raise FieldError(
            f"{column}: {shown(value)} has full-width or other compatibility characters; "
            f"write it as {shown(plain)}"
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


def parse_debt_id(value: str) -> str:
    return parse_id("debt_id", value) if value else ""


def parse_account_id(value: str, first_seen: dict[str, int], row_number: int) -> str:
    account_id = _required("account_id", value)
    if _EXCEL_NUMBER_RE.fullmatch(account_id):
        raise FieldError(f"account_id: {shown(account_id)} looks mangled by Excel (scientific notation)")
    parse_id("account_id", account_id)
    earlier = first_seen.setdefault(account_id, row_number)
    if earlier != row_number:
        raise FieldError(f"account_id: {shown(account_id)} duplicates row {earlier}")
    return account_id


def parse_phone(value: str, default_region: str) -> Phone:
    """E.164 form, ISO region and the candidate time zones of a valid number."""
    raw = _required("phone", value)
    if _EXCEL_NUMBER_RE.fullmatch(raw):
        raise FieldError(f"phone: {shown(raw)} looks mangled by Excel (scientific notation)")
    try:
        number = phonenumbers.parse(raw, default_region)
    except NumberParseException as exc:
        raise FieldError(f"phone: {shown(raw)} is not a phone number ({_parse_problem(exc)})") from None
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:  # exactly is_valid_number's test, type reused below
        raise FieldError(_invalid_phone_reason(raw, number))
    if number.extension:
        raise FieldError(f"phone: {shown(raw)} has an extension, which cannot be dialled")
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
    return f"phone: {shown(raw)} is not a valid number for region {region} ({detail})"


def parse_zones(value: str) -> tuple[str, ...]:
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
        raise FieldError(f"time_zone: {shown(name)} is not an IANA time zone (like Asia/Shanghai)")
    try:
        zoneinfo.ZoneInfo(canonical)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise FieldError(f"time_zone: {shown(name)} is listed but cannot be loaded") from None
    return canonical


@functools.cache
def _zones_by_lower_name() -> dict[str, str]:
    # "localtime" is this machine's zone and "Factory" no place's: neither is where a borrower lives.
    zones = zoneinfo.available_timezones() - {"localtime", "Factory"}
    return {zone.lower(): zone for zone in zones}


def parse_currency(value: str, default: str | None) -> tuple[str, int]:
    """ISO 4217 code and its number of minor-unit digits."""
    code = value.upper() or default
    if not code:
        raise FieldError("currency: missing (no default currency is configured)")
    try:
        exponent = iso4217.Currency(code).exponent
    except ValueError:
        raise FieldError(f"currency: {shown(code)} is not an ISO 4217 currency code") from None
    if exponent is None:
        raise FieldError(f"currency: {code} has no minor unit (not money)")
    return code, exponent


def parse_amount(value: str, currency: tuple[str, int] | None) -> int | None:
    """Exact amount in minor units; None when the currency is unknown."""
    text = _required("amount", value)
    if text.startswith("-"):
        raise FieldError(f"amount: {shown(text)} is negative; it must be greater than zero")
    match = _AMOUNT_RE.fullmatch(text)
    if match is None:
        raise FieldError(f"amount: {shown(text)} is not an amount like 1234.50 or 1,234.50")
    whole, _, fraction = text.replace(",", "").partition(".")
    fraction = fraction.rstrip("0")
    if int(whole) == 0 and not fraction:
        raise FieldError(f"amount: {shown(text)} must be greater than zero")
    if currency is None:
        return None
    code, exponent = currency
    if len(fraction) > exponent:
        raise FieldError(f"amount: {shown(text)} has more decimals than {code} allows ({exponent})")
    minor = int(whole + fraction.ljust(exponent, "0"))
    if minor > _MAX_AMOUNT_MINOR:
        raise FieldError(f"amount: {shown(text)} is too large")
    return minor


def parse_date(value: str) -> date:
    text = _required("due_date", value)
    match = _DATE_RE.fullmatch(text)
    if match is None:
        raise FieldError(f"due_date: {shown(text)} is not a date like 2025-01-31 or 2025/01/31")
    year, _, month, day = match.groups()
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise FieldError(f"due_date: {shown(text)} is not a real date") from None


def parse_language(value: str, default: str | None) -> str:
    """A BCP 47 tag with normalised case (``zh_cn`` becomes ``zh-CN``)."""
    tag = value or default or ""
    if not _LANGUAGE_RE.fullmatch(tag):
        raise FieldError(f"language: {shown(tag)} is not a BCP 47 tag like zh-CN or en-US")
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
