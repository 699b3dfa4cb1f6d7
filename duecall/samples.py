"""The sample borrower that script and template previews speak to (`duecall ivr render|try`, the
operations page): never a real account, so a preview shows no one's data."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from dialer.core.models import Account

if TYPE_CHECKING:
    from ivr.script import Script

_NAMES = {"zh-CN": "王伟", "ko-KR": "김민준"}
_CURRENCIES = {"zh-CN": "CNY", "ko-KR": "KRW"}


def sample_account(locale: str) -> Account:
    """A made-up account in the locale's language and currency, due in three days."""
    currency = _CURRENCIES.get(locale, "USD")
    amount = 1234000 if currency == "KRW" else 123450
    return Account(
        0,
        "SAMPLE",
        "SAMPLE",
        _NAMES.get(locale, "Olivia Smith"),
        "+10000000000",
        (),
        False,
        amount,
        currency,
        date.today() + timedelta(days=3),
        locale,
    )


def script_lines(script: Script) -> list[tuple[str, str]]:
    """Every prompt of a script as the sample borrower hears it: (where, text), the voicemail last."""
    from ivr.service import account_fields, voicemail_text
    from ivr.spoken import spoken_date

    sample = sample_account(script.locale)
    fields = {**account_fields(script, sample), "promised_date": spoken_date(sample.due_date, script.locale)}
    lines = [(where, template.format(**fields)) for where, template in script.templates()]
    message = voicemail_text(script)
    if message is not None:  # what an answering machine would be left
        lines.append(("voicemail", message))
    return lines
