"""The dry run (`duecall campaign plan`): what the strategy and the policy would do over the coming days.

Pure: no I/O, no clock. For each account it replays what `duecall run` does (the strategy's next
step, then the policy gate at that moment) on the snapshot's history, adding each contact it would
make to that history, until the plan's end. Assumptions (docs/strategy.md, "The dry run"): nobody
answers a call and nobody replies to a text; payments and promises stay as they are now.

Accounts in the same situation share their simulation (dialer/strategy/plan_share.py); the
followed account is always simulated on its own, against the gate itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dialer.core import balance
from dialer.core.messages import PastMessage
from dialer.core.models import Decision, Disposition, PastAttempt
from dialer.core.vocab import MessageState
from dialer.strategy.decide import Hold, Next, PastContact, Proposal, next_contact
from dialer.strategy.model import Channel, Strategy
from dialer.strategy.plan_result import ChannelDay, DayPlan, Entry, EntryKind, Plan, freeze, merge
from dialer.strategy.plan_share import Event, Gate, Memo, SharedGate, call_key, fixed
from dialer.strategy.snapshot import Snapshot

__all__ = ["ChannelDay", "DayPlan", "Entry", "Gate", "Plan", "StrategyOf", "merge", "plan"]

MAX_STEPS_A_DAY = 200  # decisions for one account on one local day: more is a loop, reported


StrategyOf = Callable[[Snapshot], Strategy]


def plan(
    snapshots: Iterable[Snapshot],
    strategy_of: StrategyOf,
    gate: Gate,
    start: datetime,
    days: int,
    campaign_id: int,
    follow: str | None = None,
    share: bool = True,
) -> Plan:
    """The plan from `start` for `days` days. `share=False` simulates every account on its own (the
    same plan, slower: the tests check that sharing changes nothing)."""
    if start.utcoffset() != timedelta(0):
        raise ValueError(f"the plan starts at a UTC time, not {start.isoformat()}")
    end = start + timedelta(days=days)
    memo = Memo(gate if not share else SharedGate(gate), share)
    totals: Counter[Event] = Counter()
    errors: list[str] = []
    schedule: tuple[Entry, ...] = ()
    accounts = 0
    for snap in snapshots:
        accounts += 1
        account_id = snap.account.account.account_id
        run = _Run(snap, strategy_of(snap), memo, start, end, campaign_id, follow=account_id == follow)
        run.go()
        totals.update(run.events)
        schedule = tuple(run.entries) if run.follow else schedule
        errors += [f"{account_id}: {why}" for what, _, why in run.events if what == "error"]
    return freeze(totals, campaign_id, start, end, accounts, errors, follow, schedule, memo.runs)


class _Run:
    """One account's simulation: the loop of `duecall run`, with nobody answering or replying."""

    def __init__(
        self,
        snap: Snapshot,
        strategy: Strategy,
        memo: Memo,
        start: datetime,
        end: datetime,
        campaign_id: int,
        follow: bool = False,
    ) -> None:
        self.snap, self.strategy, self.memo = snap, strategy, memo
        self.gate = memo.gate.gate if follow and isinstance(memo.gate, SharedGate) else memo.gate
        self.account = snap.account.account
        self.start, self.end, self.campaign_id, self.follow = start, end, campaign_id, follow
        self.history = snap.history
        self.calls, self.texts = list(snap.calls), list(snap.texts)
        self.events: list[Event] = []
        self.entries: list[Entry] = []
        self.active: set[date] = set()  # days with a contact made or refused
        self.fixed: Hashable = fixed(snap, strategy, start) if memo.share and not follow else None
        intern, debt = memo.intern, self.account.debt_id
        self.contacts = tuple(intern(c) for c in snap.history.contacts)  # the strategy's (as self.history)
        self.call_keys = [intern(call_key(p, debt)) for p in self.calls]
        self.text_keys = [intern((m.at, m.state)) for m in self.texts]

    def go(self) -> None:
        t, day, steps, check = self.start, None, 0, True
        while t < self.end:
            zone = balance.decision_zone(self.account.time_zones, t)
            today = t.astimezone(zone).date()
            steps = steps + 1 if today == day else 1
            day = today
            if steps > MAX_STEPS_A_DAY:
                return self._spun(t, zone, today)
            state = (
                None
                if self.fixed is None
                else self.memo.strategy_state(self.fixed, self.strategy, t, self.contacts)
            )
            if check and self._shared(state, t):
                return
            check = False
            nxt = self._next(state, t)
            if isinstance(nxt, Hold):
                if nxt.until is None:
                    return self._stopped(t, zone, nxt)
                self._held(t, zone, today, nxt)
                t = nxt.until
                check = t.astimezone(zone).date() != today  # a new day: perhaps a state seen before
                continue
            t = max(t, nxt.earliest)
            if t < self.end:
                t = self._ask(t, nxt)

    def _next(self, state: Hashable, t: datetime) -> Next:
        if state is None:
            return next_contact(self.strategy, self.snap.account, self.history, t)
        if (found := self.memo.nexts.get(state)) is None:
            found = self.memo.nexts[state] = next_contact(self.strategy, self.snap.account, self.history, t)
        return found

    def _shared(self, strategy_state: Hashable, t: datetime) -> bool:
        """Took the rest of the plan from an account that was in this state before (True), or
        noted this state for the accounts after it (False)."""
        if strategy_state is None:
            self.memo.runs += t == self.start
            return False
        key = self.memo.state(strategy_state, t, self.call_keys, self.text_keys)
        if (found := self.memo.states.get(key)) is not None:
            events, at = found
            self.events += events[at:]
            return True
        self.memo.runs += t == self.start
        self.memo.states[key] = (self.events, len(self.events))
        return False

    def _count(self, what: str, day: date | None, name: str) -> None:
        self.events.append(self.memo.intern((what, day, name)))

    def _ask(self, t: datetime, offer: Proposal) -> datetime:
        """The policy's answer at `t`; the moment the loop goes on from."""
        zone = balance.decision_zone(self.account.time_zones, t)
        decision = self._decide(offer.channel, t)
        rules = tuple(str(r.rule) for r in decision.reasons)
        day = t.astimezone(zone).date()
        self.active.add(day)
        if decision.allowed:
            self._count("made", day, offer.channel)
            self._made(t, offer.channel)
            self._entry(t, zone, "made", offer, rules, offer.why)
            return t
        self._count("refused", day, offer.channel)
        for rule in sorted(set(rules)):
            self._count("rule", day, f"{offer.channel} {rule}")
        after = decision.next_allowed_at
        if after is None:  # never on this channel: ask again tomorrow, as the run would
            after = balance.day_start(day + timedelta(days=1), zone)
        details = "; ".join(f"{r.rule}: {r.detail}" for r in decision.reasons)
        self._entry(t, zone, "refused", offer, rules, details, after)
        return after

    def _decide(self, channel: Channel, t: datetime) -> Decision:
        snap, since = self.snap, t - self.memo.window
        if channel == "voice":
            calls = [p for p in self.calls if p.at >= since]
            return self.gate.decide(self.account, t, calls, "voice" in snap.opted_out, snap.prefs)
        texts = [m for m in self.texts if m.at >= since]
        return self.gate.decide_text(self.account, t, texts, snap.opted_out, snap.prefs)

    def _made(self, t: datetime, channel: Channel) -> None:
        """The contact joins the history, unanswered (the store counts texts with calls too)."""
        ref, intern = -(len(self.calls) + len(self.texts) + 1), self.memo.intern
        self.contacts = (*self.contacts, intern(PastContact(t, channel)))
        self.history = replace(self.history, contacts=self.contacts)
        if channel == "voice":
            call = PastAttempt(ref, t, self.campaign_id, Disposition.NO_ANSWER, debt_id=self.account.debt_id)
        else:
            call = PastAttempt(ref, t, 0, None, channel="sms")
            text = PastMessage(ref, t, MessageState.DELIVERED)
            self.texts.append(text)
            self.text_keys.append(intern((text.at, text.state)))
        self.calls.append(call)
        self.call_keys.append(intern(call_key(call, self.account.debt_id)))

    def _held(self, t: datetime, zone: ZoneInfo, today: date, hold: Hold) -> None:
        """Every day the hold spans with no contact on it is a day the account was held."""
        assert hold.until is not None
        why, day, until = hold_kind(hold.reason), today, min(hold.until, self.end)
        while balance.day_start(day, zone) < until:
            if day not in self.active:
                self._count("held", day, why)
            day += timedelta(days=1)
        if self.follow:
            self.entries.append(Entry(t, t.astimezone(zone), "held", why=hold.reason, until=hold.until))

    def _stopped(self, t: datetime, zone: ZoneInfo, hold: Hold) -> None:
        self._count("stopped", None, hold_kind(hold.reason))
        if hold.to_person:
            self._count("person", None, "")
        if self.follow:
            entry = Entry(t, t.astimezone(zone), "stopped", why=hold.reason, to_person=hold.to_person)
            self.entries.append(entry)

    def _spun(self, t: datetime, zone: ZoneInfo, today: date) -> None:
        why = f"more than {MAX_STEPS_A_DAY} decisions on {today}: simulation stopped there"
        self._count("error", None, why)
        if self.follow:
            self.entries.append(Entry(t, t.astimezone(zone), "error", why=why))

    def _entry(
        self,
        t: datetime,
        zone: ZoneInfo,
        kind: EntryKind,
        offer: Proposal,
        rules: tuple[str, ...],
        why: str,
        until: datetime | None = None,
    ) -> None:
        if self.follow:
            what = offer.script if offer.channel == "voice" else offer.message
            entry = Entry(t, t.astimezone(zone), kind, offer.channel, what, rules, why, offer.source, until)
            self.entries.append(entry)


def hold_kind(reason: str) -> str:
    """A hold's reason without its dates and counts: the rule it names, or what kind of wait it is."""
    if "(rules." in reason:
        return reason.rsplit("(rules.", 1)[1].split(")", 1)[0]
    for words, kind in _HOLD_KINDS:
        if words in reason:
            return kind
    return reason


_HOLD_KINDS = (
    ("no segment matches", "no segment"),
    (": no step on day", "no step"),
    (" a day made", "per_day"),
    ("falls on a later day", "interval"),
)
