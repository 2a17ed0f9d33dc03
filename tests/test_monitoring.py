"""Monitoring services on a store filled through `insert_predictions`: series from the rollups, and drift."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from tests.helpers import WriteJsonl, chat
from tests.monitoring_data import CHANGE_DAY, FIRST_DAY, MODEL, TASK, Planted, fill, row, write_rows
from tests.test_evaluations import add_model
from workbench.domain.drift import DriftMethod, Verdict
from workbench.domain.monitoring import is_refusal, percentile_from_buckets
from workbench.domain.predictions import latency_bucket, latency_bucket_bounds
from workbench.errors import InvalidInput, NotFound
from workbench.services import importing, monitoring, splits, versions
from workbench.store import Store

BEFORE_END = (CHANGE_DAY - timedelta(days=1)).isoformat()
LAST_DAY = (FIRST_DAY + timedelta(days=39)).isoformat()
WATCHED = ("output_length", "label_mix", "accuracy", "rating", "refusal_rate")


@pytest.fixture(scope="module")
def filled_module(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Planted]:
    """One store with the drift episode, shared by the tests that only read it."""
    store = Store(tmp_path_factory.mktemp("monitoring") / "workbench.db")
    return store, fill(store)


@pytest.fixture
def filled(filled_module: tuple[Store, Planted]) -> Store:
    return filled_module[0]


@pytest.fixture
def planted(filled_module: tuple[Store, Planted]) -> Planted:
    return filled_module[1]


def verdicts(report: monitoring.DriftReport) -> dict[str, Verdict]:
    return {s.key: s.result.verdict for s in report.signals}


def test_accuracy_errors_and_volume_per_day_are_exact(filled: Store, planted: Planted) -> None:
    points = monitoring.series(filled, model_version=MODEL, task_type=TASK)
    assert [p.day for p in points] == sorted(planted.predictions)
    for point in points:
        assert point.predictions == planted.predictions[point.day]
        assert point.errors == planted.errors[point.day]
        assert (point.labelled, point.correct) == (planted.labelled[point.day], planted.correct[point.day])
        assert point.accuracy == planted.correct[point.day] / planted.labelled[point.day]
        assert point.cost_usd == pytest.approx(0.001 * point.predictions)


def test_p50_and_p95_from_buckets_are_within_a_bucket_of_the_exact_value(filled: Store, planted: Planted) -> None:
    for point in monitoring.series(filled, model_version=MODEL):
        for q, estimate in ((50, point.p50_ms), (95, point.p95_ms)):
            exact = float(np.percentile(planted.latencies[point.day], q))
            low, high = latency_bucket_bounds(latency_bucket(exact) or 0)
            assert estimate is not None and abs(estimate - exact) <= high - low, (point.day, q)


def test_a_date_range_and_a_task_filter_narrow_the_series(filled: Store, planted: Planted) -> None:
    points = monitoring.series(filled, since_day="2026-10-05", until_day="2026-10-07")
    assert [p.day for p in points] == ["2026-10-05", "2026-10-06", "2026-10-07"]
    assert monitoring.series(filled, task_type="other") == []


def test_drift_is_found_after_the_change_and_not_before(filled: Store, planted: Planted) -> None:
    before = monitoring.drift(filled, model_version=MODEL, until_day=BEFORE_END, current_days=7, reference_days=7)
    after = monitoring.drift(filled, model_version=MODEL, until_day=LAST_DAY, current_days=7, reference_days=7)
    assert all(verdicts(before)[key] is Verdict.OK for key in WATCHED), verdicts(before)
    assert all(verdicts(after)[key] is Verdict.DRIFT for key in WATCHED), verdicts(after)
    assert verdicts(after)["input_length"] is Verdict.OK  # inputs did not change
    assert before.overall.verdict is Verdict.OK and after.overall.verdict is Verdict.DRIFT
    assert (after.current.since_day, after.current.until_day) == ("2026-11-03", LAST_DAY)
    assert (after.reference.since_day, after.reference.until_day) == ("2026-10-27", "2026-11-02")


def test_each_result_says_method_statistic_threshold_and_sizes(filled: Store, planted: Planted) -> None:
    report = monitoring.drift(filled, model_version=MODEL, until_day=LAST_DAY)
    rows = {r["key"]: r for r in (s.row() for s in report.signals)}
    assert rows["output_length"]["method"] == DriftMethod.WASSERSTEIN.value  # 2,100 rows a window: a distance
    assert rows["accuracy"]["method"] == DriftMethod.TWO_PROPORTION_Z.value and rows["accuracy"]["rule"] == "p < 0.05"
    for r in rows.values():
        assert r["statistic"] is not None and r["threshold"] > 0 and r["explanation"]
        assert r["reference_size"] >= 30 and r["current_size"] >= 30
    output = next(s for s in report.signals if s.key == "output_length")
    assert output.reference_values and output.current_values  # for the page's histograms
    assert any("invalid-JSON" in note for note in report.notes)  # not a JSON task


def test_the_current_window_defaults_to_the_models_newest_day(filled: Store, planted: Planted) -> None:
    report = monitoring.drift(filled, model_version=MODEL, current_days=3, reference_days=3)
    assert report.current.until_day == LAST_DAY and report.current.since_day == "2026-11-07"
    assert report.current.predictions == 900


def test_a_chosen_reference_range_is_used(filled: Store, planted: Planted) -> None:
    report = monitoring.drift(filled, model_version=MODEL, until_day=LAST_DAY, reference_since="2026-10-01",
                              reference_until="2026-10-10")
    assert report.reference.predictions == 3000 and report.reference.label == "2026-10-01 to 2026-10-10"
    assert verdicts(report)["label_mix"] is Verdict.DRIFT


def test_samples_stay_bounded_on_large_windows(filled: Store, planted: Planted) -> None:
    report = monitoring.drift(filled, model_version=MODEL, until_day=LAST_DAY, current_days=10, reference_days=20,
                              sample_size=200)
    output = next(s for s in report.signals if s.key == "output_length").result
    assert 100 <= output.reference_size <= 400 and 100 <= output.current_size <= 400
    assert output.method is DriftMethod.KS  # a small sample gets the test, not the distance


def test_invalid_json_rate_is_watched_for_json_tasks(store: Store) -> None:
    rows = []
    for day in range(14):
        for i in range(60):
            broken = day >= 7 and i % 4 == 0
            output = '{"label": "a"' if broken else '{"label": "a"}'
            rows.append(row(f"2026-10-{day + 1:02d}T10:{i:02d}:00.000+00:00", task="extract", output=output))
    write_rows(store, rows)
    report = monitoring.drift(store, model_version=MODEL, until_day="2026-10-14")
    found = {s.key: s.result for s in report.signals}
    assert found["invalid_json_rate"].verdict is Verdict.DRIFT
    assert found["invalid_json_rate"].explanation.startswith("Invalid-json rate went from 0.0% to 25.0%")


def test_the_label_mix_can_come_from_a_tag(store: Store) -> None:
    rows = [row(f"2026-10-{day + 1:02d}T10:{i:02d}:00.000+00:00",
                tags={"intent": ("refund" if day >= 7 and i % 2 else "order")}) for day in range(14) for i in range(40)]
    write_rows(store, rows)
    report = monitoring.drift(store, model_version=MODEL, until_day="2026-10-14", label_tag="intent")
    label = next(s.result for s in report.signals if s.key == "label_mix")
    assert label.signal == "tag 'intent' mix" and label.verdict is Verdict.DRIFT


def test_the_reference_can_be_the_registered_models_training_data(store: Store, write_jsonl: WriteJsonl) -> None:
    fill(store, days=14, per_day=100, first_day=date(2026, 10, 27))
    records = [chat(f"Question {i} about my account", ["billing", "shipping", "returns"][i % 3]) for i in range(120)]
    importing.import_path(store, write_jsonl(records), "support")
    splits.split_dataset(store, "support", (0.8, 0.0, 0.2), seed=3)
    versions.freeze(store, "support", "v1")
    add_model(store, MODEL, dataset="support", version="v1")
    report = monitoring.drift(store, model_version=MODEL, until_day=LAST_DAY, reference_training=True)
    assert report.reference.kind == "training" and "support v1" in report.reference.label
    found = verdicts(report)
    assert found["output_length"] is Verdict.DRIFT  # "billing" in training, "billing xxxx..." in production
    assert set(found) == {"output_length", "input_length", "label_mix"}


def test_drift_errors_say_what_to_do(filled: Store, planted: Planted) -> None:
    with pytest.raises(NotFound, match="no predictions for model version 'nope'"):
        monitoring.drift(filled, model_version="nope")
    with pytest.raises(InvalidInput, match="at least 1 day"):
        monitoring.drift(filled, model_version=MODEL, current_days=0)
    with pytest.raises(InvalidInput, match="both a start and an end"):
        monitoring.drift(filled, model_version=MODEL, reference_since="2026-10-01")
    with pytest.raises(InvalidInput, match="starts .* after it ends"):
        monitoring.drift(filled, model_version=MODEL, reference_since="2026-10-09", reference_until="2026-10-01")
    with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
        monitoring.drift(filled, model_version=MODEL, until_day="yesterday")
    with pytest.raises(NotFound, match="not a registered model"):
        monitoring.drift(filled, model_version=MODEL, reference_training=True)


def test_summary_gives_the_last_days_totals(filled: Store, planted: Planted) -> None:
    week = monitoring.summary(filled, days=7, until_day=LAST_DAY)
    days = [(date.fromisoformat(LAST_DAY) - timedelta(days=i)).isoformat() for i in range(7)]
    assert week.predictions == sum(planted.predictions[d] for d in days)
    assert week.accuracy == sum(planted.correct[d] for d in days) / sum(planted.labelled[d] for d in days)
    assert week.cost_usd == pytest.approx(0.001 * week.predictions)
    assert monitoring.summary(filled, days=7, until_day="2020-01-01").predictions == 0
    with pytest.raises(InvalidInput):
        monitoring.summary(filled, days=0)


def test_demo_predictions_are_recognised(store: Store) -> None:
    assert not monitoring.is_demo(store)
    fill(store, days=1, per_day=5, source="demo")
    assert monitoring.is_demo(store) and monitoring.is_demo(store, MODEL)


def test_percentiles_from_buckets_and_refusals() -> None:
    assert percentile_from_buckets({}, 95) is None
    assert percentile_from_buckets({0: 10}, 50) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        percentile_from_buckets({1: 1}, 101)
    assert is_refusal("I'm sorry, I can't help with that.") and is_refusal("As an AI, I cannot do that")
    assert not is_refusal("shipping") and not is_refusal(None)
