"""`workbench experiments ...`: define, run, analyse and decide A/B tests of model and template versions.

Registered on the main group by `workbench.cli`; every command takes --json and fails as one JSON object.
"""

from __future__ import annotations

from typing import Any

import click

from workbench.cli import command, emit, main, store_of
from workbench.store.experiments import ExperimentRow


@main.group()
def experiments() -> None:
    """A/B tests: create, start, stop, analyze, decide (ship a variant or stop)."""


def _describe(found: ExperimentRow) -> str:
    variants = ", ".join(f"{v.name}={v.target} ({v.weight:g})" for v in found.variants)
    decision = f", decided: {found.decision} {found.decided_variant or ''}".rstrip() if found.decision else ""
    demo = " [demo]" if found.demo else ""
    return f"#{found.id} {found.name}{demo}: {found.state}{decision}; {found.metric} by {found.unit}; {variants}"


@command(experiments, "create")
@click.option("--name", required=True, help="A unique name (also the assignment seed unless --seed is given).")
@click.option("--variant", "variants", multiple=True, required=True, metavar="NAME=TARGET:WEIGHT",
              help="A variant, control first; TARGET is model:ID, a model_version, or a template NAME@V.")
@click.option("--metric", default="correct", show_default=True,
              help="Primary metric: correct or error (rates); latency_ms, cost_usd or rating (means).")
@click.option("--guard", "guards", multiple=True, help="A guard metric, which must not get worse (repeatable).")
@click.option("--unit", type=click.Choice(["user", "session", "request"]), default="user", show_default=True,
              help="What is randomised.")
@click.option("--seed", default=None, help="Assignment seed (default: the name).")
@click.option("--task", default=None, help="The task a shipped model is activated for.")
@click.option("--description", default="", help="What the test asks.")
def create_cmd(ctx: click.Context, name: str, variants: tuple[str, ...], metric: str, guards: tuple[str, ...],
               unit: str, seed: str | None, task: str | None, description: str) -> None:
    """Define an experiment (in draft: `start` it to assign units)."""
    from workbench.services import experiments as svc

    made = svc.create(store_of(ctx), name, [svc.parse_variant(v) for v in variants], metric=metric,
                      guard_metrics=list(guards), unit=unit, seed=seed, task=task, description=description)
    emit(ctx, {"ok": True, "id": made.id, "experiment": made.model_dump(mode="json")},
         lambda: click.echo(f"created {_describe(made)}\nstart it with `workbench experiments start {made.id}`"))


@command(experiments, "list")
def list_cmd(ctx: click.Context) -> None:
    """List experiments, newest first."""
    from workbench.services import experiments as svc

    found = svc.list_experiments(store_of(ctx))
    emit(ctx, {"ok": True, "experiments": [e.model_dump(mode="json") for e in found]},
         lambda: click.echo("\n".join(_describe(e) for e in found) or "no experiments"))


@command(experiments, "show")
@click.argument("experiment_id", type=int)
def show_cmd(ctx: click.Context, experiment_id: int) -> None:
    """Show one experiment's definition, state and decision."""
    from workbench.services import experiments as svc

    found = svc.get(store_of(ctx), experiment_id)
    note = f"\n{found.decision_note}" if found.decision_note else ""
    emit(ctx, {"ok": True, "experiment": found.model_dump(mode="json")}, lambda: click.echo(_describe(found) + note))


@command(experiments, "start")
@click.argument("experiment_id", type=int)
def start_cmd(ctx: click.Context, experiment_id: int) -> None:
    """Start assigning units (GET /v1/experiments/ID/assignment answers from now on)."""
    from workbench.services import experiments as svc

    found = svc.start(store_of(ctx), experiment_id)
    emit(ctx, {"ok": True, "experiment": found.model_dump(mode="json")}, lambda: click.echo(_describe(found)))


@command(experiments, "stop")
@click.argument("experiment_id", type=int)
def stop_cmd(ctx: click.Context, experiment_id: int) -> None:
    """Stop assigning units; the results stay and a decision can still be made."""
    from workbench.services import experiments as svc

    found = svc.stop(store_of(ctx), experiment_id)
    emit(ctx, {"ok": True, "experiment": found.model_dump(mode="json")}, lambda: click.echo(_describe(found)))


def analysis_payload(results: Any) -> dict[str, Any]:
    """The --json shape: per variant units, conversions or mean, rate; the headline test against control."""
    return {
        "ok": True,
        "id": results.experiment.id,
        "name": results.experiment.name,
        "metric": results.primary.metric,
        "kind": results.primary.kind.value,
        "unit": results.experiment.unit,
        "control": results.experiment.control,
        "variants": [v.model_dump(mode="json") for v in results.variants],
        "p_value": results.p_value,
        "ci_low": results.ci_low,
        "ci_high": results.ci_high,
        "prob_to_beat_control": results.prob_to_beat_control,
        "srm_p_value": results.srm_p_value,
        "srm_mismatch": results.srm.mismatch,
        "winner": results.winner,
        "headline": results.headline,
        "comparisons": [c.model_dump(mode="json") for c in results.primary.analysis.comparisons],
        "guards": [{"metric": g.metric, "comparisons": [c.model_dump(mode="json") for c in g.analysis.comparisons]}
                   for g in results.guards],
    }


@command(experiments, "analyze")
@click.argument("experiment_id", type=int)
def analyze_cmd(ctx: click.Context, experiment_id: int) -> None:
    """Results: counts, the sample-ratio check, the test against control, guard metrics."""
    from workbench.services import experiments as svc

    results = svc.analyze(store_of(ctx), experiment_id)

    def human() -> None:
        click.echo(f"{_describe(results.experiment)}\n{results.headline}")
        for v in results.variants:
            value = f"rate {v.rate:.2%}" if v.rate is not None else f"mean {v.mean:.4g}" if v.mean is not None else "-"
            click.echo(f"  {v.name}: {v.units:,} units, {v.observations:,} observations, {value}")
        click.echo(results.srm.explanation)
        for c in results.primary.analysis.comparisons:
            click.echo(c.explanation)
        for guard in results.guards:
            for c in guard.analysis.comparisons:
                click.echo(f"guard {guard.metric}: {c.outcome.value}. {c.explanation}")

    emit(ctx, analysis_payload(results), human)


@command(experiments, "decide")
@click.argument("experiment_id", type=int)
@click.option("--ship", default=None, metavar="VARIANT", help="Ship this variant: activate its model or move the "
              "template's production label to it.")
@click.option("--stop", "stop_test", is_flag=True, help="Stop the test and keep control.")
@click.option("--by", "decided_by", default=None, help="Who decided (recorded with the decision).")
def decide_cmd(ctx: click.Context, experiment_id: int, ship: str | None, stop_test: bool,
               decided_by: str | None) -> None:
    """Record the decision: ship a variant, or stop."""
    from workbench.services import experiments as svc

    found = svc.decide(store_of(ctx), experiment_id, ship=ship, stop_test=stop_test, decided_by=decided_by)
    emit(ctx, {"ok": True, "experiment": found.model_dump(mode="json"), "note": found.decision_note},
         lambda: click.echo(f"{_describe(found)}\n{found.decision_note}"))
