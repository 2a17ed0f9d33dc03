"""Describe a dataset in numbers a page can chart: lengths, turns, roles, class balance, epochs and cost.

Everything here is plain data (lists, dicts, pydantic models) so the UI can hand it straight to plotly;
the distributions follow the OpenAI cookbook's data-prep notebook
(https://github.com/openai/openai-cookbook/blob/main/examples/Chat_finetuning_data_prep.ipynb).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from workbench.domain.example import Example, Role
from workbench.domain.progress import Progress
from workbench.domain.tokens import count_tokens

NO_CLASS = "(none)"
"""Class label for examples whose metadata lacks the class field (or holds null)."""

# Cookbook default-epoch rule (openai-cookbook `Chat_finetuning_data_prep.ipynb`).
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


class Distribution(BaseModel):
    """Summarise a list of numbers the way the cookbook prints one (min, max, mean, median, p5, p95).

    The cookbook labels its 0.1 and 0.9 quantiles "p5/p95"; here p5/p95 are the true 5th and 95th
    percentiles and p10/p90 are there as well. Percentiles interpolate linearly, as numpy's default does.
    All fields are 0 for an empty list.
    """

    count: int = 0
    min: float = 0
    max: float = 0
    mean: float = 0
    median: float = 0
    p5: float = Field(default=0, description="5th percentile (linear interpolation).")
    p10: float = Field(default=0, description="10th percentile: what the cookbook prints as 'p5'.")
    p90: float = Field(default=0, description="90th percentile: what the cookbook prints as 'p95'.")
    p95: float = Field(default=0, description="95th percentile (linear interpolation).")


class DatasetStats(BaseModel):
    """Hold per-example series and their summaries for one dataset, ready to chart."""

    example_count: int = 0
    encoding: str = Field(description="BPE encoding the token lengths were counted with.")
    token_lengths: list[int] = Field(
        default_factory=list, description="Tokens per example over the system prompt and every turn, in input order."
    )
    assistant_token_lengths: list[int] = Field(
        default_factory=list, description="Tokens per example in assistant turns only: what the model is trained on."
    )
    turn_counts: list[int] = Field(
        default_factory=list, description="Messages per example, system prompt not counted."
    )
    role_counts: dict[str, int] = Field(
        default_factory=dict,
        description="Messages per role over the dataset; 'system' counts examples with a system prompt.",
    )
    class_field: str | None = Field(default=None, description="Metadata key the class balance was read from.")
    class_counts: dict[str, int] = Field(
        default_factory=dict, description=f"Examples per class value, largest first; '{NO_CLASS}' when missing."
    )
    examples_without_system: int = 0
    examples_without_user: int = 0
    examples_without_assistant: int = 0
    total_tokens: int = 0
    tokens: Distribution = Field(default_factory=Distribution, description="Summary of token_lengths.")
    assistant_tokens: Distribution = Field(
        default_factory=Distribution, description="Summary of assistant_token_lengths."
    )
    turns: Distribution = Field(default_factory=Distribution, description="Summary of turn_counts.")
    series_left_out: int = Field(default=0, description="Examples counted but not in the sampled series above.")


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Return the q-quantile of already sorted values by linear interpolation (numpy's default method)."""
    if not sorted_values:
        return 0.0
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def distribution(values: Iterable[float]) -> Distribution:
    """Summarise numbers as min, max, mean, median and percentiles, for a histogram's caption."""
    ordered = sorted(values)
    if not ordered:
        return Distribution()
    return Distribution(
        count=len(ordered),
        min=ordered[0],
        max=ordered[-1],
        mean=sum(ordered) / len(ordered),
        median=quantile(ordered, 0.5),
        p5=quantile(ordered, 0.05),
        p10=quantile(ordered, 0.1),
        p90=quantile(ordered, 0.9),
        p95=quantile(ordered, 0.95),
    )


def _class_label(value: Any) -> str:
    if value is None:
        return NO_CLASS
    return value if isinstance(value, str) else str(value)


SERIES_SAMPLE = 20_000
"""Per-example series (token lengths, turns) keep at most this many values, a seeded random sample, for the charts."""


class _Series:
    """One per-example series: exact count, total, min, max and mean; a bounded seeded sample for charts and percentiles.

    A million examples would otherwise keep a million values per series (and as many in a kept
    result); reservoir sampling keeps every example equally likely to be in the sample.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sample: list[int] = []
        self.count = 0
        self.total = 0
        self.low: int | None = None
        self.high: int | None = None

    def add(self, value: int) -> None:
        self.count += 1
        self.total += value
        self.low = value if self.low is None else min(self.low, value)
        self.high = value if self.high is None else max(self.high, value)
        if len(self.sample) < SERIES_SAMPLE:
            self.sample.append(value)
        else:
            slot = self.rng.randrange(self.count)
            if slot < SERIES_SAMPLE:
                self.sample[slot] = value

    def distribution(self) -> Distribution:
        shape = distribution(self.sample)
        if not self.count:
            return shape
        # Exact where exact is cheap; the percentiles come from the sample (exact up to SERIES_SAMPLE examples).
        return shape.model_copy(update={"count": self.count, "min": self.low, "max": self.high, "mean": self.total / self.count})


def dataset_stats(
    examples: Iterable[Example], *, class_field: str | None = None, encoding: str = "cl100k_base", progress: Progress | None = None
) -> DatasetStats:
    """Measure a dataset in one pass: token lengths, turns, roles and class balance, for the stats page.

    Token lengths count text only (system prompt plus every turn), as `Example.token_count` does; the
    OpenAI chat overhead is in the OpenAI validation report instead. Counts, totals, min, max and
    mean cover every example; the series and their percentiles are a sample past `SERIES_SAMPLE`.
    """
    progress = progress or Progress()
    token_lengths, assistant_lengths, turn_counts = _Series(1), _Series(2), _Series(3)
    roles: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    without: Counter[str] = Counter()
    for example in examples:
        tokens = count_tokens(example.system, encoding) if example.system else 0
        assistant = 0
        seen: set[Role] = set()
        for message in example.messages:
            n = count_tokens(message.content, encoding)
            tokens += n
            if message.role is Role.ASSISTANT:
                assistant += n
            roles[message.role.value] += 1
            seen.add(message.role)
        if example.system:
            roles["system"] += 1
        else:
            without["system"] += 1
        without["user"] += Role.USER not in seen
        without["assistant"] += Role.ASSISTANT not in seen
        token_lengths.add(tokens)
        assistant_lengths.add(assistant)
        turn_counts.add(len(example.messages))
        if class_field is not None:
            classes[_class_label(example.metadata.get(class_field))] += 1
        progress.advance()
    return DatasetStats(
        example_count=token_lengths.count,
        encoding=encoding,
        token_lengths=token_lengths.sample,
        assistant_token_lengths=assistant_lengths.sample,
        turn_counts=turn_counts.sample,
        series_left_out=token_lengths.count - len(token_lengths.sample),
        role_counts=dict(roles.most_common()),
        class_field=class_field,
        class_counts=dict(classes.most_common()),
        examples_without_system=without["system"],
        examples_without_user=without["user"],
        examples_without_assistant=without["assistant"],
        total_tokens=token_lengths.total,
        tokens=token_lengths.distribution(),
        assistant_tokens=assistant_lengths.distribution(),
        turns=turn_counts.distribution(),
    )


def openai_epochs_and_billing(token_lengths: list[int], max_tokens_per_example: int) -> tuple[int, int, int]:
    """Estimate OpenAI's default epochs and billed tokens, so a job's cost is known before it is launched.

    Implements the cookbook rule (docs/providers.md, OpenAI): 3 epochs, raised to reach 100 example-passes for
    small sets (at most 25 epochs) and lowered to stay near 25,000 for large ones (at least 1); every
    example is billed up to `max_tokens_per_example`. Returns (n_epochs, billing_tokens, charged_tokens),
    charged = epochs x billing tokens; multiply by the price per token for dollars. An empty list gives
    (0, 0, 0): there is nothing to train on.
    """
    n = len(token_lengths)
    if n == 0:
        return 0, 0, 0
    n_epochs = TARGET_EPOCHS
    if n * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        n_epochs = min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n)
    elif n * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        n_epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n)
    billing_tokens = sum(min(max_tokens_per_example, length) for length in token_lengths)
    return n_epochs, billing_tokens, n_epochs * billing_tokens
