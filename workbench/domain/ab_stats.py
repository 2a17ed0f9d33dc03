"""The numbers behind an A/B test: per-variant counts, frequentist and Bayesian comparisons, SRM, sample sizes.

Defaults follow GrowthBook (growthbook/growthbook `packages/shared/src/constants.ts`; docs.growthbook.io
statistics pages): alpha 0.05, 95% intervals, a sample-ratio-mismatch alarm at p < 0.001 once every
variant has 8 units, and no verdict before 150 units a variant. The methods, all with scipy:
- rates (`correct`, thumbs up): two-proportion z-test with the pooled standard error, and a Wald
  interval on the difference with the unpooled one (the usual pairing: the test assumes no difference,
  the interval does not);
- means (`latency_ms`, `cost_usd`, `rating`): Welch's t-test with Welch-Satterthwaite degrees of freedom,
  as GrowthBook's frequentist engine uses, and the matching t interval on the difference;
- probability to beat control: for rates, Beta(1, 1) priors and the exact closed form for
  P(p_treatment > p_control) of two Beta posteriors (Evan Miller, "Formulas for Bayesian A/B Testing",
  https://www.evanmiller.org/bayesian-ab-testing.html), so it is deterministic; for means, the normal
  posterior of the difference under a flat prior, Phi(difference / standard error);
- SRM: chi-square goodness of fit of units per variant against the traffic weights;
- sample size: the two-proportion formula with the pooled variance under no difference (Fleiss, Levin &
  Paik, Statistical Methods for Rates and Proportions, 3rd ed., 2003, eq. 4.14, without continuity
  correction), and for means the exact noncentral-t power of the two-sample t-test.
Differences are always treatment minus control, in the metric's own units (rate points for rates).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats
from scipy.special import betaln, logsumexp

from workbench.domain.assignment import normalise_weights
from workbench.errors import InvalidInput

ALPHA = 0.05
"""GrowthBook's DEFAULT_P_VALUE_THRESHOLD; intervals are 1 - ALPHA = 95%."""
POWER = 0.8
SRM_THRESHOLD = 0.001
"""GrowthBook's DEFAULT_SRM_THRESHOLD: at 0.05 about half of SRM warnings would be false alarms."""
SRM_MIN_UNITS = 8
"""GrowthBook's DEFAULT_SRM_MINIMINUM_COUNT_PER_VARIATION: no SRM check below this many units a variant."""
MIN_UNITS = 150
"""GrowthBook's DEFAULT_MIN_SAMPLE_SIZE: no better/worse verdict before each variant has this many units."""

Name = Annotated[str, Field(min_length=1, max_length=200)]


class MetricKind(StrEnum):
    RATE = "rate"
    MEAN = "mean"


class Outcome(StrEnum):
    BETTER = "better"
    WORSE = "worse"
    INCONCLUSIVE = "inconclusive"
    NOT_ENOUGH_DATA = "not enough data"


class RateArm(BaseModel):
    """One variant of a rate metric: how many units, and how many of them converted (were correct, liked it)."""

    model_config = ConfigDict(frozen=True)

    name: Name
    units: int = Field(ge=0)
    conversions: int = Field(ge=0)

    @model_validator(mode="after")
    def _conversions_within_units(self) -> RateArm:
        if self.conversions > self.units:
            raise ValueError(f"variant {self.name!r} has {self.conversions} conversions out of {self.units} units; "
                             "conversions cannot exceed units")
        return self


class MeanArm(BaseModel):
    """One variant of a mean metric, as summary statistics so a rollup (count, sum, sum of squares) can feed it."""

    model_config = ConfigDict(frozen=True)

    name: Name
    units: int = Field(ge=0)
    mean: float = Field(allow_inf_nan=False)
    sd: float = Field(ge=0, allow_inf_nan=False, description="Sample standard deviation (n - 1 denominator).")

    @classmethod
    def from_values(cls, name: str, values: Iterable[float]) -> MeanArm:
        """Summarise raw values; missing ones (NaN) are left out."""
        array = np.asarray(list(values), dtype=float)
        array = array[np.isfinite(array)]
        mean = float(array.mean()) if array.size else 0.0
        sd = float(array.std(ddof=1)) if array.size > 1 else 0.0
        return cls(name=name, units=int(array.size), mean=mean, sd=sd)

    @classmethod
    def from_sums(cls, name: str, units: int, total: float, total_squares: float) -> MeanArm:
        """Summarise from a rollup's count, sum and sum of squares."""
        if units < 2:
            return cls(name=name, units=units, mean=total / units if units else 0.0, sd=0.0)
        variance = (total_squares - total * total / units) / (units - 1)
        # Rounding can leave a tiny negative variance when every value is the same.
        return cls(name=name, units=units, mean=total / units, sd=math.sqrt(max(variance, 0.0)))


class VariantResult(BaseModel):
    """The per-variant row of the results table."""

    model_config = ConfigDict(frozen=True)

    name: str
    units: int
    conversions: int | None = Field(default=None, description="Rate metrics only.")
    rate: float | None = Field(default=None, description="conversions / units; rate metrics only.")
    mean: float | None = Field(default=None, description="Mean metrics only.")
    sd: float | None = Field(default=None, description="Mean metrics only.")

    @classmethod
    def of(cls, arm: RateArm | MeanArm) -> VariantResult:
        if isinstance(arm, RateArm):
            return cls(name=arm.name, units=arm.units, conversions=arm.conversions,
                       rate=arm.conversions / arm.units if arm.units else None)
        return cls(name=arm.name, units=arm.units, mean=arm.mean if arm.units else None,
                   sd=arm.sd if arm.units > 1 else None)


class Comparison(BaseModel):
    """One treatment against control."""

    model_config = ConfigDict(frozen=True)

    control: str
    treatment: str
    kind: MetricKind
    method: str
    difference: float | None = Field(description="Treatment minus control (rate points, or the metric's units).")
    relative_difference: float | None = Field(description="difference / control value; None when control is 0.")
    statistic: float | None = Field(description="z for rates, Welch's t for means.")
    p_value: float | None
    ci_low: float | None = Field(description="Lower end of the confidence interval on the difference.")
    ci_high: float | None
    confidence: float
    prob_to_beat_control: float | None = Field(description="Posterior probability that the treatment is better.")
    higher_is_better: bool
    outcome: Outcome
    explanation: str


class SrmResult(BaseModel):
    """Did traffic split the way the weights say? A mismatch means assignment or logging is broken."""

    model_config = ConfigDict(frozen=True)

    observed: dict[str, int]
    expected: dict[str, float]
    statistic: float | None
    p_value: float | None
    threshold: float
    mismatch: bool | None = Field(description="True when p < threshold; None when too few units to check.")
    explanation: str


class ExperimentAnalysis(BaseModel):
    """Everything the Experiments page and `experiments analyze --json` show for one metric."""

    model_config = ConfigDict(frozen=True)

    kind: MetricKind
    control: str
    variants: list[VariantResult]
    comparisons: list[Comparison]
    srm: SrmResult
    srm_p_value: float | None


class SampleSize(BaseModel):
    """Units each variant needs before the test can detect the effect asked for."""

    model_config = ConfigDict(frozen=True)

    units_per_variant: int
    kind: MetricKind
    baseline: float | None = Field(default=None, description="Control rate (rates).")
    target: float | None = Field(default=None, description="Rate to detect (rates).")
    sd: float | None = Field(default=None, description="Standard deviation of the metric (means).")
    mde: float = Field(description="Minimum detectable effect, absolute (rate points or the metric's units).")
    alpha: float
    power: float
    explanation: str


# Helpers -------------------------------------------------------------------------------------------


def chance_text(probability: float | None) -> str:
    """A probability as a percent that never rounds to a certain 100% or 0%: the one format of tiles, tables and
    explanations, so a tile's "> 99.9%" is never captioned "100%"."""
    if probability is None:
        return "–"
    if probability > 0.999:
        return "> 99.9%"
    if probability < 0.001:
        return "< 0.1%"
    return f"{probability:.1%}"


def _check_probability(value: float, name: str) -> None:
    if not (isinstance(value, int | float) and 0 < value < 1):
        raise InvalidInput(f"{name} is {value!r}; it must be a number strictly between 0 and 1")


def _p_text(p_value: float) -> str:
    return "p < 0.0001" if p_value < 0.0001 else f"p = {p_value:.4f}"


def _outcome(p_value: float | None, difference: float | None, alpha: float, higher_is_better: bool,
             enough: bool) -> Outcome:
    if not enough or p_value is None or difference is None:
        return Outcome.NOT_ENOUGH_DATA
    if p_value >= alpha or difference == 0:
        return Outcome.INCONCLUSIVE
    return Outcome.BETTER if (difference > 0) == higher_is_better else Outcome.WORSE


def _too_early(control: RateArm | MeanArm, treatment: RateArm | MeanArm, min_units: int) -> str:
    return (f"Too early to call: {treatment.name} has {treatment.units} units and {control.name} {control.units}; "
            f"each needs {min_units} before a verdict.")


def _verdict_text(outcome: Outcome, treatment: str, control: str, alpha: float) -> str:
    if outcome is Outcome.INCONCLUSIVE:
        return f"no clear difference at the {1 - alpha:.0%} level"
    return f"{treatment} is {outcome.value} than {control}"


# Rates ---------------------------------------------------------------------------------------------


def _beta_exceeds(a1: int, b1: int, a2: int, b2: int) -> float:
    """Return P(X2 > X1) for X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), summing a2 terms (Evan Miller's formula)."""
    i = np.arange(a2, dtype=float)
    terms = betaln(a1 + i, b1 + b2) - np.log(b2 + i) - betaln(1 + i, b2) - betaln(a1, b1)
    return float(np.exp(logsumexp(terms)))


def prob_beta_beats(control: RateArm, treatment: RateArm) -> float:
    """Return P(treatment's true rate > control's) under Beta(1, 1) priors, exactly.

    The closed form is a sum with as many terms as its second parameter; by symmetry
    (P(X2 > X1) = 1 - P(X1 > X2), and p > q exactly when 1 - p < 1 - q) it is evaluated in whichever
    of four equivalent forms has the fewest terms, so the cost is the smallest of the four counts.
    """
    a1, b1 = 1 + control.conversions, 1 + control.units - control.conversions
    a2, b2 = 1 + treatment.conversions, 1 + treatment.units - treatment.conversions
    forms: list[tuple[int, Callable[[], float]]] = [
        (a2, lambda: _beta_exceeds(a1, b1, a2, b2)),
        (a1, lambda: 1 - _beta_exceeds(a2, b2, a1, b1)),
        (b1, lambda: _beta_exceeds(b2, a2, b1, a1)),
        (b2, lambda: 1 - _beta_exceeds(b1, a1, b2, a2)),
    ]
    _, evaluate = min(forms, key=lambda form: form[0])
    return min(max(evaluate(), 0.0), 1.0)


def two_proportion_test(control: RateArm, treatment: RateArm, alpha: float = ALPHA) -> tuple[float, float, float, float]:
    """Return (z, two-sided p, ci_low, ci_high) for treatment rate minus control rate.

    z uses the pooled standard error (the spread if there were no difference); the interval uses the
    unpooled one. When both arms are all conversions or all non-conversions there is no spread:
    z = 0, p = 1 and the interval is the single point 0.
    """
    p_c, p_t = control.conversions / control.units, treatment.conversions / treatment.units
    difference = p_t - p_c
    pooled = (control.conversions + treatment.conversions) / (control.units + treatment.units)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / control.units + 1 / treatment.units))
    z, p_value = (0.0, 1.0) if se_pooled == 0 else (difference / se_pooled,
                                                    float(2 * stats.norm.sf(abs(difference / se_pooled))))
    se = math.sqrt(p_c * (1 - p_c) / control.units + p_t * (1 - p_t) / treatment.units)
    margin = float(stats.norm.ppf(1 - alpha / 2)) * se
    return z, p_value, difference - margin, difference + margin


def compare_rates(control: RateArm, treatment: RateArm, *, alpha: float = ALPHA, higher_is_better: bool = True,
                  min_units: int = MIN_UNITS) -> Comparison:
    """Compare a treatment's rate with control's: z-test, interval, and probability to beat control."""
    _check_probability(alpha, "alpha")
    base = dict(control=control.name, treatment=treatment.name, kind=MetricKind.RATE,
                method="two-proportion z-test", confidence=1 - alpha, higher_is_better=higher_is_better)
    if control.units == 0 or treatment.units == 0:
        return Comparison(**base, difference=None, relative_difference=None, statistic=None, p_value=None,
                          ci_low=None, ci_high=None, prob_to_beat_control=None, outcome=Outcome.NOT_ENOUGH_DATA,
                          explanation=_too_early(control, treatment, min_units))
    z, p_value, ci_low, ci_high = two_proportion_test(control, treatment, alpha)
    p_c, p_t = control.conversions / control.units, treatment.conversions / treatment.units
    difference = p_t - p_c
    beats = prob_beta_beats(control, treatment)
    prob = beats if higher_is_better else 1 - beats
    enough = min(control.units, treatment.units) >= min_units
    outcome = _outcome(p_value, difference, alpha, higher_is_better, enough)
    explanation = (f"{treatment.name} {p_t:.1%} against {control.name} {p_c:.1%}: {difference * 100:+.1f} points "
                   f"({1 - alpha:.0%} CI {ci_low * 100:+.1f} to {ci_high * 100:+.1f}), {_p_text(p_value)}; "
                   f"{chance_text(prob)} chance {treatment.name} is better. "
                   + (_too_early(control, treatment, min_units) if not enough
                      else _verdict_text(outcome, treatment.name, control.name, alpha).capitalize() + "."))
    return Comparison(**base, difference=difference, relative_difference=difference / p_c if p_c else None,
                      statistic=z, p_value=p_value, ci_low=ci_low, ci_high=ci_high, prob_to_beat_control=prob,
                      outcome=outcome, explanation=explanation)


# Means ---------------------------------------------------------------------------------------------


def welch_test(control: MeanArm, treatment: MeanArm, alpha: float = ALPHA
               ) -> tuple[float, float, float, float, float] | None:
    """Return (t, two-sided p, df, ci_low, ci_high) for treatment mean minus control mean, or None.

    None when it is undefined: fewer than 2 units in an arm, or no variation in either arm.
    """
    if control.units < 2 or treatment.units < 2:
        return None
    var_c, var_t = control.sd ** 2 / control.units, treatment.sd ** 2 / treatment.units
    se = math.sqrt(var_c + var_t)
    if se == 0:
        return None
    df = (var_c + var_t) ** 2 / (var_c ** 2 / (control.units - 1) + var_t ** 2 / (treatment.units - 1))
    test = stats.ttest_ind_from_stats(treatment.mean, treatment.sd, treatment.units,
                                      control.mean, control.sd, control.units, equal_var=False)
    difference = treatment.mean - control.mean
    margin = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return float(test.statistic), float(test.pvalue), df, difference - margin, difference + margin


def compare_means(control: MeanArm, treatment: MeanArm, *, alpha: float = ALPHA, higher_is_better: bool = True,
                  min_units: int = MIN_UNITS) -> Comparison:
    """Compare a treatment's mean with control's: Welch's t-test, interval, and probability to beat control."""
    _check_probability(alpha, "alpha")
    base = dict(control=control.name, treatment=treatment.name, kind=MetricKind.MEAN, method="Welch's t-test",
                confidence=1 - alpha, higher_is_better=higher_is_better)
    result = welch_test(control, treatment, alpha)
    difference = treatment.mean - control.mean if control.units and treatment.units else None
    relative = difference / control.mean if difference is not None and control.mean else None
    if result is None:
        reason = ("no variation in either variant, so there is no spread to test against"
                  if min(control.units, treatment.units) >= 2 else "each variant needs at least 2 units")
        return Comparison(**base, difference=difference, relative_difference=relative, statistic=None, p_value=None,
                          ci_low=None, ci_high=None, prob_to_beat_control=None, outcome=Outcome.NOT_ENOUGH_DATA,
                          explanation=f"No test: {reason}.")
    t, p_value, _, ci_low, ci_high = result
    difference = treatment.mean - control.mean
    se = math.sqrt(control.sd ** 2 / control.units + treatment.sd ** 2 / treatment.units)
    beats = float(stats.norm.cdf(difference / se))
    prob = beats if higher_is_better else 1 - beats
    enough = min(control.units, treatment.units) >= min_units
    outcome = _outcome(p_value, difference, alpha, higher_is_better, enough)
    explanation = (f"{treatment.name} averages {treatment.mean:.4g} against {control.name} {control.mean:.4g}: "
                   f"{difference:+.4g} ({1 - alpha:.0%} CI {ci_low:+.4g} to {ci_high:+.4g}), {_p_text(p_value)}; "
                   f"{chance_text(prob)} chance {treatment.name} is better. "
                   + (_too_early(control, treatment, min_units) if not enough
                      else _verdict_text(outcome, treatment.name, control.name, alpha).capitalize() + "."))
    return Comparison(**base, difference=difference, relative_difference=relative, statistic=t, p_value=p_value,
                      ci_low=ci_low, ci_high=ci_high, prob_to_beat_control=prob, outcome=outcome,
                      explanation=explanation)


# Sample ratio mismatch -----------------------------------------------------------------------------


def srm_check(units: Mapping[str, int], weights: Mapping[str, float] | None = None, *,
              threshold: float = SRM_THRESHOLD, min_units: int = SRM_MIN_UNITS) -> SrmResult:
    """Test whether units split across variants as the traffic weights say (chi-square goodness of fit)."""
    _check_probability(threshold, "threshold")
    shares = normalise_weights(weights if weights is not None else dict.fromkeys(units, 1.0))
    if set(shares) != set(units):
        raise InvalidInput(f"the SRM check got units for {sorted(units)} but weights for {sorted(shares)}; "
                           "give both for the same variants")
    for name, count in units.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInput(f"variant {name!r} has {count!r} units; units must be whole numbers of 0 or more")
    names = list(shares)
    total = sum(units.values())
    observed = {name: units[name] for name in names}
    expected = {name: total * shares[name] for name in names}
    if min(observed.values()) < min_units:
        return SrmResult(observed=observed, expected=expected, statistic=None, p_value=None, threshold=threshold,
                         mismatch=None,
                         explanation=f"Too few units to check the split: each variant needs {min_units}.")
    test = stats.chisquare([observed[name] for name in names], [expected[name] for name in names])
    p_value = float(test.pvalue)
    mismatch = p_value < threshold
    worst = max(names, key=lambda name: abs(observed[name] - expected[name]))
    where = f"{worst} got {observed[worst] / total:.1%} of units where {shares[worst]:.1%} was expected"
    explanation = (f"Sample ratio mismatch: {where} ({_p_text(p_value)}, below {threshold:g}). Assignment or "
                   "logging is losing units unevenly; fix that before trusting these results."
                   if mismatch else f"The traffic split matches the weights ({_p_text(p_value)}; {where}).")
    return SrmResult(observed=observed, expected=expected, statistic=float(test.statistic), p_value=p_value,
                     threshold=threshold, mismatch=mismatch, explanation=explanation)


# Whole experiment ----------------------------------------------------------------------------------


def _unique_names(arms: Sequence[RateArm] | Sequence[MeanArm]) -> None:
    if len(arms) < 2:
        raise InvalidInput(f"an experiment needs a control and at least one treatment; got {len(arms)} variant(s)")
    names = [arm.name for arm in arms]
    if len(set(names)) != len(names):
        raise InvalidInput(f"variant names repeat in {names}; each variant needs its own name")


def analyze_rates(arms: Sequence[RateArm], weights: Mapping[str, float] | None = None, *, alpha: float = ALPHA,
                  higher_is_better: bool = True, min_units: int = MIN_UNITS,
                  srm_threshold: float = SRM_THRESHOLD) -> ExperimentAnalysis:
    """Analyse a rate metric: the first arm is control, each other arm is compared with it."""
    _unique_names(arms)
    control, *treatments = arms
    srm = srm_check({arm.name: arm.units for arm in arms}, weights, threshold=srm_threshold)
    comparisons = [compare_rates(control, arm, alpha=alpha, higher_is_better=higher_is_better, min_units=min_units)
                   for arm in treatments]
    return ExperimentAnalysis(kind=MetricKind.RATE, control=control.name,
                              variants=[VariantResult.of(arm) for arm in arms], comparisons=comparisons,
                              srm=srm, srm_p_value=srm.p_value)


def analyze_means(arms: Sequence[MeanArm], weights: Mapping[str, float] | None = None, *, alpha: float = ALPHA,
                  higher_is_better: bool = True, min_units: int = MIN_UNITS,
                  srm_threshold: float = SRM_THRESHOLD) -> ExperimentAnalysis:
    """Analyse a mean metric: the first arm is control, each other arm is compared with it."""
    _unique_names(arms)
    control, *treatments = arms
    srm = srm_check({arm.name: arm.units for arm in arms}, weights, threshold=srm_threshold)
    comparisons = [compare_means(control, arm, alpha=alpha, higher_is_better=higher_is_better, min_units=min_units)
                   for arm in treatments]
    return ExperimentAnalysis(kind=MetricKind.MEAN, control=control.name,
                              variants=[VariantResult.of(arm) for arm in arms], comparisons=comparisons,
                              srm=srm, srm_p_value=srm.p_value)


# Sample size ---------------------------------------------------------------------------------------


def sample_size_rates(baseline: float, mde: float, *, alpha: float = ALPHA, power: float = POWER,
                      relative: bool = False) -> SampleSize:
    """Return units per variant to detect a change of `mde` from `baseline` with a two-sided z-test.

    `mde` is in rate points (0.02 = two points) unless `relative`, when it is a share of the baseline
    (0.1 = a 10% lift). n = [z(1-a/2) sqrt(2 pbar qbar) + z(power) sqrt(p1 q1 + p2 q2)]^2 / (p2 - p1)^2.
    """
    _check_probability(baseline, "baseline")
    _check_probability(alpha, "alpha")
    _check_probability(power, "power")
    target = baseline * (1 + mde) if relative else baseline + mde
    if mde == 0 or not 0 < target < 1:
        raise InvalidInput(f"the minimum detectable effect {mde!r} on a baseline of {baseline} gives a target rate "
                           f"of {target:.4g}; it must be non-zero and leave the target strictly between 0 and 1")
    z_alpha, z_power = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    mean_rate = (baseline + target) / 2
    spread = (z_alpha * math.sqrt(2 * mean_rate * (1 - mean_rate))
              + z_power * math.sqrt(baseline * (1 - baseline) + target * (1 - target)))
    units = math.ceil(spread ** 2 / (target - baseline) ** 2)
    return SampleSize(units_per_variant=units, kind=MetricKind.RATE, baseline=baseline, target=target,
                      mde=target - baseline, alpha=alpha, power=power,
                      explanation=f"{units:,} units per variant give {power:.0%} power to detect a move from "
                                  f"{baseline:.1%} to {target:.1%} at alpha {alpha:g} (two-sided).")


def t_test_power(units_per_variant: int, effect_size: float, alpha: float = ALPHA) -> float:
    """Return the power of a two-sided two-sample t-test with equal groups, from the noncentral t."""
    df = 2 * units_per_variant - 2
    noncentrality = abs(effect_size) * math.sqrt(units_per_variant / 2)
    critical = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality))


def sample_size_means(sd: float, mde: float, *, alpha: float = ALPHA, power: float = POWER) -> SampleSize:
    """Return units per variant for a two-sided t-test to detect a change of `mde` in a metric with spread `sd`.

    Starts from the normal approximation n = 2 (z(1-a/2) + z(power))^2 / d^2, d = mde / sd, then steps to
    the smallest n whose exact noncentral-t power reaches `power`.
    """
    _check_probability(alpha, "alpha")
    _check_probability(power, "power")
    if not (math.isfinite(sd) and sd > 0) or not math.isfinite(mde) or mde == 0:
        raise InvalidInput(f"sd is {sd!r} and mde {mde!r}; sd must be above 0 and mde a non-zero number")
    effect = abs(mde) / sd
    units = max(2, math.ceil(2 * (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) ** 2 / effect ** 2))
    while t_test_power(units, effect, alpha) < power:
        units += 1
    while units > 2 and t_test_power(units - 1, effect, alpha) >= power:
        units -= 1
    return SampleSize(units_per_variant=units, kind=MetricKind.MEAN, sd=sd, mde=abs(mde), alpha=alpha, power=power,
                      explanation=f"{units:,} units per variant give {power:.0%} power to detect a change of "
                                  f"{abs(mde):.4g} (effect size {effect:.3g} sd) at alpha {alpha:g} (two-sided).")
