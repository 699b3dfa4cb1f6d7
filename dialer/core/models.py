"""Records and the enums whose values are what the store holds."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, time

from dialer.core.vocab import CampaignState, RuleId


class Disposition(enum.StrEnum):
    """How one call attempt ended, as far as the network is concerned."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # congestion, unreachable, not in service
    MACHINE = "machine"  # answering machine (only when AMD is on)
    HUNG_UP_EARLY = "hung_up_early"  # answered, then hung up before the first prompt ended
    # Answered, then ended by our side before the script did: the dialer died or lost the FastAGI
    # session, Asterisk stopped or restarted, or the Originate timed out as the borrower answered.
    # Never the borrower's doing; counted; the note says who cut it.
    CUT = "cut"
    UNKNOWN = "unknown"  # the call's outcome was lost (crash, Asterisk restart): still counted
    # Asterisk refused the Originate (Response: Error): no call was placed. Kept for the audit
    # trail, never counted: not in the contact history, the account's attempt number given back.
    NOT_PLACED = "not_placed"


# A person picked up: answered, hung up during the first prompt, or cut by our side after the
# answer (a machine is no person). The strategy's no-answer streak and the reports' contacts.
PERSON_ANSWERED = frozenset({Disposition.ANSWERED, Disposition.HUNG_UP_EARLY, Disposition.CUT})


class AttemptState(enum.StrEnum):
    """An attempt row: open until its call's result is stored (calls.py has the call's states)."""

    DECIDED = "decided"  # written and counted before the Originate is sent
    ENDED = "ended"


class TargetState(enum.StrEnum):
    """An account's state inside one campaign."""

    PENDING = "pending"  # waiting for next_at
    IN_FLIGHT = "in_flight"  # an attempt is open
    DONE = "done"  # reached (answered) or closed by a final outcome
    EXHAUSTED = "exhausted"  # retries used up
    OPTED_OUT = "opted_out"


@dataclass(frozen=True, slots=True)
class Account:
    pk: int
    account_id: str
    debt_id: str
    name: str
    phone_e164: str
    time_zones: tuple[str, ...]
    tz_derived: bool
    amount_minor: int
    currency: str
    due_date: date
    language: str


@dataclass(frozen=True, slots=True)
class Campaign:
    id: int
    name: str
    created_at: datetime
    strategy_file: str = ""  # "": the campaign calls every account until settled (retry rules)
    strategy_sha256: str = ""
    seed: int | None = None  # the champion/challenger arms' seed
    state: CampaignState = CampaignState.NEW  # as read; the dialer reads it again as it runs

    @property
    def steered(self) -> bool:
        """A contact strategy decides each account's next contact (docs/strategy.md)."""
        return bool(self.strategy_file)


@dataclass(frozen=True, slots=True)
class Target:
    """One account due (or not yet) for a call in a campaign."""

    campaign_id: int
    account: Account
    attempts: int
    next_at: datetime


@dataclass(frozen=True, slots=True)
class PastAttempt:
    """What the policy gate needs to know about an earlier attempt."""

    attempt_id: int
    at: datetime
    campaign_id: int
    disposition: Disposition | None  # None while the call is open
    debt_id: str = ""  # the debt the call was about
    cause: str = ""  # the hangup cause (1: number not in service)
    outcome: str = ""  # what the borrower chose in the IVR ("" if nothing)
    channel: str = "voice"  # "sms": a text to the number (us-ma counts texts with calls)


@dataclass(frozen=True, slots=True)
class Preferences:
    """When the consumer said they may (consents) or may not (inconvenient) be called."""

    inconvenient: tuple[tuple[time, time], ...] = ()  # local, daily; may wrap midnight
    consents: tuple[tuple[datetime, datetime], ...] = ()
    # When each consent was given (same order; None or missing: not recorded). The store fills it
    # in; it decides whether calls under a consent are outside Reg F's 7-in-7 (1006.14(b)(3)(i)).
    consents_given: tuple[datetime | None, ...] = ()

    def given_at(self, index: int) -> datetime | None:
        return self.consents_given[index] if index < len(self.consents_given) else None


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a contact may (not) happen: `detail` is for people; facts are read from the fields."""

    rule: RuleId
    detail: str
    # A cap's count, where the rule has one and the call is allowed ("call N of M"): this call is
    # number `used` of `limit`. None where the rule counts nothing. The store keeps rule and detail.
    used: int | None = None
    limit: int | None = None

    @property
    def cap_reached(self) -> bool:
        """This call is the last one the cap allows."""
        return self.used is not None and self.used == self.limit


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reasons: tuple[Reason, ...] = ()
    next_allowed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    campaign_id: int
    account_pk: int
    phone_e164: str
    attempt_no: int
    decided_at: datetime
    recording_path: str
    account_id: str = ""  # the lender's id, for the audit trail


@dataclass(frozen=True, slots=True)
class CallResult:
    """Everything learned about one call, as stored when it ends."""

    disposition: Disposition
    ended_at: datetime
    answered_at: datetime | None = None
    dial_status: str = ""
    cause: str = ""
    ivr_stage: str = ""
    amd_status: str = ""
    digits: str = ""
    note: str = ""
    events: tuple[tuple[datetime, str, dict[str, str]], ...] = field(default=())
    ivr: IvrSummary | None = None
    # A previous run left the call open and this run finished it (from AstDB, or adopted live).
    recovered: bool = False


@dataclass(frozen=True, slots=True)
class IvrStep:
    at: datetime
    node: str
    kind: str  # prompt, key, speech, no_input, no_match, confirm, outcome
    detail: dict[str, object]


@dataclass(frozen=True, slots=True)
class IvrSummary:
    """What the borrower chose on an answered call (the IVR's result)."""

    script: str
    outcome: str  # an Outcome value; "" when the call was cut before the script chose one
    promised_date: date | None
    promised_amount_minor: int | None
    right_party: bool | None
    steps: tuple[IvrStep, ...]


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One valid borrower row."""

    account_id: str
    debt_id: str
    name: str
    phone_e164: str
    region: str
    time_zones: tuple[str, ...]
    tz_derived: bool
    amount_minor: int
    currency: str
    due_date: date
    language: str
    # The lender's own columns (name, value), in header order; empty cells are not kept.
    columns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A data row that cannot be imported.

    ``row_number`` is the 1-based line number in the file, counting the header
    as line 1; for a record spanning several lines, the line it starts on.
    ``raw`` is the row's fields re-serialised as one CSV record (no line end).
    """

    row_number: int
    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class TargetUpdate:
    """Where a target goes after an attempt ends."""

    state: TargetState
    next_at: datetime
    note: str = ""
    channel: str | None = "voice"  # the lane it waits in; None: the strategy decides again
