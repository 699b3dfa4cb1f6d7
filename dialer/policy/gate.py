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


def outcome_of(past: PastAttempt) -> Outcome:
    """The engine's view of how an earlier call ended; an open or lost call counts as unanswered."""
    d = past.disposition
    if d is Disposition.ANSWERED:
        return "answered"
    if d is Disposition.BUSY:
        return "busy"
    if d is Disposition.FAILED:
        return "not_in_service" if past.cause == "1" else "failed"
    if d is Disposition.MACHINE:
        return "voicemail"
    if d is Disposition.HUNG_UP_EARLY or d is Disposition.CUT:
        return "dropped"  # answered, then ended early: connected
    if d is Disposition.NO_ANSWER:
        return "no_answer"
    return "unknown"  # still open, or lost: counted as connected and as unanswered


def contact_of(past: PastAttempt) -> Contact:
    if past.channel == "sms":  # a text in a call's history: counted where the pack says (us-ma)
        return text_contact_of(PastMessage(past.attempt_id, past.at, MessageState.UNKNOWN))
    return Contact(
        ref=str(past.attempt_id),
        at=past.at,
        channel="voice",
        direction="outbound",
        person=CONSUMER,
        debts=(past.debt_id,) if past.debt_id else (),
        outcome=outcome_of(past),
        conversation=past.outcome in _CONVERSATIONS,
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
        consumer = self._consumer(account, prefs, frozenset({"voice"}) if opted_out else frozenset())
        proposal = Proposal(
            id=str(account.pk),
            at=at,
            channel="voice",
            person=CONSUMER,
            debts=(account.debt_id,),
            consumer=consumer,
            history=tuple(contact_of(p) for p in history),
        )
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
        # The engine's details name the history entries they rely on (attempt or message ids)
        # and the text each rule comes from.
        reasons = tuple(
            Reason(f.rule, f"{f.detail} [source: {f.source}]" if f.source else f.detail, f.used, f.limit)
            for f in verdict.reasons
            if f.blocking or verdict.allowed
        )
        return Decision(verdict.allowed, reasons, None if verdict.allowed else verdict.next_allowed_at)
