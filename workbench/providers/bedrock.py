"""Fine-tuning on Amazon Bedrock: upload the JSONL to S3, create a model customization job, poll it, stop it.

Facts relied on (botocore's `bedrock` service model, 2023-04-20, and the Bedrock user guide):
- `create_model_customization_job` needs jobName, customModelName, roleArn, baseModelIdentifier, trainingDataConfig
  and outputDataConfig; `hyperParameters` is a map of string to string, so every value is sent as a string.
- jobName: 1-63 characters, pattern `[a-zA-Z0-9](-*[a-zA-Z0-9\\+\\-\\.])*`; customModelName: 1-63,
  `([0-9a-zA-Z][_-]?){1,63}`. botocore checks only the minimum length, so the patterns are checked here.
- S3 URIs must match `s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](/[-!_*'().a-zA-Z0-9]+)*/?`: no '+' in keys, so a job name
  holding '+' (which Bedrock allows) cannot name its S3 folder and is refused here.
- `get_model_customization_job(jobIdentifier=...)` takes the job ARN or the job name. Jobs are identified by NAME
  everywhere: moto cannot look a job up by ARN, and the real ARN does not contain the name.
- Job status: InProgress | Completed | Failed | Stopping | Stopped; `statusDetails` (validationDetails,
  dataProcessingDetails, trainingDetails, each with a sub-status) is documented for distillation jobs and may be absent.
- Metrics land in S3 (https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-analyze.html):
  `<output>/model-customization-job-<id>/training_artifacts/step_wise_training_metrics.csv` (step_number, epoch_number,
  training_loss, perplexity) and `.../validation_artifacts/post_fine_tuning_validation/validation_metrics.csv`
  (validation_loss in place of training_loss). The `<id>` is not known in advance: the keys are found by suffix.

State mapping (total; anything else is UNKNOWN with the word kept in provider_status):
InProgress -> RUNNING (VALIDATING while a validation or data-processing sub-status is InProgress, QUEUED while
every sub-status is NotStarted); Completed -> SUCCEEDED; Failed -> FAILED; Stopped -> CANCELLED. Stopping stays
RUNNING: the job is still active on AWS and may yet end Completed or Stopped, so the watcher must keep polling it.

Cursor: `last_step` is the highest step returned; `extra` keeps how many rows of each CSV were read (`train_rows`,
`val_rows`), the keys once found, and the last status signature. Rows are counted rather than compared by step,
because validation rows arrive after the training rows of the same steps and would otherwise be skipped.
A validation-only point carries `train_loss=None`: the store should keep the train loss it already holds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from datetime import UTC, datetime
from typing import Any

from workbench import settings
from workbench.domain.jobs import (
    BackendName,
    JobEvent,
    JobSnapshot,
    JobState,
    LaunchRequest,
    MetricPoint,
    PollCursor,
    Submitted,
)
from workbench.providers import aws
from workbench.providers.base import BackendError, MissingCredentials

JOB_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*"
MODEL_NAME_PATTERN = r"([0-9a-zA-Z][_-]?){1,63}"
TRAIN_METRICS_SUFFIX = "training_artifacts/step_wise_training_metrics.csv"
VAL_METRICS_SUFFIX = "validation_artifacts/post_fine_tuning_validation/validation_metrics.csv"
STATUS_STATES = {
    "InProgress": JobState.RUNNING,
    "Stopping": JobState.RUNNING,
    "Completed": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
    "Stopped": JobState.CANCELLED,
}


class BedrockBackend:
    """Bedrock model customization (fine-tuning) jobs, given a `bedrock` and an `s3` boto3 client."""

    name = BackendName.BEDROCK

    def __init__(self, *, bedrock: Any, s3: Any, s3_uri: str, role_arn: str) -> None:
        self.bedrock = bedrock
        self.s3 = s3
        self.s3_uri = s3_uri.rstrip("/")
        self.role_arn = role_arn

    @classmethod
    def from_environment(cls) -> BedrockBackend:
        """Build from WORKBENCH_S3_URI, WORKBENCH_BEDROCK_ROLE_ARN and boto3's own chain; name what is missing."""
        uri, role = settings.s3_uri(), settings.bedrock_role_arn()
        missing = [n for n, v in ((settings.S3_URI, uri), (settings.BEDROCK_ROLE_ARN, role)) if not v]
        if missing or uri is None or role is None:
            raise MissingCredentials(
                f"Bedrock fine-tuning needs {' and '.join(missing)}: set {settings.S3_URI}=s3://bucket/prefix (where "
                f"data is uploaded and outputs land) and {settings.BEDROCK_ROLE_ARN}=arn:aws:iam::ACCOUNT:role/NAME "
                "(the role Bedrock assumes to read and write there)"
            )
        return cls(bedrock=aws.make_client("bedrock"), s3=aws.make_client("s3"), s3_uri=uri, role_arn=role)

    # --- launch -----------------------------------------------------------------------------------------

    def preview(self, request: LaunchRequest) -> dict[str, Any]:
        """Return the exact `create_model_customization_job` arguments `submit` sends, with no call made."""
        check_job_name(request.job_name)
        model_name = request.settings.get("custom_model_name") or default_model_name(request.job_name)
        check_model_name(model_name)
        folder = aws.join_s3(self.s3_uri, request.job_name)
        kwargs: dict[str, Any] = {
            "jobName": request.job_name,
            "customModelName": model_name,
            "roleArn": self.role_arn,
            "baseModelIdentifier": request.base_model,
            "customizationType": "FINE_TUNING",
            "trainingDataConfig": {"s3Uri": aws.join_s3(folder, "train.jsonl")},
            "outputDataConfig": {"s3Uri": aws.join_s3(folder, "output", "")},
            "hyperParameters": {k: hyperparameter_string(v) for k, v in request.hyperparameters.items()},
        }
        if request.validation_file:
            kwargs["validationDataConfig"] = {"validators": [{"s3Uri": aws.join_s3(folder, "validation.jsonl")}]}
        return kwargs

    def submit(self, request: LaunchRequest) -> Submitted:
        """Upload the train (and validation) files, then create the job; names are checked before any call."""
        kwargs = self.preview(request)
        files = {"train": aws.upload_file(self.s3, request.train_file, kwargs["trainingDataConfig"]["s3Uri"])}
        if request.validation_file:
            uri = kwargs["validationDataConfig"]["validators"][0]["s3Uri"]
            files["validation"] = aws.upload_file(self.s3, request.validation_file, uri)
        with aws.translate_errors(f"Creating Bedrock job {request.job_name!r}"):
            self.bedrock.create_model_customization_job(**kwargs)
        return Submitted(
            provider_job_id=request.job_name,
            provider_status="InProgress",
            state=map_status("InProgress", None),
            request=kwargs,
            files=files,
        )

    # --- watch ------------------------------------------------------------------------------------------

    def poll(self, provider_job_id: str, cursor: PollCursor) -> JobSnapshot:
        """Return the job's state, a status-change event when it moved, and metric rows not read before."""
        with aws.translate_errors(f"Reading Bedrock job {provider_job_id!r}", job=provider_job_id):
            job = self.bedrock.get_model_customization_job(jobIdentifier=provider_job_id)
        status = str(job.get("status", ""))
        details = job.get("statusDetails")
        state = map_status(status, details)
        extra = dict(cursor.extra)
        first_sight = "status" not in extra
        events = self._status_events(job, status, details, extra)
        if first_sight and not state.final:
            extra.setdefault("listed_at", time.time() - LIST_EVERY_S + FIRST_LIST_AFTER_S)
        metrics = self._read_metrics(job, extra, moved=(bool(events) and not first_sight) or state.final)
        last_step = max([cursor.last_step or -1, *(m.step for m in metrics)])
        failure = job.get("failureMessage") if state is JobState.FAILED else None
        output = (job.get("outputModelArn") or job.get("outputModelName")) if state is JobState.SUCCEEDED else None
        return JobSnapshot(
            state=state,
            provider_status=status or "(none)",
            events=events,
            metrics=metrics,
            cursor=PollCursor(
                last_event=events[-1].key if events else cursor.last_event,
                last_step=last_step if last_step >= 0 else None,
                extra=extra,
            ),
            output_model=output,
            failure_message=failure,
        )

    def cancel(self, provider_job_id: str) -> None:
        """Ask Bedrock to stop the job; polls report Stopping, then Stopped."""
        with aws.translate_errors(f"Stopping Bedrock job {provider_job_id!r}", job=provider_job_id):
            self.bedrock.stop_model_customization_job(jobIdentifier=provider_job_id)

    def _status_events(
        self, job: dict[str, Any], status: str, details: dict[str, Any] | None, extra: dict[str, Any]
    ) -> tuple[JobEvent, ...]:
        signature = status_signature(status, details)
        if extra.get("status") == signature:
            return ()
        extra["status"] = signature
        at = _as_datetime(job.get("lastModifiedTime") or job.get("endTime") or job.get("creationTime"))
        message = f"Bedrock status: {signature}"
        level = "info"
        if status == "Failed":
            message, level = f"{message}: {job.get('failureMessage') or 'no failure message'}", "error"
        key = "status-" + hashlib.sha256(f"{signature}|{at.isoformat()}".encode()).hexdigest()[:16]
        return (JobEvent(key=key, at=at, level=level, message=message),)

    def _read_metrics(self, job: dict[str, Any], extra: dict[str, Any], *, moved: bool) -> tuple[MetricPoint, ...]:
        """Read new metric rows; look for the metric files only when the job moved or every LIST_EVERY_S.

        Listing the output prefix on every poll doubled the calls of a watcher round (200 jobs: 5.1 s on moto);
        the files appear as training ends, when the status moves, so a periodic look catches anything else.
        """
        output = job.get("outputDataConfig", {}).get("s3Uri")
        if not output:
            return ()
        bucket, _ = aws.parse_s3_uri(output)
        now = time.time()
        due = moved or now - float(extra.get("listed_at", 0)) >= LIST_EVERY_S
        if ("train_key" not in extra or "val_key" not in extra) and due:
            extra["listed_at"] = now
            for key in aws.list_keys(self.s3, output):
                if key.endswith(TRAIN_METRICS_SUFFIX):
                    extra.setdefault("train_key", key)
                elif key.endswith(VAL_METRICS_SUFFIX):
                    extra.setdefault("val_key", key)
        points: dict[int, MetricPoint] = {}
        for kind in ("train", "val"):
            key = extra.get(f"{kind}_key")
            if not key:
                continue
            data = aws.read_object(self.s3, bucket, key)
            if data is None:
                continue
            rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig", errors="replace"))))
            done = int(extra.get(f"{kind}_rows", 0))
            for row in rows[done:]:
                point = _metric_row(row, kind)
                if point is not None:
                    points[point.step] = _merge(points.get(point.step), point)
            extra[f"{kind}_rows"] = max(done, len(rows))
        return tuple(points[s] for s in sorted(points))


LIST_EVERY_S = 300.0
"""How often an unchanged running job's output prefix is listed for metric files."""
FIRST_LIST_AFTER_S = 30.0
"""A running job first seen (a new launch, or a new watcher) is listed this long after, spreading the work."""


def check_job_name(name: str) -> None:
    """Refuse a job name Bedrock would reject, or one that cannot name its S3 folder."""
    if not 1 <= len(name) <= 63 or not re.fullmatch(JOB_NAME_PATTERN, name):
        raise BackendError(
            f"Job name {name!r} does not fit Bedrock's jobName rule: 1-63 characters matching {JOB_NAME_PATTERN} "
            "(start with a letter or digit; then letters, digits, '-', '.' and '+'); rename the job"
        )
    if "+" in name:
        raise BackendError(
            f"Job name {name!r} holds '+', which Bedrock allows in names but not in the S3 URIs the job's files get; "
            "use '-' instead"
        )


def check_model_name(name: str) -> None:
    """Refuse a custom model name Bedrock would reject."""
    if len(name) > 63 or not re.fullmatch(MODEL_NAME_PATTERN, name):
        raise BackendError(
            f"Custom model name {name!r} does not fit Bedrock's customModelName rule: 1-63 characters matching "
            f"{MODEL_NAME_PATTERN} (letters and digits, each optionally followed by one '_' or '-'); rename it"
        )


def default_model_name(job_name: str) -> str:
    """Return a customModelName derived from the job name ('.' and '+' become '-', runs of '-' collapse)."""
    name = re.sub(r"[^0-9a-zA-Z]+", "-", job_name).strip("-")
    return name[:63].rstrip("-") or "model"


def hyperparameter_string(value: Any) -> str:
    """Return the string Bedrock expects for a hyperparameter (its API takes strings only)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def map_status(status: str, details: dict[str, Any] | None) -> JobState:
    """Map Bedrock's job status (and sub-statuses, when present) onto the workbench's states."""
    state = STATUS_STATES.get(status, JobState.UNKNOWN)
    if status != "InProgress" or not details:
        return state
    sub = {name: (d or {}).get("status") for name, d in details.items()}
    if "InProgress" in (sub.get("validationDetails"), sub.get("dataProcessingDetails")):
        return JobState.VALIDATING
    if sub and all(s in (None, "NotStarted") for s in sub.values()):
        return JobState.QUEUED
    return state


def status_signature(status: str, details: dict[str, Any] | None) -> str:
    """Return the status with its sub-statuses, e.g. 'InProgress (validation: Completed, training: InProgress)'."""
    if not details:
        return status
    parts = [f"{n.removesuffix('Details')}: {(d or {}).get('status')}" for n, d in sorted(details.items()) if d]
    return f"{status} ({', '.join(parts)})" if parts else status


def _metric_row(row: dict[str, str], kind: str) -> MetricPoint | None:
    """Parse one CSV row; a row that does not parse (a header glitch, a blank line, inf, -1) is skipped."""
    loss_column = "training_loss" if kind == "train" else "validation_loss"
    epoch = row.get("epoch_number") or None
    loss = row.get(loss_column) or None
    if kind == "train":
        return MetricPoint.read(row.get("step_number"), epoch, train_loss=loss)
    return MetricPoint.read(row.get("step_number"), epoch, val_loss=loss)


def _merge(old: MetricPoint | None, new: MetricPoint) -> MetricPoint:
    if old is None:
        return new
    return MetricPoint(
        step=new.step,
        epoch=new.epoch if new.epoch is not None else old.epoch,
        train_loss=new.train_loss if new.train_loss is not None else old.train_loss,
        val_loss=new.val_loss if new.val_loss is not None else old.val_loss,
    )


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)
