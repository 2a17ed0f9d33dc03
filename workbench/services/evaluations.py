"""Evaluate a model: one model over a dataset version's test split, kept as a run, and two such runs compared.

An evaluation is a comparison run of one variant (kind "evaluate"), so it shares the matrix runner's
cache, retries, concurrency and storage; what this module adds is knowing what to call for a model
on the Models page, what to evaluate it on by default (the dataset version it was trained on, its
test split), and the paired comparison of a fine-tuned model against its base on the same inputs.

What a registered model is called through:
- openai: the fine-tuned model id (`ft:...`) on the OpenAI client;
- bedrock: a custom model cannot be called by its own ARN; it is called through a deployment, so the
  ARN of its active deployment (Provisioned Throughput or on-demand) goes to Bedrock Converse;
- local: the adapter folder the local trainer wrote, on the local client;
- sagemaker: nothing yet (the adapter lies in S3; download it and evaluate it as `local:FOLDER`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path

from pydantic import BaseModel, Field

from workbench.domain import assertions as checks
from workbench.domain import pricing
from workbench.domain import templates as tpl
from workbench.domain.access import Permission
from workbench.domain.comparison import CLIENTS, RetryPolicy, VariantSpec
from workbench.domain.eval_stats import LISTED_EXAMPLES, PairedComparison, compare_paired
from workbench.domain.progress import Progress
from workbench.errors import InvalidInput, NotFound, WorkbenchError
from workbench.services import access, comparisons, exporting, templates
from workbench.services.comparisons import Clients, RunReport
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import deployments as deployment_rows
from workbench.store import models as model_rows
from workbench.store import versions as version_rows
from workbench.store.comparisons import CellRow, RunRow
from workbench.store.models import MAX_ROW_ID, ModelRow

KIND = "evaluate"
DEFAULT_SPLIT = "test"
REGISTERED = "model:"
"""How a run names a registered model it evaluated: `model:3` (the Models page's id)."""
_CONTEXT_SUFFIX = re.compile(r":\d+k$")
_VAR_HINT = re.compile(r"pass it with --var (\w+)=\.\.\. or render on a dataset example that has it")
"""The template renderer's hint for a missing variable, written for `templates render`; an evaluation has no --var."""
"""Bedrock customization ids end in a context length (`amazon.nova-micro-v1:0:128k`); Converse takes the id without it."""


class Target(BaseModel):
    """What an evaluation calls: a client and a model string, and how the run names what was evaluated."""

    ref: str = Field(description="`model:ID` for a registered model, else `CLIENT:MODEL`: what runs are filed under.")
    client: str
    model: str = Field(description="What the client is asked for: a model id, a deployment ARN, an adapter folder.")
    label: str = Field(description="How a person reads it: the model's name, or CLIENT:MODEL.")
    registered: ModelRow | None = None


class Evaluation(BaseModel):
    """One kept evaluation, summed up for a list."""

    run_id: int
    model_ref: str | None
    label: str = Field(description="The run's single variant: template@version=client:model.")
    dataset: str | None
    version: str | None
    split: str | None
    state: str
    created_at: str
    cells: int
    passed: int
    failed: int
    errors: int
    pass_rate: float | None
    mean_score: float | None
    cost_usd: float


class ExamplePair(BaseModel):
    """One input as both runs answered it, for the best, worst and changed lists."""

    example_id: int | str
    input: str
    reference: str | None
    base_output: str | None
    candidate_output: str | None
    base_error: str | None = None
    candidate_error: str | None = None
    base_passed: bool | None
    candidate_passed: bool | None
    base_score: float | None
    candidate_score: float | None


class EvaluationComparison(BaseModel):
    """A candidate run (a fine-tuned model, say) against a base run on the same inputs."""

    base: Evaluation
    candidate: Evaluation
    paired: PairedComparison
    best: list[ExamplePair] = Field(description="Inputs where the candidate gained most score, best first.")
    worst: list[ExamplePair] = Field(description="Inputs where the candidate lost most score, worst first.")
    changed: list[ExamplePair] = Field(description="Pass/fail differs between the two.")


# ----------------------------------------------------------------------------------------- what to call


def resolve_model(store: Store, model: str | int) -> Target:
    """Work out the client and model string that answer for `model`: a registered model, or a plain CLIENT:MODEL."""
    text = str(model).strip()
    plain = _plain_target(text)
    if plain is not None:
        return plain
    row = _registered(store, text)
    ref = f"{REGISTERED}{row.id}"
    label = f"#{row.id} {row.name}"
    if row.backend == "openai":
        return Target(ref=ref, client="openai", model=row.model_id, label=label, registered=row)
    if row.backend == "local":
        _check_folder(row.model_id, f"model {row.id} {row.name!r}: its adapter folder")
        return Target(ref=ref, client="local", model=row.model_id, label=label, registered=row)
    if row.backend == "bedrock":
        return Target(ref=ref, client="bedrock", model=_deployment_arn(store, row), label=label, registered=row)
    if row.backend == "sagemaker":
        raise InvalidInput(
            f"model {row.id} {row.name!r} was trained on SageMaker, and there is no inference client for SageMaker "
            "models yet: download its adapter from the job's S3 output and evaluate it as local:FOLDER"
        )
    raise InvalidInput(f"model {row.id} {row.name!r}: no inference client for its backend {row.backend!r}")


def base_of(store: Store, model: str | int) -> str | None:
    """Return a registered model's base model as CLIENT:MODEL (to evaluate it against), or None for a plain one."""
    text = str(model).strip()
    if _plain_target(text) is not None:
        return None
    row = _registered(store, text)
    if row.backend == "openai":
        return f"openai:{row.base_model}"
    if row.backend == "bedrock":
        return f"bedrock:{_CONTEXT_SUFFIX.sub('', row.base_model)}"
    return f"local:{row.base_model}"  # local and SageMaker jobs start from a Hugging Face model


def model_ref(store: Store, model: str | int) -> str:
    """Return how runs file `model`, without needing it to be callable (a model without a deployment has runs too)."""
    text = str(model).strip()
    if text.startswith(REGISTERED) or _plain_target(text) is not None:
        return text
    return f"{REGISTERED}{_registered(store, text).id}"


def _plain_target(text: str) -> Target | None:
    client, colon, rest = text.partition(":")
    if not colon or client not in CLIENTS:
        return None
    if not rest.strip():
        raise InvalidInput(f"model {text!r}: write it as CLIENT:MODEL, e.g. openai:gpt-4o-mini")
    if client == "local" and rest.strip().startswith(("/", "./", "../", "~")):
        _check_folder(rest.strip(), f"model {text!r}: the folder")
    return Target(ref=text, client=client, model=rest.strip(), label=text)


def _check_folder(folder: str, what: str) -> None:
    """A local model whose folder is gone would fail every input with the same error: say so before anything runs."""
    if not Path(folder).expanduser().is_dir():
        raise InvalidInput(f"{what} {folder} does not exist (moved or deleted?), so every input would fail: "
                           "evaluate another model, or put the folder back")


def _registered(store: Store, text: str) -> ModelRow:
    key = text.removeprefix(REGISTERED)
    if not key:
        raise InvalidInput("name the model to evaluate: a Models-page id or name, or CLIENT:MODEL for a base model")
    with store.connect() as db:
        try:
            return model_rows.get_model(db, key)
        except NotFound:
            raise NotFound(
                f"no model {text!r}: give a Models-page id or name (`workbench models list`), "
                f"or CLIENT:MODEL for a base model with CLIENT one of {', '.join(CLIENTS)}"
            ) from None


def _deployment_arn(store: Store, row: ModelRow) -> str:
    """The ARN Converse is called with for a Bedrock custom model: that of its active deployment."""
    with store.connect() as db:
        live = deployment_rows.list_all(db, model_id=row.id)
    active = [d for d in live if d.status == "active" and d.provider_id]
    if active:
        return str(active[0].provider_id)
    kind = "on-demand" if pricing.on_demand_allowed(row.base_model) else "provisioned"
    waiting = [d for d in live if d.status in ("requested", "creating", "updating")]
    if waiting:
        raise InvalidInput(
            f"model {row.id} {row.name!r}: its deployment {waiting[0].name!r} is {waiting[0].status}, not active yet; "
            "wait until `workbench models deployments --refresh` shows it active"
        )
    raise InvalidInput(
        f"model {row.id} {row.name!r} is a Bedrock custom model, which is called through a deployment, and it has no "
        f"active one: deploy it first with `workbench models deploy {row.id} --kind {kind}`"
    )


# ----------------------------------------------------------------------------------------- running


def evaluate(
    store: Store,
    model: str | int,
    *,
    template: str,
    dataset: str | None = None,
    version: str | None = None,
    split: str | None = DEFAULT_SPLIT,
    limit: int | None = None,
    assertions: Sequence[str] = (),
    judge: str | None = None,
    concurrency: int = 4,
    name: str = "",
    clients: Clients | None = None,
    retry: RetryPolicy | None = None,
    timeout_s: float = 60.0,
    progress: Progress | None = None,
    read_file: Callable[[str], str] | None = None,
) -> RunReport:
    """Run `model` over a dataset split with a template version; the run is filed under the model.

    Without `dataset`, a registered model is evaluated on the dataset version it was trained on;
    `split` None takes every example.
    """
    access.require(store, Permission.MODELS_WRITE, action="evaluation.start", target=f"model:{model}")
    target = resolve_model(store, model)
    dataset, version = _where(target, dataset, version)
    _check_inputs(store, dataset, version, split)
    _check_renders(store, template, dataset, version, split)
    return comparisons.run_comparison(
        store, [VariantSpec(template_ref=template, client=target.client, model=target.model)], dataset=dataset,
        split=split, version=version, limit=limit, assertions=assertions, judge=judge, concurrency=concurrency,
        name=name or target.label, kind=KIND, model_ref=target.ref, min_variants=1, timeout_s=timeout_s,
        clients=clients, retry=retry, progress=progress, read_file=read_file,
    )


def default_dataset(store: Store, model: str | int) -> tuple[str | None, str | None]:
    """Return the dataset and version a model is evaluated on by default: those it was trained on, if known."""
    text = str(model).strip()
    if _plain_target(text) is not None:
        return None, None
    row = _registered(store, text)
    return row.dataset_name, row.version


def _where(target: Target, dataset: str | None, version: str | None) -> tuple[str, str | None]:
    if dataset:
        return dataset, version
    row = target.registered
    if row is None:
        raise InvalidInput(f"{target.label} is a base model with no training dataset: name the dataset to evaluate it on "
                           "(--dataset NAME)")
    if not row.dataset_name:
        raise InvalidInput(f"model {target.label!r} does not record the dataset it was trained on: name one (--dataset NAME)")
    return row.dataset_name, version or row.version


def split_counts(store: Store, dataset: str, version: str | None = None) -> dict[str, int]:
    """Count a dataset's (or a frozen version's) examples per split, to say what an evaluation would run on."""
    with store.connect() as db:
        dataset_id = dataset_rows.dataset_id(db, dataset)
        version_id = version_rows.get_version(db, dataset_id, version).id if version else None
        return version_rows.split_counts(db, dataset_id, version_id)


def _check_inputs(store: Store, dataset: str, version: str | None, split: str | None) -> None:
    """Refuse an empty split before a run is stored, saying what the dataset does hold."""
    first = list(islice(exporting.source_examples(store, dataset, version=version, split=split), 1))
    if first:
        return
    where = f"dataset {dataset!r}" + (f" version {version!r}" if version else "")
    if not split:
        raise InvalidInput(f"{where} has no examples to evaluate on")
    held = ", ".join(f"{name} {n}" for name, n in sorted(split_counts(store, dataset, version).items())) or "nothing"
    fix = (f"freeze a version that holds a {split} split" if version else
           f"split it first (`workbench datasets split {dataset}`)")
    raise InvalidInput(f"the {split} split of {where} is empty (it holds: {held}): {fix}, or choose another --split")


def _check_renders(store: Store, template: str, dataset: str, version: str | None, split: str | None) -> None:
    """Render the first input before a run is stored: a template that uses a variable the dataset's examples do
    not give would fail every input, and the renderer's own hint (`--var`) is for `templates render`, not here."""
    chosen = templates.resolve(store, template)
    examples = exporting.source_examples(store, dataset, version=version, split=split)
    try:
        variables = tpl.example_variables(next(examples))
    finally:
        examples.close()  # let go of the read connection now
    try:
        tpl.render_messages(chosen, variables)
    except InvalidInput as exc:
        missing = _VAR_HINT.search(str(exc))
        if missing is None:
            raise
        given = ", ".join(sorted(variables))
        raise InvalidInput(
            f"{chosen.ref} uses the variable {missing.group(1)!r}, which the examples of dataset {dataset!r} do not give "
            f"(they give: {given}): choose a template written for this dataset, or add {missing.group(1)!r} to the "
            "examples' metadata"
        ) from None


def explain_error(error: str) -> str:
    """Reword a stored cell error for an evaluation: a missing variable cannot be passed with --var here."""
    return _VAR_HINT.sub(lambda m: f"the dataset's examples do not give it: use a template written for this dataset, "
                                   f"or add {m.group(1)!r} to the examples' metadata", error)


def failed_everywhere(evaluation: Evaluation) -> bool:
    """Every input ended in an error (a 500, a template that cannot render): the run measured nothing."""
    return evaluation.cells > 0 and evaluation.errors == evaluation.cells


def first_error(store: Store, run_id: int) -> str | None:
    """The first input's error, in input order, worded for an evaluation; None when no input failed."""
    cells = sorted(comparisons.run_cells(store, run_id), key=lambda c: c.row)
    return next((explain_error(c.error) for c in cells if c.error is not None), None)


def all_failed_message(store: Store, evaluation: Evaluation) -> str:
    """What to say when a run measured nothing: which run it is, how many inputs failed, and the first error."""
    return (f"run {evaluation.run_id} ({evaluation.label}) measured nothing: all {evaluation.errors} inputs failed with an "
            f"error; the first: {first_error(store, evaluation.run_id)}. The run is kept; fix the cause and run it again")


# ----------------------------------------------------------------------------------------- reading


def list_evaluations(store: Store, model: str | int | None = None, *, limit: int = 50) -> list[Evaluation]:
    """Return kept evaluations newest first, of one model when given."""
    access.require(store, Permission.MODELS_READ, action="evaluation.list")
    ref = model_ref(store, model) if model is not None and str(model).strip() else None
    return [_summary(store, run) for run in comparisons.list_runs(store, kind=KIND, model_ref=ref, limit=limit)]


def get_evaluation(store: Store, run_id: int) -> Evaluation:
    access.require(store, Permission.MODELS_READ, action="evaluation.show", target=f"run:{run_id}")
    return _summary(store, _run(store, run_id))


def _run(store: Store, run_id: int) -> RunRow:
    missing = NotFound(f"no evaluation run {run_id}; `workbench evaluate list` shows the kept ones")
    if not 0 <= run_id < MAX_ROW_ID:  # SQLite ids are signed 64-bit; binding a larger int overflows
        raise missing
    try:
        run = comparisons.get_run(store, run_id)
    except NotFound:
        raise missing from None
    if run.kind != KIND or len(run.variants) != 1:
        raise InvalidInput(f"run {run_id} is a comparison of {len(run.variants)} variants, not an evaluation of one model; "
                           f"`workbench compare show {run_id}` shows it, `workbench evaluate list` the evaluations")
    return run


def suggest_pair(store: Store, found: Sequence[Evaluation]) -> tuple[int, int] | None:
    """Pick (base run, candidate run) to compare first, only among pairs that can be paired (same dataset, version,
    split, assertions and examples): the newest fine-tuned evaluation against the newest base-model one; failing
    that, the newest pairable two. None when no two can be paired. `found` is newest first, as listed."""
    checked: dict[tuple[int, int], bool] = {}

    def pairable(base: Evaluation, candidate: Evaluation) -> bool:
        if base.run_id == candidate.run_id or (base.dataset, base.version, base.split, base.cells) != (
                candidate.dataset, candidate.version, candidate.split, candidate.cells):
            return False
        key = (base.run_id, candidate.run_id)
        if key not in checked:
            checked[key] = pairing_problem(store, base.run_id, candidate.run_id) is None
        return checked[key]

    def tuned(e: Evaluation) -> bool:
        return (e.model_ref or "").startswith(REGISTERED)

    for candidate in (e for e in found if tuned(e)):
        for base in (e for e in found if e.model_ref and not tuned(e)):
            if pairable(base, candidate):
                return base.run_id, candidate.run_id
    for newer_at, candidate in enumerate(found):
        for base in found[newer_at + 1:]:
            if pairable(base, candidate):
                return base.run_id, candidate.run_id
    return None


def pairing_problem(store: Store, base_run: int, candidate_run: int) -> str | None:
    """Why two evaluations cannot be paired, or None when they can."""
    try:
        base, candidate = _run(store, base_run), _run(store, candidate_run)
        if base.id == candidate.id:
            return f"base and candidate are the same run {base.id}"
        _check_comparable(base, candidate)
        _check_same_inputs(base, comparisons.run_cells(store, base.id), candidate, comparisons.run_cells(store, candidate.id))
    except (InvalidInput, NotFound) as exc:
        return str(exc)
    return None


def suggest_template(store: Store, refs: Sequence[str], model: str | int | None, dataset: str | None) -> str | None:
    """The template version to offer first: the newest version of a template whose task type is the model's task,
    else of the one whose name and task type share most words with the dataset's name; else the first of `refs`."""
    if not refs:
        return None
    text = str(model or "").strip()
    try:
        task = _registered(store, text).task if text and _plain_target(text) is None else None
    except WorkbenchError:
        task = None
    words = set(re.split(r"[^a-z0-9]+", (dataset or "").lower())) - {"", "demo"}

    def fit(summary: templates.TemplateSummary) -> tuple[int, int]:
        own = set(re.split(r"[^a-z0-9]+", f"{summary.template.name} {summary.template.task_type}".lower())) - {""}
        return int(bool(task) and summary.template.task_type == task), len(own & words)

    ranked = [(fit(s), s.template.name) for s in templates.list_templates(store)]
    best = max(ranked, key=lambda r: r[0], default=None)
    if best is None or best[0] == (0, 0):
        return refs[0]
    return next((ref for ref in refs if ref.rsplit("@", 1)[0] == best[1]), refs[0])


def template_refs(store: Store) -> list[str]:
    """Every template version as NAME@N, newest first: what an evaluation may render its prompts with."""
    refs: list[str] = []
    for summary in templates.list_templates(store):
        refs += [f"{summary.template.name}@{n}" for n in range(summary.latest or 0, 0, -1)]
    return refs


def _summary(store: Store, run: RunRow) -> Evaluation:
    report = comparisons.report(store, run.id)
    first = report.variants[0] if report.variants else None
    return Evaluation(
        run_id=run.id, model_ref=run.model_ref, label=first.label if first else "", dataset=run.dataset_name,
        version=run.version_name, split=run.split, state=run.state, created_at=run.created_at,
        cells=first.cells if first else 0, passed=first.passed if first else 0, failed=first.failed if first else 0,
        errors=first.errors if first else 0, pass_rate=first.summary.pass_rate if first else None,
        mean_score=first.summary.mean_score if first else None, cost_usd=first.cost_usd if first else 0.0,
    )


# ----------------------------------------------------------------------------------------- comparing


def compare_evaluations(store: Store, base_run: int, candidate_run: int, *, examples: int = LISTED_EXAMPLES) -> EvaluationComparison:
    """Compare two evaluations input by input: per-assertion win rates with intervals, McNemar, and examples.

    Both must have run one model over the same inputs (dataset, version, split, and the same examples
    with the same text) under the same assertions; anything else is refused, naming the difference,
    since a win rate over different questions says nothing.
    """
    access.require(store, Permission.MODELS_READ, action="evaluation.compare", target=f"run:{base_run}")
    if examples < 1:
        raise InvalidInput(f"examples must be 1 or more, not {examples}")
    base, candidate = _run(store, base_run), _run(store, candidate_run)
    if base.id == candidate.id:
        raise InvalidInput(f"base and candidate are the same run {base.id}: pick two evaluations")
    _check_comparable(base, candidate)
    base_cells, cand_cells = comparisons.run_cells(store, base.id), comparisons.run_cells(store, candidate.id)
    _check_same_inputs(base, base_cells, candidate, cand_cells)
    paired = compare_paired(comparisons.outcomes(base_cells), comparisons.outcomes(cand_cells), listed=examples)
    base_by, cand_by = _by_example(base_cells), _by_example(cand_cells)

    def pairs(ids: Sequence[int | str]) -> list[ExamplePair]:
        return [_pair(i, base_by[i], cand_by[i]) for i in ids if i in base_by and i in cand_by]

    return EvaluationComparison(
        base=_summary(store, base), candidate=_summary(store, candidate), paired=paired,
        best=pairs(paired.best), worst=pairs(paired.worst), changed=pairs(paired.changed),
    )


def _check_comparable(base: RunRow, candidate: RunRow) -> None:
    mismatches = [
        ("dataset", base.dataset_name, candidate.dataset_name),
        ("dataset version", base.version_name or "(live examples)", candidate.version_name or "(live examples)"),
        ("split", base.split or "(all splits)", candidate.split or "(all splits)"),
        ("assertions", _assertion_text(base), _assertion_text(candidate)),
    ]
    for what, left, right in mismatches:
        if left != right:
            raise InvalidInput(f"runs {base.id} and {candidate.id} cannot be paired: different {what} ({left!r} in run {base.id}, "
                               f"{right!r} in run {candidate.id}); evaluate both on the same inputs and assertions")


def _assertion_text(run: RunRow) -> str:
    return "; ".join(checks.describe(checks.load_assertion(a)) for a in run.assertions)


def _check_same_inputs(base: RunRow, base_cells: Sequence[CellRow], candidate: RunRow, cand_cells: Sequence[CellRow]) -> None:
    base_by, cand_by = _by_example(base_cells), _by_example(cand_cells)
    only_base = sorted((i for i in base_by if i not in cand_by), key=str)
    only_cand = sorted((i for i in cand_by if i not in base_by), key=str)
    if only_base or only_cand:
        def some(ids: list[int | str]) -> str:
            return ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
        parts = [f"{len(ids)} only in run {run} (examples {some(ids)})" for run, ids in ((base.id, only_base), (candidate.id, only_cand)) if ids]
        raise InvalidInput(f"runs {base.id} and {candidate.id} cannot be paired: different inputs, {' and '.join(parts)}; "
                           "evaluate both with the same --limit (and finish a stopped run) first")
    for example_id, cell in base_by.items():
        if cell.input != cand_by[example_id].input:
            raise InvalidInput(
                f"runs {base.id} and {candidate.id} cannot be paired: different inputs, example {example_id}'s text changed "
                "between them (the live dataset was edited); freeze a version and evaluate both on it (--version)"
            )


def _by_example(cells: Sequence[CellRow]) -> dict[int | str, CellRow]:
    return {c.example_id if c.example_id is not None else c.row: c for c in cells}


def _pair(example_id: int | str, base: CellRow, candidate: CellRow) -> ExamplePair:
    base_verdict = _verdict(base)
    cand_verdict = _verdict(candidate)
    return ExamplePair(
        example_id=example_id, input=base.input, reference=base.reference, base_output=base.output,
        candidate_output=candidate.output, base_error=base.error, candidate_error=candidate.error,
        base_passed=base_verdict[0], candidate_passed=cand_verdict[0], base_score=base_verdict[1], candidate_score=cand_verdict[1],
    )


def _verdict(cell: CellRow) -> tuple[bool | None, float | None]:
    """A failed call fails with score 0, as the statistics count it."""
    return (False, 0.0) if cell.error is not None else (cell.passed, cell.score)
