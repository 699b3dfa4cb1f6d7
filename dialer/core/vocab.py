"""Words shared by the dialer, the IVR and the audit page: defined once, here.

The values are what the store, the audit trail and `duecall policy check` hold and show: never
change one (an existing database and its hash chain keep them).
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """What an answered borrower chose in the IVR (a script's node `outcome`)."""

    PROMISE_TO_PAY = "promise_to_pay"
    PAID = "paid"
    DISPUTE = "dispute"
    HARDSHIP_CALLBACK = "hardship_callback"
    WRONG_NUMBER = "wrong_number"
    OPT_OUT = "opt_out"
    ACKNOWLEDGED = "acknowledged"  # heard the reminder, chose nothing in particular
    NO_RESPONSE = "no_response"
    # Paid in full by the time the right person answered: told so, never the amount (not a choice:
    # the IVR's balance check during the call decides it; docs/ivr.md).
    ALREADY_PAID = "already_paid"


# Outcomes on which the borrower took on a payment: the amount due is what they promised.
PAYMENT_OUTCOMES = frozenset({Outcome.PROMISE_TO_PAY, Outcome.PAID})


class RuleId(enum.StrEnum):
    """The contact-policy rules a decision's reasons name (docs/policy.md has what each checks)."""

    WINDOW = "window"
    INCONVENIENT = "inconvenient"
    DAILY_CAP = "daily-cap"
    SEVEN_IN_SEVEN = "7-in-7"
    SMS_DAILY_CAP = "sms-daily-cap"
    SMS_WEEKLY_CAP = "sms-weekly-cap"
    CONVERSATION = "conversation"
    MIN_GAP = "min-gap"
    HOLIDAY = "holiday"
    QUIET_DAY = "quiet-day"
    OPT_OUT = "opt-out"
    PERSON = "person"
    DEBTS = "debts"
    ZONE_UNKNOWN = "zone-unknown"
    ZONE_INVALID = "zone-invalid"
    PROMPTS = "prompts"  # the dialer could not render the account's prompts (not the engine's)
    # Informative only: they lift other rules, they never refuse a contact.
    CONSENT = "consent"
    PRIOR_CONSENT = "prior-consent"

    @property
    def blocking(self) -> bool:
        """Can a contact be refused for this rule?"""
        return self not in (RuleId.CONSENT, RuleId.PRIOR_CONSENT)


class Flag(enum.StrEnum):
    """Facts about an attempt that auditors filter calls by (table attempt_flags, and the trail)."""

    CONSENT = "consent"
    PRIOR_CONSENT = "prior-consent"
    CAP_REACHED = "cap-reached"
    MULTI_ZONE = "multi-zone"
    ZONE_DERIVED = "zone-derived"
    OPT_OUT = "opt-out"
    WRONG_PARTY = "wrong-party"
    DISPUTE = "dispute"
    OUTCOME_LOST = "outcome-lost"
    RECONCILED = "reconciled"
    VOICEMAIL_LEFT = "voicemail-left"


class MessageState(enum.StrEnum):
    """Where a text stands (table messages, and the trail's message.* events).

    queued -> submitted -> accepted -> delivered | failed | expired. `not_sent`: the gateway
    refused it or could not be reached, so it never left (a later decision may send another).
    `unknown`: the dialer stopped between writing the row and hearing the gateway's answer; it is
    counted as sent and never re-sent blindly (a delivery report may still settle it).
    """

    QUEUED = "queued"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    NOT_SENT = "not_sent"
    UNKNOWN = "unknown"

    @property
    def final(self) -> bool:
        return self in (
            MessageState.DELIVERED,
            MessageState.FAILED,
            MessageState.EXPIRED,
            MessageState.NOT_SENT,
        )

    @property
    def counted(self) -> bool:
        """Counted toward the SMS caps: everything that may have reached the carrier."""
        return self is not MessageState.NOT_SENT


class ReplyKind(enum.StrEnum):
    """What an inbound text was taken to be (table inbound_messages)."""

    OPT_OUT = "opt_out"  # a whole-message stop keyword: written at once, one confirmation sent
    ANSWER = "answer"  # a reply the last template asked for ("1" to confirm): an outcome
    FOR_PERSON = "for_person"  # anything else: kept and listed for a person


class PromiseState(enum.StrEnum):
    """Where a promise to pay stands (dialer/core/balance.py decides; docs/payments.md)."""

    PENDING = "pending"  # its date has not passed and it is not yet paid in full
    KEPT = "kept"  # paid in full by the end of the promised (local) day
    PARTIALLY_KEPT = "partially_kept"  # the day passed with some but not all of it paid
    BROKEN = "broken"  # the day passed with nothing paid toward it


class CampaignState(enum.StrEnum):
    """Whether a campaign makes new contacts (table campaigns; docs/campaigns.md).

    new -> running (start), running -> paused (pause), paused -> running (resume). While paused no
    call is claimed and no text is sent; calls and texts already under way finish.
    """

    NEW = "new"  # created, never started
    RUNNING = "running"
    PAUSED = "paused"
