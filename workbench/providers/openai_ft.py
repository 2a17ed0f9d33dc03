"""OpenAI fine-tuning through the official `openai` SDK: upload, create, watch, cancel, import.

Facts this module relies on (openai/openai-python `src/openai/types/fine_tuning/` at 3.x, and the guide
https://platform.openai.com/docs/guides/fine-tuning; API reference
https://platform.openai.com/docs/api-reference/fine-tuning):

- Training files are uploaded with `purpose="fine-tune"`; the job names them by file id.
- `jobs.create(model, training_file, validation_file, suffix (<= 64 characters), seed, metadata,
  method={"type": "supervised", "supervised": {"hyperparameters": {...}}})`. Top-level
  `hyperparameters=` is deprecated in favour of `method`. Supervised hyperparameters are `n_epochs`,
  `batch_size` and `learning_rate_multiplier`, each a number or `"auto"`.
- Job status is one of `validating_files | queued | running | succeeded | failed | cancelled`.
- Events are listed newest first; `after` is the id of the last event of the previous page. Events of
  type `metrics` carry `data` with `step, train_loss, valid_loss, full_valid_loss, total_steps`.
- The result file is a CSV `step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy`
  (valid columns empty on most rows). openai/openai-cookbook `examples/How_to_finetune_chat_models.ipynb`
  decodes it with `base64.b64decode(...)`, so it may arrive base64-encoded: both forms are read.

The SDK reads `OPENAI_API_KEY` and `OPENAI_BASE_URL`; so does `OpenAIBackend.from_environment`.
This module never touches the store: the jobs service writes what `poll` returns.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
from pydantic import BaseModel, ConfigDict, Field

from workbench.domain.jobs import (
    MAX_STEP,
    BackendName,
    JobEvent,
    JobSnapshot,
    JobState,
    LaunchRequest,
    MetricPoint,
    PollCursor,
    Submitted,
)
from workbench.providers.base import BackendError, JobNotFound, MissingCredentials, Throttled

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
DEFAULT_MAX_RETRIES = 2
MAX_SUFFIX = 64
MAX_METADATA_VALUE = 512

STATES: dict[str, JobState] = {
    "validating_files": JobState.VALIDATING,
    "queued": JobState.QUEUED,
    "running": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
}

HYPERPARAMETERS: dict[str, type] = {"n_epochs": int, "batch_size": int, "learning_rate_multiplier": float}
"""Supervised hyperparameters OpenAI accepts under `method`, with the type of a number (or "auto")."""

TOP_LEVEL = ("seed",)
"""Launch parameters that OpenAI takes beside `method`, not inside it."""

_SUFFIX_BAD = re.compile(r"[^A-Za-z0-9_-]+")
_LEVELS = {"warn": "warning", "error": "error", "info": "info"}


def state_of(status: str | None) -> JobState:
    """Map an OpenAI job status to the workbench's closed set; anything new maps to UNKNOWN."""
    return STATES.get(status or "", JobState.UNKNOWN)


def suffix_for(job_name: str) -> tuple[str, str | None]:
    """Turn a job name into an OpenAI model suffix, with a note for the user when it had to change.

    The suffix ends up inside the model id (`ft:<base>:<org>:<suffix>:<id>`), whose parts are split on
    `:`; keeping letters, digits, `-` and `_` and at most 64 characters keeps it readable and legal.
    """
    suffix = _SUFFIX_BAD.sub("-", job_name).strip("-")[:MAX_SUFFIX].strip("-") or "workbench"
    if suffix == job_name:
        return suffix, None
    return suffix, (
        f"job name {job_name!r} was changed to the OpenAI model suffix {suffix!r}: a suffix holds at most "
        f"{MAX_SUFFIX} letters, digits, '-' or '_'; rename the job to choose the suffix yourself"
    )


class RemoteJob(BaseModel):
    """An OpenAI job as found on the provider: what the ledger needs to adopt and watch it."""

    model_config = ConfigDict(frozen=True)

    provider_job_id: str
    name: str = Field(description="The workbench name recorded in metadata, else the model suffix, else the job id.")
    base_model: str
    state: JobState
    provider_status: str
    created_at: datetime
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="As OpenAI resolved them.")
    method: str = Field(default="supervised", description="supervised, dpo or reinforcement.")
    training_file: str
    validation_file: str | None = None
    output_model: str | None = None
    request: dict[str, Any] = Field(default_factory=dict, description="A create payload equivalent to the job's.")

    def to_submitted(self) -> Submitted:
        """Describe the job as if the workbench had launched it, so the ledger stores it like any other."""
        files = {"train": self.training_file}
        if self.validation_file:
            files["validation"] = self.validation_file
        return Submitted(
            provider_job_id=self.provider_job_id,
            provider_status=self.provider_status,
            state=self.state,
            request=self.request,
            files=files,
        )


class OpenAIBackend:
    """Run fine-tuning jobs on OpenAI; built with an `openai.OpenAI` client, or a key and base URL."""

    name = BackendName.OPENAI

    def __init__(
        self,
        client: openai.OpenAI | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        events_page_size: int = 100,
    ) -> None:
        if client is None:
            if not api_key:
                raise MissingCredentials(f"{API_KEY_ENV} is not set: give an OpenAI API key to launch or watch OpenAI jobs")
            client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=max_retries)
        self.client = client
        self.events_page_size = events_page_size

    @classmethod
    def from_environment(cls, *, max_retries: int = DEFAULT_MAX_RETRIES) -> OpenAIBackend:
        """Build the backend from OPENAI_API_KEY and OPENAI_BASE_URL, read as the SDK reads them."""
        api_key = os.environ.get(API_KEY_ENV, "").strip()
        if not api_key:
            raise MissingCredentials(
                f"{API_KEY_ENV} is not set: export an OpenAI API key (and {BASE_URL_ENV} for a proxy or "
                "compatible server) before launching or watching OpenAI jobs"
            )
        base_url = os.environ.get(BASE_URL_ENV, "").strip() or None
        return cls(api_key=api_key, base_url=base_url, max_retries=max_retries)

    @property
    def base_url(self) -> str:
        return str(self.client.base_url)

    # -- launch ------------------------------------------------------------------------------------

    def notes(self, request: LaunchRequest) -> list[str]:
        """Return what the backend changed from the request on its way to OpenAI (e.g. the suffix)."""
        note = suffix_for(request.job_name)[1]
        return [note] if note else []

    def preview(self, request: LaunchRequest) -> dict[str, Any]:
        """Return the exact create payload, with placeholders where uploaded file ids will go."""
        validation = _placeholder(request.validation_file) if request.validation_file else None
        return _create_payload(request, _placeholder(request.train_file), validation)

    def submit(self, request: LaunchRequest) -> Submitted:
        """Upload the training (and validation) file, then create the job with the preview's payload."""
        payload = self.preview(request)  # checks the hyperparameters before anything is uploaded
        files = {"train": self._upload(request.train_file)}
        if request.validation_file:
            files["validation"] = self._upload(request.validation_file)
        payload["training_file"] = files["train"]
        if "validation" in files:
            payload["validation_file"] = files["validation"]
        with self._translating():
            job = self.client.fine_tuning.jobs.create(**payload)
        return Submitted(
            provider_job_id=job.id, provider_status=job.status, state=state_of(job.status), request=payload, files=files
        )

    def _upload(self, path: str) -> str:
        file = Path(path)
        if not file.is_file():
            raise BackendError(f"{path}: the exported file to upload does not exist; export the dataset version again")
        with self._translating(), file.open("rb") as handle:
            return self.client.files.create(file=(file.name, handle), purpose="fine-tune").id

    # -- watch -------------------------------------------------------------------------------------

    def poll(self, provider_job_id: str, cursor: PollCursor) -> JobSnapshot:
        """Return the job's state and the events and metrics that appeared since `cursor`."""
        with self._translating(provider_job_id):
            job = self.client.fine_tuning.jobs.retrieve(provider_job_id)
            fresh = self._events_since(provider_job_id, cursor.last_event)
        state = state_of(job.status)
        extra = dict(cursor.extra)
        seen = _ranges_to_steps(extra.get("steps", []))
        messages, points, skipped = _split_events(fresh, seen, extra)
        if state is JobState.SUCCEEDED and job.result_files and not extra.get("result_read"):
            extra["result_read"] = True
            rows, warnings, bad_rows = self._result_rows(job)
            messages.extend(warnings)
            skipped += bad_rows
            points.update({row.step: row for row in rows if row.step not in seen and row.step not in points})
        if skipped:
            messages.append(_skipped_event(provider_job_id, fresh, skipped))
        n_epochs = _resolved_epochs(job)
        new_points = [
            point.model_copy(update={"epoch": _epoch(point.step, extra.get("total_steps"), n_epochs)})
            for point in sorted(points.values(), key=lambda p: p.step)
        ]
        extra["steps"] = _steps_to_ranges(seen | set(points))
        last_step = max([cursor.last_step or 0, *points]) if points or cursor.last_step is not None else None
        return JobSnapshot(
            state=state,
            provider_status=job.status,
            events=tuple(messages),
            metrics=tuple(new_points),
            cursor=PollCursor(last_event=fresh[-1].id if fresh else cursor.last_event, last_step=last_step, extra=extra),
            output_model=job.fine_tuned_model,
            failure_message=_failure(job) if state is JobState.FAILED else None,
            trained_tokens=job.trained_tokens,
            progress=_progress(state, last_step, extra.get("total_steps")),
            estimated_finish=_time(job.estimated_finish),  # out of range: ignored
        )

    def _events_since(self, job_id: str, last_event: str | None) -> list[Any]:
        """Page through events newest first until the cursor's event; return the new ones oldest first."""
        found: list[Any] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self.events_page_size}
            if after:
                kwargs["after"] = after
            page = self.client.fine_tuning.jobs.list_events(job_id, **kwargs)
            for event in page.data:
                if event.id == last_event:
                    return found[::-1]
                found.append(event)
            if not page.data or not page.has_more:
                return found[::-1]
            after = page.data[-1].id

    def _result_rows(self, job: Any) -> tuple[list[MetricPoint], list[JobEvent], int]:
        """Read every step from the job's result files, with a warning per file that cannot be read.

        The job has succeeded whatever its result file holds: a file OpenAI no longer serves (404), or one
        that is neither CSV nor base64 CSV, costs its step metrics (the metrics events are kept), never the
        state change. Only a rate limit is raised, so the next poll reads the file once the key may again.
        Returns the rows, the warnings and how many rows were skipped for a bad step or loss.
        """
        rows: list[MetricPoint] = []
        warnings: list[JobEvent] = []
        skipped = 0
        for file_id in job.result_files or []:
            try:
                with self._translating():
                    raw = self.client.files.content(file_id).content
            except Throttled:
                raise
            except BackendError as exc:
                warnings.append(_result_warning(file_id, f"could not be read ({exc})"))
                continue
            text = _decode_result(raw)
            if text is None:
                warnings.append(_result_warning(file_id, "is neither a CSV nor a base64-encoded CSV"))
                continue
            found, bad = _rows_from_csv(text)
            rows.extend(found)
            skipped += bad
        return rows, warnings, skipped

    def checkpoints(self, provider_job_id: str) -> list[dict[str, Any]]:
        """List the job's saved checkpoints (OpenAI keeps the last three epochs'), oldest first."""
        with self._translating(provider_job_id):
            page = self.client.fine_tuning.jobs.checkpoints.list(provider_job_id, limit=100)
        return [
            {
                "id": c.id,
                "model": c.fine_tuned_model_checkpoint,
                "step": c.step_number,
                "metrics": c.metrics.model_dump(exclude_none=True),
                "at": _time(c.created_at),
            }
            for c in reversed(page.data)
        ]

    # -- manage ------------------------------------------------------------------------------------

    def cancel(self, provider_job_id: str) -> None:
        """Ask OpenAI to cancel the job; the next poll reports `cancelled`."""
        with self._translating(provider_job_id):
            self.client.fine_tuning.jobs.cancel(provider_job_id)

    def list_remote_jobs(self, limit: int = 20) -> list[RemoteJob]:
        """List the account's most recent fine-tuning jobs, newest first, to choose some to import."""
        with self._translating():
            page = self.client.fine_tuning.jobs.list(limit=limit)
        return [_remote(job) for job in page.data[:limit]]

    def import_job(self, provider_job_id: str) -> RemoteJob:
        """Fetch one existing OpenAI job so the ledger can adopt it and the watcher follow it."""
        with self._translating(provider_job_id):
            return _remote(self.client.fine_tuning.jobs.retrieve(provider_job_id))

    @contextmanager
    def _translating(self, job_id: str | None = None) -> Iterator[None]:
        """Turn the SDK's errors into the workbench's, each saying what went wrong and what to do."""
        try:
            yield
        except openai.RateLimitError as exc:
            raise Throttled(f"OpenAI is rate-limiting this key: {_message(exc)}; retry later (nothing was lost)") from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise MissingCredentials(
                f"{API_KEY_ENV} was refused: {_message(exc)}; set a valid key with fine-tuning access"
            ) from exc
        except openai.NotFoundError as exc:
            if job_id:
                raise JobNotFound(
                    f"OpenAI fine-tuning job {job_id} was not found: it was deleted or belongs to another "
                    "organisation; mark it gone or import it with the right key"
                ) from exc
            raise BackendError(f"OpenAI answered 404 at {self.base_url}: {_message(exc)}") from exc
        except openai.BadRequestError as exc:
            where = f" (parameter {exc.param!r})" if exc.param else ""
            raise BackendError(f"OpenAI refused the request{where}: {_message(exc)}") from exc
        except openai.APIConnectionError as exc:
            raise BackendError(
                f"could not reach the OpenAI API at {self.base_url}: {exc}; check {BASE_URL_ENV} and the network"
            ) from exc
        except openai.APIStatusError as exc:
            raise BackendError(f"OpenAI answered {exc.status_code}: {_message(exc)}; try again later") from exc


def _create_payload(request: LaunchRequest, training_file: str, validation_file: str | None) -> dict[str, Any]:
    hyperparameters, top_level = _split_parameters(request.hyperparameters)
    payload: dict[str, Any] = {"model": request.base_model, "training_file": training_file}
    if validation_file:
        payload["validation_file"] = validation_file
    payload["suffix"] = suffix_for(request.job_name)[0]
    payload.update(top_level)
    payload["metadata"] = {"workbench_job": request.job_name[:MAX_METADATA_VALUE]}
    payload["method"] = {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}
    return payload


def _split_parameters(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the user's parameters and split them into method hyperparameters and top-level fields."""
    hyperparameters: dict[str, Any] = {}
    top_level: dict[str, Any] = {}
    for key, value in values.items():
        if value is None or value == "":
            continue  # empty means the provider's default
        if key in TOP_LEVEL:
            top_level[key] = _number(key, value, int, allow_auto=False)
        elif key in HYPERPARAMETERS:
            hyperparameters[key] = _number(key, value, HYPERPARAMETERS[key], allow_auto=True)
        else:
            known = ", ".join([*HYPERPARAMETERS, *TOP_LEVEL])
            raise BackendError(f"hyperparameters.{key}: OpenAI supervised fine-tuning has no such setting; use {known}")
    return hyperparameters, top_level


def _number(key: str, value: Any, kind: type, *, allow_auto: bool) -> Any:
    if allow_auto and value == "auto":
        return value
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(float(value)) if kind is int else kind(value)
        if kind is int and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        auto = ' or "auto"' if allow_auto else ""
        wanted = "a whole number" if kind is int else "a number"
        raise BackendError(f"hyperparameters.{key}={value!r}: give {wanted}{auto}") from None
    return number


def _placeholder(path: str) -> str:
    return f"<uploaded: {Path(path).name}>"


def _message(exc: openai.APIStatusError) -> str:
    """Return the provider's own message ('Incorrect API key provided...'), not the SDK's wrapper."""
    body = exc.body
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return exc.message


def _time(seconds: Any) -> datetime | None:
    """A provider timestamp as a datetime; None when absent or beyond what a datetime holds (year 1..9999)."""
    if not seconds or isinstance(seconds, bool):
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def _job_event(event: Any) -> JobEvent | None:
    """A provider event as a job event; a malformed time reads as now and a missing message as empty text.

    An event without an id cannot be keyed (a re-poll would double it), so it is dropped.
    """
    key = getattr(event, "id", None)
    if not isinstance(key, str) or not key:
        return None
    message = getattr(event, "message", None)
    return JobEvent(
        key=key,
        at=_time(getattr(event, "created_at", None)) or datetime.now(UTC),
        level=_LEVELS.get(str(getattr(event, "level", "") or ""), "info"),
        message=message if isinstance(message, str) else "" if message is None else str(message),
    )


def _loss(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _good_loss(value: Any) -> bool:
    """True for an absent loss or a finite, non-negative one; anything else makes the row suspect."""
    if value is None or value == "":
        return True
    number = _loss(value)
    return number is not None and math.isfinite(number) and number >= 0


def _point(step: Any, train_loss: Any, full_valid_loss: Any, valid_loss: Any) -> MetricPoint | None:
    """One step's point, or None when the step is not a whole number in range or a loss is not a real loss."""
    if not all(_good_loss(v) for v in (train_loss, full_valid_loss, valid_loss)):
        return None
    val = _loss(full_valid_loss)
    return MetricPoint.read(step, train_loss=_loss(train_loss), val_loss=val if val is not None else _loss(valid_loss))


def _whole(value: Any) -> int | None:
    """A positive whole number from a provider field (total_steps), else None."""
    if isinstance(value, bool):
        return None
    number = _loss(value)
    if number is None or not math.isfinite(number) or number != int(number) or not 0 < number < MAX_STEP:
        return None
    return int(number)


def _split_events(
    fresh: list[Any], seen: set[int], extra: dict[str, Any]
) -> tuple[list[JobEvent], dict[int, MetricPoint], int]:
    """Turn `metrics` events into points (skipping steps already reported) and the rest into job events.

    Metrics events are not repeated as job events: one per step would bury the messages a user reads.
    The latest `total_steps` seen is kept in `extra`, so later polls can still place steps in epochs.
    Also returns how many metrics events were skipped for a bad step or loss: the poll goes on without them.
    """
    messages: list[JobEvent] = []
    points: dict[int, MetricPoint] = {}
    skipped = 0
    for event in fresh:
        data = getattr(event, "data", None)
        if getattr(event, "type", None) == "metrics" and isinstance(data, dict) and "step" in data:
            total = _whole(data.get("total_steps"))
            if total is not None:
                extra["total_steps"] = total
            point = _point(data.get("step"), data.get("train_loss"), data.get("full_valid_loss"), data.get("valid_loss"))
            if point is None:
                skipped += 1
            elif point.step not in seen:  # a cursor whose event OpenAI no longer lists re-reads old steps
                points[point.step] = point
        else:
            message = _job_event(event)
            messages.extend([message] if message else [])
    return messages, points, skipped


def _skipped_event(job_id: str, fresh: list[Any], skipped: int) -> JobEvent:
    """One warning per poll for every metrics row dropped; keyed by the poll's last event, so never doubled."""
    last = getattr(fresh[-1], "id", None) if fresh else None
    return JobEvent(
        key=f"skipped-metrics-{last or job_id}-{skipped}",
        at=datetime.now(UTC),
        level="warning",
        message=f"{skipped} metrics row{'s' if skipped != 1 else ''} from OpenAI had a step that is not a whole "
        "number from 0 to 2**53 or a loss that is not a finite number of 0 or more; they were skipped",
    )


def _result_warning(file_id: str, problem: str) -> JobEvent:
    return JobEvent(
        key=f"result-file-unreadable-{file_id}",
        at=datetime.now(UTC),
        level="warning",
        message=f"result file {file_id} {problem}; its step metrics were skipped (the metrics events are kept)",
    )


def _decode_result(raw: bytes) -> str | None:
    """Return the result file as CSV text, whether it came plain or base64-encoded."""
    for candidate in (raw, _b64(raw)):
        if candidate is None:
            continue
        try:
            text = candidate.decode("utf-8-sig")
        except UnicodeDecodeError:
            continue
        if text.lstrip().lower().startswith("step"):
            return text
    return None


def _b64(raw: bytes) -> bytes | None:
    try:
        return base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _rows_from_csv(text: str) -> tuple[list[MetricPoint], int]:
    """The result file's rows as points, and how many were skipped for a bad step or loss."""
    rows: list[MetricPoint] = []
    skipped = 0
    try:
        for row in csv.DictReader(io.StringIO(text.strip())):
            point = _point(row.get("step"), row.get("train_loss"), row.get("full_valid_loss"), row.get("valid_loss"))
            if point is None:
                skipped += 1
            else:
                rows.append(point)
    except csv.Error:
        skipped += 1  # a malformed line (a NUL byte) ends the file: what was read before it is kept
    return rows, skipped


def _resolved_epochs(job: Any) -> int | None:
    """Return the job's epoch count once OpenAI has resolved "auto" to a number."""
    candidates = [getattr(job.hyperparameters, "n_epochs", None)]
    supervised = getattr(job.method, "supervised", None) if job.method else None
    if supervised and supervised.hyperparameters:
        candidates.insert(0, supervised.hyperparameters.n_epochs)
    for value in candidates:
        if isinstance(value, int) and value > 0:
            return value
    return None


def _epoch(step: int, total_steps: int | None, n_epochs: int | None) -> float | None:
    if not total_steps or not n_epochs:
        return None
    return round(step * n_epochs / total_steps, 4)


def _progress(state: JobState, last_step: int | None, total_steps: int | None) -> float | None:
    if state is JobState.SUCCEEDED:
        return 1.0
    if last_step is None or not total_steps:
        return None
    return min(1.0, last_step / total_steps)


def _failure(job: Any) -> str:
    error = job.error
    if error and error.message:
        return f"{error.message} (parameter {error.param!r})" if error.param else error.message
    return "OpenAI reported the job failed without a message; open the job on platform.openai.com for details"


def _remote(job: Any) -> RemoteJob:
    hyperparameters = job.hyperparameters.model_dump(exclude_none=True) if job.hyperparameters else {}
    method = job.method.type if job.method else "supervised"
    metadata = job.metadata or {}
    suffix = getattr(job, "user_provided_suffix", None)
    request: dict[str, Any] = {"model": job.model, "training_file": job.training_file}
    if job.validation_file:
        request["validation_file"] = job.validation_file
    if suffix:
        request["suffix"] = suffix
    request["seed"] = job.seed
    request["metadata"] = metadata
    request["method"] = {"type": method, method: {"hyperparameters": hyperparameters}}
    return RemoteJob(
        provider_job_id=job.id,
        name=metadata.get("workbench_job") or suffix or job.id,
        base_model=job.model,
        state=state_of(job.status),
        provider_status=job.status,
        created_at=_time(job.created_at) or datetime.now(UTC),
        hyperparameters=hyperparameters,
        method=method,
        training_file=job.training_file,
        validation_file=job.validation_file,
        output_model=job.fine_tuned_model,
        request=request,
    )


def _ranges_to_steps(ranges: list[list[int]]) -> set[int]:
    return {step for start, end in ranges for step in range(start, end + 1)}


def _steps_to_ranges(steps: set[int]) -> list[list[int]]:
    """Keep the steps already reported as [start, end] runs, so the cursor stays small on long jobs."""
    ranges: list[list[int]] = []
    for step in sorted(steps):
        if ranges and step == ranges[-1][1] + 1:
            ranges[-1][1] = step
        else:
            ranges.append([step, step])
    return ranges
