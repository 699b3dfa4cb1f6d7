"""Masking names and phone numbers for auditors who may not see them in full.

Pure functions. A masked number keeps its country calling code and last four
digits (enough to tell calls apart and to see the country rules that applied);
a masked name keeps the first character of each word.

Masking works on values, never on serialised text: JSON escapes a name's `"` or
`\\` (and may escape non-ASCII), so a search for the name in JSON text misses it.
Callers decode first, mask each string (`Masker.data`), then encode again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import phonenumbers

BULLET = "•"
_KEEP_DIGITS = 4
_MIN_NATIONAL = 7  # national numbers this long are masked in free text too
_PHONE_KEYS = frozenset({"phone", "phone_e164", "number"})
# A run of 7 or more digits, written with single spaces, dots, dashes or brackets between them
# (a phone number, an account or card number), unless it is a date. An amount with thousands
# separators ("$1,234.56") is never one; an amount of a million or more written without them is.
_DIGIT_RUN = re.compile(r"\+?\(?\d(?:(?:[ .\-]|\) ?)?\d){6,}")
_DATE = re.compile(r"\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2\d{4}")


def mask_phone(number: str) -> str:
    """'+8613912341234' -> '+86 •••••••1234'. Unparseable input keeps only its last 4 digits."""
    digits = re.sub(r"\D", "", number)
    try:
        parsed = phonenumbers.parse(number if number.startswith("+") else f"+{digits}", None)
        code = str(parsed.country_code)
    except phonenumbers.NumberParseException:
        return _bullets_but_last(digits)
    national = digits[len(code) :] if digits.startswith(code) else digits
    return f"+{code} {_bullets_but_last(national)}"


def _bullets_but_last(digits: str) -> str:
    if len(digits) <= _KEEP_DIGITS:
        return BULLET * len(digits)  # too short: the last four would be the whole number
    return BULLET * (len(digits) - _KEEP_DIGITS) + digits[-_KEEP_DIGITS:]


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    return run if _DATE.fullmatch(run) else _bullets_but_last(re.sub(r"\D", "", run))


def mask_name(name: str) -> str:
    """'Wei Zhang' -> 'W•• Z••••'; '张伟' -> '张•' (a CJK name is one word)."""
    return " ".join(_mask_word(word) for word in name.split())


def _mask_word(word: str) -> str:
    return word[0] + BULLET * max(1, len(word) - 1)


def _phone_forms(phone: str) -> list[str]:
    """The ways a number is written in event data: E.164, without the '+' (Asterisk), national."""
    forms = [phone]
    if phone.startswith("+"):
        forms.append(phone[1:])
        try:
            national = str(phonenumbers.parse(phone, None).national_number)
        except phonenumbers.NumberParseException:
            national = ""
        if len(national) >= _MIN_NATIONAL:  # a shorter run of digits could be an amount or a date
            forms.append(national)
    return forms


class Masker:
    """Masks one account's name and number wherever they appear: text, event data, transcripts."""

    def __init__(self, name: str, phone: str) -> None:
        self.name, self.phone = name, phone
        pairs: dict[str, str] = {}
        if name.strip():
            pairs[name] = mask_name(name)
            for word in name.split():
                if len(word) > 1:  # one letter says nothing and would mask every such letter
                    pairs[word] = _mask_word(word)
        if phone:
            masked = mask_phone(phone)
            for form in _phone_forms(phone):
                pairs[form] = masked
        # Longest first, so the full name wins over its words and E.164 over the national number.
        self._pairs = sorted(pairs.items(), key=lambda kv: -len(kv[0]))
        # People type names in any case ("this is wei"): a text's words match them regardless,
        # as whole words (so "Wei" is not masked inside "weight"). Scripts without case (张伟)
        # are masked by `text` already.
        words = [re.escape(p) for p, _ in self._pairs if p.lower() != p.upper() and not p[-1].isdigit()]
        self._any_case = re.compile(rf"(?<!\w)(?:{'|'.join(words)})(?!\w)", re.IGNORECASE) if words else None

    def text(self, value: str) -> str:
        """One decoded string (a prompt, a transcript, an account id) with the name and number masked."""
        for plain, masked in self._pairs:
            value = value.replace(plain, masked)
        return value

    def data(self, value: Any) -> Any:
        """A copy of decoded JSON-like data: phone fields masked whole, every other string by `text`."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                k: (mask_phone(v) if k in _PHONE_KEYS and isinstance(v, str) and v else self.data(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value

    def body(self, value: str) -> str:
        """A text message's words (sent or received): `text`, and every other long run of digits
        kept to its last four, since a borrower may write another number into a reply."""
        value = self.text(value)
        if self._any_case is not None:
            value = self._any_case.sub(lambda m: mask_name(m.group()), value)
        return _DIGIT_RUN.sub(_mask_run, value)

    def optional(self, value: str | None) -> str | None:
        """An optional text field (an event's account id: it may be the phone number itself)."""
        return None if value is None else self.text(value)


class Plain(Masker):
    """The same interface, masking nothing (an admin who chose to see names and numbers)."""

    def __init__(self) -> None:
        super().__init__("", "")

    def data(self, value: Any) -> Any:
        return value

    def body(self, value: str) -> str:
        return value
