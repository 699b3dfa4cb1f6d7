"""The statistics of champion/challenger arms (issue 14, item 2): pure numbers, no store, no printing.

Intention to treat is the caller's job: every account assigned to an arm is a trial of that arm,
reached or not, and counts in its denominator (an account never reached is a failure; its amount
recovered is 0, not left out). Counting only the reached would compare the arms on whom each
happened to reach, mixing the arm's effect with luck, wrong numbers and policy refusals.

The methods (docs/reports.md, "A/B statistics"), all at 95 %:
- one arm's rate: Wilson's score interval (Wilson 1927), statsmodels `proportion_confint`;
- the difference p_b - p_a: Newcombe's hybrid score interval (Newcombe 1998, method 10), built
  from the two Wilson intervals, statsmodels `confint_proportions_2indep(method="newcomb")`;
- the test: the pooled two-proportion z test, statsmodels `proportions_ztest`. Chosen over
  `test_proportions_2indep`, whose default score test multiplies the variance by n/(n-1)
  (Miettinen-Nurminen): the pooled z test is the textbook one, equal to Pearson's 2x2 chi-square
  without continuity correction, so a reader can check the report's p-value by hand;
- the sample size per arm to detect the observed difference (alpha 0.05, power 0.8): the normal
  approximation on Cohen's h, statsmodels `NormalIndPower` and `proportion_effectsize`, with the
  arms' current allocation ratio (weighted arms are unequal on purpose);
- amounts recovered per assigned account: the bootstrap percentile interval of the mean, and of the
  difference of two arms' means (2,000 resamples, each arm on its own, drawing only the accounts
  that paid: `_resampled_means`), with a fixed seed so that a report printed
  twice shows the same interval. Not BCa: its jackknife costs n^2 (10^10 for 100,000 accounts).

Below the minimum sizes a result carries a reason instead of a number (`why_no_interval`,
`why_no_test`, `why_none`), so a report over an empty or tiny segment says so. Legal input
(0 trials, 0 successes, all successes, empty arms) never raises; illegal input (negative counts,
more successes than trials, amounts that are not finite numbers) raises ValueError.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

ALPHA = 0.05  # every interval is 95 %, every test two-sided at 5 %
POWER = 0.8
MIN_TRIALS = 10  # fewer accounts in an arm: no interval, no test, no sample size (the rate is still shown)
MIN_EXPECTED = 5  # the z test's normal approximation needs every expected 2x2 count at least this (Cochran)
MAX_PER_ARM = 10**9  # a sample size beyond this is reported as none: no campaign will reach it
MIN_AMOUNTS = 20  # fewer amounts: no bootstrap interval
MIN_VARIED = 5  # fewer amounts differing from the most common one (usually 0): no bootstrap interval
N_RESAMPLES = 2_000
SEED = 14  # the bootstrap's; fixed so that the same data always give the same interval

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Proportion:
    """One arm's successes out of its assigned accounts, and the Wilson interval of the rate."""

    successes: int
    trials: int
    low: float | None
    high: float | None
    why_no_interval: str | None

    @property
    def rate(self) -> float | None:
        return None if self.trials == 0 else self.successes / self.trials


@dataclass(frozen=True, slots=True)
class Difference:
    """Arm b against arm a: p_b - p_a, its Newcombe interval, and the two-proportion z test."""

    a: Proportion
    b: Proportion
    diff: float | None
    low: float | None
    high: float | None
    z: float | None
    p_value: float | None
    why_no_interval: str | None
    why_no_test: str | None


@dataclass(frozen=True, slots=True)
class SampleSize:
    """Accounts each arm needs to detect the observed difference, and how many more than it has."""

    needed_a: int | None
    needed_b: int | None
    more_a: int | None
    more_b: int | None
    why_none: str | None


@dataclass(frozen=True, slots=True)
class AmountInterval:
    """One arm's mean amount recovered per assigned account (minor units), with its bootstrap interval."""

    count: int
    mean: float | None
    low: float | None
    high: float | None
    why_no_interval: str | None


@dataclass(frozen=True, slots=True)
class AmountDifference:
    """Arm b's mean amount minus arm a's (minor units), with its bootstrap interval."""

    a: AmountInterval
    b: AmountInterval
    diff: float | None
    low: float | None
    high: float | None
    why_no_interval: str | None


# ------------------------------------------------------------------ rates


def proportion(successes: int, trials: int) -> Proportion:
    """`successes` of `trials` assigned accounts, with the Wilson interval when there are enough."""
    successes, trials = operator.index(successes), operator.index(trials)  # 2.5 accounts is a bug
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes of {trials} trials: need 0 <= successes <= trials")
    why = _too_few(trials, "accounts")
    if why is not None:
        return Proportion(successes, trials, None, None, why)
    # Wilson, not Wald: at 0 or all successes it still has width, and it keeps its 95 % when n is small.
    low, high = proportion_confint(successes, trials, alpha=ALPHA, method="wilson")
    rate = successes / trials  # the interval holds it; at 0 of n, rounding made the bound 1e-17, not 0
    return Proportion(successes, trials, min(float(low), rate), max(float(high), rate), None)


def difference(a: Proportion, b: Proportion) -> Difference:
    """p_b - p_a with Newcombe's interval and the pooled z test, each only where it means something."""
    if a.trials == 0 or b.trials == 0:
        why = "an arm has no accounts: nothing to compare"
        return Difference(a, b, None, None, None, None, None, why, why)
    diff = b.successes / b.trials - a.successes / a.trials
    low, high, why_no_interval = _newcombe(a, b, diff)
    z, p_value, why_no_test = _z_test(a, b)
    return Difference(a, b, diff, low, high, z, p_value, why_no_interval, why_no_test)


def _too_few(trials: int, what: str) -> str | None:
    if trials == 0:
        return f"no {what}: no rate"
    if trials < MIN_TRIALS:
        return f"{trials} {what}, fewer than {MIN_TRIALS}: too few for an interval"
    return None


def _newcombe(a: Proportion, b: Proportion, diff: float) -> tuple[float | None, float | None, str | None]:
    smaller = min(a.trials, b.trials)
    if smaller < MIN_TRIALS:
        return None, None, f"an arm has {smaller} accounts, fewer than {MIN_TRIALS}: too few for an interval"
    # Newcombe's method stays meaningful at 0 or all successes (it is built from Wilson's), so no
    # other refusal. statsmodels' first sample is the minuend: b first for p_b - p_a.
    low, high = confint_proportions_2indep(
        b.successes, b.trials, a.successes, a.trials, method="newcomb", compare="diff", alpha=ALPHA
    )
    # It holds the difference and lies in [-1, 1]; rounding at 0 or n of n gave 1.0000000000000002.
    return max(-1.0, min(float(low), diff)), min(1.0, max(float(high), diff)), None


def _z_test(a: Proportion, b: Proportion) -> tuple[float | None, float | None, str | None]:
    why = _why_no_z_test(a, b)
    if why is not None:
        return None, None, why
    z, p_value = proportions_ztest(
        np.array([b.successes, a.successes]), np.array([b.trials, a.trials]), alternative="two-sided"
    )
    return float(z), float(p_value), None


def _why_no_z_test(a: Proportion, b: Proportion) -> str | None:
    smaller = min(a.trials, b.trials)
    if smaller < MIN_TRIALS:
        return f"an arm has {smaller} accounts, fewer than {MIN_TRIALS}: too few for a test"
    pooled = (a.successes + b.successes) / (a.trials + b.trials)
    if pooled in (0.0, 1.0):
        return "every account in both arms had the same result: nothing to test"
    expected = min(min(n * pooled, n * (1 - pooled)) for n in (a.trials, b.trials))
    if expected < MIN_EXPECTED:
        return (
            f"an expected count is {expected:.1f}, under {MIN_EXPECTED}: "
            "the z test's normal approximation would mislead"
        )
    return None


# ------------------------------------------------------------------ sample size


def sample_size(a: Proportion, b: Proportion) -> SampleSize:
    """Accounts per arm to detect p_b - p_a as observed (two-sided alpha 0.05, power 0.8), keeping
    the arms' current ratio; never fewer than MIN_TRIALS in the smaller arm."""
    why = _why_no_sample_size(a, b)
    if why is not None:
        return SampleSize(None, None, None, None, why)
    assert a.rate is not None and b.rate is not None  # _why_no_sample_size refused empty arms
    effect = abs(float(proportion_effectsize(b.rate, a.rate)))  # Cohen's h
    ratio = b.trials / a.trials
    nobs_a = _nobs_a(effect, ratio)
    if nobs_a is None:
        why = f"more than {MAX_PER_ARM:,} accounts per arm: the observed difference is too small to detect"
        return SampleSize(None, None, None, None, why)
    needed_a, needed_b = _ceil(nobs_a), _ceil(nobs_a * ratio)
    return SampleSize(needed_a, needed_b, max(0, needed_a - a.trials), max(0, needed_b - b.trials), None)


def _why_no_sample_size(a: Proportion, b: Proportion) -> str | None:
    smaller = min(a.trials, b.trials)
    if smaller < MIN_TRIALS:
        return f"an arm has {smaller} accounts, fewer than {MIN_TRIALS}: too few to plan from"
    if a.successes * b.trials == b.successes * a.trials:  # exact, in integers
        return "no observed difference: no number of accounts detects it"
    return None


def _nobs_a(effect: float, ratio: float) -> float | None:
    """Arm a's size for the power, or None beyond MAX_PER_ARM. The root is bracketed first:
    statsmodels' solver fails below 2 accounts (a huge effect) and for a vanishing effect."""
    floor = MIN_TRIALS * max(1.0, 1.0 / ratio)  # the smaller arm holds MIN_TRIALS
    if _power(effect, floor, ratio) >= POWER:
        return floor
    if _power(effect, MAX_PER_ARM * min(1.0, 1.0 / ratio), ratio) < POWER:
        return None
    return float(NormalIndPower().solve_power(effect_size=effect, alpha=ALPHA, power=POWER, ratio=ratio))


def _power(effect: float, nobs_a: float, ratio: float) -> float:
    return float(NormalIndPower().power(effect_size=effect, nobs1=nobs_a, alpha=ALPHA, ratio=ratio))


def _ceil(accounts: float) -> int:
    return math.ceil(round(accounts, 6))  # 10.0000000001 accounts is 10, not 11


# ------------------------------------------------------------------ amounts


def mean_amount(amounts: npt.ArrayLike, *, seed: int = SEED) -> AmountInterval:
    """The mean amount recovered per assigned account (one value per account, 0 for none paid,
    in minor units), with a bootstrap percentile interval when there are enough varied values."""
    values = _amounts(amounts)
    return _interval(values, _resampled_means(values, seed))


def amount_difference(a: npt.ArrayLike, b: npt.ArrayLike, *, seed: int = SEED) -> AmountDifference:
    """Arm b's mean amount per assigned account minus arm a's, the arms resampled independently
    (each arm's own interval comes from the same resamples: arm a's equals `mean_amount(a)`)."""
    values_a, values_b = _amounts(a), _amounts(b)
    means_a, means_b = _resampled_means(values_a, seed), _resampled_means(values_b, seed + 1)
    arm_a, arm_b = _interval(values_a, means_a), _interval(values_b, means_b)
    if arm_a.mean is None or arm_b.mean is None:
        return AmountDifference(arm_a, arm_b, None, None, None, "an arm has no accounts: nothing to compare")
    diff = arm_b.mean - arm_a.mean
    why = arm_a.why_no_interval or arm_b.why_no_interval
    if why is not None or means_a is None or means_b is None:
        return AmountDifference(arm_a, arm_b, diff, None, None, why)
    low, high = _percentiles(means_b - means_a)
    return AmountDifference(arm_a, arm_b, diff, low, high, None)


def _interval(values: Floats, means: Floats | None) -> AmountInterval:
    mean = float(values.mean()) if values.size else None
    if means is None:
        return AmountInterval(int(values.size), mean, None, None, _why_no_bootstrap(values))
    low, high = _percentiles(means)
    return AmountInterval(int(values.size), mean, low, high, None)


def _amounts(amounts: npt.ArrayLike) -> Floats:
    values = np.asarray(amounts, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"amounts: one value per account expected, got an array of shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("amounts: every amount must be a finite number")
    return values


def _why_no_bootstrap(values: Floats) -> str | None:
    if values.size == 0:
        return "no accounts: no amount"
    if values.size < MIN_AMOUNTS:
        return f"{values.size} accounts, fewer than {MIN_AMOUNTS}: too few for a bootstrap interval"
    # Resampling a handful of payers among zeros gives an interval far too narrow (all zeros: [0, 0]).
    _, counts = np.unique(values, return_counts=True)
    varied = int(values.size - counts.max())
    if varied < MIN_VARIED:
        return (
            f"{varied} amounts differ from the most common one, fewer than {MIN_VARIED}: "
            "a bootstrap interval would understate the uncertainty"
        )
    return None


def _resampled_means(values: Floats, seed: int) -> Floats | None:
    """The means of N_RESAMPLES resamples of `values` drawn with replacement (None when too few or
    too uniform for a bootstrap). Exact and fast where most accounts paid nothing: of a resample's n
    draws, the number that land on a non-zero amount is Binomial(n, m/n), and those are uniform
    over the m non-zero amounts; the zeros add nothing to the sum. So each resample costs about m
    draws, not n (Efron and Tibshirani's bootstrap distribution, unchanged)."""
    if _why_no_bootstrap(values) is not None:
        return None
    rng = np.random.default_rng(seed)
    paid = values[values != 0]
    hits = rng.binomial(values.size, paid.size / values.size, size=N_RESAMPLES)
    sums = np.fromiter((paid[rng.integers(0, paid.size, k)].sum() for k in hits), np.float64, N_RESAMPLES)
    return sums / values.size


def _percentiles(statistics: Floats) -> tuple[float, float]:
    low, high = np.quantile(statistics, [ALPHA / 2, 1 - ALPHA / 2])
    return float(low), float(high)
