"""The numbers behind comparisons, evaluations and reviews: summaries, paired tests, rater agreement.

Small samples are the rule here (20 inputs, 50 reviewed items), so every rate comes with an interval
and every "better" with a test, using scipy's implementations rather than home-made formulas:
- pass rates and win rates: Wilson score intervals (`scipy.stats.binomtest(...).proportion_ci`),
  which stay inside 0..1 and behave at 0 and n successes, unlike the normal approximation;
- fine-tuned against base on the same inputs: McNemar's exact test on the discordant pairs, which is
  a two-sided binomial test of b against b + c at p = 0.5 (`scipy.stats.binomtest`), and a paired t
  interval on the score differences (`scipy.stats.ttest_1samp` on the differences);
- two reviewers: Cohen's kappa (Cohen 1960; quadratic weights, Cohen 1968), which scipy lacks, written
  out below and checked against published worked examples in the tests.
Degenerate inputs (nothing to compare, a single category) give None with a reason, never a division error.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from workbench.domain.assertions import AssertionResult, combine
from workbench.errors import InvalidInput

CONFIDENCE = 0.95
LISTED_EXAMPLES = 10
"""Examples each of the best, worst and changed lists names."""
OVERALL = "overall"
"""Label of the comparison row for the whole verdict (every assertion together)."""

Label = str | int | float | bool


class Interval(BaseModel):
    model_config = ConfigDict(frozen=True)

    low: float
    high: float
    confidence: float = CONFIDENCE


class CellOutcome(BaseModel):
    """One output of one variant on one input, as the statistics need it."""

    model_config = ConfigDict(frozen=True)

    example_id: int | str = Field(description="The input it answers; pairs are matched on this.")
    results: list[AssertionResult] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Why the model call failed; None when it answered.")
    latency_ms: float | None = None
    cost_usd: float | None = None

    def verdict(self) -> tuple[bool | None, float | None]:
        """Say whether the cell passed and its score; a failed call fails with score 0."""
        if self.error is not None:
            return False, 0.0
        combined = combine(self.results)
        return combined.passed, combined.score


class VariantSummary(BaseModel):
    """The summary row of one variant: how often it passed, how well, at what cost and speed."""

    model_config = ConfigDict(frozen=True)

    cells: int
    passed: int
    failed: int = Field(description="Answered but failed an assertion.")
    errors: int = Field(description="The model call failed.")
    unchecked: int = Field(description="Answered with no assertion to judge it by.")
    pass_rate: float | None = Field(description="passed / (passed + failed + errors): a failed call counts against it.")
    pass_rate_ci: Interval | None = Field(description="Wilson score interval of the pass rate.")
    mean_score: float | None = Field(description="Mean cell score over judged cells, failed calls as 0.")
    cost_per_1k_calls_usd: float | None = Field(description="Mean cost of the cells with a known cost, times 1000.")
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


class AssertionComparison(BaseModel):
    """One assertion (or the whole verdict) compared on the inputs both variants answered."""

    model_config = ConfigDict(frozen=True)

    label: str
    pairs: int
    wins: int = Field(description="Inputs where the candidate scored higher than the base.")
    losses: int = Field(description="Inputs where the candidate scored lower.")
    ties: int
    win_rate: float | None = Field(description="wins / (wins + losses): ties say nothing about which is better.")
    win_rate_ci: Interval | None = None
    base_pass_rate: float | None = None
    candidate_pass_rate: float | None = None
    only_candidate_passed: int = Field(default=0, description="McNemar's b: candidate passed, base failed.")
    only_base_passed: int = Field(default=0, description="McNemar's c: base passed, candidate failed.")
    mcnemar_p: float | None = Field(default=None, description="Exact two-sided McNemar p-value.")
    note: str | None = Field(default=None, description="Why a number is missing.")


class ScoreDifference(BaseModel):
    """Mean of candidate score minus base score over paired inputs, with a paired t interval."""

    model_config = ConfigDict(frozen=True)

    pairs: int
    mean: float | None
    ci: Interval | None = None
    p_value: float | None = Field(default=None, description="Paired t-test against no difference.")
    note: str | None = None


class PairedComparison(BaseModel):
    """Candidate (a fine-tuned model, say) against base on the same inputs."""

    model_config = ConfigDict(frozen=True)

    pairs: int = Field(description="Inputs both variants were run on.")
    only_in_base: int
    only_in_candidate: int
    overall: AssertionComparison
    assertions: list[AssertionComparison]
    score_difference: ScoreDifference
    best: list[int | str] = Field(description="Inputs where the candidate gained most score, best first.")
    worst: list[int | str] = Field(description="Inputs where the candidate lost most score, worst first.")
    changed: list[int | str] = Field(description="Inputs whose pass/fail differs between the two.")


class Agreement(BaseModel):
    """Cohen's kappa for two raters, with the agreements it is made of."""

    model_config = ConfigDict(frozen=True)

    items: int = Field(description="Items both raters rated.")
    categories: list[Label]
    weights: Literal["none", "quadratic"]
    observed: float | None = Field(description="Observed agreement p_o (weighted agreement with quadratic weights).")
    expected: float | None = Field(description="Agreement expected by chance p_e, from each rater's label shares.")
    kappa: float | None = Field(description="(p_o - p_e) / (1 - p_e), in -1..1; None when undefined.")
    reason: str | None = Field(default=None, description="Why kappa is None.")


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> Interval | None:
    """Return the Wilson score interval of a proportion, or None for no trials."""
    if trials <= 0:
        return None
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    rate = successes / trials
    # The Wilson interval always holds the observed rate; min/max only absorb rounding at 0 and n.
    return Interval(low=min(float(ci.low), rate), high=max(float(ci.high), rate), confidence=confidence)


def summarize_variant(cells: Sequence[CellOutcome], confidence: float = CONFIDENCE) -> VariantSummary:
    """Summarise one variant's cells for the matrix's summary row."""
    verdicts = [cell.verdict() for cell in cells]
    errors = sum(cell.error is not None for cell in cells)
    passed = sum(v[0] is True for v in verdicts)
    failed = sum(v[0] is False for v in verdicts) - errors
    judged = passed + failed + errors
    scores = [v[1] for v in verdicts if v[1] is not None]
    costs = [cell.cost_usd for cell in cells if cell.cost_usd is not None]
    latencies = [cell.latency_ms for cell in cells if cell.latency_ms is not None]
    return VariantSummary(
        cells=len(cells),
        passed=passed,
        failed=failed,
        errors=errors,
        unchecked=len(cells) - judged,
        pass_rate=passed / judged if judged else None,
        pass_rate_ci=wilson_interval(passed, judged, confidence),
        mean_score=float(np.mean(scores)) if scores else None,
        cost_per_1k_calls_usd=float(np.mean(costs)) * 1000 if costs else None,
        latency_p50_ms=float(np.percentile(latencies, 50)) if latencies else None,
        latency_p95_ms=float(np.percentile(latencies, 95)) if latencies else None,
    )


def compare_paired(
    base: Sequence[CellOutcome],
    candidate: Sequence[CellOutcome],
    *,
    confidence: float = CONFIDENCE,
    listed: int = LISTED_EXAMPLES,
) -> PairedComparison:
    """Compare a candidate with a base on the inputs both answered (matched by `example_id`).

    A failed call counts as a fail with score 0 on every assertion the other side was checked by, since
    a user would have got no answer. Inputs only one side has are counted and left out.
    """
    base_by_id = _by_id(base, "base")
    cand_by_id = _by_id(candidate, "candidate")
    shared = [i for i in base_by_id if i in cand_by_id]
    overall_pairs: list[tuple[int | str, bool, float, bool, float]] = []
    per_label: dict[str, list[tuple[bool, float, bool, float]]] = {}
    for example_id in shared:
        b, c = base_by_id[example_id], cand_by_id[example_id]
        (b_pass, b_score), (c_pass, c_score) = b.verdict(), c.verdict()
        if b_pass is not None and c_pass is not None and b_score is not None and c_score is not None:
            overall_pairs.append((example_id, b_pass, b_score, c_pass, c_score))
        b_results, c_results = _results(b), _results(c)
        for label in _labels(b, c):
            left, right = b_results.get(label, _FAILED_CALL), c_results.get(label, _FAILED_CALL)
            per_label.setdefault(label, []).append((*left, *right))
    overall = _compare(OVERALL, [p[1:] for p in overall_pairs], confidence)
    differences = [(p[0], p[4] - p[2]) for p in overall_pairs]
    gained = sorted((d for d in differences if d[1] > 0), key=lambda d: (-d[1], str(d[0])))
    lost = sorted((d for d in differences if d[1] < 0), key=lambda d: (d[1], str(d[0])))
    return PairedComparison(
        pairs=len(shared),
        only_in_base=len(base_by_id) - len(shared),
        only_in_candidate=len(cand_by_id) - len(shared),
        overall=overall,
        assertions=[_compare(label, rows, confidence) for label, rows in per_label.items()],
        score_difference=score_difference([d for _, d in differences], confidence),
        best=[i for i, _ in gained[:listed]],
        worst=[i for i, _ in lost[:listed]],
        changed=[p[0] for p in overall_pairs if p[1] != p[3]][:listed],
    )


def mcnemar_exact(only_candidate_passed: int, only_base_passed: int) -> float | None:
    """Return McNemar's exact two-sided p-value from the discordant counts, or None with no discordance."""
    discordant = only_candidate_passed + only_base_passed
    if discordant == 0:
        return None
    return float(stats.binomtest(only_candidate_passed, discordant, 0.5).pvalue)


def score_difference(differences: Sequence[float], confidence: float = CONFIDENCE) -> ScoreDifference:
    """Summarise paired score differences with a t interval; too few or identical ones say why not."""
    n = len(differences)
    if n == 0:
        return ScoreDifference(pairs=0, mean=None, note="no input was scored for both variants")
    values = np.asarray(differences, dtype=float)
    mean = float(values.mean())
    if n == 1:
        return ScoreDifference(pairs=1, mean=mean, note="one pair gives no interval")
    if float(np.ptp(values)) <= 1e-12:
        # Every difference is the same: no spread to test against, and scipy would warn about precision.
        point = Interval(low=mean, high=mean, confidence=confidence)
        return ScoreDifference(pairs=n, mean=mean, ci=point, note="every pair differs by the same amount")
    test = stats.ttest_1samp(values, 0.0)
    ci = test.confidence_interval(confidence_level=confidence)
    interval = Interval(low=min(float(ci.low), mean), high=max(float(ci.high), mean), confidence=confidence)
    return ScoreDifference(pairs=n, mean=mean, ci=interval, p_value=float(test.pvalue))


def cohens_kappa(
    rater_a: Mapping[Hashable, Label | None],
    rater_b: Mapping[Hashable, Label | None],
    *,
    weights: Literal["none", "quadratic"] = "none",
    categories: Sequence[Label] | None = None,
) -> Agreement:
    """Measure how far two raters agree beyond chance on the items both rated (None labels are skipped).

    Quadratic weights suit ordered scales (1-5): a 4 against a 5 counts as nearer agreement than 1
    against 5. Distances are the labels' own values when all are numbers, otherwise their positions in
    `categories`; pass the whole scale as `categories` so unused grades still count as distance.
    """
    items = [k for k, v in rater_a.items() if v is not None and rater_b.get(k) is not None]
    labels_a = [rater_a[k] for k in items]
    labels_b = [rater_b[k] for k in items]
    scale = _categories(labels_a + labels_b, categories, weights)
    if not items:
        return Agreement(items=0, categories=scale, weights=weights, observed=None, expected=None, kappa=None,
                         reason="no item was rated by both raters")
    index = {label: i for i, label in enumerate(scale)}
    k = len(scale)
    table = np.zeros((k, k))
    for a, b in zip(labels_a, labels_b, strict=True):
        table[index[a], index[b]] += 1
    table /= len(items)
    chance = np.outer(table.sum(axis=1), table.sum(axis=0))
    credit = _agreement_weights(scale, weights)
    # Sums of non-negative terms, clamped only against rounding just past 1.
    observed = min(1.0, float((credit * table).sum()))
    expected = min(1.0, float((credit * chance).sum()))
    if expected >= 1.0 - 1e-12:
        only = sorted({repr(v) for v in labels_a + labels_b})
        return Agreement(
            items=len(items), categories=scale, weights=weights, observed=observed, expected=expected, kappa=None,
            reason=f"both raters gave every item the same label ({', '.join(only)}), so chance alone explains "
            "the agreement and kappa is undefined",
        )
    kappa = (observed - expected) / (1.0 - expected)
    return Agreement(
        items=len(items), categories=scale, weights=weights, observed=observed, expected=expected,
        kappa=min(1.0, max(-1.0, kappa)),  # kappa lies in -1..1; clamp only floating-point spill-over
    )


def _categories(labels: list[Label], given: Sequence[Label] | None, weights: str) -> list[Label]:
    if given is not None:
        scale = list(dict.fromkeys(given))
        unknown = sorted({repr(v) for v in labels if v not in set(scale)})
        if unknown:
            raise InvalidInput(f"Ratings {', '.join(unknown)} are not among the categories {scale}.")
        return scale
    found = list(dict.fromkeys(labels))
    if weights == "quadratic":
        try:
            return sorted(found)  # type: ignore[type-var]
        except TypeError:
            raise InvalidInput(
                "Quadratic weights need ordered ratings; these mix kinds of label. Pass `categories` in order."
            ) from None
    return sorted(found, key=lambda v: (type(v).__name__, str(v)))


def _agreement_weights(scale: list[Label], weights: str) -> np.ndarray:
    """Credit for each pair of labels: 1 on the diagonal, 0 off it, or 1 - (distance / widest distance)^2."""
    k = len(scale)
    if weights == "none":
        return np.eye(k)
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in scale)
    positions = np.array([float(v) for v in scale] if numeric else range(k), dtype=float)  # type: ignore[arg-type]
    spread = float(positions.max() - positions.min()) if k else 0.0
    if spread == 0:
        return np.ones((k, k))
    return 1.0 - np.subtract.outer(positions, positions) ** 2 / spread**2


def _by_id(cells: Sequence[CellOutcome], side: str) -> dict[int | str, CellOutcome]:
    by_id: dict[int | str, CellOutcome] = {}
    for cell in cells:
        if cell.example_id in by_id:
            raise InvalidInput(f"The {side} has two outputs for example {cell.example_id!r}; pairs need one each.")
        by_id[cell.example_id] = cell
    return by_id


_FAILED_CALL = (False, 0.0)
"""What a failed call scores on an assertion the other side was checked by."""


def _results(cell: CellOutcome) -> dict[str, tuple[bool, float]]:
    if cell.error is not None:
        return {}
    return {r.label: (r.passed, r.score) for r in cell.results if r.weight > 0}


def _labels(base: CellOutcome, candidate: CellOutcome) -> list[str]:
    """Assertion labels to compare on: those both checked, or those one checked when the other's call failed."""
    base_labels, cand_labels = _results(base), _results(candidate)
    if base.error is not None and candidate.error is None:
        return list(cand_labels)
    if candidate.error is not None and base.error is None:
        return list(base_labels)
    return [label for label in base_labels if label in cand_labels]


def _compare(label: str, rows: list[tuple[bool, float, bool, float]], confidence: float) -> AssertionComparison:
    """Compare paired rows of (base passed, base score, candidate passed, candidate score)."""
    n = len(rows)
    wins = sum(c_score > b_score + 1e-12 for _, b_score, _, c_score in rows)
    losses = sum(c_score < b_score - 1e-12 for _, b_score, _, c_score in rows)
    b = sum(c_pass and not b_pass for b_pass, _, c_pass, _ in rows)
    c = sum(b_pass and not c_pass for b_pass, _, c_pass, _ in rows)
    decided = wins + losses
    note = None
    if n == 0:
        note = "no input was checked by this assertion on both sides"
    elif decided == 0:
        note = "the two score the same on every input: no win rate and no McNemar test"
    elif b + c == 0:
        note = "no input passes on one side and fails on the other: no McNemar test"
    return AssertionComparison(
        label=label,
        pairs=n,
        wins=wins,
        losses=losses,
        ties=n - decided,
        win_rate=wins / decided if decided else None,
        win_rate_ci=wilson_interval(wins, decided, confidence),
        base_pass_rate=sum(r[0] for r in rows) / n if n else None,
        candidate_pass_rate=sum(r[2] for r in rows) / n if n else None,
        only_candidate_passed=b,
        only_base_passed=c,
        mcnemar_p=mcnemar_exact(b, c),
        note=note,
    )
