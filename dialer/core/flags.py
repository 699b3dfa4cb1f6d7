"""Policy flags: facts about an attempt that auditors filter calls by.

A flag is a short word stored per attempt (table attempt_flags) and also kept in
the audit chain with the event that raised it. Every flag comes from a structured
field (a reason's rule and cap count, the call's disposition, IVR outcome and
`recovered`), never from the English of a note or a reason's detail.
"""

from __future__ import annotations

from dialer.core.dialplan import Stage
from dialer.core.models import Account, CallResult, Decision, Disposition
from dialer.core.vocab import Flag, Outcome, RuleId

# What each flag means, for the audit page's filter and the docs.
FLAGS: dict[Flag, str] = {
    Flag.CONSENT: "called under the consumer's consent, outside the usual window",
    Flag.PRIOR_CONSENT: "under the consumer's direct prior consent given within 7 days: outside 7-in-7 "
    "and the conversation bar (12 CFR 1006.14(b)(3)(i))",
    Flag.CAP_REACHED: "this call used the last one allowed by a cap (daily or 7-in-7)",
    Flag.MULTI_ZONE: "the number has several candidate time zones; every one was inside the window",
    Flag.ZONE_DERIVED: "the time zone was derived from the number, not stated by the lender",
    Flag.OPT_OUT: "the borrower opted out on this call",
    Flag.WRONG_PARTY: "the person who answered was not the borrower",
    Flag.DISPUTE: "the borrower disputed the debt",
    Flag.OUTCOME_LOST: "the call's result was lost (crash or Asterisk restart); the call still counted",
    Flag.RECONCILED: "the result was recovered after a restart",
    Flag.VOICEMAIL_LEFT: "an answering machine answered and the pack's limited-content message "
    "(12 CFR 1006.2(j)) was played to its end",
}

# Reasons whose rule is itself a flag: the call went ahead under a consent.
_RULE_FLAGS = {RuleId.CONSENT: Flag.CONSENT, RuleId.PRIOR_CONSENT: Flag.PRIOR_CONSENT}


def decided_flags(account: Account, decision: Decision) -> list[str]:
    flags = set()
    for reason in decision.reasons:
        if reason.rule in _RULE_FLAGS:
            flags.add(_RULE_FLAGS[reason.rule])
        if reason.cap_reached:
            flags.add(Flag.CAP_REACHED)
    if len(account.time_zones) > 1:
        flags.add(Flag.MULTI_ZONE)
    if account.tz_derived:
        flags.add(Flag.ZONE_DERIVED)
    return sorted(flag.value for flag in flags)


def ended_flags(result: CallResult) -> list[str]:
    flags = set()
    if result.ivr is not None:
        outcome = result.ivr.outcome
        if outcome == Outcome.OPT_OUT:
            flags.add(Flag.OPT_OUT)
        if outcome == Outcome.DISPUTE:
            flags.add(Flag.DISPUTE)
        if result.ivr.right_party is False or outcome == Outcome.WRONG_NUMBER:
            flags.add(Flag.WRONG_PARTY)
    if result.disposition is Disposition.UNKNOWN:
        flags.add(Flag.OUTCOME_LOST)
    if result.recovered:
        flags.add(Flag.RECONCILED)
    if result.disposition is Disposition.MACHINE and result.ivr_stage == Stage.VOICEMAIL:
        flags.add(Flag.VOICEMAIL_LEFT)
    return sorted(flag.value for flag in flags)


# The rules the contact-policy engine (and the dialer) can refuse a contact for: the audit
# page's "not called" filter.
BLOCKING_RULES = tuple(rule for rule in RuleId if rule.blocking)
