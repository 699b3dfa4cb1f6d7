"""Typed audit events: one frozen record per event kind, each writing the chain's `kind` and `data`.

A record holds an event's own facts (its `data`); the chain's envelope (`chain.AuditEvent`) adds
when, who and which campaign, attempt and account it is about. `data()` gives exactly the JSON
object every version of DueCall has written for the kind: the chain of an existing database keeps
verifying, and a search over `data` finds old and new events alike. A field left `ABSENT` is not
written at all (some kinds have always omitted a key in some cases); None is written as null.

Every kind is listed, with its fields, in docs/audit.md (a test keeps the two equal). This module
holds the kinds outside a call; `dialer.store.call_events` those of a call and its IVR.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final


class _Absent(enum.Enum):
    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent.ABSENT
Absent = _Absent


@dataclass(frozen=True, slots=True)
class Record:
    """One event's facts. Subclasses set KIND and declare their fields: the keys of `data()`."""

    KIND: ClassVar[str] = ""

    def event_kind(self) -> str:
        """The chain's `kind` (a family of kinds, such as the AMI events of a call, computes it)."""
        return self.KIND

    def data(self) -> dict[str, Any]:
        found = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {name: value for name, value in found if value is not ABSENT}


# -- accounts -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportBatch(Record):
    KIND = "accounts.import_batch"
    import_id: int
    batch: int
    rows: int
    inserted: int
    updated: int
    rejected: int


@dataclass(frozen=True, slots=True)
class Imported(Record):
    KIND = "accounts.imported"
    import_id: int
    file: str
    rows: int
    inserted: int
    updated: int
    rejected: int


@dataclass(frozen=True, slots=True)
class ImportFailed(Record):
    KIND = "accounts.import_failed"
    import_id: int
    file: str
    rows: int
    inserted: int
    updated: int
    rejected: int
    reason: str


# -- payments -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentImportBatch(Record):
    KIND = "payments.import_batch"
    import_id: int
    batch: int
    rows: int
    inserted: int
    duplicates: int  # already imported with the same values: not counted again
    rejected: int
    amounts: dict[str, int]  # currency -> minor units of the payments inserted


@dataclass(frozen=True, slots=True)
class PaymentsImported(Record):
    KIND = "payments.imported"
    import_id: int
    file: str
    rows: int
    inserted: int
    duplicates: int
    rejected: int


@dataclass(frozen=True, slots=True)
class PaymentImportFailed(Record):
    KIND = "payments.import_failed"
    import_id: int
    file: str
    rows: int
    inserted: int
    duplicates: int
    rejected: int
    reason: str


# -- what consumers said --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreferencesSet(Record):
    KIND = "preferences.set"
    phone: str
    inconvenient: list[list[str]]  # [["HH:MM", "HH:MM"], ...], local
    consents: list[list[str]]  # [[from, to, given], ...], UTC as stored


@dataclass(frozen=True, slots=True)
class OptedOut(Record):
    KIND = "consumer.opted_out"
    phone: str
    channel: str
    source: str
    new: bool  # False: already opted out on this channel


@dataclass(frozen=True, slots=True)
class CampaignCreated(Record):
    KIND = "campaign.created"
    name: str


@dataclass(frozen=True, slots=True)
class CampaignStrategy(Record):
    """The strategy a campaign runs: given at creation, and again whenever its file's digest changed."""

    KIND = "campaign.strategy"
    name: str
    file: str
    sha256: str
    seed: int | None  # the champion/challenger arms' seed


@dataclass(frozen=True, slots=True)
class CampaignStarted(Record):
    """A new campaign starts making contacts (`duecall campaign start`, or its first `duecall run`)."""

    KIND = "campaign.started"
    name: str


@dataclass(frozen=True, slots=True)
class CampaignPaused(Record):
    """No new call or text until it is resumed; those under way finish."""

    KIND = "campaign.paused"
    name: str


@dataclass(frozen=True, slots=True)
class CampaignResumed(Record):
    KIND = "campaign.resumed"
    name: str


@dataclass(frozen=True, slots=True)
class TargetStopped(Record):
    """The strategy stopped contacting an account for good (paid, a dispute, a wrong number ...)."""

    KIND = "target.stopped"
    reason: str
    to_person: bool  # collection stopped and the account goes to a person


@dataclass(frozen=True, slots=True)
class ArmAssigned(Record):
    """An account's champion/challenger arm in a campaign: drawn once, never changed."""

    KIND = "arm.assigned"
    arm: str
    stratum: list[str]  # the account's values of the arms' stratify columns, in that order
    seed: int


# -- texts --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageRefused(Record):
    KIND = "message.refused"
    phone: str
    batch: str
    template: str
    reasons: list[dict[str, str]]  # [{"rule", "detail"}, ...]
    next_allowed_at: str | None  # None: nothing will ever allow it


@dataclass(frozen=True, slots=True)
class MessageQueued(Record):
    """The text's row is written (and counted) before the gateway is asked."""

    KIND = "message.queued"
    message_id: int
    phone: str
    batch: str
    purpose: str  # reminder or confirmation (the one text after an opt-out)
    template: str
    text: str
    coding: str
    segments: int
    gateway: str
    reasons: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class MessageStateChanged(Record):
    KIND = "message.state"
    message_id: int
    state: str  # a MessageState
    previous: str
    reason: str  # the gateway's words
    gateway_id: str
    source: str  # submit (the gateway's answer), report (a delivery report) or reconcile


@dataclass(frozen=True, slots=True)
class MessageReceived(Record):
    KIND = "message.inbound"
    inbound_id: int
    phone: str
    to: str
    text: str
    kind: str  # a ReplyKind
    outcome: str | None
    keyword: str
    answers: int | None  # the id of the last text sent to the number


# -- recordings -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordingStored(Record):
    KIND = "recording.stored"
    path: str
    kind: str  # call (the whole call) or reply (one utterance)
    sha256: str
    bytes: int
    duration_ms: int
    complete: bool  # False: sealed at the deadline, its header never showed it closed


@dataclass(frozen=True, slots=True)
class RecordingMissing(Record):
    KIND = "recording.missing"
    path: str


@dataclass(frozen=True, slots=True)
class RecordingPurged(Record):
    KIND = "recording.purged"
    path: str
    sha256: str
    reason: str


# -- auditors and the configuration -----------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditorCreated(Record):
    KIND = "auditor.created"
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class AuditorDisabled(Record):
    KIND = "auditor.disabled"
    name: str


@dataclass(frozen=True, slots=True)
class AuditorPasswordChanged(Record):
    KIND = "auditor.password_changed"
    name: str


@dataclass(frozen=True, slots=True)
class ConfigChanged(Record):
    KIND = "config.changed"
    path: str  # what changed: "settings", "policy pack <name>", "ivr script <path>"
    sha256: str
    previous: str | None
    text: str


# -- the auditors' web page -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedIn(Record):
    KIND = "audit.sign_in"
    name: str
    role: str
    client: str
    session: str


@dataclass(frozen=True, slots=True)
class SignInFailed(Record):
    KIND = "audit.sign_in_failed"
    name: str | None  # None when no user has the name (it may be a mistyped password)
    known: bool
    locked: bool
    client: str


@dataclass(frozen=True, slots=True)
class SignedOut(Record):
    KIND = "audit.sign_out"
    session: str


@dataclass(frozen=True, slots=True)
class Revealed(Record):
    KIND = "audit.reveal"
    on: bool
    page: str


@dataclass(frozen=True, slots=True)
class Viewed(Record):
    """A page an auditor saw: lists carry their filters and page number, a recording its range."""

    KIND = "audit.view"
    page: str
    filters: dict[str, str] | Absent = ABSENT
    n: int | Absent = ABSENT
    revealed: bool | Absent = ABSENT
    recording: int | Absent = ABSENT
    range: str | Absent | None = ABSENT
    session: str | Absent = ABSENT


@dataclass(frozen=True, slots=True)
class Exported(Record):
    KIND = "audit.export"
    what: str  # calls.csv or evidence.zip
    revealed: bool
    filters: dict[str, str] | Absent = ABSENT
    sha256: str | Absent = ABSENT
    bytes: int | Absent = ABSENT


@dataclass(frozen=True, slots=True)
class Verified(Record):
    KIND = "audit.verify"
    ok: bool
    events: int
    head_seq: int
    head_hash: str
    broken: str | None
    recording_problems: int
    anchor_problems: int


WEB_RECORDS: dict[str, type[Record]] = {
    r.KIND: r for r in (SignedIn, SignInFailed, SignedOut, Revealed, Viewed, Exported, Verified)
}


def web_event(kind: str, data: dict[str, Any]) -> Record:
    """The record of what the web page did (`kind`, `data` as its handlers give them).

    Raises KeyError for a kind the page does not have and TypeError for a field its record lacks.
    """
    return WEB_RECORDS[kind](**data)


RECORDS: tuple[type[Record], ...] = (
    ImportBatch,
    Imported,
    ImportFailed,
    PaymentImportBatch,
    PaymentsImported,
    PaymentImportFailed,
    PreferencesSet,
    OptedOut,
    CampaignCreated,
    CampaignStrategy,
    CampaignStarted,
    CampaignPaused,
    CampaignResumed,
    TargetStopped,
    ArmAssigned,
    MessageRefused,
    MessageQueued,
    MessageStateChanged,
    MessageReceived,
    RecordingStored,
    RecordingMissing,
    RecordingPurged,
    AuditorCreated,
    AuditorDisabled,
    AuditorPasswordChanged,
    ConfigChanged,
    *WEB_RECORDS.values(),
)
