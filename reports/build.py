"""A campaign's report: the store's counts (aggregate queries), then every metric with its interval.

Intention to treat throughout: every account of the campaign (of the arm) is in the denominators
that count accounts, reached or not; an arm's amount recovered counts 0 for an account nobody
reached. The contacts (the funnel) are the whole campaign's; the money (cures, recovery, entries,
amounts per arm) is the period from `since` (else the campaign's first day) to `today`.

Reading is `reports.counts.gather` (the store's queries, on the event loop: they are awaits);
computing is `compute` (pure, CPU: the bootstrap over every assigned account), run in a thread.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import date
from pathlib import Path

from dialer.core.balance import BUCKETS, OVER
from dialer.core.models import Campaign
from dialer.store import Store
from dialer.store.outcomes import CureRow, EntryRow, PromiseRow, RollRow
from dialer.store.reports import FunnelRow
from reports.ab import arms
from reports.cells import count, rate, ratio
from reports.counts import Counts, champion_of, gather, one
from reports.metrics import METRICS
from reports.plots import write_plots
from reports.report import ALL, Cell, CurvePoint, FunnelBars, Hour, Report, Roll

BYS = ("", "arm", "step", "segment", "bucket", "period")
_NEXT_BUCKET = {name: nxt for (_, name), (_, nxt) in zip(BUCKETS, [*BUCKETS[1:], (0, OVER)], strict=True)}


async def build_report(
    store: Store, campaign: Campaign, *, by: str, since: date | None, today: date
) -> Report:
    """The campaign's report grouped `by` (see BYS): counts from the store, then the statistics."""
    if by not in BYS:
        raise ValueError(f"a report by {by!r}: by one of {', '.join(b or '(nothing)' for b in BYS)}")
    start = since or campaign.created_at.date()
    counts = await gather(store, campaign.id, by, since, start, today)
    names = [row.group for row in counts.arm_funnel]
    champion, why = await asyncio.to_thread(champion_of, names, campaign.strategy_file)
    return await asyncio.to_thread(compute, counts, campaign.name, start, today, champion, why)


async def report_png(store: Store, campaign: Campaign, today: date, directory: Path) -> list[Path]:
    """The whole campaign's plots (the arms' too, if it has any) as PNG files in `directory`:
    funnel, curves, roll_rates, arms and hours, drawn in a thread. For the operations page."""
    report = await build_report(store, campaign, by="", since=None, today=today)
    return await asyncio.to_thread(write_plots, report, directory)


# ------------------------------------------------------------------ computing


def compute(
    counts: Counts, campaign: str, start: date, today: date, champion: str, why_champion: str
) -> Report:
    """Every metric of every group, the roll rates and the A/B section, from the store's counts."""
    groups = list(counts.funnel) if counts.funnel.get(ALL) else [ALL]
    return Report(
        campaign=campaign,
        by=counts.by,
        start=start,
        today=today,
        groups=tuple(groups),
        cells=tuple(c for g in groups for c in _group_cells(counts, g)),
        roll_rates=tuple(_roll_rates(counts.roll)),
        arms=arms(counts, champion, why_champion) if counts.arm_funnel else None,
        funnel=tuple(_funnel_bars(counts, groups)),
        curves=tuple(
            CurvePoint(r.days_past_due, r.currency, r.late, r.cured, r.overdue_minor, r.recovered_minor)
            for r in counts.curves
        ),
        roll_matrix=tuple(Roll(r.month, r.from_bucket, r.to_bucket, r.accounts) for r in counts.roll),
        hours=tuple(Hour(r.hour, r.calls, r.contacted, r.right_party, r.texts) for r in counts.hours),
        notes=counts.notes,
    )


def _group_cells(counts: Counts, group: str) -> list[Cell]:
    funnel = one(counts.funnel, group) or FunnelRow(group, *[0] * (len(fields(FunnelRow)) - 1))
    promises, cures = one(counts.promises, group), counts.cures.get(group, [])
    cells: list[Cell] = []
    for metric in METRICS:
        key = metric.key
        if key == "roll_rate":
            continue  # by month and bucket, not by group: `Report.roll_rates`
        if key in _FUNNEL_METRICS:
            cells.append(_FUNNEL_METRICS[key](group, funnel))
        elif group != ALL and _QUERY_OF.get(key) in counts.unsplit:
            cells.append(
                Cell(group, key, None, None, None, None, f"not counted by {counts.by} (see the notes)")
            )
        elif key == "promise_kept_rate":
            cells.append(_kept(group, promises))
        elif key == "cure_rate":
            cells.append(_cure(group, cures))
        elif key == "recovery_rate":
            owed = [row for row in cures if row.overdue_minor]  # a currency nobody owed in: no row
            cells.extend([_recovery(group, row) for row in owed] or [_recovery(group, None)])
        elif key == "entry_rate":
            cells.append(_entry(group, counts.entries.get(group, [])))
        else:  # a METRICS key added without its counting
            raise ValueError(f"metric {key!r}: the report does not compute it")
    return cells


_QUERY_OF = {
    "promise_kept_rate": "promises",
    "cure_rate": "cures",
    "recovery_rate": "cures",
    "entry_rate": "entries",
}


_FUNNEL_METRICS = {
    "attempts": lambda g, f: count(g, "attempts", f.calls),
    "accounts_attempted": lambda g, f: count(g, "accounts_attempted", f.attempted),
    "contact_rate": lambda g, f: rate(g, "contact_rate", f.contacted, f.attempted, "accounts attempted"),
    "right_party_rate": lambda g, f: rate(
        g, "right_party_rate", f.right_party, f.attempted, "accounts attempted"
    ),
    "promise_rate": lambda g, f: rate(g, "promise_rate", f.promised, f.right_party, "right-party accounts"),
    "sms_delivered_rate": lambda g, f: rate(g, "sms_delivered_rate", f.delivered, f.texts, "texts"),
    "sms_reply_rate": lambda g, f: rate(g, "sms_reply_rate", f.replied, f.texted, "accounts texted"),
    "sms_opt_out_rate": lambda g, f: rate(g, "sms_opt_out_rate", f.opted_out, f.texted, "accounts texted"),
    "calls_per_right_party": lambda g, f: ratio(
        g, "calls_per_right_party", f.calls, f.right_party_calls, "no right-party contact: no ratio"
    ),
}


def _kept(group: str, p: PromiseRow | None) -> Cell:
    """Promises kept over promises whose day has passed (a pending promise is in neither)."""
    kept, due = (0, 0) if p is None else (p.kept, p.kept + p.partially_kept + p.broken)
    return rate(group, "promise_kept_rate", kept, due, "promises due")


def _cure(group: str, rows: Sequence[CureRow]) -> Cell:
    """Cured accounts over those late at the start, whatever their currency."""
    cured, late = sum(r.cured for r in rows), sum(r.late_at_start for r in rows)
    return rate(group, "cure_rate", cured, late, "late accounts")


def _recovery(group: str, row: CureRow | None) -> Cell:
    why = "nothing overdue at the start: no rate"
    if row is None:
        return ratio(group, "recovery_rate", 0, 0, why)
    note = f"{row.currency}; {row.paying} accounts paid"
    return ratio(group, "recovery_rate", row.recovered_minor, row.overdue_minor, why, note)


def _entry(group: str, rows: Sequence[EntryRow]) -> Cell:
    unpaid, due = sum(r.unpaid_day1 for r in rows), sum(r.due for r in rows)
    return rate(group, "entry_rate", unpaid, due, "accounts due")


def _roll_rates(rows: Sequence[RollRow]) -> list[Cell]:
    """Per month and bucket: the share of its accounts that rolled into the next bucket."""
    at_start: dict[tuple[date, str], int] = defaultdict(int)
    rolled: dict[tuple[date, str], int] = defaultdict(int)
    for r in rows:
        at_start[r.month, r.from_bucket] += r.accounts
        if _NEXT_BUCKET.get(r.from_bucket) == r.to_bucket:
            rolled[r.month, r.from_bucket] += r.accounts
    cells = []
    for month, bucket in sorted(at_start, key=lambda k: (k[0], _bucket_order(k[1]))):
        if bucket not in _NEXT_BUCKET:
            continue  # the last bucket rolls nowhere
        cell = rate(
            f"{month:%Y-%m} {bucket}", "roll_rate", rolled[month, bucket], at_start[month, bucket], "accounts"
        )
        cells.append(replace(cell, note=f"{bucket} to {_NEXT_BUCKET[bucket]}"))
    return cells


def _bucket_order(name: str) -> int:
    names = [n for _, n in BUCKETS] + [OVER]
    return names.index(name) if name in names else len(names)


def _funnel_bars(counts: Counts, groups: Sequence[str]) -> list[FunnelBars]:
    bars = []
    for group in groups:
        f, p = one(counts.funnel, group), one(counts.promises, group)
        if f is not None:
            kept = 0 if p is None else p.kept
            bars.append(FunnelBars(group, f.attempted, f.contacted, f.right_party, f.promised, kept))
    return bars
