"""A/B statistics (issue 14, item 2): reports.stats against published figures and an independent
computation (the closed forms, written out here), its refusals on empty and tiny arms, and the
bootstrap's reproducibility, coverage, speed and memory on 100,000 accounts per arm."""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, norm

from reports.stats import (
    MIN_TRIALS,
    Proportion,
    amount_difference,
    difference,
    mean_amount,
    proportion,
    sample_size,
)

Z = float(norm.ppf(0.975))
Z_POWER = float(norm.ppf(0.8))


def wilson(x: int, n: int) -> tuple[float, float]:
    """Wilson (1927), as Newcombe (1998, single proportion, method 3) writes it."""
    p = x / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def newcombe(a: tuple[int, int], b: tuple[int, int]) -> tuple[float, float]:
    """Newcombe (1998, two proportions, method 10) for p_b - p_a, from the two Wilson intervals."""
    pa, pb = a[0] / a[1], b[0] / b[1]
    la, ua = wilson(*a)
    lb, ub = wilson(*b)
    d = pb - pa
    return d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2), d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)


def arms(a: tuple[int, int], b: tuple[int, int]) -> tuple[Proportion, Proportion]:
    return proportion(*a), proportion(*b)


# ------------------------------------------------------------------ Wilson


def test_wilson_matches_newcombes_published_example_and_the_closed_form() -> None:
    got = proportion(81, 263)  # Newcombe 1998 (single proportion), Table I: 0.2553 to 0.3662
    assert got.rate == pytest.approx(0.3080, abs=5e-5)
    assert (round(got.low or -1, 4), round(got.high or -1, 4)) == (0.2553, 0.3662)
    assert (got.low, got.high) == pytest.approx(wilson(81, 263), abs=1e-12)
    assert got.why_no_interval is None


@given(st.integers(MIN_TRIALS, 5_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_is_the_closed_form_for_any_count(counts: tuple[int, int]) -> None:
    got = proportion(*counts)
    assert (got.low, got.high) == pytest.approx(wilson(*counts), abs=1e-9)
    assert got.low is not None and got.high is not None and got.rate is not None
    assert 0.0 <= got.low <= got.rate <= got.high <= 1.0


def test_no_successes_and_all_successes_keep_a_meaningful_interval() -> None:
    none, every = proportion(0, 50), proportion(50, 50)
    # Wilson's bounds at the edges are z²/(n+z²) and n/(n+z²): not the Wald interval's zero width.
    assert (none.rate, none.low) == (0.0, 0.0) and none.high == pytest.approx(Z * Z / (50 + Z * Z))
    assert (every.rate, every.high) == (1.0, 1.0) and every.low == pytest.approx(50 / (50 + Z * Z))


def test_no_accounts_gives_no_rate_and_a_tiny_segment_no_interval() -> None:
    empty, tiny = proportion(0, 0), proportion(3, 4)
    assert (empty.rate, empty.low, empty.high) == (None, None, None)
    assert empty.why_no_interval == "no accounts: no rate"
    assert (tiny.rate, tiny.low, tiny.high) == (0.75, None, None)
    assert tiny.why_no_interval == "4 accounts, fewer than 10: too few for an interval"
    assert proportion(4, 10).low is not None  # the minimum itself gets one


@pytest.mark.parametrize(("successes", "trials"), [(5, 4), (-1, 4), (0, -1)])
def test_impossible_counts_are_refused(successes: int, trials: int) -> None:
    with pytest.raises(ValueError, match=rf"{successes} successes of {trials} trials"):
        proportion(successes, trials)


def test_a_fractional_count_is_refused() -> None:
    with pytest.raises(TypeError):
        proportion(2.5, 4)  # type: ignore[arg-type]


# ------------------------------------------------------------------ Newcombe and the z test

# Newcombe 1998 (two proportions), Table II, method 10, as p1 - p2 = b - a.
NEWCOMBE_TABLE_II = [
    ((48, 80), (56, 70), 0.0524, 0.3339),
    ((3, 10), (9, 10), 0.1705, 0.8090),
    ((0, 29), (5, 56), -0.0381, 0.1926),
    ((0, 20), (0, 10), -0.1611, 0.2775),
    ((0, 10), (0, 10), -0.2775, 0.2775),
    ((0, 20), (10, 10), 0.6791, 1.0000),
    ((0, 10), (10, 10), 0.6075, 1.0000),
]


@pytest.mark.parametrize(("a", "b", "low", "high"), NEWCOMBE_TABLE_II)
def test_newcombe_matches_the_published_table(
    a: tuple[int, int], b: tuple[int, int], low: float, high: float
) -> None:
    got = difference(*arms(a, b))
    assert got.diff == pytest.approx(b[0] / b[1] - a[0] / a[1])
    assert (round(got.low or -9, 4), round(got.high or -9, 4)) == (low, high)
    assert (got.low, got.high) == pytest.approx(newcombe(a, b), abs=1e-12)
    assert got.why_no_interval is None


def test_newcombes_first_example_in_full() -> None:
    got = difference(*arms((48, 80), (56, 70)))  # 56/70 - 48/80 = 0.2000, [0.0524, 0.3339]
    assert got.diff == pytest.approx(0.2)
    assert (got.low, got.high) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def hand_z(a: tuple[int, int], b: tuple[int, int]) -> tuple[float, float]:
    pooled = (a[0] + b[0]) / (a[1] + b[1])
    z = (b[0] / b[1] - a[0] / a[1]) / math.sqrt(pooled * (1 - pooled) * (1 / a[1] + 1 / b[1]))
    return z, 2 * float(norm.sf(abs(z)))


def test_the_z_test_is_the_pooled_textbook_test() -> None:
    a, b = (48, 80), (56, 70)
    got = difference(*arms(a, b))
    assert (got.z, got.p_value) == pytest.approx(hand_z(a, b), rel=1e-12)
    assert got.z is not None and got.z > 0  # b did better
    # The same as Pearson's chi-square on the 2x2 table without continuity correction.
    chi2, p_chi2, _, _ = chi2_contingency([[56, 14], [48, 32]], correction=False)
    assert (got.z**2, got.p_value) == pytest.approx((chi2, p_chi2), rel=1e-9)
    assert difference(*arms(b, a)).z == pytest.approx(-got.z)


@given(
    st.integers(MIN_TRIALS, 3_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(MIN_TRIALS, 3_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
)
def test_interval_and_test_agree_with_the_closed_forms(a: tuple[int, int], b: tuple[int, int]) -> None:
    got = difference(*arms(a, b))
    assert (got.low, got.high) == pytest.approx(newcombe(a, b), abs=1e-9)
    assert got.low is not None and got.high is not None and got.diff is not None
    assert -1.0 <= got.low <= got.diff <= got.high <= 1.0
    if got.why_no_test is None:
        assert (got.z, got.p_value) == pytest.approx(hand_z(a, b), rel=1e-9, abs=1e-300)


def test_an_empty_arm_is_not_compared() -> None:
    got = difference(*arms((0, 0), (5, 40)))
    assert (got.diff, got.low, got.high, got.z, got.p_value) == (None,) * 5
    assert got.why_no_interval == got.why_no_test == "an arm has no accounts: nothing to compare"


def test_tiny_arms_show_the_difference_only() -> None:
    got = difference(*arms((2, 5), (3, 4)))
    assert got.diff == pytest.approx(0.35)
    assert (got.low, got.high, got.z, got.p_value) == (None,) * 4
    assert got.why_no_interval == "an arm has 4 accounts, fewer than 10: too few for an interval"
    assert got.why_no_test == "an arm has 4 accounts, fewer than 10: too few for a test"


@pytest.mark.parametrize("successes", [0, 50])
def test_identical_degenerate_arms_get_an_interval_but_no_test(successes: int) -> None:
    got = difference(*arms((successes, 50), (successes, 50)))
    assert got.diff == 0.0
    assert (got.low, got.high) == pytest.approx((-Z * Z / (50 + Z * Z), Z * Z / (50 + Z * Z)))
    assert (got.z, got.p_value) == (None, None)
    assert got.why_no_test == "every account in both arms had the same result: nothing to test"


def test_opposite_degenerate_arms_are_tested() -> None:
    got = difference(*arms((0, 50), (50, 50)))
    assert (got.diff, got.high) == (1.0, 1.0)
    assert (got.z, got.p_value) == pytest.approx(hand_z((0, 50), (50, 50)), rel=1e-9)


def test_rare_successes_get_no_z_test() -> None:
    got = difference(*arms((1, 100), (3, 100)))  # pooled 2 %: 2 successes expected per arm
    assert got.low is not None and (got.z, got.p_value) == (None, None)
    assert got.why_no_test == (
        "an expected count is 2.0, under 5: the z test's normal approximation would mislead"
    )
    assert difference(*arms((4, 100), (6, 100))).p_value is not None  # 5 expected: tested


# ------------------------------------------------------------------ sample size


def closed_form_per_arm_a(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Normal approximation on Cohen's h, arm b = ratio x arm a (Cohen 1988, ch. 6)."""
    h = abs(2 * math.asin(math.sqrt(b[0] / b[1])) - 2 * math.asin(math.sqrt(a[0] / a[1])))
    return (Z + Z_POWER) ** 2 * (1 + a[1] / b[1]) / h**2


def test_the_closed_form_is_cohens_table() -> None:
    # Cohen 1988, Table 6.4.1: h = 0.20, alpha 0.05 two-sided, power 0.80 -> 392 per group.
    assert round((Z + Z_POWER) ** 2 * 2 / 0.2**2) == 392


def test_sample_size_for_40_against_50_percent() -> None:
    a, b = (12, 30), (15, 30)  # 40 % and 50 %, 30 accounts each
    got = sample_size(*arms(a, b))
    assert closed_form_per_arm_a(a, b) == pytest.approx(387.17, abs=0.01)
    assert (got.needed_a, got.needed_b, got.more_a, got.more_b) == (388, 388, 358, 358)
    assert got.why_none is None
    done = sample_size(*arms((400, 1000), (500, 1000)))
    assert (done.needed_a, done.more_a, done.more_b) == (388, 0, 0)


def test_sample_size_keeps_unequal_arms_ratio() -> None:
    a, b = (40, 100), (150, 300)
    got = sample_size(*arms(a, b))
    expected_a = closed_form_per_arm_a(a, b)
    assert got.needed_a is not None and got.needed_b is not None
    assert got.needed_a - math.ceil(expected_a) in (-1, 0)
    assert got.needed_b - math.ceil(3 * expected_a) in (-1, 0)


def test_a_smaller_difference_needs_more_accounts() -> None:
    found = [sample_size(*arms((x, 1000), (500, 1000))).needed_a for x in (300, 350, 400, 450, 480, 495)]
    needed = [n for n in found if n is not None]
    assert len(needed) == len(found) and needed == sorted(set(needed)), found  # strictly increasing


def test_no_sample_size_without_an_observed_difference() -> None:
    got = sample_size(*arms((20, 100), (40, 200)))
    assert (got.needed_a, got.needed_b, got.more_a, got.more_b) == (None,) * 4
    assert got.why_none == "no observed difference: no number of accounts detects it"


def test_no_sample_size_from_tiny_or_empty_arms() -> None:
    assert sample_size(*arms((0, 0), (3, 40))).why_none == (
        "an arm has 0 accounts, fewer than 10: too few to plan from"
    )
    assert sample_size(*arms((1, 9), (3, 40))).needed_a is None


def test_a_huge_difference_needs_the_minimum_and_a_vanishing_one_none() -> None:
    huge = sample_size(*arms((0, 50), (50, 50)))  # statsmodels' own solver fails here (under 2)
    assert (huge.needed_a, huge.needed_b, huge.more_a, huge.more_b) == (10, 10, 0, 0)
    vanishing = sample_size(*arms((500_000, 1_000_000), (500_001, 1_000_000)))
    assert vanishing.needed_a is None
    assert vanishing.why_none == (
        "more than 1,000,000,000 accounts per arm: the observed difference is too small to detect"
    )


@settings(max_examples=300)
@given(
    st.integers(MIN_TRIALS, 200_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(MIN_TRIALS, 200_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
)
def test_sample_size_never_fails_and_agrees_with_the_closed_form(
    a: tuple[int, int], b: tuple[int, int]
) -> None:
    got = sample_size(*arms(a, b))  # no exception, no warning (warnings are errors here)
    if got.needed_a is None or got.needed_b is None:
        assert got.why_none is not None
        return
    floor = MIN_TRIALS * max(1.0, a[1] / b[1])
    expected = max(floor, closed_form_per_arm_a(a, b))
    # The closed form ignores the far tail and the solver stops within its tolerance: a few in 10^6.
    assert math.ceil(expected) - 1 - 1e-5 * expected <= got.needed_a <= math.ceil(round(expected, 6))
    assert min(got.needed_a, got.needed_b) >= MIN_TRIALS
    assert got.more_a == max(0, got.needed_a - a[1]) and got.more_b == max(0, got.needed_b - b[1])


# ------------------------------------------------------------------ amounts


def recoveries(rng: np.random.Generator, n: int, paying: float = 0.3) -> np.ndarray:
    """Amounts per assigned account, minor units: most pay nothing, payers pay 10.00 to 500.00."""
    return np.where(rng.random(n) < paying, rng.integers(1_000, 50_000, n), 0)


def test_the_bootstrap_is_reproducible_with_its_seed() -> None:
    values = recoveries(np.random.default_rng(1), 500)
    first, again, other = mean_amount(values), mean_amount(values), mean_amount(values, seed=2)
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)
    assert first.mean == pytest.approx(values.mean())
    assert first.low is not None and first.high is not None and first.mean is not None
    assert first.low < first.mean < first.high


def test_the_bootstrap_interval_covers_the_true_mean() -> None:
    rng = np.random.default_rng(20261201)
    true_mean = 0.3 * (1_000 + 49_999) / 2
    runs = 200
    covered = 0
    for _ in range(runs):
        got = mean_amount(recoveries(rng, 300), seed=int(rng.integers(2**31)))
        assert got.low is not None and got.high is not None
        covered += got.low <= true_mean <= got.high
    assert 0.90 <= covered / runs <= 0.99, covered


def test_the_difference_interval_covers_the_true_difference() -> None:
    rng = np.random.default_rng(14)
    true_diff = (0.35 - 0.3) * (1_000 + 49_999) / 2
    runs = 150
    covered = 0
    for _ in range(runs):
        a, b = recoveries(rng, 300, 0.3), recoveries(rng, 250, 0.35)
        got = amount_difference(a, b, seed=int(rng.integers(2**31)))
        assert got.diff == pytest.approx(b.mean() - a.mean())
        assert got.low is not None and got.high is not None
        covered += got.low <= true_diff <= got.high
    assert 0.88 <= covered / runs <= 0.99, covered


def test_the_bootstrap_refuses_too_few_or_too_uniform_amounts() -> None:
    assert mean_amount([]).mean is None and mean_amount([]).why_no_interval == "no accounts: no amount"
    few = mean_amount([0, 500, 1000] * 6)
    assert few.mean == pytest.approx(500) and (few.low, few.high) == (None, None)
    assert few.why_no_interval == "18 accounts, fewer than 20: too few for a bootstrap interval"
    nobody = mean_amount([0] * 1000)  # the bootstrap alone would say [0, 0]
    assert nobody.mean == 0.0 and nobody.low is None
    assert nobody.why_no_interval == (
        "0 amounts differ from the most common one, fewer than 5: "
        "a bootstrap interval would understate the uncertainty"
    )
    four = mean_amount([0] * 96 + [2_000] * 4)
    assert four.low is None and four.why_no_interval is not None
    assert mean_amount([0] * 95 + [2_000] * 5).low is not None


def test_the_amount_difference_needs_both_arms() -> None:
    values = recoveries(np.random.default_rng(3), 100)
    empty = amount_difference([], values)
    assert (empty.diff, empty.low, empty.high) == (None, None, None)
    assert empty.why_no_interval == "an arm has no accounts: nothing to compare"
    tiny = amount_difference([0, 1_000, 3_000], values)
    assert tiny.diff == pytest.approx(values.mean() - 4_000 / 3)
    assert (tiny.low, tiny.high) == (None, None)
    assert tiny.why_no_interval == "3 accounts, fewer than 20: too few for a bootstrap interval"


@pytest.mark.parametrize("bad", [[1.0, float("nan")], [1.0, float("inf")], [[1.0, 2.0]]])
def test_amounts_that_are_not_finite_values_are_refused(bad: list[object]) -> None:
    with pytest.raises(ValueError, match="amounts: "):
        mean_amount(bad)  # type: ignore[arg-type]


def test_the_bootstrap_of_100000_accounts_per_arm_is_bounded_in_memory() -> None:
    rng = np.random.default_rng(5)
    a, b = recoveries(rng, 100_000), recoveries(rng, 100_000, 0.32)
    tracemalloc.start()
    try:
        started = time.perf_counter()
        one = mean_amount(a)
        one_elapsed = time.perf_counter() - started
        both = amount_difference(a, b)
        both_elapsed = time.perf_counter() - started - one_elapsed
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"bootstrap: one arm {one_elapsed:.2f} s, difference {both_elapsed:.2f} s, {peak / 2**20:.0f} MiB")
    assert one.low is not None and both.low is not None and both.high is not None and both.diff is not None
    assert both.low < both.diff < both.high
    # Its speed is bench_reports' to measure (a timed test fails on a busy machine); memory is exact.
    assert peak < 100 * 2**20  # unbatched, 2,000 x 100,000 resamples would hold 1.6 GB per array
