"""The models fine-tuning jobs produced: register, list, activate per task, compare."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from workbench.domain.access import Permission
from workbench.errors import InvalidInput
from workbench.services import access
from workbench.store import Store
from workbench.store import jobs as job_rows
from workbench.store import models as model_rows
from workbench.store.models import ModelRow


def _final_metrics(points: list[Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    train = [p.train_loss for p in points if p.train_loss is not None]
    val = [p.val_loss for p in points if p.val_loss is not None]
    if train:
        out["final_train_loss"] = train[-1]
    if val:
        out["final_val_loss"] = val[-1]
        out["best_val_loss"] = min(val)
    if points:
        out["steps"] = float(points[-1].step)
    return out


def register_from_job(store: Store, job_id: int) -> ModelRow | None:
    """Record the model a succeeded job produced (idempotent: a second call refreshes the same row)."""
    with store.write() as db:
        job = job_rows.get_job(db, job_id)
        if not job.output_model:
            return None
        metrics = _final_metrics(job_rows.job_metrics(db, job.id))
        row_id = model_rows.upsert_from_job(
            db, job_id=job.id, name=job.name, backend=job.backend, model_id=job.output_model,
            base_model=job.base_model, dataset_name=job.dataset_name, version=job.version,
            hyperparameters=job.hyperparameters, metrics=metrics, cost_usd=job.estimate_usd,
        )
        return model_rows.get_model(db, row_id)


def list_models(store: Store) -> list[ModelRow]:
    access.require(store, Permission.MODELS_READ, action="model.list")
    with store.connect() as db:
        return model_rows.list_models(db)


def activate_model(store: Store, model: int | str, task: str) -> ModelRow:
    """Mark a model as the one serving `task` (one active model per task)."""
    access.require(store, Permission.MODELS_WRITE, action="model.activate", target=f"model:{model}")
    if not task.strip():
        raise InvalidInput("give the task the model serves, e.g. --task support-triage")
    with store.write() as db:
        row = model_rows.get_model(db, model)
        replaced = model_rows.active_for(db, task.strip())
        model_rows.activate(db, row.id, task.strip())
        access.audit(db, "model.activate", f"model:{row.id}", name=row.name, task=task.strip(),
                     replaced=f"model:{replaced.id}" if replaced and replaced.id != row.id else None,
                     replaced_name=replaced.name if replaced and replaced.id != row.id else None)
        return model_rows.get_model(db, row.id)


class ModelComparison(BaseModel):
    models: list[ModelRow]
    hyperparameters: dict[str, list[Any]]
    metrics: dict[str, list[float | None]]


def compare_models(store: Store, models: list[int | str]) -> ModelComparison:
    """Side by side: every hyperparameter and metric any of them has, one column per model."""
    access.require(store, Permission.MODELS_READ, action="model.compare")
    if len(models) < 2:
        raise InvalidInput("compare needs at least two models")
    with store.connect() as db:
        rows = [model_rows.get_model(db, m) for m in models]
    keys = sorted({k for r in rows for k in r.hyperparameters})
    metric_keys = sorted({k for r in rows for k in r.metrics})
    return ModelComparison(
        models=rows,
        hyperparameters={k: [r.hyperparameters.get(k) for r in rows] for k in keys},
        metrics={k: [r.metrics.get(k) for r in rows] for k in metric_keys},
    )
