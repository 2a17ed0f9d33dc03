"""Fine-tuning jobs as the workbench sees them, whatever runs them: one closed set of states, metrics, events.

Every backend (Bedrock, SageMaker, OpenAI, local) reports in its own words: `InProgress`,
`validating_files`, a process exit code. The Jobs page, the CLI and the watcher read only these models,
so a job's state means the same thing on every provider, and `provider_status` keeps the provider's own
word for whoever needs it.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobState(StrEnum):
    """The one closed set of job states across providers."""

    QUEUED = "queued"
    VALIDATING = "validating"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    """The provider said something we do not know, or the job vanished on its side: shown, never guessed."""

    @property
    def active(self) -> bool:
        """True while the provider may still change the job: the watcher polls only these."""
        return self in ACTIVE_STATES

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


ACTIVE_STATES = frozenset({JobState.QUEUED, JobState.VALIDATING, JobState.RUNNING})
FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class BackendName(StrEnum):
    """Who runs a job."""

    BEDROCK = "bedrock"
    SAGEMAKER = "sagemaker"
    OPENAI = "openai"
    LOCAL = "local"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


MAX_STEP = 2**53
"""Steps beyond this are not real steps (and would not fit SQLite's INTEGER as floats do)."""


class MetricPoint(_Frozen):
    """One training step's losses; a step seen twice is the same point (the store keeps one per job and step)."""

    step: int = Field(ge=0, lt=MAX_STEP)
    epoch: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    train_loss: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    val_loss: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @classmethod
    def read(cls, step: Any, epoch: Any = None, train_loss: Any = None, val_loss: Any = None) -> MetricPoint | None:
        """Build a point from a provider's raw values; None when the step is not a real step.

        A provider's file or event can hold anything (a step of -1 or 'abc', a loss of inf): one bad row must
        never stop a poll, so a bad step drops the row and a bad loss or epoch drops that value alone.
        """
        number = _finite(step)
        if number is None or number != int(number) or not 0 <= number < MAX_STEP:
            return None
        return cls(step=int(number), epoch=_non_negative(epoch), train_loss=_non_negative(train_loss),
                   val_loss=_non_negative(val_loss))


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _non_negative(value: Any) -> float | None:
    number = _finite(value)
    return number if number is not None and number >= 0 else None


class JobEvent(_Frozen):
    """A line of a job's history: a provider event, a status change, a log line from a local run."""

    key: str = Field(description="Unique per job (the provider's event id, or a hash), so a re-poll never doubles it.")
    at: datetime
    level: str = Field(default="info", description="info, warning or error.")
    message: str


class LaunchRequest(_Frozen):
    """Everything a backend needs to start one job; built by the jobs service after pre-flight checks pass."""

    job_name: str = Field(description="The workbench's name for the job, already checked against the provider's pattern.")
    base_model: str
    train_file: str = Field(description="Local path of the exported training JSONL (what gets uploaded).")
    validation_file: str | None = None
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, description="Only the values the user set; a missing key means the provider's default."
    )
    settings: dict[str, str] = Field(
        default_factory=dict, description="Backend settings read from the environment (S3 URI, role ARNs, run dir...)."
    )


class Submitted(_Frozen):
    """What a backend returns once the provider has accepted a job."""

    provider_job_id: str = Field(description="The id to poll and cancel by (Bedrock/SageMaker: the job name).")
    provider_status: str
    state: JobState
    request: dict[str, Any] = Field(default_factory=dict, description="The request as sent, secrets left out.")
    files: dict[str, str] = Field(default_factory=dict, description="Where the data went: {'train': 's3://...', ...}.")


class PollCursor(_Frozen):
    """Where the last poll of a job stopped, so the next reads only what is new (kept in the store per job)."""

    last_event: str | None = None
    last_step: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="Backend-specific position, e.g. a log offset.")


class JobSnapshot(_Frozen):
    """One poll's answer: the job's state now, and what appeared since the cursor."""

    state: JobState
    provider_status: str
    events: tuple[JobEvent, ...] = ()
    metrics: tuple[MetricPoint, ...] = ()
    cursor: PollCursor = PollCursor()
    output_model: str | None = Field(default=None, description="The fine-tuned model id or ARN, once there is one.")
    failure_message: str | None = None
    trained_tokens: int | None = None
    progress: float | None = Field(default=None, ge=0, le=1, description="Fraction done where the provider says.")
    estimated_finish: datetime | None = None
