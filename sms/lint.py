"""`duecall sms lint`: check a template file against what a contact policy requires of a text.

What each policy requires is data (sms/lint_rules.yaml); the checks are here. Each message is
checked as the borrower would read it: rendered with the file's lender and callback and a
sample account, so a signature or an opt-out notice written through a field still counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from importlib import resources
from typing import Any

import babel
import yaml
from babel.numbers import format_currency

from dialer.core.bounded_yaml import Lines, Loc
from dialer.core.errors import ConfigError
from sms.encoding import encoded
from sms.templates import OPT_OUT_CONFIRMATION, TemplateFile, written_date

Check = Callable[[TemplateFile, str, str, dict[str, Any]], Iterator[str]]


def load_rules() -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load((resources.files("sms") / "lint_rules.yaml").read_text("utf-8"))
    return rules


def policies() -> list[str]:
    return sorted(load_rules()["policies"])


def sample_fields(templates: TemplateFile) -> dict[str, str]:
    """Values as long as real ones get, so the segment count is not flattering."""
    day = written_date(date(2026, 12, 31), templates.locale)
    samples = {"zh": ("CNY", 12345.67), "ko": ("KRW", 1234567)}
    currency, amount = samples.get(_language(templates), ("USD", 12345.67))
    names = {"zh": "欧阳明华", "ko": "남궁민수"}
    locale = babel.Locale.parse(templates.locale, sep="-")
    return {
        "name": names.get(_language(templates), "Alexandra Montgomery-Smith"),
        "amount": format_currency(amount, currency, locale=locale),
        "due_date": day,
        "promised_date": day,
        "lender": templates.lender,
        "callback": templates.callback,
    }


def lint(templates: TemplateFile, where: Lines, policy: str) -> list[str]:
    """Problems with the file under `policy` (empty: compliant), each as 'file:line: field: what'."""
    rules = load_rules()
    if policy not in rules["policies"]:
        raise ConfigError(f"unknown policy {policy!r}; known: {', '.join(policies())}")
    fields = sample_fields(templates)
    path = f"{templates.folder}/{templates.name}.yaml"
    problems = []
    for key, message in templates.messages.items():
        text = message.text.format(**fields)
        loc: Loc = ("messages", key, "text")
        for check in rules["policies"][policy]:
            for problem in _CHECKS[check](templates, key, text, rules):
                problems.append(f"{path}:{where.find(loc)}: messages.{key}.text: {problem}")
    return problems


def _language(templates: TemplateFile) -> str:
    return templates.locale.split("-")[0]


def _sender_named(templates: TemplateFile, key: str, text: str, rules: dict[str, Any]) -> Iterator[str]:
    if templates.lender not in text:
        yield f"the text does not name the lender ({templates.lender}): say who is writing"


def _sender_signature(templates: TemplateFile, key: str, text: str, rules: dict[str, Any]) -> Iterator[str]:
    if not text.startswith(f"【{templates.lender}】"):
        yield f"a text starts with the sender's signature 【{templates.lender}】"


def _opt_out_notice(templates: TemplateFile, key: str, text: str, rules: dict[str, Any]) -> Iterator[str]:
    if key == OPT_OUT_CONFIRMATION:
        return  # sent once the borrower opted out: nothing left to opt out of
    notices = rules["opt_out_notice"].get(_language(templates), [])
    if not any(notice in text.lower() for notice in notices):
        yield f"no opt-out notice: say how to stop these texts ({' / '.join(notices) or 'none known'})"


def _words(kind: str, what: str) -> Check:
    def check(templates: TemplateFile, key: str, text: str, rules: dict[str, Any]) -> Iterator[str]:
        for word in rules[kind].get(_language(templates), []):
            if word in text.lower():
                yield f"{what}: {word!r}"

    return check


def _within_segments(templates: TemplateFile, key: str, text: str, rules: dict[str, Any]) -> Iterator[str]:
    found = encoded(text)
    if found.segments > rules["max_segments"]:
        yield f"{found.describe()} with long values: at most {rules['max_segments']} segments"


_CHECKS: dict[str, Check] = {
    "sender_named": _sender_named,
    "sender_signature": _sender_signature,
    "opt_out_notice": _opt_out_notice,
    "no_threats": _words("threats", "threatening words"),
    "no_third_parties": _words("third_parties", "brings in other people"),
    "within_segments": _within_segments,
}
