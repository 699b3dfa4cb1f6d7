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


# Outcomes on which the borrower took on a payment: the amount due is what they promised.
PAYMENT_OUTCOMES = frozenset({Outcome.PROMISE_TO_PAY, Outcome.PAID})


class RuleId(enum.StrEnum):
    """The contact-policy rules a decision's reasons name (docs/policy.md has what each checks)."""

    WINDOW = "window"
    INCONVENIENT = "inconvenient"
    DAILY_CAP = "daily-cap"
    SEVEN_IN_SEVEN = "7-in-7"
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
