from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.domain.example import Example, Message, Role
from workbench.domain.stats import (
    NO_CLASS,
    Distribution,
    dataset_stats,
    distribution,
    openai_epochs_and_billing,
    quantile,
)
from workbench.domain.tokens import count_tokens


def chat(user: str, reply: str, *, system: str | None = None, **metadata: object) -> Example:
    return Example(
        system=system,
        messages=[Message(role=Role.USER, content=user), Message(role=Role.ASSISTANT, content=reply)],
        metadata=dict(metadata),
    )


def test_cookbook_worked_example():
    # openai-cookbook Chat_finetuning_data_prep.ipynb: the notebook's printed output for these lengths with a 4,096 cap.
    assert openai_epochs_and_billing([45, 111, 26, 28, 8032], 4096) == (20, 4306, 86120)


@pytest.mark.parametrize(
    ("n", "epochs"),
    [
        (1, 25),  # 100 // 1 = 100, capped at 25
        (5, 20),
        (33, 3),  # 99 example-passes < 100: 100 // 33 = 3
        (34, 3),
        (8_333, 3),  # 24,999 passes: the default
        (8_334, 2),  # 25,002 passes > 25,000: 25,000 // 8,334 = 2
        (30_000, 1),  # 25,000 // 30,000 = 0, floored at 1
    ],
)
def test_default_epochs_follow_the_cookbook_rule(n, epochs):
    n_epochs, billing, charged = openai_epochs_and_billing([10] * n, 4096)
    assert n_epochs == epochs
    assert billing == 10 * n
    assert charged == epochs * billing


def test_billing_caps_each_example():
    assert openai_epochs_and_billing([100, 5000], 1000)[1] == 1100


def test_no_examples_cost_nothing():
    assert openai_epochs_and_billing([], 4096) == (0, 0, 0)


def test_dataset_stats_measures_each_example():
    examples = [
        chat("What is 2+2?", "4", system="Answer briefly.", label="math"),
        chat("Name a colour", "Blue, like the sky on a clear day.", label="trivia"),
        Example(
            messages=[
                Message(role=Role.USER, content="Hi"),
                Message(role=Role.ASSISTANT, content="Hello"),
                Message(role=Role.USER, content="Bye"),
                Message(role=Role.ASSISTANT, content="Goodbye"),
            ],
            metadata={"label": "math"},
        ),
    ]
    stats = dataset_stats(examples, class_field="label")

    assert stats.example_count == 3
    assert stats.token_lengths[0] == sum(count_tokens(t) for t in ("Answer briefly.", "What is 2+2?", "4"))
    assert stats.assistant_token_lengths[1] == count_tokens("Blue, like the sky on a clear day.")
    assert stats.turn_counts == [2, 2, 4]
    assert stats.role_counts == {"user": 4, "assistant": 4, "system": 1}
    assert stats.class_counts == {"math": 2, "trivia": 1}
    assert list(stats.class_counts) == ["math", "trivia"]  # largest first, for a sorted bar chart
    assert stats.examples_without_system == 2
    assert stats.total_tokens == sum(stats.token_lengths)
    assert stats.turns.max == 4
    assert stats.tokens.count == 3


@pytest.mark.parametrize(
    ("metadata", "label"),
    [({}, NO_CLASS), ({"label": None}, NO_CLASS), ({"label": 3}, "3"), ({"label": "spam"}, "spam")],
)
def test_class_balance_labels(metadata, label):
    stats = dataset_stats([chat("a", "b", **metadata)], class_field="label")
    assert stats.class_counts == {label: 1}


def test_no_class_field_means_no_class_counts():
    stats = dataset_stats([chat("a", "b", label="x")])
    assert stats.class_field is None
    assert stats.class_counts == {}


def test_examples_missing_a_role_are_counted():
    only_user = Example(messages=[Message(role=Role.USER, content="Hi")])
    only_reply = Example(messages=[Message(role=Role.ASSISTANT, content="Hello")])
    stats = dataset_stats([only_user, only_reply])
    assert stats.examples_without_user == 1
    assert stats.examples_without_assistant == 1


def test_encoding_is_used_and_reported():
    text = "naïve café 東京 🤖 " * 10
    stats = dataset_stats([chat(text, text)], encoding="o200k_base")
    assert stats.encoding == "o200k_base"
    assert stats.token_lengths == [2 * count_tokens(text, "o200k_base")]


def test_empty_dataset_gives_zeros():
    stats = dataset_stats([])
    assert stats.example_count == 0
    assert stats.tokens == Distribution()
    assert stats.token_lengths == []


def test_distribution_of_known_values():
    d = distribution(range(1, 101))
    assert (d.min, d.max, d.mean, d.median) == (1, 100, 50.5, 50.5)
    assert d.p5 == pytest.approx(5.95)
    assert d.p95 == pytest.approx(95.05)
    assert d.p10 == pytest.approx(10.9)


def test_distribution_of_one_value():
    d = distribution([7])
    assert (d.min, d.max, d.median, d.p5, d.p95) == (7, 7, 7, 7, 7)


def test_distribution_is_plain_data_for_charts():
    assert distribution([1, 2, 3]).model_dump()["median"] == 2


@given(st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=200), st.floats(0, 1))
def test_quantile_matches_numpy(values, q):
    assert quantile(sorted(values), q) == pytest.approx(float(np.quantile(values, q)), rel=1e-9, abs=1e-6)


def test_a_large_dataset_keeps_exact_totals_and_a_bounded_sample_of_each_series(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.domain import stats as stats_module

    monkeypatch.setattr(stats_module, "SERIES_SAMPLE", 10)
    examples = [chat("q " * (i % 7 + 1), "word " * (i + 1)) for i in range(100)]
    measured = dataset_stats(examples)
    whole = [count_tokens("q " * (i % 7 + 1)) + count_tokens("word " * (i + 1)) for i in range(100)]
    assert measured.example_count == 100 and measured.series_left_out == 90
    assert len(measured.token_lengths) == len(measured.turn_counts) == 10
    assert set(measured.token_lengths) <= set(whole)
    assert measured.total_tokens == sum(whole)
    assert (measured.tokens.count, measured.tokens.min, measured.tokens.max) == (100, min(whole), max(whole))
    assert measured.tokens.mean == pytest.approx(sum(whole) / 100)
    assert dataset_stats(examples) == measured  # the sample is seeded: the same data, the same charts
