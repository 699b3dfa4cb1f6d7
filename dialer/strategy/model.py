"""A contact strategy's file format, validated with pydantic (docs/strategy.md has the format).

Only the shape is checked here; what needs the pack, the scripts or the templates (caps, names,
steps that can never run) is the loader's (`dialer/strategy/loader.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, StrictInt, StringConstraints

from dialer.core.config import Duration

Channel = Literal["voice", "sms"]
MIN_DAY, MAX_DAY = -365, 3650  # a step more than a year before the due date, or ten years after, is a typo
_RANGE = re.compile(r"^\s*(-?\d{1,5})\s*(?:(\+)|-\s*(-?\d{1,5}))?\s*$")
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")]
Column = Annotated[str, StringConstraints(min_length=1, max_length=64)]  # bucket, locale ... or imported
MAX_ARMS = 8  # more arms than this splits a portfolio too thin to compare any two of them
MAX_WEIGHT = 100  # a block holds the sum of the weights: kept small enough to balance small strata
MAX_SEED = 2**63 - 1  # fits SQLite's INTEGER


@dataclass(frozen=True, slots=True)
class Days:
    """Days relative to the due date, both ends included (-3: three days before; 1: the first day late)."""

    first: int
    last: int  # MAX_DAY for "121+"

    def __contains__(self, day: object) -> bool:
        return isinstance(day, int) and self.first <= day <= self.last

    def __str__(self) -> str:
        if self.first == self.last:
            return str(self.first)
        return f"{self.first}+" if self.last == MAX_DAY else f"{self.first} to {self.last}"


def parse_days(value: Any) -> Days:
    """-3, "0", "1-30", "-7--1", "121+"."""
    if isinstance(value, Days):
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not days like -3, 0, 1-30 or 121+")
    found = _RANGE.match(str(value))
    if not found:
        raise ValueError(f"{str(value)[:40]!r} is not days like -3, 0, 1-30 or 121+")
    first = int(found.group(1))
    last = MAX_DAY if found.group(2) else int(found.group(3) or first)
    if not MIN_DAY <= first <= last <= MAX_DAY:
        raise ValueError(f"{value!r}: days run from {MIN_DAY} to {MAX_DAY}, the first one first")
    return Days(first, last)


DayRange = Annotated[Days, BeforeValidator(parse_days)]


def parse_values(value: Any) -> tuple[str, ...]:
    """A `where` value: one value or a list of them (any matches); numbers are read as their text."""
    items = value if isinstance(value, list) else [value]
    if any(isinstance(v, bool) or not isinstance(v, str | int) for v in items):
        raise ValueError(f"{str(value)[:40]!r}: a value or a list of values (text or whole numbers)")
    return tuple(str(v) for v in items)


Values = Annotated[tuple[str, ...], BeforeValidator(parse_values)]
Count = Annotated[StrictInt, Field(ge=1, le=50)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Model):
    """One kind of contact: a call running a script, or a text with one of the templates' messages."""

    channel: Channel
    script: Name | None = None  # voice: an IVR script's name (its file's stem, ivr/scripts/<name>.yaml)
    message: Name | None = None  # sms: a message of the template file of the account's locale
    per_day: Count  # contacts of this channel a local day, at most
    interval: Duration  # at least this long after the last contact on this channel

    @property
    def what(self) -> str:
        return f"call with {self.script}" if self.channel == "voice" else f"text {self.message}"


class Step(Contact):
    days: DayRange


class RuleContact(Contact):
    """A rule's own contact (a broken promise's call): for `for_days` local days, then the steps."""

    for_days: Annotated[StrictInt, Field(ge=1, le=30)] = 1


class PromisePending(_Model):
    grace_days: Annotated[StrictInt, Field(ge=0, le=30)] = 0  # after the promised day, still waiting


class NoAnswer(_Model):
    """After `after` unanswered calls in a row: one text instead (`switch`), or a wider interval."""

    after: Annotated[StrictInt, Field(ge=1, le=100)]
    switch: Contact | None = None
    widen: Duration | None = None


class Rules(_Model):
    """What the last outcome does. Those with one meaning are written for the reader, never changed."""

    promise_pending: PromisePending | None = None
    promise_broken: RuleContact | None = None  # absent: the steps carry on
    partially_paid: RuleContact | None = None  # a promise partially kept; absent: the steps
    no_answer: NoAnswer | None = None
    paid: Literal["stop"] | None = None  # paid in full: nothing more, ever
    dispute: Literal["person"] | None = None  # collection stops; the account goes to a person
    hardship_callback: Literal["person"] | None = None  # a person calls back; no automated contact
    wrong_number: Literal["stop_number"] | None = None  # that number is never contacted again
    opt_out: Literal["stop_channel"] | None = None  # the channel opted out of stops


class Segment(_Model):
    name: Name
    # Column -> value (or any of a list): bucket, locale, currency, or an imported column by name.
    where: dict[Column, Values] = {}
    rules: Rules = Rules()  # the segment's own rules replace the strategy's rule of the same name
    steps: list[Step] = Field(min_length=1)


class Variant(_Model):
    """One arm: the file as it is (the first arm, the champion), with scripts and messages renamed,
    or another strategy file (relative to this one)."""

    name: Name
    weight: Annotated[StrictInt, Field(ge=1, le=MAX_WEIGHT)] = 1
    scripts: dict[Name, Name] = {}  # script the file names -> the script this arm runs instead
    messages: dict[Name, Name] = {}  # the same for template messages
    strategy: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None


class Arms(_Model):
    """Champion/challenger: accounts assigned at random, stratified (dialer/strategy/arms.py)."""

    stratify: list[Column] = Field(default=["bucket"], max_length=8)
    seed: Annotated[StrictInt, Field(ge=0, le=MAX_SEED)] | None = None  # absent: the campaign draws one
    variants: list[Variant] = Field(min_length=2, max_length=MAX_ARMS)


class Strategy(_Model):
    name: Name
    description: str = ""
    pack: Name  # the policy pack it is written for (dialer/policy/packs/<pack>.yaml)
    rules: Rules = Rules()
    segments: list[Segment] = Field(min_length=1)
    arms: Arms | None = None
    file: str = ""  # set by the loader
    # Each arm's strategy, resolved once by the loader (dialer.strategy.arms.resolve): not in the file.
    _variants: dict[str, Strategy] = PrivateAttr(default_factory=dict)

    def resolved(self, variants: Mapping[str, Strategy]) -> Strategy:
        """A copy holding each arm's strategy (the loader's, once: `arms.variant` reads them)."""
        copy = self.model_copy()
        copy._variants = dict(variants)
        return copy

    @property
    def variants(self) -> Mapping[str, Strategy]:
        return MappingProxyType(self._variants)

    def rules_for(self, segment: Segment) -> Rules:
        """The strategy's rules with the segment's own on top."""
        own = {name: getattr(segment.rules, name) for name in segment.rules.model_fields_set}
        return self.rules.model_copy(update=own)
