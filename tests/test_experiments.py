"""Experiments: definitions refused with the field named, results equal to ab_stats on fixed data, SRM, decisions."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.test_evaluations import add_model
from workbench.domain import ab_stats
from workbench.domain.assignment import assign
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.services import experiments as svc
from workbench.services import templates
from workbench.store import Store
from workbench.store import models as model_rows
from workbench.store import predictions as prediction_rows
from workbench.store import templates as template_rows

DAY = datetime(2026, 11, 1, 12, tzinfo=UTC)


def two_variants(control: str = "model-a", treatment: str = "model-b") -> list[svc.VariantIn]:
    return [svc.VariantIn(name="control", target=control, weight=50),
            svc.VariantIn(name="treatment", target=treatment, weight=50)]


def prediction(experiment_id: int, variant: str, unit: str, *, correct: bool | None = None,
               latency_ms: float | None = None, ts: datetime = DAY, model: str = "m") -> tuple[Any, ...]:
    """One prediction row in `PREDICTION_COLUMNS` order, logged under the experiment."""
    row: dict[str, Any] = dict.fromkeys(prediction_rows.PREDICTION_COLUMNS)
    row.update(ts=ts.isoformat(timespec="milliseconds"), model_version=model, latency_ms=latency_ms,
               cost_source="unpriced", cache_hit=0, correct=None if correct is None else int(correct),
               unit_id=unit, experiment_id=str(experiment_id), variant=variant, tags="[]", source="api",
               created_at=DAY.isoformat())
    return tuple(row[c] for c in prediction_rows.PREDICTION_COLUMNS)


def log(store: Store, rows: list[tuple[Any, ...]]) -> None:
    with store.write() as db:
        prediction_rows.insert_predictions(db, rows)


def running(store: Store, **options: Any) -> Any:
    made = svc.create(store, options.pop("name", "checkout-test"), options.pop("variants", two_variants()), **options)
    return svc.start(store, made.id)


# ------------------------------------------------------------------------------------------ defining


@pytest.mark.parametrize(("variants", "options", "words"), [
    (two_variants()[:1], {}, "variants: an experiment needs a control"),
    ([svc.VariantIn(name="a", target="m"), svc.VariantIn(name="a", target="n")], {}, "variants[1].name 'a' repeats"),
    ([svc.VariantIn(name="a", target="m"), svc.VariantIn(name="b c", target="n")], {}, "variants[1].name"),
    ([svc.VariantIn(name="a", target="m"), svc.VariantIn(name="b", target="n", weight=0)], {}, "variants[1].weight"),
    ([svc.VariantIn(name="a", target="m"), svc.VariantIn(name="b", target="n", weight=float("nan"))], {},
     "variants[1].weight"),
    ([svc.VariantIn(name="a", target="model:99"), svc.VariantIn(name="b", target="n")], {},
     "variants[0].target 'model:99': no registered model"),
    ([svc.VariantIn(name="a", target="m"), svc.VariantIn(name="b", target="nope@1")], {},
     "variants[1].target 'nope@1': no template named 'nope'"),
    (two_variants(), {"metric": "happiness"}, "metric 'happiness' is not a metric"),
    (two_variants(), {"guard_metrics": ["speed"]}, "guard metric 'speed'"),
    (two_variants(), {"unit": "device"}, "unit 'device'"),
    (two_variants(), {"seed": "  "}, "seed is empty"),
])
def test_bad_definitions_are_refused_naming_the_field(store: Store, variants: list[svc.VariantIn],
                                                      options: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInput, match=words.replace("[", r"\[").replace("]", r"\]")):
        svc.create(store, "bad", variants, **options)
    assert svc.list_experiments(store) == []


def test_a_bad_name_and_a_taken_name_are_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="name 'x y'"):
        svc.create(store, " x y", two_variants())
    svc.create(store, "taken", two_variants())
    with pytest.raises(Conflict, match="name 'taken'"):
        svc.create(store, "taken", two_variants())


def test_a_template_version_that_is_missing_is_refused_and_one_that_exists_accepted(store: Store) -> None:
    templates.create_version(store, "ask", user_template="{{ input }}")
    with pytest.raises(InvalidInput, match=r"variants\[1\].target 'ask@2': template 'ask' has no version '2'"):
        svc.create(store, "t", [svc.VariantIn(name="a", target="ask@1"), svc.VariantIn(name="b", target="ask@2")])
    made = svc.create(store, "t", [svc.VariantIn(name="a", target="ask@1"), svc.VariantIn(name="b", target="m")])
    assert made.seed == "t" and made.state == "draft" and made.control == "a"


@pytest.mark.parametrize(("text", "expected"), [
    ("control=model:3:50", ("control", "model:3", 50.0)),
    ("b=support@4:0.5", ("b", "support@4", 0.5)),
    ("b=openai:gpt-4o-mini", ("b", "openai:gpt-4o-mini", 1.0)),
    ("b=plain", ("b", "plain", 1.0)),
])
def test_variant_flags_are_read(text: str, expected: tuple[str, str, float]) -> None:
    parsed = svc.parse_variant(text)
    assert (parsed.name, parsed.target, parsed.weight) == expected


@pytest.mark.parametrize("text", ["no-equals", "=m:1", "a="])
def test_a_malformed_variant_flag_says_how_to_write_one(text: str) -> None:
    with pytest.raises(InvalidInput, match="NAME=TARGET:WEIGHT"):
        svc.parse_variant(text)


def test_states_move_draft_running_stopped_and_back(store: Store) -> None:
    made = svc.create(store, "flow", two_variants())
    with pytest.raises(Conflict, match="draft, not running"):
        svc.stop(store, made.id)
    assert svc.start(store, made.id).state == "running"
    assert svc.stop(store, made.id).state == "stopped"
    assert svc.start(store, made.id).state == "running"
    with pytest.raises(NotFound, match="no experiment 999"):
        svc.start(store, 999)


# ------------------------------------------------------------------------------------------ assignment


def test_assignment_is_the_pure_hash_and_needs_a_running_experiment(store: Store) -> None:
    made = svc.create(store, "sticky", two_variants(), seed="seed-1")
    with pytest.raises(Conflict, match="not running"):
        svc.assignment(store, made.id, "user-1")
    svc.start(store, made.id)
    got = [svc.assignment(store, made.id, f"user-{i}") for i in range(200)]
    assert [a.variant for a in got] == [assign("seed-1", f"user-{i}", made.weights) for i in range(200)]
    assert {a.variant: a.target for a in got} == {"control": "model-a", "treatment": "model-b"}
    assert svc.assignment(store, made.id, "user-7") == got[7]
    with pytest.raises(InvalidInput, match="unit is empty"):
        svc.assignment(store, made.id, " ")


# ------------------------------------------------------------------------------------------ analysis


def test_rate_results_equal_ab_stats_on_fixed_data(store: Store) -> None:
    made = running(store, guard_metrics=["latency_ms"])
    rows = []
    # control: 300 users, 2 predictions each, 600 labelled, 420 correct; treatment: 310 users, 620 labelled, 480 correct
    for i in range(600):
        rows.append(prediction(made.id, "control", f"c{i // 2}", correct=i < 420, latency_ms=100 + i % 7,
                               ts=DAY + timedelta(days=i % 3)))
    for i in range(620):
        rows.append(prediction(made.id, "treatment", f"t{i // 2}", correct=i < 480, latency_ms=95 + i % 11,
                               ts=DAY + timedelta(days=i % 3)))
    rows.append(prediction(made.id, "treatment", "t0"))  # unlabelled: a unit already counted, no trial
    log(store, rows)

    results = svc.analyze(store, made.id)
    expected = ab_stats.analyze_rates([ab_stats.RateArm(name="control", units=600, conversions=420),
                                       ab_stats.RateArm(name="treatment", units=620, conversions=480)],
                                      {"control": 50, "treatment": 50})
    assert results.primary.analysis == expected
    first = expected.comparisons[0]
    assert (results.p_value, results.ci_low, results.ci_high, results.prob_to_beat_control) == (
        first.p_value, first.ci_low, first.ci_high, first.prob_to_beat_control)
    control, treatment = results.variants
    assert (control.units, control.observations, control.conversions, control.rate) == (300, 600, 420, 0.7)
    assert (treatment.units, treatment.predictions, treatment.observations) == (310, 621, 620)
    srm = ab_stats.srm_check({"control": 300, "treatment": 310}, {"control": 50, "treatment": 50})
    assert results.srm == srm and results.srm_p_value == srm.p_value and srm.mismatch is False
    assert results.winner == "treatment" and results.headline == "treatment wins on correct"

    latency = results.guards[0]
    values_c = [100.0 + i % 7 for i in range(600)]
    values_t = [95.0 + i % 11 for i in range(620)]
    want = ab_stats.analyze_means([ab_stats.MeanArm.from_values("control", values_c),
                                   ab_stats.MeanArm.from_values("treatment", values_t)],
                                  {"control": 50, "treatment": 50}, higher_is_better=False)
    got_c = latency.analysis.comparisons[0]
    assert got_c.p_value == pytest.approx(want.comparisons[0].p_value, rel=1e-9)
    assert got_c.ci_low == pytest.approx(want.comparisons[0].ci_low, rel=1e-9)

    last = [p for p in results.series if p.day == (DAY + timedelta(days=2)).date().isoformat()]
    assert {(p.variant, p.units, p.observations, p.value) for p in last} == {
        ("control", 300, 600, 0.7), ("treatment", 310, 620, 480 / 620)}


def test_a_mean_metric_is_analysed_with_welch(store: Store) -> None:
    made = running(store, metric="latency_ms", unit="request")
    values = {"control": [120.0, 130.0, 125.0, 140.0] * 50, "treatment": [100.0, 90.0, 95.0, 110.0] * 50}
    log(store, [prediction(made.id, v, f"{v}{i}", latency_ms=x) for v, xs in values.items() for i, x in enumerate(xs)])
    results = svc.analyze(store, made.id)
    want = ab_stats.analyze_means([ab_stats.MeanArm.from_values(v, xs) for v, xs in values.items()],
                                  {"control": 50, "treatment": 50}, higher_is_better=False)
    got = results.primary.analysis.comparisons[0]
    assert got.p_value == pytest.approx(want.comparisons[0].p_value, rel=1e-9, abs=1e-300)
    assert got.ci_high == pytest.approx(want.comparisons[0].ci_high, rel=1e-9)
    assert results.variants[1].mean == pytest.approx(98.75) and results.variants[1].rate is None
    assert [v.units for v in results.variants] == [200, 200], "by request, units are predictions"
    assert results.winner == "treatment", "lower latency is better"


def test_a_unit_counts_once_from_its_first_exposure_whatever_order_rows_arrive(store: Store) -> None:
    made = running(store, unit="session")
    log(store, [prediction(made.id, "control", "s1", ts=DAY + timedelta(days=2))])
    log(store, [prediction(made.id, "control", "s1", ts=DAY),
                prediction(made.id, "control", "s2", ts=DAY + timedelta(days=1))])
    results = svc.analyze(store, made.id)
    assert results.variants[0].units == 2 and results.variants[0].predictions == 3
    control = [(p.day, p.units) for p in results.series if p.variant == "control"]
    assert control == [("2026-11-01", 1), ("2026-11-02", 2), ("2026-11-03", 2)]


def test_srm_fires_on_a_skewed_split(store: Store) -> None:
    made = running(store)
    rows = [prediction(made.id, "control", f"c{i}", correct=True) for i in range(600)]
    rows += [prediction(made.id, "treatment", f"t{i}", correct=True) for i in range(400)]
    log(store, rows)
    results = svc.analyze(store, made.id)
    assert results.srm.mismatch is True and results.srm_p_value is not None and results.srm_p_value < 0.001
    assert "Sample ratio mismatch" in results.srm.explanation
    assert results.headline.startswith("Sample ratio mismatch")


def test_an_experiment_without_traffic_says_not_enough_data(store: Store) -> None:
    made = running(store)
    results = svc.analyze(store, made.id)
    assert [v.units for v in results.variants] == [0, 0]
    assert results.p_value is None and results.srm.mismatch is None
    assert results.headline == "Not enough data yet" and results.series == []


def test_sample_size_uses_control_rate(store: Store) -> None:
    made = running(store)
    log(store, [prediction(made.id, "control", f"c{i}", correct=i % 2 == 0) for i in range(100)]
        + [prediction(made.id, "treatment", f"t{i}", correct=True) for i in range(100)])
    results = svc.analyze(store, made.id)
    assert svc.sample_size(results, 0.1).units_per_variant == ab_stats.sample_size_rates(0.5, 0.1).units_per_variant


# ------------------------------------------------------------------------------------------ deciding


def test_shipping_a_model_activates_it_for_the_task(store: Store) -> None:
    first, second = add_model(store, "ft-a", output="out-a"), add_model(store, "ft-b", output="out-b")
    made = svc.create(store, "models", two_variants(f"model:{first}", f"model:{second}"), task="triage")
    with pytest.raises(Conflict, match="never ran"):
        svc.decide(store, made.id, ship="treatment")
    svc.start(store, made.id)
    with pytest.raises(InvalidInput, match="--ship 'nobody': no such variant"):
        svc.decide(store, made.id, ship="nobody")
    with pytest.raises(InvalidInput, match="exactly one"):
        svc.decide(store, made.id)
    decided = svc.decide(store, made.id, ship="treatment", decided_by="pm")
    assert (decided.state, decided.decision, decided.decided_variant, decided.decided_by) == (
        "shipped", "ship", "treatment", "pm")
    with store.connect() as db:
        model = model_rows.get_model(db, second)
    assert model.active and model.task == "triage"
    with pytest.raises(Conflict, match="already has a decision"):
        svc.decide(store, made.id, stop_test=True)
    with pytest.raises(Conflict, match="was shipped"):
        svc.start(store, made.id)


def test_a_model_target_without_a_task_is_refused_at_creation_naming_the_field(store: Store) -> None:
    first = add_model(store, "ft-a", output="out-a")
    with pytest.raises(InvalidInput, match=r"task is empty and variants\[0\]\.target 'model:1'.*has no task"):
        svc.create(store, "no-task", two_variants(f"model:{first}", "ft-b"))
    assert svc.list_experiments(store) == [], "nothing created: shipping it weeks later would fail"


def test_a_model_target_takes_its_task_from_the_registry_and_ships(store: Store) -> None:
    first, second = add_model(store, "ft-a", output="out-a"), add_model(store, "ft-b", output="out-b")
    with store.write() as db:
        model_rows.activate(db, first, "support-triage")
    made = svc.create(store, "from-registry", two_variants(f"model:{first}", f"model:{second}"))
    assert made.task == "support-triage"
    svc.start(store, made.id)
    decided = svc.decide(store, made.id, ship="treatment")
    assert "activated for support-triage" in (decided.decision_note or "")


def test_shipping_a_template_version_moves_production(store: Store) -> None:
    templates.create_version(store, "ask", user_template="{{ input }}")
    templates.create_version(store, "ask", user_template="Answer: {{ input }}")
    templates.set_label(store, "ask", 1, "production")
    made = running(store, variants=[svc.VariantIn(name="v1", target="ask@1"), svc.VariantIn(name="v2", target="ask@2")])
    decided = svc.decide(store, made.id, ship="v2", decided_by="pm")
    assert "production of ask moved to version 2" in (decided.decision_note or "")
    with store.connect() as db:
        template = template_rows.find_template(db, "ask")
        assert template is not None
        assert template_rows.labels(db, template.id)["production"] == 2


def test_shipping_an_unregistered_model_version_records_the_decision_only(store: Store) -> None:
    made = running(store)
    decided = svc.decide(store, made.id, ship="treatment")
    assert decided.state == "shipped" and "not in the model registry" in (decided.decision_note or "")


def test_stopping_keeps_control(store: Store) -> None:
    made = running(store)
    decided = svc.decide(store, made.id, stop_test=True)
    assert (decided.state, decided.decision, decided.decided_variant) == ("stopped", "stop", None)
    assert svc.analyze(store, made.id).headline == "Stopped, control kept"


# ------------------------------------------------------------------------------------------ demo


def test_the_demo_experiment_has_a_clear_winner_and_no_srm(store: Store) -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    made = svc.load_demo_experiment(store, now=now, predictions=12_000)
    assert made.demo and made.state == "running"
    assert svc.load_demo_experiment(store, now=now).id == made.id, "loading twice adds nothing"
    with store.connect() as db:
        assert prediction_rows.count(db) == 12_000
        logged = prediction_rows.page(db, limit=500)
    assert all(p.variant == assign(made.seed, p.unit_id or "", made.weights) for p in logged)
    assert all(p.source == "demo" and p.ts >= (now - timedelta(days=30)).isoformat() for p in logged)
    results = svc.analyze(store, made.id)
    assert results.winner == "treatment" and results.srm.mismatch is False
    assert results.p_value is not None and results.p_value < 0.001


def test_results_read_fast_beside_other_traffic(store: Store) -> None:
    """The demo test's 60,000 predictions beside 90 days of other traffic: results in under 200 ms.

    Units are counted from the experiment's slice of a partial covering index, so traffic outside the
    experiment does not add to the cost (docs/experiments.md gives the figure at 1,000,000 predictions).
    """
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    made = svc.load_demo_experiment(store, now=now)
    columns = prediction_rows.PREDICTION_COLUMNS
    other = []
    for i in range(20_000):
        row = dict(zip(columns, prediction(0, "x", "u", ts=now - timedelta(hours=i * 90 * 24 / 20_000),
                                           model=f"m{i % 6}"), strict=True))
        other.append(tuple({**row, "experiment_id": None, "variant": None, "task_type": f"t{i % 3}"}[c]
                           for c in columns))
    log(store, other)
    with store.write() as db:
        db.execute("ANALYZE")
    svc.analyze(store, made.id)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        svc.analyze(store, made.id)
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.2, timings


def test_the_demo_experiment_is_priced_and_sized_like_the_demo_history(store: Store) -> None:
    """Its calls cost tokens x each model's demo price (no hard-coded cost), and carry answers like the history's."""
    from workbench.services.demo_predictions import DEMO_EXPERIMENT, DEMO_MODELS

    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    made = svc.load_demo_experiment(store, now=now, predictions=4_000, **DEMO_EXPERIMENT)
    prices = {m.version: m.own_price for m in DEMO_MODELS}
    with store.connect() as db:
        logged = prediction_rows.page(db, limit=4_000)
    assert {p.model_version for p in logged} == {"gpt-4o-mini-2024-07-18", "demo-geo-gpt4o-mini"}
    for p in logged:
        rate_in, rate_out, _ = prices[p.model_version]
        assert p.cost_usd == pytest.approx((p.tokens_in * rate_in + p.tokens_out * rate_out) / 1000)
        assert p.output and p.output.startswith("{") and p.output_chars == len(p.output)
    mean_cost = {m: sum(p.cost_usd for p in logged if p.model_version == m)
                 / sum(1 for p in logged if p.model_version == m) for m in prices if m in DEMO_EXPERIMENT.values()}
    assert 0.00008 < mean_cost["gpt-4o-mini-2024-07-18"] < 0.00015, "about the history's $0.00011 per call"
    assert mean_cost["demo-geo-gpt4o-mini"] > 1.7 * mean_cost["gpt-4o-mini-2024-07-18"], "twice the base's prices"
    results = svc.analyze(store, made.id)
    assert [g.metric for g in results.guards] == ["latency_ms"], "cost is the Costs page's question, not this test's"
    assert not any(g.harmed for g in results.guards), "the fine-tune is no slower (its win shows at the demo's full size)"
    recent = [p for p in logged if p.ts >= "2026-11-24"]
    older = [p for p in logged if p.ts < "2026-11-20"]
    assert (sum(p.input_chars for p in recent) / len(recent)) > 1.5 * (sum(p.input_chars for p in older) / len(older)), \
        "after the history's data change the test's inputs get longer too, so drift windows are not diluted"


def test_assigning_says_what_to_do_for_each_state(store: Store) -> None:
    draft = svc.create(store, "draft-one", two_variants())
    with pytest.raises(Conflict, match=r"is draft, not running; start it \(`workbench experiments start"):
        svc.assignment(store, draft.id, "u1")
    assert svc.why_not_assignable(svc.start(store, draft.id)) is None
    svc.decide(store, draft.id, ship="treatment")
    with pytest.raises(Conflict) as shipped:
        svc.assignment(store, draft.id, "u1")
    assert "was shipped (treatment) on " in str(shipped.value) and "define a new experiment" in str(shipped.value)
    assert "start it" not in str(shipped.value), "start refuses a shipped test, so it must not be advised"
    with pytest.raises(Conflict, match="was shipped"):
        svc.start(store, draft.id)
    stopped = running(store, name="stopped-one")
    svc.decide(store, stopped.id, stop_test=True)
    assert "was stopped (control kept) on " in (svc.why_not_assignable(svc.get(store, stopped.id)) or "")
    paused = running(store, name="paused-one")
    svc.stop(store, paused.id)
    assert "restart it" in (svc.why_not_assignable(svc.get(store, paused.id)) or "")


def test_sample_size_counts_observations_of_the_metric_not_units(store: Store) -> None:
    made = running(store)
    log(store, [prediction(made.id, v, f"u{i}", correct=i % 3 == 0) for i in range(200) for v in ("control", "treatment")])
    results = svc.analyze(store, made.id)
    text = svc.sample_size_text(results, svc.sample_size(results, 0.05))
    assert "labelled predictions per variant" in text and "units" not in text
