"""A generated history of fine-tuning jobs for the demo workspace, so the Jobs and Models pages show something
on first start. Every job is named `demo-...`, says "demo: generated, not a real job" in its note and events,
and is in a final state, so the watcher never polls a provider for it.
"""

from __future__ import annotations

import contextlib
import math
import random
from datetime import UTC, datetime, timedelta

from workbench.domain.jobs import BackendName, JobEvent, JobState, MetricPoint
from workbench.services.models import register_from_job
from workbench.store import Store
from workbench.store import jobs as job_rows

DEMO_NOTE = "demo: generated history, not a real job"

# name, backend, base model, dataset, hyperparameters, final state, steps, final loss, failure
_JOBS: list[tuple[str, BackendName, str, str, dict[str, object], JobState, int, float, str | None]] = [
    ("demo-stylist-nova-lr1e-5", BackendName.BEDROCK, "amazon.nova-micro-v1:0:128k", "demo-stylist-feedback",
     {"epochCount": 2, "learningRate": 1e-5}, JobState.SUCCEEDED, 60, 0.62, None),
    ("demo-stylist-nova-lr5e-5", BackendName.BEDROCK, "amazon.nova-micro-v1:0:128k", "demo-stylist-feedback",
     {"epochCount": 2, "learningRate": 5e-5}, JobState.SUCCEEDED, 60, 0.48, None),
    ("demo-geo-gpt4o-mini", BackendName.OPENAI, "gpt-4o-mini-2024-07-18", "demo-geo-compliance",
     {"n_epochs": 3}, JobState.SUCCEEDED, 90, 0.21, None),
    ("demo-optimization-haiku", BackendName.BEDROCK, "anthropic.claude-3-haiku-20240307-v1:0:200k",
     "demo-optimization-modeling", {"epochCount": 2}, JobState.FAILED, 0, 0.0,
     "Validation failed: the validation file has 25 records; Claude 3 Haiku needs at least 32 (demo)"),
    ("demo-geo-local-lora", BackendName.LOCAL, "/models/tiny-chat", "demo-geo-compliance",
     {"epochs": 3, "learning_rate": 2e-4, "lora_r": 8}, JobState.CANCELLED, 40, 0.9, None),
]


def _curve(steps: int, final: float, seed: int) -> list[MetricPoint]:
    rng = random.Random(seed)
    start = final * 4 + 1.0
    points = []
    for step in range(1, steps + 1):
        frac = step / steps
        train = final + (start - final) * math.exp(-4 * frac) + rng.uniform(-0.05, 0.05)
        val = final * 1.08 + (start - final) * math.exp(-3.6 * frac) if step % 10 == 0 else None
        points.append(MetricPoint(step=step, epoch=round(frac * 2, 3), train_loss=round(train, 4),
                                  val_loss=round(val, 4) if val is not None else None))
    return points


DEMO_VERSION = "demo-v1"


def _freeze_demo_versions(store: Store, names: set[str]) -> None:
    """Freeze each demo dataset once as demo-v1, so a demo job's clone or retry points at real data."""
    from workbench.errors import Conflict, NotFound
    from workbench.services.versions import freeze

    for name in sorted(names):
        with contextlib.suppress(Conflict, NotFound):
            freeze(store, name, DEMO_VERSION, note="demo: the version the demo job history trained on")


def load_demo_jobs(store: Store, *, now: datetime | None = None) -> int:
    """Add the demo job history once; return how many jobs were added (0 when they are there already)."""
    moment = now or datetime.now(UTC)
    with store.connect() as db:
        existing = {j.name for j in job_rows.list_jobs(db)}
    added = 0
    _freeze_demo_versions(store, {job[3] for job in _JOBS if job[0] not in existing})
    for index, (name, backend, model, dataset, params, state, steps, final, failure) in enumerate(_JOBS):
        if name in existing:
            continue
        created = moment - timedelta(days=len(_JOBS) - index, hours=3)
        finished = created + timedelta(minutes=40 + steps)
        output = f"demo:{name}" if state is JobState.SUCCEEDED else None
        with store.write() as db:
            dataset_id = db.execute("SELECT id FROM datasets WHERE name = ?", [dataset]).fetchone()
            row = job_rows.insert_job(
                db, dataset_id=dataset_id[0] if dataset_id else None, name=name, backend=backend.value,
                base_model=model, dataset_name=dataset, version=DEMO_VERSION, state=state.value, hyperparameters=params, note=DEMO_NOTE, created_at=created.isoformat(timespec="seconds"),
            )
            job_rows.update_job(
                db, row.id, provider_job_id=f"demo-{index}", provider_status=f"{state.value} (demo)",
                submitted_at=created.isoformat(timespec="seconds"),
                started_at=(created + timedelta(minutes=5)).isoformat(timespec="seconds"),
                finished_at=finished.isoformat(timespec="seconds"), output_model=output, failure_message=failure,
                estimate_usd=round(0.02 * (index + 1), 2),
            )
            job_rows.add_metrics(db, row.id, _curve(steps, final, seed=index))
            job_rows.add_events(db, row.id, [
                JobEvent(key="demo-created", at=created, message=f"{DEMO_NOTE}: submitted to {backend.value}"),
                JobEvent(key="demo-final", at=finished, level="error" if failure else "info",
                         message=failure or f"{state.value} (demo)"),
            ])
        if output:
            register_from_job(store, row.id)
        added += 1
    return added
