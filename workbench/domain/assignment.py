"""Which variant a unit (user, session) sees: a pure function of the experiment's seed and the unit's id.

The hash is GrowthBook's version 2 (growthbook/growthbook `packages/sdk-js/src/util.ts`, `hash` and
`hashFnv32a`; https://docs.growthbook.io/using/experimenting), so an assignment made here matches one
made by a GrowthBook SDK given the same seed, id and weights:
    bucket = fnv1a32(str(fnv1a32(seed + unit_id))) % 10000 / 10000,   a number in [0, 1)
with 32-bit FNV-1a (offset basis 0x811C9DC5, prime 0x01000193) over UTF-16 code units, as JavaScript's
`charCodeAt` reads a string. Hashing twice is GrowthBook's fix for the first version's bias.

Each variant owns a slice of [0, 1), laid out in the order the variants are given:
[start, start + coverage x share), where share is its weight over the sum of weights and start is the
sum of the shares before it. A bucket outside every slice (coverage below 1) is not in the experiment.

Stickiness: the same seed, id and weights always give the same variant, so no state is needed to keep
a unit where it was. When weights change, a unit keeps its variant exactly when its variant's slice is
unchanged, that is when its own share and the shares of every variant before it are unchanged. So keep
control first, add new variants at the end, and resize the last ones; raising coverage only adds units.
Changing the weights of early variants moves units between variants, which is a known cause of sample
ratio mismatch; recording each unit's first assignment (the store's job) keeps a later change from
re-bucketing anyone already exposed.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterable, Mapping
from functools import lru_cache
from itertools import accumulate

from pydantic import BaseModel, ConfigDict

from workbench.errors import InvalidInput

FNV_OFFSET_BASIS = 0x811C9DC5
FNV_PRIME = 0x01000193
HASH_BUCKETS = 10_000
"""Hash v2 resolution: buckets are multiples of 0.0001, so shares are honoured to about 0.01%."""


def _code_units(text: str) -> Iterable[int]:
    if text.isascii():
        # One code unit per character, equal to its byte: the common case, and the fast one.
        return text.encode("ascii")
    units = array("H", text.encode("utf-16-le", "surrogatepass"))
    if sys.byteorder == "big":
        units.byteswap()
    return units


def fnv1a32(text: str) -> int:
    """Return the 32-bit FNV-1a hash of `text`'s UTF-16 code units (what JavaScript's charCodeAt yields)."""
    value = FNV_OFFSET_BASIS
    for unit in _code_units(text):
        value = ((value ^ unit) * FNV_PRIME) & 0xFFFFFFFF
    return value


def bucket(seed: str, unit_id: str) -> float:
    """Return the unit's place in [0, 1) for this seed: GrowthBook's hash version 2."""
    return (fnv1a32(str(fnv1a32(seed + unit_id))) % HASH_BUCKETS) / HASH_BUCKETS


class VariantRange(BaseModel):
    """The slice of [0, 1) whose buckets go to one variant."""

    model_config = ConfigDict(frozen=True)

    name: str
    start: float
    end: float

    def holds(self, value: float) -> bool:
        return self.start <= value < self.end


def normalise_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Check traffic weights and return each variant's share of traffic, in the order given.

    Weights are relative (1:1, 50/50 and 0.5/0.5 are the same split); each must be a positive number
    and each variant needs a name.
    """
    if not weights:
        raise InvalidInput("an experiment needs at least one variant with a weight; none were given")
    for name, weight in weights.items():
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"a variant name is {name!r}; every variant needs a non-empty name")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
            raise InvalidInput(f"variant {name!r} has weight {weight!r}; weights must be positive numbers "
                               "(traffic shares such as 50 and 50, or 0.9 and 0.1)")
    total = math.fsum(weights.values())
    return {name: weight / total for name, weight in weights.items()}


def bucket_ranges(weights: Mapping[str, float], coverage: float = 1.0) -> list[VariantRange]:
    """Lay the variants' slices out over [0, 1) in the order given, each shrunk to `coverage` of its share."""
    if isinstance(coverage, bool) or not isinstance(coverage, int | float) or not 0 <= coverage <= 1:
        raise InvalidInput(f"coverage is {coverage!r}; it must be a share of traffic from 0 to 1")
    normalise_weights(weights)
    # Edges are running sums over the last running sum, so the last variant ends at exactly 1.
    running = list(accumulate(weights.values(), initial=0.0))
    total = running[-1]
    ranges: list[VariantRange] = []
    for index, name in enumerate(weights):
        start, next_start = running[index] / total, running[index + 1] / total
        end = next_start if coverage == 1 else start + coverage * (next_start - start)
        ranges.append(VariantRange(name=name, start=start, end=end))
    return ranges


@lru_cache(maxsize=256)
def _cached_ranges(weights: tuple[tuple[str, type, float], ...], coverage: tuple[type, float]
                   ) -> tuple[VariantRange, ...]:
    """Remember an experiment's slices: the ingest API assigns many units against the same few weights.

    The key holds each number's type because True == 1: a refused value must never hit a cached valid one.
    """
    return tuple(bucket_ranges({name: weight for name, _, weight in weights}, coverage[1]))


def assign(seed: str, unit_id: str | int, weights: Mapping[str, float], coverage: float = 1.0) -> str | None:
    """Return the variant `unit_id` sees in the experiment with this seed, or None when it is not included."""
    if not isinstance(seed, str) or not seed:
        raise InvalidInput(f"the experiment seed is {seed!r}; it must be a non-empty string (the experiment key "
                           "by default), or every experiment would split units the same way")
    if isinstance(unit_id, bool) or not isinstance(unit_id, str | int) or str(unit_id) == "":
        raise InvalidInput(f"the unit id is {unit_id!r}; it must be a non-empty string (a user or session id)")
    try:
        key = tuple((name, type(weight), weight) for name, weight in weights.items())
        ranges = _cached_ranges(key, (type(coverage), coverage))
    except TypeError:
        # An unhashable weight (a list, say) cannot be cached; checking it uncached says what is wrong.
        ranges = tuple(bucket_ranges(weights, coverage))
    place = bucket(seed, str(unit_id))
    return next((each.name for each in ranges if each.holds(place)), None)
