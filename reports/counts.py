"""What the store counts for one report: its aggregate queries' rows, read on the event loop.

Each grouped query is asked for the whole campaign and then for the grouping asked for; a query the
store cannot split that way (its ValueError) is kept for the whole campaign, with a note. Also here:
which arm is the champion, the one the others are compared with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Protocol, TypeVar

from dialer.core import bounded_yaml
from dialer.store import Store
from dialer.store.outcomes import CureRow, CurveRow, EntryRow, PromiseRow, RollRow
from dialer.store.reports import FunnelRow, HourRow
from reports.report import ALL, NO_GROUP

CURVE_DAYS = 120  # the curves run through M4 (120 days past due): beyond it lenders sell or write off
ROLL_MONTHS = 6  # the roll-rate matrix's months: a half year shows a trend without old strategies
CHAMPION = "champion"  # an arm of this name is the champion whatever the order of the arms
MAX_STRATEGY_BYTES = 256 * 1024  # as the strategy loader allows


@dataclass(frozen=True)
class Counts:
    """What the store counted for one report (its queries' rows, as they came)."""

    by: str
    funnel: Mapping[str, Sequence[FunnelRow]]  # by group label: ALL, then the groups of `by`
    promises: Mapping[str, Sequence[PromiseRow]]
    cures: Mapping[str, Sequence[CureRow]]  # one per currency
    entries: Mapping[str, Sequence[EntryRow]]
    roll: Sequence[RollRow]
    curves: Sequence[CurveRow]
    hours: Sequence[HourRow]
    arm_funnel: Sequence[FunnelRow]
    arm_cures: Sequence[CureRow]
    recovered: Mapping[str, Mapping[str, Sequence[int]]]  # currency -> arm -> per assigned account
    notes: tuple[str, ...] = field(default=())
    unsplit: frozenset[str] = frozenset()  # the grouped queries that could not split by `by`


async def gather(
    store: Store, campaign_id: int, by: str, since: date | None, start: date, today: date
) -> Counts:
    """Every count of the report: the rollups brought up to date first (they write), then the
    queries side by side on the store's read connections."""
    await store.refresh_report_rollups(campaign_id)
    await store.refresh_promise_verdicts(campaign_id, today)
    has_arms = bool(await store.arm_counts(campaign_id))
    split = _Split(by)
    async with asyncio.TaskGroup() as tasks:
        funnels = tasks.create_task(_funnels(store, campaign_id, split, has_arms))
        promises = tasks.create_task(
            split.rows(lambda b: store.promise_verdicts(campaign_id, today, b), "promises")
        )
        cures = tasks.create_task(split.rows(lambda b: store.cures(campaign_id, start, today, b), "cures"))
        entries = tasks.create_task(
            split.rows(lambda b: store.entries(campaign_id, start, today, b), "entries")
        )
        curves = tasks.create_task(store.curves(campaign_id, CURVE_DAYS, today))
        roll = tasks.create_task(store.roll_matrix(campaign_id, roll_months(start, today), today))
        hours = tasks.create_task(store.contacts_by_hour(campaign_id))
        arms = (
            (
                tasks.create_task(store.cures(campaign_id, start, today, "arm")),
                tasks.create_task(_recovered(store, campaign_id, since)),
            )
            if has_arms
            else None
        )
    funnel, arm_funnel = funnels.result()
    return Counts(
        by=by,
        funnel=funnel,
        promises=promises.result(),
        cures=cures.result(),
        entries=entries.result(),
        roll=roll.result(),
        curves=curves.result(),
        hours=hours.result(),
        arm_funnel=arm_funnel,
        arm_cures=arms[0].result() if arms else [],
        recovered=arms[1].result() if arms else {},
        notes=split.notes(),
        unsplit=frozenset(split.unsplit),
    )


def roll_months(start: date, today: date) -> int:
    """The roll matrix's months: from the period's first month (the campaign's, by default) to
    today's, at most ROLL_MONTHS. Months before it would only show accounts not yet due as M0."""
    months = (today.year - start.year) * 12 + today.month - start.month + 1
    return max(1, min(ROLL_MONTHS, months))


async def _funnels(
    store: Store, campaign_id: int, split: _Split, has_arms: bool
) -> tuple[dict[str, list[FunnelRow]], list[FunnelRow]]:
    """The funnel for the whole campaign and by `by`, and the arms' (for the A/B section). Each
    account has one arm or none, so the whole campaign's row is the sum of the arms' rows: one
    aggregate query over every call fewer (the funnel is the report's costliest query)."""
    arm_rows = await store.funnel(campaign_id, "arm") if has_arms else []
    assigned = [row for row in arm_rows if row.group]
    if not arm_rows or split.by not in ("", "arm"):
        return await split.rows(lambda b: store.funnel(campaign_id, b), "contacts"), assigned
    whole = FunnelRow("", *(sum(getattr(r, f.name) for r in arm_rows) for f in fields(FunnelRow)[1:]))
    return {ALL: [whole], **(_labelled(arm_rows) if split.by == "arm" else {})}, assigned


async def _recovered(store: Store, campaign_id: int, since: date | None) -> dict[str, dict[str, list[int]]]:
    """Per currency (amounts in different currencies are not added), per arm, what each assigned
    account paid."""
    return await store.recovered_by_currency(campaign_id, since) or {"": {}}


class _Grouped(Protocol):
    @property
    def group(self) -> str: ...


R = TypeVar("R", bound=_Grouped)


# The grouped queries, in the order their notes are given.
_GROUPED = ("contacts", "promises", "cures", "entries")


class _Split:
    """The grouped queries of one report (by `by`), and what they could not split."""

    def __init__(self, by: str) -> None:
        self.by = by
        self.unsplit: set[str] = set()
        self._notes: dict[str, str] = {}

    async def rows(self, query: Callable[[str], Awaitable[Sequence[R]]], what: str) -> dict[str, list[R]]:
        """The query's rows under the report's group labels: ALL for the whole campaign, then each
        group of `by` (NO_GROUP for accounts without its value). A query that cannot split by `by`
        (the store's ValueError) gives the whole campaign's alone, with a note saying so."""
        out: dict[str, list[R]] = {ALL: list(await query(""))}
        if not self.by:
            return out
        try:
            split = list(await query(self.by))
        except ValueError as error:
            self._notes[what] = f"{what}: for all accounts only, not by {self.by} ({error})"
            self.unsplit.add(what)
            return out
        return {**out, **_labelled(split)}

    def notes(self) -> tuple[str, ...]:
        return tuple(self._notes[what] for what in _GROUPED if what in self._notes)


def _labelled(rows: Sequence[R]) -> dict[str, list[R]]:
    """Rows by group label, in the store's order but for NO_GROUP (no arm, step ...), put last."""
    out: dict[str, list[R]] = {}
    for row in sorted(rows, key=lambda r: not r.group):
        out.setdefault(row.group or NO_GROUP, []).append(row)
    return out


def champion_of(arms: Sequence[str], strategy_file: str) -> tuple[str, str]:
    """The arm the others are compared with, and how it was told: the arm named `champion`, else the
    strategy's first arm (docs/strategy.md), else, the file unreadable, the first arm by name."""
    if not arms:
        return "", "no arms"
    if CHAMPION in arms:
        return CHAMPION, f"the arm named {CHAMPION}"
    first, why = _first_arm(strategy_file)
    if first is not None and first in arms:
        return first, f"the first arm of {strategy_file}"
    return sorted(arms)[0], f"the first arm by name ({why})"


def _first_arm(strategy_file: str) -> tuple[str | None, str]:
    if not strategy_file:
        return None, "the campaign has no strategy file"
    path = Path(strategy_file)
    try:
        text = bounded_yaml.read_text(path, MAX_STRATEGY_BYTES, "a contact strategy")
        data, _ = bounded_yaml.parse(text, path, "a contact strategy")
        name = data["arms"]["variants"][0]["name"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        return None, f"{strategy_file} unreadable: {error}"
    if not isinstance(name, str):
        return None, f"{strategy_file}: its first arm has no name"
    return name, ""


def one(rows: Mapping[str, Sequence[R]], group: str) -> R | None:
    found = rows.get(group)
    return found[0] if found else None
