"""Hyperparameter sweeps: one job per cell of a grid, under a concurrency limit, ending in a comparison.

A sweep is planned first (`plan_sweep`, no side effects): every combination of the grid's values is one
cell, planned with the same `plan_launch` a single launch uses, so each cell's hyperparameters are checked
against the base model's ranges and priced; one refused cell refuses the whole sweep before anything is
frozen or uploaded. `launch_sweep` then freezes the dataset once (every cell trains on the same version),
records the sweep and every cell as a pending job, and submits the first `max_concurrent` of them.
`advance_sweeps` (called by the watcher at the start of each round) submits more as earlier cells finish;
each submission goes through `jobs.launch`, the one export, validate and submit path.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from datetime import UTC, date, datetime
from typing import Any, get_args

from pydantic import BaseModel, Field

from workbench.domain import hyperparameters as hp
from workbench.domain.access import Actor, Permission, Via
from workbench.domain.jobs import MetricPoint
from workbench.errors import Conflict, InvalidInput
from workbench.providers.base import BackendError, FineTuningBackend
from workbench.services import access, jobs
from workbench.services.compare import compare_jobs
from workbench.store import Store
from workbench.store import audit as audit_rows
from workbench.store import datasets as dataset_rows
from workbench.store import jobs as job_rows
from workbench.store import sweeps as sweep_rows

MAX_CELLS = 50
"""The most cells one sweep launches: past that a grid is more likely a typo than a plan, and the bill adds up."""
CLAIM_S = 1800.0
"""How long a watcher holds a cell it is submitting: longer than any export and upload, so none is sent twice."""


class SweepCell(BaseModel):
    """One combination of the grid's values, and how its launch was planned."""

    index: int = Field(description="1-based; the cell's job is named SWEEP-INDEX.")
    name: str
    values: dict[str, str] = Field(description="The grid's values for this cell, as typed.")
    params: dict[str, str] = Field(description="Every hyperparameter the cell sets: the form's, overridden by the grid's.")
    plan: jobs.LaunchPlan | None = Field(default=None, description="None when the cell's values were refused outright.")
    refusals: list[str] = Field(default_factory=list)
    estimate_usd: float | None = None

    @property
    def label(self) -> str:
        return f"cell {self.index} ({', '.join(f'{k}={v}' for k, v in self.values.items())})"


class SweepPlan(BaseModel):
    """Everything a sweep will launch and what it will cost, before anything is frozen or sent."""

    name: str
    grid: dict[str, list[str]]
    max_concurrent: int
    dataset: str
    version: str | None = Field(description="The frozen version every cell trains on; None when the sweep freezes one.")
    freeze_as: str | None = None
    cells: list[SweepCell]
    total_estimate_usd: float | None = Field(description="The sum of the priced cells' training estimates.")
    unpriced: int = Field(default=0, description="Cells with no known price (not in the total).")
    warnings: list[str] = Field(default_factory=list)
    refusals: list[str] = Field(default_factory=list, description="Why the sweep cannot go ahead; empty when it can.")

    @property
    def ok(self) -> bool:
        return not self.refusals


def parse_grid(pairs: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    """Read `--grid key=v1,v2` options into {key: [v1, v2]}, each key once, each value once."""
    grid: dict[str, list[str]] = {}
    for index, pair in enumerate(pairs, 1):
        key, sep, values = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"--grid {index} is {pair!r}; write it as key=value1,value2, e.g. n_epochs=1,2")
        if key in grid:
            raise InvalidInput(f"--grid {key} is given twice; put all its values in one option: {key}=a,b,c")
        found = list(dict.fromkeys(v.strip() for v in values.split(",") if v.strip()))
        if not found:
            raise InvalidInput(f"--grid {key} has no values; write {key}=value1,value2")
        grid[key] = found
    return grid


def _check_grid(grid: dict[str, list[str]], max_concurrent: int) -> None:
    if not grid:
        raise InvalidInput("a sweep needs a grid: at least one --grid key=value1,value2")
    for key, values in grid.items():
        if not key.strip() or not values:
            raise InvalidInput(f"grid entry {key!r} has no values; give key=value1,value2")
    size = 1
    for values in grid.values():
        size *= len(values)
    if size > MAX_CELLS:
        shape = " x ".join(f"{len(v)} {k}" for k, v in grid.items())
        raise InvalidInput(f"the grid has {size} cells ({shape}); a sweep runs at most {MAX_CELLS}: "
                           "drop some values or split it into several sweeps")
    if max_concurrent < 1:
        raise InvalidInput(f"--max-concurrent is {max_concurrent}; give 1 or more")


def _check_overlap(form: jobs.LaunchForm, grid: dict[str, list[str]]) -> None:
    """A key in both --param and --grid would have the grid silently win in every cell: say so instead."""
    both = [k for k in grid if k in form.params and str(form.params[k]).strip()]
    if both:
        keys = ", ".join(both)
        raise InvalidInput(f"{keys} is given both as --param and as --grid; keep it in --grid only "
                           "(--param sets a value every cell shares, --grid the values the sweep varies)")


def collapse_grid(form: jobs.LaunchForm, grid: dict[str, list[str]]) -> dict[str, list[str]]:
    """Drop values that read as the same setting (1, 1.0 and 01 are all one epoch), keeping the first as typed.

    Values are compared as the base model's schema types them; a value the schema refuses is kept as
    typed, so its cell is refused with the schema's own message.
    """
    try:
        schema = jobs.hyperparameter_schema(form.backend, jobs.target_for(form.backend, form.base_model), form.base_model)
    except InvalidInput:
        return grid  # an unknown model: every cell is refused with the reason below
    out: dict[str, list[str]] = {}
    for key, values in grid.items():
        seen: dict[Any, str] = {}
        for value in values:
            try:
                typed = hp.parse({key: value}, schema, model=form.base_model).get(key, value)
            except InvalidInput:
                typed = ("as typed", value)
            seen.setdefault((type(typed) is str, typed), value)
        out[key] = list(seen.values())
    return out


def _sweep_name(form: jobs.LaunchForm, name: str | None, now: datetime) -> str:
    if name:
        return name
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", jobs.parse_dataset_ref(form.dataset)[0]).strip("-")[:24] or "sweep"
    return f"{stem}-sweep-{now:%Y%m%d-%H%M%S}"


def _group(cells: list[SweepCell], every: int) -> list[str]:
    """One line per distinct refusal, naming the cells it applies to (all of them when it is the data's fault)."""
    by_reason: dict[str, list[SweepCell]] = {}
    for cell in cells:
        for reason in cell.refusals:
            by_reason.setdefault(reason, []).append(cell)
    lines = []
    for reason, where in by_reason.items():
        if len(where) == every and every > 1:
            lines.append(f"every cell: {reason}")
        else:
            lines.append(f"{', '.join(c.label for c in where)}: {reason}")
    return lines


def plan_sweep(
    store: Store, form: jobs.LaunchForm, grid: dict[str, list[str]], max_concurrent: int, name: str | None = None, *,
    backend: FineTuningBackend | None = None, today: date | None = None, now: datetime | None = None,
) -> SweepPlan:
    """Plan every cell of the grid as its own launch; refuse the sweep when any cell is refused. Change nothing."""
    moment = now or datetime.now(UTC)
    _check_overlap(form, grid)
    grid = collapse_grid(form, grid)
    _check_grid(grid, max_concurrent)
    sweep_name = jobs.check_name(_sweep_name(form, name, moment), form.backend)
    if len(sweep_name) > jobs.MAX_NAME - 3:
        raise InvalidInput(f"sweep name {sweep_name!r} is too long: its jobs are named NAME-1, NAME-2...; "
                           f"use at most {jobs.MAX_NAME - 3} characters")
    dataset, version = jobs.parse_dataset_ref(form.dataset)
    keys = list(grid)
    cells: list[SweepCell] = []
    for index, combo in enumerate(itertools.product(*(grid[k] for k in keys)), 1):
        values = dict(zip(keys, combo, strict=True))
        cell = SweepCell(index=index, name=f"{sweep_name}-{index}", values=values, params={**form.params, **values})
        cell_form = form.model_copy(update={"params": cell.params, "name": cell.name})
        try:
            cell.plan = jobs.plan_launch(store, cell_form, backend=backend, today=today, now=moment)
        except InvalidInput as exc:
            cell.refusals.append(str(exc))
        else:
            cell.refusals += cell.plan.refusals
            cell.estimate_usd = cell.plan.estimate.training_usd
        cells.append(cell)
    refusals = _group(cells, len(cells))
    with store.connect() as db:
        if sweep_rows.sweep_exists(db, sweep_name):
            refusals.insert(0, f"a sweep named {sweep_name!r} already exists; choose another --name")
        taken = sweep_rows.names_taken(db, [c.name for c in cells])
    if taken:
        refusals.append(f"job names {', '.join(taken)} are taken; choose another sweep --name")
    priced = [c.estimate_usd for c in cells if c.estimate_usd is not None]
    warnings = list(dict.fromkeys(w for c in cells if c.plan for w in c.plan.warnings))
    return SweepPlan(
        name=sweep_name, grid=grid, max_concurrent=max_concurrent, dataset=dataset, version=version,
        freeze_as=None if version else f"sweep-{sweep_name}"[:64], cells=cells,
        total_estimate_usd=round(sum(priced), 6) if priced else None, unpriced=len(cells) - len(priced),
        warnings=warnings, refusals=refusals,
    )


class SweepLaunch(BaseModel):
    """What `launch_sweep` did."""

    sweep: sweep_rows.SweepRow
    plan: SweepPlan
    submitted: list[str] = Field(default_factory=list, description="One line per cell submitted now.")
    errors: list[str] = Field(default_factory=list, description="One line per cell that could not be submitted.")
    pending: int = Field(default=0, description="Cells waiting for a free slot; the watcher submits them.")


def launch_sweep(
    store: Store, form: jobs.LaunchForm, grid: dict[str, list[str]], max_concurrent: int, name: str | None = None, *,
    backends: jobs.BackendFactory = jobs.default_backend, today: date | None = None, plan: SweepPlan | None = None,
) -> SweepLaunch:
    """Freeze once, record the sweep and its cells, and submit the first `max_concurrent` cells.

    `plan` is one `plan_sweep` just made for the same arguments (the CLI shows it first), so the cells are
    not validated twice. A refused sweep raises InvalidInput with every reason and leaves nothing behind.
    """
    from workbench.services.versions import freeze

    access.require(store, Permission.JOBS_WRITE, action="sweep.launch", target=f"dataset:{form.dataset}")
    backend = backends(form.backend)  # missing credentials stop the sweep before anything is recorded
    _check_overlap(form, grid)
    grid = collapse_grid(form, grid)
    if plan is None or plan.grid != grid or plan.max_concurrent != max_concurrent or (name and plan.name != name):
        plan = plan_sweep(store, form, grid, max_concurrent, name, backend=backend, today=today)
    if not plan.ok:
        raise InvalidInput("sweep refused: " + "; ".join(plan.refusals))
    version = plan.version or freeze(
        store, plan.dataset, plan.freeze_as or f"sweep-{plan.name}", note=f"frozen for sweep {plan.name}"
    ).name
    with store.write() as db:
        sweep = sweep_rows.insert_sweep(db, name=plan.name, grid=grid, max_concurrent=max_concurrent)
        dataset_id = dataset_rows.dataset_id(db, plan.dataset)
        for cell in plan.cells:
            assert cell.plan is not None  # a cell without a plan was refused above
            cell_form = form.model_copy(update={"params": cell.params, "name": cell.name,
                                                "dataset": f"{plan.dataset}@{version}"})
            sweep_rows.insert_pending_cell(
                db, sweep_id=sweep.id, form=cell_form.model_dump(mode="json"), name=cell.name,
                backend=form.backend.value, base_model=form.base_model, target=cell.plan.target, dataset_id=dataset_id,
                dataset_name=plan.dataset, version=version, hyperparameters=cell.plan.hyperparameters,
                train_records=cell.plan.train_records, validation_records=cell.plan.validation_records,
                train_tokens=cell.plan.estimate.train_tokens, estimate_usd=cell.estimate_usd,
                estimate=cell.plan.estimate.model_dump(mode="json"), note=form.note,
            )
        access.audit(db, "sweep.launch", f"sweep:{sweep.id}", name=plan.name, cells=len(plan.cells),
                     max_concurrent=max_concurrent, base_model=form.base_model, dataset=f"{plan.dataset}@{version}",
                     estimate_usd=plan.total_estimate_usd)
    done = advance_sweep(store, sweep.id, backends=backends, today=today)
    with store.connect() as db:
        _, free = sweep_rows.occupancy(db, sweep.id, datetime.now(UTC))
    return SweepLaunch(sweep=sweep, plan=plan, submitted=done.submitted, errors=done.errors, pending=len(free))


# --- advancing sweeps -------------------------------------------------------------------------------------


class Advanced(BaseModel):
    """What one pass over the sweeps submitted, and what it could not."""

    submitted: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


def advance_sweeps(
    store: Store, *, backends: jobs.BackendFactory = jobs.default_backend, owner: str | None = None,
    now: datetime | None = None, today: date | None = None,
) -> Advanced:
    """Submit pending cells of every sweep until each has `max_concurrent` active; one query when there are none."""
    with store.connect() as db:
        pending = sweep_rows.sweeps_with_pending(db)
    out = Advanced()
    for sweep_id in pending:
        done = advance_sweep(store, sweep_id, backends=backends, owner=owner, now=now, today=today)
        out.submitted += done.submitted
        out.errors += done.errors
    return out


def advance_sweep(
    store: Store, sweep_id: int, *, backends: jobs.BackendFactory = jobs.default_backend, owner: str | None = None,
    now: datetime | None = None, today: date | None = None,
) -> Advanced:
    """Fill one sweep's free slots: count and claim in one write, so two watchers never run past the limit."""
    me = owner or _owner()
    with store.write() as db:
        sweep = sweep_rows.get_sweep(db, sweep_id)
        active, free = sweep_rows.occupancy(db, sweep_id, now or datetime.now(UTC))
        slots = max(0, sweep.max_concurrent - active)
        claimed = [c for c in (sweep_rows.claim_pending(db, i, me, lease_s=CLAIM_S, now=now or datetime.now(UTC))
                               for i in free[:slots]) if c is not None]
    out = Advanced()
    if not claimed:
        return out
    starter = started_by(store, sweep_id)
    # The watcher submits later cells on behalf of whoever launched the sweep: each launch is theirs in the trail.
    with access.acting_as(starter) if starter is not None else contextlib.nullcontext():
        for row in claimed:
            ok, line = _submit_cell(store, sweep, row, backends, today)
            (out.submitted if ok else out.errors).append(line)
    return out


def started_by(store: Store, sweep_id: int) -> Actor | None:
    """Who launched a sweep, as its `sweep.launch` event recorded them; None for a sweep from before the trail.

    With the role they had then: they were allowed to launch all of its cells, and a cell refused later would
    only sit pending, asked again every round.
    """
    with store.connect() as db:
        found = audit_rows.select(db, action="sweep.launch", target=f"sweep:{sweep_id}", outcome="ok", limit=1)
    if not found:
        return None
    event = found[0]
    return Actor.model_validate({"email": event.actor, "name": event.actor, "role": event.role,
                                 "via": event.via if event.via in get_args(Via) else "cli"})


def _owner() -> str:
    from workbench.services.watcher import owner_id

    return owner_id()


def _submit_cell(
    store: Store, sweep: sweep_rows.SweepRow, row: job_rows.JobRow, backends: jobs.BackendFactory, today: date | None,
) -> tuple[bool, str]:
    """Launch a claimed cell with its stored form through `jobs.launch`; the launched job takes the cell's place.

    `jobs.launch` inserts its own job row, so the pending row is renamed while the launch runs
    (`claim_pending`) and removed once the launched job exists. A launch killed after it created the job
    leaves that job behind under the cell's name: the next claim adopts it instead of launching again.
    """
    data = sweep_rows.pending_form(row)
    if data is None:  # not a pending cell after all (it changed since the claim): leave it be
        return False, f"sweep {sweep.name}: job {row.id} is no longer a pending cell"
    form = jobs.LaunchForm.model_validate(data)
    name = str(form.name)
    where = f"sweep {sweep.name}: {name}"
    with store.write() as db:
        if sweep_rows.names_taken(db, [name]):
            launched = job_rows.get_job(db, name)
            sweep_rows.replace_pending(db, row.id, launched.id, sweep.id)
            return True, f"{where} was already launched (job {launched.id}); adopted it"
    try:
        job = jobs.launch(store, form, backends=backends, today=today)
    except BackendError as exc:
        with store.write() as db:
            if not sweep_rows.names_taken(db, [name]):  # the backend could not even be built: try again later
                sweep_rows.unclaim(db, row.id, name)
                return False, f"{where} waits: {exc}"
            failed = job_rows.get_job(db, name)
            sweep_rows.replace_pending(db, row.id, failed.id, sweep.id)
        return False, f"{where} failed: the provider refused it: {exc}"
    except (InvalidInput, Conflict) as exc:
        with store.write() as db:
            sweep_rows.fail_pending(db, row.id, name, str(exc))
        return False, f"{where} failed: {exc}"
    except Exception as exc:  # noqa: BLE001 - the watcher must keep going; the cell stays pending
        with store.write() as db:
            sweep_rows.unclaim(db, row.id, name)
        return False, f"{where} could not be submitted ({type(exc).__name__}: {exc}); it stays pending"
    with store.write() as db:
        sweep_rows.replace_pending(db, row.id, job.id, sweep.id)
    return True, f"{where}: submitted as job {job.id} ({job.state.value})"


# --- the result -------------------------------------------------------------------------------------------


class SweepResultRow(BaseModel):
    """One cell in the comparison table."""

    job_id: int
    name: str
    params: dict[str, Any] = Field(description="The grid's hyperparameters for this cell, as the job runs them.")
    state: str = Field(description="The job's state, or 'pending' for a cell not yet submitted.")
    provider_status: str | None = None
    final_train_loss: float | None = None
    best_val_loss: float | None = None
    estimate_usd: float | None = None
    best: bool = False
    metrics: list[MetricPoint] = Field(default_factory=list, description="For overlaid curves.")


class SweepSummary(BaseModel):
    sweep: sweep_rows.SweepRow
    rows: list[SweepResultRow]
    best: str | None = Field(description="The cell with the lowest validation loss (training loss when none has one).")
    total_estimate_usd: float | None
    counts: dict[str, int] = Field(description="Cells per state ('pending' for not yet submitted).")


def sweep_summary(store: Store, sweep: int | str) -> SweepSummary:
    """The comparison table of a sweep's cells, with the best run by validation loss marked."""
    access.require(store, Permission.JOBS_READ, action="sweep.show", target=f"sweep:{sweep}")
    with store.connect() as db:
        row = sweep_rows.get_sweep(db, sweep)
        cells = sweep_rows.cells(db, row.id)
    found = compare_jobs(store, [c.id for c in cells]) if len(cells) >= 2 else None
    losses = {r.id: r for r in found.rows} if found else {}
    best = found.best if found else None
    rows: list[SweepResultRow] = []
    for cell in cells:
        compared = losses.get(cell.id)
        pending = sweep_rows.pending_form(cell) is not None
        rows.append(SweepResultRow(
            job_id=cell.id, name=cell.name, params={k: cell.hyperparameters.get(k) for k in row.grid},
            state="pending" if pending else cell.state.value, provider_status=cell.provider_status,
            final_train_loss=compared.final_train_loss if compared else None,
            best_val_loss=compared.best_val_loss if compared else None, estimate_usd=cell.estimate_usd,
            best=cell.name == best, metrics=compared.metrics if compared else [],
        ))
    if found is None and len(cells) == 1:
        single = _single(store, cells[0].id)
        rows[0] = rows[0].model_copy(update=single)
        best = rows[0].name if (single["best_val_loss"] or single["final_train_loss"]) is not None else None
        rows[0].best = best is not None
    priced = [r.estimate_usd for r in rows if r.estimate_usd is not None]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    return SweepSummary(sweep=row, rows=rows, best=best, total_estimate_usd=round(sum(priced), 6) if priced else None,
                        counts=counts)


def _single(store: Store, job_id: int) -> dict[str, Any]:
    with store.connect() as db:
        points = job_rows.job_metrics(db, job_id)
    train = [p.train_loss for p in points if p.train_loss is not None]
    val = [p.val_loss for p in points if p.val_loss is not None]
    return {"final_train_loss": train[-1] if train else None, "best_val_loss": min(val) if val else None,
            "metrics": points}


def list_sweeps(store: Store) -> list[sweep_rows.SweepRow]:
    access.require(store, Permission.JOBS_READ, action="sweep.list")
    with store.connect() as db:
        return sweep_rows.list_sweeps(db)
