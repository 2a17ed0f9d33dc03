"""Alert rules: stored with checked metrics, fired, kept fired once, resolved, and evaluated by the watcher."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.monitoring_data import MODEL, fill
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.services import alerts
from workbench.services.watcher import watch
from workbench.store import Store

AFTER = datetime(2026, 11, 9, 12, tzinfo=UTC)  # accuracy 70%, drifted
BEFORE = datetime(2026, 10, 20, 12, tzinfo=UTC)  # accuracy 90%


@pytest.fixture
def filled(store: Store) -> Store:
    fill(store, per_day=200)
    return store


def test_a_rule_fires_stays_fired_once_and_resolves(filled: Store) -> None:
    alerts.create_rule(filled, name="accuracy low", metric="accuracy", threshold=0.8, model_version=MODEL,
                       window_days=3)
    first = alerts.evaluate_rules(filled, AFTER)
    assert first.fired == ["accuracy low"] and first.checked == 1
    [event] = alerts.firing(filled)
    assert event.value is not None and event.value < 0.8 and "accuracy over 3 day(s)" in event.message
    again = alerts.evaluate_rules(filled, AFTER + timedelta(minutes=1))
    assert again.fired == [] and again.still_firing == ["accuracy low"]
    assert [e.id for e in alerts.firing(filled)] == [event.id]  # one open event, not two
    resolved = alerts.evaluate_rules(filled, BEFORE)
    assert resolved.resolved == ["accuracy low"] and alerts.firing(filled) == []
    assert alerts.evaluate_rules(filled, BEFORE).resolved == []  # nothing left to resolve
    [history] = alerts.recent_events(filled)
    assert history.resolved_at is not None


@pytest.mark.parametrize(("metric", "threshold", "comparison", "fires_after"), [
    ("error_rate", 0.5, ">", False),
    ("latency_p95_ms", 100.0, ">", True),
    ("cost_usd", 0.1, ">", True),  # 200 a day at $0.001
    ("volume", 100.0, "<", False),
])
def test_each_metric_is_computed_over_the_window(filled: Store, metric: str, threshold: float, comparison: str,
                                                 fires_after: bool) -> None:
    alerts.create_rule(filled, name=metric, metric=metric, threshold=threshold, comparison=comparison)
    assert bool(alerts.evaluate_rules(filled, AFTER).fired) is fires_after


def test_a_drift_rule_fires_on_a_drift_verdict_only_after_the_change(filled: Store) -> None:
    rule = alerts.create_rule(filled, name="labels moved", metric="drift:label_mix", model_version=MODEL,
                              window_days=7, reference_days=7)
    assert (rule.comparison, rule.threshold) == (">=", 1.0)
    assert alerts.evaluate_rules(filled, datetime(2026, 10, 28, tzinfo=UTC)).fired == []
    assert alerts.evaluate_rules(filled, AFTER).fired == ["labels moved"]


def test_no_data_never_fires(filled: Store) -> None:
    alerts.create_rule(filled, name="accuracy low", metric="accuracy", threshold=0.99)
    assert alerts.evaluate_rules(filled, datetime(2030, 1, 1, tzinfo=UTC)).fired == []


def test_disabled_and_deleted_rules_are_not_evaluated(filled: Store) -> None:
    alerts.create_rule(filled, name="a", metric="volume", threshold=1, comparison=">", enabled=False)
    assert alerts.evaluate_rules(filled, AFTER).checked == 0
    alerts.set_enabled(filled, "a", True)
    assert alerts.evaluate_rules(filled, AFTER).fired == ["a"]
    assert alerts.delete_rule(filled, "a").name == "a"
    assert alerts.list_rules(filled) == [] and alerts.firing(filled) == []


def test_bad_rules_are_refused_with_what_to_change(store: Store) -> None:
    with pytest.raises(InvalidInput, match="choose one of: accuracy"):
        alerts.create_rule(store, name="x", metric="happiness", threshold=1)
    with pytest.raises(InvalidInput, match="needs a threshold"):
        alerts.create_rule(store, name="x", metric="accuracy")
    with pytest.raises(InvalidInput, match="share between 0 and 1"):
        alerts.create_rule(store, name="x", metric="accuracy", threshold=90)
    with pytest.raises(InvalidInput, match="window_days is 0"):
        alerts.create_rule(store, name="x", metric="volume", threshold=1, window_days=0)
    with pytest.raises(InvalidInput, match="comparison"):
        alerts.create_rule(store, name="x", metric="volume", threshold=1, comparison="==")
    with pytest.raises(InvalidInput, match="name"):
        alerts.create_rule(store, name=" ", metric="volume", threshold=1)
    with pytest.raises(InvalidInput, match="control characters"):
        alerts.create_rule(store, name="ctl\x1b[31m\x07\x00end", metric="volume", threshold=1)
    alerts.create_rule(store, name="x", metric="volume", threshold=1)
    with pytest.raises(Conflict, match="exists"):
        alerts.create_rule(store, name="x", metric="volume", threshold=1)
    with pytest.raises(NotFound, match="workbench alerts list"):
        alerts.delete_rule(store, "missing")


def test_the_watcher_evaluates_the_rules(store: Store) -> None:
    today = datetime.now(UTC).date()
    fill(store, days=3, per_day=50, first_day=today - timedelta(days=2), change_day=date(2999, 1, 1))
    alerts.create_rule(store, name="busy", metric="volume", threshold=10, comparison=">")
    rounds = []
    watch(store, once=True, on_round=rounds.append, stop=threading.Event())
    assert [e.rule_name for e in alerts.firing(store)] == ["busy"]
    assert "alert busy: fired" in rounds[0].changed


def test_a_failing_alert_evaluation_is_reported_and_the_watcher_carries_on(store: Store,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    alerts.create_rule(store, name="busy", metric="volume", threshold=10, comparison=">")

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(alerts, "evaluate_rules", broken)
    rounds = []
    watch(store, once=True, on_round=rounds.append)
    assert rounds[0].errors == ["alerts: RuntimeError: disk on fire"]


def test_a_drift_rule_without_a_model_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match=r"metric 'drift:output_length' needs a model version \(--model"):
        alerts.create_rule(store, name="lengths", metric="drift:output_length")
    assert alerts.list_rules(store) == []


def test_alert_messages_write_numbers_for_people(filled: Store) -> None:
    busy = alerts.create_rule(filled, name="busy", metric="volume", threshold=150, comparison=">", window_days=10)
    alerts.create_rule(filled, name="spend", metric="cost_usd", threshold=0.1, comparison=">")
    alerts.evaluate_rules(filled, AFTER)
    messages = sorted(e.message for e in alerts.firing(filled))
    assert messages[0].startswith("cost_usd") and messages[0].endswith(": $0.20 (> $0.10)")
    assert messages[1].startswith("volume") and messages[1].endswith(": 200 (> 150)")
    assert alerts.number_text(42_710.0, "volume") == "42,710" and alerts.number_text(0.8731, "accuracy") == "0.8731"
    assert alerts.describe(busy.model_copy(update={"threshold": 12_000.0})) == "busy: volume over 10 day(s) > 12,000"
