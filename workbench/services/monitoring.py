"""What the Monitoring page and `workbench drift` show: quality over time, latency, errors, volume and drift.

Every chart number comes from the daily rollups (`store.monitoring.totals` / `latency`), so a chart costs
the same at a thousand predictions as at ten million. Drift compares a reference window with the
current one, signal by signal, with the tests in `domain.drift`:

- rates the rollups count exactly (accuracy) use their sums;
- lengths, label mixes, ratings, refusals and invalid JSON need the rows themselves, so they read a
  bounded pseudo-random sample of each window (`SAMPLE_SIZE` rows; the sizes shown are those used);
- the reference may instead be the training data of a registered model (input and output lengths and
  the label mix, read from its frozen dataset version), when the model version names one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, Field

from workbench.domain.access import Permission
from workbench.domain.drift import (
    DEFAULT_SETTINGS,
    DatasetDrift,
    DriftResult,
    DriftSettings,
    categorical_drift,
    dataset_drift,
    numeric_drift,
    rate_drift,
)
from workbench.domain.monitoring import is_refusal, percentile_from_buckets
from workbench.errors import InvalidInput, NotFound
from workbench.services import access
from workbench.store import Store
from workbench.store import monitoring as rollups

SAMPLE_SIZE = 2000
"""Raw rows read per window for the sample-based signals: enough for KS and chi-square to see a real shift,
bounded so a drift check reads the same few thousand rows at any store size."""
HISTOGRAM_VALUES = 2000
"""Values per window kept in a report for the page's reference-vs-current histograms."""
SHORT_LABEL_CHARS = 40
"""Outputs this short (nearly all of them) are treated as labels, so the predicted-label mix is checked."""
SHORT_LABEL_SHARE = 0.9
MAX_LABELS = 30
"""...and only when they take at most this many distinct values: free text that happens to be short is not a label."""
JSON_TASK_SHARE = 0.5
"""A scope whose reference outputs mostly open with `{` or `[` is a JSON task: its invalid-JSON rate is watched."""
TRAINING_REFERENCE_ROWS = 5000
GOOD_RATING = 4
"""Ratings at or above this (on 1-5) count as good in the rating-drift rate."""

SIGNALS: dict[str, str] = {
    "output_length": "output length",
    "input_length": "input length",
    "label_mix": "label mix",
    "predicted_label_mix": "predicted label mix",
    "accuracy": "accuracy",
    "rating": "good-rating rate",
    "refusal_rate": "refusal rate",
    "invalid_json_rate": "invalid-JSON rate",
}
"""Every drift signal, by the key alerts and the CLI use, with the name the page shows."""


# ------------------------------------------------------------------------------------------ series


class DayPoint(BaseModel):
    """One day of one model version and task, from the rollups."""

    day: str
    model_version: str
    task_type: str = Field(description="'' for predictions sent without a task type.")
    predictions: int
    errors: int
    error_rate: float | None
    labelled: int
    correct: int
    accuracy: float | None = Field(description="correct / labelled; None with no labelled prediction.")
    rated: int
    mean_rating: float | None
    mean_confidence: float | None
    p50_ms: float | None
    p95_ms: float | None
    cost_usd: float
    cache_hits: int


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def series(store: Store, *, model_version: str | None = None, task_type: str | None = None,
           since_day: str | None = None, until_day: str | None = None) -> list[DayPoint]:
    """Per day, model version and task: accuracy, quality, latency p50/p95, errors, volume and spend."""
    access.require(store, Permission.MONITORING_READ, action="monitoring.view", target=_target(model_version))
    keys = ("day", "model_version", "task_type")
    scope = {"since_day": since_day, "until_day": until_day, "model_version": model_version, "task_type": task_type}
    with store.connect() as db:
        rows = rollups.totals(db, group_by=keys, **scope)
        buckets = rollups.latency(db, group_by=keys, **scope)
    points = []
    for row in rows:
        counts = buckets.get((row["day"], row["model_version"], row["task_type"]), {})
        points.append(DayPoint(
            day=row["day"], model_version=row["model_version"], task_type=row["task_type"],
            predictions=row["n"], errors=row["n_error"], error_rate=_ratio(row["n_error"], row["n"]),
            labelled=row["n_labelled"], correct=row["n_correct"], accuracy=_ratio(row["n_correct"], row["n_labelled"]),
            rated=row["n_rated"], mean_rating=_ratio(row["sum_rating"], row["n_rated"]),
            mean_confidence=_ratio(row["sum_confidence"], row["n_confidence"]),
            p50_ms=percentile_from_buckets(counts, 50), p95_ms=percentile_from_buckets(counts, 95),
            cost_usd=float(row["sum_cost"]), cache_hits=row["n_cache_hit"],
        ))
    return points


class Summary(BaseModel):
    """Totals over a span of days (the Home page's headline numbers, an alert's value)."""

    since_day: str
    until_day: str
    days: int
    predictions: int
    errors: int
    error_rate: float | None
    labelled: int
    accuracy: float | None
    p50_ms: float | None
    p95_ms: float | None
    cost_usd: float
    cost_per_day: float
    volume_per_day: float


def summary(store: Store, *, days: int, until_day: str | None = None, model_version: str | None = None,
            task_type: str | None = None) -> Summary:
    """Sum the last `days` days up to `until_day` (default today, UTC) from the rollups."""
    access.require(store, Permission.MONITORING_READ, action="monitoring.view", target=_target(model_version))
    return measure_summary(store, days=days, until_day=until_day, model_version=model_version, task_type=task_type)


def measure_summary(store: Store, *, days: int, until_day: str | None = None, model_version: str | None = None,
                    task_type: str | None = None) -> Summary:
    """`summary` without the reader's check: for the alert rules, which the watcher evaluates for everyone."""
    if days < 1:
        raise InvalidInput(f"days is {days}; a window is at least 1 day")
    end = _day(until_day) if until_day else datetime.now(UTC).date()
    start = end - timedelta(days=days - 1)
    scope = {"since_day": start.isoformat(), "until_day": end.isoformat(), "model_version": model_version,
             "task_type": task_type}
    with store.connect() as db:
        found = rollups.totals(db, group_by=(), **scope)
        counts = rollups.latency(db, group_by=(), **scope).get((), {})
    row = found[0] if found else dict.fromkeys(rollups.SUMMED, 0)
    return Summary(
        since_day=start.isoformat(), until_day=end.isoformat(), days=days, predictions=row["n"], errors=row["n_error"],
        error_rate=_ratio(row["n_error"], row["n"]), labelled=row["n_labelled"],
        accuracy=_ratio(row["n_correct"], row["n_labelled"]), p50_ms=percentile_from_buckets(counts, 50),
        p95_ms=percentile_from_buckets(counts, 95), cost_usd=float(row["sum_cost"]),
        cost_per_day=float(row["sum_cost"]) / days, volume_per_day=row["n"] / days,
    )


class ScopeChoice(BaseModel):
    model_version: str
    task_type: str
    predictions: int
    first_day: str
    last_day: str


def choices(store: Store) -> list[ScopeChoice]:
    """Every model version and task with predictions, busiest first: the filters' options."""
    access.require(store, Permission.MONITORING_READ, action="monitoring.view")
    return _choices(store)


def _target(model_version: str | None) -> str:
    return f"model_version:{model_version}" if model_version else ""


def _choices(store: Store) -> list[ScopeChoice]:
    with store.connect() as db:
        return [ScopeChoice(model_version=r["model_version"], task_type=r["task_type"], predictions=r["n"],
                            first_day=r["first_day"], last_day=r["last_day"]) for r in rollups.scopes(db)]


def is_demo(store: Store, model_version: str | None = None) -> bool:
    """Whether the newest predictions (of a model, when named) come from the demo generator."""
    with store.connect() as db:
        return rollups.newest_source(db, model_version) == "demo"


# ------------------------------------------------------------------------------------------- drift


class Window(BaseModel):
    """One side of a drift comparison."""

    kind: str = Field(description="'days' (a span of days) or 'training' (a registered model's dataset version).")
    since_day: str | None = None
    until_day: str | None = Field(default=None, description="Inclusive.")
    predictions: int = Field(0, description="Predictions in the window, from the rollups.")
    label: str = Field(description="How the page names it.")


class SignalDrift(BaseModel):
    """A drift result with the key it is known by and, for numbers, the values behind the histograms."""

    key: str
    result: DriftResult
    reference_values: list[float] = Field(default_factory=list)
    current_values: list[float] = Field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The flat form the CLI prints and the page's table shows."""
        r = self.result
        return {"key": self.key, "signal": r.signal, "method": r.method.value, "statistic": r.statistic,
                "p_value": r.p_value, "threshold": r.threshold, "rule": r.rule, "verdict": r.verdict.value,
                "reference_size": r.reference_size, "current_size": r.current_size, "explanation": r.explanation}


class DriftReport(BaseModel):
    model_version: str
    task_type: str | None
    reference: Window
    current: Window
    signals: list[SignalDrift]
    overall: DatasetDrift
    demo: bool
    notes: list[str] = Field(default_factory=list, description="Signals left out, and why.")

    def payload(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "task_type": self.task_type,
                "reference": self.reference.model_dump(), "current": self.current.model_dump(),
                "signals": [s.row() for s in self.signals], "overall": self.overall.model_dump(mode="json"),
                "demo": self.demo, "notes": self.notes}


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def _next_day(day: str) -> str:
    return (_day(day) + timedelta(days=1)).isoformat()


def last_day(store: Store, model_version: str, task_type: str | None = None) -> str | None:
    """The newest day with predictions for a model (and task): where a current window ends by default."""
    days = [c.last_day for c in _choices(store)
            if c.model_version == model_version and (task_type is None or c.task_type == task_type)]
    return max(days) if days else None


def drift(store: Store, *, model_version: str, task_type: str | None = None, current_days: int = 7,
          reference_days: int = 7, until_day: str | None = None, reference_since: str | None = None,
          reference_until: str | None = None, reference_training: bool = False, label_tag: str | None = None,
          sample_size: int = SAMPLE_SIZE, settings: DriftSettings = DEFAULT_SETTINGS) -> DriftReport:
    """Compare every monitored signal of a model version (and task) between a reference and the current window.

    The current window is the `current_days` days ending `until_day` (default: the model's newest day with
    data). The reference is, in order of precedence: the model's training data (`reference_training`), the
    days `reference_since`..`reference_until`, or the `reference_days` days just before the current window.
    `label_tag` reads the label mix from that key of dict tags instead of `ground_truth`.
    """
    access.require(store, Permission.MONITORING_READ, action="drift.check", target=_target(model_version))
    return measure_drift(store, model_version=model_version, task_type=task_type, current_days=current_days,
                         reference_days=reference_days, until_day=until_day, reference_since=reference_since,
                         reference_until=reference_until, reference_training=reference_training,
                         label_tag=label_tag, sample_size=sample_size, settings=settings)


def measure_drift(store: Store, *, model_version: str, task_type: str | None = None, current_days: int = 7,
                  reference_days: int = 7, until_day: str | None = None, reference_since: str | None = None,
                  reference_until: str | None = None, reference_training: bool = False, label_tag: str | None = None,
                  sample_size: int = SAMPLE_SIZE, settings: DriftSettings = DEFAULT_SETTINGS) -> DriftReport:
    """`drift` without the reader's check: for the alert rules, which the watcher evaluates for everyone."""
    if current_days < 1 or reference_days < 1:
        raise InvalidInput(f"--current-days is {current_days} and --reference-days {reference_days}; "
                           "each window is at least 1 day")
    if sample_size < 30:
        raise InvalidInput(f"sample_size is {sample_size}; drift needs at least 30 rows a side")
    end = until_day or last_day(store, model_version, task_type)
    if end is None:
        scope = f"model version {model_version!r}" + (f" and task {task_type!r}" if task_type is not None else "")
        raise NotFound(f"no predictions for {scope}; `workbench drift` compares windows of stored predictions "
                       "(send some through the API, workbench.track or `workbench predictions import`)")
    current_start = (_day(end) - timedelta(days=current_days - 1)).isoformat()
    if reference_since or reference_until:
        if not (reference_since and reference_until):
            raise InvalidInput("a reference date range needs both a start and an end day (YYYY-MM-DD)")
        if _day(reference_since) > _day(reference_until):
            raise InvalidInput(f"the reference range starts ({reference_since}) after it ends ({reference_until})")
        ref_start, ref_end = _day(reference_since).isoformat(), _day(reference_until).isoformat()
    else:
        ref_end = (_day(current_start) - timedelta(days=1)).isoformat()
        ref_start = (_day(ref_end) - timedelta(days=reference_days - 1)).isoformat()
    with store.connect() as db:
        current_total = _window_totals(db, model_version, task_type, current_start, end)
        current_rows = _sample(db, model_version, task_type, current_start, end, current_total, sample_size)
        current_rated = _sample(db, model_version, task_type, current_start, end, current_total, sample_size,
                                rated=True)
        if reference_training:
            reference, ref_values = _training_reference(db, model_version, sample_size)
            ref_total: dict[str, Any] = {}
            ref_rows: list[dict[str, Any]] = []
            ref_rated: list[dict[str, Any]] = []
        else:
            ref_total = _window_totals(db, model_version, task_type, ref_start, ref_end)
            ref_rows = _sample(db, model_version, task_type, ref_start, ref_end, ref_total, sample_size)
            ref_rated = _sample(db, model_version, task_type, ref_start, ref_end, ref_total, sample_size, rated=True)
            reference = Window(kind="days", since_day=ref_start, until_day=ref_end, predictions=ref_total.get("n", 0),
                               label=f"{ref_start} to {ref_end}")
            ref_values = None
        demo = rollups.newest_source(db, model_version) == "demo"
    current = Window(kind="days", since_day=current_start, until_day=end, predictions=current_total.get("n", 0),
                     label=f"{current_start} to {end}")
    signals, notes = _signals(ref_rows, current_rows, ref_rated, current_rated, ref_total, current_total,
                              ref_values, label_tag, settings)
    return DriftReport(model_version=model_version, task_type=task_type, reference=reference, current=current,
                       signals=signals, overall=dataset_drift([s.result for s in signals]), demo=demo, notes=notes)


def _window_totals(db: Any, model_version: str, task_type: str | None, since: str, until: str) -> dict[str, Any]:
    found = rollups.totals(db, group_by=(), since_day=since, until_day=until, model_version=model_version,
                           task_type=task_type)
    return found[0] if found else {}


def _sample(db: Any, model_version: str, task_type: str | None, since: str, until: str, total: dict[str, Any],
            size: int, *, rated: bool = False) -> list[dict[str, Any]]:
    expected = int(total.get("n_rated" if rated else "n") or 0)
    return rollups.sample(db, since=since, until=_next_day(until), expected=expected, limit=size,
                          model_version=model_version, task_type=task_type, rated_only=rated)


class _TrainingValues(BaseModel):
    input_lengths: list[float]
    output_lengths: list[float]
    labels: list[str]


def _training_reference(db: Any, model_version: str, size: int) -> tuple[Window, _TrainingValues]:
    """Input and output lengths (and labels) of the training split a registered model was trained on."""
    from workbench.store import datasets as dataset_rows
    from workbench.store import models as model_rows
    from workbench.store import versions as version_rows

    try:
        model = model_rows.get_model(db, model_version)
    except NotFound:
        raise NotFound(f"model version {model_version!r} is not a registered model, so it has no training data "
                       "to compare with; use a reference window of days instead") from None
    if not model.dataset_name or not model.version:
        raise NotFound(f"model {model.name!r} does not record the dataset version it was trained on; "
                       "use a reference window of days instead")
    dataset_id = dataset_rows.dataset_id(db, model.dataset_name)
    version = version_rows.get_version(db, dataset_id, model.version)
    values = _TrainingValues(input_lengths=[], output_lengths=[], labels=[])
    from workbench.domain.example import Split

    for example in version_rows.iter_version_examples(db, version.id, Split.TRAIN):
        users = [m.content for m in example.messages if m.role == "user"]
        answers = [m.content for m in example.messages if m.role == "assistant"]
        if users:
            values.input_lengths.append(float(len(users[-1])))
        if answers:
            values.output_lengths.append(float(len(answers[-1])))
            values.labels.append(answers[-1].strip())
        if len(values.output_lengths) >= max(size, TRAINING_REFERENCE_ROWS):
            break
    window = Window(kind="training", label=f"training data: {model.dataset_name} {model.version} (train split)",
                    predictions=0)
    return window, values


def _numbers(rows: Iterable[dict[str, Any]], column: str) -> list[float]:
    return [float(r[column]) for r in rows if r[column] is not None]


def _label(row: dict[str, Any], tag: str | None) -> str | None:
    if tag is None:
        return row["ground_truth"]
    tags = orjson.loads(row["tags"] or "[]")
    value = tags.get(tag) if isinstance(tags, dict) else None
    return None if value is None else str(value)


def _short_outputs(rows: list[dict[str, Any]]) -> bool:
    heads = [r["output_head"] for r in rows if r["output_head"] is not None]
    return (bool(heads) and sum(len(h) <= SHORT_LABEL_CHARS for h in heads) / len(heads) >= SHORT_LABEL_SHARE
            and len(set(heads)) <= MAX_LABELS)


def _signals(ref: list[dict[str, Any]], cur: list[dict[str, Any]], ref_rated: list[dict[str, Any]],
             cur_rated: list[dict[str, Any]], ref_total: dict[str, Any], cur_total: dict[str, Any],
             training: _TrainingValues | None, label_tag: str | None,
             settings: DriftSettings) -> tuple[list[SignalDrift], list[str]]:
    found: list[SignalDrift] = []
    notes: list[str] = []

    def numeric(key: str, reference: list[float], current: list[float]) -> None:
        result = numeric_drift(SIGNALS[key], reference, current, settings)
        found.append(SignalDrift(key=key, result=result, reference_values=_thin(reference),
                                 current_values=_thin(current)))

    numeric("output_length", training.output_lengths if training else _numbers(ref, "output_chars"),
            _numbers(cur, "output_chars"))
    numeric("input_length", training.input_lengths if training else _numbers(ref, "input_chars"),
            _numbers(cur, "input_chars"))
    ref_labels = training.labels if training else [_label(r, label_tag) for r in ref]
    cur_labels = [_label(r, label_tag) for r in cur]
    if any(v is not None for v in ref_labels) or any(v is not None for v in cur_labels):
        name = SIGNALS["label_mix"] if label_tag is None else f"tag '{label_tag}' mix"
        found.append(SignalDrift(key="label_mix", result=categorical_drift(name, ref_labels, cur_labels, settings)))
    else:
        notes.append("label mix: no ground truth" + (f" or tag {label_tag!r}" if label_tag else "")
                     + " in either window")
    if training:
        notes.append("accuracy, ratings, refusals and JSON validity are compared only between windows of predictions")
        return found, notes
    if _short_outputs(ref) and _short_outputs(cur):
        found.append(SignalDrift(key="predicted_label_mix", result=categorical_drift(
            SIGNALS["predicted_label_mix"], [r["output_head"] for r in ref], [r["output_head"] for r in cur], settings)))
    found.append(SignalDrift(key="accuracy", result=rate_drift(
        SIGNALS["accuracy"], int(ref_total.get("n_correct") or 0), int(ref_total.get("n_labelled") or 0),
        int(cur_total.get("n_correct") or 0), int(cur_total.get("n_labelled") or 0), settings)))
    good = [sum(r["rating"] >= GOOD_RATING for r in rows) for rows in (ref_rated, cur_rated)]
    found.append(SignalDrift(key="rating", result=rate_drift(
        SIGNALS["rating"], good[0], len(ref_rated), good[1], len(cur_rated), settings)))
    with_output = [[r for r in rows if r["output_head"] is not None] for rows in (ref, cur)]
    refusals = [sum(is_refusal(r["output_head"]) for r in rows) for rows in with_output]
    found.append(SignalDrift(key="refusal_rate", result=rate_drift(
        SIGNALS["refusal_rate"], refusals[0], len(with_output[0]), refusals[1], len(with_output[1]), settings)))
    looks_json = [r for r in with_output[0] if r["output_looks_json"]]
    if with_output[0] and len(looks_json) / len(with_output[0]) >= JSON_TASK_SHARE:
        invalid = [sum(not r["output_json_valid"] for r in rows) for rows in with_output]
        found.append(SignalDrift(key="invalid_json_rate", result=rate_drift(
            SIGNALS["invalid_json_rate"], invalid[0], len(with_output[0]), invalid[1], len(with_output[1]), settings)))
    else:
        notes.append("invalid-JSON rate: the reference outputs are not JSON, so this task is not checked")
    return found, notes


def _thin(values: list[float]) -> list[float]:
    """Keep at most HISTOGRAM_VALUES values, evenly spaced, for the page's histograms."""
    if len(values) <= HISTOGRAM_VALUES:
        return values
    step = len(values) / HISTOGRAM_VALUES
    return [values[math.floor(i * step)] for i in range(HISTOGRAM_VALUES)]
