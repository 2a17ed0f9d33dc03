"""Jobs, models and settings shaped for display: the tables and choices the Jobs, Models and Settings pages draw.

Pages stay a description of the UI; anything that loops over rows, reads the catalogue for choices or looks
at the environment lives here, free of Streamlit, so it is tested like any service.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
from pydantic import BaseModel, Field

from workbench import settings
from workbench.domain import hyperparameters as hp
from workbench.domain.catalogue import TARGETS, Hyperparameter, Provider
from workbench.domain.jobs import BackendName, JobEvent, JobState, MetricPoint
from workbench.services import compare, datasets, versions
from workbench.store import Store, default_path
from workbench.store.jobs import JobRow
from workbench.store.models import ModelRow

STATE_ICONS: dict[JobState, str] = {
    JobState.QUEUED: "○",
    JobState.VALIDATING: "◔",
    JobState.RUNNING: "●",
    JobState.SUCCEEDED: "✓",
    JobState.FAILED: "✗",
    JobState.CANCELLED: "■",
    JobState.UNKNOWN: "?",
}
"""One mark per state, so a table column tells the closed set of states apart at a glance (plain symbols that
every font has, not emoji, which some browsers and systems draw as empty boxes)."""

FREE_TEXT_MODELS: dict[BackendName, str] = {
    BackendName.LOCAL: "A folder holding a Hugging Face model, or an id already in the local Hugging Face cache.",
    BackendName.SAGEMAKER: "A Hugging Face model id, e.g. Qwen/Qwen2.5-0.5B-Instruct: the training job downloads it.",
}
"""Backends whose base model is typed, not picked from the catalogue."""


def state_label(state: JobState) -> str:
    """Name a state with its mark, e.g. '✓ succeeded'."""
    return f"{STATE_ICONS[state]} {state.value}"


def dataset_ref(name: str | None, version: str | None) -> str:
    return f"{name or '?'}@{version}" if version else (name or "?")


def money(usd: float | None) -> str:
    return "n/a" if usd is None else f"${usd:,.2f}"


def duration(seconds: float | None) -> str:
    """Say a duration the way people read it: 45s, 12m 5s, 3h 20m."""
    if seconds is None:
        return "n/a"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    return f"{s // 3600}h {s % 3600 // 60}m"


# --- jobs ---------------------------------------------------------------------------------------------------


def jobs_frame(rows: list[JobRow]) -> pd.DataFrame:
    """One row per job, newest first, with the columns the Jobs list shows."""
    return pd.DataFrame(
        [
            {
                "id": r.id, "state": state_label(r.state), "backend": r.backend, "name": r.name,
                "base model": r.base_model, "dataset": dataset_ref(r.dataset_name, r.version),
                "created": r.created_at[:16].replace("T", " "), "estimate": money(r.estimate_usd),
            }
            for r in rows
        ],
        columns=["id", "state", "backend", "name", "base model", "dataset", "created", "estimate"],
    )


def job_label(row: JobRow) -> str:
    return f"#{row.id} {row.name} ({row.state.value})"


def metrics_frame(points: list[MetricPoint]) -> pd.DataFrame:
    return pd.DataFrame([p.model_dump() for p in points], columns=["step", "epoch", "train_loss", "val_loss"])


def loss_series(points: list[MetricPoint]) -> dict[str, tuple[list[int], list[float]]]:
    """Return each loss curve that has points: {'train': (steps, losses), 'validation': (...)}."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for label, attr in (("train", "train_loss"), ("validation", "val_loss")):
        pairs = [(p.step, getattr(p, attr)) for p in points if getattr(p, attr) is not None]
        if pairs:
            out[label] = ([s for s, _ in pairs], [v for _, v in pairs])
    return out


def events_frame(events: list[JobEvent]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"at": e.at.isoformat(timespec="seconds"), "level": e.level, "message": e.message} for e in events],
        columns=["at", "level", "message"],
    )


def comparison_frame(result: compare.JobComparison) -> pd.DataFrame:
    """One row per compared job: the best marked, final losses, and each hyperparameter that differs."""
    records = []
    for i, row in enumerate(result.rows):
        record: dict[str, Any] = {
            "best": "★" if row.name == result.best else "", "job": row.name, "state": row.state,
            "final train loss": row.final_train_loss, "best val loss": row.best_val_loss,
        }
        record |= {key: _cell(values[i]) for key, values in result.differing.items()}
        records.append(record)
    return pd.DataFrame(records)


def _cell(value: Any) -> str:
    return "provider default" if value is None else str(value)


# --- the launch form ------------------------------------------------------------------------------------------


def base_model_choices(backend: BackendName) -> list[str]:
    """The catalogue's base models a backend fine-tunes; empty where the model is typed (local, SageMaker)."""
    provider = {BackendName.OPENAI: Provider.OPENAI, BackendName.BEDROCK: Provider.BEDROCK}.get(backend)
    if provider is None:
        return []
    return [m.id for t in TARGETS if t.provider is provider for m in t.base_models]


def base_model_label(model_id: str) -> str:
    spec = next((m for t in TARGETS for m in t.base_models if m.id == model_id), None)
    return f"{spec.label} ({model_id})" if spec else model_id


def dataset_names(store: Store) -> list[str]:
    return [d.name for d in datasets.list_datasets(store)]


def version_names(store: Store, dataset: str) -> list[str]:
    return [v.name for v in versions.list_versions(store, dataset)]


def hyperparameter_help(spec: Hyperparameter) -> str:
    """The help a form field shows: what the provider says, the range and default, and where it comes from."""
    return " ".join(part for part in (spec.help, hp.describe(spec) + ".", f"Source: {spec.source}") if part)


# --- models -----------------------------------------------------------------------------------------------------


def models_frame(rows: list[ModelRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": m.id, "name": m.name, "model id": m.model_id, "base model": m.base_model,
                "dataset": dataset_ref(m.dataset_name, m.version), "backend": m.backend,
                **{k: m.metrics.get(k) for k in ("final_train_loss", "final_val_loss", "best_val_loss")},
                "cost": money(m.cost_usd), "active for": m.task if m.active else "",
            }
            for m in rows
        ],
        columns=["id", "name", "model id", "base model", "dataset", "backend", "final_train_loss", "final_val_loss",
                 "best_val_loss", "cost", "active for"],
    )


def side_by_side(names: list[str], values: dict[str, list[Any]]) -> pd.DataFrame:
    """A table with one row per key and one column per model, for comparing two models."""
    frame = pd.DataFrame({name: [_cell(v[i]) for v in values.values()] for i, name in enumerate(names)},
                         index=list(values))
    return frame


# --- settings ---------------------------------------------------------------------------------------------------


class SettingStatus(BaseModel):
    """One setting as the Settings page shows it: never a secret's value."""

    name: str
    purpose: str
    status: str = Field(description="'set', 'missing', 'invalid' or 'default'.")
    shown: str = Field(default="", description="What may be shown of the value: the value, a masked form, or nothing.")
    error: str | None = None


def _check(name: str, purpose: str, read: Any) -> SettingStatus:
    raw = os.environ.get(name, "").strip()
    try:
        value = read()
    except settings.SettingError as exc:
        return SettingStatus(name=name, purpose=purpose, status="invalid", shown=raw, error=str(exc))
    if not raw:
        default = "" if value is None else f"default: {value}"
        return SettingStatus(name=name, purpose=purpose, status="default" if default else "missing", shown=default)
    return SettingStatus(name=name, purpose=purpose, status="set", shown=str(value))


def _url_without_userinfo(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.username or parts.password:
        host = parts.hostname or ""
        return urlunsplit((parts.scheme, f"***@{host}" + (f":{parts.port}" if parts.port else ""), parts.path,
                           parts.query, parts.fragment))
    return raw


def mask(secret: str) -> str:
    """Show only a secret's last four characters, the way the AWS console shows an access key."""
    return "****" + secret[-4:] if len(secret) > 8 else "****"


def workbench_settings() -> list[SettingStatus]:
    """The workbench's own settings and the OpenAI SDK's, each with what it is for."""
    base_url = os.environ.get("OPENAI_BASE_URL", "").strip()
    return [
        _check(settings.S3_URI, "Bucket and prefix Bedrock and SageMaker jobs upload training data to and write "
               "outputs under (s3://bucket/prefix).", settings.s3_uri),
        _check(settings.BEDROCK_ROLE_ARN, "IAM role Bedrock assumes to read the training data and write outputs.",
               settings.bedrock_role_arn),
        _check(settings.SAGEMAKER_ROLE_ARN, "IAM role SageMaker training jobs run as.", settings.sagemaker_role_arn),
        _check(settings.RUNS_DIR, "Where local runs keep adapters, checkpoints and logs, and launches keep the "
               "exported files they upload.", settings.runs_dir),
        _check("WORKBENCH_DB", "The SQLite file holding datasets, jobs and models.",
               lambda: str(default_path())),
        SettingStatus(name="OPENAI_API_KEY", purpose="API key the openai SDK sends for OpenAI fine-tuning jobs.",
                      status="set" if os.environ.get("OPENAI_API_KEY", "").strip() else "missing"),
        SettingStatus(name="OPENAI_BASE_URL", purpose="Another endpoint for the openai SDK (a proxy or compatible "
                      "server); unset means api.openai.com.", status="set" if base_url else "default",
                      shown=_url_without_userinfo(base_url) if base_url else "default: https://api.openai.com/v1"),
    ]


def aws_settings() -> list[SettingStatus]:
    """Region, profile and credentials as boto3 resolves them, without probing instance or container metadata.

    The page must not wait on the network: the EC2 instance-metadata and container credential providers make
    HTTP calls with timeouts, so they are left out here (a job launched on such a machine still uses them).
    """
    import botocore.session
    from botocore.exceptions import BotoCoreError

    profile = os.environ.get("AWS_PROFILE", "").strip()
    try:
        region, creds = _resolve(botocore.session.Session())
    except BotoCoreError as exc:  # a missing profile or a broken file: shown to the user, not raised on the page
        return [_aws_profile(profile, str(exc)),
                SettingStatus(name="AWS credentials", purpose=_CREDS_PURPOSE, status="invalid", error=str(exc))]
    found = SettingStatus(name="AWS credentials", purpose=_CREDS_PURPOSE, status="missing")
    if creds is not None:
        found = SettingStatus(name="AWS credentials", purpose=_CREDS_PURPOSE, status="set",
                              shown=f"access key {mask(creds.access_key)} from {creds.method}")
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "").strip()
    extra = [SettingStatus(name="AWS_ENDPOINT_URL", purpose="Send AWS calls to another endpoint (a local test "
                           "server); unset means AWS itself.", status="set", shown=_url_without_userinfo(endpoint))] \
        if endpoint else []
    return [_aws_region(region), _aws_profile(profile), found, *extra]


def _resolve(session: Any) -> tuple[str | None, Any]:
    """Read the region and credentials from a botocore session, skipping the providers that call the network."""
    resolver = session.get_component("credential_provider")
    for name in ("container-role", "iam-role"):
        if resolver.get_provider(name) is not None:
            resolver.remove(name)
    return session.get_config_variable("region"), session.get_credentials()


_CREDS_PURPOSE = ("Credentials boto3 signs Bedrock, S3 and SageMaker calls with (environment, shared files, SSO); "
                  "instance and container roles are not probed here.")


def _aws_region(region: str | None) -> SettingStatus:
    return SettingStatus(name="AWS region", purpose="Region Bedrock and SageMaker jobs run in (AWS_REGION, "
                         "AWS_DEFAULT_REGION or the profile's region).", status="set" if region else "missing",
                         shown=region or "")


def _aws_profile(profile: str, error: str | None = None) -> SettingStatus:
    return SettingStatus(name="AWS_PROFILE", purpose="Named profile in ~/.aws/config boto3 reads; unset means "
                         "the default profile.", status="invalid" if error else "set" if profile else "default",
                         shown=profile or "default")


def deployments_frame(rows: list[Any], models: dict[int, ModelRow]) -> pd.DataFrame:
    """One row per deployment (`store.deployments.DeploymentRow`), naming the model it serves and its hourly cost."""
    return pd.DataFrame(
        [
            {
                "id": d.id, "name": d.name, "model": models[d.model_id].name if d.model_id in models else d.model_id,
                "kind": d.kind, "status": d.status, "units": d.units, "commitment": d.commitment or "",
                "per hour": money(d.hourly_usd), "created": d.created_at[:16].replace("T", " "),
                "failure": d.failure_message or "",
            }
            for d in rows
        ],
        columns=["id", "name", "model", "kind", "status", "units", "commitment", "per hour", "created", "failure"],
    )
