"""`workbench jobs ...` and `workbench models ...`: launch, watch and manage fine-tuning jobs from a terminal.

Registered on the main group by `workbench.cli`; every command takes --json and fails as one JSON object.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click

from workbench.cli import command, emit, main, store_of
from workbench.domain.jobs import BackendName, JobState

BACKENDS = [b.value for b in BackendName]


@main.group()
def jobs() -> None:
    """Launch, watch, cancel, retry and compare fine-tuning jobs."""


@main.group()
def models() -> None:
    """The models fine-tuning jobs produced."""


def _plan_lines(plan: Any) -> None:
    click.echo(f"job {plan.job_name}: {plan.form.backend.value} / {plan.form.base_model}")
    version = plan.version or f"new version {plan.freeze_as} (frozen at launch)"
    click.echo(f"  data: {plan.dataset} @ {version}: {plan.train_records:,} training records"
               + (f", {plan.validation_records:,} validation" if plan.validation_split else ", no validation set"))
    click.echo("  hyperparameters: " + (", ".join(f"{k}={v}" for k, v in plan.effective.items()) or "provider defaults"))
    for line in plan.estimate.lines:
        usd = "unknown" if line.usd is None else f"${line.usd:,.4f}"
        click.echo(f"  cost, {line.label}: {usd}  {line.detail}")
    if plan.estimate.note:
        click.echo(f"  note: {plan.estimate.note}")
    for text in plan.advice:
        click.echo(f"  advice: {text}")
    for text in plan.warnings:
        click.echo(f"  warning: {text}")
    for text in plan.refusals:
        click.echo(f"  REFUSED: {text}")


@command(jobs, "launch")
@click.option("--provider", "backend", type=click.Choice(BACKENDS), required=True, help="Who runs the job.")
@click.option("--dataset", required=True, help="NAME (frozen into a new version at launch) or NAME@VERSION.")
@click.option("--base-model", required=True, help="The model to fine-tune (Bedrock: the customization id; local: a path).")
@click.option("--validation-split", default=None, help="'validation' to send the validation split, 'none' for none.")
@click.option("--param", "params", multiple=True, help="A hyperparameter as key=value; repeat for more.")
@click.option("--name", default=None, help="Job name (default: dataset-model-time).")
@click.option("--budget", type=float, default=None, help="Refuse the launch if the estimated training cost is above (USD).")
@click.option("--dry-run", is_flag=True, help="Plan and estimate only: validate, price and show the request; launch nothing.")
def jobs_launch_cmd(
    ctx: click.Context, backend: str, dataset: str, base_model: str, validation_split: str | None,
    params: tuple[str, ...], name: str | None, budget: float | None, dry_run: bool,
) -> None:
    """Launch a fine-tuning job: validate the data against the base model, estimate the cost, then submit."""
    from workbench.domain.hyperparameters import parse_pairs
    from workbench.errors import InvalidInput
    from workbench.services import jobs as svc

    form = svc.LaunchForm(backend=BackendName(backend), dataset=dataset, base_model=base_model,
                          validation_split=validation_split, params=parse_pairs(params), name=name, budget_usd=budget)
    store = store_of(ctx)
    if dry_run:
        backend_obj = None
        # Without settings the plan still shows data, cost and refusals; only the request preview needs them.
        with contextlib.suppress(InvalidInput):
            backend_obj = svc.default_backend(form.backend)
        plan = svc.plan_launch(store, form, backend=backend_obj)
        emit(ctx, {"ok": plan.ok, "plan": plan.model_dump(mode="json", by_alias=True)}, lambda: _plan_lines(plan))
        if not plan.ok:
            sys.exit(1)
        return
    job = svc.launch(store, form)
    emit(ctx, {"ok": True, "id": job.id, "name": job.name, "state": job.state.value,
               "provider_job_id": job.provider_job_id},
         lambda: click.echo(f"launched job {job.id} {job.name!r} on {job.backend} ({job.state.value}); "
                            f"follow it with `workbench jobs show {job.id}`"))


@command(jobs, "list")
@click.option("--state", "states", multiple=True, type=click.Choice([s.value for s in JobState]))
@click.option("--provider", "backend", type=click.Choice(BACKENDS), default=None)
def jobs_list_cmd(ctx: click.Context, states: tuple[str, ...], backend: str | None) -> None:
    """List jobs, newest first."""
    from workbench.services import jobs as svc

    rows = svc.list_jobs(store_of(ctx), states=[JobState(s) for s in states] or None, backend=backend)

    def human() -> None:
        if not rows:
            click.echo("no jobs; launch one with `workbench jobs launch`")
        for j in rows:
            click.echo(f"{j.id:>5}  {j.state.value:10} {j.backend:9} {j.name}  {j.base_model}  "
                       f"{j.dataset_name}@{j.version}  {j.created_at}")

    emit(ctx, {"ok": True, "jobs": [_job_json(j) for j in rows]}, human)


def _job_json(job: Any) -> dict[str, Any]:
    data = job.model_dump(mode="json", exclude={"cursor"})
    return data


@command(jobs, "show")
@click.argument("job")
def jobs_show_cmd(ctx: click.Context, job: str) -> None:
    """Show a job: state, provider status, metrics, events and the output model."""
    from workbench.services import jobs as svc

    detail = svc.show_job(store_of(ctx), job)
    row = detail.job
    payload = {
        "ok": True, **_job_json(row), "state": row.state.value, "provider_status": row.provider_status,
        "metrics": [m.model_dump() for m in detail.metrics], "output_model": row.output_model,
        "events": [e.model_dump(mode="json") for e in detail.events], "elapsed_s": detail.elapsed_s, "eta_s": detail.eta_s,
    }

    def human() -> None:
        click.echo(f"job {row.id} {row.name}: {row.state.value} ({row.provider_status or 'not submitted'}) on {row.backend}")
        click.echo(f"  base model {row.base_model}; data {row.dataset_name}@{row.version}; "
                   f"hyperparameters {row.hyperparameters or 'provider defaults'}")
        if row.estimate_usd is not None:
            click.echo(f"  estimated training cost ${row.estimate_usd:,.4f}")
        if detail.elapsed_s is not None:
            eta = f", about {detail.eta_s:.0f} s left" if detail.eta_s else ""
            click.echo(f"  elapsed {detail.elapsed_s:.0f} s{eta}")
        if row.failure_message:
            click.echo(f"  failure: {row.failure_message}")
        if row.output_model:
            click.echo(f"  output model: {row.output_model}")
        if detail.metrics:
            last = detail.metrics[-1]
            click.echo(f"  metrics: {len(detail.metrics)} steps; last step {last.step}: train loss {last.train_loss}, "
                       f"validation loss {last.val_loss}")
        for event in detail.events[-10:]:
            click.echo(f"  {event.at:%Y-%m-%d %H:%M:%S} {event.level:7} {event.message}")

    emit(ctx, payload, human)


@command(jobs, "cancel")
@click.argument("job")
def jobs_cancel_cmd(ctx: click.Context, job: str) -> None:
    """Ask the provider to stop a job; the watcher records when it has."""
    from workbench.services import jobs as svc

    row = svc.cancel_job(store_of(ctx), job)
    emit(ctx, {"ok": True, "id": row.id, "state": row.state.value},
         lambda: click.echo(f"cancel requested for job {row.id} {row.name!r}"))


@command(jobs, "retry")
@click.argument("job")
@click.option("--name", default=None, help="Name of the new job (default: NAME-retryN).")
def jobs_retry_cmd(ctx: click.Context, job: str, name: str | None) -> None:
    """Launch a failed or cancelled job again with the same data version and settings."""
    from workbench.services import jobs as svc

    row = svc.retry_job(store_of(ctx), job, name=name)
    emit(ctx, {"ok": True, "id": row.id, "name": row.name, "state": row.state.value, "retry_of": row.retry_of},
         lambda: click.echo(f"launched job {row.id} {row.name!r} retrying job {row.retry_of}"))


@command(jobs, "watch")
@click.option("--once", is_flag=True, help="Poll every due job once and exit.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between rounds.")
def jobs_watch_cmd(ctx: click.Context, once: bool, interval: float) -> None:
    """Poll every active job with backoff and record status, events and metrics (runs until Ctrl-C)."""
    from workbench.services.watcher import RoundResult, watch

    store = store_of(ctx)
    rounds: list[RoundResult] = []

    def report(result: RoundResult) -> None:
        rounds.append(result)
        if ctx.obj["json"]:
            return
        for line in result.changed:
            click.echo(f"watch: {line}")
        for line in result.errors:
            click.echo(f"watch: poll failed, {line}", err=True)

    watch(store, once=once, interval_s=interval, on_round=report)
    last = rounds[-1] if rounds else RoundResult()
    emit(ctx, {"ok": True, **last.model_dump()},
         lambda: click.echo(f"polled {last.polled} jobs in {last.seconds:.2f} s") if once else None)


@command(jobs, "compare")
@click.argument("jobs_", metavar="JOB...", nargs=-1, required=True)
def jobs_compare_cmd(ctx: click.Context, jobs_: tuple[str, ...]) -> None:
    """Compare jobs: final losses and the hyperparameters that differ."""
    from workbench.services.compare import compare_jobs

    found = compare_jobs(store_of(ctx), list(jobs_))

    def human() -> None:
        for row in found.rows:
            click.echo(f"{row.name:40} {row.state:10} final train {row.final_train_loss} / best val {row.best_val_loss}"
                       + ("  <- best" if row.name == found.best else ""))
        for key, values in found.differing.items():
            click.echo(f"  {key}: " + " | ".join(str(v) for v in values))

    emit(ctx, {"ok": True, **found.model_dump(mode="json")}, human)


@command(models, "list")
def models_list_cmd(ctx: click.Context) -> None:
    """List the models fine-tuning jobs produced."""
    from workbench.services.models import list_models

    rows = list_models(store_of(ctx))

    def human() -> None:
        if not rows:
            click.echo("no models yet: a job that succeeds registers its model here")
        for m in rows:
            mark = f" [active: {m.task}]" if m.active else ""
            click.echo(f"{m.id:>4}  {m.name}  {m.model_id}  (base {m.base_model}){mark}")

    emit(ctx, {"ok": True, "models": [m.model_dump(mode="json") for m in rows]}, human)


@command(models, "activate")
@click.argument("model")
@click.option("--task", required=True, help="The task the model serves; one active model per task.")
def models_activate_cmd(ctx: click.Context, model: str, task: str) -> None:
    """Make a model the active one for a task."""
    from workbench.services.models import activate_model

    row = activate_model(store_of(ctx), model, task)
    emit(ctx, {"ok": True, "model": row.model_dump(mode="json")},
         lambda: click.echo(f"model {row.id} {row.name!r} is now active for {row.task!r}"))
