"""Words shared by the dialer, the IVR and the audit page: defined once, here."""

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
