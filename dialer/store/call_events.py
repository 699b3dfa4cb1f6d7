"""Typed audit events of a call: the policy's verdict, the call's own events, its IVR steps, its end.

See `dialer.store.events` for what a record is; docs/audit.md lists every kind with its fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dialer.core.dialplan import Event
from dialer.core.models import IvrStep
from dialer.store.events import ABSENT, RECORDS, Absent, Record

# The AMI and dialplan names a call's events arrive under, as the trail spells them.
_AUDIT_NAMES = {
    "OriginateResponse": "originate-response",
    Event.ANSWER: "answer",
    Event.DIAL: "dial-result",
    Event.IVR: "ivr-report",
}


def call_audit_kind(kind: str) -> str:
    """The audit trail's name for one of a call's events: what it means, not how it came."""
    return "call." + _AUDIT_NAMES.get(kind, kind)


@dataclass(frozen=True, slots=True)
class ContactBlocked(Record):
    KIND = "contact.blocked"
    phone: str
    reasons: list[dict[str, str]]  # [{"rule", "detail"}, ...]
    next_allowed_at: str | None  # None: nothing will ever allow it
    target_state: str


@dataclass(frozen=True, slots=True)
class AttemptDecided(Record):
    KIND = "attempt.decided"
    phone: str
    attempt_no: int
    debt_id: str
    reasons: list[dict[str, str]]
    flags: list[str]
    recording: str  # the recording's path, without its extension


# -- what the dialer saw of the call -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Originated(Record):
    KIND = "call.originate"


@dataclass(frozen=True, slots=True)
class OriginateRefused(Record):
    KIND = "call.originate-refused"
    message: str


@dataclass(frozen=True, slots=True)
class OriginateUncertain(Record):
    KIND = "call.originate-uncertain"
    error: str


@dataclass(frozen=True, slots=True)
class ReconciledDial(Record):
    KIND = "call.reconciled-dial"
    value: str  # the dial status Asterisk kept (AstDB) for a call the dialer lost


@dataclass(frozen=True, slots=True)
class ReconciledIvr(Record):
    KIND = "call.reconciled-ivr"
    value: str


@dataclass(frozen=True, slots=True)
class AmiCallEvent(Record):
    """An AMI event about the call (`call.originate-response`, `call.answer`, `call.dial-result`,
    `call.ivr-report`, or `call.<Event>`): its fields are Asterisk's, kept as they came."""

    KIND = "call.<AMI event>"
    name: str  # the AMI Event or UserEvent name
    headers: Mapping[str, str]  # every header but Privilege and ActionID

    def event_kind(self) -> str:
        return call_audit_kind(self.name)

    def data(self) -> dict[str, Any]:
        return dict(self.headers)


# The dialer's own events of a call: name -> (its one field, its record).
_OWN: dict[str, tuple[str, Callable[[str], Record]]] = {
    "originate-refused": ("message", OriginateRefused),
    "originate-uncertain": ("error", OriginateUncertain),
    "reconciled-dial": ("value", ReconciledDial),
    "reconciled-ivr": ("value", ReconciledIvr),
}


def call_event(kind: str, data: Mapping[str, str]) -> Record:
    """The record of one of a call's events (`CallResult.events`): the dialer's own, or an AMI one."""
    if kind == "originate" and not data:
        return Originated()
    name, own = _OWN.get(kind, ("", None))
    if own is not None and set(data) == {name}:
        return own(data[name])
    return AmiCallEvent(kind, data)


@dataclass(frozen=True, slots=True)
class CallOutcome(Record):
    KIND = "call.outcome"
    outcome: str
    script: str
    promised_date: str | None  # ISO date
    promised_amount_minor: int | None
    right_party: bool | None


@dataclass(frozen=True, slots=True)
class CallLateResult(Record):
    """What the dialer that placed a call knew of it, reaching the store after another dialer had
    closed the attempt (this one's lease ran out): kept in the trail, the attempt left as closed."""

    KIND = "call.late-result"
    disposition: str
    outcome: str
    digits: str
    note: str
    answered_at: str | None


@dataclass(frozen=True, slots=True)
class CallEnded(Record):
    KIND = "call.ended"
    disposition: str
    dial_status: str
    cause: str
    amd_status: str
    digits: str
    note: str
    counted: bool  # False: no call was placed (not_placed)
    answered_at: str | None
    next_state: str
    next_at: str
    flags: list[str]


# -- the IVR's steps ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IvrPrompt(Record):
    KIND = "ivr.prompt"
    node: str
    text: str


@dataclass(frozen=True, slots=True)
class IvrKey(Record):
    """A key pressed in a menu (`digit`, `barge_in`), or the digits typed at an input (`digits`)."""

    KIND = "ivr.key"
    node: str
    digit: str | Absent = ABSENT
    barge_in: bool | Absent = ABSENT
    digits: str | Absent = ABSENT


@dataclass(frozen=True, slots=True)
class IvrSpeech(Record):
    KIND = "ivr.speech"
    node: str
    transcript: str
    confidence: float
    phrase: str | Absent | None = ABSENT  # the menu phrase it matched; None: none


@dataclass(frozen=True, slots=True)
class IvrNoInput(Record):
    KIND = "ivr.no_input"
    node: str
    attempt: int
    digits: str | Absent = ABSENT  # at an input
    reason: str | Absent = ABSENT  # why no reply could be heard (recogniser crash, no model, VAD)


@dataclass(frozen=True, slots=True)
class IvrNoMatch(Record):
    KIND = "ivr.no_match"
    node: str
    attempt: int
    digits: str | Absent = ABSENT
    reason: str | Absent = ABSENT  # e.g. "not confirmed": a spoken answer the borrower did not confirm


@dataclass(frozen=True, slots=True)
class IvrConfirm(Record):
    """A spoken answer asked back: `heard` by voice, then `answer` (yes, no, none) `by` key or voice."""

    KIND = "ivr.confirm"
    node: str
    option: str
    heard: str
    answer: str
    by: str | Absent = ABSENT
    digit: str | Absent = ABSENT
    phrase: str | Absent | None = ABSENT


@dataclass(frozen=True, slots=True)
class IvrOutcome(Record):
    KIND = "ivr.outcome"
    node: str
    outcome: str
    via: str | Absent = ABSENT  # key, voice (a stop request), voice+key / voice+voice (confirmed)


IVR_RECORDS: dict[str, Callable[..., Record]] = {
    "ivr.prompt": IvrPrompt,
    "ivr.key": IvrKey,
    "ivr.speech": IvrSpeech,
    "ivr.no_input": IvrNoInput,
    "ivr.no_match": IvrNoMatch,
    "ivr.confirm": IvrConfirm,
    "ivr.outcome": IvrOutcome,
}


def ivr_event(step: IvrStep) -> Record:
    """The record of one IVR step. Raises KeyError for a step kind the IVR does not have and
    TypeError for a detail its record lacks."""
    return IVR_RECORDS[f"ivr.{step.kind}"](node=step.node, **step.detail)


ALL_RECORDS: tuple[type[Record], ...] = (
    *RECORDS,
    ContactBlocked,
    AttemptDecided,
    Originated,
    OriginateRefused,
    OriginateUncertain,
    ReconciledDial,
    ReconciledIvr,
    AmiCallEvent,
    CallOutcome,
    CallEnded,
    CallLateResult,
    IvrPrompt,
    IvrKey,
    IvrSpeech,
    IvrNoInput,
    IvrNoMatch,
    IvrConfirm,
    IvrOutcome,
)
