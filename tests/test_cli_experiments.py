"""`workbench experiments ...` as a user runs them: create, start, analyze, decide, and the refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from tests.test_evaluations import add_model
from tests.test_experiments import log, prediction
from workbench.cli import main
from workbench.domain import ab_stats
from workbench.store import Store
from workbench.store import models as model_rows


def run(db: Path, *args: str, ok: bool = True) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["--db", str(db), *args, "--json"])
    assert (result.exit_code == 0) == ok, result.output
    assert "Traceback" not in result.output
    return orjson.loads(result.output)


def test_create_start_analyze_and_ship(store: Store) -> None:
    first, second = add_model(store, "ft-a", output="out-a"), add_model(store, "ft-b", output="out-b")
    made = run(store.path, "experiments", "create", "--name", "triage-ab", "--variant", f"control=model:{first}:50",
               "--variant", f"treatment=model:{second}:50", "--metric", "correct", "--guard", "latency_ms",
               "--task", "triage")
    experiment_id = made["id"]
    assert made["experiment"]["state"] == "draft" and made["experiment"]["guard_metrics"] == ["latency_ms"]
    assert run(store.path, "experiments", "start", str(experiment_id))["experiment"]["state"] == "running"
    log(store, [prediction(experiment_id, "control", f"c{i}", correct=i < 140, latency_ms=100.0 + i % 5)
                for i in range(200)]
        + [prediction(experiment_id, "treatment", f"t{i}", correct=i < 170, latency_ms=100.0 + i % 3)
           for i in range(200)])

    analysis = run(store.path, "experiments", "analyze", str(experiment_id))
    assert [(v["name"], v["units"], v["conversions"], v["rate"]) for v in analysis["variants"]] == [
        ("control", 200, 140, 0.7), ("treatment", 200, 170, 0.85)]
    want = ab_stats.compare_rates(ab_stats.RateArm(name="control", units=200, conversions=140),
                                  ab_stats.RateArm(name="treatment", units=200, conversions=170))
    assert (analysis["p_value"], analysis["ci_low"], analysis["ci_high"], analysis["prob_to_beat_control"]) == (
        want.p_value, want.ci_low, want.ci_high, want.prob_to_beat_control)
    assert analysis["srm_p_value"] == ab_stats.srm_check({"control": 200, "treatment": 200}).p_value
    assert analysis["winner"] == "treatment" and analysis["guards"][0]["metric"] == "latency_ms"

    listed = run(store.path, "experiments", "list")["experiments"]
    assert [e["name"] for e in listed] == ["triage-ab"]
    decided = run(store.path, "experiments", "decide", str(experiment_id), "--ship", "treatment", "--by", "pm")
    assert decided["experiment"]["state"] == "shipped" and "activated for triage" in decided["note"]
    with store.connect() as db:
        assert model_rows.get_model(db, second).active
    shown = run(store.path, "experiments", "show", str(experiment_id))["experiment"]
    assert (shown["decision"], shown["decided_variant"], shown["decided_by"]) == ("ship", "treatment", "pm")


def test_a_mean_metric_reports_means(store: Store) -> None:
    made = run(store.path, "experiments", "create", "--name", "speed", "--variant", "a=m1", "--variant", "b=m2",
               "--metric", "latency_ms", "--unit", "request")
    run(store.path, "experiments", "start", str(made["id"]))
    log(store, [prediction(made["id"], v, f"{v}{i}", latency_ms=float(i % 4 + (10 if v == "a" else 0)))
                for v in ("a", "b") for i in range(40)])
    analysis = run(store.path, "experiments", "analyze", str(made["id"]))
    assert [(v["units"], v["mean"], v["rate"]) for v in analysis["variants"]] == [(40, 11.5, None), (40, 1.5, None)]
    assert analysis["kind"] == "mean" and analysis["p_value"] is not None


def test_stop_then_decide_stop(store: Store) -> None:
    made = run(store.path, "experiments", "create", "--name", "s", "--variant", "a=m1:1", "--variant", "b=m2:1")
    run(store.path, "experiments", "start", str(made["id"]))
    assert run(store.path, "experiments", "stop", str(made["id"]))["experiment"]["state"] == "stopped"
    decided = run(store.path, "experiments", "decide", str(made["id"]), "--stop")
    assert decided["experiment"]["decision"] == "stop"


def test_failures_are_one_json_object_naming_what_was_wrong(store: Store) -> None:
    assert "variants[1].weight" in run(store.path, "experiments", "create", "--name", "x", "--variant", "a=m:1",
                                       "--variant", "b=m:-2", ok=False)["error"]
    assert "NAME=TARGET:WEIGHT" in run(store.path, "experiments", "create", "--name", "x", "--variant", "oops",
                                       "--variant", "b=m", ok=False)["error"]
    assert "metric 'nope'" in run(store.path, "experiments", "create", "--name", "x", "--variant", "a=m",
                                  "--variant", "b=n", "--metric", "nope", ok=False)["error"]
    assert "no experiment 42" in run(store.path, "experiments", "analyze", "42", ok=False)["error"]
    made = run(store.path, "experiments", "create", "--name", "x", "--variant", "a=m", "--variant", "b=n")
    assert "exactly one" in run(store.path, "experiments", "decide", str(made["id"]), ok=False)["error"]
    assert "never ran" in run(store.path, "experiments", "decide", str(made["id"]), "--stop", ok=False)["error"]


def test_human_output_reads(store: Store) -> None:
    made = run(store.path, "experiments", "create", "--name", "h", "--variant", "a=m", "--variant", "b=n")
    run(store.path, "experiments", "start", str(made["id"]))
    result = CliRunner().invoke(main, ["--db", str(store.path), "experiments", "analyze", str(made["id"])])
    assert result.exit_code == 0 and "Not enough data yet" in result.output and "a: 0 units" in result.output


def test_a_bare_kind_a_repeated_target_and_a_huge_weight_are_refused(store: Store) -> None:
    def create(*variants: str) -> str:
        args = [arg for v in variants for arg in ("--variant", v)]
        got = run(store.path, "experiments", "create", "--name", "x", *args, ok=False)
        assert got["ok"] is False
        return str(got["error"])

    assert "variants[0].target 'model' for 'a' names a kind but no id: write a=model:ID:WEIGHT" in create(
        "a=model:1", "b=model:2")
    assert "variants[1].target 'template'" in create("a=m1", "b=template:2")
    assert "variants 'a' and 'c' both target 'm1'" in create("a=m1:1", "b=m2:1", "c=m1:1")
    assert "variants[0].weight 1e+308 for 'a' is above 1,000,000" in create("a=m1:1e308", "b=m2:1e308")
    assert run(store.path, "experiments", "list")["experiments"] == []
