"""The A/B section: every arm over every assigned account (intention to treat), each challenger
against the champion (Newcombe, the z test, the sample size), the amounts per assigned account."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from reports import stats
from reports.cells import rate
from reports.counts import Counts
from reports.report import ArmAmount, ArmDifference, Arms, Cell

# Arms are compared on outcomes every assigned account can have (intention to treat): the funnel's
# account counts over the arm's accounts, the cure over the arm's accounts late at the period's start.
ARM_METRICS = ("contact_rate", "right_party_rate", "promise_rate", "cure_rate")


def arms(counts: Counts, champion: str, why_champion: str) -> Arms:
    """The A/B section; the champion first, then the challengers in the store's order."""
    arm_names = sorted((row.group for row in counts.arm_funnel), key=lambda name: name != champion)
    rates = {name: _arm_rates(counts, name) for name in arm_names}
    differences = [
        _difference(key, name, rates[champion][key], rates[name][key])
        for key in ARM_METRICS
        for name in arm_names
        if name != champion and champion in rates
    ]
    cells = tuple(cell for name in arm_names for cell in _cells_of(name, rates[name]))
    amounts = tuple(_amounts(counts, arm_names, champion))
    return Arms(champion, why_champion, cells, tuple(differences), amounts)


def _amounts(counts: Counts, names: Sequence[str], champion: str) -> Iterable[ArmAmount]:
    """Each arm's mean amount recovered per assigned account, and each challenger's difference
    from the champion's, per currency (an arm the store gave no amounts for has no accounts). The
    difference carries both arms' intervals: the champion's is not bootstrapped again."""
    for currency, by_arm in counts.recovered.items():
        base = by_arm.get(champion, [])
        gaps = {
            name: stats.amount_difference(base, by_arm.get(name, [])) for name in names if name != champion
        }
        own = next(iter(gaps.values())).a if gaps else stats.mean_amount(base)
        for name in names:
            gap = gaps.get(name)
            yield ArmAmount(name, currency, own if gap is None else gap.b, gap)


def _arm_rates(counts: Counts, arm: str) -> dict[str, tuple[int, int]]:
    """Intention to treat: every account assigned to the arm is a trial, reached or not."""
    f = next(row for row in counts.arm_funnel if row.group == arm)
    cured = [r for r in counts.arm_cures if r.group == arm]
    return {
        "contact_rate": (f.contacted, f.accounts),
        "right_party_rate": (f.right_party, f.accounts),
        "promise_rate": (f.promised, f.accounts),
        "cure_rate": (sum(r.cured for r in cured), sum(r.late_at_start for r in cured)),
    }


def _cells_of(arm: str, rates: Mapping[str, tuple[int, int]]) -> Iterable[Cell]:
    for key, (successes, trials) in rates.items():
        unit = "late accounts" if key == "cure_rate" else "assigned accounts"
        yield rate(arm, key, successes, trials, unit)


def _difference(key: str, arm: str, champion: tuple[int, int], challenger: tuple[int, int]) -> ArmDifference:
    a, b = stats.proportion(*champion), stats.proportion(*challenger)
    return ArmDifference(key, arm, stats.difference(a, b), stats.sample_size(a, b))
