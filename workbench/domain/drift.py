"""Has a monitored signal moved between a reference window and the current one? Tests with thresholds and a verdict.

The choice of test and every default threshold follow Evidently's data-drift defaults
(evidentlyai/evidently `src/evidently/legacy/calculations/stattests/registry.py`, `_get_default_stattest`;
https://github.com/evidentlyai/evidently/blob/main/docs/book/reference/data-drift-algorithm.md),
computed here with scipy:

- numbers (output or input length, latency, cost): reference of at most 1,000 values -> two-sample
  Kolmogorov-Smirnov, drift when p < 0.05; larger -> Wasserstein distance divided by the reference's
  standard deviation (floored at 0.001, as `wasserstein_distance_norm.py` does), drift at 0.1 or more;
  or, when asked, the population stability index over ten quantile bins of the reference, drift at 0.1
  or more (`psi.py`'s default threshold);
- categories (label, category): chi-square test of homogeneity on the 2 x k table of counts, drift when
  p < 0.05; reference above 1,000 -> Jensen-Shannon distance (base 2, so 0..1), drift at 0.1 or more;
- rates (accuracy, refusal, invalid JSON): pooled two-proportion z-test, drift when p < 0.05.

Large samples get a distance instead of a p-value because with thousands of rows every test finds a
"significant" difference too small to matter; a distance threshold asks whether it is big.
Fewer than 30 values on either side gives "not enough data" rather than a verdict.

Three choices differ from Evidently, each for a stated reason (docs/statistics.md): PSI bins are the
reference's quantiles (Evidently: Sturges edges over both windows), so bins do not move with the current
window; Jensen-Shannon uses base 2 (Evidently: natural log), so it reads on 0..1; and the chi-square test
is one of homogeneity (Evidently: goodness of fit against the reference's shares), since the reference
window is a sample too.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats
from scipy.spatial.distance import jensenshannon

from workbench.errors import InvalidInput

P_VALUE_THRESHOLD = 0.05
"""Evidently's `StatTest.default_threshold` for every test that returns a p-value."""
DISTANCE_THRESHOLD = 0.1
"""Evidently's default for normed Wasserstein, PSI and Jensen-Shannon."""
LARGE_SAMPLE = 1000
"""Reference windows above this many values get a distance instead of a p-value (Evidently's switch)."""
MIN_SAMPLE = 30
"""Values needed on each side before any verdict; below it the result says "not enough data"."""
WASSERSTEIN_MIN_SCALE = 0.001
"""Floor on the reference standard deviation that normalises the Wasserstein distance, so a constant
reference does not divide by zero."""
PSI_BINS = 10
"""Quantile (decile) bins of the reference window for PSI."""
PSI_EMPTY_BIN = 0.0001
"""Share given to an empty bin before the logarithm: Evidently's fill value in `get_binned_data`."""
DATASET_DRIFT_SHARE = 0.5
"""Evidently's `drift_share`: the whole model has drifted when at least this share of its signals has."""


class DriftMethod(StrEnum):
    KS = "ks"
    WASSERSTEIN = "wasserstein"
    PSI = "psi"
    CHI_SQUARE = "chi_square"
    JENSEN_SHANNON = "jensen_shannon"
    TWO_PROPORTION_Z = "two_proportion_z"


METHOD_LABELS: dict[DriftMethod, str] = {
    DriftMethod.KS: "Kolmogorov-Smirnov test",
    DriftMethod.WASSERSTEIN: "Wasserstein distance (normed)",
    DriftMethod.PSI: "population stability index",
    DriftMethod.CHI_SQUARE: "chi-square test",
    DriftMethod.JENSEN_SHANNON: "Jensen-Shannon distance",
    DriftMethod.TWO_PROPORTION_Z: "two-proportion z-test",
}
P_VALUE_METHODS = frozenset({DriftMethod.KS, DriftMethod.CHI_SQUARE, DriftMethod.TWO_PROPORTION_Z})


class Verdict(StrEnum):
    OK = "ok"
    DRIFT = "drift"
    NOT_ENOUGH_DATA = "not enough data"


class DriftSettings(BaseModel):
    """Thresholds and sizes behind every drift verdict; the defaults are Evidently's, each can be overridden."""

    model_config = ConfigDict(frozen=True)

    p_value_threshold: float = Field(default=P_VALUE_THRESHOLD, gt=0, lt=1,
                                     description="Tests that give a p-value report drift below this.")
    wasserstein_threshold: float = Field(default=DISTANCE_THRESHOLD, gt=0,
                                         description="Normed Wasserstein distance at or above this is drift.")
    psi_threshold: float = Field(default=DISTANCE_THRESHOLD, gt=0, description="PSI at or above this is drift.")
    jensen_shannon_threshold: float = Field(default=DISTANCE_THRESHOLD, gt=0, le=1,
                                            description="Jensen-Shannon distance (0..1) at or above this is drift.")
    large_sample: int = Field(default=LARGE_SAMPLE, ge=1,
                              description="Reference sizes above this use a distance instead of a test.")
    min_sample: int = Field(default=MIN_SAMPLE, ge=1, description="Values needed on each side for a verdict.")
    large_numeric_method: DriftMethod = Field(default=DriftMethod.WASSERSTEIN,
                                              description="Distance for large numeric samples: wasserstein or psi.")
    psi_bins: int = Field(default=PSI_BINS, ge=2, le=100, description="Quantile bins of the reference for PSI.")

    def threshold_for(self, method: DriftMethod) -> float:
        """Return the threshold that applies to `method`."""
        if method in P_VALUE_METHODS:
            return self.p_value_threshold
        return {
            DriftMethod.WASSERSTEIN: self.wasserstein_threshold,
            DriftMethod.PSI: self.psi_threshold,
            DriftMethod.JENSEN_SHANNON: self.jensen_shannon_threshold,
        }[method]


DEFAULT_SETTINGS = DriftSettings()


class DriftResult(BaseModel):
    """One signal compared between a reference and a current window, ready to show and to store."""

    model_config = ConfigDict(frozen=True)

    signal: str = Field(description="What was compared, as the page names it (\"output length\").")
    method: DriftMethod
    statistic: float | None = Field(description="KS D, chi-square, z, or the distance; None without enough data.")
    p_value: float | None = Field(description="For tests that have one (KS, chi-square, z); None for distances.")
    threshold: float = Field(description="A p-value below it, or a distance at or above it, is drift.")
    rule: str = Field(description="The threshold as a condition a reader can check, e.g. \"p < 0.05\".")
    verdict: Verdict
    reference_size: int
    current_size: int
    explanation: str = Field(description="One plain sentence saying what the numbers mean.")

    @property
    def drifted(self) -> bool:
        return self.verdict is Verdict.DRIFT


def _rule(method: DriftMethod, threshold: float) -> str:
    return f"p < {threshold:g}" if method in P_VALUE_METHODS else f"distance >= {threshold:g}"


def _result(signal: str, method: DriftMethod, statistic: float | None, p_value: float | None, drifted: bool,
            sizes: tuple[int, int], settings: DriftSettings, explanation: str) -> DriftResult:
    threshold = settings.threshold_for(method)
    return DriftResult(signal=signal, method=method, statistic=statistic, p_value=p_value, threshold=threshold,
                       rule=_rule(method, threshold), verdict=Verdict.DRIFT if drifted else Verdict.OK,
                       reference_size=sizes[0], current_size=sizes[1], explanation=explanation)


def _not_enough(signal: str, method: DriftMethod, sizes: tuple[int, int], settings: DriftSettings) -> DriftResult:
    threshold = settings.threshold_for(method)
    short = " and ".join(f"{size} {side}" for side, size in zip(("reference", "current"), sizes, strict=True)
                         if size < settings.min_sample)
    return DriftResult(
        signal=signal, method=method, statistic=None, p_value=None, threshold=threshold,
        rule=_rule(method, threshold), verdict=Verdict.NOT_ENOUGH_DATA, reference_size=sizes[0],
        current_size=sizes[1],
        explanation=f"Not enough data to judge {signal}: {short} values, {settings.min_sample} needed on each side.")


def _finite(values: Iterable[float | None], signal: str, side: str) -> np.ndarray:
    """Keep the values a test can use: missing ones (None, NaN) are common in logs and are left out."""
    try:
        if isinstance(values, np.ndarray):
            array = values.astype(float, copy=False)
        else:
            array = np.asarray([np.nan if value is None else value for value in values], dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{signal}: the {side} window holds a value that is not a number ({exc}); "
                           "pass numbers only, or None for a missing value") from None
    return array[np.isfinite(array)]


def _p_text(p_value: float) -> str:
    return "< 0.0001" if p_value < 0.0001 else f"= {p_value:.4f}".rstrip("0").rstrip(".")


# Numbers -------------------------------------------------------------------------------------------


def ks_drift(signal: str, reference: Iterable[float | None], current: Iterable[float | None],
             settings: DriftSettings = DEFAULT_SETTINGS) -> DriftResult:
    """Compare two samples of a number with the two-sample Kolmogorov-Smirnov test (`scipy.stats.ks_2samp`)."""
    ref, cur = _finite(reference, signal, "reference"), _finite(current, signal, "current")
    sizes = (ref.size, cur.size)
    if min(sizes) < settings.min_sample:
        return _not_enough(signal, DriftMethod.KS, sizes, settings)
    with warnings.catch_warnings():
        # scipy falls back from the exact p-value to the asymptotic one on some tied samples and says so;
        # the fallback is the documented behaviour, so the warning is noise in a dashboard's logs.
        warnings.filterwarnings("ignore", message="ks_2samp: Exact calculation unsuccessful")
        test = stats.ks_2samp(ref, cur)
    statistic, p_value = float(test.statistic), float(test.pvalue)
    drifted = p_value < settings.p_value_threshold
    gap = f"KS distance {statistic:.2f} on a 0-1 scale, p {_p_text(p_value)}"
    explanation = (f"{signal.capitalize()} has shifted more than chance explains ({gap}, "
                   f"below {settings.p_value_threshold:g})."
                   if drifted else
                   f"{signal.capitalize()} looks like the reference ({gap}; "
                   f"drift only below {settings.p_value_threshold:g}).")
    return _result(signal, DriftMethod.KS, statistic, p_value, drifted, sizes, settings, explanation)


def wasserstein_drift(signal: str, reference: Iterable[float | None], current: Iterable[float | None],
                      settings: DriftSettings = DEFAULT_SETTINGS) -> DriftResult:
    """Measure how far a number moved, in reference standard deviations (Evidently's normed Wasserstein)."""
    ref, cur = _finite(reference, signal, "reference"), _finite(current, signal, "current")
    sizes = (ref.size, cur.size)
    if min(sizes) < settings.min_sample:
        return _not_enough(signal, DriftMethod.WASSERSTEIN, sizes, settings)
    # Population standard deviation (ddof=0), as Evidently's `np.std(reference_data)`.
    scale = max(float(np.std(ref)), WASSERSTEIN_MIN_SCALE)
    distance = float(stats.wasserstein_distance(ref, cur)) / scale
    threshold = settings.wasserstein_threshold
    drifted = distance >= threshold
    explanation = (f"{signal.capitalize()} moved by {distance:.2f} reference standard deviations on average "
                   f"({'at or above' if drifted else 'below'} the drift line of {threshold:g}).")
    return _result(signal, DriftMethod.WASSERSTEIN, distance, None, drifted, sizes, settings, explanation)


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Return the inner bin edges: the reference's quantiles, with ties merged.

    Bins are (-inf, e1], (e1, e2], ..., (ek, inf), so current values outside the reference's range
    still land in the end bins, and a reference made of one repeated value still separates values
    equal to it from larger ones.
    """
    return np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
    return counts / values.size


def population_stability_index(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Return PSI = sum over bins of (ref% - cur%) * ln(ref% / cur%), bins from the reference's quantiles.

    An empty bin on either side gets a share of 0.0001 (PSI_EMPTY_BIN) so the logarithm is defined;
    the other shares are left as they are, as Evidently does.
    """
    edges = quantile_edges(reference, bins)
    ref_shares = np.where((shares := _bin_shares(reference, edges)) == 0, PSI_EMPTY_BIN, shares)
    cur_shares = np.where((shares := _bin_shares(current, edges)) == 0, PSI_EMPTY_BIN, shares)
    return float(np.sum((ref_shares - cur_shares) * np.log(ref_shares / cur_shares)))


def psi_drift(signal: str, reference: Iterable[float | None], current: Iterable[float | None],
              settings: DriftSettings = DEFAULT_SETTINGS) -> DriftResult:
    """Score how differently a number spreads over the reference's quantile bins (population stability index)."""
    ref, cur = _finite(reference, signal, "reference"), _finite(current, signal, "current")
    sizes = (ref.size, cur.size)
    if min(sizes) < settings.min_sample:
        return _not_enough(signal, DriftMethod.PSI, sizes, settings)
    psi = population_stability_index(ref, cur, settings.psi_bins)
    threshold = settings.psi_threshold
    drifted = psi >= threshold
    change = "spreads differently from" if drifted else "spreads like"
    explanation = (f"{signal.capitalize()} {change} the reference over its {settings.psi_bins} quantile bins: "
                   f"PSI {psi:.3f} ({'at or above' if drifted else 'below'} the drift line of {threshold:g}).")
    return _result(signal, DriftMethod.PSI, psi, None, drifted, sizes, settings, explanation)


def numeric_drift(signal: str, reference: Iterable[float | None], current: Iterable[float | None],
                  settings: DriftSettings = DEFAULT_SETTINGS) -> DriftResult:
    """Compare a number between windows: KS for a small reference, a distance above `settings.large_sample`.

    Missing values (None, NaN, infinities) are left out, and the sizes reported are those used.
    """
    ref, cur = _finite(reference, signal, "reference"), _finite(current, signal, "current")
    if ref.size <= settings.large_sample:
        return ks_drift(signal, ref, cur, settings)
    if settings.large_numeric_method is DriftMethod.PSI:
        return psi_drift(signal, ref, cur, settings)
    if settings.large_numeric_method is DriftMethod.WASSERSTEIN:
        return wasserstein_drift(signal, ref, cur, settings)
    raise InvalidInput(f"large_numeric_method is {settings.large_numeric_method.value!r}; "
                       "for numbers choose 'wasserstein' or 'psi'")


# Categories ----------------------------------------------------------------------------------------


def category_counts(values: Mapping[Hashable, int] | Iterable[Hashable | None], signal: str,
                    side: str) -> Counter[Hashable]:
    """Count labels, or check counts already made (a GROUP BY); missing labels (None) are left out."""
    if isinstance(values, Mapping):
        counts: Counter[Hashable] = Counter()
        for label, count in values.items():
            if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
                raise InvalidInput(f"{signal}: the {side} count for {label!r} is {count!r}; "
                                   "counts must be whole numbers of 0 or more")
            if label is not None and count:
                counts[label] += int(count)
        return counts
    return Counter(value for value in values if value is not None)


def _table(ref: Counter[Hashable], cur: Counter[Hashable]) -> tuple[list[Hashable], np.ndarray]:
    labels = sorted(set(ref) | set(cur), key=repr)
    return labels, np.array([[ref[label] for label in labels], [cur[label] for label in labels]], dtype=float)


def _largest_move(labels: list[Hashable], table: np.ndarray) -> str:
    shares = table / table.sum(axis=1, keepdims=True)
    moves = shares[1] - shares[0]
    index = int(np.argmax(np.abs(moves)))
    return f"'{labels[index]}' went from {shares[0, index]:.1%} to {shares[1, index]:.1%}"


def chi_square_drift(signal: str, reference: Mapping[Hashable, int] | Iterable[Hashable | None],
                     current: Mapping[Hashable, int] | Iterable[Hashable | None],
                     settings: DriftSettings = DEFAULT_SETTINGS) -> DriftResult:
    """Test whether the label mix differs with a chi-square test of homogeneity (`scipy.stats.chi2_contingency`).

    Without Yates' continuity correction, so for two labels it equals the two-proportion z-test that
    Evidently uses for binary columns (chi-square = z squared, same p-value).
    """
    ref, cur = category_counts(reference, signal, "reference"), category_counts(current, signal, "current")
    sizes = (ref.total(), cur.total())
    if min(sizes) < settings.min_sample:
        return _not_enough(signal, DriftMethod.CHI_SQUARE, sizes, settings)
    labels, table = _table(ref, cur)
    if len(labels) < 2:
        return _result(signal, DriftMethod.CHI_SQUARE, 0.0, 1.0, False, sizes, settings,
                       f"{signal.capitalize()} has one value, {labels[0]!r}, in both windows: nothing moved.")
    test = stats.chi2_contingency(table, correction=False)
    statistic, p_value = float(test.statistic), float(test.pvalue)
    drifted = p_value < settings.p_value_threshold
    explanation = (f"{signal.capitalize()} mix has changed: {_largest_move(labels, table)} "
                   f"(chi-square p {_p_text(p_value)}, below {settings.p_value_threshold:g})."
                   if drifted else
                   f"{signal.capitalize()} mix looks like the reference: the largest move, "
                   f"{_largest_move(labels, table)}, is within chance (chi-square p {_p_text(p_value)}).")
    return _result(signal, DriftMethod.CHI_SQUARE, statistic, p_value, drifted, sizes, settings, explanation)


def jensen_shannon_drift(signal: str, reference: Mapping[Hashable, int] | Iterable[Hashable | None],
                         current: Mapping[Hashable, int] | Iterable[Hashable | None],
                         settings: DriftSettings = DEFAULT_SETTINGS) -> DriftResult:
    """Measure how far the label mix moved with the Jensen-Shannon distance, base 2 (0 same, 1 disjoint)."""
    ref, cur = category_counts(reference, signal, "reference"), category_counts(current, signal, "current")
    sizes = (ref.total(), cur.total())
    if min(sizes) < settings.min_sample:
        return _not_enough(signal, DriftMethod.JENSEN_SHANNON, sizes, settings)
    labels, table = _table(ref, cur)
    # No empty-bin fill is needed: the distance is defined when a label is missing from one side.
    distance = float(jensenshannon(table[0], table[1], base=2))
    threshold = settings.jensen_shannon_threshold
    drifted = distance >= threshold
    explanation = (f"{signal.capitalize()} mix moved by a Jensen-Shannon distance of {distance:.3f} on a 0-1 scale "
                   f"({'at or above' if drifted else 'below'} the drift line of {threshold:g}); the largest "
                   f"move: {_largest_move(labels, table)}.")
    return _result(signal, DriftMethod.JENSEN_SHANNON, distance, None, drifted, sizes, settings, explanation)


def categorical_drift(signal: str, reference: Mapping[Hashable, int] | Iterable[Hashable | None],
                      current: Mapping[Hashable, int] | Iterable[Hashable | None],
                      settings: DriftSettings = DEFAULT_SETTINGS) -> DriftResult:
    """Compare a label mix: chi-square for a small reference, Jensen-Shannon above `settings.large_sample`.

    Each window is either the labels themselves or a mapping of label to count.
    """
    ref, cur = category_counts(reference, signal, "reference"), category_counts(current, signal, "current")
    if ref.total() <= settings.large_sample:
        return chi_square_drift(signal, ref, cur, settings)
    return jensen_shannon_drift(signal, ref, cur, settings)


# Rates ---------------------------------------------------------------------------------------------


def _check_rate(successes: int, total: int, signal: str, side: str) -> None:
    if total < 0 or successes < 0 or successes > total:
        raise InvalidInput(f"{signal}: the {side} window has {successes} successes out of {total}; "
                           "successes must be between 0 and the total")


def two_proportion_z(successes_a: int, total_a: int, successes_b: int, total_b: int) -> tuple[float, float]:
    """Return (z, two-sided p) for rate b against rate a with the pooled standard error.

    When both windows are all successes or all failures the rates are equal and there is no spread:
    z = 0, p = 1.
    """
    pooled = (successes_a + successes_b) / (total_a + total_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    if se == 0:
        return 0.0, 1.0
    z = (successes_b / total_b - successes_a / total_a) / se
    return z, float(2 * stats.norm.sf(abs(z)))


def rate_drift(signal: str, reference_successes: int, reference_total: int, current_successes: int,
               current_total: int, settings: DriftSettings = DEFAULT_SETTINGS) -> DriftResult:
    """Compare a rate (accuracy, refusals, invalid JSON) between windows with a two-proportion z-test."""
    _check_rate(reference_successes, reference_total, signal, "reference")
    _check_rate(current_successes, current_total, signal, "current")
    sizes = (reference_total, current_total)
    if min(sizes) < settings.min_sample:
        return _not_enough(signal, DriftMethod.TWO_PROPORTION_Z, sizes, settings)
    z, p_value = two_proportion_z(reference_successes, reference_total, current_successes, current_total)
    drifted = p_value < settings.p_value_threshold
    before, after = reference_successes / reference_total, current_successes / current_total
    explanation = (f"{signal.capitalize()} went from {before:.1%} to {after:.1%}: "
                   + (f"a real change (z-test p {_p_text(p_value)}, below {settings.p_value_threshold:g})."
                      if drifted else f"within chance (z-test p {_p_text(p_value)})."))
    return _result(signal, DriftMethod.TWO_PROPORTION_Z, z, p_value, drifted, sizes, settings, explanation)


# Many signals --------------------------------------------------------------------------------------


class DatasetDrift(BaseModel):
    """Evidently's dataset-level rule: the model has drifted when enough of its judged signals have."""

    model_config = ConfigDict(frozen=True)

    judged: int = Field(description="Signals with a verdict (not 'not enough data').")
    drifted: int
    share: float | None = Field(description="drifted / judged; None when nothing could be judged.")
    drift_share: float = Field(description="The share at or above which the whole is drift.")
    verdict: Verdict


def dataset_drift(results: Sequence[DriftResult], drift_share: float = DATASET_DRIFT_SHARE) -> DatasetDrift:
    """Summarise many signals into one headline, so one noisy test among many does not raise an alarm alone."""
    if not 0 < drift_share <= 1:
        raise InvalidInput(f"drift_share is {drift_share}; it must be above 0 and at most 1")
    judged = [result for result in results if result.verdict is not Verdict.NOT_ENOUGH_DATA]
    drifted = sum(result.drifted for result in judged)
    share = drifted / len(judged) if judged else None
    verdict = (Verdict.NOT_ENOUGH_DATA if share is None
               else Verdict.DRIFT if share >= drift_share else Verdict.OK)
    return DatasetDrift(judged=len(judged), drifted=drifted, share=share, drift_share=drift_share, verdict=verdict)
