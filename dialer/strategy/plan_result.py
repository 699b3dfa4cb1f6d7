"""What the dry run gives (dialer/strategy/plan.py): counts per local day and channel, the accounts
stopped, one account's schedule; and the merge of the plans of parts of a campaign."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

from dialer.strategy.model import Channel
from dialer.strategy.plan_share import Event

CHANNELS: tuple[Channel, ...] = ("voice", "sms")
EntryKind = Literal["made", "refused", "held", "stopped", "error"]


@dataclass(frozen=True, slots=True)
class ChannelDay:
    made: int = 0
    refused: int = 0  # decisions the policy refused (a call at night moved to the morning is one)
    by_rule: Mapping[str, int] = field(default_factory=dict)  # each refusal counted under each rule it named


@dataclass(frozen=True, slots=True)
class DayPlan:
    """One local day (each account's own, in its decision zone)."""

    day: date
    voice: ChannelDay
    sms: ChannelDay
    held: int  # accounts the strategy kept silent all day (not the stopped ones)
    held_by: Mapping[str, int]  # ... by why: promise_pending, no step, interval ...

    def channel(self, name: Channel) -> ChannelDay:
        return self.voice if name == "voice" else self.sms


@dataclass(frozen=True, slots=True)
class Entry:
    """One moment of the followed account's schedule."""

    at: datetime  # UTC
    local: datetime  # the same instant in the account's decision zone
    kind: EntryKind
    channel: Channel | None = None
    what: str | None = None  # the script or the message
    rules: tuple[str, ...] = ()  # the policy's rules (refused: the blocking ones)
    why: str = ""  # the strategy's why, the hold's reason, or the refusal's details
    source: str = ""  # the step or rule of the strategy
    until: datetime | None = None  # a hold's or a refusal's end
    to_person: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    campaign_id: int
    start: datetime
    end: datetime
    accounts: int
    days: tuple[DayPlan, ...]
    stopped: Mapping[str, int]  # accounts the strategy stopped, by why (paid, dispute ...)
    to_person: int  # of those, the ones that go to a person
    errors: tuple[str, ...]  # accounts whose simulation hit the loop guard
    followed: str | None
    schedule: tuple[Entry, ...]
    simulated: int  # accounts simulated from the start (the others took part of their plan from one)

    def made(self, channel: Channel) -> int:
        return sum(d.channel(channel).made for d in self.days)

    def refused(self, channel: Channel) -> int:
        return sum(d.channel(channel).refused for d in self.days)


def freeze(
    totals: Counter[Event],
    campaign_id: int,
    start: datetime,
    end: datetime,
    accounts: int,
    errors: list[str],
    follow: str | None,
    schedule: tuple[Entry, ...],
    simulated: int,
) -> Plan:
    by_day: dict[date, dict[str, Counter[str]]] = {}
    stopped: Counter[str] = Counter()
    for (what, day, name), n in totals.items():
        if day is None:
            if what == "stopped":
                stopped[name] += n
            continue
        by_day.setdefault(day, {}).setdefault(what, Counter())[name] += n
    days = tuple(_day_plan(day, by_day[day]) for day in sorted(by_day))
    person = totals["person", None, ""]
    return Plan(
        campaign_id,
        start,
        end,
        accounts,
        days,
        dict(stopped),
        person,
        tuple(errors),
        follow,
        schedule,
        simulated,
    )


def _day_plan(day: date, counts: Mapping[str, Counter[str]]) -> DayPlan:
    def channel(name: Channel) -> ChannelDay:
        rules = counts.get("rule", Counter())
        prefix = f"{name} "
        by_rule = {k.removeprefix(prefix): n for k, n in sorted(rules.items()) if k.startswith(prefix)}
        made, refused = counts.get("made", Counter()), counts.get("refused", Counter())
        return ChannelDay(made[name], refused[name], by_rule)

    held = counts.get("held", Counter())
    return DayPlan(day, channel("voice"), channel("sms"), sum(held.values()), dict(sorted(held.items())))


def merge(plans: Sequence[Plan]) -> Plan:
    """One plan from the plans of parts of a campaign (the same start, days and account followed)."""
    first = plans[0]
    days: dict[date, list[DayPlan]] = {}
    for p in plans:
        for d in p.days:
            days.setdefault(d.day, []).append(d)
    stopped: Counter[str] = Counter()
    for p in plans:
        stopped.update(p.stopped)
    return replace(
        first,
        accounts=sum(p.accounts for p in plans),
        days=tuple(_merged_day(day, days[day]) for day in sorted(days)),
        stopped=dict(stopped),
        to_person=sum(p.to_person for p in plans),
        errors=tuple(e for p in plans for e in p.errors),
        schedule=next((p.schedule for p in plans if p.schedule), ()),
        simulated=sum(p.simulated for p in plans),
    )


def _merged_day(day: date, parts: Sequence[DayPlan]) -> DayPlan:
    def channel(name: Channel) -> ChannelDay:
        rules: Counter[str] = Counter()
        for d in parts:
            rules.update(d.channel(name).by_rule)
        made = sum(d.channel(name).made for d in parts)
        return ChannelDay(made, sum(d.channel(name).refused for d in parts), dict(sorted(rules.items())))

    held: Counter[str] = Counter()
    for d in parts:
        held.update(d.held_by)
    return DayPlan(day, channel("voice"), channel("sms"), sum(held.values()), dict(sorted(held.items())))
