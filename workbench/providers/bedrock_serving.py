"""Serving a Bedrock custom model: Provisioned Throughput, or an on-demand custom model deployment (Nova).

Facts relied on (botocore's `bedrock` service model, 2023-04-20):
- `create_provisioned_model_throughput` (POST /provisioned-model-throughput, HTTP 201) needs `modelUnits` (>= 1),
  `provisionedModelName` (1-63 characters, pattern `([0-9a-zA-Z][_-]?)+`) and `modelId` (the custom model's ARN or
  name); `commitmentDuration` is `OneMonth` | `SixMonths`, omitted for no commitment. Returns `provisionedModelArn`.
- `get_provisioned_model_throughput(provisionedModelId=...)` (GET /provisioned-model-throughput/{id}) returns
  `status` (Creating | InService | Updating | Failed), `failureMessage`, `modelUnits`, `commitmentDuration`;
  `delete_provisioned_model_throughput` (DELETE on the same path) returns an empty body.
- `create_custom_model_deployment` (POST /model-customization/custom-model-deployments, HTTP 202) needs
  `modelDeploymentName` (pattern `([0-9a-zA-Z][_-]?){1,63}`) and `modelArn`; returns `customModelDeploymentArn`.
  `get_custom_model_deployment` returns `status` (Creating | Active | Failed) and `failureMessage`;
  `delete_custom_model_deployment` returns an empty body.
botocore checks only lengths and required members client-side, never the patterns, so names are checked here.

Which models may be served how (who may, and what it costs, is the service's business; this module only calls):
- "If you customized a model, you must purchase Provisioned Throughput to be able to use it"
  (https://docs.aws.amazon.com/bedrock/latest/userguide/prov-throughput.html), with the exception of
- Nova Micro, Lite and Pro custom models customized on or after 2025-07-16, which may be deployed for on-demand
  inference, billed per token (https://docs.aws.amazon.com/nova/latest/userguide/custom-fine-tune-odi.html,
  https://docs.aws.amazon.com/bedrock/latest/userguide/deploy-custom-model-on-demand.html).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from workbench.providers import aws
from workbench.providers.base import BackendError


class ServingKind(StrEnum):
    """How a custom model is served."""

    PROVISIONED = "provisioned"
    ON_DEMAND = "on-demand"


class Commitment(StrEnum):
    """How long Provisioned Throughput is bought for; `none` is billed by the hour and can be deleted any time."""

    NONE = "none"
    ONE_MONTH = "1month"
    SIX_MONTHS = "6months"


COMMITMENT_API: dict[Commitment, str | None] = {
    Commitment.NONE: None,
    Commitment.ONE_MONTH: "OneMonth",
    Commitment.SIX_MONTHS: "SixMonths",
}

PROVISIONED_NAME_PATTERN = r"([0-9a-zA-Z][_-]?)+"
DEPLOYMENT_NAME_PATTERN = r"([0-9a-zA-Z][_-]?){1,63}"
MAX_NAME = 63

SERVING_STATES = {
    # Provisioned Throughput
    "Creating": "creating",
    "InService": "active",
    "Updating": "updating",
    "Failed": "failed",
    # custom model deployment
    "Active": "active",
}
"""Provider status -> the workbench's word; anything else is 'unknown' (the provider's word is kept beside it)."""
ACTIVE_STATES = frozenset({"creating", "updating", "unknown"})
"""States the watcher keeps polling: the resource may still change by itself."""


class ServingStatus(BaseModel):
    """What the provider says about one Provisioned Throughput or deployment right now."""

    provider_id: str
    provider_status: str
    state: str
    failure_message: str | None = None
    units: int | None = None
    gone: bool = False


def serving_state(provider_status: str) -> str:
    """Map a provider status to creating/active/updating/failed; a word not known here is 'unknown'."""
    return SERVING_STATES.get(provider_status, "unknown")


def check_name(name: str, kind: ServingKind) -> None:
    """Refuse a name the provider would refuse, saying which pattern it breaks (botocore does not check it)."""
    pattern = PROVISIONED_NAME_PATTERN if kind is ServingKind.PROVISIONED else DEPLOYMENT_NAME_PATTERN
    field = "provisionedModelName" if kind is ServingKind.PROVISIONED else "modelDeploymentName"
    if not name or len(name) > MAX_NAME or re.fullmatch(pattern, name) is None:
        raise BackendError(
            f"{field} {name!r} is not accepted by Bedrock: it must be 1-{MAX_NAME} letters and digits, each optionally "
            f"followed by one '_' or '-' (pattern {pattern}); choose another --name"
        )


class BedrockServing:
    """Create, read and delete Provisioned Throughput and custom model deployments, given a `bedrock` client."""

    def __init__(self, *, bedrock: Any) -> None:
        self.bedrock = bedrock

    @classmethod
    def from_environment(cls) -> BedrockServing:
        """Build from boto3's own chain (region, profile, AWS_ENDPOINT_URL); MissingCredentials names what is missing."""
        return cls(bedrock=aws.make_client("bedrock"))

    @property
    def region(self) -> str:
        return aws.client_region(self.bedrock)

    def create_provisioned(self, *, name: str, model_id: str, units: int, commitment: Commitment) -> str:
        """Buy Provisioned Throughput for a custom model; return its ARN."""
        check_name(name, ServingKind.PROVISIONED)
        if units < 1:
            raise BackendError(f"modelUnits must be 1 or more, got {units}; give --units 1 or more")
        request: dict[str, Any] = {"provisionedModelName": name, "modelId": model_id, "modelUnits": units}
        if (duration := COMMITMENT_API[commitment]) is not None:
            request["commitmentDuration"] = duration
        with aws.translate_errors(f"creating Provisioned Throughput {name!r} for {model_id}"):
            return str(self.bedrock.create_provisioned_model_throughput(**request)["provisionedModelArn"])

    def create_on_demand(self, *, name: str, model_arn: str, description: str | None = None) -> str:
        """Deploy a custom model for on-demand inference; return the deployment's ARN."""
        check_name(name, ServingKind.ON_DEMAND)
        request: dict[str, Any] = {"modelDeploymentName": name, "modelArn": model_arn}
        if description:
            request["description"] = description
        with aws.translate_errors(f"creating on-demand deployment {name!r} for {model_arn}"):
            return str(self.bedrock.create_custom_model_deployment(**request)["customModelDeploymentArn"])

    def get(self, kind: ServingKind, provider_id: str) -> ServingStatus:
        """Read one resource's status; a resource deleted on the provider side comes back with `gone=True`."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if kind is ServingKind.PROVISIONED:
                found = self.bedrock.get_provisioned_model_throughput(provisionedModelId=provider_id)
            else:
                found = self.bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=provider_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return ServingStatus(provider_id=provider_id, provider_status="NotFound", state="deleted", gone=True)
            raise aws.translate(exc, f"reading {kind.value} deployment {provider_id}") from exc
        except BotoCoreError as exc:  # no network, no credentials, no region
            raise aws.translate(exc, f"reading {kind.value} deployment {provider_id}") from exc
        status = str(found.get("status", ""))
        return ServingStatus(
            provider_id=provider_id, provider_status=status, state=serving_state(status),
            failure_message=found.get("failureMessage") or None, units=found.get("modelUnits"),
        )

    def delete(self, kind: ServingKind, provider_id: str) -> bool:
        """Delete one resource; return False when it was already gone on the provider side."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if kind is ServingKind.PROVISIONED:
                self.bedrock.delete_provisioned_model_throughput(provisionedModelId=provider_id)
            else:
                self.bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=provider_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise aws.translate(exc, f"deleting {kind.value} deployment {provider_id}") from exc
        except BotoCoreError as exc:
            raise aws.translate(exc, f"deleting {kind.value} deployment {provider_id}") from exc
        return True
