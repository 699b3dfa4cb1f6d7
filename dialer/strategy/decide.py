"""The next contact a strategy asks for, from what the account owes and what the borrower did.

Pure: no I/O, no clock, no policy. `next_contact` says which step or rule applies now and why; the
policy gate still decides whether that contact may happen (the strategy asks, the policy decides).
Days are the account's local days in its decision zone (dialer/core/balance.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dialer.core import balance
from dialer.core.balance import Payment, Promise, PromiseVerdict, Standing
from dialer.core.models import Account
from dialer.core.vocab import Outcome, PromiseState
from dialer.strategy.model import Channel, Contact, RuleContact, Rules, Segment, Strategy

# The days on which an account changes bucket (M0 -> M1 on day 1 ...): a segment may change then.
_BUCKET_STARTS = tuple(upper + 1 for upper, _ in balance.BUCKETS)
_PERSON = {Outcome.DISPUTE: "dispute", Outcome.HARDSHIP_CALLBACK: "hardship_callback"}


@dataclass(frozen=True, slots=True)
class AccountView:
    account: Account
    payments: tuple[Payment, ...] = ()
    promises: tuple[Promise, ...] = ()
    columns: Mapping[str, str] = field(default_factory=dict)  # the account's imported columns


@dataclass(frozen=True, slots=True)
class PastContact:
    """A call or a text we made to the account (open calls included: they count)."""

    at: datetime
    channel: Channel
    answered: bool = False  # a call a person answered (a text: never)


@dataclass(frozen=True, slots=True)
class Said:
    """An outcome the borrower gave: on a call (the IVR) or by a text's reply."""

    at: datetime
    outcome: Outcome
    number: str  # the number it was given on (a wrong number stops that number only)


@dataclass(frozen=True, slots=True)
class HistoryView:
    contacts: tuple[PastContact, ...] = ()
    said: tuple[Said, ...] = ()
    opted_out: frozenset[Channel] = frozenset()  # the channels stopped (the pack's sms_stops applied)


@dataclass(frozen=True, slots=True)
class Proposal:
    """A contact the strategy asks the policy for."""

    channel: Channel
    script: str | None
    message: str | None
    earliest: datetime  # not before this (the interval since the last contact)
    why: str  # the step or rule that chose it, for people
    source: str  # "segments[1].steps[2]", "rules.promise_broken" ...
    balance_minor: int  # what the account owes now: the amount the call or the text gives
    today: int = 0  # the channel's contacts already made this local day


@dataclass(frozen=True, slots=True)
class Hold:
    """No contact now: wait until `until`, or never (None) once the strategy stopped."""

    reason: str
    until: datetime | None
    to_person: bool = False  # collection stopped and the account goes to a person


Next = Proposal | Hold


@dataclass(frozen=True, slots=True)
class _Now:
    now: datetime
    zone: ZoneInfo
    today: date
    due_day: int  # signed: -3 three days before the due date, 1 the first day late
    standing: Standing


def next_contact(strategy: Strategy, account: AccountView, history: HistoryView, now: datetime) -> Next:
    at = _situation(account, now)
    if at.standing.balance_minor <= 0:
        return Hold("paid in full: the strategy stops (rules.paid)", None)
    if stopped := _stopped(account.account, history):
        return stopped
    segment_at = _segment(strategy, account, at.standing)
    if segment_at is None:  # perhaps one will once the bucket changes
        return Hold(f"no segment matches the account (bucket {at.standing.bucket})", _next_bucket(at))
    index, segment = segment_at
    rules = strategy.rules_for(segment)
    if waiting := _promise_wait(rules, history, at):
        return waiting
    choice = _promise_contact(rules, at) or _step(index, segment, at)
    if isinstance(choice, Hold):
        return choice
    source, contact, why = choice
    if contact.channel != "voice":
        return _offer(source, contact, why, history, at, segment)
    source, contact, why = _widened(rules, history, source, contact, why)
    call = _offer(source, contact, why, history, at, segment, _sharing(rules))
    switch = _switch(rules, history)
    if switch is None or not isinstance(call, Proposal):
        return call
    # The text takes the place of the call the step would make now: not before it, and it counts
    # toward the step's contacts that day (_sharing), so calls resume at the step's next one.
    return _offer(*switch, history, at, segment, not_before=call.earliest)


def _situation(account: AccountView, now: datetime) -> _Now:
    standing = balance.standing(account.account, account.payments, account.promises, now)
    zone = ZoneInfo(standing.zone)
    due_day = (standing.day - account.account.due_date).days
    return _Now(now, zone, standing.day, due_day, standing)


def _stopped(account: Account, history: HistoryView) -> Hold | None:
    """Outcomes that end automated contact for good: a dispute, a hardship call, a wrong number."""
    for said in history.said:
        if said.outcome in _PERSON:
            return Hold(
                f"{said.outcome} on {said.at:%Y-%m-%d}: to a person (rules.{_PERSON[said.outcome]})",
                None,
                True,
            )
        if said.outcome is Outcome.WRONG_NUMBER and said.number == account.phone_e164:
            return Hold(f"wrong number {said.number}: that number stops (rules.wrong_number)", None)
    if {"voice", "sms"} <= _stopped_channels(history):
        return Hold("opted out of calls and texts (rules.opt_out)", None)
    return None


def _stopped_channels(history: HistoryView) -> set[str]:
    stopped: set[str] = set(history.opted_out)
    if any(s.outcome is Outcome.OPT_OUT for s in history.said):
        stopped.add("voice")  # the IVR's "stop calls"; the store adds what else it stops
    return stopped


def _segment(strategy: Strategy, account: AccountView, standing: Standing) -> tuple[int, Segment] | None:
    values = {
        **account.columns,
        "bucket": standing.bucket,
        "locale": account.account.language,
        "currency": account.account.currency,
    }
    for i, segment in enumerate(strategy.segments):
        if all(_matches(values.get(column), want) for column, want in segment.where.items()):
            return i, segment
    return None


def _matches(value: str | None, want: tuple[str, ...]) -> bool:
    return value is not None and value in want


def _latest_promise(at: _Now) -> PromiseVerdict | None:
    verdicts = sorted(at.standing.promises, key=lambda v: v.promise.made_at)
    return verdicts[-1] if verdicts else None


def _promise_wait(rules: Rules, history: HistoryView, at: _Now) -> Hold | None:
    """A promise not yet due, or in its grace days: silence until the day after the grace. A
    borrower who said they paid (no payment seen yet) is waited for the same way, from that day."""
    grace = rules.promise_pending.grace_days if rules.promise_pending else 0
    claims = [s.at for s in history.said if s.outcome is Outcome.PAID]
    if claims and (last_quiet := max(claims).astimezone(at.zone).date() + timedelta(days=grace)) >= at.today:
        until = balance.day_start(last_quiet + timedelta(days=1), at.zone)
        return Hold(f"said it was paid on {max(claims):%Y-%m-%d}: wait for the payment (rules.paid)", until)
    verdict = _latest_promise(at)
    if verdict is None or verdict.state is PromiseState.KEPT:
        return None
    last_quiet = verdict.promise.due_on + timedelta(days=grace)
    if at.today > last_quiet:
        return None
    until = balance.day_start(last_quiet + timedelta(days=1), at.zone)
    return Hold(
        f"promise to pay by {verdict.promise.due_on} (+{grace} days' grace): wait (rules.promise_pending)",
        until,
    )


def _promise_contact(rules: Rules, at: _Now) -> tuple[str, Contact, str] | None:
    """A broken (or partially kept) promise's own contact, in the days right after the grace."""
    verdict = _latest_promise(at)
    if verdict is None:
        return None
    name = {PromiseState.BROKEN: "promise_broken", PromiseState.PARTIALLY_KEPT: "partially_paid"}.get(
        verdict.state
    )
    rule: RuleContact | None = getattr(rules, name) if name else None
    if rule is None:
        return None
    grace = rules.promise_pending.grace_days if rules.promise_pending else 0
    first = verdict.promise.due_on + timedelta(days=grace + 1)
    if not first <= at.today < first + timedelta(days=rule.for_days):
        return None
    return f"rules.{name}", rule, f"promise of {verdict.promise.due_on} {verdict.state}: {rule.what}"


def _step(index: int, segment: Segment, at: _Now) -> tuple[str, Contact, str] | Hold:
    for j, step in enumerate(segment.steps):
        if at.due_day in step.days:
            return (
                f"segments[{index}].steps[{j}]",
                step,
                f"segment {segment.name}, days {step.days}: {step.what}",
            )
    return Hold(f"segment {segment.name}: no step on day {at.due_day}", _next_change(segment, at))


def _next_change(segment: Segment, at: _Now) -> datetime | None:
    """The start of the next day a step begins or the bucket (so perhaps the segment) changes."""
    later = [s.days.first for s in segment.steps if s.days.first > at.due_day]
    later += [d for d in _BUCKET_STARTS if d > at.due_day]
    if not later:
        return None
    return balance.day_start(at.standing.day + timedelta(days=min(later) - at.due_day), at.zone)


def _next_bucket(at: _Now) -> datetime | None:
    later = [d for d in _BUCKET_STARTS if d > at.due_day]
    return balance.day_start(at.today + timedelta(days=min(later) - at.due_day), at.zone) if later else None


def _widened(
    rules: Rules, history: HistoryView, source: str, contact: Contact, why: str
) -> tuple[str, Contact, str]:
    """After N unanswered calls in a row, the call step's interval widened (`no_answer.widen`)."""
    rule = rules.no_answer
    streak = _unanswered_streak(history)
    if rule is None or rule.widen is None or streak < rule.after:
        return source, contact, why
    wider = contact.model_copy(update={"interval": max(contact.interval, rule.widen)})
    note = f"{streak} unanswered calls in a row: interval {wider.interval}"
    return "rules.no_answer.widen", wider, f"{why}; {note}"


def _switch(rules: Rules, history: HistoryView) -> tuple[str, Contact, str] | None:
    """After N unanswered calls in a row, one text instead of the next call (`no_answer.switch`)."""
    rule = rules.no_answer
    if rule is None or rule.switch is None or rule.switch.channel in _stopped_channels(history):
        return None
    streak = _unanswered_streak(history)
    if streak < rule.after:
        return None
    return (
        "rules.no_answer.switch",
        rule.switch,
        f"{streak} unanswered calls in a row: {rule.switch.what} instead",
    )


def _sharing(rules: Rules) -> frozenset[str]:
    """The channels whose contacts count toward a call step's contacts a day: its own, and the
    no-answer rule's text (sent in place of one of its calls)."""
    switch = rules.no_answer.switch if rules.no_answer else None
    return frozenset({"voice", switch.channel} if switch else {"voice"})


def _unanswered_streak(history: HistoryView) -> int:
    """Unanswered calls since the last answered call or the last text (a text ends a streak)."""
    streak = 0
    for contact in sorted(history.contacts, key=lambda c: c.at, reverse=True):
        if contact.channel != "voice" or contact.answered:
            break
        streak += 1
    return streak


def _offer(
    source: str,
    contact: Contact,
    why: str,
    history: HistoryView,
    at: _Now,
    segment: Segment,
    counted: frozenset[str] = frozenset(),
    not_before: datetime | None = None,
) -> Next:
    """The contact if its channel's day and interval allow it; `counted`: the channels whose
    contacts today count toward its `per_day` (its own by default)."""
    if contact.channel in _stopped_channels(history):
        return Hold(f"{why}: opted out of {contact.channel} (rules.opt_out)", _next_change(segment, at))
    mine = [c.at for c in history.contacts if c.channel == contact.channel]
    counted = counted or frozenset({contact.channel})
    today = [
        c.at for c in history.contacts if c.channel in counted and c.at.astimezone(at.zone).date() == at.today
    ]
    tomorrow = balance.day_start(at.today + timedelta(days=1), at.zone)
    if len(today) >= contact.per_day:
        return Hold(f"{why}: {len(today)} of {contact.per_day} a day made", tomorrow)
    earliest = max([not_before or at.now, at.now, *(t + contact.interval for t in mine)])
    if earliest >= tomorrow:
        return Hold(f"{why}: {contact.interval} after the last one falls on a later day", tomorrow)
    count = f"{contact.channel} {len(today) + 1} of {contact.per_day} today"
    return Proposal(
        contact.channel,
        contact.script,
        contact.message,
        earliest,
        f"{why} ({count})",
        source,
        at.standing.balance_minor,
        len(today),
    )
