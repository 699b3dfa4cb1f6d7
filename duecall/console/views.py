"""What the operations pages show, as plain values for the templates: the live state with the
accounts masked, the report's tables with each metric's hover text (numerator / denominator)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dialer.store.live import LiveState
from reports.metrics import BY_KEY, METRICS, hover
from reports.report import Cell, Report
from reports.tables import (
    format_amount,
    format_amount_difference,
    format_cell,
    format_difference,
    format_rate,
    format_sample,
    format_test,
)


@dataclass(frozen=True, slots=True)
class Row:
    """One metric across the report's groups: its title, its hover text and a value per group."""

    key: str
    title: str
    hover: str
    values: tuple[str, ...]


def counts(found: dict[str, int]) -> list[tuple[str, int]]:
    """Counts largest first (then by name), for a small table."""
    return sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))


def live(state: LiveState, mask: Callable[[str], str]) -> dict[str, Any]:
    """The live figures; `mask` hides an account id that could be a number (unless revealed)."""
    refusals = [(rule, n, state.latest_refusal.get(rule, "")) for rule, n in counts(state.refusals_last_hour)]
    return {
        "state": state.state.value,
        "calls_in_flight": state.calls_in_flight,
        "texts_in_flight": state.texts_in_flight,
        "calls_last_minute": state.calls_last_minute,
        "texts_last_minute": state.texts_last_minute,
        "dispositions": counts(state.dispositions),
        "deliveries": counts(state.deliveries),
        "refusals": [(rule, n, mask(why)) for rule, n, why in refusals],
        "next_due": [
            (d.at, mask(d.account_id), d.channel or "strategy", mask(d.note)) for d in state.next_due
        ],
    }


def metric_rows(report: Report) -> list[Row]:
    """The report's metrics (roll rates apart) down, its groups across."""
    rows = []
    for metric in METRICS:
        if metric.key == "roll_rate":
            continue
        values = tuple("; ".join(format_cell(c) for c in report.cell(g, metric.key)) for g in report.groups)
        rows.append(Row(metric.key, metric.title, hover(metric), values))
    return rows


def cell_rows(cells: Sequence[Cell]) -> list[tuple[str, str, str]]:
    """(group, note, value): the roll rates."""
    return [(c.group, c.note, format_cell(c)) for c in cells]


def arms(report: Report) -> dict[str, Any] | None:
    """The A/B section, or None for a campaign without arms."""
    a = report.arms
    if a is None:
        return None
    names = list(dict.fromkeys(c.group for c in a.rates))
    keys = list(dict.fromkeys(c.metric for c in a.rates))
    rates = []
    for key in keys:
        values = tuple(
            next((format_rate(c) for c in a.rates if c.group == n and c.metric == key), "—") for n in names
        )
        rates.append(Row(key, BY_KEY[key].title, hover(BY_KEY[key]), values))
    differences = [
        (
            BY_KEY[d.metric].title,
            hover(BY_KEY[d.metric]),
            d.arm,
            format_difference(d.difference),
            format_test(d.difference),
            format_sample(d.sample, a.champion, d.arm),
        )
        for d in a.differences
    ]
    amounts = [
        (x.arm, format_amount(x.amount, x.currency), format_amount_difference(x.difference, x.currency))
        for x in a.amounts
    ]
    return {
        "champion": a.champion,
        "why_champion": a.why_champion,
        "names": names,
        "rates": rates,
        "differences": differences,
        "amounts": amounts,
    }
