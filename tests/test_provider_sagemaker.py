"""SageMaker backend against moto's server with real boto3: package, upload, create, poll, stop, log metrics."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from workbench.domain.jobs import JobState, LaunchRequest, MetricPoint, PollCursor
from workbench.providers.base import BackendError, JobNotFound, MissingCredentials
from workbench.providers.sagemaker import SageMakerBackend, image_uri, map_status, parse_log_metrics

BUCKET = "sm-bucket"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-ft"
PREFIX = "s3://sm-bucket/ft/support-bot-v1"


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """A stand-in for workbench/training/lora_train.py: only its bytes travel, nothing runs it here."""
    path = tmp_path / "lora_train.py"
    path.write_text("print({'loss': 1.0, 'epoch': 0.1, 'step': 1})\n")
    return path


@pytest.fixture
def backend(aws: str, monkeypatch: pytest.MonkeyPatch, script: Path) -> SageMakerBackend:
    monkeypatch.setenv("WORKBENCH_S3_URI", "s3://sm-bucket/ft")
    monkeypatch.setenv("WORKBENCH_SAGEMAKER_ROLE_ARN", ROLE)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return SageMakerBackend.from_environment(script_path=script)


@pytest.fixture
def request_(tmp_path: Path) -> LaunchRequest:
    train = tmp_path / "train.jsonl"
    train.write_text('{"messages": []}\n')
    val = tmp_path / "val.jsonl"
    val.write_text('{"messages": [1]}\n')
    return LaunchRequest(
        job_name="support-bot-v1",
        base_model="Qwen/Qwen2.5-0.5B-Instruct",
        train_file=str(train),
        validation_file=str(val),
        hyperparameters={"epochs": 2, "learning_rate": 0.0002, "lora_r": 8, "instance_type": "ml.g5.xlarge"},
    )


def moto_job(name: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends["123456789012"]["us-east-1"].training_jobs[name]


def test_submit_packages_script_uploads_data_and_creates_job(backend: SageMakerBackend, request_: LaunchRequest, script: Path) -> None:
    submitted = backend.submit(request_)

    assert submitted.provider_job_id == "support-bot-v1"
    assert submitted.files == {
        "source": f"{PREFIX}/source/sourcedir.tar.gz",
        "train": f"{PREFIX}/data/train/train.jsonl",
        "validation": f"{PREFIX}/data/validation/validation.jsonl",
    }
    s3 = boto3.client("s3")
    archive = s3.get_object(Bucket=BUCKET, Key="ft/support-bot-v1/source/sourcedir.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.getnames() == ["lora_train.py"]
        assert tar.extractfile("lora_train.py").read() == script.read_bytes()  # type: ignore[union-attr]
    assert s3.get_object(Bucket=BUCKET, Key="ft/support-bot-v1/data/train/train.jsonl")["Body"].read() == b'{"messages": []}\n'

    job = boto3.client("sagemaker").describe_training_job(TrainingJobName="support-bot-v1")
    hp = job["HyperParameters"]
    assert all(isinstance(v, str) for v in hp.values())
    assert json.loads(hp["base_model"]) == "Qwen/Qwen2.5-0.5B-Instruct"
    assert hp["epochs"] == "2" and hp["learning_rate"] == "0.0002" and "instance_type" not in hp
    assert json.loads(hp["sagemaker_program"]) == "lora_train.py"
    assert json.loads(hp["sagemaker_submit_directory"]) == f"{PREFIX}/source/sourcedir.tar.gz"
    assert json.loads(hp["sagemaker_job_name"]) == "support-bot-v1"
    assert json.loads(hp["sagemaker_region"]) == "us-east-1"
    assert hp["sagemaker_container_log_level"] == "20"
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert job["AlgorithmSpecification"]["TrainingImage"] == image_uri("us-east-1")
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == ["train", "validation"]
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == f"{PREFIX}/data/train/"


def test_preview_is_what_submit_sends(backend: SageMakerBackend, request_: LaunchRequest) -> None:
    preview = backend.preview(request_)
    assert boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    assert backend.submit(request_).request == preview
    assert preview["ResourceConfig"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert {d["Name"] for d in preview["AlgorithmSpecification"]["MetricDefinitions"]} == {"train:loss", "eval:loss", "epoch", "step"}


@pytest.mark.parametrize("job_name", ["support_bot", "support.bot", "-lead", "x" * 64, ""])
def test_bad_job_name_is_refused_before_any_call(backend: SageMakerBackend, request_: LaunchRequest, job_name: str) -> None:
    with pytest.raises(BackendError, match="no underscores, dots"):
        backend.submit(request_.model_copy(update={"job_name": job_name}))
    assert boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_unknown_region_asks_for_an_image() -> None:
    with pytest.raises(BackendError, match="image_uri"):
        image_uri("af-south-1")


@pytest.mark.parametrize(
    ("status", "secondary", "state"),
    [
        ("InProgress", "Starting", JobState.QUEUED),
        ("InProgress", "Downloading", JobState.QUEUED),
        ("InProgress", "Training", JobState.RUNNING),
        ("InProgress", "Uploading", JobState.RUNNING),
        ("Stopping", "Stopping", JobState.RUNNING),
        ("Completed", "Completed", JobState.SUCCEEDED),
        ("Failed", "Failed", JobState.FAILED),
        ("Stopped", "MaxRuntimeExceeded", JobState.CANCELLED),
        ("Deleting", None, JobState.UNKNOWN),
    ],
)
def test_map_status_is_total(status: str, secondary: str | None, state: JobState) -> None:
    assert map_status(status, secondary) is state


def test_poll_reports_completion_transitions_and_final_metrics(backend: SageMakerBackend, request_: LaunchRequest) -> None:
    backend.submit(request_)
    first = backend.poll("support-bot-v1", PollCursor())
    assert first.state is JobState.SUCCEEDED and first.provider_status == "Completed/Completed"
    assert first.output_model == f"{PREFIX}/output/support-bot-v1/output/model.tar.gz"
    assert first.progress == 1.0  # moto's FinalMetricDataList holds train:progress = 100
    assert [e.message for e in first.events] == ["Starting: Preparing the instances for training"]
    assert backend.poll("support-bot-v1", first.cursor).events == ()
    assert backend.poll("support-bot-v1", PollCursor()).events[0].key == first.events[0].key

    job = moto_job("support-bot-v1")
    at = job.creation_time
    job.final_metric_data_list = [
        {"MetricName": name, "Value": value, "Timestamp": at}
        for name, value in (("train:loss", 0.8), ("eval:loss", 0.9), ("epoch", 2.0), ("step", 40.0))
    ]
    snap = backend.poll("support-bot-v1", first.cursor)
    assert snap.metrics == (MetricPoint(step=40, epoch=2.0, train_loss=0.8, val_loss=0.9),)
    assert backend.poll("support-bot-v1", snap.cursor).metrics == ()


def test_poll_reads_cloudwatch_series(backend: SageMakerBackend, request_: LaunchRequest) -> None:
    backend.submit(request_)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    moto_job("support-bot-v1").training_start_time = start
    cw = boto3.client("cloudwatch")
    for minute, (step, loss) in enumerate([(10, 2.0), (20, 1.5)], start=1):
        at = start + timedelta(minutes=minute, seconds=5)
        dims = [{"Name": "TrainingJobName", "Value": "support-bot-v1"}]
        cw.put_metric_data(
            Namespace="/aws/sagemaker/TrainingJobs",
            MetricData=[
                {"MetricName": "step", "Dimensions": dims, "Timestamp": at, "Value": step},
                {"MetricName": "train:loss", "Dimensions": dims, "Timestamp": at, "Value": loss},
            ],
        )
    snap = backend.poll("support-bot-v1", PollCursor(last_step=10))
    assert [(m.step, m.train_loss) for m in snap.metrics] == [(20, 1.5)]


def test_poll_reports_failure_reason(backend: SageMakerBackend, request_: LaunchRequest) -> None:
    backend.submit(request_)
    job = moto_job("support-bot-v1")
    job.training_job_status = job.secondary_status = "Failed"
    job.failure_reason = "AlgorithmError: CUDA out of memory"
    snap = backend.poll("support-bot-v1", PollCursor())
    assert snap.state is JobState.FAILED and snap.failure_message == "AlgorithmError: CUDA out of memory"
    assert snap.events[-1].level == "error" and "CUDA out of memory" in snap.events[-1].message
    assert backend.poll("support-bot-v1", snap.cursor).events == ()


def test_poll_of_a_missing_job_raises_job_not_found(backend: SageMakerBackend) -> None:
    with pytest.raises(JobNotFound, match="'gone-job'"):
        backend.poll("gone-job", PollCursor())


def test_cancel_refused_by_moto_is_a_clear_backend_error(backend: SageMakerBackend, request_: LaunchRequest) -> None:
    backend.submit(request_)
    with pytest.raises(BackendError, match="Stopping SageMaker training job 'support-bot-v1' failed on the AWS side"):
        backend.cancel("support-bot-v1")


def test_missing_script_is_named(backend: SageMakerBackend, request_: LaunchRequest, script: Path) -> None:
    script.unlink()
    with pytest.raises(BackendError, match="lora_train.py is missing"):
        backend.submit(request_)


@pytest.mark.parametrize("unset", ["WORKBENCH_S3_URI", "WORKBENCH_SAGEMAKER_ROLE_ARN"])
def test_missing_setting_names_the_variable(aws: str, monkeypatch: pytest.MonkeyPatch, unset: str) -> None:
    monkeypatch.setenv("WORKBENCH_S3_URI", "s3://sm-bucket/ft")
    monkeypatch.setenv("WORKBENCH_SAGEMAKER_ROLE_ARN", ROLE)
    monkeypatch.delenv(unset)
    with pytest.raises(MissingCredentials, match=unset):
        SageMakerBackend.from_environment()


LOG = """\
Loading checkpoint shards: 100%
{'loss': 2.4312, 'grad_norm': 1.02, 'learning_rate': 0.0002, 'epoch': 0.25, 'step': 10}
{'loss': 1.9, 'grad_norm': 0.9, 'learning_rate': 1.5e-04, 'epoch': 0.5, 'step': 20}
{'eval_loss': 2.05, 'eval_runtime': 1.2, 'epoch': 0.5, 'step': 20}
{'train_runtime': 30.1, 'train_loss': 2.1, 'epoch': 1.0}
{'loss': 1.2e-01, 'epoch': 1.0}
"""


def test_log_lines_parse_with_the_metric_regexes() -> None:
    assert parse_log_metrics(LOG) == [
        MetricPoint(step=10, epoch=0.25, train_loss=2.4312),
        MetricPoint(step=20, epoch=0.5, train_loss=1.9, val_loss=2.05),
        MetricPoint(step=21, epoch=1.0, train_loss=0.12),
    ]
