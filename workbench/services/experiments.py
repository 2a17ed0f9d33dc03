"""A/B tests of model versions and template versions: define, run, assign, analyse, decide.

A variant's traffic is the predictions logged with `experiment_id` = the experiment's id (as text)
and `variant` = its name. Assignment is the pure hash in `domain.assignment` (sticky without
storage). The metric numbers come from `prediction_daily` sums, so they cost the same at a million
predictions as at a thousand; distinct units (for the sample-ratio check) come from the m018
covering index. Metrics are analysed per prediction (each labelled prediction is a trial of
`correct`, each latency a value of `latency_ms`) while units are what was randomised; with many
predictions per user this treats a user's predictions as independent, which narrows the
intervals somewhat (docs/experiments.md says more).
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, Field

from workbench.domain import ab_stats
from workbench.domain.ab_stats import ExperimentAnalysis, MeanArm, Outcome, RateArm, SrmResult
from workbench.domain.access import Permission
from workbench.domain.assignment import assign, normalise_weights
from workbench.domain.predictions import latency_bucket, utc_text
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.services import access
from workbench.store import Store
from workbench.store import experiments as rows
from workbench.store import models as model_rows
from workbench.store import predictions as prediction_rows
from workbench.store import templates as template_rows
from workbench.store.experiments import ExperimentRow

UNITS = ("user", "session", "request")
STATES = ("draft", "running", "stopped", "shipped")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_VARIANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
MAX_VARIANTS = 10
MAX_WEIGHT = 1_000_000
"""Weights are relative shares; a bigger one is a typo, and huge ones overflow the sum that normalises them."""
BARE_KINDS = ("model", "template")
"""Target kinds that need an id after them: `model` alone is what `a=model:1` parses to."""
PRODUCTION = "production"


class Metric(BaseModel):
    """A prediction field an experiment can be judged on, and the `prediction_daily` columns that sum it."""

    name: str
    kind: ab_stats.MetricKind
    higher_is_better: bool
    count: str = Field(description="Rollup column: predictions that carry a value.")
    total: str = Field(description="Rollup column: conversions (rates) or the sum of values (means).")
    squares: str | None = None
    label: str
    observed: str = Field(description="What one observation is, plural: the predictions that carry the metric.")


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric(name="correct", kind=ab_stats.MetricKind.RATE, higher_is_better=True, count="n_labelled", total="n_correct",
           label="accuracy (share of labelled predictions correct)", observed="labelled predictions"),
    Metric(name="latency_ms", kind=ab_stats.MetricKind.MEAN, higher_is_better=False, count="n_latency",
           total="sum_latency", squares="sum_latency_sq", label="mean latency (ms)", observed="predictions with a latency"),
    Metric(name="cost_usd", kind=ab_stats.MetricKind.MEAN, higher_is_better=False, count="n_costed", total="sum_cost",
           squares="sum_cost_sq", label="mean cost per prediction (USD)", observed="priced predictions"),
    Metric(name="rating", kind=ab_stats.MetricKind.MEAN, higher_is_better=True, count="n_rated", total="sum_rating",
           squares="sum_rating_sq", label="mean rating (1-5)", observed="rated predictions"),
    Metric(name="error", kind=ab_stats.MetricKind.RATE, higher_is_better=False, count="n", total="n_error",
           label="error rate (share of predictions that failed)", observed="predictions"),
)}


class Decision(StrEnum):
    SHIP = "ship"
    STOP = "stop"


class VariantIn(BaseModel):
    name: str
    target: str
    weight: float = 1.0


# ------------------------------------------------------------------------------------------ defining


def parse_variant(text: str) -> VariantIn:
    """Read `NAME=TARGET:WEIGHT` (the weight optional; the target may hold ':' itself, as in `model:3`)."""
    name, equals, rest = text.partition("=")
    if not equals or not name.strip() or not rest.strip():
        raise InvalidInput(f"--variant {text!r}: write NAME=TARGET:WEIGHT, e.g. control=model:3:50 or "
                           "treatment=support@4:50")
    target, colon, weight = rest.rpartition(":")
    try:
        if colon and target:
            return VariantIn(name=name.strip(), target=target.strip(), weight=float(weight))
    except ValueError:
        pass
    return VariantIn(name=name.strip(), target=rest.strip(), weight=1.0)


def _check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"name {name!r}: use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter "
                           "or digit")
    return name


def _check_metric(metric: str, field: str) -> Metric:
    if metric not in METRICS:
        raise InvalidInput(f"{field} {metric!r} is not a metric; use one of {', '.join(METRICS)} "
                           "(correct and error as rates; latency_ms, cost_usd and rating as means)")
    return METRICS[metric]


def _check_target(db: Any, target: str, field: str, variant: str = "") -> None:
    """Refuse a target that names a registered model or template version that is not there, and a bare kind
    (`model`, `template`): `a=model:1` reads as target "model" with weight 1, a test of nothing."""
    if not target or len(target) > 500:
        raise InvalidInput(f"{field} is empty or too long: give `model:ID`, a model_version, or a template `NAME@V`")
    if target.lower() in BARE_KINDS:
        raise InvalidInput(f"{field} {target!r} for {variant!r} names a kind but no id: write {variant}=model:ID:WEIGHT "
                           f"(e.g. {variant}=model:3:50) or {variant}=NAME@V:WEIGHT for a template version; after "
                           "`model:` the last number is the weight, so `model:1` alone means model with weight 1")
    if target.startswith("model:"):
        ref = target.removeprefix("model:")
        try:
            model_rows.get_model(db, ref)
        except NotFound:
            raise InvalidInput(f"{field} {target!r}: no registered model {ref!r}; `workbench models list` shows "
                               "them (or give the model_version string your traffic logs)") from None
        return
    if "@" in target:
        name, _, version = target.rpartition("@")
        template = template_rows.find_template(db, name)
        if template is None:
            raise InvalidInput(f"{field} {target!r}: no template named {name!r}; `workbench templates list` shows them")
        if not (version.isdigit() and template_rows.get_version(db, template.id, int(version)) is not None):
            raise InvalidInput(f"{field} {target!r}: template {name!r} has no version {version!r}; give a version "
                               "number that exists, e.g. " + f"{name}@1")


def _check_distinct_targets(variants: list[VariantIn]) -> None:
    """Two variants serving the same target compare a thing with itself: refuse it, naming both."""
    first: dict[str, str] = {}
    for variant in variants:
        target = variant.target.strip()
        if target in first:
            raise InvalidInput(f"variants {first[target]!r} and {variant.name!r} both target {target!r}; each variant "
                               "needs its own model or template version")
        first[target] = variant.name


def _check_variants(db: Any, variants: list[VariantIn]) -> list[dict[str, Any]]:
    if not 2 <= len(variants) <= MAX_VARIANTS:
        raise InvalidInput(f"variants: an experiment needs a control and at least one treatment, at most "
                           f"{MAX_VARIANTS} in all; got {len(variants)}")
    seen: set[str] = set()
    for index, variant in enumerate(variants):
        field = f"variants[{index}]"
        if not _VARIANT.fullmatch(variant.name):
            raise InvalidInput(f"{field}.name {variant.name!r}: use 1 to 40 letters, digits, '.', '_' or '-'")
        if variant.name in seen:
            raise InvalidInput(f"{field}.name {variant.name!r} repeats; each variant needs its own name")
        seen.add(variant.name)
        if not (math.isfinite(variant.weight) and variant.weight > 0):
            raise InvalidInput(f"{field}.weight {variant.weight!r} for {variant.name!r}: weights must be positive "
                               "numbers (50 and 50, or 0.9 and 0.1)")
        if variant.weight > MAX_WEIGHT:
            raise InvalidInput(f"{field}.weight {variant.weight:g} for {variant.name!r} is above {MAX_WEIGHT:,}; "
                               "weights are relative shares (50 and 50, or 0.9 and 0.1)")
        _check_target(db, variant.target.strip(), f"{field}.target", variant.name)
    _check_distinct_targets(variants)
    normalise_weights({v.name: v.weight for v in variants})
    return [{"name": v.name, "target": v.target.strip(), "weight": v.weight} for v in variants]


def create(store: Store, name: str, variants: list[VariantIn], *, metric: str = "correct",
           guard_metrics: list[str] | None = None, unit: str = "user", seed: str | None = None,
           task: str | None = None, description: str = "", demo: bool = False) -> ExperimentRow:
    """Define an experiment in draft; the first variant is control. The seed defaults to the name."""
    access.require(store, Permission.EXPERIMENTS_WRITE, action="experiment.create", target=f"experiment:{name}")
    name = _check_name(name)
    _check_metric(metric, "metric")
    guards = list(dict.fromkeys(guard_metrics or []))
    for guard in guards:
        _check_metric(guard, "guard metric")
    guards = [g for g in guards if g != metric]
    if unit not in UNITS:
        raise InvalidInput(f"unit {unit!r}: randomise by one of {', '.join(UNITS)}")
    seed = name if seed is None else seed.strip()
    if not seed:
        raise InvalidInput("seed is empty: leave it out to use the experiment's name")
    with store.write() as db:
        checked = _check_variants(db, variants)
        task = _task_for(db, checked, (task or "").strip() or None)
        if rows.find(db, name) is not None:
            raise Conflict(f"name {name!r}: an experiment with that name exists; pick another name")
        new_id = rows.insert(db, name=name, description=description, seed=seed, unit=unit, variants=checked,
                             metric=metric, guard_metrics=guards, task=task, demo=demo)
        access.audit(db, "experiment.create", f"experiment:{new_id}", name=name, metric=metric,
                     variants={v["name"]: v["target"] for v in checked})
        return _get(db, new_id)


def _task_for(db: Any, variants: list[dict[str, Any]], task: str | None) -> str | None:
    """The task shipping activates a registered model for: the one given, else the first registered model's.

    Asked at creation, so a test of `model:3` with no task cannot run for weeks and then fail to ship.
    """
    if task is not None:
        return task
    registered = []
    for index, variant in enumerate(variants):
        target = variant["target"]
        if "@" in target and not target.startswith("model:"):
            continue
        try:
            registered.append((index, model_rows.get_model(db, target.removeprefix("model:"))))
        except NotFound:
            continue
    for _, model in registered:
        if model.task:
            return model.task
    if registered:
        index, model = registered[0]
        raise InvalidInput(f"task is empty and variants[{index}].target {variants[index]['target']!r} (model "
                           f"{model.name!r}) has no task: give the task shipping should activate the model for")
    return None


def _get(db: Any, experiment_id: int) -> ExperimentRow:
    found = rows.get(db, experiment_id) if 0 <= experiment_id < 2**63 else None
    if found is None:
        raise NotFound(f"no experiment {experiment_id}; `workbench experiments list` shows them")
    return found


def _may_read(store: Store, experiment_id: int | None = None) -> None:
    access.require(store, Permission.EXPERIMENTS_READ, action="experiment.view",
                   target="" if experiment_id is None else f"experiment:{experiment_id}")


def get(store: Store, experiment_id: int) -> ExperimentRow:
    _may_read(store, experiment_id)
    with store.connect() as db:
        return _get(db, experiment_id)


def list_experiments(store: Store) -> list[ExperimentRow]:
    _may_read(store)
    with store.connect() as db:
        return rows.list_all(db)


def start(store: Store, experiment_id: int) -> ExperimentRow:
    """Start (or restart) sending traffic: a draft or stopped experiment runs."""
    access.require(store, Permission.EXPERIMENTS_WRITE, action="experiment.start", target=f"experiment:{experiment_id}")
    with store.write() as db:
        found = _get(db, experiment_id)
        if found.decision is not None:
            raise Conflict(f"experiment {experiment_id} {_decided(found)}; define a new experiment")
        rows.set_state(db, experiment_id, "running")
        access.audit(db, "experiment.start", f"experiment:{experiment_id}", name=found.name, was=found.state)
        return _get(db, experiment_id)


def stop(store: Store, experiment_id: int) -> ExperimentRow:
    """Stop assigning units; results stay and a decision can still be recorded."""
    access.require(store, Permission.EXPERIMENTS_WRITE, action="experiment.stop", target=f"experiment:{experiment_id}")
    with store.write() as db:
        found = _get(db, experiment_id)
        if found.state != "running":
            raise Conflict(f"experiment {experiment_id} is {found.state}, not running; nothing to stop")
        rows.set_state(db, experiment_id, "stopped")
        access.audit(db, "experiment.stop", f"experiment:{experiment_id}", name=found.name)
        return _get(db, experiment_id)


# ------------------------------------------------------------------------------------------ assignment


class Assignment(BaseModel):
    experiment_id: int
    unit: str = Field(description="The unit id asked about.")
    variant: str
    target: str = Field(description="What the variant serves: `model:ID`, a model_version, or `NAME@V`.")


def _decided(experiment: ExperimentRow) -> str:
    """`was shipped (treatment) on 30 Nov 2026` or `was stopped (control kept) on ...`, for messages."""
    day = _day_text(experiment.decided_at or experiment.stopped_at)
    if experiment.decision == Decision.SHIP:
        return f"was shipped ({experiment.decided_variant}){day}"
    return f"was stopped ({experiment.control} kept){day}"


def _day_text(stamp: str | None) -> str:
    if not stamp:
        return ""
    try:
        return " on " + datetime.fromisoformat(stamp).strftime("%d %b %Y").lstrip("0")
    except ValueError:
        return ""


def why_not_assignable(experiment: ExperimentRow) -> str | None:
    """Why units cannot be assigned now, with the step that fits the state; None while it runs.

    A decided test cannot run again (`start` refuses it), so only an undecided one is told to start.
    """
    if experiment.state == "running":
        return None
    if experiment.decision is not None:
        return f"experiment {experiment.id} {_decided(experiment)}; define a new experiment to test again"
    verb = "restart" if experiment.state == "stopped" else "start"
    return (f"experiment {experiment.id} is {experiment.state}, not running; {verb} it "
            f"(`workbench experiments start {experiment.id}`) before assigning units")


def assignment(store: Store, experiment_id: int, unit: str) -> Assignment:
    """The variant a unit sees: the same every time for the same experiment, unit and weights."""
    if not isinstance(unit, str) or not unit.strip():
        raise InvalidInput("unit is empty: give the id of what is randomised (a user or session id)")
    with store.connect() as db:  # the serving path: whoever may call it (the API decides) may be assigned
        found = _get(db, experiment_id)
    reason = why_not_assignable(found)
    if reason is not None:
        raise Conflict(reason)
    variant = assign(found.seed, unit, found.weights)
    assert variant is not None  # coverage is 1: every unit is in the experiment
    target = next(v.target for v in found.variants if v.name == variant)
    return Assignment(experiment_id=experiment_id, unit=unit, variant=variant, target=target)


# ------------------------------------------------------------------------------------------ analysis


class VariantSummary(BaseModel):
    name: str
    target: str
    weight: float
    units: int = Field(description="Distinct units seen (predictions when the unit is the request).")
    predictions: int
    observations: int = Field(description="Predictions carrying the primary metric (labelled ones for `correct`).")
    conversions: int | None = None
    rate: float | None = None
    mean: float | None = None
    sd: float | None = None


class MetricResult(BaseModel):
    metric: str
    label: str
    kind: ab_stats.MetricKind
    higher_is_better: bool
    analysis: ExperimentAnalysis

    @property
    def harmed(self) -> list[str]:
        """Treatments significantly worse than control on this metric."""
        return [c.treatment for c in self.analysis.comparisons if c.outcome is Outcome.WORSE]


class SeriesPoint(BaseModel):
    day: str
    variant: str
    units: int = Field(description="Cumulative distinct units to this day.")
    observations: int = Field(description="Cumulative predictions carrying the metric.")
    value: float | None = Field(description="Cumulative rate or mean to this day.")


class ExperimentResults(BaseModel):
    experiment: ExperimentRow
    variants: list[VariantSummary]
    primary: MetricResult
    guards: list[MetricResult]
    srm: SrmResult
    srm_p_value: float | None
    p_value: float | None = Field(description="First treatment against control (every pair is in `primary`).")
    ci_low: float | None
    ci_high: float | None
    prob_to_beat_control: float | None
    winner: str | None = Field(description="A treatment better on the primary metric and harming no guard metric.")
    headline: str
    series: list[SeriesPoint]


def _sum(day_rows: list[dict[str, Any]], column: str) -> float:
    return math.fsum(r[column] or 0 for r in day_rows)


def _arm(metric: Metric, name: str, day_rows: list[dict[str, Any]]) -> RateArm | MeanArm:
    count = int(_sum(day_rows, metric.count))
    if metric.kind is ab_stats.MetricKind.RATE:
        return RateArm(name=name, units=count, conversions=int(_sum(day_rows, metric.total)))
    assert metric.squares is not None
    return MeanArm.from_sums(name, count, _sum(day_rows, metric.total), _sum(day_rows, metric.squares))


def _analyse(metric: Metric, experiment: ExperimentRow, by_variant: dict[str, list[dict[str, Any]]]) -> MetricResult:
    arms = [_arm(metric, v.name, by_variant.get(v.name, [])) for v in experiment.variants]
    if metric.kind is ab_stats.MetricKind.RATE:
        analysis = ab_stats.analyze_rates([a for a in arms if isinstance(a, RateArm)], experiment.weights,
                                          higher_is_better=metric.higher_is_better)
    else:
        analysis = ab_stats.analyze_means([a for a in arms if isinstance(a, MeanArm)], experiment.weights,
                                          higher_is_better=metric.higher_is_better)
    return MetricResult(metric=metric.name, label=metric.label, kind=metric.kind,
                        higher_is_better=metric.higher_is_better, analysis=analysis)


def analyze(store: Store, experiment_id: int) -> ExperimentResults:
    """Everything the results view shows, from the rollups and the units index."""
    _may_read(store, experiment_id)
    with store.connect() as db:
        experiment = _get(db, experiment_id)
        daily = rows.daily_sums(db, str(experiment.id))
        exposures = [] if experiment.unit == "request" else rows.first_exposures(db, str(experiment.id))
    by_variant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in daily:
        by_variant[row["variant"]].append(row)
    primary_metric = METRICS[experiment.metric]
    primary = _analyse(primary_metric, experiment, by_variant)
    guards = [_analyse(METRICS[g], experiment, by_variant) for g in experiment.guard_metrics if g in METRICS]
    if experiment.unit == "request":
        units = {v.name: int(_sum(by_variant.get(v.name, []), "n")) for v in experiment.variants}
    else:
        units = dict.fromkeys(experiment.weights, 0)
        for variant, _, count in exposures:
            if variant in units:
                units[variant] += count
    srm = ab_stats.srm_check(units, experiment.weights)
    variants = [_summary(v, units[v.name], by_variant.get(v.name, []), primary)
                for v in experiment.variants]
    first = primary.analysis.comparisons[0]
    winner = _winner(primary, guards)
    return ExperimentResults(
        experiment=experiment, variants=variants, primary=primary, guards=guards, srm=srm,
        srm_p_value=srm.p_value, p_value=first.p_value, ci_low=first.ci_low, ci_high=first.ci_high,
        prob_to_beat_control=first.prob_to_beat_control, winner=winner,
        headline=_headline(experiment, primary, srm, winner),
        series=_series(experiment, primary_metric, daily, exposures, experiment.unit == "request"),
    )


def _summary(variant: Any, units: int, day_rows: list[dict[str, Any]], primary: MetricResult) -> VariantSummary:
    result = next(r for r in primary.analysis.variants if r.name == variant.name)
    return VariantSummary(name=variant.name, target=variant.target, weight=variant.weight, units=units,
                          predictions=int(_sum(day_rows, "n")), observations=result.units,
                          conversions=result.conversions, rate=result.rate, mean=result.mean, sd=result.sd)


def _winner(primary: MetricResult, guards: list[MetricResult]) -> str | None:
    harmed = {name for guard in guards for name in guard.harmed}
    better = [c for c in primary.analysis.comparisons if c.outcome is Outcome.BETTER and c.treatment not in harmed]
    if not better:
        return None
    return max(better, key=lambda c: abs(c.difference or 0)).treatment


def _headline(experiment: ExperimentRow, primary: MetricResult, srm: SrmResult, winner: str | None) -> str:
    if srm.mismatch:
        return "Sample ratio mismatch: results not trustworthy"
    if experiment.decision == Decision.SHIP:
        return f"Shipped {experiment.decided_variant}"
    if experiment.decision == Decision.STOP:
        return "Stopped, control kept"
    if winner:
        return f"{winner} wins on {primary.metric}"
    outcomes = {c.outcome for c in primary.analysis.comparisons}
    if outcomes == {Outcome.NOT_ENOUGH_DATA}:
        return "Not enough data yet"
    if Outcome.BETTER in outcomes:
        return "Better on the metric, but a guard metric got worse"
    if Outcome.WORSE in outcomes:
        return f"Treatment worse than {experiment.control} on {primary.metric}"
    return "No clear difference yet"


def _series(experiment: ExperimentRow, metric: Metric, daily: list[dict[str, Any]],
            exposures: list[tuple[str, str, int]], by_request: bool) -> list[SeriesPoint]:
    new_units: dict[tuple[str, str], int] = defaultdict(int)
    for variant, day, count in exposures:
        new_units[(variant, day)] += count
    sums: dict[tuple[str, str], dict[str, Any]] = {(r["variant"], r["day"]): r for r in daily}
    days = sorted({r["day"] for r in daily} | {d for _, d, _ in exposures})
    points: list[SeriesPoint] = []
    for variant in experiment.variants:
        units = count = 0
        total = squares = 0.0
        for day in days:
            row = sums.get((variant.name, day), {})
            units += int(row.get("n") or 0) if by_request else new_units.get((variant.name, day), 0)
            count += int(row.get(metric.count) or 0)
            total += float(row.get(metric.total) or 0)
            squares += float(row.get(metric.squares) or 0) if metric.squares else 0.0
            points.append(SeriesPoint(day=day, variant=variant.name, units=units, observations=count,
                                      value=total / count if count else None))
    return points


def sample_size_text(results: ExperimentResults, needed: ab_stats.SampleSize) -> str:
    """The calculator's answer in what it counts: observations of the metric (labelled predictions for
    `correct`), not the randomised units, since the metric is analysed per prediction."""
    observed = METRICS[results.primary.metric].observed
    return needed.explanation.replace("units per variant", f"{observed} per variant", 1)


def sample_size(results: ExperimentResults, mde: float, *, relative: bool = False) -> ab_stats.SampleSize:
    """Observations (`units_per_variant` in the statistics) each variant needs to detect `mde` on the primary metric, from control's observed rate or spread."""
    control = results.variants[0]
    if results.primary.kind is ab_stats.MetricKind.RATE:
        if control.rate is None or not 0 < control.rate < 1:
            raise InvalidInput(f"control's rate is {control.rate!r}; the calculator needs a rate strictly between "
                               "0 and 1 (enter a baseline yourself)")
        return ab_stats.sample_size_rates(control.rate, mde, relative=relative)
    if not control.sd:
        raise InvalidInput("control has no spread yet (fewer than 2 values); enter a standard deviation yourself")
    return ab_stats.sample_size_means(control.sd, mde * (control.mean or 0) if relative else mde)


# ------------------------------------------------------------------------------------------ deciding


def decide(store: Store, experiment_id: int, *, ship: str | None = None, stop_test: bool = False,
           decided_by: str | None = None) -> ExperimentRow:
    """Record ship or stop. Shipping a model activates it for the task; a template moves `production` to it.

    Shipping needs only `experiments.write`, not `models.write`: a PM who may decide a test may ship its winner.
    The decision and the activation it causes are both in the audit trail, naming the experiment.
    """
    if (ship is None) == (not stop_test):
        raise InvalidInput("decide needs exactly one of: --ship VARIANT, or --stop")
    actor = access.require(store, Permission.EXPERIMENTS_WRITE, action="experiment.decide",
                           target=f"experiment:{experiment_id}")
    if actor.via in ("oidc", "token") and decided_by and decided_by.strip().lower() != actor.email:
        # A signed-in decision is the signer's: the record must not name someone else (the trail would disagree).
        raise InvalidInput(f"decided_by {decided_by!r}: a decision by a signed-in person is recorded under their "
                           f"own name ({actor.email}); leave it out")
    decided_by = decided_by or actor.email
    with store.write() as db:
        experiment = _get(db, experiment_id)
        if experiment.decision is not None:
            raise Conflict(f"experiment {experiment_id} already has a decision ({experiment.decision}"
                           f"{' ' + experiment.decided_variant if experiment.decided_variant else ''})")
        if experiment.state == "draft":
            raise Conflict(f"experiment {experiment_id} never ran; start it, or define a new one")
        if stop_test:
            rows.record_decision(db, experiment_id, decision=Decision.STOP, variant=None, decided_by=decided_by,
                                 note=f"stopped; {experiment.control} stays", state="stopped")
            access.audit(db, "experiment.decide", f"experiment:{experiment_id}", name=experiment.name,
                         decision=Decision.STOP.value, winner=None, kept=experiment.control)
            return _get(db, experiment_id)
        variant = next((v for v in experiment.variants if v.name == ship), None)
        if variant is None:
            raise InvalidInput(f"--ship {ship!r}: no such variant; variants: "
                               + ", ".join(v.name for v in experiment.variants))
        note = _ship(db, experiment, variant.target, decided_by)
        rows.record_decision(db, experiment_id, decision=Decision.SHIP, variant=variant.name, decided_by=decided_by,
                             note=note, state="shipped")
        access.audit(db, "experiment.decide", f"experiment:{experiment_id}", name=experiment.name,
                     decision=Decision.SHIP.value, winner=variant.name, shipped=variant.target, result=note)
        return _get(db, experiment_id)


def _ship(db: Any, experiment: ExperimentRow, target: str, decided_by: str | None) -> str:
    """Make the target what production serves; return what was done, in words."""
    if "@" in target and not target.startswith("model:"):
        name, _, number = target.rpartition("@")
        template = template_rows.find_template(db, name)
        version = template_rows.get_version(db, template.id, int(number)) if template and number.isdigit() else None
        if template is None or version is None:
            raise NotFound(f"template version {target!r} is gone; nothing shipped")
        if template_rows.move_label(db, template.id, PRODUCTION, version.id, decided_by):
            access.audit(db, "template.activate", f"template:{template.id}", template=name, version=int(number),
                         label=PRODUCTION, experiment=f"experiment:{experiment.id}", experiment_name=experiment.name)
        return f"label {PRODUCTION} of {name} moved to version {number}"
    try:
        model = model_rows.get_model(db, target.removeprefix("model:"))
    except NotFound:
        if target.startswith("model:"):
            raise
        return f"{target} is not in the model registry; nothing activated: route production traffic to it yourself"
    task = experiment.task or model.task
    if not task:
        raise InvalidInput(f"model {model.name!r} has no task to be activated for: define the experiment with a task "
                           f"or activate it once (`workbench models activate {model.id} --task TASK`)")
    replaced = model_rows.active_for(db, task)
    replaced = replaced if replaced is not None and replaced.id != model.id else None
    model_rows.activate(db, model.id, task)
    access.audit(db, "model.activate", f"model:{model.id}", name=model.name, task=task,
                 replaced=f"model:{replaced.id}" if replaced else None, replaced_name=replaced.name if replaced else None,
                 experiment=f"experiment:{experiment.id}", experiment_name=experiment.name)
    return f"model {model.name} (#{model.id}) activated for {task}"


# ------------------------------------------------------------------------------------------ demo

DEMO_NAME = "demo-fine-tune-vs-base"


def load_demo_experiment(store: Store, *, seed: int = 11, now: datetime | None = None, predictions: int = 60_000,
                         days: int = 30, control_model: str = "demo-support-ft-v1",
                         treatment_model: str = "demo-support-ft-v2", task_type: str = "support-triage",
                         template_version: str | None = None) -> ExperimentRow:
    """Define the demo A/B test and log its traffic: better on `correct`, no sample-ratio mismatch.

    Calls are priced and sized like the demo history's for the same models. The question the demo asks
    is whether the fine-tune's accuracy is worth it, so latency is its guard metric and cost is left to
    the Costs page: a fine-tune billed at twice its base's per-token price would fail a cost guard by
    design, and the test would never read as the winner it is on quality.

    Deterministic from `seed` (and `now`, the end of the window). Runs once: an existing demo
    experiment is returned as it is. Predictions are tagged `demo` with source `demo`.
    """
    with store.connect() as db:
        existing = rows.find(db, DEMO_NAME)
    if existing is not None:
        return existing
    experiment = create(
        store, DEMO_NAME, [VariantIn(name="control", target=control_model, weight=50),
                           VariantIn(name="treatment", target=treatment_model, weight=50)],
        metric="correct", guard_metrics=["latency_ms"], unit="user", task=task_type,
        description=f"demo: generated, not a real test. Does {treatment_model} answer {task_type} requests "
                    f"more accurately than {control_model}?", demo=True,
    )
    end = (now or datetime.now(UTC)).astimezone(UTC)
    begin = end - timedelta(days=days)
    generated = _demo_rows(experiment, seed, begin, end, predictions, {"control": control_model,
                           "treatment": treatment_model}, task_type, template_version)
    with store.write() as db:
        for at in range(0, len(generated), 5_000):
            prediction_rows.insert_predictions(db, generated[at:at + 5_000])
        rows.set_state(db, experiment.id, "running")
        db.execute("UPDATE experiments SET started_at = ? WHERE id = ?", [utc_text(begin), experiment.id])
    return get(store, experiment.id)


_DEMO_PROFILE = {
    # variant: (P(correct), median latency ms); tokens and prices come from the demo history's models
    "control": (0.78, 820.0),
    "treatment": (0.83, 760.0),
}
_DEMO_TOKENS = (420.0, 70.0)
"""Median input and output tokens for a model the demo history does not serve."""
_DRIFT_TOKENS = (1.8, 1.3)
"""The history's data change on its drift task: inputs this much longer, outputs this much (see demo_predictions)."""


class _DemoTraffic(BaseModel):
    """How one variant's model is priced and how long its calls are, as the demo history has them."""

    tokens_in: float
    tokens_out: float
    price: tuple[float, float] | None = Field(description="USD per 1K input and output tokens; None when unpriced.")
    cost_source: str
    price_row: str | None = None


def _demo_traffic(model_version: str) -> _DemoTraffic:
    """Price a model as the demo history does: its own price (DEMO_MODELS), else the catalogue's (PriceBook)."""
    from workbench.domain.predictions import PriceBook
    from workbench.services.demo_predictions import DEMO_MODELS

    spec = next((m for m in DEMO_MODELS if m.version == model_version), None)
    tokens = (spec.tokens_in, spec.tokens_out) if spec else _DEMO_TOKENS
    listed = PriceBook().lookup(spec.priced_as or model_version if spec else model_version)
    if listed is not None:
        return _DemoTraffic(tokens_in=tokens[0], tokens_out=tokens[1], cost_source="inferred", price_row=listed.row,
                            price=(listed.input_per_1k, listed.output_per_1k))
    if spec is not None and spec.own_price is not None:
        return _DemoTraffic(tokens_in=tokens[0], tokens_out=tokens[1], cost_source="ingested",
                            price=spec.own_price[:2])
    return _DemoTraffic(tokens_in=tokens[0], tokens_out=tokens[1], cost_source="unpriced", price=None)


def _demo_rows(experiment: ExperimentRow, seed: int, begin: datetime, end: datetime, count: int,
               models: dict[str, str], task_type: str, template_version: str | None) -> list[tuple[Any, ...]]:
    """The test's calls, drawn like the demo history's for the same model and task (tokens, price, answers),
    so they neither spike the spend nor skew the drift windows they fall in."""
    from workbench.services import demo_predictions as history

    rng = random.Random(seed)
    users = [f"demo-user-{i:05d}" for i in range(max(count // 5, 10))]
    variant_of = {user: assign(experiment.seed, user, experiment.weights) for user in users}
    traffic = {variant: _demo_traffic(model) for variant, model in models.items()}
    span = (end - begin).total_seconds()
    created = utc_text(end)
    drift_from = end.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=history.DRIFT_DAYS - 1)
    compliance = task_type == history.DRIFT_TASK
    tags = orjson.dumps(["demo"]).decode()
    offsets = sorted(rng.random() * span for _ in range(count))
    out: list[tuple[Any, ...]] = []
    for offset in offsets:
        ts = begin + timedelta(seconds=offset)
        user = rng.choice(users)
        variant = variant_of[user] or "control"
        p_correct, latency_median = _DEMO_PROFILE[variant]
        model = traffic[variant]
        drifted = compliance and ts >= drift_from
        latency = round(latency_median * math.exp(rng.gauss(0, 0.35)), 1)
        tokens_in = max(1, round(model.tokens_in * math.exp(rng.gauss(0, 0.35)) * (_DRIFT_TOKENS[0] if drifted else 1)))
        tokens_out = max(1, round(model.tokens_out * math.exp(rng.gauss(0, 0.40)) * (_DRIFT_TOKENS[1] if drifted else 1)))
        labelled = rng.random() < 0.4
        right = rng.random() < p_correct
        mix = history.LABEL_MIX_AFTER if drifted else history.LABEL_MIX_BEFORE
        label = rng.choices(range(len(history.LABELS)), weights=mix)[0]
        answered = label if right else (label + rng.randint(1, len(history.LABELS) - 1)) % len(history.LABELS)
        output = (history._compliance_json(history.LABELS[answered], rng.randint(0, 1),
                                           rng.randrange(len(history._REGULATIONS)), long=drifted)
                  if compliance else None)
        cost = (None if model.price is None
                else round((tokens_in * model.price[0] + tokens_out * model.price[1]) / 1000, 10))
        row = {
            "ts": utc_text(ts), "model_version": models[variant],
            "template_version": template_version, "task_type": task_type, "input": None, "output": output,
            "input_hash": None, "output_hash": None,
            "input_chars": round(tokens_in * history.CHARS_PER_TOKEN * rng.uniform(0.9, 1.1)),
            "output_chars": len(output) if output is not None else round(tokens_out * history.CHARS_PER_TOKEN),
            "tokens_in": tokens_in, "tokens_out": tokens_out, "tokens_cached": None, "latency_ms": latency,
            "latency_bucket": latency_bucket(latency), "cost_usd": cost,
            "cost_source": model.cost_source, "price_row": model.price_row, "cache_hit": 0, "confidence": None,
            "ground_truth": history.LABELS[label] if labelled and compliance else None,
            "correct": int(right) if labelled else None, "rating": None, "error": None, "unit_id": user,
            "experiment_id": str(experiment.id), "variant": variant, "tags": tags, "source": "demo",
            "created_at": created,
        }
        out.append(tuple(row[c] for c in prediction_rows.PREDICTION_COLUMNS))
    return out
