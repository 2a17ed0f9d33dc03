"""Adopt fine-tuning jobs started outside the workbench (OpenAI), so the watcher follows them and they compare.

An imported job is a ledger row like any other, with no dataset behind it: its provider job id, state,
provider status, base model, resolved hyperparameters and output model come from the provider
(`OpenAIBackend.import_job` / `list_remote_jobs`, see
https://platform.openai.com/docs/api-reference/fine-tuning/list). A job the ledger already holds (launched
here, or imported before) is recognised by its provider job id and left alone, so importing twice adds
nothing. An active job is left due at once for the watcher; a finished one is polled once here (the watcher
only polls active jobs), so its metrics and events are there to compare and its model is registered.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from pydantic import BaseModel, Field

from workbench.domain.access import Permission
from workbench.domain.jobs import BackendName, JobState, PollCursor, Submitted
from workbench.errors import InvalidInput
from workbench.providers.base import BackendError, FineTuningBackend
from workbench.services import access, jobs
from workbench.store import Store
from workbench.store import jobs as job_rows
from workbench.store import sweeps as sweep_rows

IMPORTABLE = (BackendName.OPENAI,)


class RemoteJobLike(Protocol):
    """What a provider says about one of its jobs (`providers.openai_ft.RemoteJob`)."""

    provider_job_id: str
    name: str
    base_model: str
    state: JobState
    provider_status: str
    hyperparameters: dict[str, Any]
    output_model: str | None

    def to_submitted(self) -> Submitted: ...


class ImportResult(BaseModel):
    """What an import adopted, and what it left alone (with why)."""

    imported: list[job_rows.JobRow] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list, description="One line per job already in the ledger.")
    errors: list[str] = Field(default_factory=list, description="One line per job adopted but not yet polled.")


def import_jobs(
    store: Store, backend_name: BackendName | str = BackendName.OPENAI, *, job: str | None = None, limit: int = 20,
    backends: jobs.BackendFactory = jobs.default_backend,
) -> ImportResult:
    """Adopt one provider job (`job`), or the account's `limit` most recent ones, into the ledger."""
    access.require(store, Permission.JOBS_WRITE, action="job.import", target=f"backend:{backend_name}")
    name = BackendName(backend_name)
    if name not in IMPORTABLE:
        raise InvalidInput(f"importing jobs works for {', '.join(b.value for b in IMPORTABLE)} only, not {name.value}")
    if limit < 1:
        raise InvalidInput(f"--limit is {limit}; give 1 or more")
    if job is not None and not job.strip():
        raise InvalidInput("--job is blank; give an OpenAI fine-tuning job id such as ftjob-abc123, "
                           "or leave --job out to import the most recent jobs")
    backend = backends(name)
    if not hasattr(backend, "list_remote_jobs") or not hasattr(backend, "import_job"):
        raise InvalidInput(f"the {name.value} backend cannot list its jobs; nothing to import")
    remote: list[RemoteJobLike] = (
        [backend.import_job(job.strip())] if job else list(backend.list_remote_jobs(limit=limit))  # type: ignore[attr-defined]
    )
    result = ImportResult()
    for found in remote:
        adopted = _adopt(store, name, found, result)
        if adopted is not None:
            result.imported.append(_first_poll(store, backend, adopted, result))
    return result


def _adopt(store: Store, backend: BackendName, found: RemoteJobLike, result: ImportResult) -> job_rows.JobRow | None:
    submitted = found.to_submitted()
    with store.write() as db:
        known = sweep_rows.job_by_provider_id(db, backend.value, found.provider_job_id)
        if known is not None and _never_read(known):
            return known  # imported before, but its first poll failed: read it now
        if known is not None:
            result.skipped.append(f"{found.provider_job_id} is already in the ledger as job {known.id} {known.name!r}; "
                                  "nothing imported")
            return None
        name = _free_name(db, found.name, found.provider_job_id, backend)
        row = job_rows.insert_job(
            db, name=name, backend=backend.value, provider_job_id=found.provider_job_id, base_model=found.base_model,
            target="openai" if backend is BackendName.OPENAI else None, state=found.state.value,
            provider_status=found.provider_status, hyperparameters=found.hyperparameters, request=submitted.request,
            files=submitted.files, output_model=found.output_model, submitted_at=_created(found),
            note=f"imported from {backend.value} ({found.provider_job_id})",
        )
        access.audit(db, "job.import", f"job:{row.id}", name=row.name, backend=backend.value,
                     provider_job_id=found.provider_job_id, state=found.state.value)
        return row


def _never_read(job: job_rows.JobRow) -> bool:
    """True for an imported, finished job whose first poll never landed: the watcher will not poll it.

    Any recorded poll writes the backend's cursor; an untouched default cursor means none ever did.
    """
    return job.note.startswith("imported from") and not job.state.active and job.cursor == PollCursor()


def _created(found: RemoteJobLike) -> str | None:
    created = getattr(found, "created_at", None)
    return created.isoformat(timespec="seconds") if created is not None else None


def _free_name(db: Any, wanted: str, provider_job_id: str, backend: BackendName) -> str:
    """The remote job's own name when the ledger can take it, else one made from its id."""
    candidates = [wanted, provider_job_id, f"imported-{provider_job_id}"]
    for raw in candidates:
        name = re.sub(r"[^a-zA-Z0-9_.-]+", "-", raw).strip("-.")[: jobs.MAX_NAME]
        try:
            jobs.check_name(name, backend)
        except InvalidInput:
            continue
        if not sweep_rows.names_taken(db, [name]):
            return name
    stem = re.sub(r"[^a-zA-Z0-9_.-]+", "-", provider_job_id).strip("-.")[: jobs.MAX_NAME - 4] or "imported"
    return next(f"{stem}-{i}" for i in range(2, 10_000) if not sweep_rows.names_taken(db, [f"{stem}-{i}"]))


def _first_poll(store: Store, backend: FineTuningBackend, job: job_rows.JobRow, result: ImportResult) -> job_rows.JobRow:
    """Poll a finished job once, since the watcher never will; an active one the watcher picks up next round."""
    if job.state.active or job.provider_job_id is None:
        return job
    try:
        snapshot = backend.poll(job.provider_job_id, job.cursor)
    except Exception as exc:  # noqa: BLE001 - the job is adopted either way; the next import reads it
        detail = str(exc) if isinstance(exc, BackendError) else f"{type(exc).__name__}: {exc}"
        result.errors.append(f"{job.name}: adopted, but its history could not be read yet: {detail}; run "
                             f"`workbench jobs import --job {job.provider_job_id}` again to read it")
        return job
    with store.write() as db:
        job_rows.record_snapshot(db, job, snapshot)
    if snapshot.state is JobState.SUCCEEDED:
        from workbench.services.models import register_from_job

        register_from_job(store, job.id)
    with store.connect() as db:
        return job_rows.get_job(db, job.id)
