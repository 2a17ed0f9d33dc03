from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from workbench.domain.assignment import assign, bucket, bucket_ranges, fnv1a32, normalise_weights
from workbench.errors import InvalidInput

UNITS = [f"user-{index}" for index in range(100_000)]
FEWER_UNITS = UNITS[:20_000]
"""Enough for the properties that hold unit by unit (where a unit goes when weights change)."""


def _assign_all(seed: str, weights: Mapping[str, float], coverage: float = 1.0,
                units: list[str] = UNITS) -> dict[str, str | None]:
    return {unit: assign(seed, unit, weights, coverage) for unit in units}


# GrowthBook's own test vectors -------------------------------------------------------------------


def test_fnv1a32_vector() -> None:
    # growthbook/growthbook `packages/sdk-js/src/util.ts` hashFnv32a; FNV-1a of "a" is 0xe40c292c.
    assert fnv1a32("a") == 0xE40C292C


@pytest.mark.parametrize(("seed", "value", "expected"), [("", "a", 0.22), ("", "b", 0.077), ("ef", "d", 0.652)])
def test_hash_v1_cases_check_the_fnv_core(seed: str, value: str, expected: float) -> None:
    # growthbook/growthbook `packages/sdk-js/test/cases.json`, "hash" cases of version 1:
    # (fnv1a32(value + seed) % 1000) / 1000.
    assert (fnv1a32(value + seed) % 1000) / 1000 == expected


@pytest.mark.parametrize(("seed", "unit", "expected"), [("experiment", "1", 0.4413), ("holdout", "1", 0.8043)])
def test_hash_v2_matches_growthbook_feature_cases(seed: str, unit: str, expected: float) -> None:
    # growthbook/growthbook `packages/sdk-js/test/cases.json`, feature cases with "hashVersion": 2, where the
    # experiment key is the seed and id "1" lands in bucket 0.4413 ("experiment") and 0.8043 ("holdout").
    assert bucket(seed, unit) == expected


def test_fnv_reads_utf16_code_units_like_javascript() -> None:
    # "é" is one code unit (0x00E9); "😀" is the surrogate pair 0xD83D 0xDE00, as charCodeAt sees it.
    def by_code_units(units: list[int]) -> int:
        value = 0x811C9DC5
        for unit in units:
            value = ((value ^ unit) * 0x01000193) & 0xFFFFFFFF
        return value

    assert fnv1a32("é") == by_code_units([0xE9])
    assert fnv1a32("a😀") == by_code_units([0x61, 0xD83D, 0xDE00])


# Sticky and balanced -----------------------------------------------------------------------------


def test_assignment_is_sticky() -> None:
    weights = {"control": 50, "B": 50}
    first = _assign_all("checkout-copy", weights)
    assert _assign_all("checkout-copy", weights) == first
    # Order of asking does not matter: the answer is a function of seed and id alone.
    assert {unit: assign("checkout-copy", unit, weights) for unit in reversed(UNITS[:1000])} == {
        unit: first[unit] for unit in UNITS[:1000]}


# Tolerance: if the hash behaves like a fair draw, a variant's count over 100,000 units is
# Binomial(100,000, share), sd = sqrt(100,000 * share * (1 - share)) (158 at 50%). We allow 5 sd, which a
# fair draw exceeds with probability below 1 in 1.7 million, so a failure means a biased hash, not bad luck.
@pytest.mark.parametrize("weights", [{"control": 50, "B": 50}, {"control": 0.2, "B": 0.3, "C": 0.5},
                                     {"control": 9, "B": 1}])
def test_assignment_is_balanced_over_100000_units(weights: dict[str, float]) -> None:
    counts = Counter(_assign_all("balance", weights).values())
    shares = normalise_weights(weights)
    for name, share in shares.items():
        sd = math.sqrt(len(UNITS) * share * (1 - share))
        assert abs(counts[name] - len(UNITS) * share) <= 5 * sd, (name, counts)


def test_buckets_are_uniform() -> None:
    deciles = Counter(int(bucket("uniformity", unit) * 10) for unit in UNITS)
    assert stats.chisquare([deciles[index] for index in range(10)]).pvalue > 0.001


def test_different_seeds_split_independently() -> None:
    weights = {"control": 1, "B": 1}
    first, second = _assign_all("exp-1", weights, units=FEWER_UNITS), _assign_all("exp-2", weights, units=FEWER_UNITS)
    table = Counter((first[unit], second[unit]) for unit in FEWER_UNITS)
    # Independent 50/50 splits put a quarter of the units in each cell; the chi-square test of
    # independence on the 2x2 table should not reject.
    assert stats.chi2_contingency([[table["control", "control"], table["control", "B"]],
                                   [table["B", "control"], table["B", "B"]]]).pvalue > 0.001


# Stable when weights change as the method allows --------------------------------------------------


def test_resizing_later_variants_keeps_control_units_in_place() -> None:
    before = _assign_all("resize", {"control": 50, "A": 25, "B": 25}, units=FEWER_UNITS)
    after = _assign_all("resize", {"control": 50, "A": 10, "B": 40}, units=FEWER_UNITS)
    assert {unit for unit, name in before.items() if name == "control"} == {
        unit for unit, name in after.items() if name == "control"}
    # A shrank in place: everyone still in A was in A before.
    assert all(before[unit] == "A" for unit, name in after.items() if name == "A")


def test_adding_a_variant_at_the_end_keeps_an_unchanged_first_share() -> None:
    before = _assign_all("grow", {"control": 1, "A": 1}, units=FEWER_UNITS)
    after = _assign_all("grow", {"control": 2, "A": 1, "B": 1}, units=FEWER_UNITS)
    assert all(after[unit] == "control" for unit, name in before.items() if name == "control")
    assert all(before[unit] == "control" for unit, name in after.items() if name == "control")


def test_raising_coverage_only_adds_units() -> None:
    weights = {"control": 1, "B": 1}
    half = _assign_all("coverage", weights, 0.5, FEWER_UNITS)
    most = _assign_all("coverage", weights, 0.8, FEWER_UNITS)
    included = [unit for unit, name in half.items() if name is not None]
    assert abs(len(included) - 10_000) <= 5 * math.sqrt(20_000 * 0.25)
    assert all(most[unit] == half[unit] for unit in included)
    assert assign("coverage", "anyone", weights, 0) is None


def test_weights_are_relative() -> None:
    assert bucket_ranges({"a": 1, "b": 3}) == bucket_ranges({"a": 25, "b": 75}) == bucket_ranges({"a": 0.25, "b": 0.75})
    assert [(each.start, each.end) for each in bucket_ranges({"a": 1, "b": 3}, 0.5)] == [(0, 0.125), (0.25, 0.625)]


# Bad input ---------------------------------------------------------------------------------------


def test_a_refused_weight_never_hits_the_cache_of_an_equal_valid_one() -> None:
    assert assign("exp", "u1", {"control": 1, "B": 1}) in {"control", "B"}
    with pytest.raises(InvalidInput, match="'B' has weight True"):
        assign("exp", "u1", {"control": 1, "B": True})


@pytest.mark.parametrize(("check", "message"), [
    (lambda: assign("exp", "u1", {}), "at least one variant"),
    (lambda: assign("exp", "u1", {"control": 1, "B": 0}), "'B' has weight 0"),
    (lambda: assign("exp", "u1", {"control": 1, "B": -2}), "'B' has weight -2"),
    (lambda: assign("exp", "u1", {"control": 1, "B": math.nan}), "'B' has weight nan"),
    (lambda: assign("exp", "u1", {"control": 1, "B": True}), "'B' has weight True"),
    (lambda: assign("exp", "u1", {"control": 1, "B": "50"}), "'B' has weight '50'"),
    (lambda: assign("exp", "u1", {"control": 1, " ": 1}), "needs a non-empty name"),
    (lambda: assign("exp", "u1", {"control": 1}, coverage=1.5), "coverage is 1.5"),
    (lambda: assign("", "u1", {"control": 1}), "seed is ''"),
    (lambda: assign("exp", "", {"control": 1}), "unit id is ''"),
    (lambda: assign("exp", None, {"control": 1}), "unit id is None"),  # type: ignore[arg-type]
])
def test_bad_input_says_what_and_where(check: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check()


# Open-ended inputs -------------------------------------------------------------------------------

names = st.text(min_size=1, max_size=20).filter(str.strip)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=50), st.text(max_size=50))
def test_bucket_is_in_the_unit_interval(seed: str, unit: str) -> None:
    value = bucket(seed, unit)
    assert 0 <= value < 1 and round(value, 4) == value


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30) | st.integers(),
       st.dictionaries(names, st.floats(0.001, 1000), min_size=1, max_size=6))
def test_full_coverage_always_assigns_a_named_variant(seed: str, unit: str | int, weights: dict[str, float]) -> None:
    assert assign(seed, unit, weights) in weights
    assert math.fsum(normalise_weights(weights).values()) == pytest.approx(1.0)
    assert bucket_ranges(weights)[-1].end == 1.0
