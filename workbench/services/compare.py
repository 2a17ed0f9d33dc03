"""Compare fine-tuning jobs: loss curves side by side, the hyperparameters that differ, the best run."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from workbench.domain.access import Permission
from workbench.domain.jobs import MetricPoint
from workbench.errors import InvalidInput
from workbench.services import access
from workbench.store import Store
from workbench.store import jobs as job_rows


class ComparedJob(BaseModel):
    id: int
    name: str
    state: str
    hyperparameters: dict[str, Any]
    final_train_loss: float | None
    best_val_loss: float | None
    metrics: list[MetricPoint] = Field(default_factory=list)


class JobComparison(BaseModel):
    rows: list[ComparedJob]
    differing: dict[str, list[Any]] = Field(description="Each hyperparameter whose value is not the same in every job.")
    best: str | None = Field(description="The job with the lowest validation loss (training loss when none has one); "
                                         "None when the jobs trained on different data, whose losses do not compare.")
    warning: str | None = None


def compare_jobs(store: Store, jobs: list[int | str]) -> JobComparison:
    """Load each job's metrics; mark the best by validation loss, falling back to final training loss."""
    access.require(store, Permission.JOBS_READ, action="job.compare")
    if len(jobs) < 2:
        raise InvalidInput("compare needs at least two jobs")
    rows: list[ComparedJob] = []
    datas: list[tuple[str | None, str | None]] = []
    with store.connect() as db:
        for ref in jobs:
            job = job_rows.get_job(db, ref)
            datas.append((job.dataset_name, job.version))
            points = job_rows.job_metrics(db, job.id)
            train = [p.train_loss for p in points if p.train_loss is not None]
            val = [p.val_loss for p in points if p.val_loss is not None]
            rows.append(ComparedJob(
                id=job.id, name=job.name, state=job.state.value, hyperparameters=job.hyperparameters,
                final_train_loss=train[-1] if train else None, best_val_loss=min(val) if val else None, metrics=points,
            ))
    keys = sorted({k for r in rows for k in r.hyperparameters})
    differing = {k: [r.hyperparameters.get(k) for r in rows] for k in keys
                 if len({repr(r.hyperparameters.get(k)) for r in rows}) > 1}
    scored = [(r.best_val_loss, r.name) for r in rows if r.best_val_loss is not None] or \
             [(r.final_train_loss, r.name) for r in rows if r.final_train_loss is not None]
    best = min(scored)[1] if scored else None
    data = sorted({f"{d}@{v}" for d, v in datas if d})  # an imported job's data is unknown, not different
    warning = None
    if len(data) > 1:
        best, warning = None, (f"these jobs trained on different data ({', '.join(data)}): their losses do not compare, "
                               "so no run is marked best")
    return JobComparison(rows=rows, differing=differing, best=best, warning=warning)
