"""Serving Bedrock custom models: real boto3 against a local double of the endpoints moto lacks.

moto 5.2.5 answers HTTP 500 for CreateProvisionedModelThroughput and has no CreateCustomModelDeployment, so these
run against `tests.doubles.bedrock_serving`, which follows botocore's service model for paths and shapes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import orjson
import pytest

from tests.doubles.bedrock_serving import BedrockServingDouble
from workbench.domain.catalogue import get_target
from workbench.domain.pricing import estimate, serving_lines
from workbench.errors import InvalidInput, NotFound
from workbench.providers.base import Throttled
from workbench.providers.bedrock_serving import BedrockServing
from workbench.services import deployments as svc
from workbench.services.models import register_from_job
from workbench.store import Store
from workbench.store import jobs as job_rows

NOVA_MICRO = "amazon.nova-micro-v1:0:128k"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0:200k"
TITAN_EXPRESS = "amazon.titan-text-express-v1:0:8k"


@pytest.fixture
def double() -> Iterator[BedrockServingDouble]:
    server = BedrockServingDouble().serve()
    yield server
    server.close()


@pytest.fixture
def serving(double: BedrockServingDouble) -> svc.ServingFactory:
    client = boto3.client(
        "bedrock", endpoint_url=double.url, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing", config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )
    return lambda: BedrockServing(bedrock=client)


def add_model(store: Store, name: str, base_model: str, *, backend: str = "bedrock", state: str = "succeeded",
              finished_at: str = "2025-09-01T10:00:00+00:00") -> int:
    """A job the watcher saw succeed, and the model it registered."""
    arn = f"arn:aws:bedrock:us-east-1:123456789012:custom-model/{base_model.split(':')[0]}/abcdefabcdef"
    with store.write() as db:
        job = job_rows.insert_job(db, name=name, backend=backend, base_model=base_model, state=state,
                                  provider_job_id=name, output_model=arn, finished_at=finished_at)
    model = register_from_job(store, job.id)
    assert model is not None
    return model.id


def test_provisioned_throughput_is_created_polled_and_deleted_with_its_hourly_cost(store, double, serving) -> None:
    model = add_model(store, "titan-support", TITAN_EXPRESS)
    plan = svc.plan_deployment(store, model, kind="provisioned", units=1, commitment="none")
    assert plan.ok and plan.hourly_usd == 20.50
    assert "$20.50 per hour" in plan.cost_text() and "per month" in plan.cost_text()

    row = svc.deploy(store, plan, serving=serving)
    [sent] = double.sent("POST", "/provisioned-model-throughput")
    assert sent.body["modelUnits"] == 1 and sent.body["provisionedModelName"] == plan.name
    assert sent.body["modelId"].endswith("/abcdefabcdef") and "commitmentDuration" not in sent.body
    assert (row.status, row.kind, row.hourly_usd, row.units) == ("creating", "provisioned", 20.50, 1)
    assert row.provider_id and row.provider_id.startswith("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/")

    assert svc.refresh_deployments(store, serving=serving).changed == []
    double.set_status(row.provider_id, "InService")
    result = svc.refresh_deployments(store, serving=serving)
    assert result.changed == [f"{row.name}: creating -> active"]
    assert svc.get_deployment(store, row.id).provider_status == "InService"
    assert svc.refresh_deployments(store, serving=serving).polled == 0  # active: no longer polled each round

    gone = svc.undeploy(store, row.id, serving=serving)
    assert gone.deleted_at and gone.status == "deleted"
    assert double.sent("DELETE", "/provisioned-model-throughput") and row.provider_id not in double.resources
    assert svc.list_deployments(store) == [] and len(svc.list_deployments(store, include_deleted=True)) == 1
    with pytest.raises(InvalidInput, match="already deleted"):
        svc.undeploy(store, row.id, serving=serving)


def test_commitment_is_sent_and_priced(store, double, serving) -> None:
    model = add_model(store, "titan-six", TITAN_EXPRESS)
    plan = svc.plan_deployment(store, model, kind="provisioned", units=2, commitment="6months")
    assert plan.hourly_usd == pytest.approx(29.60) and any("cannot be deleted before" in w for w in plan.warnings)
    svc.deploy(store, plan, serving=serving)
    assert double.sent("POST", "/provisioned-model-throughput")[0].body["commitmentDuration"] == "SixMonths"


def test_unknown_hourly_price_is_said_not_invented(store) -> None:
    plan = svc.plan_deployment(store, add_model(store, "haiku-pt", HAIKU), kind="provisioned")
    assert plan.ok and plan.hourly_usd is None
    assert "hourly cost unknown" in plan.cost_text() and "aws.amazon.com/bedrock/pricing" in plan.cost_text()


def test_failure_message_is_surfaced(store, double, serving) -> None:
    row = svc.deploy(store, svc.plan_deployment(store, add_model(store, "titan-f", TITAN_EXPRESS), kind="provisioned"),
                     serving=serving)
    double.set_status(row.provider_id, "Failed", "Insufficient model units in your account quota")
    result = svc.refresh_deployments(store, serving=serving)
    assert result.changed == [f"{row.name}: creating -> failed (Insufficient model units in your account quota)"]
    stored = svc.get_deployment(store, row.id)
    assert (stored.status, stored.failure_message) == ("failed", "Insufficient model units in your account quota")


def test_deleted_on_the_provider_side_is_marked_and_throttling_is_kept_for_later(store, double, serving) -> None:
    row = svc.deploy(store, svc.plan_deployment(store, add_model(store, "titan-g", TITAN_EXPRESS), kind="provisioned"),
                     serving=serving)
    double.fail_next(400, "ThrottlingException")
    result = svc.refresh_deployments(store, serving=serving)
    assert result.changed == [] and "throttled" in result.errors[0]
    assert svc.get_deployment(store, row.id).status == "creating"
    double.forget(row.provider_id)
    assert svc.refresh_deployments(store, serving=serving).changed == [f"{row.name}: creating -> deleted"]
    assert svc.get_deployment(store, row.id).deleted_at


def test_throttled_create_leaves_no_live_row(store, double, serving) -> None:
    plan = svc.plan_deployment(store, add_model(store, "titan-t", TITAN_EXPRESS), kind="provisioned")
    double.fail_next(400, "ThrottlingException")
    with pytest.raises(Throttled):
        svc.deploy(store, plan, serving=serving)
    assert svc.list_deployments(store) == []
    [failed] = svc.list_deployments(store, include_deleted=True)
    assert failed.status == "failed" and "throttled" in (failed.failure_message or "")


def test_on_demand_for_a_recent_nova_model(store, double, serving) -> None:
    plan = svc.plan_deployment(store, add_model(store, "nova-od", NOVA_MICRO), kind="on-demand")
    assert plan.ok and plan.hourly_usd == 0.0
    assert "no hourly charge" in plan.cost_text() and "$3.5e-05 per 1K input tokens" in plan.cost_text()
    row = svc.deploy(store, plan, serving=serving)
    [sent] = double.sent("POST", "/model-customization/custom-model-deployments")
    assert sent.body["modelDeploymentName"] == plan.name and sent.body["modelArn"].endswith("/abcdefabcdef")
    double.set_status(row.provider_id, "Active")
    assert svc.refresh_deployments(store, serving=serving).changed == [f"{row.name}: creating -> active"]
    assert svc.undeploy(store, row.id, serving=serving).deleted_at
    assert double.sent("DELETE", "/model-customization/custom-model-deployments")


@pytest.mark.parametrize(
    ("base_model", "finished_at", "reason"),
    [
        (HAIKU, "2025-09-01T10:00:00+00:00", "offered only for custom Nova Micro, Lite and Pro"),
        (NOVA_MICRO, "2025-07-15T23:00:00+00:00", "customized on or after 2025-07-16"),
    ],
)
def test_on_demand_is_refused_with_the_reason_and_source(store, base_model, finished_at, reason) -> None:
    plan = svc.plan_deployment(store, add_model(store, "m", base_model, finished_at=finished_at), kind="on-demand")
    assert not plan.ok
    assert reason in plan.refusals[0] and "https://docs.aws.amazon.com/" in plan.refusals[0]
    with pytest.raises(InvalidInput, match="cannot deploy"):
        svc.deploy(store, plan, serving=lambda: pytest.fail("no AWS call for a refused plan"))


def test_only_models_of_succeeded_bedrock_jobs_can_be_deployed(store) -> None:
    with pytest.raises(NotFound, match="no model 'nope'"):
        svc.plan_deployment(store, "nope", kind="provisioned")
    openai = add_model(store, "gpt-ft", "gpt-4o-mini-2024-07-18", backend="openai")
    assert "trained on openai" in svc.plan_deployment(store, openai, kind="provisioned").refusals[0]
    running = add_model(store, "nova-running", NOVA_MICRO, state="running")
    assert "is running, not succeeded" in svc.plan_deployment(store, running, kind="provisioned").refusals[0]


def test_a_name_bedrock_would_refuse_is_refused_before_sending(store) -> None:
    plan = svc.plan_deployment(store, add_model(store, "n", TITAN_EXPRESS), kind="provisioned", name="my model!")
    assert "([0-9a-zA-Z][_-]?)+" in plan.refusals[0] and "--name" in plan.refusals[0]
    assert svc.plan_deployment(store, "n", kind="provisioned").name.startswith("n-pt-")


def test_serving_lines_price_provisioned_and_on_demand_and_leave_training_alone() -> None:
    nova = get_target("bedrock-nova").base_model(NOVA_MICRO)
    labels = [line.label for line in serving_lines(nova)]
    assert labels == ["serving: Provisioned Throughput", "serving: on-demand, input tokens", "serving: on-demand, output tokens"]
    titan = get_target("bedrock-titan").base_model(TITAN_EXPRESS)
    lines = serving_lines(titan)
    assert [line.usd for line in lines[:3]] == [20.50, 18.40, 14.80] and lines[3].usd is None
    assert all(line.source and line.source.startswith("https://") and not line.verified for line in lines)
    assert serving_lines(get_target("openai").base_models[0]) == []
    assert [line.label for line in estimate(nova, train_tokens=1000, epochs=2).lines] == [
        "training", "custom model per month (storage)"]


# --- the CLI, as a user runs it -------------------------------------------------------------------------------


def cli(db: Path, env: dict[str, str], *args: str, ok: bool = True) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "workbench", "--db", str(db), *args, "--json"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert (proc.returncode == 0) == ok, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.strip().splitlines()
    return orjson.loads(proc.stdout) if len(lines) != 1 else orjson.loads(lines[0])


def test_cli_refuses_json_without_yes_then_deploys_lists_and_undeploys(tmp_path: Path, double) -> None:
    db = tmp_path / "cli.db"
    store = Store(db)
    model = add_model(store, "titan-cli", TITAN_EXPRESS)
    env = {**os.environ, "AWS_ENDPOINT_URL_BEDROCK": double.url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    env.pop("AWS_PROFILE", None)

    refused = cli(db, env, "models", "deploy", str(model), "--kind", "provisioned", ok=False)
    assert refused["ok"] is False and "--yes" in refused["error"] and "$20.50 per hour" in refused["error"]
    assert refused["plan"]["hourly_usd"] == 20.50 and double.requests == []

    done = cli(db, env, "models", "deploy", str(model), "--kind", "provisioned", "--yes")
    deployment = done["deployment"]
    assert deployment["status"] == "creating" and deployment["hourly_usd"] == 20.50

    listed = cli(db, env, "models", "deployments")
    assert [d["id"] for d in listed["deployments"]] == [deployment["id"]]

    no = cli(db, env, "models", "deploy", str(model), "--kind", "on-demand", "--yes", ok=False)
    assert "offered only for custom Nova" in no["error"]

    assert cli(db, env, "models", "undeploy", str(deployment["id"]), ok=False)["ok"] is False
    gone = cli(db, env, "models", "undeploy", str(deployment["id"]), "--yes")
    assert gone["deployment"]["deleted_at"]
    assert cli(db, env, "models", "deployments")["deployments"] == []


def test_cli_in_a_terminal_asks_showing_the_hourly_cost_and_creates_nothing_on_no(tmp_path: Path, double) -> None:
    db = tmp_path / "ask.db"
    model = add_model(Store(db), "titan-ask", TITAN_EXPRESS)
    env = {**os.environ, "AWS_ENDPOINT_URL_BEDROCK": double.url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    proc = subprocess.run([sys.executable, "-m", "workbench", "--db", str(db), "models", "deploy", str(model),
                           "--kind", "provisioned"], input="n\n", capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1 and "not confirmed; nothing was created" in proc.stderr
    assert "cost: $20.50 per hour for 1 model unit(s)" in proc.stdout and "Create it?" in proc.stdout
    assert double.requests == []
