"""Assign examples to train/validation/test, reproducibly from a seed and optionally stratified.

An example's place depends only on the seed and its content hash, never on input order or row ids,
so re-running a split on the same data gives the same answer, and identical copies sort next to each
other (they rarely straddle a cut; `dedup.leakage` finds the ones that do). Counts are cut exactly
per stratum with largest-remainder rounding, so every stratum is within one example of the ratios.

New examples are added without moving old ones. After a split by `assign_splits` and one batch of
additions, every stratum is still within one example of the ratios; over many small batches (or after
the ratios change) a split can drift a little further, since only the new items can be steered.
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

    weights = _integer_weights(ratios)
    assigned: dict[int, Split] = {}
    for stratum, members in strata.items():
        existing = existing_counts.get(stratum, {})
        old = {split: existing.get(split, 0) for split in SPLITS}
        if any(count < 0 for count in old.values()):
            raise InvalidInput(f"Existing split counts for stratum {stratum!r} must not be negative: {old}.")
        counts = _fill(old, len(members), weights, _tie_order(seed, stratum))
        ordered = sorted(members, key=lambda item: (_rank(seed, item[1]), item[1], item[0]))
        position = 0
        for split in SPLITS:
            for example_id, _, _ in ordered[position : position + counts[split]]:
                assigned[example_id] = split
            position += counts[split]
    return dict(sorted(assigned.items()))


def _fill(
    old: dict[Split, int], new: int, weights: dict[Split, int], tie_order: list[Split]
) -> dict[Split, int]:
    """Share `new` items out one at a time, each to the split furthest below its exact share of the total.

    From empty this is largest-remainder rounding (every split within one of its share, leftovers
    to the largest fractions, ties in `tie_order`); with old counts it tops up the splits that fell
    behind first.
    """
    total = sum(old.values()) + new
    weight_sum = sum(weights.values())
    counts = dict(old)
    added = dict.fromkeys(SPLITS, 0)
    rank = {split: -tie_order.index(split) for split in SPLITS}
    for _ in range(new):
        # Shortfall against the exact share (total * weight / weight_sum), times weight_sum to stay exact.
        split = max(SPLITS, key=lambda s: (total * weights[s] - counts[s] * weight_sum, rank[s]))
        counts[split] += 1
        added[split] += 1
    return added


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
