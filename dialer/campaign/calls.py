"""One call's lifecycle, as an explicit state machine, and how it is classified.

The dialplan reports each call through AMI events (see docs/number-plan.md):
`DueCallAnswer` when the borrower picks up, `DueCallIvr` when the answered
call ends (stage reached, AMD verdict, digits), and `DueCallDial` when the
originated channel hangs up, answered or not (a status read from the hangup
cause, and the cause itself), from its hangup handler. The same facts are
written to Asterisk's AstDB, so a call whose events were missed (dialer crash,
AMI reconnect) is reconciled from there.

    DECIDED --originate sent--> ORIGINATING --answer--> ANSWERED
       |                            |                      |
       +----------------------------+----------------------+--> ENDED

The call is complete when the dial result is known and, for an answered call,
the IVR result too. Events in a state that can't take them are errors.

An answered call is `answered` only when its IVR report says the script ran: an answered call
that our side ended early (the dialer's FastAGI session gone, Asterisk stopping or restarting,
an Originate timeout as the borrower answered) is `cut`, and the note says who cut it.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime

from dialer.asterisk.ami_protocol import Message
from dialer.core.dialplan import EARLY_STAGES, Event, Header, Stage
from dialer.core.models import Attempt, CallResult, Disposition

log = logging.getLogger(__name__)


class CallState(enum.StrEnum):
    DECIDED = "decided"
    ORIGINATING = "originating"
    ANSWERED = "answered"
    ENDED = "ended"


_ALLOWED = {
    CallState.DECIDED: {CallState.ORIGINATING, CallState.ENDED},
    CallState.ORIGINATING: {CallState.ANSWERED, CallState.ENDED},
    CallState.ANSWERED: {CallState.ENDED},
    CallState.ENDED: set(),
}

_DIAL_STATUS = {
    "ANSWER": Disposition.ANSWERED,
    "NOANSWER": Disposition.NO_ANSWER,
    "CANCEL": Disposition.NO_ANSWER,  # our ring timeout ended it
    "BUSY": Disposition.BUSY,
    "CONGESTION": Disposition.FAILED,
    "CHANUNAVAIL": Disposition.FAILED,
}
# OriginateResponse Reason codes (AST_CONTROL_*), used only when no dial result arrived.
# 4 (answered) is here for completeness: with no IVR report it is a cut call (see classify).
_ORIGINATE_REASON = {
    "1": Disposition.FAILED,
    "3": Disposition.NO_ANSWER,
    "4": Disposition.ANSWERED,
    "5": Disposition.BUSY,
    "8": Disposition.FAILED,
}
# What AGISTATUS says when the dialplan cut the call (extensions.conf, [duecall-ivr]).
_AGI_STATUS = {
    "SUCCESS": "the dialer closed the FastAGI session before the script ended",
    "FAILURE": "no dialer answered on the FastAGI port",
    "NOTFOUND": "the FastAGI script was not found",
    "": "the IVR failed mid-call (its error is in the dialer's log)",  # set by ivr.agi.apologise
}


class IllegalTransition(Exception):
    pass


@dataclass(frozen=True, slots=True)
class IvrReport:
    stage: str
    amd: str
    amd_cause: str
    digits: str
    outcome: str = ""  # DUECALL_OUTCOME: what the borrower chose, when the script got that far
    agi_status: str = ""  # AGISTATUS when the dialplan cut the call ("" otherwise)


@dataclass(frozen=True, slots=True)
class DialReport:
    status: str
    cause: str


def classify(
    dial: DialReport | None,
    ivr: IvrReport | None,
    originate_reason: str,
    *,
    answered: bool = False,
    asterisk_stopped: bool = False,
) -> Disposition:
    """The call's disposition from what the dialplan and Asterisk reported.

    `answered`: the dialplan said the borrower answered (DueCallAnswer). `asterisk_stopped`:
    Asterisk was shutting down when the call ended, so it, not the borrower, ended the call.
    An answered call is `answered` only with an IVR report that says so: answered with no IVR
    report means our side lost the call (`cut`), never a normal ending.
    """
    if ivr is not None:
        return _classify_ivr(ivr, asterisk_stopped)
    if dial is not None:
        if dial.status == "ANSWER" or (asterisk_stopped and dial.status in ("CANCEL", "")):
            return Disposition.CUT
        return _DIAL_STATUS.get(dial.status, Disposition.FAILED)
    if answered or originate_reason == "4":
        return Disposition.CUT
    if originate_reason:
        return _ORIGINATE_REASON.get(originate_reason, Disposition.FAILED)
    return Disposition.UNKNOWN


def _classify_ivr(ivr: IvrReport, asterisk_stopped: bool) -> Disposition:
    if ivr.stage in (Stage.MACHINE, Stage.VOICEMAIL) or ivr.amd == "MACHINE":
        return Disposition.MACHINE
    if ivr.stage == Stage.DONE:
        return Disposition.ANSWERED
    if ivr.stage == Stage.CUT or asterisk_stopped:
        return Disposition.CUT
    if ivr.stage in EARLY_STAGES:
        return Disposition.HUNG_UP_EARLY
    return Disposition.ANSWERED  # `menu`: hung up after hearing who is calling


def cut_note(
    dial: DialReport | None, ivr: IvrReport | None, originate_reason: str, asterisk_stopped: bool
) -> str:
    """Who cut a `cut` call, for the attempt's note."""
    if ivr is not None and ivr.stage == Stage.CUT:
        why = _AGI_STATUS.get(ivr.agi_status, f"AGISTATUS {ivr.agi_status or 'empty'}")
        return f"cut by the dialer: {why}; the borrower heard an apology"
    if asterisk_stopped:
        return "cut by Asterisk: it was shutting down"
    if ivr is None and dial is not None and dial.status == "ANSWER":
        return "cut: answered, but the IVR side never ran (the Originate timed out as the borrower answered)"
    return "cut by Asterisk: answered, then Asterisk kept no trace of the call (it stopped or restarted)"


def parse_dial(value: str) -> DialReport:
    """AstDB form written by the dialplan: 'DIALSTATUS,HANGUPCAUSE'."""
    status, _, cause = value.partition(",")
    return DialReport(status.strip(), cause.strip())


def parse_ivr(value: str) -> IvrReport:
    """AstDB form: 'stage,AMDSTATUS,digits,outcome,AGISTATUS' (older entries have fewer fields)."""
    stage, amd, digits, outcome, agi_status = [p.strip() for p in [*value.split(","), "", "", "", ""][:5]]
    return IvrReport(stage, amd, "", digits, outcome, agi_status)


class Call:
    """What is known about one attempt's call. Pure: the engine feeds it events."""

    def __init__(self, attempt: Attempt, key: str) -> None:
        self.attempt = attempt
        self.key = key
        self.state = CallState.DECIDED
        self.dial: DialReport | None = None
        self.ivr: IvrReport | None = None
        self.originate_reason = ""
        self.originate_failed = False
        self.not_placed = False  # Asterisk refused the Originate: no call exists
        self.asterisk_stopped = False  # Asterisk was shutting down when the call ended
        self.recovered = False  # a previous run left it open; this run finished (or adopted) it
        self.answered_at: datetime | None = None
        self.events: list[tuple[datetime, str, dict[str, str]]] = []
        self.notes: list[str] = []

    def _move(self, new: CallState) -> None:
        if new == self.state:
            return
        if new not in _ALLOWED[self.state]:
            raise IllegalTransition(f"call {self.key}: {self.state} -> {new}")
        log.debug("call %s: %s -> %s", self.key, self.state, new)
        self.state = new

    def record(self, at: datetime, kind: str, data: dict[str, str]) -> None:
        self.events.append((at, kind, data))

    def originate_sent(self, at: datetime) -> None:
        self._move(CallState.ORIGINATING)
        self.record(at, "originate", {})

    def on_message(self, message: Message, at: datetime) -> None:
        """Apply one AMI event about this call."""
        if self.state is CallState.DECIDED:
            self._move(CallState.ORIGINATING)  # adopted after a restart: it was sent
        kind = message.get("UserEvent") or message.get("Event", "")
        data = {k: v for k, v in message.items() if k not in ("Privilege", "ActionID")}
        self.record(at, kind, data)
        if kind == "OriginateResponse":
            self.originate_reason = message.get("Reason", "")
            self.originate_failed = message.get("Response") != "Success"
        elif kind == Event.ANSWER:
            self.answered(at)
        elif kind == Event.IVR:
            self.ivr = IvrReport(
                message.get(Header.STAGE, ""),
                message.get(Header.AMD, ""),
                message.get(Header.AMD_CAUSE, ""),
                message.get(Header.DIGITS, ""),
                message.get(Header.OUTCOME, ""),
                message.get(Header.AGI_STATUS, ""),
            )
            self.answered(at)
        elif kind == Event.DIAL:
            self.dial = DialReport(message.get(Header.DIAL_STATUS, ""), message.get(Header.CAUSE, ""))

    def answered(self, at: datetime) -> None:
        if self.state is not CallState.ANSWERED:
            self._move(CallState.ANSWERED)
            self.answered_at = at

    def apply_astdb(self, dial: str | None, ivr: str | None, at: datetime) -> None:
        """Facts read back from AstDB when events were missed."""
        if self.state is CallState.DECIDED:
            self._move(CallState.ORIGINATING)
        if dial is not None and self.dial is None:
            self.dial = parse_dial(dial)
            self.record(at, "reconciled-dial", {"value": dial})
        if ivr is not None and self.ivr is None:
            self.ivr = parse_ivr(ivr)
            self.record(at, "reconciled-ivr", {"value": ivr})
            self.answered(at)

    @property
    def complete(self) -> bool:
        if self.dial is None:
            return False
        return self.dial.status != "ANSWER" or self.ivr is not None

    @property
    def settling(self) -> bool:
        """Partly ended: the remaining event should follow within seconds, or never."""
        return self.dial is not None or self.originate_failed

    def disposition(self) -> Disposition:
        if self.not_placed:
            return Disposition.NOT_PLACED
        return classify(
            self.dial,
            self.ivr,
            self.originate_reason,
            answered=self.answered_at is not None,
            asterisk_stopped=self.asterisk_stopped,
        )

    def finish(self, at: datetime, note: str = "") -> CallResult:
        self._move(CallState.ENDED)
        if note:
            self.notes.append(note)
        disposition = self.disposition()
        if disposition is Disposition.CUT:
            self.notes.append(cut_note(self.dial, self.ivr, self.originate_reason, self.asterisk_stopped))
        return CallResult(
            disposition=disposition,
            ended_at=at,
            answered_at=self.answered_at,
            dial_status=self.dial.status if self.dial else "",
            cause=self.dial.cause if self.dial else "",
            ivr_stage=self.ivr.stage if self.ivr else "",
            amd_status=self.ivr.amd if self.ivr else "",
            digits=self.ivr.digits if self.ivr else "",
            note="; ".join(self.notes),
            events=tuple(self.events),
            recovered=self.recovered,
        )
