"""What the store counts for one report: its aggregate queries' rows, read on the event loop.

Each grouped query is asked for the whole campaign and then for the grouping asked for; a query the
store cannot split that way (its ValueError) is kept for the whole campaign, with a note. Also here:
which arm is the champion, the one the others are compared with.
"""

from __future__ import annotations

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
    notes: list[str] = []
    unsplit: set[str] = set()
    funnel, arm_funnel = await _funnels(store, campaign_id, by, notes, unsplit)
    promises = await _grouped(
        lambda b: store.promise_verdicts(campaign_id, today, b), by, "promises", notes, unsplit
    )
    cures = await _grouped(lambda b: store.cures(campaign_id, start, today, b), by, "cures", notes, unsplit)
    entries = await _grouped(
        lambda b: store.entries(campaign_id, start, today, b), by, "entries", notes, unsplit
    )
    curves = await store.curves(campaign_id, CURVE_DAYS, today)
    return Counts(
        by=by,
        funnel=funnel,
        promises=promises,
        cures=cures,
        entries=entries,
        roll=await store.roll_matrix(campaign_id, roll_months(start, today), today),
        curves=curves,
        hours=await store.contacts_by_hour(campaign_id),
        arm_funnel=arm_funnel,
        arm_cures=await store.cures(campaign_id, start, today, "arm") if arm_funnel else [],
        recovered=await _recovered(store, campaign_id, since) if arm_funnel else {},
        notes=tuple(notes),
        unsplit=frozenset(unsplit),
    )


def roll_months(start: date, today: date) -> int:
    """The roll matrix's months: from the period's first month (the campaign's, by default) to
    today's, at most ROLL_MONTHS. Months before it would only show accounts not yet due as M0."""
    months = (today.year - start.year) * 12 + today.month - start.month + 1
    return max(1, min(ROLL_MONTHS, months))


async def _funnels(
    store: Store, campaign_id: int, by: str, notes: list[str], unsplit: set[str]
) -> tuple[dict[str, list[FunnelRow]], list[FunnelRow]]:
    """The funnel for the whole campaign and by `by`, and the arms' (for the A/B section). Each
    account has one arm or none, so the whole campaign's row is the sum of the arms' rows: one
    aggregate query over every call fewer (the funnel is the report's costliest query)."""
    arm_rows = await store.funnel(campaign_id, "arm") if await store.arm_counts(campaign_id) else []
    assigned = [row for row in arm_rows if row.group]
    if not arm_rows or by not in ("", "arm"):
        funnel = await _grouped(lambda b: store.funnel(campaign_id, b), by, "contacts", notes, unsplit)
        return funnel, assigned
    whole = FunnelRow("", *(sum(getattr(r, f.name) for r in arm_rows) for f in fields(FunnelRow)[1:]))
    return {ALL: [whole], **(_labelled(arm_rows) if by == "arm" else {})}, assigned


async def _recovered(store: Store, campaign_id: int, since: date | None) -> dict[str, dict[str, list[int]]]:
    """Per currency (amounts in different currencies are not added), per arm, what each assigned
    account paid."""
    return await store.recovered_by_currency(campaign_id, since) or {"": {}}


class _Grouped(Protocol):
    @property
    def group(self) -> str: ...


R = TypeVar("R", bound=_Grouped)


async def _grouped(
    query: Callable[[str], Awaitable[Sequence[R]]], by: str, what: str, notes: list[str], unsplit: set[str]
) -> dict[str, list[R]]:
    """The query's rows under the report's group labels: ALL for the whole campaign, then each group
    of `by` (NO_GROUP for accounts without its value). A query that cannot split by `by` (the
    store's ValueError) gives the whole campaign's alone, with a note saying so."""
    out: dict[str, list[R]] = {ALL: list(await query(""))}
    if not by:
        return out
    try:
        split = list(await query(by))
    except ValueError as error:
        notes.append(f"{what}: for all accounts only, not by {by} ({error})")
        unsplit.add(what)
        return out
    return {**out, **_labelled(split)}


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
