"""Generate training data with a teacher model: estimate, run, resume, and land the outputs for review.

A distillation runs a template with a strong model (the teacher) over a dataset's inputs, or over
seed topics: the teacher first writes inputs per topic, then answers them. The calls go through
comparison runs (`services.comparisons`, kind "distill"), so they get the completion cache,
retries, bounded concurrency and resumption for free; the distillation keeps its inputs in row
order (`store.distill`) so a resumed run asks about the same rows even after the data moved.

The outputs land as a new dataset (each input's turns plus the teacher's answer), or as reference
answers on the examples that lack one, never replacing an answer that is there. Each landed
example carries its provenance in its metadata and waits, pending, in the reviewers' queue.
Landing is idempotent, so a resumed run lands only what is new (`services.distill_landing`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from workbench.domain import distill as plan_rules
from workbench.domain import templates as tpl
from workbench.domain.access import Permission
from workbench.domain.comparison import RetryPolicy, VariantSpec, check_concurrency
from workbench.domain.example import Example, Role, Split
from workbench.domain.progress import Cancelled, Progress
from workbench.domain.tokens import count_tokens
from workbench.errors import Conflict, InvalidInput, NotFound, WorkbenchError
from workbench.services import access, comparisons, exporting, templates
from workbench.services.distill_landing import (
    FAILURES_KEPT,
    SHOWN_CHARS,
    FailedInput,
    Landing,
    Target,
    UnusableReply,
    has_answer,
    land,
)
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import distill as rows
from workbench.store.comparisons import CellRow
from workbench.store.distill import DistillRow, InputRow

__all__ = ["DistillEstimate", "DistillReport", "FailedInput", "Landing", "Mode", "Target", "UnusableReply"]

ANSWER_CHECK = "length:1.."
"""What every answer is checked for in its comparison run: that the teacher wrote something."""
DEFAULT_TIMEOUT_S = 120.0
"""A teacher writes long answers: a call may take this long before it fails (and is retried)."""
TYPICAL_SAMPLE = 500
"""Reference answers read to measure a typical output length."""


class Mode(StrEnum):
    DATASET = "dataset"
    SEEDS = "seeds"


class DistillEstimate(plan_rules.CostEstimate):
    """The cost estimate, and which inputs it counts."""

    mode: Mode
    target: Target | None = None
    inputs: int = Field(description="Inputs the teacher answers (seed mode: topics x inputs per topic, at most).")
    topics: int = 0
    answered_skipped: int = Field(0, description="Fill mode: examples skipped because they have an answer already.")
    no_user_turn: int = Field(0, description="Examples skipped because they have no user turn to answer.")


class DistillReport(Landing):
    """A distillation as it stands: what was asked, how far it got, what it cost and what landed."""

    id: int
    state: str = Field(description="running, done, stopped (resume it) or failed.")
    mode: Mode
    target: Target
    teacher: str
    template: str
    seed_template: str | None = None
    source_dataset: str | None = None
    into_dataset: str | None = None
    inputs_run_id: int | None = None
    answers_run_id: int | None = None
    topics: int = 0
    inputs: int = 0
    answered: int = Field(0, description="Inputs the teacher answered (failures not counted).")
    cost_usd: float | None = Field(0.0, description="Spent on calls by this distillation's runs; cache hits cost nothing. "
                                   "None when no answer had a price (a model the catalogue does not price).")
    cost_saved_usd: float | None = Field(0.0, description="What the calls answered from the cache would have cost; None when unpriced.")
    cache_hits: int = 0
    error: str | None = None


class _Plan(BaseModel):
    """A request checked: who answers, with what, over which inputs, landing where."""

    teacher: str
    client: str
    model: str
    template: tpl.TemplateVersion
    mode: Mode
    target: Target | None
    dataset: str | None = None
    split: str | None = None
    version: str | None = None
    limit: int | None = None
    seeds: list[str] = Field(default_factory=list)
    per_topic: int = 0
    into: str | None = None
    seed_template: str | None = None


# ----------------------------------------------------------------------------------------- entry points


def estimate(store: Store, teacher: str, template: str, *, dataset: str | None = None, split: str | None = None,
             version: str | None = None, limit: int | None = None, seeds: Sequence[str] = (), per_topic: int = 5,
             fill_references: bool = False, seed_template: str | None = None) -> DistillEstimate:
    """Count and price what a distillation would call, before any call: exact prompt tokens, output bounded by max_tokens."""
    plan = _plan(store, teacher, template, dataset=dataset, split=split, version=version, limit=limit, seeds=seeds,
                 per_topic=per_topic, into=None, fill_references=fill_references, seed_template=seed_template, running=False)
    price = tpl.price_for(plan.model)
    if plan.mode is Mode.DATASET:
        inputs, answered, no_user = _dataset_inputs(store, plan)
        stage = _answers_stage([i.variables for i in inputs], plan.template, _typical_output(store, plan))
        found = plan_rules.cost_estimate(plan.teacher, plan.model, [stage], price)
        return DistillEstimate(**found.model_dump(), mode=plan.mode, target=plan.target, inputs=len(inputs),
                               answered_skipped=answered, no_user_turn=no_user)
    seed_version = _seed_version(store, plan, create=False)
    asks = _answers_stage([v for _, v, _ in _seed_inputs(plan.seeds, plan.per_topic)], seed_version,
                          (plan.per_topic * plan_rules.TYPICAL_INPUT_TOKENS, f"{plan.per_topic} inputs x "
                           f"{plan_rules.TYPICAL_INPUT_TOKENS} tokens, a short paragraph each"), stage="inputs")
    blank = [{"input": "", "topic": topic} for topic in plan.seeds for _ in range(plan.per_topic)]
    written_high = math.ceil(seed_version.settings.max_tokens / plan.per_topic)
    answers = _answers_stage(blank, plan.template, None, extra=(plan_rules.TYPICAL_INPUT_TOKENS, written_high))
    found = plan_rules.cost_estimate(plan.teacher, plan.model, [asks, answers], price)
    return DistillEstimate(**found.model_dump(), mode=plan.mode, target=plan.target, inputs=len(blank), topics=len(plan.seeds))


def distill(store: Store, teacher: str, template: str, *, dataset: str | None = None, split: str | None = None,
            version: str | None = None, limit: int | None = None, seeds: Sequence[str] = (), per_topic: int = 5,
            into: str | None = None, fill_references: bool = False, seed_template: str | None = None, concurrency: int = 4,
            clients: comparisons.Clients | None = None, retry: RetryPolicy | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
            progress: Progress | None = None) -> DistillReport:
    """Run the teacher over the inputs and land its answers (a new dataset `into`, or `fill_references` in place).

    A run the caller stops lands what was answered and reports `stopped`; `resume` finishes it.
    """
    access.require(store, Permission.TEMPLATES_WRITE, action="distill.start",
                   target=f"dataset:{dataset}" if dataset else f"template:{template}")
    plan = _plan(store, teacher, template, dataset=dataset, split=split, version=version, limit=limit, seeds=seeds,
                 per_topic=per_topic, into=into, fill_references=fill_references, seed_template=seed_template, running=True)
    check_concurrency(concurrency)
    inputs: list[InputRow] = []
    if plan.mode is Mode.DATASET:
        inputs, _, _ = _dataset_inputs(store, plan)
        if not inputs:
            raise InvalidInput(_nothing_to_answer(plan))
    else:
        plan.seed_template = _seed_version(store, plan, create=True).ref
    assert plan.target is not None
    estimated_usd = _most_it_costs(store, plan, inputs, lambda: estimate(
        store, teacher, template, seeds=seeds, per_topic=per_topic, seed_template=seed_template))
    with store.write() as db:
        distill_id = rows.create_run(
            db, mode=plan.mode.value, target=plan.target.value, teacher=plan.teacher, template=plan.template.ref,
            template_version_id=plan.template.id, seed_template=plan.seed_template, source_dataset=plan.dataset, split=plan.split,
            version_name=plan.version, input_limit=plan.limit, seeds=plan.seeds, per_topic=plan.per_topic or None,
            into_dataset=plan.into if plan.target is Target.NEW else plan.dataset, concurrency=concurrency,
            created_by=templates.current_user(),
        )
        rows.add_inputs(db, distill_id, inputs)
        access.audit(db, "distill.start", f"distill:{distill_id}", teacher=plan.teacher, template=plan.template.ref,
                     mode=plan.mode.value, lands=plan.target.value, into=plan.into, source=plan.dataset,
                     inputs=len(inputs) if plan.mode is Mode.DATASET else len(plan.seeds) * (plan.per_topic or 1),
                     estimated_usd_max=estimated_usd)
    return _advance(store, distill_id, _Calls(clients, retry, timeout_s, progress or Progress()))


def _most_it_costs(store: Store, plan: _Plan, inputs: list[InputRow],
                   seeded: Callable[[], DistillEstimate]) -> float | None:
    """The run's upper cost bound, for the trail; None when unpriced or when it cannot be worked out."""
    try:
        if plan.mode is Mode.DATASET:
            stage = _answers_stage([i.variables for i in inputs], plan.template, _typical_output(store, plan))
            return plan_rules.cost_estimate(plan.teacher, plan.model, [stage], tpl.price_for(plan.model)).cost_high_usd
        return seeded().cost_high_usd
    except WorkbenchError:
        return None


def check_request(store: Store, teacher: str, template: str, *, dataset: str | None = None, split: str | None = None,
                  version: str | None = None, limit: int | None = None, seeds: Sequence[str] = (), per_topic: int = 5,
                  into: str | None = None, fill_references: bool = False, seed_template: str | None = None) -> None:
    """Refuse a request `distill` would refuse, naming what is wrong, without writing or calling anything (a page's Run)."""
    _plan(store, teacher, template, dataset=dataset, split=split, version=version, limit=limit, seeds=seeds, per_topic=per_topic,
          into=into, fill_references=fill_references, seed_template=seed_template, running=True)


def resume(store: Store, distill_id: int, *, clients: comparisons.Clients | None = None, retry: RetryPolicy | None = None,
           timeout_s: float = DEFAULT_TIMEOUT_S, progress: Progress | None = None) -> DistillReport:
    """Finish a distillation that was stopped or died: only the calls not made yet are made, then land what is new."""
    access.require(store, Permission.TEMPLATES_WRITE, action="distill.resume", target=f"distill:{distill_id}")
    get_run(store, distill_id)
    with store.write() as db:
        rows.set_state(db, distill_id, "running")
        access.audit(db, "distill.resume", f"distill:{distill_id}")
    return _advance(store, distill_id, _Calls(clients, retry, timeout_s, progress or Progress()))


def get_run(store: Store, distill_id: int) -> DistillRow:
    access.require(store, Permission.TEMPLATES_READ, action="distill.show", target=f"distill:{distill_id}")
    with store.connect() as db:
        run = rows.get_run(db, distill_id)
    if run is None:
        raise NotFound(f"no distillation {distill_id}; `workbench distill list` shows the recent ones")
    return run


def list_runs(store: Store, *, limit: int = 50) -> list[DistillRow]:
    access.require(store, Permission.TEMPLATES_READ, action="distill.list")
    with store.connect() as db:
        return rows.list_runs(db, limit=limit)


def report(store: Store, distill_id: int) -> DistillReport:
    """A distillation as kept: its state, the calls its runs made and saved, and what its last landing did."""
    run = get_run(store, distill_id)
    cells = [*_cells(store, run.inputs_run_id), *_cells(store, run.answers_run_id)]
    answered = [c for c in _cells(store, run.answers_run_id) if c.output is not None and c.variant == 0]
    with store.connect() as db:
        count = rows.count_inputs(db, distill_id)
    landing = Landing.model_validate(run.result) if run.result else Landing()
    priced = _priced(cells)
    return DistillReport(
        **landing.model_dump(), id=run.id, state=run.state, mode=Mode(run.mode), target=Target(run.target), teacher=run.teacher,
        template=run.template, seed_template=run.seed_template, source_dataset=run.source_dataset, into_dataset=run.into_dataset,
        inputs_run_id=run.inputs_run_id, answers_run_id=run.answers_run_id, topics=len(run.seeds), inputs=count,
        answered=len(answered), cost_usd=round(sum(c.cost_usd or 0.0 for c in cells if not c.cache_hit), 8) if priced else None,
        cost_saved_usd=round(sum(c.cost_saved_usd for c in cells), 8) if priced else None,
        cache_hits=sum(c.cache_hit for c in cells), error=run.error,
    )


def _priced(cells: Sequence[CellRow]) -> bool:
    """Say whether a cost can be told: some answer had a price, or nothing was answered (failed calls cost nothing)."""
    answered = [c for c in cells if c.output is not None]
    return not answered or any(c.price_row for c in answered)


# ----------------------------------------------------------------------------------------- planning


def _plan(store: Store, teacher: str, template: str, *, dataset: str | None, split: str | None, version: str | None,
          limit: int | None, seeds: Sequence[str], per_topic: int, into: str | None, fill_references: bool,
          seed_template: str | None, running: bool) -> _Plan:
    """Check a request whole, naming what is wrong, before anything is written or called."""
    client, model = plan_rules.parse_teacher(teacher)
    if bool(dataset) == bool(seeds):
        raise InvalidInput("give the inputs one way: a dataset (--dataset) or seed topics (--seeds), not both" if dataset else
                           "give the inputs: a dataset whose inputs the teacher answers (--dataset) or seed topics (--seeds)")
    mode = Mode.DATASET if dataset else Mode.SEEDS
    target = Target.FILL if fill_references else Target.NEW if into else None
    if fill_references and into:
        raise InvalidInput("land the answers one way: a new dataset (--into NAME) or --fill-references, not both")
    if fill_references and mode is Mode.SEEDS:
        raise InvalidInput("--fill-references answers a dataset's own examples: give --dataset, or land seed inputs --into a new dataset")
    if fill_references and version:
        raise InvalidInput(f"--fill-references writes the live dataset; version {version!r} is frozen: leave --version out")
    if running and target is None:
        raise InvalidInput("say where the answers land: --into NEW_DATASET, or --fill-references on the dataset's examples")
    if split and split not in {s.value for s in Split}:
        raise InvalidInput(f"split must be one of {', '.join(s.value for s in Split)}, not {split!r}")
    if limit is not None and not 1 <= limit <= comparisons.MAX_INPUTS:
        raise InvalidInput(f"limit must be 1 to {comparisons.MAX_INPUTS:,} inputs, not {limit}")
    if into:
        _check_new_dataset(store, into)
    topics: list[str] = []
    if mode is Mode.SEEDS:
        topics = plan_rules.check_seeds(list(seeds), per_topic)
        if len(topics) * per_topic > comparisons.MAX_INPUTS:
            raise InvalidInput(f"{len(topics)} topics x {per_topic} inputs is {len(topics) * per_topic:,} inputs; "
                               f"at most {comparisons.MAX_INPUTS:,} per run: fewer topics or fewer per topic")
    elif dataset:
        with store.connect() as db:
            dataset_rows.dataset_id(db, dataset)  # NotFound, naming the datasets there are
    return _Plan(teacher=f"{client}:{model}", client=client, model=model, template=templates.resolve(store, template), mode=mode,
                 target=target, dataset=dataset or None, split=split or None, version=version or None, limit=limit,
                 seeds=topics, per_topic=per_topic if mode is Mode.SEEDS else 0, into=into, seed_template=seed_template)


def _check_new_dataset(store: Store, name: str) -> None:
    from workbench.services.importing import check_dataset_name

    name = check_dataset_name(name)
    with store.connect() as db:
        if dataset_rows.find_dataset(db, name) is not None:
            raise Conflict(f"dataset {name!r} already exists: a distillation lands in a new dataset; pick another name "
                           "(or --fill-references to answer that dataset's examples that lack an answer)")


def _nothing_to_answer(plan: _Plan) -> str:
    where = f"split {plan.split!r} of " if plan.split else ""
    if plan.target is Target.FILL:
        return f"every example of {where}dataset {plan.dataset!r} has an answer already: there is nothing to fill"
    return f"{where}dataset {plan.dataset!r} has no examples with a user turn to answer"


def _input_part(example: Example) -> Example | None:
    """The turns the teacher answers: everything up to the last user turn; None without a user turn."""
    users = [i for i, m in enumerate(example.messages) if m.role is Role.USER]
    if not users:
        return None
    return Example(system=example.system, messages=example.messages[: users[-1] + 1], tools=example.tools,
                   parallel_tool_calls=example.parallel_tool_calls, tool_choice=example.tool_choice, metadata=example.metadata)


def _dataset_inputs(store: Store, plan: _Plan) -> tuple[list[InputRow], int, int]:
    """The inputs in dataset order (fill mode: only examples without an answer), and how many were skipped and why."""
    wanted = plan.limit or comparisons.MAX_INPUTS
    chosen: list[InputRow] = []
    answered = no_user = 0
    assert plan.dataset is not None
    for example in exporting.source_examples(store, plan.dataset, version=plan.version, split=plan.split):
        part = _input_part(example)
        if part is None:
            no_user += 1
            continue
        if plan.target is Target.FILL and has_answer(example):
            answered += 1
            continue
        if len(chosen) == wanted:
            if plan.limit is None:
                raise InvalidInput(f"dataset {plan.dataset!r} has more than {wanted:,} inputs; a run answers at most that many: "
                                   "give a limit, or a split")
            break
        chosen.append(InputRow(row=len(chosen), example_id=example.id, topic=None, variables=tpl.example_variables(example),
                               example=part.model_dump(mode="json", exclude_defaults=True)))
    return chosen, answered, no_user


def _seed_inputs(topics: Sequence[str], per_topic: int) -> list[comparisons.Input]:
    """Stage one's inputs: a topic each, with how many inputs to write for it."""
    return [(None, {"topic": topic, "count": per_topic, "input": topic}, {}) for topic in topics]


def _seed_version(store: Store, plan: _Plan, *, create: bool) -> tpl.TemplateVersion:
    """The template that asks for inputs: the one named, else the library's own, made from the built-in text on first use."""
    if plan.seed_template:
        return templates.resolve(store, plan.seed_template)
    try:
        return templates.resolve(store, plan_rules.SEED_TEMPLATE)
    except NotFound:
        if not create:  # an estimate writes nothing: it renders the text the template would be made from
            content = tpl.VersionContent(system_template=plan_rules.SEED_SYSTEM, user_template=plan_rules.SEED_USER,
                                         settings=tpl.model_settings(**plan_rules.SEED_SETTINGS))
            return tpl.TemplateVersion(**content.model_dump(), id=0, template_id=0, template=plan_rules.SEED_TEMPLATE, version=0,
                                       content_hash="", created_at="")
    return templates.create_version(
        store, plan_rules.SEED_TEMPLATE, user_template=plan_rules.SEED_USER, system_template=plan_rules.SEED_SYSTEM,
        task_type="distillation", settings=dict(plan_rules.SEED_SETTINGS), commit_message="built in: seed topics to inputs",
        description="Asks a teacher model for realistic user inputs per seed topic (distillation); edit it to change how.",
    ).version


# ----------------------------------------------------------------------------------------- estimating


def _answers_stage(variables: Sequence[dict[str, Any]], version: tpl.TemplateVersion, typical: tuple[float, str] | None, *,
                   stage: str = "answers", extra: tuple[int, int] = (0, 0)) -> plan_rules.StageEstimate:
    """Render every prompt as it will be sent and count it; an input the template cannot render costs nothing."""
    counted: list[int] = []
    failures, first = 0, None
    for given in variables:
        try:
            system, turns = tpl.render_messages(version, given)
        except WorkbenchError as exc:
            failures, first = failures + 1, first or str(exc)
            continue
        counted.append(tpl.count_prompt(system, turns).total)
    return plan_rules.stage_estimate(
        stage, counted, max_tokens=version.settings.max_tokens, typical_output=typical[0] if typical else None,
        typical_from=typical[1] if typical else "", extra_input_typical=extra[0], extra_input_high=extra[1],
        unrenderable=failures, first_error=first,
    )


def _typical_output(store: Store, plan: _Plan) -> tuple[float, str] | None:
    """The mean final answer's tokens over the first answered examples of the inputs' dataset (and split)."""
    assert plan.dataset is not None
    answers = (e.messages[-1].content for e in exporting.source_examples(store, plan.dataset, version=plan.version, split=plan.split)
               if e.messages and e.messages[-1].role is Role.ASSISTANT and e.messages[-1].content.strip())
    lengths = [count_tokens(text) for _, text in zip(range(TYPICAL_SAMPLE), answers, strict=False)]
    if not lengths:
        return None
    where = f"split {plan.split!r} of {plan.dataset!r}" if plan.split else repr(plan.dataset)
    return sum(lengths) / len(lengths), f"mean of {len(lengths)} reference answers in {where}"


# ----------------------------------------------------------------------------------------- running


class _Calls:
    """How the teacher is called: the clients, retries, timeout and progress a run was given."""

    def __init__(self, clients: comparisons.Clients | None, retry: RetryPolicy | None, timeout_s: float, progress: Progress) -> None:
        self.clients, self.retry, self.timeout_s, self.progress = clients, retry, timeout_s, progress


def _advance(store: Store, distill_id: int, calls: _Calls) -> DistillReport:
    """Take a distillation as far as it goes: write inputs (seed mode), answer them, land the answers."""
    run = get_run(store, distill_id)
    state, error, landing = "done", None, None
    try:
        with store.connect() as db:
            count = rows.count_inputs(db, distill_id)
        have_inputs = count > 0
        first = ("inputs", len(run.seeds), "topics") if run.mode == Mode.SEEDS and not have_inputs else ("answers", count, "inputs")
        calls.progress.stage(*first)  # shown at once: the stage's own count follows once its calls are prepared
        unusable: list[UnusableReply] = []
        if run.mode == Mode.SEEDS and have_inputs:
            unusable = _written_inputs(run, _cells(store, run.inputs_run_id))[1]
        elif run.mode == Mode.SEEDS:
            written = _stage(store, run, "inputs", _seed_inputs(run.seeds, run.per_topic or 1), calls)
            if written.state != "done":
                return _finish(store, distill_id, "stopped", None, None)
            new_inputs, unusable = _written_inputs(run, _cells(store, written.run_id))
            if not new_inputs:
                raise InvalidInput("the teacher wrote no usable inputs for any topic; see its replies with "
                                   f"`workbench compare show {written.run_id} --cells`")
            with store.write() as db:
                rows.add_inputs(db, distill_id, new_inputs)
        with store.connect() as db:
            inputs = rows.inputs(db, distill_id)
        answered = _stage(store, get_run(store, distill_id), "answers", [_as_input(i) for i in inputs], calls)
        state = "done" if answered.state == "done" else "stopped"
        landing = land(store, get_run(store, distill_id), inputs, _cells(store, answered.run_id), calls.progress)
        landing.unusable_count = len(unusable)
        landing.unusable_replies = unusable[:FAILURES_KEPT]
        if state == "done" and _nothing_landed(landing):
            state, error = "failed", _all_failed(run.id, landing)
    except Cancelled:
        state = "stopped"
    except KeyboardInterrupt:  # Ctrl-C in a terminal: say so in the row, then stop as asked
        _finish(store, distill_id, "stopped", None, landing)
        raise
    except WorkbenchError as exc:
        state, error = "failed", str(exc)
        _finish(store, distill_id, state, error, landing)
        raise
    except Exception as exc:
        state, error = "failed", f"{type(exc).__name__}: {exc}"
        _finish(store, distill_id, state, error, landing)
        raise
    return _finish(store, distill_id, state, error, landing)


def _nothing_landed(landing: Landing) -> bool:
    """Every answered input failed: no answer is in a dataset, now or from before."""
    return landing.failed > 0 and not (landing.landed or landing.already or landing.duplicates or landing.kept_existing)


def _all_failed(distill_id: int, landing: Landing) -> str:
    first = landing.failures[0].error if landing.failures else "no reason given"
    return (f"nothing landed: all {landing.failed:,} inputs failed; the first: {first}. Fix the cause (the client's key, "
            f"the model name), then `workbench distill resume {distill_id}` calls only what failed")


def _finish(store: Store, distill_id: int, state: str, error: str | None, landing: Landing | None) -> DistillReport:
    with store.write() as db:
        rows.set_state(db, distill_id, state, error=error, result=landing.model_dump(mode="json") if landing else None)
    return report(store, distill_id)


def _stage(store: Store, run: DistillRow, stage: str, inputs: list[comparisons.Input], calls: _Calls) -> comparisons.RunReport:
    """Call the teacher for one stage: resume the stage's comparison run when it has one, else start it."""
    run_id = run.inputs_run_id if stage == "inputs" else run.answers_run_id
    options: dict[str, Any] = {"clients": calls.clients, "retry": calls.retry, "timeout_s": calls.timeout_s, "progress": calls.progress}
    if run_id is not None:
        return comparisons.resume_run(store, run_id, inputs=inputs, retry_failed=True, **options)  # an outage is retried
    client, _, model = run.teacher.partition(":")
    ref = run.seed_template if stage == "inputs" else run.template
    assert ref is not None
    with store.connect() as db:
        source = run.source_dataset if run.source_dataset and dataset_rows.find_dataset(db, run.source_dataset) else None

    def started(comparison_id: int) -> None:
        with store.write() as db:
            rows.set_stage_run(db, run.id, stage, comparison_id)

    return comparisons.run_comparison(
        store, [VariantSpec(template_ref=ref, client=client, model=model)], dataset=source, split=run.split, version=run.version_name,
        inputs=inputs, assertions=[ANSWER_CHECK], concurrency=run.concurrency, name=f"distill #{run.id}: {stage}", kind="distill",
        model_ref=run.teacher, min_variants=1, on_start=started, **options,
    )


def _as_input(row: InputRow) -> comparisons.Input:
    return row.example_id, row.variables, dict(row.example.get("metadata") or {})


def _written_inputs(run: DistillRow, cells: Sequence[CellRow]) -> tuple[list[InputRow], list[UnusableReply]]:
    """Read the inputs the teacher wrote per topic, in topic order, without repeats; say which replies fell short."""
    by_row = {c.row: c for c in cells if c.variant == 0}
    count = run.per_topic or 1
    unusable: list[UnusableReply] = []
    found: list[list[str]] = []
    for row, topic in enumerate(run.seeds):
        cell = by_row.get(row)
        if cell is None or cell.output is None:
            unusable.append(UnusableReply(topic=topic, problem=(cell.error if cell else None) or "not answered"))
            found.append([])
            continue
        parsed = plan_rules.parse_inputs(cell.output, count)
        if parsed.problem:
            unusable.append(UnusableReply(topic=topic, problem=parsed.problem, reply=cell.output[:SHOWN_CHARS]))
        found.append(parsed.inputs)
    kept = plan_rules.dedupe_across(found)
    for topic, parsed, texts in zip(run.seeds, found, kept, strict=True):
        if len(texts) < len(parsed):
            unusable.append(UnusableReply(topic=topic, problem=f"{len(parsed) - len(texts)} of its {len(parsed)} inputs repeated "
                                          "an earlier topic's and were dropped"))
    written: list[InputRow] = []
    for row, (topic, texts) in enumerate(zip(run.seeds, kept, strict=True)):
        cell = by_row.get(row)
        share = round(cell.cost_usd / len(texts), 8) if texts and cell is not None and cell.cost_usd is not None else None
        for text in texts:
            written.append(InputRow(row=len(written), example_id=None, topic=topic, input_cost_usd=share,
                                    example={"messages": [{"role": "user", "content": text}]}, variables={"input": text, "topic": topic}))
    return written, unusable


def _cells(store: Store, run_id: int | None) -> list[CellRow]:
    if run_id is None:
        return []
    try:
        return comparisons.run_cells(store, run_id)
    except NotFound:
        return []
