"""Run a comparison: every input of a dataset through every variant, checked by assertions, kept as a run.

The matrix is rendered up front (a template that cannot render fails its cells with the message,
before any call), answered from the completion cache where the exact request was answered before,
and the rest is sent to the clients by a bounded pool of threads. Each call retries rate limits and
passing failures (`domain.comparison.RetryPolicy`); a call that still fails fails its own cell with
the provider's message, and the rest of the matrix completes. Only the calling thread writes: it
collects finished cells and writes them, with the new cache entries, a batch per transaction, so
an interrupted run keeps what it finished and `resume_run` calls only what is missing.

Costs come from the catalogue's on-demand prices (`domain.templates.price_for`) applied to the
token counts the provider reported; a cell answered from the cache records what the call would
have cost as saved, not spent.
"""

from __future__ import annotations

import csv
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from workbench.domain import assertion_forms as forms
from workbench.domain import assertions as checks
from workbench.domain import templates as tpl
from workbench.domain.access import Permission
from workbench.domain.comparison import (
    RetryPolicy,
    Variant,
    VariantSpec,
    check_concurrency,
    check_variant_count,
    parse_variant,
    variant_label,
)
from workbench.domain.eval_stats import CellOutcome, VariantSummary, summarize_variant
from workbench.domain.judge import build_judge_prompt
from workbench.domain.progress import Cancelled, Progress
from workbench.errors import InvalidInput, NotFound, WorkbenchError
from workbench.providers.inference import (
    ChatMessage,
    InferenceClient,
    InferenceError,
    InferenceRequest,
    RateLimited,
    client_for,
)
from workbench.services import access, cleaning, exporting, templates
from workbench.store import Store
from workbench.store import comparisons as rows
from workbench.store import datasets as dataset_rows
from workbench.store.comparisons import CachedAnswer, CellRow, RunRow

DEFAULT_LIMIT = 50
"""Inputs taken when no limit is given: a comparison is a sample to read, not a bulk job."""
MAX_INPUTS = 5000
WRITE_EVERY_CELLS, WRITE_EVERY_S = 500, 1.0
"""Finished cells are written in batches of this many, or this often, whichever comes first."""
JUDGE_MAX_TOKENS = 400
STOP_CHECK_S = 0.5
"""How often a run waiting on calls in flight looks whether it was asked to stop."""
CANCEL_GRACE_S = 2.0
"""How long a stopped run waits for the calls in flight, so answers already paid for are written and cached."""
Clients = Mapping[str, InferenceClient]
RUN_ACTIONS: dict[str, tuple[Permission, str, str]] = {
    "compare": (Permission.TEMPLATES_WRITE, "comparison.start", "comparison.resume"),
    "evaluate": (Permission.MODELS_WRITE, "evaluation.start", "evaluation.resume"),
    "distill": (Permission.TEMPLATES_WRITE, "distill.stage", "distill.stage"),
}
"""What starting or resuming a run of each kind needs (every run spends money), and its trail actions: start, resume.

A distillation's own start and resume are recorded by `services.distill`; the runs it makes are its stages."""


class VariantReport(BaseModel):
    """One variant's column, summed up: the figures `compare run` prints."""

    label: str
    template: str
    version: int
    client: str
    model: str
    cells: int
    passed: int
    failed: int
    errors: int
    cost_usd: float = Field(description="Spent by this run on this variant's calls; cache hits cost nothing.")
    cost_saved_usd: float = Field(description="What the cache hits would have cost.")
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cache_hits: int
    summary: VariantSummary


class RunReport(BaseModel):
    run_id: int
    state: str
    dataset: str | None
    split: str | None
    inputs: int
    assertions: list[str]
    variants: list[VariantReport]
    error: str | None = None


@dataclass
class _Job:
    """One cell to answer: where it goes, what to send, and how to check it."""

    row: int
    variant: int
    example_id: int | None
    input: str
    reference: str | None
    metadata: dict[str, Any]
    client: str
    request: InferenceRequest | None
    key: str = ""
    error: str | None = None
    cached: CachedAnswer | None = None
    judges: dict[int, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------- entry points


def run_comparison(
    store: Store,
    variants: Sequence[str | VariantSpec],
    *,
    dataset: str | None = None,
    split: str | None = None,
    version: str | None = None,
    limit: int | None = None,
    assertions: Sequence[str] = (),
    judge: str | None = None,
    concurrency: int = 4,
    name: str = "",
    kind: str = "compare",
    model_ref: str | None = None,
    min_variants: int = 2,
    timeout_s: float = 60.0,
    clients: Clients | None = None,
    retry: RetryPolicy | None = None,
    progress: Progress | None = None,
    read_file: Callable[[str], str] | None = None,
    inputs: Sequence[Input] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> RunReport:
    """Run every input of `dataset` (a split, a frozen version, the first `limit`) through every variant.

    Assertions are given in their text form (`contains:refund`, `is-json`...); with none and reference
    answers present, each output must equal its reference after trimming white space. `judge`
    (`CLIENT:MODEL`) answers the `judge:` assertions. `clients` replaces the clients built from the
    environment (tests, a caller with its own settings). `inputs` replaces the dataset's (a caller that
    chose or wrote its own, such as distillation; `dataset` then only names where they came from), and
    `on_start(run_id)` learns the run's id before any call, so a caller can find the run if it dies.
    """
    permission, started, _ = RUN_ACTIONS.get(kind, RUN_ACTIONS["compare"])
    access.require(store, permission, action=started, target=f"dataset:{dataset}" if dataset else "")
    resolved = resolve_variants(store, variants, least=min_variants)
    check_concurrency(concurrency)
    if inputs is None and not dataset:
        raise InvalidInput("a comparison needs a dataset to take its inputs from")
    inputs = list(inputs) if inputs is not None else _inputs(store, dataset or "", split=split, version=version, limit=limit)
    if not inputs:
        raise InvalidInput("there are no inputs to run")
    specs = _specs(store, assertions, has_reference=any(v.get("reference") for _, v, _ in inputs), read_file=read_file)
    judge_spec = _judge(judge, specs)
    caller = _Caller(clients, retry or RetryPolicy(), judge_spec, timeout_s)
    caller.check_configured([v.client for v in resolved])
    with store.write() as db:
        run_id = rows.create_run(
            db, kind=kind, name=name, dataset_id=dataset_rows.dataset_id(db, dataset) if dataset else None, dataset_name=dataset,
            version_name=version,
            split=split, model_ref=model_ref, variants=[v.model_dump() for v in resolved],
            assertions=[s.model_dump(mode="json") for s in specs], judge=judge, concurrency=concurrency,
            cells_total=len(inputs) * len(resolved), created_by=templates.current_user(),
        )
        access.audit(db, started, f"run:{run_id}", kind=kind, name=name, dataset=dataset,
                     variants=[v.label for v in resolved], inputs=len(inputs), cells=len(inputs) * len(resolved),
                     estimated_usd_max=estimate_usd(store, resolved, inputs))
    if on_start is not None:
        on_start(run_id)
    return _execute(store, run_id, resolved, inputs, specs, caller, concurrency, progress)


def resume_run(store: Store, run_id: int, *, clients: Clients | None = None, retry: RetryPolicy | None = None,
               timeout_s: float = 60.0, progress: Progress | None = None, inputs: Sequence[Input] | None = None,
               retry_failed: bool = False) -> RunReport:
    """Finish a run that was stopped or died: only the cells it has not written are computed.

    `inputs`: the run's own explicit inputs, in the same order, for a run started with them.
    `retry_failed`: call again the cells that ended in an error (an outage, a rate limit past its retries),
    which a plain resume counts as finished.
    """
    run = _get_run(store, run_id)  # its kind says what resuming needs: asked before anything is read for the caller
    permission, _, resumed = RUN_ACTIONS.get(run.kind, RUN_ACTIONS["compare"])
    access.require(store, permission, action=resumed, target=f"run:{run_id}")
    resolved = [Variant(**v) for v in run.variants]
    if inputs is None and run.dataset_name is None:
        raise NotFound(f"run {run_id}'s dataset was deleted; it cannot be resumed")
    if inputs is None:
        inputs = _inputs(store, run.dataset_name or "", split=run.split, version=run.version_name,
                         limit=run.cells_total // max(1, len(resolved)))
    specs = [checks.load_assertion(a) for a in run.assertions]
    caller = _Caller(clients, retry or RetryPolicy(), _judge(run.judge, specs), timeout_s)
    caller.check_configured(_clients_to_call(store, run_id, resolved, inputs, retry_failed=retry_failed))
    with store.write() as db:
        if retry_failed:
            rows.delete_failed_cells(db, run_id)
        rows.finish_run(db, run_id, "running")
        access.audit(db, resumed, f"run:{run_id}", kind=run.kind, retry_failed=retry_failed)
    return _execute(store, run_id, resolved, inputs, specs, caller, run.concurrency, progress)


def _clients_to_call(store: Store, run_id: int, resolved: Sequence[Variant], inputs: Sequence[Input], *,
                     retry_failed: bool) -> list[str]:
    """The clients a resume would call: none when every missing cell is in the cache (or none is missing)."""
    with store.connect() as db:
        done = rows.done_cells(db, run_id)
        if retry_failed:
            done -= rows.failed_cells(db, run_id)
        jobs = _jobs(store, resolved, inputs, done)
        cached = rows.cached(db, [j.key for j in jobs if j.key])
    return sorted({j.client for j in jobs if j.request is not None and j.key not in cached})


def estimate_usd(store: Store, resolved: Sequence[Variant], inputs: Sequence[Input]) -> float | None:
    """The most a run can cost, for the trail: every prompt at ~4 characters a token, every answer at max_tokens.

    None when no variant's model has a catalogue price. A bound, not a forecast: answers are usually shorter.
    """
    chars = sum(len(str(value)) for _, variables, _ in inputs for value in variables.values())
    total, priced = 0.0, False
    for variant in resolved:
        price = tpl.price_for(variant.model)
        if price is None:
            continue
        version = templates.get_version(store, variant.version_id)
        prompt_chars = len(inputs) * (len(version.system_template) + len(version.user_template)) + chars
        total += prompt_chars / 4 * price.input_per_1k / 1000
        total += len(inputs) * version.settings.max_tokens * price.output_per_1k / 1000
        priced = True
    return round(total, 4) if priced else None


def get_run(store: Store, run_id: int) -> RunRow:
    access.require(store, Permission.TEMPLATES_READ, action="comparison.show", target=f"run:{run_id}")
    return _get_run(store, run_id)


def _get_run(store: Store, run_id: int) -> RunRow:
    with store.connect() as db:
        run = rows.get_run(db, run_id)
    if run is None:
        raise NotFound(f"no comparison run {run_id}; `workbench compare list` shows the recent ones")
    return run


def list_runs(store: Store, *, kind: str | None = None, model_ref: str | None = None, limit: int = 50) -> list[RunRow]:
    access.require(store, Permission.TEMPLATES_READ, action="comparison.list")
    with store.connect() as db:
        return rows.list_runs(db, kind=kind, model_ref=model_ref, limit=limit)


def run_cells(store: Store, run_id: int) -> list[CellRow]:
    get_run(store, run_id)
    with store.connect() as db:
        return rows.cells(db, run_id)


def report(store: Store, run_id: int) -> RunReport:
    """The run's summary as kept: what `compare run` printed, from the stored cells."""
    run = get_run(store, run_id)
    return _report(run, run_cells(store, run_id))


def send_to_review(store: Store, run_id: int, *, everything: bool = False) -> list[int]:
    """Queue a run's outputs for the reviewers: the failed ones, or every answered one; return the item ids.

    Each output is queued once (source `comparison:RUN:ROW:VARIANT`), so sending a run twice adds
    nothing. Cells whose call failed have no output to judge and are never sent.
    """
    from workbench.domain.example import Message, Role
    from workbench.services import review

    access.require(store, Permission.REVIEW_MANAGE, action="review.enqueue", target=f"run:{run_id}")
    run = get_run(store, run_id)
    variants = [Variant(**v) for v in run.variants]
    tasks = {v.template: templates.template_detail(store, v.template).template.task_type for v in variants}
    kind = review.SourceKind.EVALUATION if run.kind == "evaluate" else review.SourceKind.COMPARISON
    items = [
        review.NewItem(
            source_kind=kind, source_id=f"{run_id}:{cell.row}:{cell.variant}", output=cell.output,
            messages=[Message(role=Role.USER, content=cell.input or "(no input text)")], reference=cell.reference,
            model_id=variants[cell.variant].model, template_version_id=variants[cell.variant].version_id,
            task_type=tasks[variants[cell.variant].template], dataset=run.dataset_name, example_id=cell.example_id,
        )
        for cell in run_cells(store, run_id)
        if cell.output is not None and cell.variant < len(variants) and (everything or cell.passed is False)
    ]
    return review.enqueue(store, items) if items else []


EXPORT_COLUMNS = [
    "run_id", "row", "variant", "variant_label", "example_id", "input", "reference", "output", "error", "passed", "score",
    "assertions", "input_tokens", "output_tokens", "latency_ms", "cost_usd", "cost_saved_usd", "price_row", "cache_hit", "attempts",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_run(store: Store, run_id: int, path: Path, fmt: str = "csv") -> int:
    """Write every cell of a run as CSV or JSON Lines; return how many. Written beside `path`, then renamed in.

    In CSV, a text cell that a spreadsheet would run as a formula (it starts with =, +, -, @) gets a
    leading apostrophe: model output is untrusted, and opening an export must not execute it.
    """
    if fmt not in ("csv", "jsonl"):
        raise InvalidInput(f"export format must be csv or jsonl, not {fmt!r}")
    run = get_run(store, run_id)
    labels = [v["label"] for v in run.variants]
    records = [_export_record(cell, labels) for cell in run_cells(store, run_id)]
    temp = path.with_name(f".{path.name}.partial")
    try:
        with temp.open("w", encoding="utf-8", newline="") as out:
            if fmt == "jsonl":
                for record in records:
                    out.write(orjson.dumps(record).decode() + "\n")
            else:
                writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
                writer.writeheader()
                writer.writerows({k: _spreadsheet_safe(v) for k, v in record.items()} for record in records)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise InvalidInput(f"{path}: could not write the export ({exc.strerror or exc})") from exc
    return len(records)


def _export_record(cell: CellRow, labels: Sequence[str]) -> dict[str, Any]:
    record = cell.model_dump(mode="json")
    record["variant_label"] = labels[cell.variant] if cell.variant < len(labels) else ""
    record["assertions"] = "; ".join(f"{'pass' if r.get('passed') else 'fail'}: {r.get('label')}" for r in cell.results)
    return {column: record.get(column) for column in EXPORT_COLUMNS}


def _spreadsheet_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def resolve_variants(store: Store, variants: Sequence[str | VariantSpec], *, least: int = 2) -> list[Variant]:
    """Look up each variant's template version; its model is the version's own unless the variant names one."""
    check_variant_count(len(variants), least=least)
    resolved: list[Variant] = []
    for given in variants:
        spec = parse_variant(given) if isinstance(given, str) else given
        version = templates.resolve(store, spec.template_ref)
        model = spec.model or version.settings.model
        resolved.append(Variant(
            label=variant_label(version.template, version.version, spec.client, model), template=version.template,
            version=version.version, version_id=version.id, client=spec.client, model=model,
        ))
    labels = [v.label for v in resolved]
    if len(set(labels)) < len(labels):
        raise InvalidInput(f"the same variant is named twice: {', '.join(sorted({x for x in labels if labels.count(x) > 1}))}")
    return resolved


def request_key(client: str, request: InferenceRequest) -> str:
    """The cache key of a call: who answers and everything sent, but not how long we are willing to wait."""
    payload = orjson.dumps([client, request.model_dump(mode="json", exclude={"timeout_s"})], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


# ----------------------------------------------------------------------------------------- preparing


Input = tuple[int | None, dict[str, Any], dict[str, Any]]
"""An input row: the example's id, the variables it offers a template, and its metadata (for assertions)."""


def _inputs(store: Store, dataset: str, *, split: str | None, version: str | None, limit: int | None) -> list[Input]:
    """The inputs in row order."""
    wanted = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= wanted <= MAX_INPUTS:
        raise InvalidInput(f"limit must be 1 to {MAX_INPUTS:,} inputs, not {wanted}")
    examples = islice(exporting.source_examples(store, dataset, version=version, split=split), wanted)
    found = [(example.id, tpl.example_variables(example), dict(example.metadata)) for example in examples]
    if not found:
        where = f"split {split!r} of " if split else ""
        raise InvalidInput(f"{where}dataset {dataset!r}{f' version {version}' if version else ''} has no examples to compare on")
    return found


def _specs(store: Store, texts: Sequence[str], *, has_reference: bool, read_file: Callable[[str], str] | None) -> list[checks.AssertionSpec]:
    specs = forms.parse_assertions(texts, read_file=read_file) if texts else checks.default_assertions(has_reference)
    return checks.attach_guardrail_rules(specs, [r for r in cleaning.list_rules(store) if r.enabled])


def _judge(judge: str | None, specs: Sequence[checks.AssertionSpec]) -> tuple[str, str] | None:
    wanted = any(isinstance(s, checks.JudgeSpec) for s in specs)
    if not wanted:
        return None
    if not judge:
        raise InvalidInput("a judge: assertion needs a judge model: give --judge CLIENT:MODEL (e.g. anthropic:claude-sonnet-4-5)")
    client, _, model = judge.partition(":")
    if client not in ("anthropic", "bedrock", "openai", "local") or not model:
        raise InvalidInput(f"judge {judge!r}: write it as CLIENT:MODEL, with CLIENT one of anthropic, bedrock, openai, local")
    return client, model


def _jobs(store: Store, resolved: Sequence[Variant], inputs: Sequence[Input], done: set[tuple[int, int]]) -> list[_Job]:
    versions = {v.version_id: templates.get_version(store, v.version_id) for v in resolved}
    jobs: list[_Job] = []
    for row, (example_id, variables, metadata) in enumerate(inputs):
        for index, variant in enumerate(resolved):
            if (row, index) in done:
                continue
            job = _Job(row=row, variant=index, example_id=example_id, input=str(variables.get("input") or ""),
                       reference=variables.get("reference"), metadata=metadata,
                       client=variant.client, request=None)
            version = versions[variant.version_id]
            try:
                system, turns = tpl.render_messages(version, variables)
                job.request = InferenceRequest(
                    model=variant.model, system=system or "", messages=tuple(ChatMessage(role=t.role, content=t.content) for t in turns),
                    temperature=version.settings.temperature, max_tokens=version.settings.max_tokens,
                    top_p=version.settings.top_p, stop=tuple(version.settings.stop),
                )
                job.key = request_key(variant.client, job.request)
            except (WorkbenchError, ValueError) as exc:
                job.error = f"could not render {variant.template}@{variant.version}: {exc}"
            jobs.append(job)
    return jobs


# ----------------------------------------------------------------------------------------- running


def _execute(store: Store, run_id: int, resolved: Sequence[Variant], inputs: Sequence[Input],
             specs: Sequence[checks.AssertionSpec], caller: _Caller, concurrency: int, progress: Progress | None) -> RunReport:
    progress = progress or Progress()
    with store.connect() as db:
        done = rows.done_cells(db, run_id)
        jobs = _jobs(store, resolved, inputs, done)
        hits = rows.cached(db, [j.key for j in jobs if j.key])
    for job in jobs:
        job.cached = hits.get(job.key) if job.key else None
    writer = _CellWriter(store, run_id)
    progress.stage("answering", len(jobs), "cells")
    state, error = "done", None
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="compare")
    inflight: set[Future[tuple[CellRow, tuple[CachedAnswer, str, str] | None]]] = set()
    try:
        for cell, answer in _answered(pool, jobs, caller, specs, concurrency, progress, inflight):
            writer.add(cell, answer)
            progress.advance()
    except Cancelled:
        state = "cancelled"
        for cell, answer in _settled(inflight, CANCEL_GRACE_S):  # answers already paid for are kept
            writer.add(cell, answer)
    except KeyboardInterrupt:
        state = "cancelled"  # Ctrl-C in a terminal: what was written is kept, and the run reads as stopped
        for cell, answer in _settled(inflight, 0):
            writer.add(cell, answer)
        raise
    except Exception as exc:
        state, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        # A stop must not wait for calls still in flight (a hung model holds its thread until its timeout):
        # they are abandoned, unwritten and uncached, and the run's end state is written now.
        pool.shutdown(wait=state == "done", cancel_futures=True)
        writer.flush()
        with store.write() as db:
            rows.finish_run(db, run_id, state, error)
    return report(store, run_id)


def _answered(pool: ThreadPoolExecutor, jobs: Sequence[_Job], caller: _Caller, specs: Sequence[checks.AssertionSpec],
              concurrency: int, progress: Progress,
              pending: set[Future[tuple[CellRow, tuple[CachedAnswer, str, str] | None]]],
              ) -> Iterator[tuple[CellRow, tuple[CachedAnswer, str, str] | None]]:
    """Yield each job's cell as it finishes: first those answered without a call, then the calls as they return.

    At most a few calls per thread are queued, and while waiting on calls the caller's stop is checked
    every `STOP_CHECK_S`, so Cancel takes effect even when every call in flight hangs. `pending` holds the
    calls in flight, so a caller that stops can still keep those that have come back (`_settled`).
    """
    local = [job for job in jobs if (job.cached is not None or job.request is None) and caller.judge is None]
    remote = [job for job in jobs if not ((job.cached is not None or job.request is None) and caller.judge is None)]
    for job in local:
        yield caller.cell(job, specs)  # nothing to wait for: answered here, without a trip through the pool
    window = concurrency * 2
    answer = access.bind(caller.cell)  # the pool's threads act as whoever started the run

    def returned() -> Iterator[tuple[CellRow, tuple[CachedAnswer, str, str] | None]]:
        finished, _ = wait(pending, timeout=STOP_CHECK_S, return_when=FIRST_COMPLETED)
        for future in finished:
            pending.discard(future)
            yield future.result()
        progress.check()

    try:
        for job in remote:
            pending.add(pool.submit(answer, job, specs))
            while len(pending) >= window:
                yield from returned()
        while pending:
            yield from returned()
    finally:
        for future in pending:
            future.cancel()  # those not started yet; a call in flight cannot be taken back


def _settled(pending: set[Future[tuple[CellRow, tuple[CachedAnswer, str, str] | None]]], grace_s: float,
             ) -> Iterator[tuple[CellRow, tuple[CachedAnswer, str, str] | None]]:
    """Yield the cells of calls in flight that come back within `grace_s`: a stopped run keeps what it paid for."""
    started = [f for f in pending if not f.cancelled()]
    if started and grace_s > 0:
        wait(started, timeout=grace_s)
    for future in started:
        if future.done() and not future.cancelled() and future.exception() is None:
            yield future.result()


class _Caller:
    """Answers one job in a worker thread: from the cache or the client (with retries), then checks it."""

    def __init__(self, clients: Clients | None, retry: RetryPolicy, judge: tuple[str, str] | None, timeout_s: float) -> None:
        self._given = dict(clients or {})
        self._built: dict[str, InferenceClient | WorkbenchError] = {}
        self._lock = threading.Lock()
        self.retry = retry
        self.judge = judge
        self.timeout_s = timeout_s

    def check_configured(self, kinds: Sequence[str]) -> None:
        """Refuse a run before anything is stored when a client it needs has no key or endpoint set.

        A key that is set but wrong only shows on the first call; those cells fail with the provider's message.
        """
        for kind in dict.fromkeys([*kinds, *([self.judge[0]] if self.judge else [])]):
            self.client(kind)

    def client(self, kind: str) -> InferenceClient:
        if kind in self._given:
            return self._given[kind]
        with self._lock:  # one client per kind, shared by the threads (the SDKs' clients are thread-safe)
            if kind not in self._built:
                try:
                    self._built[kind] = client_for(kind)
                except WorkbenchError as exc:
                    self._built[kind] = exc
            built = self._built[kind]
        if isinstance(built, WorkbenchError):
            raise built
        return built

    def cell(self, job: _Job, specs: Sequence[checks.AssertionSpec]) -> tuple[CellRow, tuple[CachedAnswer, str, str] | None]:
        attempts, fresh = 0, None
        answer = job.cached
        error = job.error
        if error is None and answer is None and job.request is not None:
            try:
                answer, attempts = self.call(job.client, job.request, job.key)
                fresh = (answer, job.client, job.request.model)
            except WorkbenchError as exc:
                error = str(exc)
        if error is not None or answer is None:
            return _cell(job, None, error or "no answer", attempts, [], cached=False), None
        verdicts = self.judge_all(job, answer.text, specs)
        verdict = checks.check_output(specs, answer.text, job.reference, job.metadata, judge_verdicts=verdicts)
        return _cell(job, answer, None, attempts, verdict.results, cached=job.cached is not None,
                     passed=verdict.passed, score=verdict.score), fresh

    def call(self, kind: str, request: InferenceRequest, key: str) -> tuple[CachedAnswer, int]:
        client = self.client(kind)
        request = request.model_copy(update={"timeout_s": self.timeout_s})
        attempt = 0
        while True:
            attempt += 1
            try:
                response = client.complete(request)
            except RateLimited as exc:
                if attempt >= self.retry.rate_limit_attempts:
                    raise
                time.sleep(self.retry.delay_s(attempt, exc.retry_after_s))
                continue
            except InferenceError as exc:
                if not exc.retryable or attempt >= self.retry.failure_attempts:
                    raise
                time.sleep(self.retry.delay_s(attempt))
                continue
            return CachedAnswer(key=key, text=response.text, input_tokens=response.input_tokens, output_tokens=response.output_tokens,
                                latency_ms=response.latency_ms, stop_reason=response.stop_reason), attempt

    def judge_all(self, job: _Job, output: str, specs: Sequence[checks.AssertionSpec]) -> dict[int, str]:
        """Ask the judge about every judge assertion; a judge that fails leaves that assertion unchecked (an error)."""
        verdicts: dict[int, str] = {}
        if self.judge is None:
            return verdicts
        kind, model = self.judge
        for position, spec in enumerate(specs):
            if not isinstance(spec, checks.JudgeSpec):
                continue
            prompt = build_judge_prompt(spec.rubric, job.input, output, job.reference)
            request = InferenceRequest(model=model, system=prompt.system, messages=(ChatMessage(role="user", content=prompt.user),),
                                       temperature=0.0, max_tokens=JUDGE_MAX_TOKENS)
            try:
                answer, _ = self.call(kind, request, request_key(kind, request))
            except WorkbenchError as exc:
                verdicts[position] = f"(the judge {kind}:{model} failed: {exc})"
                continue
            verdicts[position] = answer.text
        return verdicts


def _cell(job: _Job, answer: CachedAnswer | None, error: str | None, attempts: int, results: list[checks.AssertionResult], *,
          cached: bool, passed: bool | None = None, score: float | None = None) -> CellRow:
    cost, row = _cost(job.request.model if job.request else "", answer)
    return CellRow(
        run_id=0, row=job.row, variant=job.variant, example_id=job.example_id, input=job.input, reference=job.reference,
        output=answer.text if answer else None, error=error, passed=None if error else passed, score=None if error else score,
        results=[r.model_dump(mode="json") for r in results], input_tokens=answer.input_tokens if answer else None,
        output_tokens=answer.output_tokens if answer else None, latency_ms=answer.latency_ms if answer else None,
        cost_usd=cost, cost_saved_usd=(cost or 0.0) if cached else 0.0, price_row=row, cache_hit=cached, attempts=attempts,
    )


def _cost(model: str, answer: CachedAnswer | None) -> tuple[float | None, str | None]:
    """What the call costs at the catalogue's on-demand price, from the provider's own token counts."""
    if answer is None or answer.input_tokens is None or answer.output_tokens is None:
        return None, None
    price = tpl.price_for(model)
    if price is None:
        return None, None
    usd = answer.input_tokens * price.input_per_1k / 1000 + answer.output_tokens * price.output_per_1k / 1000
    return round(usd, 8), price.row


class _CellWriter:
    """Collects finished cells and new cache entries; writes them a batch per transaction."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store, self.run_id = store, run_id
        self.cells: list[CellRow] = []
        self.answers: list[tuple[CachedAnswer, str, str]] = []
        self.hit_keys: list[str] = []
        self.last = time.monotonic()

    def add(self, cell: CellRow, answer: tuple[CachedAnswer, str, str] | None) -> None:
        self.cells.append(cell.model_copy(update={"run_id": self.run_id}))
        if answer is not None:
            self.answers.append(answer)
        if len(self.cells) >= WRITE_EVERY_CELLS or time.monotonic() - self.last >= WRITE_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if not self.cells and not self.answers:
            return
        with self.store.write() as db:
            rows.cache_answers(db, self.answers)
            rows.add_cells(db, self.cells)
        self.cells, self.answers, self.last = [], [], time.monotonic()


# ----------------------------------------------------------------------------------------- reporting


def outcomes(cells: Sequence[CellRow]) -> list[CellOutcome]:
    """The cells as the statistics read them."""
    return [
        CellOutcome(example_id=c.example_id if c.example_id is not None else c.row, error=c.error, latency_ms=c.latency_ms,
                    cost_usd=c.cost_usd, results=[checks.AssertionResult(**r) for r in c.results])
        for c in cells
    ]


def _report(run: RunRow, cells: Sequence[CellRow]) -> RunReport:
    variants: list[VariantReport] = []
    for index, raw in enumerate(run.variants):
        variant = Variant(**raw)
        mine = [c for c in cells if c.variant == index]
        summary = summarize_variant(outcomes(mine))
        variants.append(VariantReport(
            label=variant.label, template=variant.template, version=variant.version, client=variant.client, model=variant.model,
            cells=len(mine), passed=summary.passed, failed=summary.failed, errors=summary.errors,
            cost_usd=round(sum(c.cost_usd or 0.0 for c in mine if not c.cache_hit), 8),
            cost_saved_usd=round(sum(c.cost_saved_usd for c in mine), 8),
            latency_p50_ms=summary.latency_p50_ms, latency_p95_ms=summary.latency_p95_ms,
            cache_hits=sum(c.cache_hit for c in mine), summary=summary,
        ))
    return RunReport(
        run_id=run.id, state=run.state, dataset=run.dataset_name, split=run.split,
        inputs=len({c.row for c in cells}), assertions=[checks.describe(checks.load_assertion(a)) for a in run.assertions],
        variants=variants, error=run.error,
    )
