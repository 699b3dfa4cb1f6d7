"""Policy flags: facts about an attempt that auditors filter calls by.

A flag is a short word stored per attempt (table attempt_flags) and also kept in
the audit chain with the event that raised it.
"""

from __future__ import annotations

import re

from dialer.core.models import Account, CallResult, Decision, Disposition

_CALL_N_OF_M = re.compile(r"call (\d+) of (\d+)")

# What each flag means, for the audit page's filter and the docs.
FLAGS = {
    "consent": "called under the consumer's consent, outside the usual window",
    "prior-consent": "under the consumer's direct prior consent given within 7 days: outside 7-in-7 "
    "and the conversation bar (12 CFR 1006.14(b)(3)(i))",
    "cap-reached": "this call used the last one allowed by a cap (daily or 7-in-7)",
    "multi-zone": "the number has several candidate time zones; every one was inside the window",
    "zone-derived": "the time zone was derived from the number, not stated by the lender",
    "opt-out": "the borrower opted out on this call",
    "wrong-party": "the person who answered was not the borrower",
    "dispute": "the borrower disputed the debt",
    "outcome-lost": "the call's result was lost (crash or Asterisk restart); the call still counted",
    "reconciled": "the result was recovered after a restart",
}


def decided_flags(account: Account, decision: Decision) -> list[str]:
    flags = set()
    for reason in decision.reasons:
        if reason.rule in ("consent", "prior-consent"):
            flags.add(reason.rule)
        match = _CALL_N_OF_M.search(reason.detail)
        if match and match.group(1) == match.group(2):
            flags.add("cap-reached")
    if len(account.time_zones) > 1:
        flags.add("multi-zone")
    if account.tz_derived:
        flags.add("zone-derived")
    return sorted(flags)


def ended_flags(result: CallResult) -> list[str]:
    flags = set()
    if result.ivr is not None:
        if result.ivr.outcome == "opt_out":
            flags.add("opt-out")
        if result.ivr.outcome == "dispute":
            flags.add("dispute")
        if result.ivr.right_party is False or result.ivr.outcome == "wrong_number":
            flags.add("wrong-party")
    if result.disposition is Disposition.UNKNOWN:
        flags.add("outcome-lost")
    if "reconciled" in result.note or "adopted" in result.note:
        flags.add("reconciled")
    return sorted(flags)


# The rules the contact-policy engine (and the dialer) can refuse a contact for: the audit
# page's "not called" filter.
BLOCKING_RULES = (
    "window",
    "inconvenient",
    "daily-cap",
    "7-in-7",
    "conversation",
    "min-gap",
    "holiday",
    "quiet-day",
    "opt-out",
    "person",
    "debts",
    "zone-unknown",
    "zone-invalid",
    "prompts",
)
