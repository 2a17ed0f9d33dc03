from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import integrate, stats

from workbench.domain.ab_stats import (
    MeanArm,
    MetricKind,
    Outcome,
    RateArm,
    analyze_means,
    analyze_rates,
    compare_means,
    compare_rates,
    prob_beta_beats,
    sample_size_means,
    sample_size_rates,
    srm_check,
    t_test_power,
    two_proportion_test,
)
from workbench.domain.assignment import assign
from workbench.errors import InvalidInput

Z_975 = 1.959963984540054


def _rate(name: str, units: int, conversions: int) -> RateArm:
    return RateArm(name=name, units=units, conversions=conversions)


# Two proportions ---------------------------------------------------------------------------------


def test_two_proportion_z_test_and_interval_by_hand() -> None:
    control, treatment = _rate("control", 1000, 100), _rate("B", 1000, 130)
    pooled = 230 / 2000
    z = 0.03 / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    margin = Z_975 * math.sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)
    result = compare_rates(control, treatment)
    assert result.statistic == pytest.approx(z)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(z))
    assert (result.ci_low, result.ci_high) == (pytest.approx(0.03 - margin), pytest.approx(0.03 + margin))
    assert result.difference == pytest.approx(0.03)
    assert result.relative_difference == pytest.approx(0.3)


@pytest.mark.parametrize(("control", "treatment"), [((1000, 100), (1000, 130)), ((523, 61), (498, 40)),
                                                    ((20_000, 19_000), (20_000, 19_100)), ((40, 0), (45, 3))])
def test_two_proportion_p_value_matches_scipy_chi_square(control: tuple[int, int], treatment: tuple[int, int]) -> None:
    # A pooled two-proportion z-test is the 2x2 chi-square test without continuity correction: z^2 = chi2.
    table = [[control[1], control[0] - control[1]], [treatment[1], treatment[0] - treatment[1]]]
    expected = stats.chi2_contingency(table, correction=False)
    z, p_value, _, _ = two_proportion_test(_rate("c", *control), _rate("t", *treatment))
    assert p_value == pytest.approx(expected.pvalue)
    assert z ** 2 == pytest.approx(expected.statistic)


def test_equal_all_or_nothing_rates_have_p_one() -> None:
    z, p_value, low, high = two_proportion_test(_rate("c", 200, 200), _rate("t", 300, 300))
    assert (z, p_value, low, high) == (0.0, 1.0, 0.0, 0.0)


# Welch ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_welch_matches_scipy_on_raw_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    control_values, treatment_values = rng.normal(1200, 300, 180), rng.normal(1130, 420, 240)
    result = compare_means(MeanArm.from_values("control", control_values), MeanArm.from_values("B", treatment_values))
    expected = stats.ttest_ind(treatment_values, control_values, equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert (result.ci_low, result.ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert result.method == "Welch's t-test"


def test_welch_degrees_of_freedom_by_hand() -> None:
    # Welch-Satterthwaite: (v1 + v2)^2 / (v1^2 / (n1 - 1) + v2^2 / (n2 - 1)) with v = sd^2 / n.
    control, treatment = MeanArm(name="c", units=10, mean=5, sd=2), MeanArm(name="t", units=20, mean=7, sd=4)
    v1, v2 = 4 / 10, 16 / 20
    df = (v1 + v2) ** 2 / (v1 ** 2 / 9 + v2 ** 2 / 19)
    margin = stats.t.ppf(0.975, df) * math.sqrt(v1 + v2)
    result = compare_means(control, treatment, min_units=1)
    assert (result.ci_low, result.ci_high) == (pytest.approx(2 - margin), pytest.approx(2 + margin))
    assert result.prob_to_beat_control == pytest.approx(stats.norm.cdf(2 / math.sqrt(v1 + v2)))


def test_mean_arm_from_rollup_sums_matches_raw_values() -> None:
    values = np.random.default_rng(4).gamma(2.0, 300.0, 500)
    from_sums = MeanArm.from_sums("a", 500, float(values.sum()), float((values ** 2).sum()))
    from_values = MeanArm.from_values("a", values)
    assert from_sums.mean == pytest.approx(from_values.mean)
    assert from_sums.sd == pytest.approx(from_values.sd)
    assert MeanArm.from_sums("a", 3, 30.0, 300.0).sd == 0.0


def test_lower_is_better_turns_a_drop_into_a_win() -> None:
    rng = np.random.default_rng(5)
    control = MeanArm.from_values("control", rng.normal(900, 100, 400))
    faster = MeanArm.from_values("faster", rng.normal(850, 100, 400))
    result = compare_means(control, faster, higher_is_better=False)
    assert result.outcome is Outcome.BETTER
    assert result.prob_to_beat_control > 0.99
    assert compare_means(control, faster).outcome is Outcome.WORSE


@pytest.mark.parametrize(("control", "treatment", "reason"), [
    (MeanArm(name="c", units=1, mean=3, sd=0), MeanArm(name="t", units=50, mean=4, sd=1), "at least 2 units"),
    (MeanArm(name="c", units=50, mean=3, sd=0), MeanArm(name="t", units=50, mean=3, sd=0), "no variation"),
])
def test_undefined_welch_says_why(control: MeanArm, treatment: MeanArm, reason: str) -> None:
    result = compare_means(control, treatment)
    assert (result.p_value, result.ci_low, result.outcome) == (None, None, Outcome.NOT_ENOUGH_DATA)
    assert reason in result.explanation


# Bayesian probability to beat control -----------------------------------------------------------


def _integrated(control: RateArm, treatment: RateArm) -> float:
    """P(p_t > p_c) = integral of f_t(x) F_c(x) dx over the two Beta(1 + k, 1 + n - k) posteriors."""
    posterior_c = stats.beta(1 + control.conversions, 1 + control.units - control.conversions)
    posterior_t = stats.beta(1 + treatment.conversions, 1 + treatment.units - treatment.conversions)
    value, _ = integrate.quad(lambda x: posterior_t.pdf(x) * posterior_c.cdf(x), 0, 1, limit=200,
                              points=[control.conversions / max(control.units, 1)])
    return value


@pytest.mark.parametrize(("control", "treatment"), [
    ((100, 10), (100, 15)), ((100, 90), (100, 85)), ((30, 2), (500, 60)), ((1000, 100), (1000, 130)),
    ((0, 0), (10, 1)), ((12, 12), (10, 0)),
])
def test_prob_to_beat_control_matches_numerical_integration(control: tuple[int, int],
                                                            treatment: tuple[int, int]) -> None:
    control_arm, treatment_arm = _rate("c", *control), _rate("t", *treatment)
    assert prob_beta_beats(control_arm, treatment_arm) == pytest.approx(_integrated(control_arm, treatment_arm),
                                                                        abs=1e-6)


def test_prob_to_beat_control_agrees_with_a_seeded_monte_carlo_on_large_counts() -> None:
    control, treatment = _rate("c", 100_000, 50_000), _rate("t", 100_000, 50_400)
    rng = np.random.default_rng(0)
    draws = 400_000
    sampled_c = rng.beta(1 + 50_000, 1 + 50_000, draws)
    sampled_t = rng.beta(1 + 50_400, 1 + 49_600, draws)
    # Monte Carlo standard error is at most 0.5 / sqrt(400,000) = 0.0008; allow 5 of them.
    assert prob_beta_beats(control, treatment) == pytest.approx(float(np.mean(sampled_t > sampled_c)), abs=0.004)


def test_identical_arms_are_a_coin_flip() -> None:
    assert prob_beta_beats(_rate("c", 400, 37), _rate("t", 400, 37)) == pytest.approx(0.5)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2000), st.integers(0, 2000), st.data())
def test_prob_to_beat_control_is_a_probability_and_symmetric(units_c: int, units_t: int, data: st.DataObject) -> None:
    control = _rate("c", units_c, data.draw(st.integers(0, units_c)))
    treatment = _rate("t", units_t, data.draw(st.integers(0, units_t)))
    forward, backward = prob_beta_beats(control, treatment), prob_beta_beats(treatment, control)
    assert 0 <= forward <= 1
    assert forward + backward == pytest.approx(1.0, abs=1e-9)


# Outcomes and minimum sizes ---------------------------------------------------------------------


@pytest.mark.parametrize(("control", "treatment", "higher_is_better", "outcome"), [
    ((1000, 100), (1000, 130), True, Outcome.BETTER),
    ((1000, 100), (1000, 130), False, Outcome.WORSE),
    ((1000, 100), (1000, 105), True, Outcome.INCONCLUSIVE),
    ((100, 10), (100, 30), True, Outcome.NOT_ENOUGH_DATA),
    ((0, 0), (500, 40), True, Outcome.NOT_ENOUGH_DATA),
])
def test_rate_outcome(control: tuple[int, int], treatment: tuple[int, int], higher_is_better: bool,
                      outcome: Outcome) -> None:
    result = compare_rates(_rate("control", *control), _rate("B", *treatment), higher_is_better=higher_is_better)
    assert result.outcome is outcome
    if outcome is Outcome.NOT_ENOUGH_DATA:
        assert "each needs 150" in result.explanation


def test_too_early_still_shows_the_numbers() -> None:
    result = compare_rates(_rate("control", 100, 10), _rate("B", 100, 30))
    assert result.p_value is not None and result.p_value < 0.05
    assert result.prob_to_beat_control is not None and result.prob_to_beat_control > 0.99


# Sample ratio mismatch --------------------------------------------------------------------------


def test_srm_fires_on_a_52_48_split_of_100000() -> None:
    result = srm_check({"control": 52_000, "B": 48_000}, {"control": 50, "B": 50})
    # chi2 = 2 * 2000^2 / 50000 = 160 on 1 degree of freedom.
    assert result.statistic == pytest.approx(160.0)
    assert result.p_value == pytest.approx(stats.chi2.sf(160.0, 1))
    assert result.mismatch is True
    assert "Sample ratio mismatch" in result.explanation


@pytest.mark.parametrize("units", [{"control": 50_000, "B": 50_000}, {"control": 50_150, "B": 49_850}])
def test_srm_is_quiet_on_a_fair_split(units: dict[str, int]) -> None:
    assert srm_check(units).mismatch is False


def test_srm_is_quiet_on_the_split_assignment_actually_makes() -> None:
    weights = {"control": 50, "B": 50}
    counts = Counter(assign("srm-check", f"user-{index}", weights) for index in range(100_000))
    assert srm_check(dict(counts), weights).mismatch is False


# The flag points for a 50/50 split at p < 0.001 (chi-square critical value 10.83 on 1 df).
@pytest.mark.parametrize(("calm", "alarm"), [((123, 77), (124, 76)), ((552, 448), (553, 447)),
                                             ((2616, 2384), (2617, 2383))])
def test_srm_flag_points_for_a_50_50_split(calm: tuple[int, int], alarm: tuple[int, int]) -> None:
    assert srm_check({"a": calm[0], "b": calm[1]}).mismatch is False
    assert srm_check({"a": alarm[0], "b": alarm[1]}).mismatch is True


def test_srm_with_uneven_weights_matches_scipy() -> None:
    units = {"control": 8_100, "B": 1_010, "C": 890}
    result = srm_check(units, {"control": 0.8, "B": 0.1, "C": 0.1})
    expected = stats.chisquare([8_100, 1_010, 890], [8_000, 1_000, 1_000])
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.expected == {"control": pytest.approx(8000), "B": pytest.approx(1000), "C": pytest.approx(1000)}


def test_srm_waits_for_eight_units_a_variant() -> None:
    result = srm_check({"a": 7, "b": 30})
    assert (result.p_value, result.mismatch) == (None, None)
    assert "needs 8" in result.explanation


# Whole experiment --------------------------------------------------------------------------------


def test_analyze_rates_reports_the_issue_fields() -> None:
    arms = [_rate("control", 5000, 500), _rate("B", 5000, 580), _rate("C", 5000, 505)]
    analysis = analyze_rates(arms, {"control": 1, "B": 1, "C": 1})
    dumped = analysis.model_dump()
    assert dumped["kind"] == MetricKind.RATE and dumped["control"] == "control"
    assert [(row["name"], row["units"], row["conversions"], row["rate"]) for row in dumped["variants"]] == [
        ("control", 5000, 500, 0.1), ("B", 5000, 580, 0.116), ("C", 5000, 505, 0.101)]
    assert {"p_value", "ci_low", "ci_high", "prob_to_beat_control"} <= set(dumped["comparisons"][0])
    assert [comparison.outcome for comparison in analysis.comparisons] == [Outcome.BETTER, Outcome.INCONCLUSIVE]
    assert analysis.srm_p_value == pytest.approx(1.0)


def test_analyze_means_reports_mean_per_variant() -> None:
    arms = [MeanArm(name="control", units=400, mean=4.1, sd=0.9), MeanArm(name="B", units=420, mean=4.3, sd=0.8)]
    analysis = analyze_means(arms)
    assert [(row.name, row.mean, row.rate) for row in analysis.variants] == [("control", 4.1, None), ("B", 4.3, None)]
    assert analysis.comparisons[0].outcome is Outcome.BETTER
    assert analysis.srm_p_value is not None


# Sample size ------------------------------------------------------------------------------------


def test_sample_size_for_rates_matches_jmp_worked_example() -> None:
    # JMP 13.2 documentation, "Two Sample Proportions" (https://jmp.com/support/help/13-2/Two_Sample_Proportions.shtml):
    # alpha 0.05, two-sided, proportions 0.08 and 0.06, power 0.8 -> sample sizes of 2554.
    assert sample_size_rates(0.08, -0.02).units_per_variant == 2554


@pytest.mark.parametrize(("effect_size", "units"), [(0.5, 64), (0.8, 26)])
def test_sample_size_for_means_matches_cohen(effect_size: float, units: int) -> None:
    # Cohen (1988), Statistical Power Analysis for the Behavioral Sciences, 2nd ed., Table 2.4.1:
    # two-sided alpha 0.05, power 0.80 -> n = 64 a group for d = 0.5 and 26 for d = 0.8.
    assert sample_size_means(sd=10.0, mde=10.0 * effect_size).units_per_variant == units


def test_relative_mde_is_a_share_of_the_baseline() -> None:
    relative = sample_size_rates(0.5, 0.2, relative=True)
    assert relative.target == pytest.approx(0.6)
    assert relative.units_per_variant == sample_size_rates(0.5, 0.1).units_per_variant == 388


@settings(max_examples=30, deadline=None)
@given(st.floats(0.05, 2.0))
def test_sample_size_for_means_is_the_smallest_with_enough_power(effect_size: float) -> None:
    units = sample_size_means(sd=1.0, mde=effect_size).units_per_variant
    assert t_test_power(units, effect_size) >= 0.8
    assert units == 2 or t_test_power(units - 1, effect_size) < 0.8


@settings(max_examples=50, deadline=None)
@given(st.floats(0.02, 0.9), st.floats(0.005, 0.05))
def test_a_smaller_effect_needs_more_units(baseline: float, mde: float) -> None:
    assert sample_size_rates(baseline, mde / 2).units_per_variant >= sample_size_rates(baseline, mde).units_per_variant


# Bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("check", "message"), [
    (lambda: sample_size_rates(0.0, 0.1), "baseline is 0.0"),
    (lambda: sample_size_rates(0.5, 0.0), "must be non-zero"),
    (lambda: sample_size_rates(0.95, 0.1), "target rate of 1.05"),
    (lambda: sample_size_rates(0.5, 0.1, alpha=1.0), "alpha is 1.0"),
    (lambda: sample_size_rates(0.5, 0.1, power=0), "power is 0"),
    (lambda: sample_size_means(0.0, 1.0), "sd must be above 0"),
    (lambda: sample_size_means(1.0, 0.0), "mde a non-zero number"),
    (lambda: analyze_rates([_rate("control", 10, 1)]), "got 1 variant"),
    (lambda: analyze_rates([_rate("a", 10, 1), _rate("a", 10, 2)]), "names repeat"),
    (lambda: srm_check({"a": 10, "b": 10}, {"a": 1, "c": 1}), "weights for \\['a', 'c'\\]"),
    (lambda: srm_check({"a": 10, "b": -1}), "'b' has -1 units"),
    (lambda: srm_check({"a": 10, "b": 10}, {"a": 1, "b": 0}), "'b' has weight 0"),
    (lambda: compare_rates(_rate("c", 10, 1), _rate("t", 10, 1), alpha=0), "alpha is 0"),
])
def test_bad_input_says_what_and_where(check: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check()


@pytest.mark.parametrize("make", [lambda: RateArm(name="a", units=10, conversions=11),
                                  lambda: RateArm(name="", units=10, conversions=1),
                                  lambda: MeanArm(name="a", units=10, mean=1.0, sd=-1.0),
                                  lambda: MeanArm(name="a", units=10, mean=math.nan, sd=1.0)])
def test_impossible_arms_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValidationError):
        make()
