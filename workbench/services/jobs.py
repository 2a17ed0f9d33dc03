"""Launch, list, show, cancel, retry and clone fine-tuning jobs: where a dataset version, the target catalogue,
the exported file and a backend meet.

A launch is planned first (`plan_launch`, no side effects: what will be frozen, validated, uploaded and
sent, and what it will cost), then carried out (`launch`): the dataset is frozen into a version when a bare
name was given, the version is exported in the base model's format, that very file is validated against
the base model's rules and refused on any error, and only then is it handed to the backend. A provider's
refusal after that point is recorded on the job as `failed`, with its message, so nothing is lost.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from workbench import settings
from workbench.domain import hyperparameters as hp
from workbench.domain.access import Permission
from workbench.domain.catalogue import (
    TARGETS,
    BaseModelSpec,
    Hyperparameter,
    Provider,
    TargetSpec,
    get_target,
)
from workbench.domain.catalogue.training import LORA_HYPERPARAMETERS, SAGEMAKER_HYPERPARAMETERS
from workbench.domain.example import Split
from workbench.domain.jobs import BackendName, JobEvent, JobState, LaunchRequest, MetricPoint
from workbench.domain.pricing import CostLine, Estimate, estimate, openai_default_epochs, serving_lines
from workbench.errors import InvalidInput
from workbench.providers.base import BackendError, FineTuningBackend
from workbench.services import access
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import jobs as job_rows
from workbench.store import versions as version_rows

BackendFactory = Callable[[BackendName], FineTuningBackend]


def default_backend(name: BackendName | str) -> FineTuningBackend:
    """Build a backend from the environment (settings, boto3's chain, OPENAI_API_KEY); imported only when used."""
    name = BackendName(name)
    if name is BackendName.BEDROCK:
        from workbench.providers.bedrock import BedrockBackend

        return BedrockBackend.from_environment()
    if name is BackendName.SAGEMAKER:
        from workbench.providers.sagemaker import SageMakerBackend

        return SageMakerBackend.from_environment()
    if name is BackendName.OPENAI:
        from workbench.providers.openai_ft import OpenAIBackend

        return OpenAIBackend.from_environment()
    from workbench.providers.local import LocalBackend

    return LocalBackend.from_environment()


# --- names ------------------------------------------------------------------------------------------------

_NAME_RULES: dict[BackendName, tuple[re.Pattern[str], str]] = {
    # botocore model, CreateModelCustomizationJob.jobName: 1-63 characters.
    BackendName.BEDROCK: (re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*"), "letters, digits, '-', '+' and '.'"),
    # botocore model, CreateTrainingJob.TrainingJobName: no underscores or dots.
    BackendName.SAGEMAKER: (re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"), "letters, digits and '-' (no '_' or '.')"),
    # The name becomes the model's suffix (at most 64 characters) on OpenAI, a folder name locally.
    BackendName.OPENAI: (re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*"), "letters, digits, '-', '_' and '.'"),
    BackendName.LOCAL: (re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*"), "letters, digits, '-', '_' and '.'"),
}
MAX_NAME = 63


def check_name(name: str, backend: BackendName) -> str:
    """Refuse a job name the provider would refuse, saying which characters it takes."""
    pattern, allowed = _NAME_RULES[backend]
    if name.isdigit():
        raise InvalidInput(f"job name {name!r} is all digits, which would read as a job id; add a letter")
    if not name or len(name) > MAX_NAME or not pattern.fullmatch(name):
        raise InvalidInput(
            f"job name {name!r} does not fit {backend.value}: use 1 to {MAX_NAME} characters, {allowed}, "
            "starting with a letter or digit"
        )
    return name


def _auto_name(dataset: str, base_model: str, now: datetime) -> str:
    short = re.sub(r"[^a-zA-Z0-9]+", "-", base_model.split("/")[-1].split(":")[0]).strip("-")
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", dataset).strip("-") or "job"
    return f"{_clip(stem, 28)}-{_clip(short, 24)}-{now:%Y%m%d-%H%M%S}"


def _clip(text: str, limit: int) -> str:
    """Shorten at a '-' so no word is cut in half (a single long word is cut at the limit)."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit("-", 1)[0]
    return cut if len(cut) >= limit // 2 else text[:limit]


# --- the launch form ----------------------------------------------------------------------------------------


class LaunchForm(BaseModel):
    """What a user asks for, from the Jobs page or `workbench jobs launch`."""

    backend: BackendName
    dataset: str = Field(description="NAME, or NAME@VERSION for a frozen version; a bare name is frozen at launch.")
    base_model: str
    validation_split: str | None = Field(
        default=None, description="'validation' (or 'val') to send the validation split, 'none' to send none; "
        "None sends it when the version has one and the model uses it."
    )
    params: dict[str, str] = Field(default_factory=dict, description="Hyperparameters as typed: name -> text.")
    name: str | None = None
    budget_usd: float | None = Field(default=None, ge=0, description="Refuse the launch when the estimate is above.")
    note: str = ""


class LaunchPlan(BaseModel):
    """Everything a launch will do, worked out before anything is frozen, uploaded or paid for."""

    form: LaunchForm
    job_name: str
    target: str = Field(description="The catalogue target whose format and rules the data is checked against.")
    dataset: str
    version: str | None = Field(description="The frozen version trained on; None when the launch freezes one.")
    freeze_as: str | None = None
    train_split: str | None = Field(description="The split trained on; None = every example (never split).")
    validation_split: str | None = None
    train_records: int
    validation_records: int = 0
    hyperparameters: dict[str, Any] = Field(description="The values the user set, typed; others are the provider's.")
    effective: dict[str, Any] = Field(description="Every hyperparameter as the job will run it.")
    schema_: list[Hyperparameter] = Field(default_factory=list, alias="schema")
    advice: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    refusals: list[str] = Field(default_factory=list, description="Why the launch cannot go ahead; empty when it can.")
    findings: list[dict[str, Any]] = Field(default_factory=list, description="Validation errors and warnings.")
    estimate: Estimate
    request: dict[str, Any] = Field(default_factory=dict, description="The request the backend will send.")

    model_config = {"populate_by_name": True}

    @property
    def ok(self) -> bool:
        return not self.refusals


def parse_dataset_ref(ref: str) -> tuple[str, str | None]:
    """Split NAME@VERSION; a bare NAME has no version."""
    name, sep, version = ref.partition("@")
    if not name.strip() or (sep and not version.strip()):
        raise InvalidInput(f"dataset {ref!r}: give NAME or NAME@VERSION")
    return name.strip(), version.strip() or None


def target_for(backend: BackendName, base_model: str) -> TargetSpec:
    """The catalogue target a backend and base model train on; local and SageMaker read OpenAI chat files."""
    if backend is not BackendName.BEDROCK:
        return get_target("openai")
    for spec in TARGETS:
        if spec.provider is Provider.BEDROCK and spec.base_model(base_model):
            return spec
    prefixes = {"anthropic.claude-3-haiku": "bedrock-claude-haiku", "amazon.nova": "bedrock-nova",
                "meta.llama3-1": "bedrock-llama", "meta.llama3-2": "bedrock-llama32", "amazon.titan-text": "bedrock-titan"}
    for prefix, target in prefixes.items():
        if base_model.startswith(prefix):
            return get_target(target)
    known = ", ".join(m.id for t in TARGETS if t.provider is Provider.BEDROCK for m in t.base_models)
    raise InvalidInput(f"Bedrock cannot fine-tune {base_model!r}; base models it can: {known}")


def model_spec(backend: BackendName, target: TargetSpec, base_model: str) -> BaseModelSpec | None:
    return target.base_model(base_model) if backend in (BackendName.BEDROCK, BackendName.OPENAI) else None


def hyperparameter_schema(backend: BackendName, target: TargetSpec, base_model: str) -> tuple[Hyperparameter, ...]:
    """The form a launch draws: the base model's own schema, or the workbench LoRA script's."""
    if backend is BackendName.SAGEMAKER:
        return SAGEMAKER_HYPERPARAMETERS
    if backend is BackendName.LOCAL:
        return LORA_HYPERPARAMETERS
    spec = model_spec(backend, target, base_model)
    if spec is not None:
        return spec.hyperparameters
    # A model the catalogue does not list: take the schema its siblings share.
    return next((m.hyperparameters for m in target.base_models if m.hyperparameters), ())


def _epochs(effective: dict[str, Any], train_records: int) -> int | None:
    for key in ("epochCount", "n_epochs", "epochs"):
        if key in effective:
            value = effective[key]
            if value in (None, "auto"):
                return openai_default_epochs(train_records) if key == "n_epochs" else None
            return int(value)
    return None


def _family(backend: BackendName, target: TargetSpec, base_model: str) -> BaseModelSpec | None:
    """For a model id the catalogue does not list (an alias such as 'gpt-3.5-turbo'), the listed snapshot it names,
    so its retirement still applies; OpenAI's cut-off for new jobs applies to every OpenAI model."""
    if backend is not BackendName.OPENAI:
        return None
    snapshots = [m for m in target.base_models if m.id.startswith(base_model + "-")]
    if snapshots:
        return snapshots[0].model_copy(update={"id": base_model})
    from workbench.domain.catalogue import Lifecycle
    from workbench.domain.catalogue.openai import OPENAI_FINE_TUNING_ENDS
    from workbench.domain.catalogue.sources import OPENAI_DEPRECATIONS

    return BaseModelSpec(id=base_model, label=base_model, source=OPENAI_DEPRECATIONS,
                         lifecycle=Lifecycle(fine_tuning_ends=OPENAI_FINE_TUNING_ENDS, source=OPENAI_DEPRECATIONS))


def _advice(schema: tuple[Hyperparameter, ...], base_model: str, records: int) -> list[str]:
    out: list[str] = []
    for h in schema:
        if h.name == "learningRateWarmupSteps" and (m := re.search(r"dataset size / (\d+)", h.help)):
            raw = records / int(m.group(1))
            steps = max(0, min(int(h.max or 100), round(raw)))
            default = f"{h.default:g}" if isinstance(h.default, float | int) else str(h.default)
            out.append(f"learningRateWarmupSteps: AWS suggests records / {m.group(1)} for {base_model}: "
                       f"{records:,} / {m.group(1)} = {raw:.1f}, so {steps} (the default is {default}).")
    return out


def _lifecycle(spec: BaseModelSpec | None, today: date) -> tuple[list[str], list[str]]:
    """Refuse a model past its fine-tuning cut-off; warn within 60 days of it or of retirement."""
    if spec is None:
        return [], []
    life, refusals, warnings = spec.lifecycle, [], []
    source = f" ({life.source})" if life.source else ""
    if life.retirement and today >= life.retirement:
        refusals.append(f"{spec.id} was retired on {life.retirement:%Y-%m-%d}; choose another base model{source}")
    elif life.fine_tuning_ends and today >= life.fine_tuning_ends:
        refusals.append(f"{spec.id} stopped taking new fine-tuning jobs on {life.fine_tuning_ends:%Y-%m-%d}{source}")
    else:
        if life.fine_tuning_ends and (life.fine_tuning_ends - today).days <= 60:
            warnings.append(f"{spec.id} stops taking new fine-tuning jobs on {life.fine_tuning_ends:%Y-%m-%d} "
                            f"({(life.fine_tuning_ends - today).days} days){source}")
        if life.retirement and (life.retirement - today).days <= 60:
            warnings.append(f"{spec.id} retires on {life.retirement:%Y-%m-%d}: the fine-tuned model stops serving "
                            f"then too{source}")
    return refusals, warnings


def _splits(store: Store, dataset: str, version: str | None) -> dict[str, int]:
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        version_id = version_rows.get_version(db, dataset_id, version).id if version else None
        return version_rows.split_counts(db, dataset_id, version_id)


def _choose_splits(counts: dict[str, int], asked: str | None, uses_validation: bool) -> tuple[str | None, str | None]:
    """Train on the train split when there is one (every example otherwise); pick the validation split."""
    train = Split.TRAIN.value if counts.get(Split.TRAIN.value) else None
    wanted = (asked or "").strip().lower()
    if wanted in ("none", "no"):
        return train, None
    if wanted and wanted not in ("val", "validation"):
        raise InvalidInput(f"--validation-split {asked!r}: give 'validation' (or 'val'), or 'none'")
    has = bool(counts.get(Split.VALIDATION.value))
    if wanted and not has:
        raise InvalidInput("the dataset has no validation split; split it first (`workbench datasets split`) or "
                           "leave --validation-split out")
    if train is None and has:
        train = Split.TRAIN.value if wanted else None
    return train, (Split.VALIDATION.value if has and (wanted or uses_validation) and train else None)


def money(usd: float | None) -> str:
    """Dollars as people read them: $1,234.50, $0.0123 for cents and below, '—' when unknown."""
    if usd is None:
        return "—"
    if usd == 0:
        return "$0"
    if abs(usd) < 1:
        return f"${usd:.6f}".rstrip("0").rstrip(".") if abs(usd) < 0.01 else f"${usd:.4f}"
    return f"${usd:,.2f}"


def _errors(n: int) -> str:
    return f"{n:,} error" + ("" if n == 1 else "s")


def plan_launch(
    store: Store, form: LaunchForm, *, backend: FineTuningBackend | None = None, today: date | None = None,
    now: datetime | None = None,
) -> LaunchPlan:
    """Work out the launch: splits, validation, hyperparameters, cost and the request; change nothing."""
    from workbench.services.validating import validate_dataset

    moment = now or datetime.now(UTC)
    dataset, version = parse_dataset_ref(form.dataset)
    target = target_for(form.backend, form.base_model)
    spec = model_spec(form.backend, target, form.base_model)
    name = check_name(form.name or _auto_name(dataset, form.base_model, moment), form.backend)
    facts = target.facts(form.base_model)
    counts = _splits(store, dataset, version)
    train_split, validation_split = _choose_splits(counts, form.validation_split, facts.uses_validation_set)
    schema = hyperparameter_schema(form.backend, target, form.base_model)
    values = hp.parse(form.params, schema, model=form.base_model)
    effective = hp.effective(values, schema)

    refusals, warnings = _lifecycle(spec or _family(form.backend, target, form.base_model), today or moment.date())
    with store.connect() as db:
        if db.execute("SELECT 1 FROM jobs WHERE name = ?", [name]).fetchone():
            refusals.append(f"a job named {name!r} already exists; choose another --name")
    if spec is None and form.backend in (BackendName.BEDROCK, BackendName.OPENAI) and not any(
        "retired" in r or "stopped taking" in r for r in refusals
    ):
        warnings.append(f"{form.base_model} is not in the catalogue: limits and prices are its family's, unchecked")
    report = validate_dataset(store, dataset, target.id, split=train_split, version=version, base_model=form.base_model)
    if form.backend in (BackendName.LOCAL, BackendName.SAGEMAKER):
        report = _shape_only(report, target)
    findings = [f.to_json_dict() for f in [*report.errors, *report.warnings]]
    validation_records = 0
    if validation_split:
        vreport = validate_dataset(store, dataset, target.id, split=validation_split, version=version,
                                   base_model=form.base_model)
        findings += [{**f.to_json_dict(), "split": "validation"} for f in [*vreport.errors, *vreport.warnings]]
        validation_records = vreport.record_count
        if not vreport.ok:
            refusals.append(f"the validation split fails {target.label}'s rules with {_errors(vreport.error_count)} "
                            f"(`workbench datasets validate {dataset} --target {target.id} --split validation"
                            f"{' --version ' + version if version else ''} --base-model {form.base_model}` lists them)")
    if not report.ok:
        split_flag = f" --split {train_split}" if train_split else ""
        version_flag = f" --version {version}" if version else ""
        refusals.append(f"the training data fails {target.label}'s rules with {_errors(report.error_count)} "
                        f"(`workbench datasets validate {dataset} --target {target.id}{split_flag}{version_flag} "
                        f"--base-model {form.base_model}` lists them)")
    epochs = _epochs(effective, report.record_count)
    extra = [CostLine(label="training", usd=0.0, detail="your own hardware")] if form.backend is BackendName.LOCAL else []
    if form.backend is BackendName.BEDROCK:
        extra += serving_lines(spec)
    cost = estimate(spec, train_tokens=report.total_tokens, epochs=epochs, extra=extra)
    if form.backend is BackendName.LOCAL:
        cost.training_usd = 0.0
        cost.lines = [line for line in cost.lines if line.usd is not None]
    if form.budget_usd is not None:
        if cost.training_usd is None:
            refusals.append(f"a budget of ${form.budget_usd:g} is set but no price is known for {form.base_model}")
        elif cost.training_usd > form.budget_usd:
            refusals.append(f"the estimate {money(cost.training_usd)} is above the budget {money(form.budget_usd)}")
    plan = LaunchPlan(
        form=form, job_name=name, target=target.id, dataset=dataset, version=version,
        freeze_as=None if version else name, train_split=train_split, validation_split=validation_split,
        train_records=report.record_count, validation_records=validation_records, hyperparameters=values,
        effective=effective, schema=list(schema), advice=_advice(schema, form.base_model, report.record_count),
        warnings=warnings, refusals=refusals, findings=findings, estimate=cost,
    )
    if backend is not None:
        plan.request = backend.preview(_request(plan, Path("train.jsonl"), Path("validation.jsonl") if validation_split else None))
    return plan


def _shape_only(report: Any, target: TargetSpec) -> Any:
    """Keep what the LoRA script needs (OpenAI's chat shape) and drop OpenAI's own service limits (record counts,
    file sizes, its context window): a local or SageMaker run has none of them."""
    from workbench.domain.catalogue import RuleOrigin

    def kept(finding: Any) -> bool:
        rule = target.rule_for(finding.code, finding.severity)
        return rule is None or rule.origin is not RuleOrigin.SERVICE

    errors = [f for f in report.errors if kept(f)]
    warnings = [f for f in report.warnings if kept(f)]
    return report.model_copy(update={
        "errors": errors, "warnings": warnings, "ok": not errors,
        "error_count": sum(f.count for f in errors), "warning_count": sum(f.count for f in warnings),
    })


def _request(plan: LaunchPlan, train: Path, validation: Path | None) -> LaunchRequest:
    return LaunchRequest(
        job_name=plan.job_name, base_model=plan.form.base_model, train_file=str(train),
        validation_file=str(validation) if validation else None, hyperparameters=plan.hyperparameters,
    )


def _export(store: Store, plan: LaunchPlan, version: str, folder: Path) -> tuple[Path, Path | None]:
    from workbench.services.exporting import export_path

    fmt = get_target(plan.target).format
    train = folder / "train.jsonl"
    export_path(store, plan.dataset, fmt, train, version=version, split=plan.train_split)
    validation = None
    if plan.validation_split:
        validation = folder / "validation.jsonl"
        export_path(store, plan.dataset, fmt, validation, version=version, split=plan.validation_split)
    return train, validation


def launch(
    store: Store, form: LaunchForm, *, backends: BackendFactory = default_backend, today: date | None = None,
) -> job_rows.JobRow:
    """Freeze, export, check and submit one job; return its ledger row (failed, with the reason, if the provider refused).

    Refusals found before the upload (validation errors, budget, lifecycle, a bad name) raise InvalidInput
    with every reason, and leave no job behind.
    """
    from workbench.services.validating import validate_file_records
    from workbench.services.versions import freeze

    access.require(store, Permission.JOBS_WRITE, action="job.launch", target=f"dataset:{form.dataset}")
    # Refusals first (they need no credentials), so a user sees what is wrong with the launch before being asked
    # for a key; then the backend, whose preview is the request.
    plan = plan_launch(store, form, today=today)
    if not plan.ok:
        raise InvalidInput("launch refused: " + "; ".join(plan.refusals))
    backend = backends(form.backend)
    plan.request = backend.preview(_request(plan, Path("train.jsonl"), Path("validation.jsonl") if plan.validation_split else None))
    version = plan.version
    if version is None:
        version = freeze(store, plan.dataset, plan.freeze_as or plan.job_name, note=f"frozen for job {plan.job_name}").name
    # One folder per attempt ("_": no job name starts so, so no run folder clashes): two launches under one name
    # never share, let alone swap, the file that is checked and uploaded.
    folder = settings.runs_dir() / "_exports" / f"{plan.job_name}-{uuid.uuid4().hex[:8]}"
    train, validation = _export(store, plan, version, folder)
    # The file that goes up is the file that is checked: refuse it here if anything changed since the plan.
    for path, split in ((train, "train"), (validation, "validation")):
        if path is None:
            continue
        checked = validate_file_records(str(path), plan.target, split=split, base_model=form.base_model)
        if not checked.ok:
            raise InvalidInput(f"launch refused: the exported {split} file {path} fails {plan.target}'s rules "
                               f"with {checked.error_count:,} errors")
    with store.write() as db:
        dataset_id = dataset_rows.dataset_id(db, plan.dataset)
        job = job_rows.insert_job(
            db, name=plan.job_name, backend=form.backend.value, base_model=form.base_model, target=plan.target,
            dataset_id=dataset_id, dataset_name=plan.dataset, version=version, state=JobState.QUEUED.value,
            hyperparameters=plan.hyperparameters, train_records=plan.train_records,
            validation_records=plan.validation_records, train_tokens=plan.estimate.train_tokens,
            estimate_usd=plan.estimate.training_usd, estimate=plan.estimate.model_dump(mode="json"), note=form.note,
        )
        access.audit(db, "job.launch", f"job:{job.id}", name=plan.job_name, backend=form.backend.value,
                     catalogue_target=plan.target, base_model=form.base_model, dataset=f"{plan.dataset}@{version}",
                     estimate_usd=plan.estimate.training_usd)
    request = _request(plan, train, validation)
    try:
        submitted = backend.submit(request)
    except Exception as exc:
        # Whatever went wrong, the job is marked failed with the reason, so it can be retried, never left queued.
        known = isinstance(exc, BackendError)
        reason = str(exc) if known else f"unexpected answer from {form.backend.value} ({type(exc).__name__}: {exc})"
        with store.write() as db:
            job_rows.update_job(db, job.id, state=JobState.FAILED.value, failure_message=reason, finished_at=_now())
            job_rows.add_events(db, job.id, [_event("submit-failed", "error", f"the job was not submitted: {reason}")])
        if known:
            raise
        raise BackendError(f"job {plan.job_name!r} recorded as failed: {reason}; `workbench jobs retry "
                           f"{plan.job_name}` launches it again") from exc
    with store.write() as db:
        job_rows.update_job(
            db, job.id, provider_job_id=submitted.provider_job_id, state=submitted.state.value,
            provider_status=submitted.provider_status, request=submitted.request, files=submitted.files,
            submitted_at=_now(),
        )
        job_rows.add_events(db, job.id, [_event("submitted", "info", f"submitted to {form.backend.value} as "
                                                 f"{submitted.provider_job_id} ({submitted.provider_status})")])
        return job_rows.get_job(db, job.id)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _event(key: str, level: str, message: str) -> JobEvent:
    return JobEvent(key=f"wb-{key}", at=datetime.now(UTC), level=level, message=message)


# --- reading and managing jobs ---------------------------------------------------------------------------


class JobDetail(BaseModel):
    """A job with its metrics and latest events, as `jobs show` and the job page read it."""

    job: job_rows.JobRow
    metrics: list[MetricPoint]
    events: list[JobEvent]
    elapsed_s: float | None = None
    eta_s: float | None = None


def list_jobs(store: Store, *, states: list[JobState] | None = None, backend: str | None = None) -> list[job_rows.JobRow]:
    access.require(store, Permission.JOBS_READ, action="job.list")
    with store.connect() as db:
        return job_rows.list_jobs(db, states=states, backend=backend)


def get_job(store: Store, job: int | str) -> job_rows.JobRow:
    access.require(store, Permission.JOBS_READ, action="job.show", target=f"job:{job}")
    with store.connect() as db:
        return job_rows.get_job(db, job)


def show_job(store: Store, job: int | str, *, events: int = 200, now: datetime | None = None) -> JobDetail:
    access.require(store, Permission.JOBS_READ, action="job.show", target=f"job:{job}")
    with store.connect() as db:
        row = job_rows.get_job(db, job)
        metrics = job_rows.job_metrics(db, row.id)
        recent = job_rows.job_events(db, row.id, limit=events)
    elapsed, eta = _timing(row, now or datetime.now(UTC))
    return JobDetail(job=row, metrics=metrics, events=recent, elapsed_s=elapsed, eta_s=eta)


def _timing(row: job_rows.JobRow, now: datetime) -> tuple[float | None, float | None]:
    start = row.started_at or row.submitted_at
    if not start:
        return None, None
    end = datetime.fromisoformat(row.finished_at) if row.finished_at else now
    elapsed = max(0.0, (end - datetime.fromisoformat(start)).total_seconds())
    if row.state.final:
        return elapsed, 0.0
    if row.estimated_finish:
        return elapsed, max(0.0, (datetime.fromisoformat(row.estimated_finish) - now).total_seconds())
    if row.progress and row.progress > 0:
        return elapsed, elapsed * (1 - row.progress) / row.progress
    return elapsed, None


def cancel_job(store: Store, job: int | str, *, backends: BackendFactory = default_backend) -> job_rows.JobRow:
    """Ask the provider to stop an active job; the watcher records the outcome."""
    access.require(store, Permission.JOBS_WRITE, action="job.cancel", target=f"job:{job}")
    row = get_job(store, job)
    if row.state is JobState.QUEUED and row.provider_job_id is None and row.sweep_id is None:
        with store.write() as db:  # never reached the provider (its launch stopped part-way): nothing to ask
            job_rows.update_job(db, row.id, state=JobState.CANCELLED.value, finished_at=_now())
            job_rows.add_events(db, row.id, [_event(f"cancel-{_now()}", "info", "cancelled before it was submitted")])
            access.audit(db, "job.cancel", f"job:{row.id}", name=row.name, state=row.state.value, submitted=False)
            return job_rows.get_job(db, row.id)
    if not row.state.active:
        raise InvalidInput(f"job {row.name!r} has {_finished(row.state)}: only a queued, validating or running job can be "
                           "cancelled")
    if row.provider_job_id is None:
        raise InvalidInput(f"job {row.name!r} was never submitted; nothing to cancel")
    backends(BackendName(row.backend)).cancel(row.provider_job_id)
    with store.write() as db:
        job_rows.add_events(db, row.id, [_event(f"cancel-{_now()}", "info",
                                                f"cancel requested by {access.current().email}")])
        job_rows.update_job(db, row.id, next_poll_at=None)
        access.audit(db, "job.cancel", f"job:{row.id}", name=row.name, state=row.state.value, submitted=True)
        return job_rows.get_job(db, row.id)


def _finished(state: JobState) -> str:
    return {JobState.SUCCEEDED: "succeeded", JobState.FAILED: "failed", JobState.CANCELLED: "been cancelled"}.get(
        state, f"state {state.value}")


def _state_phrase(state: JobState) -> str:
    return "is still " + state.value if state.active else "has " + _finished(state)


def clone_form(store: Store, job: int | str) -> LaunchForm:
    """A launch form holding a job's settings (same dataset version, model, hyperparameters), to edit and launch."""
    row = get_job(store, job)
    if row.dataset_id is None or row.dataset_name is None:
        why = "was imported from the provider" if row.dataset_name is None else f"trained on {row.dataset_name!r}, which was deleted"
        raise InvalidInput(f"job {row.name!r} {why}: there is no dataset in the workbench to launch it on again")
    with store.connect() as db:
        current = db.execute("SELECT id FROM datasets WHERE name = ?", [row.dataset_name]).fetchone()
    if current is None or current[0] != row.dataset_id:
        raise InvalidInput(f"job {row.name!r} trained on a dataset named {row.dataset_name!r} that has since been "
                           "deleted (a dataset of that name now is another one): nothing to launch it on again")
    dataset = f"{row.dataset_name}@{row.version}" if row.version else str(row.dataset_name)
    return LaunchForm(
        backend=BackendName(row.backend), dataset=dataset, base_model=row.base_model,
        params={k: str(v) for k, v in row.hyperparameters.items()},
        validation_split="validation" if row.validation_records else "none",
    )


def retry_job(
    store: Store, job: int | str, *, backends: BackendFactory = default_backend, name: str | None = None,
) -> job_rows.JobRow:
    """Launch a failed or cancelled job again with the same settings, under a new name."""
    access.require(store, Permission.JOBS_WRITE, action="job.retry", target=f"job:{job}")
    row = get_job(store, job)
    if row.state not in (JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN):
        raise InvalidInput(f"job {row.name!r} {_state_phrase(row.state)}: only a failed, cancelled or unknown job is "
                           "retried (clone it to launch a new one with the same settings)")
    form = clone_form(store, row.id).model_copy(update={"name": name or _retry_name(store, row.name)})
    new = launch(store, form, backends=backends)
    with store.write() as db:
        job_rows.update_job(db, new.id, retry_of=row.id)
        access.audit(db, "job.retry", f"job:{row.id}", name=row.name, launched=f"job:{new.id}")
        return job_rows.get_job(db, new.id)


def _retry_name(store: Store, name: str) -> str:
    stem = re.sub(r"-retry\d+$", "", name)[: MAX_NAME - 8]
    taken = {j.name for j in list_jobs(store)}
    return next(f"{stem}-retry{i}" for i in range(1, 1000) if f"{stem}-retry{i}" not in taken)


def base_model_catalogue(backend: BackendName | None = None) -> list[dict[str, Any]]:
    """Every base model a launch can name, per provider, with its form and dates: what `jobs models` prints."""
    from workbench.domain import hyperparameters as hp_text

    out: list[dict[str, Any]] = []
    for spec in TARGETS:
        name = BackendName.BEDROCK if spec.provider is Provider.BEDROCK else BackendName.OPENAI
        if backend not in (None, name):
            continue
        for model in spec.base_models:
            life = model.lifecycle
            out.append({
                "provider": name.value, "id": model.id, "label": model.label, "target": spec.id,
                "hyperparameters": [hp_text.describe(h) for h in model.hyperparameters],
                "lifecycle": [line for line in (
                    f"new fine-tuning jobs end {life.fine_tuning_ends:%Y-%m-%d}" if life.fine_tuning_ends else "",
                    f"retires {life.retirement:%Y-%m-%d}" if life.retirement else "") if line],
                "prices": [f"${p.usd:g} per {p.unit}" + ("" if p.verified else " (unverified)") for p in model.prices],
            })
    for name, schema, note in ((BackendName.LOCAL, LORA_HYPERPARAMETERS, "a local folder or a model in the HF cache"),
                               (BackendName.SAGEMAKER, SAGEMAKER_HYPERPARAMETERS, "a Hugging Face model id")):
        if backend in (None, name):
            out.append({"provider": name.value, "id": "<" + note + ">", "label": "LoRA with the workbench's script",
                        "target": "openai", "hyperparameters": [hp_text.describe(h) for h in schema],
                        "lifecycle": [], "prices": []})
    return out
