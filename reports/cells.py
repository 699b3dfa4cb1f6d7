"""One metric of one group as a `Cell`: a rate with its Wilson interval where it means something,
a count, or a ratio (no interval: not successes of trials); each with why not, where not."""

from __future__ import annotations

from reports import stats
from reports.report import Cell


def rate(group: str, key: str, successes: int, trials: int, unit: str) -> Cell:
    """`successes` of `trials` with the Wilson interval where it means something, else why not."""
    if successes > trials:  # e.g. promises by text from accounts with no right-party call
        more = f"{successes} of {trials}: more than the denominator, so not a proportion and no interval"
        return Cell(group, key, successes, trials, successes / trials, None, more)
    p = stats.proportion(successes, trials)
    # reports.stats says "accounts"; here the trials may be promises or texts: say which
    why = None if p.why_no_interval is None else p.why_no_interval.replace("accounts", unit)
    return Cell(group, key, successes, trials, p.rate, p, why)


def count(group: str, key: str, n: int) -> Cell:
    return Cell(group, key, n, None, float(n), None, None)


def ratio(group: str, key: str, numerator: int, denominator: int, why_none: str, note: str = "") -> Cell:
    """An amount or a count per count: no Wilson interval (not successes of trials)."""
    if denominator == 0:
        return Cell(group, key, numerator, denominator, None, None, why_none, note)
    return Cell(group, key, numerator, denominator, numerator / denominator, None, None, note)
