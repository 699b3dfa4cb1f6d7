"""A campaign's report as pure data: what the tables, the CSV and the plots show (issue 14).

Built by `reports.build`, shown by `reports.tables`, `reports.csvout` and `reports.plots`; nothing
here reads the store or prints. Every metric of every group is a `Cell`: its numerator and
denominator as counted, its value, its Wilson interval where one means something, and otherwise
why not (an empty or tiny group says so instead of showing a misleading rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from reports.stats import AmountDifference, AmountInterval, Difference, Proportion, SampleSize

ALL = "all"  # the group of every account of the campaign
NO_GROUP = "(none)"  # accounts without the grouping's value (no arm, never contacted ...)


@dataclass(frozen=True, slots=True)
class Cell:
    """One metric (a `reports.metrics.METRICS` key) of one group."""

    group: str
    metric: str
    numerator: int | None  # a count, or an amount in minor units (recovery); None: nothing counted
    denominator: int | None  # None for a count
    value: float | None  # the rate, ratio or count; None when there is none (`why` says why)
    proportion: Proportion | None  # rates of accounts, promises or texts: with its Wilson interval
    why: str | None  # why there is no value, or no interval
    note: str = ""  # what else the number needs: its currency, the month and bucket of a roll rate

    @property
    def low(self) -> float | None:
        return None if self.proportion is None else self.proportion.low

    @property
    def high(self) -> float | None:
        return None if self.proportion is None else self.proportion.high


@dataclass(frozen=True, slots=True)
class FunnelBars:
    """One group's funnel for the plot: accounts attempted, contacted, right party, promised; kept."""

    group: str
    attempted: int
    contacted: int
    right_party: int
    promised: int
    kept: int


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """By this many days past due, of the accounts that became late: how many cured, how much paid."""

    days_past_due: int
    currency: str
    late: int
    cured: int
    overdue_minor: int
    recovered_minor: int


@dataclass(frozen=True, slots=True)
class Roll:
    """Accounts in `from_bucket` at the start of `month` and in `to_bucket` at its end."""

    month: date
    from_bucket: str
    to_bucket: str
    accounts: int


@dataclass(frozen=True, slots=True)
class Hour:
    """Contacts in one hour of the borrower's local day (0-23)."""

    hour: int
    calls: int
    contacted: int
    right_party: int
    texts: int


@dataclass(frozen=True, slots=True)
class ArmDifference:
    """One challenger against the champion on one metric (intention to treat)."""

    metric: str
    arm: str
    difference: Difference  # p_arm - p_champion, Newcombe interval, pooled z test
    sample: SampleSize  # accounts per arm still needed to detect the observed difference


@dataclass(frozen=True, slots=True)
class ArmAmount:
    """One arm's mean amount recovered per assigned account (minor units of `currency`), with its
    bootstrap interval, and, for a challenger, its difference from the champion's."""

    arm: str
    currency: str  # "" when no account has one (an empty campaign)
    amount: AmountInterval
    difference: AmountDifference | None  # None for the champion


@dataclass(frozen=True, slots=True)
class Arms:
    """The A/B section: every arm's rates over every assigned account, each challenger against the
    champion, and the amount recovered per assigned account with its bootstrap interval."""

    champion: str
    why_champion: str  # how the champion was told (its name, the strategy's first arm ...)
    rates: tuple[Cell, ...]  # group = arm; denominators: every assigned account (intention to treat)
    differences: tuple[ArmDifference, ...]
    amounts: tuple[ArmAmount, ...]  # per currency, per arm


@dataclass(frozen=True, slots=True)
class Report:
    campaign: str
    by: str  # "" (all accounts), "arm", "step", "segment", "bucket" or "period"
    start: date  # the money's period: --since, else the campaign's first day
    today: date
    groups: tuple[str, ...]  # ALL first, then the groups of `by`
    cells: tuple[Cell, ...]  # every (group, metric), in the order of `groups` then METRICS
    roll_rates: tuple[Cell, ...]  # group = "YYYY-MM Mn": the month and the bucket rolled from
    arms: Arms | None  # None: the campaign has no champion/challenger arms
    funnel: tuple[FunnelBars, ...]
    curves: tuple[CurvePoint, ...]
    roll_matrix: tuple[Roll, ...]
    hours: tuple[Hour, ...]
    notes: tuple[str, ...]  # what the reader must know: a grouping a query cannot split by ...

    def cell(self, group: str, metric: str) -> list[Cell]:
        """The cells of one group's metric (several for an amount in several currencies)."""
        return [c for c in self.cells if c.group == group and c.metric == metric]
