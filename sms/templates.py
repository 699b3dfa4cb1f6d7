"""SMS templates: one YAML file per locale beside the IVR scripts, validated at load.

A template file names the lender and callback number and holds the messages the contact strategy
can send: each a text over the same fields as the IVR (`{name}`, `{amount}`, `{due_date}`,
`{lender}`, `{callback}`, `{promised_date}`), and the replies it asks for (`"1": promise_to_pay`).
`opt_out_confirmation` is required: the one message a borrower gets after a STOP.

Errors name the file, the line and the field, e.g.
`reminder-en-US.yaml:12: messages.due_today.text: unknown field {amonut}`.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import babel
import iso4217
from babel.dates import format_date
from babel.numbers import format_currency
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dialer.core import bounded_yaml
from dialer.core.bounded_yaml import Lines, Loc, YamlProblem
from dialer.core.errors import TemplateError
from dialer.core.models import Account
from dialer.core.vocab import Outcome
from sms.encoding import Encoded, encoded

MAX_TEMPLATE_BYTES = 64 * 1024  # the shipped files are under 2 KB
MAX_TEXT = 1000  # characters in one message: 15 UCS-2 segments is already a letter
OPT_OUT_CONFIRMATION = "opt_out_confirmation"
ACCOUNT_FIELDS = frozenset({"name", "amount", "due_date"})
FILE_FIELDS = frozenset({"lender", "callback"})
CALL_FIELDS = frozenset({"promised_date"})  # known once a borrower promised a date
FIELDS = ACCOUNT_FIELDS | FILE_FIELDS | CALL_FIELDS
DEBT_FIELDS = frozenset({"amount", "due_date", "promised_date"})
# Replies a template may ask for: a borrower texting "1" confirms a promise, or says it is paid.
REPLY_OUTCOMES = frozenset({Outcome.PROMISE_TO_PAY, Outcome.PAID, Outcome.HARDSHIP_CALLBACK, Outcome.DISPUTE})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Model):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    replies: dict[str, Outcome] = {}


class TemplateFile(_Model):
    locale: str = Field(pattern=r"^[a-z]{2,3}-[A-Z]{2}$")
    lender: str = Field(min_length=1, max_length=80)
    callback: str = Field(min_length=3, max_length=40)
    messages: dict[str, Message]
    name: str  # the file's stem, set by the loader
    folder: str


@dataclass(frozen=True)
class Rendered:
    message: str
    text: str
    encoding: Encoded


def load_templates(path: Path) -> TemplateFile:
    return load_located(path)[0]


def load_located(path: Path) -> tuple[TemplateFile, Lines]:
    try:
        text = bounded_yaml.read_text(path, MAX_TEMPLATE_BYTES, "an SMS template file")
        return parse_templates(text, path)
    except YamlProblem as exc:
        raise TemplateError([str(exc)]) from exc


def parse_templates(text: str, path: Path) -> tuple[TemplateFile, Lines]:
    data, where = bounded_yaml.parse(text, path, "an SMS template file")
    if not isinstance(data, dict):
        raise TemplateError([f"{path}:1: a template file maps locale, lender, callback and messages"])
    try:
        templates = TemplateFile.model_validate({**data, "name": path.stem, "folder": str(path.parent)})
    except ValidationError as exc:
        raise TemplateError(_schema_problems(path, where, exc)) from exc
    problems = [where.problem(path, loc, message) for loc, message in _semantic_problems(templates)]
    if problems:
        raise TemplateError(problems)
    return templates, where


def _schema_problems(path: Path, where: Lines, error: ValidationError) -> list[str]:
    return [
        where.problem(path, tuple(item["loc"]), item["msg"] + bounded_yaml.yes_no_hint(item.get("input")))
        for item in error.errors()
    ]


def _semantic_problems(templates: TemplateFile) -> Iterator[tuple[Loc, str]]:
    if OPT_OUT_CONFIRMATION not in templates.messages:
        yield ("messages",), f"no {OPT_OUT_CONFIRMATION} message (the one text sent after a STOP)"
    for key, message in templates.messages.items():
        yield from _text_problems(("messages", key, "text"), message.text)
        for reply, outcome in message.replies.items():
            if not reply.strip() or len(reply) > 20:
                yield ("messages", key, "replies", reply), "a reply is 1-20 characters a borrower can type"
            if outcome not in REPLY_OUTCOMES:
                allowed = ", ".join(sorted(REPLY_OUTCOMES))
                yield ("messages", key, "replies", reply), f"{outcome} cannot come from a text ({allowed})"
    for key in templates.messages:
        if not key.replace("_", "").isalnum() or not key.isascii():
            yield ("messages", key), "a message name is letters, digits and _"


def _text_problems(loc: Loc, text: str) -> Iterator[tuple[Loc, str]]:
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        yield loc, f"not a template: {exc} (write {{{{ and }}}} for a brace)"
        return
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in FIELDS:
            yield loc, f"unknown field {{{field}}}; known: {', '.join(sorted(FIELDS))}"
        if spec or conversion:
            yield loc, f"{{{field}}}: no format specs or conversions in a template"


def fields_used(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def account_fields(templates: TemplateFile, account: Account) -> dict[str, str]:
    """The account's values as this locale writes them (a currency sign, a long date)."""
    locale = babel.Locale.parse(templates.locale, sep="-")
    exponent = iso4217.Currency(account.currency).exponent or 0
    return {
        "name": account.name,
        "amount": format_currency(account.amount_minor / 10**exponent, account.currency, locale=locale),
        "due_date": written_date(account.due_date, templates.locale),
        "lender": templates.lender,
        "callback": templates.callback,
    }


def written_date(day: date, locale: str) -> str:
    return format_date(day, format="long", locale=babel.Locale.parse(locale, sep="-"))


def render(templates: TemplateFile, message: str, fields: dict[str, str]) -> Rendered:
    try:
        template = templates.messages[message]
    except KeyError:
        known = ", ".join(sorted(templates.messages))
        raise TemplateError([f"{templates.name}: no message named {message!r}; known: {known}"]) from None
    missing = fields_used(template.text) - fields.keys()
    if missing:
        raise TemplateError([f"{templates.name}: {message} needs {', '.join(sorted(missing))}"])
    text = template.text.format(**fields)
    return Rendered(message, text, encoded(text))


class TemplateSet:
    """The template files in use, one per locale: which file an account's texts come from."""

    def __init__(self, files: Sequence[TemplateFile], default_locale: str) -> None:
        self.by_locale = {t.locale: t for t in files}
        self.by_name = {t.name: t for t in files}
        if default_locale not in self.by_locale:
            known = ", ".join(sorted(self.by_locale)) or "none"
            raise TemplateError(
                [f"no SMS template file for the default locale {default_locale} (have {known})"]
            )
        self.default_locale = default_locale

    @classmethod
    def load(cls, paths: Sequence[Path], default_locale: str) -> TemplateSet:
        return cls([load_templates(p) for p in paths], default_locale)

    def for_account(self, account: Account) -> TemplateFile:
        return self.by_locale.get(account.language, self.by_locale[self.default_locale])

    def of_key(self, key: str) -> tuple[TemplateFile, str] | None:
        """The file and message a stored template key (`<file>#<message>`) names, if still loaded."""
        name, _, message = key.partition("#")
        templates = self.by_name.get(name)
        return (templates, message) if templates and message in templates.messages else None


def template_key(templates: TemplateFile, message: str) -> str:
    return f"{templates.name}#{message}"
