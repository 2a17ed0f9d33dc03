"""Assign examples to train/validation/test, reproducibly from a seed and optionally stratified.

An example's place depends only on the seed and its content hash, never on input order or row ids,
so re-running a split on the same data gives the same answer, and identical copies sort next to each
other (they rarely straddle a cut; `dedup.leakage` finds the ones that do). Counts are cut exactly
per stratum with largest-remainder rounding, so every stratum is within one example of the ratios.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.domain.example import Split
from workbench.errors import InvalidInput

SplitItem = tuple[int, str, str | None]
"""(example_id, content_hash, stratum or None): what splitting needs to know about an example."""

SPLITS = (Split.TRAIN, Split.VALIDATION, Split.TEST)
RATIO_TOLERANCE = 1e-6


class SplitRatios(BaseModel):
    """Shares of train, validation and test; validated to sum to 1 so no example is left unassigned."""

    model_config = ConfigDict(frozen=True)

    train: float = Field(default=0.8, ge=0.0, le=1.0, description="Share of examples to train on, 0..1.")
    validation: float = Field(
        default=0.1, ge=0.0, le=1.0, description="Share held out to watch for overfitting while training, 0..1."
    )
    test: float = Field(
        default=0.1, ge=0.0, le=1.0, description="Share held out to evaluate the finished model, 0..1."
    )

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
        return {Split.TRAIN: self.train, Split.VALIDATION: self.validation, Split.TEST: self.test}.get(split, 0.0)


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
    (UNASSIGNED is ignored). The new items fill the splits that are short of their share of the
    stratum's new total, in proportion to the shortfall; a split that is already over its share gets
    none, since old examples never move. With no existing counts this is exactly `assign_splits`.
    """
    strata: dict[str | None, list[SplitItem]] = defaultdict(list)
    seen: set[int] = set()
    for item in items:
        if item[0] in seen:
            raise InvalidInput(f"Example {item[0]} is listed twice for splitting.")
        seen.add(item[0])
        strata[item[2]].append(item)

    shares = {split: _fraction(ratios.share(split)) for split in SPLITS}
    assigned: dict[int, Split] = {}
    for stratum, members in strata.items():
        existing = existing_counts.get(stratum, {})
        old = {split: existing.get(split, 0) for split in SPLITS}
        if any(count < 0 for count in old.values()):
            raise InvalidInput(f"Existing split counts for stratum {stratum!r} must not be negative: {old}.")
        tie_order = _tie_order(seed, stratum)
        target = _allocate(sum(old.values()) + len(members), shares, tie_order)
        shortfall = {split: Fraction(max(0, target[split] - old[split])) for split in SPLITS}
        counts = _allocate(len(members), shortfall, tie_order)
        ordered = sorted(members, key=lambda item: (_rank(seed, item[1]), item[1], item[0]))
        position = 0
        for split in SPLITS:
            for example_id, _, _ in ordered[position : position + counts[split]]:
                assigned[example_id] = split
            position += counts[split]
    return dict(sorted(assigned.items()))


def _allocate(total: int, weights: Mapping[Split, Fraction], tie_order: list[Split]) -> dict[Split, int]:
    """Share `total` out in proportion to `weights`, largest remainder first, ties in `tie_order`."""
    weight_sum = sum(weights.values(), Fraction(0))
    if total == 0 or weight_sum == 0:
        return dict.fromkeys(SPLITS, 0)
    exact = {split: total * weights[split] / weight_sum for split in SPLITS}
    counts = {split: int(exact[split]) for split in SPLITS}
    leftover = total - sum(counts.values())
    by_remainder = sorted(SPLITS, key=lambda s: (-(exact[s] - counts[s]), tie_order.index(s)))
    for split in by_remainder[:leftover]:
        counts[split] += 1
    return counts


def _tie_order(seed: int, stratum: str | None) -> list[Split]:
    # Equal remainders go to a different split in each stratum (seeded), so many small strata do not
    # all round the same way and starve one split overall.
    return sorted(SPLITS, key=lambda split: _rank(seed, f"{stratum!r}:{split.value}"))


def _rank(seed: int, key: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()


def _fraction(ratio: float) -> Fraction:
    # Via the shortest decimal repr, so 0.1 is exactly 1/10 and remainders that should tie do tie.
    return Fraction(repr(ratio))
