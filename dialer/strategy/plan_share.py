"""What the dry run shares between accounts in the same situation (dialer/strategy/plan.py).

Accounts often stand in the same situation: the same zone, due date, strategy and history, only
their identity differs. Their plans are the same, so the plan simulates the situation once: the
gate's decisions are shared by the question asked, and the rest of a plan is shared from any
moment two accounts reach the same state. The keys below hold everything `next_contact` and the
gate look at; `plan(..., share=False)` simulates each account alone, and the tests compare both.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar

from dialer.core.balance import Payment
from dialer.core.messages import PastMessage, TextPolicy
from dialer.core.models import Account, Decision, PastAttempt, Preferences, Reason
from dialer.policy.gate import PolicyGate
from dialer.strategy.decide import AccountView, Next, PastContact
from dialer.strategy.model import Contact, Strategy
from dialer.strategy.snapshot import Snapshot

_NO_PREFERENCES = Preferences()
_WELL_BEFORE = timedelta(days=2)  # a payment this long before the plan is on an earlier day anywhere
Event = tuple[str, date | None, str]  # (what, local day, channel or why): the plan counts these
_Key = TypeVar("_Key", bound=Hashable)
HistoryKey = tuple[Any, ...]  # a call's or a text's key for the gate: its time first


class Gate(PolicyGate, TextPolicy, Protocol):
    """The two questions `duecall run` asks the policy (dialer/policy/gate.py's PackGate answers),
    and how far back the history it is given goes (the store reads no more for a claim)."""


class Memo:
    """What the runs share: the gate's decisions and the states accounts reach.

    Two accounts in the same state (below) at the same moment have the same future: the second one
    takes the rest of its plan from the first. The state holds all that `next_contact` and the gate
    look at from then on: the account without its identity (`fixed`), the contacts recent enough
    to matter (within the strategy's longest interval, plus a day), the unanswered streak (up to the
    most any rule counts), and the gate's history window.
    """

    def __init__(self, gate: Gate, share: bool) -> None:
        self.gate, self.share, self.runs = gate, share, 0
        self.window = gate.history_window
        self.states: dict[Hashable, tuple[list[Event], int]] = {}
        self.nexts: dict[Hashable, Next] = {}
        self.reach: dict[int, tuple[Strategy, timedelta, int]] = {}
        # One object for equal events and history keys (shared with the gate's, when it shares).
        self.interned: dict[Hashable, Hashable] = gate.interned if isinstance(gate, SharedGate) else {}

    def reach_of(self, strategy: Strategy) -> tuple[timedelta, int]:
        if (known := self.reach.get(id(strategy))) is None:  # the strategy is kept: its id stays its own
            known = self.reach[id(strategy)] = (strategy, *reach(strategy))
        return known[1], known[2]

    def intern(self, value: _Key) -> _Key:
        return self.interned.setdefault(value, value)  # type: ignore[return-value]

    def strategy_state(
        self, fixed: Hashable, strategy: Strategy, t: datetime, contacts: Sequence[PastContact]
    ) -> Hashable:
        """All `next_contact` looks at, at `t`: what it answers for one account it answers for all."""
        horizon, most = self.reach_of(strategy)
        recent = t - horizon
        return fixed, t, tuple(c for c in contacts if c.at >= recent), min(unanswered_streak(contacts), most)

    def state(
        self, strategy_state: Hashable, t: datetime, calls: Sequence[HistoryKey], texts: Sequence[HistoryKey]
    ) -> Hashable:
        """The strategy's state and the gate's history (the calls' and texts' keys, by time first)."""
        since = t - self.window
        return (
            strategy_state,
            tuple(c for c in calls if c[0] >= since),
            tuple(m for m in texts if m[0] >= since),
        )


def unanswered_streak(contacts: Sequence[PastContact]) -> int:
    """Unanswered calls since the last answered call or the last text, as decide.py counts them."""
    streak = 0
    for contact in sorted(contacts, key=lambda c: c.at, reverse=True):
        if contact.channel != "voice" or contact.answered:
            break
        streak += 1
    return streak


def reach(strategy: Strategy) -> tuple[timedelta, int]:
    """How far back contacts matter to the strategy (its longest interval, plus a day), and the
    longest unanswered streak a rule counts to (a longer one acts the same)."""
    rules = [strategy.rules, *(s.rules for s in strategy.segments)]
    contacts: list[Contact] = [step for s in strategy.segments for step in s.steps]
    intervals: list[timedelta] = []
    afters = [0]
    for r in rules:
        contacts += [c for c in (r.promise_broken, r.partially_paid) if c is not None]
        if r.no_answer is not None:
            afters.append(r.no_answer.after)
            contacts += [r.no_answer.switch] if r.no_answer.switch else []
            intervals += [r.no_answer.widen] if r.no_answer.widen else []
    intervals += [c.interval for c in contacts]
    return max(intervals) + timedelta(days=1), max(afters)


class SharedGate:
    """The gate's decisions shared between accounts whose question is the same.

    PackGate decides from the account's zones (its number's region when it has none), whether each
    earlier call was about the same debt, the time, the history's times and outcomes, the opt-outs
    and the preferences: the key holds exactly those. Only a decision's rules and next allowed time
    are kept (its details would name the first account's history ids): that is what the plan counts.
    """

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.known: dict[Hashable, Decision] = {}
        self.interned: dict[Hashable, Hashable] = {}  # one object for equal history keys

    def intern(self, value: _Key) -> _Key:
        return self.interned.setdefault(value, value)  # type: ignore[return-value]

    @property
    def history_window(self) -> timedelta:
        return self.gate.history_window

    def decide(
        self,
        account: Account,
        at: datetime,
        history: Sequence[PastAttempt],
        opted_out: bool,
        prefs: Preferences = _NO_PREFERENCES,
    ) -> Decision:
        calls = tuple(self.intern(call_key(p, account.debt_id)) for p in history)
        key = ("voice", _where(account), at, calls, opted_out, prefs)
        if (found := self.known.get(key)) is None:
            found = self.known[key] = _slim(self.gate.decide(account, at, history, opted_out, prefs))
        return found

    def decide_text(
        self,
        account: Account,
        at: datetime,
        history: Sequence[PastMessage],
        opted_out: frozenset[str],
        prefs: Preferences = _NO_PREFERENCES,
    ) -> Decision:
        texts = tuple(self.intern((m.at, m.state)) for m in history)
        key = ("sms", _where(account), at, texts, opted_out, prefs)
        if (found := self.known.get(key)) is None:
            found = self.known[key] = _slim(self.gate.decide_text(account, at, history, opted_out, prefs))
        return found


def _slim(decision: Decision) -> Decision:
    """What the counts use of a decision: its rules and its next allowed time (not the details)."""
    reasons = tuple(Reason(r.rule, "") for r in decision.reasons)
    return Decision(decision.allowed, reasons, decision.next_allowed_at)


def _where(account: Account) -> tuple[tuple[str, ...], str]:
    return account.time_zones, "" if account.time_zones else account.phone_e164


def call_key(p: PastAttempt, debt_id: str) -> tuple[Any, ...]:
    same_debt = p.debt_id == debt_id if p.debt_id else None
    return p.at, p.disposition, same_debt, p.cause, p.outcome, p.channel


def fixed(snap: Snapshot, strategy: Strategy, start: datetime) -> Hashable:
    """What the strategy and the gate look at in a snapshot that the plan does not change, without
    the account's identity (its id, name, debt id, number where a zone is known, history ids)."""
    view, a = snap.account, snap.account.account
    return (
        id(strategy),  # the strategy object is kept alive by the memo (its `reach`)
        _where(a),
        (a.tz_derived, a.currency, a.due_date, a.language),
        money(view, start),
        tuple(sorted(view.columns.items())),
        tuple((s.at, s.outcome, s.number == a.phone_e164) for s in snap.history.said),
        snap.history.opted_out,
        snap.opted_out,
        snap.prefs,
    )


def money(view: AccountView, start: datetime) -> Hashable:
    """With no promise and every payment well before the plan, the balance is the same every day
    of it, and only whether something is owed matters (the days past due count while it is)."""
    settled = start - _WELL_BEFORE
    if not view.promises and all(_paid_by(p, settled) for p in view.payments):
        return view.account.amount_minor - sum(p.amount_minor for p in view.payments) > 0
    return (
        view.account.amount_minor,
        tuple((p.amount_minor, p.paid_at, p.paid_on) for p in view.payments),
        tuple((p.made_at, p.due_on, p.amount_minor) for p in view.promises),
    )


def _paid_by(payment: Payment, at: datetime) -> bool:
    return payment.paid_at < at and (payment.paid_on is None or payment.paid_on < at.date())
