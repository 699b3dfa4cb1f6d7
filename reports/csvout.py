"""A report as CSV: one row per (group, metric), the metric named by its key (reports/metrics.py).

Columns: group, metric, numerator, denominator, value, low, high, note. Rates are fractions
(0.412, not 41.2 %); low and high are the 95 % interval, empty where none means something (the
note says why). Beside the groups' rows: roll rates (group "YYYY-MM Mn"), the arms over every
assigned account (group "arm NAME"), each challenger against the champion (group "NAME - CHAMPION":
Newcombe interval, z test and sample size in the note) and the amount recovered per assigned
account (metric recovery_rate, bootstrap interval). Every text cell passes `dialer.core.csvsafe`,
so a spreadsheet never runs one as a formula; UTF-8 with a BOM, so Excel reads 入催率 right.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from dialer.core import csvsafe
from reports.report import Arms, Cell, Report
from reports.stats import AmountInterval
from reports.tables import format_sample, format_test

COLUMNS = ("group", "metric", "numerator", "denominator", "value", "low", "high", "note")
Row = tuple[object, ...]


def write_csv(report: Report, path: Path) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        writer.writerows(_safe(row) for row in rows(report))
    return path


def _safe(row: Row) -> list[object]:
    """Text cells (group, metric, note) made safe; the numbers are ours, and "-0.05" is a number."""
    group, metric, *numbers, note = row
    return [csvsafe.cell(group), csvsafe.cell(metric), *numbers, csvsafe.cell(note)]


def rows(report: Report) -> Iterator[Row]:
    for cell in (*report.cells, *report.roll_rates):
        yield _cell_row(cell, cell.group)
    if report.arms is not None:
        yield from _arm_rows(report.arms)


def _cell_row(cell: Cell, group: str, extra: str = "") -> Row:
    note = "; ".join(part for part in (cell.note, extra, cell.why or "") if part)
    return (
        group,
        cell.metric,
        cell.numerator,
        cell.denominator,
        _number(cell.value),
        _number(cell.low),
        _number(cell.high),
        note,
    )


def _arm_rows(arms: Arms) -> Iterator[Row]:
    itt = "intention to treat: every assigned account"
    for cell in arms.rates:
        yield _cell_row(cell, f"arm {cell.group}", itt)
    for d in arms.differences:
        diff = d.difference
        note = "; ".join(
            part
            for part in (
                "difference of rates, Newcombe 95 %",
                diff.why_no_interval or "",
                format_test(diff),
                "accounts needed: " + format_sample(d.sample, arms.champion, d.arm),
            )
            if part
        )
        yield (
            f"{d.arm} - {arms.champion}",
            d.metric,
            "",
            "",
            _number(diff.diff),
            _number(diff.low),
            _number(diff.high),
            note,
        )
    for a in arms.amounts:
        yield _amount_row(f"arm {a.arm}", a.currency, a.amount)
        if a.difference is not None:
            gap = a.difference
            note = f"{a.currency}: difference of the means per assigned account (minor units), bootstrap 95 %"
            note += f"; {gap.why_no_interval}" if gap.why_no_interval else ""
            yield (
                f"{a.arm} - {arms.champion}",
                "recovery_rate",
                "",
                "",
                _number(gap.diff),
                _number(gap.low),
                _number(gap.high),
                note,
            )


def _amount_row(group: str, currency: str, a: AmountInterval) -> Row:
    note = f"{currency}: mean amount recovered per assigned account (minor units), bootstrap 95 %"
    note += f"; {a.why_no_interval}" if a.why_no_interval else ""
    return (group, "recovery_rate", "", a.count, _number(a.mean), _number(a.low), _number(a.high), note)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"
