"""Serving a fine-tuned Bedrock model: plan (with the hourly cost), create, watch and delete deployments.

Two kinds (facts and sources in `workbench.providers.bedrock_serving`):
- Provisioned Throughput, for any Bedrock custom model: billed per model unit per hour for as long as it exists,
  cheaper per hour with a one- or six-month commitment (https://aws.amazon.com/bedrock/pricing/).
- On-demand, only for Nova Micro, Lite and Pro custom models customized on or after 2025-07-16: no hourly charge,
  billed per token at the base model's rate (https://docs.aws.amazon.com/nova/latest/userguide/custom-fine-tune-odi.html).

Only models registered from succeeded Bedrock jobs can be deployed. A plan is computed first, so the CLI and the
Models page show what it will cost per hour before anything is created; `deploy` then refuses a plan with
refusals. `refresh_deployments` is what the watcher calls each round: it moves Creating deployments on to
active or failed (with the provider's failure message) and marks those deleted on the provider side.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime

from pydantic import BaseModel, Field

from workbench.domain import pricing
from workbench.domain.access import Permission
from workbench.domain.catalogue import TARGETS, BaseModelSpec, Provider
from workbench.domain.catalogue import bedrock as bedrock_catalogue
from workbench.domain.catalogue import sources as src
from workbench.domain.jobs import BackendName, JobState
from workbench.domain.pricing import CostLine
from workbench.errors import InvalidInput, NotFound
from workbench.providers.base import BackendError
from workbench.providers.bedrock_serving import (
    ACTIVE_STATES,
    BedrockServing,
    Commitment,
    ServingKind,
    check_name,
)
from workbench.services import access
from workbench.store import Store
from workbench.store import deployments as rows
from workbench.store import jobs as job_rows
from workbench.store import models as model_rows
from workbench.store.deployments import DeploymentRow
from workbench.store.models import ModelRow

ServingFactory = Callable[[], BedrockServing]
NO_COMMITMENT_UNITS = 1
"""Units one no-commitment Provisioned Throughput gets by default (quota; https://docs.aws.amazon.com/bedrock/latest/userguide/prov-throughput.html)."""


class DeploymentPlan(BaseModel):
    """What a deployment will be and cost, computed before anything is created."""

    model: ModelRow
    kind: ServingKind
    name: str
    units: int | None = None
    commitment: Commitment | None = None
    hourly_usd: float | None = Field(description="Estimated charge per hour; 0 for on-demand (per token); None if unknown.")
    cost_lines: list[CostLine] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    refusals: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refusals

    def cost_text(self) -> str:
        """One sentence on what the deployment costs, for a confirmation prompt."""
        if self.kind is ServingKind.ON_DEMAND:
            rates = [f"${line.usd:g} per 1K {line.label.rsplit(', ', 1)[-1]}" for line in self.cost_lines if line.usd]
            return "no hourly charge; billed per token at the base model's rate" + (f" ({', '.join(rates)})" if rates else "")
        if self.hourly_usd is None:
            return (f"hourly cost unknown: the catalogue has no Provisioned Throughput price for {self.model.base_model}; "
                    f"read it on {src.BEDROCK_PRICING} before confirming")
        monthly = self.hourly_usd * pricing.HOURS_PER_MONTH
        text = (f"${self.hourly_usd:,.2f} per hour for {self.units} model unit(s), about ${monthly:,.0f} per month, "
                "billed until it is deleted")
        if self.commitment not in (None, Commitment.NONE):
            text += f", and for at least the {self.commitment.value} commitment"
        return text


class RefreshResult(BaseModel):
    """What one refresh round did."""

    polled: int = 0
    changed: list[str] = Field(default_factory=list, description="'name: old -> new' per deployment whose status moved.")
    errors: list[str] = Field(default_factory=list)


# --- planning ---------------------------------------------------------------------------------------------


def base_model_spec(base_model: str) -> BaseModelSpec | None:
    """Return the Bedrock catalogue entry of a base model id, or None for one the catalogue does not list."""
    for target in TARGETS:
        if target.provider is Provider.BEDROCK and (spec := target.base_model(base_model)) is not None:
            return spec
    return None


def default_name(model: ModelRow, kind: ServingKind, now: datetime | None = None) -> str:
    """A name Bedrock accepts: the model's name reduced to letters, digits and single '-', a kind tag, a time."""
    stem = re.sub(r"[^0-9A-Za-z]+", "-", model.name).strip("-")[:36] or f"model{model.id}"
    tag = "pt" if kind is ServingKind.PROVISIONED else "od"
    return f"{stem}-{tag}-{(now or datetime.now(UTC)):%Y%m%d%H%M%S}"


def _trained_on(store: Store, model: ModelRow) -> date | None:
    with store.connect() as db:
        job = job_rows.get_job(db, model.job_id) if model.job_id is not None else None
    stamp = (job.finished_at if job else None) or model.created_at
    try:
        return datetime.fromisoformat(stamp).date()
    except ValueError:
        return None


def _eligibility(store: Store, model: ModelRow) -> list[str]:
    """Why this model cannot be deployed here at all: only models of succeeded Bedrock jobs can."""
    if model.backend != BackendName.BEDROCK.value:
        return [f"model {model.id} {model.name!r} was trained on {model.backend}; only models from succeeded Bedrock "
                "jobs can be deployed here"]
    if model.job_id is None:
        return [f"model {model.id} {model.name!r} has no job in the ledger any more; only models from succeeded "
                "Bedrock jobs can be deployed"]
    with store.connect() as db:
        try:
            job = job_rows.get_job(db, model.job_id)
        except NotFound:
            return [f"model {model.id} {model.name!r}: its job {model.job_id} is gone from the ledger"]
    if job.state is not JobState.SUCCEEDED:
        return [f"model {model.id} {model.name!r}: job {job.id} {job.name!r} is {job.state.value}, not succeeded; "
                "only a succeeded job's model can be deployed"]
    return []


def plan_deployment(
    store: Store, model: int | str, *, kind: ServingKind | str, units: int = 1,
    commitment: Commitment | str = Commitment.NONE, name: str | None = None,
) -> DeploymentPlan:
    """Work out a deployment and its hourly cost; refusals say why it cannot be made, and what to do instead."""
    kind, commitment = ServingKind(kind), Commitment(commitment)
    with store.connect() as db:
        row = model_rows.get_model(db, model)
    name = name or default_name(row, kind)
    spec = base_model_spec(row.base_model)
    plan = DeploymentPlan(model=row, kind=kind, name=name, hourly_usd=None, refusals=_eligibility(store, row))
    try:
        check_name(name, kind)
    except BackendError as exc:
        plan.refusals.append(str(exc))
    if kind is ServingKind.PROVISIONED:
        _plan_provisioned(plan, spec, units, commitment)
    else:
        _plan_on_demand(plan, spec, _trained_on(store, row))
    return plan


def _plan_provisioned(plan: DeploymentPlan, spec: BaseModelSpec | None, units: int, commitment: Commitment) -> None:
    plan.units, plan.commitment = units, commitment
    if units < 1:
        plan.refusals.append(f"--units must be 1 or more (Bedrock's modelUnits minimum), got {units}")
    elif commitment is Commitment.NONE and units > NO_COMMITMENT_UNITS:
        plan.warnings.append(
            f"a no-commitment Provisioned Throughput gets {NO_COMMITMENT_UNITS} model unit by default quota; more "
            f"needs a quota increase ({src.BEDROCK_PROVISIONED})"
        )
    if commitment is not Commitment.NONE:
        plan.warnings.append(f"a {commitment.value} commitment cannot be deleted before its term ends, and commitments "
                             f"start with a quota of 0 model units: request units first ({src.BEDROCK_PROVISIONED})")
    price = pricing.provisioned_price(spec, commitment.value)
    if price is not None and units >= 1:
        plan.hourly_usd = round(price.usd * units, 4)
    plan.cost_lines = [line for line in pricing.serving_lines(spec) if "Provisioned Throughput" in line.label]
    if spec is None:
        plan.warnings.append(f"{plan.model.base_model} is not in the catalogue: no hourly price is known")
    elif price is not None and not price.verified:
        plan.warnings.append(f"the hourly price is second-hand: confirm it on {price.source}")


def _plan_on_demand(plan: DeploymentPlan, spec: BaseModelSpec | None, trained: date | None) -> None:
    base = plan.model.base_model
    since = bedrock_catalogue.ON_DEMAND_SINCE
    if not pricing.on_demand_allowed(base):
        plan.refusals.append(
            f"on-demand inference is offered only for custom Nova Micro, Lite and Pro models, not {base}; serve this "
            f"model with --kind provisioned (source: {src.NOVA_ON_DEMAND})"
        )
        return
    if trained is None or trained < since:
        when = f"on {trained:%Y-%m-%d}" if trained else "on an unknown date"
        plan.refusals.append(
            f"model {plan.model.id} was trained {when}; on-demand inference needs a Nova custom model customized on or "
            f"after {since:%Y-%m-%d}: retrain it, or use --kind provisioned (source: {src.BEDROCK_ON_DEMAND_DEPLOY})"
        )
    plan.hourly_usd = 0.0
    plan.cost_lines = [line for line in pricing.serving_lines(spec) if "on-demand" in line.label]
    if any(line.usd is not None and not line.verified for line in plan.cost_lines):
        plan.warnings.append(f"the per-token rates are second-hand: confirm them on {src.BEDROCK_PRICING}")


# --- create, delete, list, refresh --------------------------------------------------------------------------


def _serving(factory: ServingFactory | None) -> BedrockServing:
    return (factory or BedrockServing.from_environment)()


def deploy(store: Store, plan: DeploymentPlan, *, serving: ServingFactory | None = None) -> DeploymentRow:
    """Create what a plan describes; a row is stored first, so a lost answer still leaves something to delete."""
    access.require(store, Permission.MODELS_WRITE, action="model.deploy", target=f"model:{plan.model.id}")
    if not plan.ok:
        raise InvalidInput("cannot deploy: " + "; ".join(plan.refusals))
    client = _serving(serving)
    if plan.kind is ServingKind.ON_DEMAND and client.region not in bedrock_catalogue.ON_DEMAND_REGIONS:
        raise InvalidInput(f"on-demand deployments are offered in {', '.join(bedrock_catalogue.ON_DEMAND_REGIONS)} only, "
                           f"not {client.region}; set AWS_DEFAULT_REGION (source: {src.BEDROCK_ON_DEMAND_DEPLOY})")
    with store.write() as db:
        row = rows.insert(db, model_id=plan.model.id, kind=plan.kind.value, name=plan.name, units=plan.units,
                          commitment=plan.commitment.value if plan.commitment else None, hourly_usd=plan.hourly_usd)
        access.audit(db, "model.deploy", f"model:{plan.model.id}", deployment=f"deployment:{row.id}", name=plan.name,
                     kind=plan.kind.value, units=plan.units, commitment=plan.commitment.value if plan.commitment else None,
                     hourly_usd=plan.hourly_usd)
    try:
        if plan.kind is ServingKind.PROVISIONED:
            arn = client.create_provisioned(name=plan.name, model_id=plan.model.model_id, units=plan.units or 1,
                                            commitment=plan.commitment or Commitment.NONE)
        else:
            arn = client.create_on_demand(name=plan.name, model_arn=plan.model.model_id,
                                          description=f"workbench model {plan.model.id} {plan.model.name}")
    except BackendError as exc:
        with store.write() as db:
            rows.update(db, row.id, status="failed", failure_message=str(exc))
            rows.mark_deleted(db, row.id, status="failed")
        raise
    with store.write() as db:
        rows.update(db, row.id, provider_id=arn, status="creating", provider_status="Creating")
        return rows.get(db, row.id)


def undeploy(store: Store, deployment: int | str, *, serving: ServingFactory | None = None) -> DeploymentRow:
    """Delete a deployment on the provider and mark it deleted; one already gone there is marked all the same."""
    access.require(store, Permission.MODELS_WRITE, action="model.undeploy", target=f"deployment:{deployment}")
    with store.connect() as db:
        row = rows.get(db, deployment)
    if row.deleted_at:
        raise InvalidInput(f"deployment {row.id} {row.name!r} was already deleted at {row.deleted_at}")
    if row.provider_id:
        _serving(serving).delete(ServingKind(row.kind), row.provider_id)
    with store.write() as db:
        rows.mark_deleted(db, row.id)
        hours = hours_up(row)
        access.audit(db, "model.undeploy", f"deployment:{row.id}", model=f"model:{row.model_id}", name=row.name,
                     kind=row.kind, units=row.units, hours=hours, hourly_usd=row.hourly_usd,
                     cost_usd=round(hours * row.hourly_usd, 2) if row.hourly_usd is not None else None)
        return rows.get(db, row.id)


def hours_up(row: DeploymentRow, now: datetime | None = None) -> float:
    """Hours from the deployment's creation to now: what a Provisioned Throughput billed, to two decimals."""
    try:
        created = datetime.fromisoformat(row.created_at)
    except ValueError:
        return 0.0
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return round(max(0.0, ((now or datetime.now(UTC)) - created).total_seconds() / 3600), 2)


def get_deployment(store: Store, deployment: int | str) -> DeploymentRow:
    access.require(store, Permission.MODELS_READ, action="deployment.show", target=f"deployment:{deployment}")
    with store.connect() as db:
        return rows.get(db, deployment)


def list_deployments(store: Store, *, include_deleted: bool = False, model: int | str | None = None) -> list[DeploymentRow]:
    """Deployments newest first; deleted ones only when asked."""
    access.require(store, Permission.MODELS_READ, action="deployment.list")
    with store.connect() as db:
        model_id = model_rows.get_model(db, model).id if model is not None else None
        return rows.list_all(db, include_deleted=include_deleted, model_id=model_id)


def refresh_deployments(
    store: Store, *, serving: ServingFactory | None = None, include_active: bool = False,
) -> RefreshResult:
    """Poll every deployment still changing (creating, updating) and record what the provider says.

    The watcher calls this each round; with nothing pending it makes no AWS call and needs no credentials.
    `include_active` also re-reads active ones, to notice deletions made in the console. Errors are collected
    per deployment, never raised, so one bad deployment does not stop the others or the watcher.
    """
    states = tuple(ACTIVE_STATES | {"active"}) if include_active else tuple(ACTIVE_STATES)
    with store.connect() as db:
        due = rows.pending(db, states)
    result = RefreshResult()
    if not due:
        return result
    try:
        client = _serving(serving)
    except InvalidInput as exc:
        result.errors.append(f"deployments: {exc}")
        return result
    for row in due:
        result.polled += 1
        try:
            status = client.get(ServingKind(row.kind), row.provider_id or "")
        except BackendError as exc:
            result.errors.append(f"{row.name}: {exc}")
            continue
        with store.write() as db:
            if status.gone:
                rows.mark_deleted(db, row.id)
            else:
                rows.update(db, row.id, status=status.state, provider_status=status.provider_status,
                            failure_message=status.failure_message,
                            units=status.units if status.units is not None else row.units)
        new = "deleted" if status.gone else status.state
        if new != row.status:
            why = f" ({status.failure_message})" if status.failure_message else ""
            result.changed.append(f"{row.name}: {row.status} -> {new}{why}")
    return result
