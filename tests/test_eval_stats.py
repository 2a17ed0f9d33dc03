from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.domain.assertions import AssertionResult
from workbench.domain.eval_stats import (
    OVERALL,
    CellOutcome,
    cohens_kappa,
    compare_paired,
    mcnemar_exact,
    score_difference,
    summarize_variant,
    wilson_interval,
)
from workbench.errors import InvalidInput


def _result(label: str, passed: bool, score: float | None = None, weight: float = 1.0) -> AssertionResult:
    return AssertionResult(
        label=label, passed=passed, score=float(passed) if score is None else score, weight=weight, reason=""
    )


def _cell(example_id: int | str, *results: AssertionResult, error: str | None = None, latency: float | None = None,
          cost: float | None = None) -> CellOutcome:
    return CellOutcome(example_id=example_id, results=list(results), error=error, latency_ms=latency, cost_usd=cost)


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval written out (Wilson 1927), to check scipy is called as intended."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


# ---- Wilson intervals and the per-variant summary -----------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 10), (7, 10), (10, 10), (1, 1), (45, 50)])
def test_wilson_interval_matches_its_formula(k: int, n: int) -> None:
    interval = wilson_interval(k, n)
    assert interval is not None
    low, high = _wilson(k, n)
    assert (interval.low, interval.high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))


def test_wilson_interval_of_nothing_is_none() -> None:
    assert wilson_interval(0, 0) is None


@given(n=st.integers(1, 500), data=st.data(), confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_interval_holds_the_rate_inside_0_1(n: int, data: st.DataObject, confidence: float) -> None:
    k = data.draw(st.integers(0, n))
    interval = wilson_interval(k, n, confidence)
    assert interval is not None
    assert 0.0 <= interval.low <= k / n <= interval.high <= 1.0


def test_summary_counts_rates_cost_and_latency() -> None:
    cells = [
        _cell(1, _result("equals", True), latency=100, cost=0.002),
        _cell(2, _result("equals", True), latency=200, cost=0.004),
        _cell(3, _result("equals", False), latency=300, cost=0.003),
        _cell(4, error="timed out after 30 s", latency=30_000),
        _cell(5),  # answered, nothing to judge it by
    ]
    summary = summarize_variant(cells)
    assert (summary.cells, summary.passed, summary.failed, summary.errors, summary.unchecked) == (5, 2, 1, 1, 1)
    assert summary.pass_rate == 0.5  # the failed call counts against the variant
    assert summary.pass_rate_ci is not None
    assert (summary.pass_rate_ci.low, summary.pass_rate_ci.high) == pytest.approx(_wilson(2, 4))
    assert summary.mean_score == pytest.approx(0.5)
    assert summary.cost_per_1k_calls_usd == pytest.approx(3.0)
    assert summary.latency_p50_ms == pytest.approx(250)  # numpy's linear interpolation between 200 and 300
    assert summary.latency_p95_ms == pytest.approx(300 + 0.85 * (30_000 - 300))  # rank 0.95 * 3 = 2.85


def test_summary_of_no_cells_has_no_rates() -> None:
    summary = summarize_variant([])
    assert (summary.cells, summary.pass_rate, summary.pass_rate_ci, summary.mean_score) == (0, None, None, None)
    assert (summary.cost_per_1k_calls_usd, summary.latency_p50_ms, summary.latency_p95_ms) == (None, None, None)


def test_summary_uses_weighted_scores() -> None:
    cell = _cell(1, _result("a", True, weight=3), _result("b", False))
    summary = summarize_variant([cell])
    assert (summary.passed, summary.failed, summary.mean_score) == (0, 1, pytest.approx(0.75))


# ---- paired comparison --------------------------------------------------------------------------------------


def test_mcnemar_exact_matches_the_binomial_sum() -> None:
    # Two-sided exact test of b=2 against b+c=10 at p=0.5: 2 * (C(10,0)+C(10,1)+C(10,2)) / 2**10.
    assert mcnemar_exact(2, 8) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert mcnemar_exact(8, 2) == pytest.approx(112 / 1024)
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(0, 0) is None


def _paired_runs() -> tuple[list[CellOutcome], list[CellOutcome]]:
    base, candidate = [], []
    # 10 inputs: base passes 3, candidate passes 8; the candidate fixes 6 and breaks 1.
    base_pass = [True, True, True, False, False, False, False, False, False, False]
    cand_pass = [True, True, False, True, True, True, True, True, True, False]
    for i, (b, c) in enumerate(zip(base_pass, cand_pass, strict=True)):
        base.append(_cell(i, _result("equals", b), _result("is-json", True)))
        candidate.append(_cell(i, _result("equals", c), _result("is-json", True)))
    return base, candidate


def test_paired_comparison_counts_wins_and_tests_the_discordant_pairs() -> None:
    base, candidate = _paired_runs()
    result = compare_paired(base, candidate)
    equals = next(a for a in result.assertions if a.label == "equals")
    assert (equals.pairs, equals.wins, equals.losses, equals.ties) == (10, 6, 1, 3)
    assert (equals.only_candidate_passed, equals.only_base_passed) == (6, 1)
    assert equals.win_rate == pytest.approx(6 / 7)
    assert equals.win_rate_ci is not None
    assert (equals.win_rate_ci.low, equals.win_rate_ci.high) == pytest.approx(_wilson(6, 7))
    assert equals.mcnemar_p == pytest.approx(2 * (1 + 7) / 128)  # P(X <= 1 | n=7), both tails
    assert (equals.base_pass_rate, equals.candidate_pass_rate) == (0.3, 0.8)
    assert result.overall.label == OVERALL
    assert (result.overall.wins, result.overall.losses) == (6, 1)
    same = next(a for a in result.assertions if a.label == "is-json")
    assert (same.ties, same.win_rate, same.mcnemar_p) == (10, None, None)
    assert same.note is not None and "same on every input" in same.note
    assert result.changed == [2, 3, 4, 5, 6, 7, 8]
    assert result.best == [3, 4, 5, 6, 7, 8] and result.worst == [2]


def test_paired_score_difference_is_a_t_interval() -> None:
    base, candidate = _paired_runs()
    diff = compare_paired(base, candidate).score_difference
    # Overall scores are means of two assertions; differences: +0.5 six times, -0.5 once, 0 three times.
    values = [0.0, 0.0, -0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0]
    mean = sum(values) / 10
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 9)
    half = 2.2621571627409915 * sd / math.sqrt(10)  # t(0.975, df=9)
    assert diff.pairs == 10 and diff.mean == pytest.approx(mean)
    assert diff.ci is not None
    assert (diff.ci.low, diff.ci.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert diff.p_value is not None
    assert (diff.p_value < 0.05) == (not diff.ci.low <= 0 <= diff.ci.high)  # the test and the interval agree


def test_paired_comparison_matches_on_example_ids_and_counts_the_rest() -> None:
    base = [_cell(1, _result("equals", True)), _cell(2, _result("equals", False)), _cell(3, _result("equals", True))]
    candidate = [_cell(2, _result("equals", True)), _cell(3, _result("equals", True)), _cell(4, _result("equals", True))]
    result = compare_paired(base, candidate)
    assert (result.pairs, result.only_in_base, result.only_in_candidate) == (2, 1, 1)
    assert result.changed == [2]


def test_a_failed_call_loses_on_every_assertion_the_other_side_was_checked_by() -> None:
    base = [_cell(1, _result("equals", True), _result("is-json", True))]
    candidate = [_cell(1, error="rate limited")]
    result = compare_paired(base, candidate)
    assert {a.label: (a.wins, a.losses) for a in result.assertions} == {"equals": (0, 1), "is-json": (0, 1)}
    assert (result.overall.losses, result.worst, result.changed) == (1, [1], [1])


def test_assertions_only_one_side_was_checked_by_are_left_out() -> None:
    base = [_cell(1, _result("equals", True))]
    candidate = [_cell(1, _result("equals", True), _result("judge:polite", True), _result("info", False, weight=0))]
    assert [a.label for a in compare_paired(base, candidate).assertions] == ["equals"]


def test_a_duplicate_example_in_one_run_is_refused() -> None:
    with pytest.raises(InvalidInput, match="The candidate has two outputs for example 1"):
        compare_paired([_cell(1)], [_cell(1), _cell(1)])


def test_paired_comparison_of_nothing_says_why_not() -> None:
    result = compare_paired([], [])
    assert (result.pairs, result.overall.win_rate, result.score_difference.mean) == (0, None, None)
    assert result.overall.note == "no input was checked by this assertion on both sides"
    assert result.score_difference.note == "no input was scored for both variants"


@pytest.mark.parametrize(
    ("differences", "mean", "note"),
    [
        ([], None, "no input was scored"),
        ([0.5], 0.5, "one pair gives no interval"),
        ([0.25, 0.25, 0.25], 0.25, "every pair differs by the same amount"),
    ],
)
def test_score_difference_degenerate_cases(differences: list[float], mean: float | None, note: str) -> None:
    result = score_difference(differences)
    assert result.mean == (pytest.approx(mean) if mean is not None else None)
    assert result.note is not None and note in result.note
    if len(differences) == 3:
        assert result.ci is not None and result.ci.low == result.ci.high == pytest.approx(0.25)


_outcome = st.tuples(st.booleans(), st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.booleans())


@given(rows=st.lists(st.tuples(_outcome, _outcome), max_size=40))
@settings(max_examples=80)
def test_paired_comparison_invariants(rows: list[tuple[tuple[bool, float, bool], tuple[bool, float, bool]]]) -> None:
    def cell(i: int, outcome: tuple[bool, float, bool]) -> CellOutcome:
        passed, score, failed_call = outcome
        if failed_call:
            return _cell(i, error="boom")
        return _cell(i, _result("judge:x", passed, score))

    result = compare_paired([cell(i, b) for i, (b, _) in enumerate(rows)], [cell(i, c) for i, (_, c) in enumerate(rows)])
    for comparison in [result.overall, *result.assertions]:
        assert comparison.wins + comparison.losses + comparison.ties == comparison.pairs
        if comparison.win_rate is not None:
            assert comparison.win_rate_ci is not None
            assert comparison.win_rate_ci.low <= comparison.win_rate <= comparison.win_rate_ci.high
        if comparison.mcnemar_p is not None:
            assert 0.0 < comparison.mcnemar_p <= 1.0
    diff = result.score_difference
    if diff.ci is not None and diff.mean is not None:
        assert diff.ci.low <= diff.mean <= diff.ci.high
    assert set(result.best).isdisjoint(result.worst)


# ---- Cohen's kappa --------------------------------------------------------------------------------------------


def _ratings(pairs: list[tuple[object, object]]) -> tuple[dict[int, object], dict[int, object]]:
    return {i: a for i, (a, _) in enumerate(pairs)}, {i: b for i, (_, b) in enumerate(pairs)}


def test_kappa_matches_the_worked_example() -> None:
    # https://en.wikipedia.org/wiki/Cohen%27s_kappa#Simple_example : 50 grant proposals, readers A and B;
    # both "Yes" 20, both "No" 15, A "Yes" / B "No" 5, A "No" / B "Yes" 10 -> p_o = 0.7, p_e = 0.5, kappa = 0.4.
    a, b = _ratings([("Yes", "Yes")] * 20 + [("Yes", "No")] * 5 + [("No", "Yes")] * 10 + [("No", "No")] * 15)
    agreement = cohens_kappa(a, b)
    assert agreement.items == 50
    assert (agreement.observed, agreement.expected, agreement.kappa) == pytest.approx((0.7, 0.5, 0.4))
    assert agreement.reason is None


@pytest.mark.parametrize(
    ("second", "expected"),
    [([8, 8, 6, 6, 7, 6, 1, 4, 8], 0.758620689655172), ([3, 5, 6, 6, 7, 6, 1, 4, 8], 0.438095238095238)],
)
def test_quadratic_kappa_matches_the_worked_examples(second: list[int], expected: float) -> None:
    # Maple EssayTools[QuadraticWeightedKappa] examples, range taken from the data:
    # https://www.maplesoft.com/support/help/maple/view.aspx?path=EssayTools/QuadraticWeightedKappa
    first = [9, 7, 8, 7, 6, 8, 3, 5, 10]
    agreement = cohens_kappa(dict(enumerate(first)), dict(enumerate(second)), weights="quadratic")
    assert agreement.kappa == pytest.approx(expected, abs=1e-12)


def test_quadratic_kappa_counts_near_misses_as_partial_agreement() -> None:
    a, b = _ratings([(5, 4), (4, 5), (1, 1), (2, 2), (3, 3)])
    nominal, weighted = cohens_kappa(a, b), cohens_kappa(a, b, weights="quadratic", categories=[1, 2, 3, 4, 5])
    assert nominal.kappa is not None and weighted.kappa is not None
    assert weighted.kappa > nominal.kappa


def test_kappa_skips_items_only_one_rater_rated() -> None:
    a = {"x": "good", "y": "bad", "z": "good", "w": None}
    b = {"x": "good", "y": "bad", "v": "bad", "w": "good"}
    agreement = cohens_kappa(a, b)
    assert (agreement.items, agreement.kappa) == (2, 1.0)


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ({}, {}, "no item was rated by both raters"),
        ({1: "good"}, {2: "good"}, "no item was rated by both raters"),
        ({1: "good", 2: "good"}, {1: "good", 2: "good"}, "both raters gave every item the same label ('good')"),
    ],
)
def test_kappa_degenerate_cases_are_none_with_a_reason(a: dict[int, str], b: dict[int, str], reason: str) -> None:
    for weights in ("none", "quadratic"):
        agreement = cohens_kappa(a, b, weights=weights)  # type: ignore[arg-type]
        assert agreement.kappa is None and agreement.reason is not None
        assert reason in agreement.reason


def test_kappa_of_raters_who_never_agree_is_not_a_division_error() -> None:
    agreement = cohens_kappa({1: "good", 2: "good"}, {1: "bad", 2: "bad"})
    assert (agreement.observed, agreement.expected, agreement.kappa) == (0.0, 0.0, 0.0)


def test_kappa_refuses_ratings_outside_the_categories_given() -> None:
    with pytest.raises(InvalidInput, match=r"Ratings 6 are not among the categories \[1, 2, 3, 4, 5\]"):
        cohens_kappa({1: 6}, {1: 5}, categories=[1, 2, 3, 4, 5])


def test_quadratic_kappa_refuses_labels_it_cannot_order() -> None:
    with pytest.raises(InvalidInput, match="Quadratic weights need ordered ratings"):
        cohens_kappa({1: "good", 2: 3}, {1: "bad", 2: 4}, weights="quadratic")


def test_quadratic_kappa_orders_words_by_the_categories_given() -> None:
    scale = ["poor", "fair", "good"]
    a, b = _ratings([("poor", "fair"), ("good", "good"), ("fair", "fair"), ("poor", "poor")])
    assert cohens_kappa(a, b, weights="quadratic", categories=scale).kappa == pytest.approx(
        cohens_kappa(*_ratings([(0, 1), (2, 2), (1, 1), (0, 0)]), weights="quadratic").kappa
    )


def _quadratic_by_moments(x: list[int], y: list[int]) -> float:
    """Quadratic weighted kappa as 2 cov / (var_x + var_y + (mean_x - mean_y)^2), an identity of Cohen (1968)."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / n
    vx, vy = sum((a - mx) ** 2 for a in x) / n, sum((b - my) ** 2 for b in y) / n
    return 2 * cov / (vx + vy + (mx - my) ** 2)


_pairs = st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=1, max_size=60)


@given(pairs=_pairs, weights=st.sampled_from(["none", "quadratic"]))
@settings(max_examples=150)
def test_kappa_lies_in_minus_one_to_one(pairs: list[tuple[int, int]], weights: str) -> None:
    agreement = cohens_kappa(*_ratings(pairs), weights=weights)  # type: ignore[arg-type]
    if agreement.kappa is None:
        assert agreement.reason and len({v for pair in pairs for v in pair}) == 1
        return
    assert -1.0 <= agreement.kappa <= 1.0
    assert agreement.observed is not None and agreement.expected is not None
    assert 0.0 <= agreement.observed <= 1.0 and 0.0 <= agreement.expected <= 1.0


@given(pairs=_pairs)
@settings(max_examples=100)
def test_quadratic_kappa_agrees_with_its_moment_form(pairs: list[tuple[int, int]]) -> None:
    x, y = [a for a, _ in pairs], [b for _, b in pairs]
    agreement = cohens_kappa(*_ratings(pairs), weights="quadratic")
    if agreement.kappa is not None:
        assert agreement.kappa == pytest.approx(_quadratic_by_moments(x, y), abs=1e-9)


@given(pairs=_pairs)
def test_kappa_is_symmetric_in_the_raters(pairs: list[tuple[int, int]]) -> None:
    a, b = _ratings(pairs)
    first, second = cohens_kappa(a, b), cohens_kappa(b, a)
    assert first.kappa == (pytest.approx(second.kappa) if second.kappa is not None else None)
