"""The dry run's work and its printout, for `duecall campaign plan` and the demo."""

from __future__ import annotations

import multiprocessing
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dialer.strategy.plan import ChannelDay, Entry, Gate, Plan, StrategyOf, merge, plan
from dialer.strategy.snapshot import Snapshot

PARALLEL_FROM = 5000  # fewer accounts are planned in a second or two: not worth a process each


@dataclass(frozen=True)
class Work:
    snapshots: Sequence[Snapshot]
    strategy_of: StrategyOf
    gate: Gate
    start: datetime
    days: int
    campaign_id: int
    follow: str | None


_PARTS: list[Work] = []  # what the forked workers plan: set just before the fork, read by index


def plan_on_every_core(work: Work, workers: int | None = None) -> Plan:
    """The plan, its accounts split over one process per core (each part keeps the accounts of a
    zone and due date together, so that they still share their simulation), then merged."""
    workers = workers or len(os.sched_getaffinity(0))
    if workers <= 1 or len(work.snapshots) < PARALLEL_FROM:
        return _plan(work)
    _PARTS[:] = [replace(work, snapshots=part) for part in _split(work.snapshots, workers)]
    try:
        with multiprocessing.get_context("fork").Pool(len(_PARTS)) as pool:
            return merge(pool.map(_plan_part, range(len(_PARTS))))
    finally:
        _PARTS.clear()


def _plan(work: Work) -> Plan:
    return plan(
        work.snapshots, work.strategy_of, work.gate, work.start, work.days, work.campaign_id, work.follow
    )


def _plan_part(index: int) -> Plan:
    return _plan(_PARTS[index])


def _split(snapshots: Sequence[Snapshot], workers: int) -> list[list[Snapshot]]:
    together: dict[tuple[tuple[str, ...], date], list[Snapshot]] = defaultdict(list)
    for x in snapshots:
        together[x.account.account.time_zones, x.account.account.due_date].append(x)
    parts: list[list[Snapshot]] = [[] for _ in range(workers)]
    for group in sorted(together.values(), key=len, reverse=True):  # the largest first, to the lightest
        min(parts, key=len).extend(group)
    return [p for p in parts if p]


def render(out: Console, campaign_name: str, result: Plan) -> None:
    out.print(
        f"campaign {campaign_name}: dry run of {result.accounts} accounts "
        f"from {result.start:%Y-%m-%d %H:%M} UTC to {result.end:%Y-%m-%d %H:%M} UTC, "
        "assuming nobody answers or replies and no payment comes in.",
        highlight=False,
    )
    out.print(_days(result))
    out.print(
        f"in all: {result.made('voice')} calls and {result.made('sms')} texts would be made; "
        f"the policy said not now {result.refused('voice')} times to a call and "
        f"{result.refused('sms')} times to a text (most were moved to later).",
        highlight=False,
    )
    if result.stopped:
        out.print(_stopped(result))
    for error in result.errors:
        out.print(f"[red]not planned to the end:[/red] {escape(error)}", highlight=False)
    if result.followed is not None:
        out.print(_schedule(result))
    out.print("Nothing was sent: this was a simulation (the store is unchanged).", highlight=False)


_SOURCE = re.compile(r" \[source: [^\]]*\]")
# "Not now": the policy's no at that moment, mostly a contact moved to later (a call asked for at
# 04:00 waits for 08:00); `duecall run` records only the decisions of the contacts it makes.
_DAY_COLUMNS = ("day", "calls made", "calls not now, by rule", "texts made", "texts not now, by rule", "held")


def _days(result: Plan) -> Table:
    table = Table(title="per local day (each account's own day)")
    for name in _DAY_COLUMNS:
        table.add_column(name, justify="right" if "made" in name else "left")
    for d in result.days:
        table.add_row(
            f"{d.day:%a %Y-%m-%d}",
            str(d.voice.made),
            _refused(d.voice),
            str(d.sms.made),
            _refused(d.sms),
            escape(_counts(d.held_by)),
        )
    return table


def _refused(day: ChannelDay) -> str:
    return escape(f"{day.refused}: {_counts(day.by_rule)}") if day.refused else "0"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _stopped(result: Plan) -> Table:
    table = Table(title="accounts the strategy stops")
    table.add_column("why")
    table.add_column("accounts", justify="right")
    for why, n in sorted(result.stopped.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(escape(why), str(n))
    table.add_row("of which to a person", str(result.to_person))
    return table


def _schedule(result: Plan) -> Table:
    table = Table(title=f"account {result.followed}: its schedule")
    for name in ("UTC", "local", "what", "contact", "policy", "why"):
        table.add_column(name, overflow="fold")
    for e in result.schedule:
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M}",
            f"{e.local:%a %m-%d %H:%M %Z}",
            _kind(e),
            escape(_contact(e)),
            escape(", ".join(e.rules)),
            escape(_why(e)),
        )
    if not result.schedule:
        table.add_row("", "", "nothing", "", "", "the plan never reached this account")
    return table


def _kind(e: Entry) -> str:
    if e.kind == "stopped":
        return "stopped (to a person)" if e.to_person else "stopped"
    return e.kind


def _contact(e: Entry) -> str:
    return f"{e.channel} {e.what or ''}".strip() if e.channel else ""


def _why(e: Entry) -> str:
    parts = [_SOURCE.sub("", e.why)]  # the policy's sources are long: `duecall policy check` shows them
    if e.source:
        parts.append(f"[{e.source}]")
    if e.until is not None:
        parts.append(f"until {e.until:%Y-%m-%d %H:%M} UTC")
    return " ".join(parts)
