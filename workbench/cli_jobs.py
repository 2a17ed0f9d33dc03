"""`workbench jobs ...` and `workbench models ...`: launch, watch and manage fine-tuning jobs from a terminal.

Registered on the main group by `workbench.cli`; every command takes --json and fails as one JSON object.
"""

from __future__ import annotations

import contextlib
import math
import sys
from typing import Any

import click

from workbench.cli import command, emit, json_text, main, store_of
from workbench.domain.jobs import BackendName, JobState

BACKENDS = [b.value for b in BackendName]


class _Budget(click.ParamType):
    """A budget in USD: a finite number of 0 or more ('nan', 'inf' and '-1' are refused as usage errors)."""

    name = "usd"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number; give an amount in USD such as 25 or 12.50", param, ctx)
        if not math.isfinite(number) or number < 0:
            self.fail(f"{value!r} is not an amount; give a finite number of USD, 0 or more (e.g. 25)", param, ctx)
        return number


BUDGET = _Budget()


def _launch_form(**fields: Any) -> Any:
    """Build the launch form; a value the form refuses is the user's input, said plainly, not an internal error."""
    import pydantic

    from workbench.errors import InvalidInput
    from workbench.services import jobs as svc

    try:
        return svc.LaunchForm(**fields)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "form"
        raise InvalidInput(f"{where}: {first['msg']} (got {first.get('input')!r})") from None


@main.group()
def jobs() -> None:
    """Launch, watch, cancel, retry and compare fine-tuning jobs."""


@main.group()
def models() -> None:
    """The models fine-tuning jobs produced."""


def _plan_lines(plan: Any, preview_problem: str | None = None) -> None:
    from workbench.services.jobs import money

    click.echo(f"job {plan.job_name}: {plan.form.backend.value} / {plan.form.base_model} (checked against {plan.target})")
    version = plan.version or f"new version {plan.freeze_as} (frozen at launch)"
    click.echo(f"  data: {plan.dataset} @ {version}: {plan.train_records:,} training records"
               + (f", {plan.validation_records:,} validation" if plan.validation_split else ", no validation set"))
    sent = ", ".join(f"{k}={v}" for k, v in plan.hyperparameters.items()) or "none"
    defaults = ", ".join(f"{k}={v}" for k, v in plan.effective.items() if k not in plan.hyperparameters)
    click.echo(f"  hyperparameters sent: {sent}" + (f"; provider defaults: {defaults}" if defaults else ""))
    for line in plan.estimate.lines:
        click.echo(f"  cost, {line.label}: {money(line.usd) if line.usd is not None else 'n/a'}  {line.detail}")
    if plan.estimate.note:
        click.echo(f"  note: {plan.estimate.note}")
    for text in plan.advice:
        click.echo(f"  advice: {text}")
    for text in plan.warnings:
        click.echo(f"  warning: {text}")
    for text in plan.refusals:
        click.echo(f"  REFUSED: {text}")
    errors = [f for f in plan.findings if f.get("severity") == "error"]
    for finding in errors[:LISTED_FINDINGS]:
        where = f"line {finding['source_line']}" if finding.get("source_line") else "dataset"
        split = f" [{finding['split']}]" if finding.get("split") else ""
        click.echo(f"    {finding.get('rule') or finding['code']}{split} {where}: {finding['message']}")
    if len(errors) > LISTED_FINDINGS:
        click.echo(f"    ... and {len(errors) - LISTED_FINDINGS} more (--json lists every one)")
    if plan.request:
        click.echo("  request that would be sent:" if plan.refusals else "  request that will be sent:")
        click.echo("\n".join("    " + line for line in json_text(plan.request).splitlines()))
    elif preview_problem:
        click.echo(f"  request: not shown, the backend cannot be set up: {preview_problem}")


LISTED_FINDINGS = 5


@command(jobs, "launch")
@click.option("--provider", "backend", type=click.Choice(BACKENDS), required=True, help="Who runs the job.")
@click.option("--dataset", required=True, help="NAME (frozen into a new version at launch) or NAME@VERSION.")
@click.option("--base-model", required=True, help="The model to fine-tune (Bedrock: the customization id; local: a path).")
@click.option("--validation-split", default=None, help="'validation' to send the validation split, 'none' for none.")
@click.option("--param", "params", multiple=True, help="A hyperparameter as key=value; repeat for more.")
@click.option("--name", default=None, help="Job name (default: dataset-model-time).")
@click.option("--budget", type=BUDGET, default=None,
              help="Refuse the launch if the estimated training cost is above this (USD).")
@click.option("--dry-run", is_flag=True, help="Plan and estimate only: validate, price and show the request; launch nothing.")
def jobs_launch_cmd(
    ctx: click.Context, backend: str, dataset: str, base_model: str, validation_split: str | None,
    params: tuple[str, ...], name: str | None, budget: float | None, dry_run: bool,
) -> None:
    """Launch a fine-tuning job: validate the data against the base model, estimate the cost, then submit."""
    from workbench.domain.hyperparameters import parse_pairs
    from workbench.errors import InvalidInput
    from workbench.services import jobs as svc

    form = _launch_form(backend=BackendName(backend), dataset=dataset, base_model=base_model,
                        validation_split=validation_split, params=parse_pairs(params), name=name, budget_usd=budget)
    store = store_of(ctx)
    if dry_run:
        backend_obj, problem = None, None
        # Without settings the plan still shows data, cost and refusals; only the request preview needs them.
        try:
            backend_obj = svc.default_backend(form.backend)
        except (InvalidInput, ImportError) as exc:
            problem = str(exc)
        plan = svc.plan_launch(store, form, backend=backend_obj)
        payload: dict[str, Any] = {"ok": plan.ok, "plan": plan.model_dump(mode="json", by_alias=True)}
        if problem:
            payload["warnings"] = [f"request not previewed: {problem}"]
        if not plan.ok:
            payload["error"] = "launch refused: " + "; ".join(plan.refusals)
        emit(ctx, payload, lambda: _plan_lines(plan, problem))
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
            return
        click.echo(f"{'id':>5}  {'state':10} {'backend':9} name  base model  dataset@version  created")
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
        status = row.provider_status or "not submitted"
        said = "" if status.startswith(row.state.value) else f" (provider: {status})"
        click.echo(f"job {row.id} {row.name}: {row.state.value}{said} on {row.backend}")
        click.echo(f"  base model {row.base_model}; data {row.dataset_name}@{row.version}; "
                   f"hyperparameters {row.hyperparameters or 'provider defaults'}")
        if row.estimate_usd is not None:
            from workbench.services.jobs import money

            click.echo(f"  estimated training cost {money(row.estimate_usd)}")
        if detail.elapsed_s is not None:
            eta = f", about {detail.eta_s:.0f} s left" if detail.eta_s else ""
            click.echo(f"  elapsed {detail.elapsed_s:.0f} s{eta}")
        if row.failure_message:
            click.echo(f"  failure: {row.failure_message}")
        if row.output_model:
            click.echo(f"  output model: {row.output_model}")
        if detail.metrics:
            last = detail.metrics[-1]
            val = [m.val_loss for m in detail.metrics if m.val_loss is not None]
            click.echo(f"  metrics: {len(detail.metrics)} steps; last step {last.step}: train loss {_loss(last.train_loss)}"
                       + (f", last validation loss {_loss(val[-1])}" if val else ", no validation loss"))
        for event in detail.events[-10:]:
            click.echo(f"  {event.at:%Y-%m-%d %H:%M:%S} {event.level:7} {event.message}")

    emit(ctx, payload, human)


def _loss(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


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
            click.echo(f"{row.name:40} {row.state:10} final train {_loss(row.final_train_loss)} / best val "
                       f"{_loss(row.best_val_loss)}" + ("  <- best" if row.name == found.best else ""))
        for key, values in found.differing.items():
            click.echo(f"  {key}: " + " | ".join("default" if v is None else str(v) for v in values))
        if found.warning:
            click.echo(f"  note: {found.warning}")

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


def _sweep_lines(plan: Any) -> None:
    version = plan.version or f"new version {plan.freeze_as} (frozen once, shared by every cell)"
    click.echo(f"sweep {plan.name}: {len(plan.cells)} cells on {plan.dataset} @ {version}, "
               f"at most {plan.max_concurrent} at once")
    for cell in plan.cells:
        usd = "unknown" if cell.estimate_usd is None else f"${cell.estimate_usd:,.4f}"
        click.echo(f"  {cell.name:40} {', '.join(f'{k}={v}' for k, v in cell.values.items()):40} {usd}")
    total = "unknown" if plan.total_estimate_usd is None else f"${plan.total_estimate_usd:,.4f}"
    unpriced = f" ({plan.unpriced} cells without a known price)" if plan.unpriced else ""
    click.echo(f"  total estimated training cost: {total}{unpriced}")
    for text in plan.warnings:
        click.echo(f"  warning: {text}")
    for text in plan.refusals:
        click.echo(f"  REFUSED: {text}")


@command(jobs, "sweep")
@click.option("--provider", "backend", type=click.Choice(BACKENDS), required=True, help="Who runs the jobs.")
@click.option("--dataset", required=True, help="NAME (frozen once into a new version) or NAME@VERSION.")
@click.option("--base-model", required=True, help="The model to fine-tune.")
@click.option("--grid", "grid_pairs", multiple=True, required=True,
              help="A hyperparameter and its values, key=v1,v2; repeat for more (one job per combination).")
@click.option("--param", "params", multiple=True, help="A hyperparameter every cell shares, key=value; repeatable.")
@click.option("--validation-split", default=None, help="'validation' to send the validation split, 'none' for none.")
@click.option("--max-concurrent", type=click.IntRange(1, 100), default=2, show_default=True, help="Cells running at once.")
@click.option("--name", default=None, help="Sweep name; its jobs are NAME-1, NAME-2... (default: dataset-sweep-time).")
@click.option("--budget", type=BUDGET, default=None, help="Refuse any cell whose estimated training cost is above (USD).")
@click.option("--dry-run", is_flag=True, help="Plan, check and price every cell; launch nothing.")
def jobs_sweep_cmd(
    ctx: click.Context, backend: str, dataset: str, base_model: str, grid_pairs: tuple[str, ...],
    params: tuple[str, ...], validation_split: str | None, max_concurrent: int, name: str | None,
    budget: float | None, dry_run: bool,
) -> None:
    """Launch one job per combination of the grid's values, a few at a time; the watcher submits the rest."""
    from workbench.domain.hyperparameters import parse_pairs
    from workbench.errors import InvalidInput
    from workbench.services import jobs as svc
    from workbench.services import sweeps

    form = _launch_form(backend=BackendName(backend), dataset=dataset, base_model=base_model,
                        validation_split=validation_split, params=parse_pairs(params), budget_usd=budget)
    grid = sweeps.parse_grid(grid_pairs)
    store = store_of(ctx)
    backend_obj = None
    with contextlib.suppress(InvalidInput):
        backend_obj = svc.default_backend(form.backend)
    plan = sweeps.plan_sweep(store, form, grid, max_concurrent, name, backend=backend_obj)
    if dry_run or not plan.ok:
        emit(ctx, {"ok": plan.ok, "plan": _sweep_plan_json(plan)}, lambda: _sweep_lines(plan))
        if not plan.ok:
            sys.exit(1)
        return
    done = sweeps.launch_sweep(store, form, grid, max_concurrent, plan.name, plan=plan)

    def human() -> None:
        _sweep_lines(done.plan)
        for line in done.submitted:
            click.echo(f"  {line}")
        for line in done.errors:
            click.echo(f"  {line}", err=True)
        click.echo(f"{len(done.submitted)} submitted, {done.pending} pending; `workbench jobs watch` submits the rest "
                   f"and `workbench jobs sweep-show {done.sweep.name}` compares them")

    emit(ctx, {"ok": True, "sweep": done.sweep.model_dump(mode="json"), "plan": _sweep_plan_json(done.plan),
               "submitted": done.submitted, "errors": done.errors, "pending": done.pending}, human)


def _sweep_plan_json(plan: Any) -> dict[str, Any]:
    """The plan without each cell's full launch plan (schema, findings): the cells, their cost and refusals."""
    data = plan.model_dump(mode="json", exclude={"cells"})
    data["cells"] = [
        {**c.model_dump(mode="json", exclude={"plan"}),
         "hyperparameters": c.plan.hyperparameters if c.plan else None}
        for c in plan.cells
    ]
    return data


@command(jobs, "sweep-show")
@click.argument("sweep")
def jobs_sweep_show_cmd(ctx: click.Context, sweep: str) -> None:
    """Show a sweep's cells side by side (state, losses, cost), with the best by validation loss marked."""
    from workbench.services.sweeps import sweep_summary

    found = sweep_summary(store_of(ctx), sweep)

    def human() -> None:
        click.echo(f"sweep {found.sweep.name}: {len(found.rows)} cells, at most {found.sweep.max_concurrent} at once; "
                   + ", ".join(f"{n} {state}" for state, n in found.counts.items()))
        for row in found.rows:
            params = ", ".join(f"{k}={v}" for k, v in row.params.items())
            usd = "" if row.estimate_usd is None else f"${row.estimate_usd:,.4f}"
            click.echo(f"  {row.name:36} {params:36} {row.state:10} train {row.final_train_loss} / "
                       f"val {row.best_val_loss} {usd}" + ("  <- best" if row.best else ""))
        if found.total_estimate_usd is not None:
            click.echo(f"  total estimated training cost ${found.total_estimate_usd:,.4f}")

    payload = found.model_dump(mode="json")
    for row in payload["rows"]:
        row.pop("metrics", None)
    emit(ctx, {"ok": True, **payload}, human)


@command(jobs, "import")
@click.option("--provider", "backend", type=click.Choice(["openai"]), default="openai", show_default=True,
              help="Where the jobs run (OpenAI only for now).")
@click.option("--job", "job_id", default=None, help="One provider job id (ftjob-...); default: the most recent jobs.")
@click.option("--limit", type=int, default=20, show_default=True, help="How many recent jobs to look at.")
def jobs_import_cmd(ctx: click.Context, backend: str, job_id: str | None, limit: int) -> None:
    """Adopt fine-tuning jobs started elsewhere, so the watcher follows them and they can be compared."""
    from workbench.services.job_import import import_jobs

    found = import_jobs(store_of(ctx), backend, job=job_id, limit=limit)

    def human() -> None:
        for row in found.imported:
            click.echo(f"imported {row.provider_job_id} as job {row.id} {row.name!r} ({row.state.value})")
        for line in found.skipped:
            click.echo(line)
        for line in found.errors:
            click.echo(line, err=True)
        if not found.imported and not found.skipped:
            click.echo(f"no {backend} jobs found to import")

    emit(ctx, {"ok": True, "imported": [_job_json(j) for j in found.imported], "skipped": found.skipped,
               "errors": found.errors}, human)


# --- serving Bedrock custom models (workbench.services.deployments) ----------------------------------------


def _deployment_json(row: Any) -> dict[str, Any]:
    return row.model_dump(mode="json")  # type: ignore[no-any-return]


def _plan_json(plan: Any) -> dict[str, Any]:
    return {"model": plan.model.id, "kind": plan.kind.value, "name": plan.name, "units": plan.units,
            "commitment": plan.commitment.value if plan.commitment else None, "hourly_usd": plan.hourly_usd,
            "cost": plan.cost_text(), "cost_lines": [line.model_dump() for line in plan.cost_lines],
            "warnings": plan.warnings, "refusals": plan.refusals}


@command(models, "deploy")
@click.argument("model")
@click.option("--kind", type=click.Choice(["provisioned", "on-demand"]), required=True,
              help="Provisioned Throughput (any Bedrock custom model, billed per hour) or on-demand (Nova, per token).")
@click.option("--units", type=int, default=1, show_default=True, help="Model units (Provisioned Throughput only).")
@click.option("--commitment", type=click.Choice(["none", "1month", "6months"]), default="none", show_default=True,
              help="Provisioned Throughput term; 'none' is billed by the hour and can be deleted any time.")
@click.option("--name", default=None, help="Name on Bedrock (default: MODEL-pt|od-time).")
@click.option("--yes", is_flag=True, help="Create without asking; required with --json.")
def models_deploy_cmd(ctx: click.Context, model: str, kind: str, units: int, commitment: str, name: str | None,
                      yes: bool) -> None:
    """Serve a model from a succeeded Bedrock job, after showing what it costs per hour."""
    from workbench.cli import fail
    from workbench.services import deployments as svc

    store = store_of(ctx)
    plan = svc.plan_deployment(store, model, kind=kind, units=units, commitment=commitment, name=name)
    if not plan.ok:
        fail(ctx, "cannot deploy: " + "; ".join(plan.refusals), {"plan": _plan_json(plan)})
    if not yes:
        if ctx.obj["json"]:
            fail(ctx, f"deploying {plan.name!r} costs {plan.cost_text()}; nothing was created: add --yes to confirm "
                      "(--json never asks)", {"plan": _plan_json(plan)})
        click.echo(f"{plan.kind.value} deployment {plan.name!r} of model {plan.model.id} {plan.model.name!r} "
                   f"({plan.model.model_id})")
        click.echo(f"  cost: {plan.cost_text()}")
        for text in plan.warnings:
            click.echo(f"  warning: {text}")
        if not click.confirm("Create it?", default=False):
            fail(ctx, "not confirmed; nothing was created")
    row = svc.deploy(store, plan)
    emit(ctx, {"ok": True, "deployment": _deployment_json(row), "cost": plan.cost_text()},
         lambda: click.echo(f"deployment {row.id} {row.name!r} is {row.status} ({row.provider_id}); the watcher "
                            "follows it, or see `workbench models deployments`"))


@command(models, "undeploy")
@click.argument("deployment")
@click.option("--yes", is_flag=True, help="Delete without asking; required with --json.")
def models_undeploy_cmd(ctx: click.Context, deployment: str, yes: bool) -> None:
    """Delete a deployment on Bedrock; its hourly charge stops and the row is kept, marked deleted."""
    from workbench.cli import fail
    from workbench.services import deployments as svc

    store = store_of(ctx)
    row = svc.get_deployment(store, deployment)
    if not yes:
        if ctx.obj["json"]:
            fail(ctx, f"deleting deployment {row.id} {row.name!r} needs --yes (--json never asks)",
                 {"deployment": _deployment_json(row)})
        if not click.confirm(f"Delete {row.kind} deployment {row.id} {row.name!r} ({row.provider_id})?", default=False):
            fail(ctx, "not confirmed; nothing was deleted")
    done = svc.undeploy(store, row.id)
    emit(ctx, {"ok": True, "deployment": _deployment_json(done)},
         lambda: click.echo(f"deployment {done.id} {done.name!r} deleted at {done.deleted_at}"))


@command(models, "deployments")
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted deployments.")
@click.option("--refresh", is_flag=True, help="Ask Bedrock for the status of deployments still being created first.")
def models_deployments_cmd(ctx: click.Context, include_deleted: bool, refresh: bool) -> None:
    """List deployments: kind, status, hourly cost and any failure message."""
    from workbench.services import deployments as svc

    store = store_of(ctx)
    refreshed = svc.refresh_deployments(store) if refresh else None
    found = svc.list_deployments(store, include_deleted=include_deleted)

    def human() -> None:
        if not found:
            click.echo("no deployments; create one with `workbench models deploy MODEL --kind provisioned`")
        for d in found:
            cost = "per token" if d.kind == "on-demand" else ("$?/h" if d.hourly_usd is None else f"${d.hourly_usd:,.2f}/h")
            click.echo(f"{d.id:>4}  {d.kind:11} {d.status:9} {cost:>10}  {d.name}  model {d.model_id}"
                       + (f"  deleted {d.deleted_at}" if d.deleted_at else ""))
            if d.failure_message:
                click.echo(f"      failure: {d.failure_message}")
        for line in refreshed.errors if refreshed else []:
            click.echo(f"refresh failed: {line}", err=True)

    emit(ctx, {"ok": True, "deployments": [_deployment_json(d) for d in found],
               "refresh": refreshed.model_dump() if refreshed else None}, human)


@command(jobs, "models")
@click.option("--provider", "backend", type=click.Choice(BACKENDS), default=None, help="Only this provider's models.")
def jobs_models_cmd(ctx: click.Context, backend: str | None) -> None:
    """List the base models a job can start from: ids, hyperparameters (range, default), lifecycle dates and prices."""
    from workbench.services.jobs import base_model_catalogue

    entries = base_model_catalogue(BackendName(backend) if backend else None)

    def human() -> None:
        for entry in entries:
            click.echo(f"{entry['provider']:9} {entry['id']}  ({entry['label']}; target {entry['target']})")
            for line in entry["hyperparameters"]:
                click.echo(f"      {line}")
            for date_line in entry["lifecycle"]:
                click.echo(f"      {date_line}")
            for price in entry["prices"]:
                click.echo(f"      price: {price}")

    emit(ctx, {"ok": True, "models": entries}, human)
