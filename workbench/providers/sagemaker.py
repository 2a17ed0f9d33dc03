"""Fine-tuning on SageMaker: this project's LoRA script in a Hugging Face PyTorch training container.

Facts relied on:
- `create_training_job` (botocore `sagemaker` model, 2017-07-24): TrainingJobName is 1-63 characters matching
  `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}` (no underscores or dots); HyperParameters and Environment hold at most 100
  entries; MetricDefinitions at most 40.
- Script mode (aws/sagemaker-python-sdk `src/sagemaker/model.py` and `estimator.py`): the source folder is uploaded
  as `sourcedir.tar.gz`, and the hyperparameters `sagemaker_program`, `sagemaker_submit_directory`,
  `sagemaker_job_name`, `sagemaker_region`, `sagemaker_container_log_level` tell the container what to run. Every
  hyperparameter value is JSON-encoded (the sagemaker-training toolkit `json.loads` each one), then passed to the
  script as `--name value`.
- Image (aws/sagemaker-python-sdk `src/sagemaker/image_uri_config/huggingface.json`):
  `763104351884.dkr.ecr.<region>.amazonaws.com/huggingface-pytorch-training:<tag>` in the common regions; other
  regions (af-south-1, ap-east-1, eu-south-1, me-south-1, China, GovCloud) use other accounts: pass `image_uri`.
- Metrics: SageMaker runs each MetricDefinitions regex over the container's log and publishes the first group to
  CloudWatch namespace `/aws/sagemaker/TrainingJobs`, dimension TrainingJobName; the last values are in
  `FinalMetricDataList` (aws/sagemaker-python-sdk `src/sagemaker/analytics.py`). The training script prints
  Hugging Face Trainer style dicts, `{'loss': 1.23, 'epoch': 0.5, 'step': 10}` and `{'eval_loss': 1.4, ...}`
  (huggingface/transformers `trainer_callback.py`, ProgressCallback.on_log), which `METRIC_DEFINITIONS` match.

State mapping (total; anything else is UNKNOWN): Completed -> SUCCEEDED; Failed -> FAILED (FailureReason);
Stopped -> CANCELLED; Stopping -> RUNNING (still active until it ends Stopped, so the watcher keeps polling);
InProgress -> QUEUED while the secondary status is Starting, Pending, Downloading or one of the retired
instance-launch steps (no training has begun: the job waits for instances or data), else RUNNING.
No VALIDATING: SageMaker does not check the data before the script reads it.

Settings a launch may give in `hyperparameters` (taken out, never passed to the script): instance_type
(default ml.g5.2xlarge), instance_count (1), volume_size_gb (30), max_runtime_seconds (86400), image_uri.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
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

JOB_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
DEFAULT_SCRIPT = Path(__file__).resolve().parents[1] / "training" / "lora_train.py"
IMAGE_ACCOUNT = "763104351884"
IMAGE_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1",
        "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
    }
)  # fmt: skip
IMAGE_TAG = "2.8.0-transformers4.56.2-gpu-py312-cu129-ubuntu22.04"
RESOURCE_DEFAULTS: dict[str, Any] = {
    "instance_type": "ml.g5.2xlarge",
    "instance_count": 1,
    "volume_size_gb": 30,
    "max_runtime_seconds": 86400,
}
CONTAINER_DATA = "/opt/ml/input/data"
CONTAINER_MODEL = "/opt/ml/model"
METRIC_NAMESPACE = "/aws/sagemaker/TrainingJobs"
METRIC_DEFINITIONS = (
    {"Name": "train:loss", "Regex": r"'loss': ([0-9.e+-]+)"},
    {"Name": "eval:loss", "Regex": r"'eval_loss': ([0-9.e+-]+)"},
    {"Name": "epoch", "Regex": r"'epoch': ([0-9.e+-]+)"},
    {"Name": "step", "Regex": r"'step': ([0-9]+)"},
)
_PATTERNS = {d["Name"]: re.compile(d["Regex"]) for d in METRIC_DEFINITIONS}
QUEUED_SECONDARY = frozenset(
    {"Starting", "Pending", "Downloading", "LaunchingMLInstances", "PreparingTrainingStack", "DownloadingTrainingImage"}
)
STATUS_STATES = {
    "Completed": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
    "Stopped": JobState.CANCELLED,
    "Stopping": JobState.RUNNING,
    "InProgress": JobState.RUNNING,
}


class SageMakerBackend:
    """SageMaker training jobs running the project's LoRA script, given `sagemaker` and `s3` boto3 clients.

    `cloudwatch` is optional: without it, metrics come only from FinalMetricDataList once the job ends.
    """

    name = BackendName.SAGEMAKER

    def __init__(
        self,
        *,
        sagemaker: Any,
        s3: Any,
        s3_uri: str,
        role_arn: str,
        cloudwatch: Any | None = None,
        region: str | None = None,
        script_path: Path = DEFAULT_SCRIPT,
        image_uri: str | None = None,
    ) -> None:
        self.sagemaker = sagemaker
        self.s3 = s3
        self.cloudwatch = cloudwatch
        self.s3_uri = s3_uri.rstrip("/")
        self.role_arn = role_arn
        self.region = region or aws.client_region(sagemaker)
        self.script_path = Path(script_path)
        self.image_uri = image_uri

    @classmethod
    def from_environment(cls, *, script_path: Path = DEFAULT_SCRIPT) -> SageMakerBackend:
        """Build from WORKBENCH_S3_URI, WORKBENCH_SAGEMAKER_ROLE_ARN and boto3's own chain; name what is missing."""
        uri, role = settings.s3_uri(), settings.sagemaker_role_arn()
        missing = [n for n, v in ((settings.S3_URI, uri), (settings.SAGEMAKER_ROLE_ARN, role)) if not v]
        if missing or uri is None or role is None:
            raise MissingCredentials(
                f"SageMaker fine-tuning needs {' and '.join(missing)}: set {settings.S3_URI}=s3://bucket/prefix (where "
                f"code and data are uploaded and the model lands) and {settings.SAGEMAKER_ROLE_ARN}="
                "arn:aws:iam::ACCOUNT:role/NAME (the role the training job runs as)"
            )
        return cls(
            sagemaker=aws.make_client("sagemaker"),
            s3=aws.make_client("s3"),
            cloudwatch=aws.make_client("cloudwatch"),
            s3_uri=uri,
            role_arn=role,
            script_path=script_path,
        )

    # --- launch -----------------------------------------------------------------------------------------

    def preview(self, request: LaunchRequest) -> dict[str, Any]:
        """Return the exact `create_training_job` arguments `submit` sends, with no call made."""
        check_job_name(request.job_name)
        name = request.job_name
        params = dict(request.hyperparameters)
        resources = {k: params.pop(k, default) for k, default in RESOURCE_DEFAULTS.items()}
        image = params.pop("image_uri", None) or self.image_uri or image_uri(self.region)
        folder = aws.join_s3(self.s3_uri, name)
        script = {
            "base_model": request.base_model,
            "train_file": f"{CONTAINER_DATA}/train/train.jsonl",
            "output_dir": CONTAINER_MODEL,
            **params,
        }
        channels = [_channel("train", aws.join_s3(folder, "data", "train", ""))]
        if request.validation_file:
            script["validation_file"] = f"{CONTAINER_DATA}/validation/validation.jsonl"
            channels.append(_channel("validation", aws.join_s3(folder, "data", "validation", "")))
        script |= {
            "sagemaker_program": self.script_path.name,
            "sagemaker_submit_directory": aws.join_s3(folder, "source", "sourcedir.tar.gz"),
            "sagemaker_job_name": name,
            "sagemaker_region": self.region,
            "sagemaker_container_log_level": 20,
        }
        if len(script) > 100:
            raise BackendError(f"Job {name!r} has {len(script)} hyperparameters; SageMaker takes at most 100")
        return {
            "TrainingJobName": name,
            "RoleArn": self.role_arn,
            "AlgorithmSpecification": {
                "TrainingImage": image,
                "TrainingInputMode": "File",
                "MetricDefinitions": [dict(d) for d in METRIC_DEFINITIONS],
                "EnableSageMakerMetricsTimeSeries": True,
            },
            "HyperParameters": {k: json.dumps(v) for k, v in script.items()},
            "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": aws.join_s3(folder, "output", "")},
            "ResourceConfig": {
                "InstanceType": str(resources["instance_type"]),
                "InstanceCount": int(resources["instance_count"]),
                "VolumeSizeInGB": int(resources["volume_size_gb"]),
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": int(resources["max_runtime_seconds"])},
        }

    def submit(self, request: LaunchRequest) -> Submitted:
        """Upload the script archive and the data, then create the training job."""
        kwargs = self.preview(request)
        if not self.script_path.is_file():
            raise BackendError(f"The training script {self.script_path} is missing; reinstall the workbench")
        hp = kwargs["HyperParameters"]
        source = json.loads(hp["sagemaker_submit_directory"])
        aws.upload_bytes(self.s3, source_archive(self.script_path), source)
        files = {"source": source}
        for channel in kwargs["InputDataConfig"]:
            cname = channel["ChannelName"]
            local = request.train_file if cname == "train" else request.validation_file
            uri = aws.join_s3(channel["DataSource"]["S3DataSource"]["S3Uri"], f"{cname}.jsonl")
            files[cname] = aws.upload_file(self.s3, str(local), uri)
        with aws.translate_errors(f"Creating SageMaker training job {request.job_name!r}"):
            self.sagemaker.create_training_job(**kwargs)
        return Submitted(
            provider_job_id=request.job_name,
            provider_status="InProgress/Starting",
            state=map_status("InProgress", "Starting"),
            request=kwargs,
            files=files,
        )

    # --- watch ------------------------------------------------------------------------------------------

    def poll(self, provider_job_id: str, cursor: PollCursor) -> JobSnapshot:
        """Return the job's state, status transitions not reported before, and metrics after `cursor.last_step`."""
        with aws.translate_errors(f"Reading SageMaker training job {provider_job_id!r}", job=provider_job_id):
            job = self.sagemaker.describe_training_job(TrainingJobName=provider_job_id)
        status, secondary = str(job.get("TrainingJobStatus", "")), job.get("SecondaryStatus")
        state = map_status(status, secondary)
        extra = dict(cursor.extra)
        events = self._events(job, extra)
        after = cursor.last_step if cursor.last_step is not None else -1
        points = {p.step: p for p in self._cloudwatch_metrics(provider_job_id, job, state)}
        final = final_metrics(job.get("FinalMetricDataList") or [])
        if state.final and final.point is not None:
            points.setdefault(final.point.step, final.point)
        metrics = tuple(points[s] for s in sorted(points) if s > after)
        last_step = max([after, *(m.step for m in metrics)])
        return JobSnapshot(
            state=state,
            provider_status=f"{status}/{secondary}" if secondary else status or "(none)",
            events=events,
            metrics=metrics,
            cursor=PollCursor(
                last_event=events[-1].key if events else cursor.last_event,
                last_step=last_step if last_step >= 0 else None,
                extra=extra,
            ),
            output_model=job.get("ModelArtifacts", {}).get("S3ModelArtifacts") if state is JobState.SUCCEEDED else None,
            failure_message=job.get("FailureReason") if state is JobState.FAILED else None,
            progress=final.progress,
        )

    def cancel(self, provider_job_id: str) -> None:
        """Ask SageMaker to stop the job; polls report Stopping, then Stopped."""
        with aws.translate_errors(f"Stopping SageMaker training job {provider_job_id!r}", job=provider_job_id):
            self.sagemaker.stop_training_job(TrainingJobName=provider_job_id)

    def _events(self, job: dict[str, Any], extra: dict[str, Any]) -> tuple[JobEvent, ...]:
        """Turn transitions not yet reported into events; the list only grows, so a count is the position."""
        transitions = job.get("SecondaryStatusTransitions") or []
        seen = int(extra.get("transitions", 0))
        events = [_transition_event(t) for t in transitions[seen:]]
        extra["transitions"] = max(seen, len(transitions))
        if job.get("TrainingJobStatus") == "Failed" and not extra.get("failure_reported"):
            extra["failure_reported"] = True
            reason = job.get("FailureReason") or "no failure reason"
            at = _as_datetime(job.get("TrainingEndTime") or job.get("LastModifiedTime"))
            key = "failed-" + hashlib.sha256(f"{reason}|{at.isoformat()}".encode()).hexdigest()[:16]
            events.append(JobEvent(key=key, at=at, level="error", message=f"Training failed: {reason}"))
        return tuple(events)

    def _cloudwatch_metrics(self, name: str, job: dict[str, Any], state: JobState) -> list[MetricPoint]:
        """Read the per-minute metric series; the `step` metric's maximum in a minute places the losses on a step."""
        if self.cloudwatch is None:
            return []
        start = _as_datetime(job.get("TrainingStartTime") or job.get("CreationTime")) - timedelta(minutes=1)
        now = datetime.now(UTC)
        series = {m: self._series(name, m, start, now) for m in _PATTERNS}
        settled = now if state.final else now - timedelta(minutes=2)  # the current minute is still filling up
        points = []
        for at, step in series["step"].items():
            if at > settled:
                continue
            train, val, epoch = series["train:loss"].get(at), series["eval:loss"].get(at), series["epoch"].get(at)
            if (point := MetricPoint.read(step, epoch, train, val)) is not None:
                points.append(point)
        return points

    def _series(self, name: str, metric: str, start: datetime, end: datetime) -> dict[datetime, float]:
        statistic = "Maximum" if metric == "step" else "Average"
        with aws.translate_errors(f"Reading metric {metric} of SageMaker job {name!r}"):
            answer = self.cloudwatch.get_metric_statistics(  # type: ignore[union-attr]
                Namespace=METRIC_NAMESPACE,
                MetricName=metric,
                Dimensions=[{"Name": "TrainingJobName", "Value": name}],
                StartTime=start,
                EndTime=end,
                Period=60,
                Statistics=[statistic],
            )
        return {_as_datetime(p["Timestamp"]): float(p[statistic]) for p in answer.get("Datapoints", [])}


class FinalMetrics:
    """What FinalMetricDataList says: the last point (when it names a step) and the progress."""

    def __init__(self, point: MetricPoint | None, progress: float | None) -> None:
        self.point = point
        self.progress = progress


def final_metrics(items: list[dict[str, Any]]) -> FinalMetrics:
    """Read FinalMetricDataList: our metric names make the last point, `train:progress` (percent) the progress."""
    values = {str(i.get("MetricName")): float(i["Value"]) for i in items if "Value" in i}
    progress = values.get("train:progress")
    point = None
    if "step" in values and ("train:loss" in values or "eval:loss" in values):
        point = MetricPoint.read(values["step"], values.get("epoch"), values.get("train:loss"), values.get("eval:loss"))
    return FinalMetrics(point, None if progress is None else min(max(progress / 100, 0.0), 1.0))


def parse_log_metrics(text: str) -> list[MetricPoint]:
    """Read metric points from training log text with the same regexes SageMaker is given.

    A line without a `'step'` continues from the previous line's step plus one, so plain Trainer output reads too.
    """
    points: dict[int, MetricPoint] = {}
    step = -1
    for line in text.splitlines():
        found = {name: p.search(line) for name, p in _PATTERNS.items()}
        if not (found["train:loss"] or found["eval:loss"]):
            continue
        read = MetricPoint.read(found["step"].group(1) if found["step"] else step + 1)
        if read is None:
            continue
        step = read.step
        old = points.get(step, read)
        fresh = MetricPoint.read(
            step,
            found["epoch"].group(1) if found["epoch"] else old.epoch,
            found["train:loss"].group(1) if found["train:loss"] else old.train_loss,
            found["eval:loss"].group(1) if found["eval:loss"] else old.val_loss,
        )
        points[step] = fresh or old
    return [points[s] for s in sorted(points)]


def check_job_name(name: str) -> None:
    """Refuse a training job name SageMaker would reject, before any upload."""
    if not re.fullmatch(JOB_NAME_PATTERN, name):
        raise BackendError(
            f"Job name {name!r} does not fit SageMaker's TrainingJobName rule: 1-63 characters matching "
            f"{JOB_NAME_PATTERN} (letters, digits and '-' only: no underscores, dots or spaces); rename the job"
        )


def image_uri(region: str) -> str:
    """Return the Hugging Face PyTorch training image for `region`, or explain how to give one."""
    if region not in IMAGE_REGIONS:
        raise BackendError(
            f"No Hugging Face training image is known for region {region!r}; pass image_uri=... with the image "
            "for that region (see aws/sagemaker-python-sdk image_uri_config/huggingface.json)"
        )
    return f"{IMAGE_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-training:{IMAGE_TAG}"


def map_status(status: str, secondary: str | None) -> JobState:
    """Map TrainingJobStatus and SecondaryStatus onto the workbench's states."""
    if status == "InProgress" and secondary in QUEUED_SECONDARY:
        return JobState.QUEUED
    return STATUS_STATES.get(status, JobState.UNKNOWN)


def source_archive(script: Path) -> bytes:
    """Return sourcedir.tar.gz holding the script at its root; fixed times and owners keep it reproducible."""
    buffer = io.BytesIO()
    data = script.read_bytes()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(script.name)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}},
    }


def _transition_event(transition: dict[str, Any]) -> JobEvent:
    at = _as_datetime(transition.get("StartTime"))
    status = str(transition.get("Status", ""))
    message = f"{status}: {transition['StatusMessage']}" if transition.get("StatusMessage") else status
    return JobEvent(key=f"transition-{status}-{at.isoformat()}", at=at, message=message)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)
