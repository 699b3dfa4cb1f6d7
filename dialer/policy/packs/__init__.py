"""Policy packs: a jurisdiction's contact rules as data (dialer/policy/packs/<name>.yaml).

A pack file is a YAML mapping, validated strictly (unknown keys are errors, times are quoted "HH:MM"
strings: unquoted 08:00 is a YAML 1.1 sexagesimal number). Every rule cites the text it comes from
in its `source` (required, shown with every decision):

    description: free text
    opt_out: {sms_stops: [sms], source: ...}         # a channel the consumer opted out of: never;
                                                     # sms_stops: what an SMS opt-out (STOP) stops
    window: {start: "08:00", end: "21:00", source: ...}   # local, end exclusive, no wrap
    inconvenient: {source: ...}                      # times the consumer said are inconvenient
    consent: {source: ...}                           # a time the consumer agreed lifts those two
    unknown_zone: {action: block, source: ...}       # or "region": the caller resolves the zones
    daily_cap: {limit: 3, counts: dialled, source: ...}  # or "connected": answered calls only
    consumer_only: {source: ...}                     # never anyone but the consumer
    seven_in_seven: {limit: 7, consent_exempt: true, source: ...}  # Reg F counting, per debt;
                                                     # counts_texts: true: texts count too (us-ma)
    conversation_bar: {days: 7, consent_exempt: true, source: ...}  # day 1 = the conversation's
    sms_daily_cap: {limit: 3, source: ...}           # texts per person per local day
    sms_weekly_cap: {limit: 7, source: ...}          # texts per person in 7 consecutive local days
    voicemail: {allowed: true, source: ...}          # may a message be left on an answering machine

`voicemail` is required: every pack says whether the dialer may leave the script's limited-content
message (12 CFR 1006.2(j)) on an answering machine; where `allowed: false` (cn) it hangs up. The
lender can only be stricter: a script without a `voicemail` message leaves none anywhere.

`sms_stops` (required) lists the channels a consumer's SMS opt-out stops; it always holds `sms`.
The SMS caps count every outbound text to the person that may have reached the carrier; where the
law sets no number the pack's `source` says the number is a DueCall default.

`consent_exempt`: a call under the consumer's direct prior consent given within the past 7 days
is left out (12 CFR 1006.14(b)(3)(i)); false where the pack's own text has no such exception.

Errors are `ConfigError`s naming the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from dialer.core.config import PACKS_DIR, pack_names
from dialer.core.errors import ConfigError
from dialer.core.vocab import RuleId
from dialer.policy.engine import Channel, LenderSettings, Pack, shorten

HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Count = Annotated[int, Field(ge=1)]
Source = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3)]


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    source: Source  # the text the rule comes from: required


class _OptOut(_Rule):
    sms_stops: list[Channel]

    @model_validator(mode="after")
    def _stops_sms(self) -> _OptOut:
        if "sms" not in self.sms_stops:
            raise ValueError(f"sms_stops {self.sms_stops} must include sms: an SMS opt-out stops texts")
        if len(set(self.sms_stops)) != len(self.sms_stops):
            raise ValueError(f"sms_stops {self.sms_stops} names a channel twice")
        return self


class _SmsCap(_Rule):
    limit: Count


class _Window(_Rule):
    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _ordered(self) -> _Window:
        if _clock(self.start) >= _clock(self.end):
            raise ValueError(f"start {self.start} must be before end {self.end} (no wrap past midnight)")
        return self


class _UnknownZone(_Rule):
    action: Literal["block", "region"]


class _DailyCap(_Rule):
    limit: Count
    counts: Literal["dialled", "connected"]


class _SevenInSeven(_Rule):
    limit: Count
    consent_exempt: bool
    counts_texts: bool = False  # texts count with the calls, and a text is checked (us-ma)


class _ConversationBar(_Rule):
    days: Count
    consent_exempt: bool


class _Voicemail(_Rule):
    allowed: bool


@dataclass(frozen=True, slots=True)
class VoicemailRule:
    """May the dialer leave a message on an answering machine, and the text that says so."""

    allowed: bool
    source: str


class _PackFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    description: str = ""
    opt_out: _OptOut
    window: _Window
    inconvenient: _Rule
    consent: _Rule
    unknown_zone: _UnknownZone
    daily_cap: _DailyCap | None = None
    consumer_only: _Rule | None = None
    seven_in_seven: _SevenInSeven | None = None
    conversation_bar: _ConversationBar | None = None
    sms_daily_cap: _SmsCap | None = None
    sms_weekly_cap: _SmsCap | None = None
    voicemail: _Voicemail

    def sources(self) -> tuple[tuple[RuleId, str], ...]:
        """Engine rule id -> citation."""
        rules: dict[RuleId, _Rule | None] = {
            RuleId.OPT_OUT: self.opt_out,
            RuleId.WINDOW: self.window,
            RuleId.INCONVENIENT: self.inconvenient,
            RuleId.CONSENT: self.consent,
            RuleId.ZONE_UNKNOWN: self.unknown_zone,
            RuleId.DAILY_CAP: self.daily_cap,
            RuleId.PERSON: self.consumer_only,
            RuleId.SEVEN_IN_SEVEN: self.seven_in_seven,
            RuleId.CONVERSATION: self.conversation_bar,
            RuleId.SMS_DAILY_CAP: self.sms_daily_cap,
            RuleId.SMS_WEEKLY_CAP: self.sms_weekly_cap,
        }
        return tuple((rule, r.source) for rule, r in rules.items() if r is not None)


def load_pack(name: str, lender: LenderSettings | None = None, directory: Path = PACKS_DIR) -> Pack:
    """The pack `name` (dialer/policy/packs/<name>.yaml) with the lender's stricter settings on top."""
    known = pack_names(directory)
    if name not in known:  # never a path built from an arbitrary name (too long, '..')
        raise ConfigError(f"unknown policy pack {shorten(name)} (known: {', '.join(known)})")
    path = directory / f"{name}.yaml"
    return load_pack_file(path, lender)


def load_pack_file(path: Path, lender: LenderSettings | None = None) -> Pack:
    return _pack(path.stem, _read(path), lender if lender is not None else LenderSettings())


def load_voicemail_rule(name: str, directory: Path = PACKS_DIR) -> VoicemailRule:
    """The pack `name`'s answering-machine rule (validated with the whole pack)."""
    known = pack_names(directory)
    if name not in known:
        raise ConfigError(f"unknown policy pack {shorten(name)} (known: {', '.join(known)})")
    return voicemail_rule_file(directory / f"{name}.yaml")


def voicemail_rule_file(path: Path) -> VoicemailRule:
    rule = _read(path).voicemail
    return VoicemailRule(rule.allowed, rule.source)


def _read(path: Path) -> _PackFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a policy pack is a mapping of fields, got {type(raw).__name__}")
    try:
        model = _PackFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or '(top)'}: {err['msg']}"
            + ("" if err["type"] == "missing" else f" (got {err['input']!r})")
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc
    return model


def _pack(name: str, m: _PackFile, lender: LenderSettings) -> Pack:
    return Pack(
        name=name,
        window_start=_clock(m.window.start),
        window_end=_clock(m.window.end),
        max_voice_per_day=m.daily_cap.limit if m.daily_cap else None,
        daily_cap_counts=m.daily_cap.counts if m.daily_cap else "dialled",
        consumer_only=m.consumer_only is not None,
        calls_per_7_days=m.seven_in_seven.limit if m.seven_in_seven else None,
        seven_consent_exempt=bool(m.seven_in_seven and m.seven_in_seven.consent_exempt),
        seven_counts_texts=bool(m.seven_in_seven and m.seven_in_seven.counts_texts),
        conversation_bar_days=m.conversation_bar.days if m.conversation_bar else None,
        bar_consent_exempt=bool(m.conversation_bar and m.conversation_bar.consent_exempt),
        unknown_zone=m.unknown_zone.action,
        max_sms_per_day=m.sms_daily_cap.limit if m.sms_daily_cap else None,
        max_sms_per_week=m.sms_weekly_cap.limit if m.sms_weekly_cap else None,
        sms_opt_out_stops=tuple(m.opt_out.sms_stops),
        sources=m.sources(),
        lender=lender,
    )
