"""Alert rules on monitoring metrics: create, list and delete them, and evaluate them on a schedule.

`evaluate_rules` is what the watcher runs about once a minute. It is idempotent: a rule that breaches
while it has an open event keeps that one event (its latest value is refreshed), a rule that stops
breaching resolves it, and two evaluations at the same moment fire once (one open event per rule,
enforced by m016's unique index, and each rule is decided inside one write).

A metric is computed over the rule's window: the `window_days` days ending on `now`'s day (today's
partial day included), from the rollups. Drift rules (`drift:<signal>`) compare that window with the
`reference_days` days before it and fire while the signal's verdict is drift.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from workbench.domain.access import Permission
from workbench.domain.drift import Verdict
from workbench.domain.monitoring import DRIFT_PREFIX, AlertMetric, Comparison, breaches
from workbench.errors import InvalidInput, NotFound, WorkbenchError
from workbench.services import access, monitoring
from workbench.store import Store
from workbench.store import alerts as rows
from workbench.store.alerts import AlertEvent, AlertRule

MAX_WINDOW_DAYS = 365
MAX_NAME_CHARS = 100
EVALUATE_EVERY_S = 60.0
"""How often the watcher evaluates the rules."""


def metric_names() -> list[str]:
    """Every metric a rule may watch, as the CLI and the page offer them."""
    return [m.value for m in AlertMetric] + [DRIFT_PREFIX + key for key in monitoring.SIGNALS]


def _check(name: str, metric: str, comparison: str, threshold: float, window_days: int, reference_days: int) -> None:
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"name {name!r}: give a rule a name of 1 to {MAX_NAME_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInput(f"name {name!r}: control characters (tabs, line breaks, escapes) cannot be in a rule's name, "
                           "which is printed in terminals and on Home")
    if metric not in metric_names():
        raise InvalidInput(f"metric {metric!r} is not one a rule can watch; choose one of: {', '.join(metric_names())}")
    if comparison not in {c.value for c in Comparison}:
        raise InvalidInput(f"comparison {comparison!r}: use one of {', '.join(c.value for c in Comparison)}")
    if not math.isfinite(threshold):
        raise InvalidInput(f"threshold {threshold!r}: give a finite number")
    if metric in (AlertMetric.ACCURACY, AlertMetric.ERROR_RATE) and not 0 <= threshold <= 1:
        raise InvalidInput(f"threshold {threshold:g}: {metric} is a share between 0 and 1 (write 0.9 for 90%)")
    for field, days in (("window_days", window_days), ("reference_days", reference_days)):
        if not 1 <= days <= MAX_WINDOW_DAYS:
            raise InvalidInput(f"{field} is {days}; use 1 to {MAX_WINDOW_DAYS} days")


def create_rule(store: Store, *, name: str, metric: str, threshold: float | None = None, comparison: str | None = None,
                model_version: str | None = None, task_type: str | None = None, window_days: int = 1,
                reference_days: int = 7, enabled: bool = True) -> AlertRule:
    """Store a rule. Drift rules need no threshold (they fire on the verdict): they default to '>= 1'."""
    access.require(store, Permission.ALERTS_WRITE, action="alert.create", target=f"alert:{name.strip()}")
    if metric not in metric_names():
        raise InvalidInput(f"metric {metric!r} is not one a rule can watch; choose one of: {', '.join(metric_names())}")
    is_drift = metric.startswith(DRIFT_PREFIX)
    if is_drift and not (model_version or "").strip():
        raise InvalidInput(f"metric {metric!r} needs a model version (--model, the model_version your traffic "
                           "logs): drift compares one model's recent traffic with its own past, and a rule "
                           "without one would never measure anything")
    if threshold is None:
        if not is_drift:
            raise InvalidInput(f"metric {metric!r} needs a threshold (--threshold), e.g. 0.9 for accuracy")
        threshold = 1.0
    if comparison is None:
        comparison = Comparison.AT_LEAST.value if is_drift else (
            Comparison.BELOW.value if metric == AlertMetric.ACCURACY else Comparison.ABOVE.value)
    _check(name, metric, comparison, threshold, window_days, reference_days)
    with store.write() as db:
        created = rows.create_rule(db, name=name.strip(), metric=metric, model_version=model_version or None,
                                   task_type=task_type, window_days=window_days, reference_days=reference_days,
                                   comparison=comparison, threshold=threshold, enabled=enabled)
        access.audit(db, "alert.create", f"alert:{created.id}", name=created.name, rule=describe(created))
        return created


def list_rules(store: Store) -> list[AlertRule]:
    access.require(store, Permission.MONITORING_READ, action="monitoring.view", target="alerts")
    with store.connect() as db:
        return rows.list_rules(db)


def delete_rule(store: Store, rule: int | str) -> AlertRule:
    access.require(store, Permission.ALERTS_WRITE, action="alert.delete", target=f"alert:{rule}")
    with store.write() as db:
        found = rows.get_rule(db, rule)
        rows.delete_rule(db, found.id)
        access.audit(db, "alert.delete", f"alert:{found.id}", name=found.name, rule=describe(found))
    return found


def set_enabled(store: Store, rule: int | str, enabled: bool) -> AlertRule:
    action = "alert.enable" if enabled else "alert.disable"
    access.require(store, Permission.ALERTS_WRITE, action=action, target=f"alert:{rule}")
    with store.write() as db:
        found = rows.get_rule(db, rule)
        rows.set_enabled(db, found.id, enabled)
        if found.enabled != enabled:
            access.audit(db, action, f"alert:{found.id}", name=found.name)
        return rows.get_rule(db, found.id)


def firing(store: Store) -> list[AlertEvent]:
    access.require(store, Permission.MONITORING_READ, action="monitoring.view", target="alerts")
    with store.connect() as db:
        return rows.firing(db)


def recent_events(store: Store, *, limit: int = 50) -> list[AlertEvent]:
    access.require(store, Permission.MONITORING_READ, action="monitoring.view", target="alerts")
    with store.connect() as db:
        return rows.recent_events(db, limit=limit)


class Measured(BaseModel):
    value: float | None = Field(description="None when the window has no data for the metric.")
    words: str


def measure(store: Store, rule: AlertRule, now: datetime) -> Measured:
    """Compute a rule's metric over its window ending on `now`'s day."""
    day = now.astimezone(UTC).date().isoformat()
    if rule.metric.startswith(DRIFT_PREFIX):
        key = rule.metric.removeprefix(DRIFT_PREFIX)
        if rule.model_version is None:
            return Measured(value=None, words="a drift rule needs a model version")
        try:
            report = monitoring.measure_drift(store, model_version=rule.model_version, task_type=rule.task_type,
                                              current_days=rule.window_days, reference_days=rule.reference_days,
                                              until_day=day)
        except NotFound:
            return Measured(value=None, words="no predictions")
        found = [s.result for s in report.signals if s.key == key]
        if not found or found[0].verdict is Verdict.NOT_ENOUGH_DATA:
            return Measured(value=None, words=f"{monitoring.SIGNALS[key]}: not enough data")
        return Measured(value=1.0 if found[0].drifted else 0.0, words=found[0].explanation)
    total = monitoring.measure_summary(store, days=rule.window_days, until_day=day, model_version=rule.model_version,
                               task_type=rule.task_type)
    value = {
        AlertMetric.ACCURACY: total.accuracy,
        AlertMetric.ERROR_RATE: total.error_rate,
        AlertMetric.LATENCY_P95_MS: total.p95_ms,
        AlertMetric.COST_USD: total.cost_per_day,
        AlertMetric.VOLUME: total.volume_per_day,
    }[AlertMetric(rule.metric)]
    shown = "no data" if value is None else number_text(value, rule.metric)
    return Measured(value=value, words=f"{rule.metric} over {rule.window_days} day(s) to {day}: {shown}")


class Evaluation(BaseModel):
    """What one evaluation round did."""

    checked: int = 0
    fired: list[str] = Field(default_factory=list)
    resolved: list[str] = Field(default_factory=list)
    still_firing: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


def evaluate_rules(store: Store, now: datetime | None = None) -> Evaluation:
    """Check every enabled rule at `now`: fire the ones that breach, resolve the ones that stopped."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    at = moment.isoformat(timespec="seconds")
    result = Evaluation()
    with store.connect() as db:
        enabled = rows.list_rules(db, enabled_only=True)
    for rule in enabled:
        try:
            measured = measure(store, rule, moment)
        except WorkbenchError as exc:  # one rule's bad scope must not stop the others
            result.errors.append(f"{rule.name}: {exc}")
            continue
        result.checked += 1
        breached = breaches(measured.value, Comparison(rule.comparison), rule.threshold)
        message = measured.words if rule.metric.startswith(DRIFT_PREFIX) else (  # a verdict has no threshold to quote
            f"{measured.words} ({rule.comparison} {number_text(rule.threshold, rule.metric)})")
        with store.write() as db:
            if rows.get_rule_or_none(db, rule.id) is None:
                continue  # deleted while we measured
            event = rows.open_event(db, rule.id)
            if breached and event is None:
                rows.fire(db, rule.id, value=measured.value, message=message, at=at)
                result.fired.append(rule.name)
            elif breached and event is not None:
                rows.touch(db, event.id, value=measured.value, message=message, at=at)
                result.still_firing.append(rule.name)
            elif event is not None:
                rows.resolve(db, event.id, value=measured.value, at=at)
                result.resolved.append(rule.name)
    return result


def number_text(value: float, metric: str) -> str:
    """A measured value or threshold as a person reads it: 42,710 requests, $12.40, 0.873; never 4.271e+04."""
    if metric == AlertMetric.COST_USD:
        return f"${value:,.2f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def describe(rule: AlertRule) -> str:
    """One line for a person."""
    scope = " ".join(filter(None, (rule.model_version and f"model {rule.model_version}",
                                   rule.task_type is not None and f"task {rule.task_type or '(none)'}")))
    target = (f"fires on drift (vs the {rule.reference_days} days before)" if rule.metric.startswith(DRIFT_PREFIX)
              else f"{rule.comparison} {number_text(rule.threshold, rule.metric)}")
    return (f"{rule.name}: {rule.metric} over {rule.window_days} day(s) {target}"
            + (f" for {scope}" if scope else "") + ("" if rule.enabled else " (disabled)"))
