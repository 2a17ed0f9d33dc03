"""`workbench distill ...`: generate training data with a teacher model, from a terminal.

`estimate` counts and prices the calls; `run` shows that estimate and asks before calling anything
(`--yes` skips the question; under `--json` it is required, since a script cannot answer);
`resume ID` finishes a stopped run, calling only what is missing; `list` and `show ID` reopen
kept runs. Registered on the main group by `workbench.cli`; every command takes --json and fails
as one JSON object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from workbench.cli import command, emit, fail, main, store_of
from workbench.domain.distill import format_usd
from workbench.errors import InvalidInput

SPLITS = ["train", "validation", "test"]


@main.group()
def distill() -> None:
    """Generate training data with a teacher model: estimate, run, resume, list."""


def _inputs_options(fn: Any) -> Any:
    """The options that say who answers what: shared by `estimate` and `run`."""
    options = [
        click.option("--teacher", required=True, help="CLIENT:MODEL that answers, e.g. anthropic:claude-sonnet-4-5."),
        click.option("--template", required=True, help="NAME@VERSION (or NAME@LABEL) the teacher is prompted with."),
        click.option("--dataset", default=None, help="Answer this dataset's inputs (each example's last user turn)."),
        click.option("--split", default=None, type=click.Choice(SPLITS), help="Only this split's examples."),
        click.option("--version", default=None, help="A frozen version of the dataset instead of its live examples."),
        click.option("--limit", type=int, default=None, help="Inputs to take, from the first (default: all, up to 5,000)."),
        click.option("--seeds", "seeds_file", default=None, type=click.Path(dir_okay=False),
                     help="A file of seed topics, one per line: the teacher writes inputs for each, then answers them."),
        click.option("--per-topic", type=int, default=5, show_default=True, help="Inputs the teacher writes per seed topic."),
        click.option("--fill-references", is_flag=True,
                     help="Answer the dataset's examples that lack an answer, in place (an existing answer is never replaced)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _read_seeds(path: str | None) -> list[str]:
    if path is None:
        return []
    from workbench.domain.distill import parse_topics

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: could not read the seed topics as UTF-8 text ({exc})") from None
    topics = parse_topics(text)
    if not topics:
        raise InvalidInput(f"{path}: no seed topics in it; write one topic per line (lines starting with # are skipped)")
    return topics


def _estimate_words(found: Any) -> None:
    """Print an estimate the way a person reads it: calls, tokens, and the cost range with its price row."""
    click.echo(f"teacher {found.teacher}: {found.calls:,} calls over {found.inputs:,} inputs"
               + (f" ({found.topics} topics)" if found.topics else "")
               + (f"; {found.answered_skipped:,} examples already answered are skipped" if found.answered_skipped else ""))
    for stage in found.stages:
        exact = "exact" if stage.exact_input else f"up to {stage.input_tokens_high:,}"
        click.echo(f"  {stage.stage}: {stage.calls:,} calls, {stage.input_tokens:,} prompt tokens ({exact}), output "
                   f"~{stage.output_tokens_typical:,} tokens ({stage.typical_from}), at most {stage.output_tokens_bound:,}")
        if stage.unrenderable:
            click.echo(f"    {stage.unrenderable} inputs cannot be rendered and will fail without a call: {stage.first_error}")
    if found.cost_low_usd is None:
        click.echo(f"  cost: unknown ({found.note})")
    else:
        click.echo(f"  cost: {format_usd(found.cost_low_usd)} typical, {format_usd(found.cost_high_usd)} at most ({found.price_row})"
                   + (f"; {found.note}" if found.note else ""))


def _report_words(result: Any) -> None:
    where = result.into_dataset or "(no dataset)"
    click.echo(f"distillation {result.id}: {result.state}; {result.answered:,} of {result.inputs:,} inputs answered")
    notes = [text for count, text in ((result.already, f"{result.already:,} landed before"),
                                      (result.duplicates, f"{result.duplicates:,} duplicates skipped"),
                                      (result.kept_existing, f"{result.kept_existing:,} kept the answer they had")) if count]
    click.echo(f"  landed {result.landed:,} in {where}" + (f" ({', '.join(notes)})" if notes else "")
               + f"; {result.queued:,} waiting for review on the Review page")
    if result.cost_usd is None:
        click.echo(f"  cost unknown (no price for {result.teacher.partition(':')[2]}); {result.cache_hits:,} cache hits")
    else:
        click.echo(f"  {format_usd(result.cost_usd)} spent, {format_usd(result.cost_saved_usd)} saved by {result.cache_hits:,} cache hits")
    for failure in result.failures[:20]:
        said = failure.topic if failure.topic is not None else f"example {failure.example_id}"
        click.echo(f"  failed: row {failure.row} ({said}): {failure.error}")
    if result.failed > 20:
        click.echo(f"  ... and {result.failed - 20:,} more failures (--json lists up to 200)")
    for reply in result.unusable_replies[:20]:
        click.echo(f"  topic {reply.topic!r}: {reply.problem}")
    if result.state in ("stopped", "failed", "running"):
        click.echo(f"  finish it with `workbench distill resume {result.id}`: only what is missing is called")


def _emit_report(ctx: click.Context, result: Any) -> None:
    payload = result.model_dump(mode="json")
    if result.state == "failed":
        fail(ctx, f"distillation {result.id} failed: {result.error}", payload)
    emit(ctx, {"ok": True, **payload}, lambda: _report_words(result))


@command(distill, "estimate")
@_inputs_options
def estimate_cmd(ctx: click.Context, teacher: str, template: str, dataset: str | None, split: str | None, version: str | None,
                 limit: int | None, seeds_file: str | None, per_topic: int, fill_references: bool) -> None:
    """Count the calls and tokens a run would make and price them, without calling anything."""
    from workbench.services import distill as service

    found = service.estimate(store_of(ctx), teacher, template, dataset=dataset, split=split, version=version, limit=limit,
                             seeds=_read_seeds(seeds_file), per_topic=per_topic, fill_references=fill_references)
    emit(ctx, {"ok": True, **found.model_dump(mode="json")}, lambda: _estimate_words(found))


@command(distill, "run")
@_inputs_options
@click.option("--into", default=None, help="Land the outputs as a new dataset of this name.")
@click.option("--concurrency", type=int, default=4, show_default=True, help="Calls in flight at once.")
@click.option("--yes", is_flag=True, help="Run without asking (the estimate is still printed).")
def run_cmd(ctx: click.Context, teacher: str, template: str, dataset: str | None, split: str | None, version: str | None,
            limit: int | None, seeds_file: str | None, per_topic: int, fill_references: bool, into: str | None, concurrency: int,
            yes: bool) -> None:
    """Show the estimate, ask, then run the teacher and land its outputs (a new dataset, or --fill-references)."""
    from workbench.cli_progress import cli_progress
    from workbench.services import distill as service

    store = store_of(ctx)
    seeds = _read_seeds(seeds_file)
    found = service.estimate(store, teacher, template, dataset=dataset, split=split, version=version, limit=limit, seeds=seeds,
                             per_topic=per_topic, fill_references=fill_references)
    if not yes:
        if ctx.obj["json"]:
            fail(ctx, "give --yes to run under --json (a script cannot confirm); the estimate is in this object",
                 {"estimate": found.model_dump(mode="json")})
        _estimate_words(found)
        if not click.confirm("Run it?", err=True):  # a "no" is an answer, not an interruption
            fail(ctx, "not run: nothing was called")
    elif not ctx.obj["json"]:
        _estimate_words(found)
    try:
        with cli_progress(ctx) as progress:
            result = service.distill(store, teacher, template, dataset=dataset, split=split, version=version, limit=limit, seeds=seeds,
                                     per_topic=per_topic, into=into, fill_references=fill_references, concurrency=concurrency,
                                     progress=progress)
    except KeyboardInterrupt:
        _interrupted(ctx)
    _emit_report(ctx, result)


def _interrupted(ctx: click.Context) -> None:
    from workbench.services import distill as service

    latest = service.list_runs(store_of(ctx), limit=1)
    hint = f"; finish it with `workbench distill resume {latest[0].id}`" if latest else ""
    fail(ctx, f"stopped by Ctrl-C{hint}", {"id": latest[0].id if latest else None}, code=130)


@command(distill, "resume")
@click.argument("distill_id", type=int)
def resume_cmd(ctx: click.Context, distill_id: int) -> None:
    """Finish a stopped or died run: only the missing calls are made (the rest come from the cache), then land what is new."""
    from workbench.cli_progress import cli_progress
    from workbench.services import distill as service

    try:
        with cli_progress(ctx) as progress:
            result = service.resume(store_of(ctx), distill_id, progress=progress)
    except KeyboardInterrupt:
        fail(ctx, f"stopped by Ctrl-C; finish it with `workbench distill resume {distill_id}`", {"id": distill_id}, code=130)
    _emit_report(ctx, result)


@command(distill, "show")
@click.argument("distill_id", type=int)
def show_cmd(ctx: click.Context, distill_id: int) -> None:
    """Show a kept run: its state, costs, what landed and what failed."""
    from workbench.services import distill as service

    result = service.report(store_of(ctx), distill_id)
    emit(ctx, {"ok": True, **result.model_dump(mode="json")}, lambda: _report_words(result))


@command(distill, "list")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def list_cmd(ctx: click.Context, limit: int) -> None:
    """List recent distillations, newest first."""
    from workbench.services import distill as service

    found = service.list_runs(store_of(ctx), limit=limit)
    payload = [r.model_dump(mode="json") for r in found]

    def human() -> None:
        if not found:
            click.echo("no distillations yet: `workbench distill run --teacher CLIENT:MODEL --template NAME@V --dataset D --into NEW`")
        for r in found:
            source = r.source_dataset or f"{len(r.seeds)} seed topics"
            landing = "fill references" if r.target == "fill" else f"into {r.into_dataset}"
            click.echo(f"#{r.id} {r.state}: {r.teacher} with {r.template} on {source}, {landing} ({r.created_at})")

    emit(ctx, {"ok": True, "runs": payload}, human)
