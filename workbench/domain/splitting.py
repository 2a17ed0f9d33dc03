"""Assign examples to train/validation/test, reproducibly from a seed and optionally stratified.

An example's place depends only on the seed and its content hash, never on input order or row ids,
so re-running a split on the same data gives the same answer, and identical copies sort next to each
other (they rarely straddle a cut; `dedup.leakage` finds the ones that do). Counts are cut exactly
per stratum with largest-remainder rounding, so every stratum is within one example of the ratios.

New examples are added without moving old ones. After a split by `assign_splits` and one batch of
additions, every stratum is still within one example of the ratios; over many small batches (or after
the ratios change) a split can drift a little further, since only the new items can be steered.

A dataset too large to hold is split in two passes with the same answer: count each stratum
(`stratum_counts` says how many of its examples each split gets), then walk each stratum's examples
in rank order (`split_rank`, which the store can sort by) and deal them out with a `SplitDealer`.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workbench.domain.example import Split
from workbench.errors import InvalidInput

SplitItem = tuple[int, str, str | None]
"""(example_id, content_hash, stratum or None): what splitting needs to know about an example."""

SPLITS = (Split.TRAIN, Split.VALIDATION, Split.TEST)
RATIO_TOLERANCE = 1e-6


class SplitRatios(BaseModel):
    """Shares of train, validation and test; validated to sum to 1 so no example is left unassigned."""

    model_config = ConfigDict(frozen=True)

    train: float = Field(default=0.8, description="Share of examples to train on, 0..1.")
    validation: float = Field(
        default=0.1, description="Share held out to watch for overfitting while training, 0..1."
    )
    test: float = Field(default=0.1, description="Share held out to evaluate the finished model, 0..1.")

    @field_validator("train", "validation", "test")
    @classmethod
    def _within_zero_and_one(cls, ratio: float) -> float:
        # Shares computed as `1 - train - validation` land a rounding error outside [0, 1]; snap them.
        if -RATIO_TOLERANCE <= ratio < 0.0:
            return 0.0
        if 1.0 < ratio <= 1.0 + RATIO_TOLERANCE:
            return 1.0
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"A split ratio must be between 0 and 1, got {ratio:g}.")
        return ratio

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitRatios:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > RATIO_TOLERANCE:
            raise ValueError(
                f"Split ratios must add up to 1; train {self.train} + validation {self.validation} "
                f"+ test {self.test} = {total:g}."
            )
        return self

    def share(self, split: Split) -> float:
        """Return the ratio for one split (0 for UNASSIGNED), so callers can loop over `SPLITS`."""
        return {Split.TRAIN: self.train, Split.VALIDATION: self.validation, Split.TEST: self.test}.get(
            split, 0.0
        )


def assign_splits(items: Iterable[SplitItem], ratios: SplitRatios, seed: int) -> dict[int, Split]:
    """Split every item, stratum by stratum, so each stratum keeps the ratios and the result is reproducible.

    Items with stratum None form one stratum of their own; give every item None for a plain split.
    """
    return assign_new(items, ratios, seed, existing_counts={})


def assign_new(
    items: Iterable[SplitItem],
    ratios: SplitRatios,
    seed: int,
    existing_counts: Mapping[str | None, Mapping[Split, int]],
) -> dict[int, Split]:
    """Split only new items, steering each stratum's totals toward the ratios without moving old examples.

    `existing_counts` gives, per stratum, how many already-assigned examples each split holds
    (UNASSIGNED is ignored). Each new item goes to the split furthest below its exact share of the
    stratum's new total, so splits that fell behind catch up first; a split already over its share
    gets none, since old examples never move. With no existing counts this is exactly `assign_splits`.
    """
    strata: dict[str | None, list[SplitItem]] = defaultdict(list)
    seen: set[int] = set()
    for item in items:
        if item[0] in seen:
            raise InvalidInput(f"Example {item[0]} is listed twice for splitting.")
        seen.add(item[0])
        strata[item[2]].append(item)

    assigned: dict[int, Split] = {}
    for stratum, members in strata.items():
        counts = stratum_counts(ratios, seed, stratum, existing_counts.get(stratum, {}), len(members))
        dealer = SplitDealer(counts)
        for example_id, _, _ in sorted(members, key=lambda item: (split_rank(seed, item[1]), item[1], item[0])):
            assigned[example_id] = dealer.next()
    return dict(sorted(assigned.items()))


def stratum_counts(
    ratios: SplitRatios, seed: int, stratum: str | None, existing: Mapping[Split, int], new: int
) -> dict[Split, int]:
    """Say how many of a stratum's `new` examples go to each split, given what its splits hold already."""
    old = {split: existing.get(split, 0) for split in SPLITS}
    if any(count < 0 for count in old.values()):
        raise InvalidInput(f"Existing split counts for stratum {stratum!r} must not be negative: {old}.")
    return _fill(old, new, _integer_weights(ratios), _tie_order(seed, stratum))


def split_rank(seed: int, content_hash: str) -> int:
    """An example's place in its stratum, as a signed 64-bit integer a database can sort by.

    Depends only on the seed and the content hash. Examples are dealt out in ascending rank, ties
    (a 64-bit collision) broken by content hash, then id.
    """
    return int.from_bytes(_rank(seed, content_hash), "big") - 2**63


class SplitDealer:
    """Deals a stratum's examples, taken in rank order, to train, then validation, then test, by count."""

    def __init__(self, counts: Mapping[Split, int]) -> None:
        self._left = [(split, counts.get(split, 0)) for split in SPLITS if counts.get(split, 0) > 0]
        self._given = 0

    def next(self) -> Split:
        """Return the split of the next example in rank order; more examples than counted is a bug."""
        while self._left and self._given >= self._left[0][1]:
            self._left.pop(0)
            self._given = 0
        if not self._left:
            raise ValueError("more examples were dealt than the stratum was counted to have")
        self._given += 1
        return self._left[0][0]


def _fill(
    old: dict[Split, int], new: int, weights: dict[Split, int], tie_order: list[Split]
) -> dict[Split, int]:
    """Share `new` items out one at a time, each to the split furthest below its exact share of the total.

    From empty this is largest-remainder rounding (every split within one of its share, leftovers
    to the largest fractions, ties in `tie_order`); with old counts it tops up the splits that fell
    behind first.

    Worked out without the loop, so a million examples cost no more than ten. The shortfall of
    split s before its k-th new item (k = 0, 1, ...) is `level(s, k) = total * w_s - (old_s + k) * W`
    (times W = the sum of the weights, to stay in integers): each item goes to the highest level
    left, ties in `tie_order`, so the items handed out are the `new` highest of all levels. Every
    level above a threshold `bar` is taken (`_above`); the few at exactly `bar` go in tie order.
    """
    if new <= 0:
        return dict.fromkeys(SPLITS, 0)
    total = sum(old.values()) + new
    weight_sum = sum(weights.values())
    start = {split: total * weights[split] - old[split] * weight_sum for split in SPLITS}
    # Smallest bar with at most `new` levels above it: above(high) = 0; above(low) >= new.
    low, high = min(start.values()) - new * weight_sum - 1, max(start.values())
    while high - low > 1:
        middle = (low + high) // 2
        if _above(start, middle, weight_sum) <= new:
            high = middle
        else:
            low = middle
    bar = high
    added = {split: max(0, -(-(start[split] - bar) // weight_sum)) for split in SPLITS}
    left = new - sum(added.values())
    for split in tie_order:
        if left and start[split] >= bar and (start[split] - bar) % weight_sum == 0:
            added[split] += 1
            left -= 1
    return added


def _above(start: dict[Split, int], bar: int, weight_sum: int) -> int:
    """Count the levels strictly above `bar` over all splits (a split's levels fall by `weight_sum` a step)."""
    return sum(max(0, -(-(level - bar) // weight_sum)) for level in start.values())


def _tie_order(seed: int, stratum: str | None) -> list[Split]:
    # Equal remainders go to a different split in each stratum (seeded), so many small strata do not
    # all round the same way and starve one split overall.
    return sorted(SPLITS, key=lambda split: _rank(seed, f"{stratum!r}:{split.value}"))


def _rank(seed: int, key: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()


def _integer_weights(ratios: SplitRatios) -> dict[Split, int]:
    # Exact integers in the ratios' proportions, read from the shortest decimal repr so 0.1 is exactly
    # 1/10 and shares that should tie do tie.
    fractions = {split: Fraction(repr(ratios.share(split))) for split in SPLITS}
    scale = math.lcm(*(f.denominator for f in fractions.values()))
    return {split: int(f * scale) for split, f in fractions.items()}
