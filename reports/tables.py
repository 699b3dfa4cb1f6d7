"""A report in the terminal: rich tables titled with the metrics' names (reports/metrics.py).

A rate reads "41.2% (38.1–44.3%) 412/1000": the rate, its Wilson 95 % interval, what was divided by
what; where an interval would mislead (too few accounts) the reason stands in its place.
"""

from __future__ import annotations

from collections.abc import Sequence

import iso4217
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reports.metrics import BY_KEY, METRICS
from reports.report import Arms, Cell, Report
from reports.stats import AmountDifference, AmountInterval, Difference, SampleSize

GROUPS_PER_TABLE = 4  # more columns of "41.2% (38.1–44.3%) 412/1000" do not fit a terminal


def render(console: Console, report: Report) -> None:
    console.print(_heading(report), highlight=False)
    for start in range(0, len(report.groups), GROUPS_PER_TABLE):
        console.print(_metrics(report, report.groups[start : start + GROUPS_PER_TABLE]))
    if report.roll_rates:
        console.print(
            _cells_table("Roll rates: accounts in a bucket at a month's start", "month", report.roll_rates)
        )
    if report.arms is not None:
        _arms(console, report.arms)
    for note in report.notes:
        console.print(f"note: {escape(note)}", highlight=False)


def _heading(report: Report) -> str:
    by = f", by {report.by}" if report.by else ""
    return (
        f"campaign {report.campaign}{by}: contacts over the whole campaign, money (cures, recovery, "
        f"entries) from {report.start:%Y-%m-%d} to {report.today:%Y-%m-%d}."
    )


def _metrics(report: Report, groups: Sequence[str]) -> Table:
    table = Table(title="Metrics (rate (95 % Wilson interval) numerator/denominator)")
    table.add_column("metric")
    for group in groups:
        table.add_column(escape(group), overflow="fold")
    for metric in METRICS:
        if metric.key == "roll_rate":
            continue
        values = ["\n".join(format_cell(c) for c in report.cell(g, metric.key)) for g in groups]
        table.add_row(metric.title, *(escape(v) for v in values))
    return table


def _cells_table(title: str, first: str, cells: Sequence[Cell]) -> Table:
    table = Table(first, "rolled", "rate", title=title)
    for c in cells:
        table.add_row(escape(c.group), escape(c.note), escape(format_cell(c)))
    return table


def format_cell(cell: Cell) -> str:
    """One metric's value as the tables show it (also for the operations page)."""
    if cell.metric == "recovery_rate" and cell.denominator is not None:
        return _recovery(cell)
    if cell.numerator is None or cell.denominator is None:  # a count, or nothing counted
        return cell.why or f"{cell.numerator:,}"
    if cell.metric == "calls_per_right_party":
        shown = "—" if cell.value is None else f"{cell.value:.2f}"
        return _with_why(f"{shown} {cell.numerator or 0:,}/{cell.denominator:,}", cell.why)
    return format_rate(cell)


def format_rate(cell: Cell) -> str:
    shown = "—" if cell.value is None else f"{cell.value:.1%}"
    fraction = f"{cell.numerator or 0:,}/{cell.denominator or 0:,}"
    if cell.low is not None and cell.high is not None:
        return f"{shown} ({cell.low * 100:.1f}–{cell.high * 100:.1f}%) {fraction}"
    return _with_why(f"{shown} {fraction}", cell.why)


def _with_why(text: str, why: str | None) -> str:
    return f"{text} ({why})" if why else text


def _recovery(cell: Cell) -> str:
    if not cell.denominator:
        return f"— ({cell.why})" if cell.why else "—"
    currency, _, rest = cell.note.partition("; ")
    paid = f"{money(cell.numerator or 0, currency)}/{money(cell.denominator or 0, currency)} {currency}"
    shown = "—" if cell.value is None else f"{cell.value:.1%}"
    return _with_why(f"{shown} {paid}; {rest}", cell.why)


def money(minor: float, currency: str) -> str:
    """Minor units as the currency writes them (2 decimals for USD, none for JPY)."""
    exponent = _exponent(currency)
    return f"{minor / 10**exponent:,.{exponent}f}"


def _exponent(currency: str) -> int:
    if not currency:
        return 0  # no currency known (nothing paid or owed yet): the minor units as they are
    try:
        return iso4217.Currency(currency).exponent or 0
    except ValueError:
        return 2  # an unknown code: the commonest exponent, rather than no amount at all


# ------------------------------------------------------------------ arms


def _arms(console: Console, arms: Arms) -> None:
    console.print(
        f"A/B: champion {escape(arms.champion)} ({escape(arms.why_champion)}); intention to treat: "
        "every assigned account counts, reached or not.",
        highlight=False,
    )
    console.print(_arm_rates(arms))
    if arms.differences:
        console.print(_differences(arms))
    if arms.amounts:
        console.print(_amounts(arms))


def _arm_rates(arms: Arms) -> Table:
    names = list(dict.fromkeys(c.group for c in arms.rates))
    metrics = list(dict.fromkeys(c.metric for c in arms.rates))
    table = Table(title="Arms: rates over every assigned account (cure: over those late at the start)")
    table.add_column("metric")
    for name in names:
        table.add_column(escape(name + (" (champion)" if name == arms.champion else "")), overflow="fold")
    for key in metrics:
        row = [
            next(format_rate(c) for c in arms.rates if c.group == name and c.metric == key) for name in names
        ]
        table.add_row(BY_KEY[key].title, *(escape(v) for v in row))
    return table


def _differences(arms: Arms) -> Table:
    table = Table(title=f"Arms against {escape(arms.champion)}: difference (Newcombe 95 %), pooled z test")
    for name in ("metric", "arm", "difference", "test", "accounts still needed per arm"):
        table.add_column(name, overflow="fold")
    for d in arms.differences:
        table.add_row(
            BY_KEY[d.metric].title,
            escape(d.arm),
            escape(format_difference(d.difference)),
            escape(format_test(d.difference)),
            escape(format_sample(d.sample, arms.champion, d.arm)),
        )
    return table


def format_difference(d: Difference) -> str:
    if d.diff is None:
        return d.why_no_interval or "—"
    points = f"{d.diff * 100:+.1f} points"
    if d.low is None or d.high is None:
        return _with_why(points, d.why_no_interval)
    return f"{points} ({d.low * 100:+.1f} to {d.high * 100:+.1f})"


def format_test(d: Difference) -> str:
    if d.z is None or d.p_value is None:
        return d.why_no_test or "—"
    return f"z = {d.z:.2f}, p = {d.p_value:.3g}"


def format_sample(s: SampleSize, champion: str, arm: str) -> str:
    if s.needed_a is None or s.needed_b is None:
        return s.why_none or "—"
    return f"{champion} {s.needed_a:,} ({s.more_a:,} more), {arm} {s.needed_b:,} ({s.more_b:,} more)"


def _amounts(arms: Arms) -> Table:
    table = Table(title="Amount recovered per assigned account (0 for the unreached; bootstrap 95 %)")
    for name in ("arm", "mean per assigned account", f"difference from {escape(arms.champion)}"):
        table.add_column(name, overflow="fold")
    for a in arms.amounts:
        table.add_row(
            escape(a.arm),
            escape(format_amount(a.amount, a.currency)),
            escape(format_amount_difference(a.difference, a.currency)),
        )
    return table


def format_amount(a: AmountInterval, currency: str = "") -> str:
    if a.mean is None:
        return a.why_no_interval or "—"
    text = f"{money(a.mean, currency)} {currency} over {a.count:,} accounts".replace("  ", " ")
    if a.low is None or a.high is None:
        return _with_why(text, a.why_no_interval)
    interval = f"({money(a.low, currency)}–{money(a.high, currency)})"
    return f"{money(a.mean, currency)} {interval} {currency} over {a.count:,} accounts".replace("  ", " ")


def format_amount_difference(d: AmountDifference | None, currency: str = "") -> str:
    if d is None:
        return "(the champion)"
    if d.diff is None:
        return d.why_no_interval or "—"
    diff = f"{'+' if d.diff >= 0 else '-'}{money(abs(d.diff), currency)} {currency}".rstrip()
    if d.low is None or d.high is None:
        return _with_why(diff, d.why_no_interval)
    return f"{diff} ({_signed(d.low, currency)} to {_signed(d.high, currency)})"


def _signed(value: float, currency: str) -> str:
    return f"{'+' if value >= 0 else '-'}{money(abs(value), currency)}"
