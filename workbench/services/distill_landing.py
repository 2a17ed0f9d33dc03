"""Land a distillation's answers: a new dataset, or reference answers where examples lack one; then queue them for review.

Every landed example carries its provenance in its metadata (`provenance`) and waits, pending, in
the reviewers' queue, once. Landing is idempotent: an answer this run landed before counts as
`already`, a copy of an example already there as a duplicate, and an example that has an answer
keeps it. Writes go in short transactions, each re-reading what it changes, so reviewers and
imports writing the same store meanwhile are never overwritten.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlite_utils import Database

from workbench.domain import templates as tpl
from workbench.domain.checks import prepare
from workbench.domain.example import Example, Message, ReviewState, Role, example_hash
from workbench.domain.progress import Cancelled, Progress
from workbench.errors import Conflict, NotFound
from workbench.services import review, templates
from workbench.store import Store
from workbench.store import datasets as dataset_rows
from workbench.store import distill as rows
from workbench.store import examples as example_rows
from workbench.store.comparisons import CellRow
from workbench.store.distill import DistillRow, InputRow

SOURCE = "distill"
TAG = "distilled"
FAILURES_KEPT = 200
"""Failed inputs and unusable replies a report lists (with the counts of all): a report stays small to keep and show."""
SHOWN_CHARS = 300
MAX_OUTPUT_CHARS = 200_000
"""The longest answer that lands: far past any max_tokens a template sets, so only a runaway reply is refused."""


class Target(StrEnum):
    NEW = "new"
    FILL = "fill"


class FailedInput(BaseModel):
    row: int
    example_id: int | None = None
    topic: str | None = None
    input: str = Field(description="The input's text, cut short.")
    error: str


class UnusableReply(BaseModel):
    """A seed topic whose reply gave fewer inputs than asked, or none."""

    topic: str
    problem: str
    reply: str = Field("", description="The reply's start, as the teacher wrote it.")


class Landing(BaseModel):
    """What a landing did, counted over every answered input of the run."""

    landed: int = Field(0, description="Examples added or filled by this landing.")
    already: int = Field(0, description="Landed by an earlier landing of this run.")
    kept_existing: int = Field(0, description="Fill mode: the example had an answer already; it was left alone.")
    duplicates: int = Field(0, description="Identical to an example that was already there: nothing added.")
    queued: int = Field(0, description="Landed examples waiting in the reviewers' queue.")
    failed: int = 0
    failures: list[FailedInput] = Field(default_factory=list)
    unusable_replies: list[UnusableReply] = Field(default_factory=list)
    unusable_count: int = 0
    dataset_id: int | None = None


def has_answer(example: Example) -> bool:
    """Say whether an example ends with an answer: anything but a user turn or an assistant turn that says nothing.

    Imports refuse examples with no assistant turn at all, so an example lacking its answer ends with a
    user turn (a conversation cut before the reply) or with an empty reply (a completion left blank).
    """
    if not example.messages:
        return True  # nothing to answer: never filled
    last = example.messages[-1]
    if last.role is Role.USER:
        return False
    return not (last.role is Role.ASSISTANT and not last.content.strip() and not last.tool_calls)


def answered(example: Example, answer: str) -> list[Message]:
    """The example's turns with the teacher's answer in place of the missing one."""
    kept = example.messages if example.messages[-1].role is Role.USER else example.messages[:-1]
    return [*kept, Message(role=Role.ASSISTANT, content=answer)]


def land(store: Store, run: DistillRow, inputs: Sequence[InputRow], cells: Sequence[CellRow], progress: Progress) -> Landing:
    """Land every answered input not landed yet, queue each landed example for review, and report the rest per input."""
    by_row = {i.row: i for i in inputs}
    landing = Landing()
    ready: list[tuple[InputRow, CellRow]] = []
    for cell in cells:
        given = by_row.get(cell.row)
        if cell.variant != 0 or given is None:
            continue
        error = _unusable(cell)
        if error is not None:
            _fail(landing, given, error)
            continue
        ready.append((given, cell))
    with contextlib.suppress(Cancelled):  # a stopped run still lands what it answered: the stop was for the calls
        progress.stage("landing", len(ready), "outputs")
    if not ready:
        return landing  # nothing to land: no empty dataset is made, and nothing is queued
    landed = _land_new(store, run, ready, landing) if run.target == Target.NEW else _land_fill(store, run, ready, landing)
    landing.queued = len(_queue(store, run, landed)) if landed else 0
    with contextlib.suppress(Cancelled):
        progress.finish()
    return landing


def _unusable(cell: CellRow) -> str | None:
    """Why an answer cannot land (the call failed, it is empty, it is too long to be a training example), or None."""
    if cell.output is None:
        return cell.error or "not answered"
    if not cell.output.strip():
        return "the teacher answered nothing"
    if len(cell.output) > MAX_OUTPUT_CHARS:
        return (f"the answer is {len(cell.output):,} characters, over the {MAX_OUTPUT_CHARS:,} a landed answer may have "
                "(the teacher ignored max_tokens?); it was not landed")
    return None


def _provenance(run: DistillRow, given: InputRow, cell: CellRow) -> dict[str, Any]:
    """What a landed example says about where it came from (see docs/distill.md)."""
    made: dict[str, Any] = {
        "source": SOURCE, "teacher": run.teacher, "template": run.template, "distill_run": run.id, "distill_row": given.row,
        "comparison_run": cell.run_id, "cost_usd": cell.cost_usd, "price_row": cell.price_row, "cache_hit": cell.cache_hit,
    }
    if given.example_id is not None:
        made |= {"source_example_id": given.example_id, "source_dataset": run.source_dataset}
    if given.topic is not None:
        made |= {"seed_topic": given.topic, "seed_template": run.seed_template, "input_cost_usd": given.input_cost_usd}
    return made


def _landed_by_us(metadata: dict[str, Any], run: DistillRow, row: int) -> bool:
    return metadata.get("distill_run") == run.id and metadata.get("distill_row") == row


Landed = list[tuple[InputRow, CellRow, int]]
"""Inputs whose answer is in the dataset (now or before), with the example that holds it: what is queued."""


def _land_new(store: Store, run: DistillRow, ready: Sequence[tuple[InputRow, CellRow]], landing: Landing) -> Landed:
    """Add each answer as a new example of the run's own dataset (made on first landing); copies are counted, not added.

    Only a dataset this run created is written: one of the same name made meanwhile (another run,
    an import) is refused, whatever was checked when the run was planned.
    """
    made = [
        Example.model_validate({
            **given.example, "messages": [*given.example.get("messages", []), {"role": "assistant", "content": cell.output}],
            "metadata": {**(given.example.get("metadata") or {}), **_provenance(run, given, cell)},
            "tags": [TAG], "review_state": ReviewState.PENDING,
        })
        for given, cell in ready
    ]
    hashes = [example_hash(e) for e in made]
    name = run.into_dataset or f"distill-{run.id}"
    with store.write() as db:
        dataset_id = _own_dataset(db, run, name)
        before = rows.examples_by_hash(db, dataset_id, hashes) if dataset_id is not None else {}
        fresh: list[Example] = []
        seen = set(before)
        for example, content_hash in zip(made, hashes, strict=True):  # the first input with an answer takes it
            if content_hash not in seen:
                seen.add(content_hash)
                fresh.append(prepare(example))  # token counts and PII only for what is written
        if dataset_id is None:
            dataset_id = dataset_rows.create_dataset(
                db, name, description=f"Written by teacher {run.teacher} with template {run.template} (distillation #{run.id})."
            ).id
            rows.set_dataset(db, run.id, dataset_id)
        example_rows.insert_examples(db, dataset_id, fresh)
        after = rows.examples_by_hash(db, dataset_id, hashes)
    landing.dataset_id = dataset_id
    out: Landed = []
    claimed: set[str] = set()
    for (given, cell), content_hash in zip(ready, hashes, strict=True):
        hit = after.get(content_hash)
        if hit is None:
            continue  # removed by someone else within the moment; a resume lands it again
        if content_hash in before:
            if _landed_by_us(before[content_hash][1], run, given.row):
                landing.already += 1
                out.append((given, cell, hit[0]))
            else:
                landing.duplicates += 1
        elif content_hash in claimed:
            landing.duplicates += 1
        else:
            claimed.add(content_hash)
            landing.landed += 1
            out.append((given, cell, hit[0]))
    return out


def _own_dataset(db: Database, run: DistillRow, name: str) -> int | None:
    """The id of the dataset this run created, None when it is still to be made; Conflict when the name is someone else's."""
    found = dataset_rows.find_dataset(db, name)
    if found is None:
        return None  # not made yet, or the run's own was deleted: it is made (again) under the run's name
    if found.id == run.dataset_id:
        return found.id
    owner = rows.dataset_owner(db, found.id)
    who = f"distillation #{owner}" if owner is not None else "an import or another action"
    raise Conflict(
        f"dataset {name!r} was made by {who} while distillation #{run.id} ran: its answers are not merged into a dataset "
        "it did not create. Run it again into another name; the answers it already has come from the cache at no cost"
    )


def _land_fill(store: Store, run: DistillRow, ready: Sequence[tuple[InputRow, CellRow]], landing: Landing) -> Landed:
    """Append each answer to its example, only where the example still has no answer; the old content stays a revision."""
    name = run.into_dataset or run.source_dataset or ""
    with store.connect() as db:
        found = dataset_rows.find_dataset(db, name)
    if found is None:
        raise NotFound(f"dataset {name!r} was deleted: there is nothing to fill")
    landing.dataset_id = found.id
    out: Landed = []
    filled: list[int] = []
    for chunk in _chunks(ready, 200):
        with store.write() as db:  # short transactions: reviewers and imports write the same store meanwhile
            for given, cell in chunk:
                assert given.example_id is not None
                try:
                    old = example_rows.get_example(db, given.example_id)
                except NotFound:
                    _fail(landing, given, "its example was deleted before the answer could land")
                    continue
                if old.dataset_id != found.id:
                    _fail(landing, given, f"its example is no longer in dataset {name!r}")
                    continue
                if has_answer(old):
                    if _landed_by_us(old.metadata, run, given.row):
                        landing.already += 1
                        out.append((given, cell, given.example_id))
                    else:
                        landing.kept_existing += 1
                    continue
                new = prepare(old.model_copy(update={
                    "messages": answered(old, cell.output or ""),
                    "metadata": {**old.metadata, **_provenance(run, given, cell)},
                }))
                try:
                    example_rows.save_revision(db, old, new)
                except Conflict:
                    landing.duplicates += 1
                    continue
                landing.landed += 1
                filled.append(given.example_id)
                out.append((given, cell, given.example_id))
            if filled:
                example_rows.add_tag(db, filled, TAG)
                example_rows.set_column(db, filled, "review_state", ReviewState.PENDING.value)
                filled = []
    return out


def _fail(landing: Landing, given: InputRow, why: str) -> None:
    landing.failed += 1
    if len(landing.failures) < FAILURES_KEPT:
        landing.failures.append(FailedInput(row=given.row, example_id=given.example_id, topic=given.topic,
                                            input=str(given.variables.get("input") or "")[:SHOWN_CHARS], error=why))


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _queue(store: Store, run: DistillRow, landed: Landed) -> list[int]:
    """Queue every landed example for review, once each (source `distillation`, id `RUN:ROW`)."""
    task = _task_type(store, run.template)
    name = run.into_dataset or run.source_dataset
    items = [
        review.NewItem(
            source_kind=review.SourceKind.DISTILLATION, source_id=f"{run.id}:{given.row}", output=cell.output or "",
            system=given.example.get("system"), messages=[Message.model_validate(m) for m in given.example.get("messages", [])],
            model_id=run.teacher.partition(":")[2], template_version_id=run.template_version_id, task_type=task, dataset=name,
            example_id=example_id,
        )
        for given, cell, example_id in landed
    ]
    return review.enqueue(store, items)


def _task_type(store: Store, ref: str) -> str:
    try:
        return templates.template_detail(store, tpl.parse_ref(ref)[0]).template.task_type
    except NotFound:
        return ""

