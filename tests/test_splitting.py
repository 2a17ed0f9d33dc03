from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from workbench.domain.example import Split
from workbench.domain.splitting import SPLITS, SplitItem, SplitRatios, assign_new, assign_splits
from workbench.errors import InvalidInput

DEFAULT = SplitRatios()


def _items(count: int, stratum: str | None = None, start: int = 0) -> list[SplitItem]:
    return [(i, f"hash{i:06d}", stratum) for i in range(start, start + count)]


def _counts(assigned: dict[int, Split], items: list[SplitItem]) -> dict[str | None, Counter[Split]]:
    counts: dict[str | None, Counter[Split]] = {}
    for example_id, _, stratum in items:
        counts.setdefault(stratum, Counter())[assigned[example_id]] += 1
    return counts


def _within_one(count: int, exact: float) -> bool:
    # The split works in exact fractions; the float product here can be off in the last bit.
    return abs(count - exact) < 1 + 1e-9


ratios_strategy = (
    st.tuples(
        st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100), st.integers(0, 100)
    )
    .filter(lambda t: sum(t) > 0)
    .map(
        lambda t: SplitRatios(
            train=t[0] / sum(t), validation=t[1] / sum(t), test=1.0 - t[0] / sum(t) - t[1] / sum(t)
        )
    )
)
strata_strategy = st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=5)


def _stratified(sizes: list[int], start: int = 0) -> list[SplitItem]:
    items: list[SplitItem] = []
    for index, size in enumerate(sizes):
        items += _items(size, stratum=None if index == 0 else f"class{index}", start=start + len(items))
    return items


@pytest.mark.parametrize(
    ("train", "validation", "test"),
    [(0.8, 0.1, 0.1), (0.7, 0.2, 0.1), (1.0, 0.0, 0.0), (0.5, 0.5, 1e-7), (1 / 3, 1 / 3, 1 / 3)],
)
def test_ratios_accept_shares_summing_to_one(train: float, validation: float, test: float) -> None:
    assert SplitRatios(train=train, validation=validation, test=test).share(Split.TRAIN) == train


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"train": 0.8, "validation": 0.1, "test": 0.2}, "add up to 1"),
        ({"train": 0.5, "validation": 0.5, "test": 1e-5}, "add up to 1"),
        ({"train": 1.1, "validation": -0.1, "test": 0.0}, "between 0 and 1, got 1.1"),
        ({"train": 0.6, "validation": 0.5, "test": -0.1}, "between 0 and 1, got -0.1"),
    ],
)
def test_ratios_reject_bad_shares(fields: dict[str, float], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        SplitRatios(**fields)


def test_ratios_snap_rounding_errors_to_the_bounds() -> None:
    ratios = SplitRatios(train=0.6, validation=0.4, test=-5e-17)
    assert ratios.test == 0.0
    assert SplitRatios(train=1.0 + 1e-9, validation=0.0, test=0.0).train == 1.0


def test_unassigned_has_no_share() -> None:
    assert DEFAULT.share(Split.UNASSIGNED) == 0.0


def test_same_seed_gives_the_same_split() -> None:
    items = _items(200)
    assert assign_splits(items, DEFAULT, seed=7) == assign_splits(list(reversed(items)), DEFAULT, seed=7)


def test_different_seed_gives_a_different_split() -> None:
    items = _items(200)
    first, second = assign_splits(items, DEFAULT, seed=1), assign_splits(items, DEFAULT, seed=2)
    assert first != second
    assert Counter(first.values()) == Counter(second.values())


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, {}),
        (1, {Split.TRAIN: 1}),
        (10, {Split.TRAIN: 8, Split.VALIDATION: 1, Split.TEST: 1}),
        (100, {Split.TRAIN: 80, Split.VALIDATION: 10, Split.TEST: 10}),
        (1001, {Split.TRAIN: 801, Split.VALIDATION: 100, Split.TEST: 100}),
    ],
)
def test_counts_follow_the_ratios(count: int, expected: dict[Split, int]) -> None:
    assert Counter(assign_splits(_items(count), DEFAULT, seed=0).values()) == expected


def test_zero_share_split_gets_nothing() -> None:
    ratios = SplitRatios(train=0.9, validation=0.1, test=0.0)
    assert Split.TEST not in assign_splits(_items(57), ratios, seed=3).values()


def test_stratification_keeps_class_balance() -> None:
    items = _items(500, "common") + _items(100, "rare", start=500) + _items(20, "scarce", start=600)
    counts = _counts(assign_splits(items, DEFAULT, seed=11), items)
    assert counts == {
        "common": Counter({Split.TRAIN: 400, Split.VALIDATION: 50, Split.TEST: 50}),
        "rare": Counter({Split.TRAIN: 80, Split.VALIDATION: 10, Split.TEST: 10}),
        "scarce": Counter({Split.TRAIN: 16, Split.VALIDATION: 2, Split.TEST: 2}),
    }


def test_many_small_strata_do_not_starve_a_split() -> None:
    # Each stratum of 5 rounds to 4/1/0 or 4/0/1; which of validation and test wins must vary.
    items = [item for s in range(100) for item in _items(5, f"class{s}", start=5 * s)]
    totals = Counter(assign_splits(items, DEFAULT, seed=5).values())
    assert totals[Split.TRAIN] == 400
    assert 30 <= totals[Split.VALIDATION] <= 70
    assert totals[Split.VALIDATION] + totals[Split.TEST] == 100


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(InvalidInput, match="Example 3 is listed twice"):
        assign_splits([(3, "a", None), (3, "b", None)], DEFAULT, seed=0)


@given(strata_strategy, ratios_strategy, st.integers(), st.randoms(use_true_random=False))
def test_split_is_exact_per_stratum_and_order_free(
    sizes: list[int], ratios: SplitRatios, seed: int, rng: object
) -> None:
    items = _stratified(sizes)
    assigned = assign_splits(items, ratios, seed)
    shuffled = list(items)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert assign_splits(shuffled, ratios, seed) == assigned
    assert sorted(assigned) == [item[0] for item in items]
    for stratum, counts in _counts(assigned, items).items():
        size = sum(counts.values())
        for split in SPLITS:
            assert _within_one(counts[split], size * ratios.share(split)), (stratum, split, counts)


def test_assign_new_with_nothing_existing_is_assign_splits() -> None:
    items = _items(90, "a") + _items(31, "b", start=90) + _items(7, start=200)
    assert assign_new(items, DEFAULT, seed=4, existing_counts={}) == assign_splits(items, DEFAULT, seed=4)


def test_assign_new_fills_the_splits_that_are_short() -> None:
    existing = {None: {Split.TRAIN: 100, Split.UNASSIGNED: 40}}
    assigned = assign_new(_items(20, start=1000), DEFAULT, seed=0, existing_counts=existing)
    # 120 in all: 96/12/12 wanted, train already over, so the new 20 go to validation and test.
    assert Counter(assigned.values()) == {Split.VALIDATION: 10, Split.TEST: 10}


def test_assign_new_returns_only_new_items() -> None:
    old = _items(50, "a")
    before = assign_splits(old, DEFAULT, seed=9)
    new = _items(13, "a", start=50)
    added = assign_new(new, DEFAULT, seed=9, existing_counts={"a": Counter(before.values())})
    assert sorted(added) == list(range(50, 63))
    assert assign_splits(old, DEFAULT, seed=9) == before


def test_assign_new_tops_up_the_split_furthest_behind() -> None:
    # With 5 in all, 2.5 / 1.25 / 1.25 are wanted: test is 1.25 behind, train only 0.5.
    ratios = SplitRatios(train=0.5, validation=0.25, test=0.25)
    existing = {None: {Split.TRAIN: 2, Split.VALIDATION: 2}}
    assert assign_new(_items(1, start=4), ratios, seed=0, existing_counts=existing) == {4: Split.TEST}


def test_assign_new_refuses_negative_counts() -> None:
    with pytest.raises(InvalidInput, match="must not be negative"):
        assign_new(_items(3), DEFAULT, seed=0, existing_counts={None: {Split.TEST: -1}})


@given(strata_strategy, strata_strategy, ratios_strategy, st.integers())
def test_growing_in_batches_never_moves_old_items_and_stays_near_the_ratios(
    old_sizes: list[int], new_sizes: list[int], ratios: SplitRatios, seed: int
) -> None:
    old = _stratified(old_sizes)
    new = _stratified(new_sizes, start=10_000)
    before = assign_splits(old, ratios, seed)
    existing = {stratum: dict(counts) for stratum, counts in _counts(before, old).items()}
    added = assign_new(new, ratios, seed, existing)

    assert set(added) == {item[0] for item in new}
    assert assign_new(list(reversed(new)), ratios, seed, existing) == added
    final = _counts(before | added, old + new)
    for stratum, counts in final.items():
        size = sum(counts.values())
        for split in SPLITS:
            assert _within_one(counts[split], size * ratios.share(split)), (stratum, split, counts)
