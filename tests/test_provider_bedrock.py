"""Bedrock backend against moto's server with real boto3: upload, create, poll (states, metrics CSVs), stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from workbench.domain.jobs import JobState, LaunchRequest, PollCursor
from workbench.providers import aws as aws_mod
from workbench.providers.base import BackendError, JobNotFound, MissingCredentials, Throttled
from workbench.providers.bedrock import BedrockBackend, map_status

BUCKET = "ft-bucket"
ROLE = "arn:aws:iam::123456789012:role/bedrock-ft"
TRAIN_CSV = "step_number,epoch_number,training_loss,perplexity\n"
VAL_CSV = "step_number,epoch_number,validation_loss,perplexity\n"


@pytest.fixture
def backend(aws: str, monkeypatch: pytest.MonkeyPatch) -> BedrockBackend:
    monkeypatch.setenv("WORKBENCH_S3_URI", f"s3://{BUCKET}/runs")
    monkeypatch.setenv("WORKBENCH_BEDROCK_ROLE_ARN", ROLE)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return BedrockBackend.from_environment()


@pytest.fixture
def request_(tmp_path: Path) -> LaunchRequest:
    train = tmp_path / "train.jsonl"
    train.write_text('{"messages": []}\n')
    val = tmp_path / "val.jsonl"
    val.write_text('{"messages": [1]}\n')
    return LaunchRequest(
        job_name="support-bot.v1",
        base_model="amazon.nova-micro-v1:0:128k",
        train_file=str(train),
        validation_file=str(val),
        hyperparameters={"epochCount": 2, "learningRate": 1e-05, "learningRateWarmupSteps": 3},
    )


def moto_job(name: str) -> Any:
    from moto.bedrock.models import bedrock_backends

    return bedrock_backends["123456789012"]["us-east-1"].model_customization_jobs[name]


def put(key: str, body: str) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def test_submit_uploads_files_and_creates_job_with_string_hyperparameters(backend: BedrockBackend, request_: LaunchRequest) -> None:
    submitted = backend.submit(request_)

    assert submitted.provider_job_id == "support-bot.v1"
    assert submitted.state is JobState.RUNNING
    assert submitted.files == {
        "train": f"s3://{BUCKET}/runs/support-bot.v1/train.jsonl",
        "validation": f"s3://{BUCKET}/runs/support-bot.v1/validation.jsonl",
    }
    s3 = boto3.client("s3")
    assert s3.get_object(Bucket=BUCKET, Key="runs/support-bot.v1/train.jsonl")["Body"].read() == b'{"messages": []}\n'
    assert s3.get_object(Bucket=BUCKET, Key="runs/support-bot.v1/validation.jsonl")["Body"].read() == b'{"messages": [1]}\n'
    job = boto3.client("bedrock").get_model_customization_job(jobIdentifier="support-bot.v1")
    assert job["hyperParameters"] == {"epochCount": "2", "learningRate": "1e-05", "learningRateWarmupSteps": "3"}
    assert job["roleArn"] == ROLE
    assert job["outputDataConfig"]["s3Uri"] == f"s3://{BUCKET}/runs/support-bot.v1/output/"
    assert job["validationDataConfig"] == {"validators": [{"s3Uri": f"s3://{BUCKET}/runs/support-bot.v1/validation.jsonl"}]}
    assert job["customizationType"] == "FINE_TUNING"


def test_preview_is_what_submit_sends(backend: BedrockBackend, request_: LaunchRequest) -> None:
    preview = backend.preview(request_)
    assert boto3.client("bedrock").list_model_customization_jobs()["modelCustomizationJobSummaries"] == []

    assert backend.submit(request_).request == preview
    assert preview["customModelName"] == "support-bot-v1"
    assert all(isinstance(v, str) for v in preview["hyperParameters"].values())


@pytest.mark.parametrize(
    ("job_name", "match"),
    [("", "1-63"), ("-leading-dash", "jobName"), ("x" * 64, "1-63"), ("has space", "jobName"), ("a+b", r"'\+'")],
)
def test_bad_job_name_is_refused_before_any_call(
    backend: BedrockBackend, request_: LaunchRequest, job_name: str, match: str
) -> None:
    bad = request_.model_copy(update={"job_name": job_name})
    with pytest.raises(BackendError, match=match):
        backend.submit(bad)
    assert boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_bad_custom_model_name_is_refused(backend: BedrockBackend, request_: LaunchRequest) -> None:
    bad = request_.model_copy(update={"settings": {"custom_model_name": "two__underscores"}})
    with pytest.raises(BackendError, match="customModelName"):
        backend.preview(bad)


@pytest.mark.parametrize(
    ("status", "details", "state"),
    [
        ("InProgress", None, JobState.RUNNING),
        ("InProgress", {"validationDetails": {"status": "InProgress"}}, JobState.VALIDATING),
        ("InProgress", {"validationDetails": {"status": "NotStarted"}, "trainingDetails": {"status": "NotStarted"}}, JobState.QUEUED),
        ("InProgress", {"validationDetails": {"status": "Completed"}, "trainingDetails": {"status": "InProgress"}}, JobState.RUNNING),
        ("Stopping", None, JobState.RUNNING),
        ("Completed", None, JobState.SUCCEEDED),
        ("Failed", None, JobState.FAILED),
        ("Stopped", None, JobState.CANCELLED),
        ("Exploded", None, JobState.UNKNOWN),
    ],
)
def test_map_status_is_total(status: str, details: dict[str, Any] | None, state: JobState) -> None:
    assert map_status(status, details) is state


def test_poll_follows_status_changes_with_one_event_each(backend: BedrockBackend, request_: LaunchRequest) -> None:
    backend.submit(request_)
    first = backend.poll("support-bot.v1", PollCursor())
    assert first.state is JobState.RUNNING and first.provider_status == "InProgress"
    assert [e.message for e in first.events] == ["Bedrock status: InProgress"]

    assert backend.poll("support-bot.v1", first.cursor).events == ()
    again = backend.poll("support-bot.v1", PollCursor())
    assert again.events[0].key == first.events[0].key

    moto_job("support-bot.v1").status = "Completed"
    done = backend.poll("support-bot.v1", first.cursor)
    assert done.state is JobState.SUCCEEDED
    assert [e.message for e in done.events] == ["Bedrock status: Completed"]
    assert done.output_model is not None and "support-bot" in done.output_model


def test_poll_reports_failure_message(backend: BedrockBackend, request_: LaunchRequest) -> None:
    backend.submit(request_)
    job = moto_job("support-bot.v1")
    job.status = "Failed"
    job.failure_message = "Training data has 3 records; at least 8 are needed"

    snap = backend.poll("support-bot.v1", PollCursor())
    assert snap.state is JobState.FAILED
    assert snap.failure_message == "Training data has 3 records; at least 8 are needed"
    assert snap.events[0].level == "error" and "at least 8" in snap.events[0].message


def test_poll_reads_metrics_csvs_incrementally(backend: BedrockBackend, request_: LaunchRequest) -> None:
    backend.submit(request_)
    out = "runs/support-bot.v1/output/model-customization-job-abc123def456"
    put(f"{out}/training_artifacts/step_wise_training_metrics.csv", TRAIN_CSV + "0,0,2.5,12.1\n1,0,2.25,9.4\n")

    # A running job first seen is not listed at once (the listing is spread over the next 30 s)...
    seen = backend.poll("support-bot.v1", PollCursor())
    assert seen.metrics == () and seen.cursor.extra["listed_at"] > 0
    # ...and is listed when that time has passed.
    later = seen.cursor.model_copy(update={"extra": {**seen.cursor.extra, "listed_at": 0}})
    first = backend.poll("support-bot.v1", later)
    assert [(m.step, m.epoch, m.train_loss, m.val_loss) for m in first.metrics] == [(0, 0.0, 2.5, None), (1, 0.0, 2.25, None)]
    assert first.cursor.last_step == 1

    assert backend.poll("support-bot.v1", first.cursor).metrics == ()

    put(f"{out}/training_artifacts/step_wise_training_metrics.csv", TRAIN_CSV + "0,0,2.5,12.1\n1,0,2.25,9.4\n2,1,2.0,7.3\n")
    put(f"{out}/validation_artifacts/post_fine_tuning_validation/validation_metrics.csv", VAL_CSV + "1,0,2.4,11.0\n2,1,2.1,8.0\n")
    # The validation file appears after training: found at the next listing (or when the status moves).
    second = backend.poll("support-bot.v1", first.cursor.model_copy(update={"extra": {**first.cursor.extra, "listed_at": 0}}))
    assert [(m.step, m.train_loss, m.val_loss) for m in second.metrics] == [(1, None, 2.4), (2, 2.0, 2.1)]
    assert second.cursor.last_step == 2
    assert backend.poll("support-bot.v1", second.cursor).metrics == ()


def test_poll_of_a_deleted_job_raises_job_not_found(backend: BedrockBackend) -> None:
    with pytest.raises(JobNotFound, match="'gone-job'"):
        backend.poll("gone-job", PollCursor())


def test_cancel_stops_the_job(backend: BedrockBackend, request_: LaunchRequest) -> None:
    backend.submit(request_)
    backend.cancel("support-bot.v1")
    snap = backend.poll("support-bot.v1", PollCursor())
    assert snap.state is JobState.CANCELLED and snap.provider_status == "Stopped"


@pytest.mark.parametrize(("unset", "named"), [("WORKBENCH_S3_URI", "WORKBENCH_S3_URI"), ("WORKBENCH_BEDROCK_ROLE_ARN", "WORKBENCH_BEDROCK_ROLE_ARN")])
def test_missing_setting_names_the_variable(aws: str, monkeypatch: pytest.MonkeyPatch, unset: str, named: str) -> None:
    monkeypatch.setenv("WORKBENCH_S3_URI", f"s3://{BUCKET}/runs")
    monkeypatch.setenv("WORKBENCH_BEDROCK_ROLE_ARN", ROLE)
    monkeypatch.delenv(unset)
    with pytest.raises(MissingCredentials, match=named):
        BedrockBackend.from_environment()


def test_missing_aws_credentials_are_named(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_S3_URI", f"s3://{BUCKET}/runs")
    monkeypatch.setenv("WORKBENCH_BEDROCK_ROLE_ARN", ROLE)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(MissingCredentials, match="AWS_ACCESS_KEY_ID"):
        BedrockBackend.from_environment()


def test_missing_region_is_named(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_S3_URI", f"s3://{BUCKET}/runs")
    monkeypatch.setenv("WORKBENCH_BEDROCK_ROLE_ARN", ROLE)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(MissingCredentials, match="AWS_DEFAULT_REGION"):
        BedrockBackend.from_environment()


def client_error(code: str, message: str = "boom", status: int = 400) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "GetModelCustomizationJob")


@pytest.mark.parametrize(
    ("exc", "kind", "match"),
    [
        (client_error("ThrottlingException", "Rate exceeded"), Throttled, "throttled"),
        (client_error("ResourceNotFoundException"), JobNotFound, "no longer exists"),
        (client_error("ValidationException", "Could not find training job 'x'"), JobNotFound, "no longer exists"),
        (client_error("ValidationException", "bad value"), BackendError, "refused"),
        (client_error("ExpiredTokenException", "The security token included in the request is expired"), MissingCredentials, "AWS_SESSION_TOKEN"),
        (client_error("UnrecognizedClientException"), MissingCredentials, "AWS_ACCESS_KEY_ID"),
        (client_error("AccessDeniedException"), MissingCredentials, "permissions"),
        (NoCredentialsError(), MissingCredentials, "AWS_PROFILE"),
        (client_error("InternalFailure", status=500), BackendError, "HTTP 500"),
    ],
)
def test_errors_are_translated(exc: Exception, kind: type[BackendError], match: str) -> None:
    with pytest.raises(kind, match=match) as caught, aws_mod.translate_errors("Reading job 'x'", job="x"):
        raise exc
    assert type(caught.value) is kind
    assert caught.value.__cause__ is exc
