"""The policy gate: the dialer's door to the contact-policy engine.

Store history in, engine verdict out.

Every call the scheduler considers goes through here, inside the transaction that writes the
attempt, so the history the engine sees is the history the attempt joins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Protocol

import phonenumbers

from dialer.core.config import PolicySettings
from dialer.core.errors import ConfigError
from dialer.core.messages import PastMessage
from dialer.core.models import Account, Decision, Disposition, PastAttempt, Preferences, Reason
from dialer.core.vocab import MessageState
from dialer.core.vocab import Outcome as IvrOutcome
from dialer.policy.engine import (
    CONSUMER,
    Consent,
    Consumer,
    Contact,
    Finding,
    LenderSettings,
    Outcome,
    Pack,
    Proposal,
    TimeRange,
    decide,
    history_window,
)
from dialer.policy.packs import load_pack

NO_PREFERENCES = Preferences()


class PolicyGate(Protocol):
    """What the scheduler asks before every call (the store calls it inside the claim transaction)."""

    @property
    def history_window(self) -> timedelta:
        """How much contact history `decide` needs."""
        ...

    def decide(
        self,
        account: Account,
        at: datetime,
        history: Sequence[PastAttempt],
        opted_out: bool,
        prefs: Preferences = NO_PREFERENCES,
    ) -> Decision: ...


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# IVR outcomes that mean the right person heard about the debt: a conversation (Reg F 1006.14(b)(2)).
_CONVERSATIONS = frozenset(
    {
        IvrOutcome.PROMISE_TO_PAY,
        IvrOutcome.PAID,
        IvrOutcome.DISPUTE,
        IvrOutcome.HARDSHIP_CALLBACK,
        IvrOutcome.OPT_OUT,
        IvrOutcome.ACKNOWLEDGED,
        # The right person was confirmed and told the account is paid in full: a conversation about
        # the debt on the strict reading, and counting it can only mean fewer calls, never more.
        IvrOutcome.ALREADY_PAID,
    }
)


_OUTCOMES: dict[Disposition, Outcome] = {
    Disposition.ANSWERED: "answered",
    Disposition.BUSY: "busy",
    Disposition.MACHINE: "voicemail",
    Disposition.HUNG_UP_EARLY: "dropped",  # answered, then ended early: connected
    Disposition.CUT: "dropped",
    Disposition.NO_ANSWER: "no_answer",
}


def outcome_of(past: PastAttempt) -> Outcome:
    """The engine's view of how an earlier call ended; an open or lost call counts as unanswered."""
    d = past.disposition
    if d is Disposition.FAILED:
        return "not_in_service" if past.cause == "1" else "failed"
    if type(d) is not Disposition:  # None (still open), or not a Disposition at all
        return "unknown"
    return _OUTCOMES.get(d, "unknown")  # unknown: still open, or lost: counted as connected and unanswered


def contact_of(past: PastAttempt) -> Contact:
    if past.channel == "sms":  # a text in a call's history: counted where the pack says (us-ma)
        return text_contact_of(PastMessage(past.attempt_id, past.at, MessageState.UNKNOWN))
    debt = past.debt_id
    # Positional: the gate converts every row of every decision's history.
    return Contact(
        str(past.attempt_id),
        past.at,
        "voice",
        "outbound",
        CONSUMER,
        (debt,) if debt else (),
        outcome_of(past),
        past.outcome in _CONVERSATIONS,
    )


def text_contact_of(past: PastMessage) -> Contact:
    """An earlier text as the engine counts it (every text that may have reached the carrier)."""
    return Contact(
        ref=f"m{past.message_id}",
        at=past.at,
        channel="sms",
        direction="outbound",
        person=CONSUMER,
        debts=(),
        outcome="answered" if past.state is MessageState.DELIVERED else "unknown",
    )


def pack_from_settings(p: PolicySettings) -> Pack:
    """The configured pack with the lender's stricter settings on top."""
    lender = LenderSettings(
        max_voice_per_day=p.max_attempts_per_day,
        min_gap_unanswered_minutes=int(p.min_gap_unanswered.total_seconds() // 60)
        if p.min_gap_unanswered
        else None,
        quiet_weekdays=tuple(_WEEKDAYS.index(d) for d in p.quiet_weekdays),
        max_sms_per_day=p.max_sms_per_day,
        max_sms_per_week=p.max_sms_per_week,
        holidays_country=p.holidays_country,
        holidays_subdivision=p.holidays_subdivision,
    )
    pack = load_pack(p.pack, lender)
    start = max(pack.window_start, p.window_start) if p.window_start else pack.window_start
    end = min(pack.window_end, p.window_end) if p.window_end else pack.window_end
    if start >= end:
        raise ConfigError(f"policy: window {start:%H:%M}-{end:%H:%M} is empty")
    stops = pack.sms_opt_out_stops + tuple(c for c in p.sms_opt_out_stops if c not in pack.sms_opt_out_stops)
    return replace(pack, window_start=start, window_end=end, sms_opt_out_stops=stops)


@cache
def region_zones(region: str) -> tuple[str, ...]:
    """Every zone of a country (tzdata's zone.tab): the plausible zones of a number's region."""
    table = (resources.files("tzdata") / "zoneinfo" / "zone.tab").read_text(encoding="utf-8")
    rows = (line.split("\t") for line in table.splitlines() if line and not line.startswith("#"))
    return tuple(sorted(r[2] for r in rows if r[0] == region))


def candidate_zones(pack: Pack, account: Account) -> tuple[str, ...]:
    if account.time_zones or pack.unknown_zone != "region":
        return account.time_zones
    try:
        number = phonenumbers.parse(account.phone_e164)
    except phonenumbers.NumberParseException:
        return ()
    return region_zones(phonenumbers.region_code_for_number(number) or "")


@dataclass(frozen=True)
class PackGate:
    pack: Pack

    @property
    def history_window(self) -> timedelta:
        return history_window(self.pack)

    def decide(
        self,
        account: Account,
        at: datetime,
        history: Sequence[PastAttempt],
        opted_out: bool,
        prefs: Preferences = NO_PREFERENCES,
    ) -> Decision:
        consumer = self._consumer(account, prefs, _VOICE if opted_out else _NONE)
        contacts = tuple([contact_of(p) for p in history])  # a list first: faster than a generator
        proposal = Proposal(str(account.pk), at, "voice", CONSUMER, (account.debt_id,), consumer, contacts)
        return self._verdict(proposal)

    def decide_text(
        self,
        account: Account,
        at: datetime,
        history: Sequence[PastMessage],
        opted_out: frozenset[str],
        prefs: Preferences = NO_PREFERENCES,
    ) -> Decision:
        """May a text go to the account's number at `at` (its earlier texts in `history`)?"""
        proposal = Proposal(
            id=str(account.pk),
            at=at,
            channel="sms",
            person=CONSUMER,
            debts=(account.debt_id,),
            consumer=self._consumer(account, prefs, opted_out),
            history=tuple(text_contact_of(m) for m in history),
        )
        return self._verdict(proposal)

    def _consumer(self, account: Account, prefs: Preferences, opted_out: frozenset[str]) -> Consumer:
        if not prefs.inconvenient and not prefs.consents:  # most accounts: nothing said
            return Consumer(candidate_zones(self.pack, account), (), (), opted_out)
        return Consumer(
            candidate_zones(self.pack, account),
            inconvenient=tuple(TimeRange(a, b) for a, b in prefs.inconvenient),
            consents=tuple(
                Consent(a, b, prefs.given_at(i), str(i)) for i, (a, b) in enumerate(prefs.consents)
            ),
            opted_out=opted_out,
        )

    def _verdict(self, proposal: Proposal) -> Decision:
        verdict = decide(self.pack, proposal)
        allowed = verdict.allowed
        reasons = tuple([reason_of(f) for f in verdict.reasons if allowed or f.blocking])
        return Decision(allowed, reasons, None if allowed else verdict.next_allowed_at)


_VOICE: frozenset[str] = frozenset({"voice"})
_NONE: frozenset[str] = frozenset()
# Many decisions give the same reasons (the window's, at one moment in the same zones): the engine keeps
# those findings, and their Reasons are kept here by the finding's identity (the entry holds the finding:
# its id cannot be reused while it is here), bounded. Reasons are immutable.
_REASONS: dict[int, tuple[Finding, Reason]] = {}


def reason_of(f: Finding) -> Reason:
    """The engine's finding as the dialer keeps it: the detail names the history entries it relies on
    (attempt or message ids) and the text its rule comes from."""
    kept = _REASONS.get(id(f))
    if kept is not None and kept[0] is f:
        return kept[1]
    if len(_REASONS) >= 4096:
        _REASONS.clear()
    detail = f"{f.detail} [source: {f.source}]" if f.source else f.detail
    reason = Reason(f.rule, detail, f.used, f.limit)
    _REASONS[id(f)] = (f, reason)
    return reason
