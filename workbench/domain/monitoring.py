"""Pure pieces of the Monitoring page: percentiles from latency buckets, refusals, and alert rule checks.

Latency percentiles come from bucket counts (additive across days and models, so a rollup can hold
them): the percentile's bucket is found from the cumulative counts and the value is interpolated
linearly inside it, so the answer is never further from the exact one than that bucket's width.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from enum import StrEnum

from workbench.domain.predictions import LATENCY_BUCKETS, LATENCY_MAX_MS, latency_bucket_bounds

REFUSAL_PATTERN = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|unable|not able)|I (?:can(?:not|'t)|won't|will not) (?:help|assist|provide|do|answer|"
    r"comply)|as an AI\b|I must decline|I'm afraid I can't|(?:cannot|can't) (?:help|assist) with (?:that|this))",
    re.IGNORECASE,
)
"""What counts as a refusal: the stock phrases models decline with, looked for in an output's first 500
characters. A heuristic, so the refusal rate is a signal to watch for change, not an exact count."""
REFUSAL_SCAN_CHARS = 500


def is_refusal(output: str | None) -> bool:
    """Say whether an output opens like a refusal (see REFUSAL_PATTERN)."""
    return bool(output) and REFUSAL_PATTERN.search((output or "")[:REFUSAL_SCAN_CHARS]) is not None


def percentile_from_buckets(counts: Mapping[int, int], q: float) -> float | None:
    """Return the q-th percentile (0-100) of latencies counted per bucket; None when nothing is counted.

    The open-ended top bucket (10 minutes and more) reports its lower edge.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"q is {q}; a percentile is between 0 and 100")
    total = sum(n for n in counts.values() if n > 0)
    if total == 0:
        return None
    rank = q / 100 * total
    seen = 0
    for bucket in sorted(b for b, n in counts.items() if n > 0):
        n = counts[bucket]
        if seen + n >= rank:
            low, high = latency_bucket_bounds(bucket)
            if bucket > LATENCY_BUCKETS or math.isinf(high):
                return LATENCY_MAX_MS
            return low + (high - low) * ((rank - seen) / n)
        seen += n
    return LATENCY_MAX_MS  # unreachable: the loop ends at the total


class AlertMetric(StrEnum):
    """What a rule watches; each is computed over the rule's window of days."""

    ACCURACY = "accuracy"
    ERROR_RATE = "error_rate"
    LATENCY_P95_MS = "latency_p95_ms"
    COST_USD = "cost_usd"
    VOLUME = "volume"


DRIFT_PREFIX = "drift:"
"""A rule on a drift signal is `drift:<signal key>`; it fires while that signal's verdict is drift."""

METRIC_HELP: dict[str, str] = {
    AlertMetric.ACCURACY: "share of labelled predictions that were correct (0-1)",
    AlertMetric.ERROR_RATE: "share of predictions that ended in an error (0-1)",
    AlertMetric.LATENCY_P95_MS: "95th percentile latency in milliseconds",
    AlertMetric.COST_USD: "spend in US dollars per day (window average)",
    AlertMetric.VOLUME: "predictions per day (window average)",
}


class Comparison(StrEnum):
    ABOVE = ">"
    AT_LEAST = ">="
    BELOW = "<"
    AT_MOST = "<="


RULE_DEFAULTS: dict[str, tuple[Comparison, float]] = {
    AlertMetric.ACCURACY: (Comparison.BELOW, 0.9),
    AlertMetric.ERROR_RATE: (Comparison.ABOVE, 0.05),
    AlertMetric.LATENCY_P95_MS: (Comparison.ABOVE, 5000.0),
    AlertMetric.COST_USD: (Comparison.ABOVE, 100.0),
    AlertMetric.VOLUME: (Comparison.BELOW, 100.0),
}
"""What a new rule on each metric starts from: a quality that falls, or a rate, delay or spend that rises
(volume: traffic that dries up). Drift rules need neither; they fire on the drift verdict."""


def breaches(value: float | None, comparison: Comparison, threshold: float) -> bool:
    """Say whether a value trips a rule; a value that could not be computed (no data) never does."""
    if value is None or math.isnan(value):
        return False
    return {
        Comparison.ABOVE: value > threshold,
        Comparison.AT_LEAST: value >= threshold,
        Comparison.BELOW: value < threshold,
        Comparison.AT_MOST: value <= threshold,
    }[comparison]
