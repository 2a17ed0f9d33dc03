"""`workbench evaluate ...`: run one model over a dataset's test split, and compare two such runs.

`run MODEL` takes a Models-page id or name (called through what its backend needs: a fine-tuned
OpenAI id, a Bedrock deployment, a local adapter) or CLIENT:MODEL for a base model; `list`, `show ID`
reopen kept evaluations; `compare BASE CANDIDATE` pairs two on the same inputs. Registered on the main
group by `workbench.cli`; every command takes --json and fails as one JSON object.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from workbench.cli import command, emit, fail, main, store_of
from workbench.domain.eval_stats import LISTED_EXAMPLES, AssertionComparison, Interval
from workbench.errors import InvalidInput

if TYPE_CHECKING:
    from workbench.services.evaluations import Evaluation

ALL_SPLITS = "all"


@main.group()
def evaluate() -> None:
    """Evaluate a model (fine-tuned or base) on a dataset's test split; compare fine-tuned against base."""


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: could not read it as UTF-8 text ({exc})") from None


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _interval(ci: Interval | None) -> str:
    return "" if ci is None else f" ({ci.low:.0%}-{ci.high:.0%})"


@command(evaluate, "run")
@click.argument("model")
@click.option("--template", required=True, help="NAME@VERSION (or NAME, NAME@LABEL) of the template that renders the prompts.")
@click.option("--dataset", default=None, help="Dataset of inputs; default: the dataset version the model was trained on.")
@click.option("--version", default=None, help="A frozen version of the dataset instead of its live examples.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "validation", "test", ALL_SPLITS]),
              help="Which split's examples; 'all' takes every example.")
@click.option("--limit", type=int, default=None, help="Inputs to take, from the first (default 50).")
@click.option("--assert", "checks", multiple=True,
              help="An assertion, repeatable (as for `compare run`). Default: equals the reference, trimmed.")
@click.option("--judge", default=None, help="CLIENT:MODEL that grades judge: assertions.")
@click.option("--concurrency", type=int, default=4, show_default=True, help="Calls in flight at once.")
@click.option("--name", default="", help="A name to find the run by later (default: the model's).")
def run_cmd(ctx: click.Context, model: str, template: str, dataset: str | None, version: str | None, split: str,
            limit: int | None, checks: tuple[str, ...], judge: str | None, concurrency: int, name: str) -> None:
    """Answer every input of the split with MODEL, check each output, and file the run under the model."""
    from workbench.cli_progress import cli_progress
    from workbench.services import evaluations

    store = store_of(ctx)
    with cli_progress(ctx) as progress:
        result = evaluations.evaluate(
            store, model, template=template, dataset=dataset, version=version, split=None if split == ALL_SPLITS else split,
            limit=limit, assertions=list(checks), judge=judge, concurrency=concurrency, name=name, progress=progress,
            read_file=_read_text,
        )
    target = evaluations.resolve_model(store, model)
    base = evaluations.base_of(store, model)
    kept = evaluations.get_evaluation(store, result.run_id)
    inputs = f"--dataset {kept.dataset}" + (f" --version {kept.version}" if kept.version else "") + f" --split {split}"
    inputs += f" --limit {limit}" if limit else ""
    payload = {"ok": True, "model_ref": target.ref, "base_model": base, **result.model_dump(mode="json")}

    def human() -> None:
        v = result.variants[0]
        click.echo(f"run {result.run_id}: {target.label} on {result.dataset} ({result.split or 'all splits'}), "
                   f"{result.inputs} inputs ({result.state}); assertions: {', '.join(result.assertions) or 'none'}")
        click.echo(f"  {v.label}: passed {v.passed}/{v.cells} ({_rate(v.summary.pass_rate)}"
                   f"{_interval(v.summary.pass_rate_ci)}), failed {v.failed}, errors {v.errors}, ${v.cost_usd:.4f} spent")
        if base:
            click.echo(f"  against its base: `workbench evaluate run {base} --template {template} {inputs}`, "
                       f"then `workbench evaluate compare BASE_RUN {result.run_id}`")

    if evaluations.failed_everywhere(kept):  # kept and named, but it measured nothing: not a result to read
        if not ctx.obj["json"]:
            human()
        message = evaluations.all_failed_message(store, kept)
        fail(ctx, message, {**payload, "ok": False, "error": message})
    emit(ctx, payload, human)


@command(evaluate, "list")
@click.option("--model", default=None, help="Only this model's evaluations (an id, a name, model:ID or CLIENT:MODEL).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def list_cmd(ctx: click.Context, model: str | None, limit: int) -> None:
    """List kept evaluations, newest first."""
    from workbench.services import evaluations

    found = evaluations.list_evaluations(store_of(ctx), model, limit=limit)

    def human() -> None:
        if not found:
            click.echo("no evaluations yet: `workbench evaluate run MODEL --template NAME@VERSION`")
        for e in found:
            where = f"{e.dataset or '(deleted dataset)'}{f'@{e.version}' if e.version else ''}/{e.split or 'all'}"
            click.echo(f"run {e.run_id} · {e.model_ref} {e.label} on {where}: {e.state}, {_outcome(e)}")

    emit(ctx, {"ok": True, "evaluations": [e.model_dump(mode="json") for e in found]}, human)


def _outcome(e: Evaluation) -> str:
    """Passed out of all, with the errors beside it: a run whose inputs all failed must not read as a result."""
    errors = f", {e.errors} error{'' if e.errors == 1 else 's'}" if e.errors else ""
    return f"passed {e.passed}/{e.cells} ({_rate(e.pass_rate)}){errors}"


@command(evaluate, "show")
@click.argument("run_id", type=int)
@click.option("--cells", "with_cells", is_flag=True, help="Every cell too (output, assertion results, tokens, cost).")
def show_cmd(ctx: click.Context, run_id: int, with_cells: bool) -> None:
    """Show a kept evaluation: the model, its inputs and its pass rate."""
    from workbench.services import comparisons, evaluations

    store = store_of(ctx)
    summary = evaluations.get_evaluation(store, run_id)
    result = comparisons.report(store, run_id)
    payload = {"ok": True, "evaluation": summary.model_dump(mode="json"), **result.model_dump(mode="json")}
    if with_cells:
        payload["cells"] = [c.model_dump(mode="json") for c in comparisons.run_cells(store, run_id)]

    def human() -> None:
        click.echo(f"run {run_id}: {summary.model_ref} {summary.label} on {summary.dataset} ({summary.split or 'all splits'}), "
                   f"{summary.state}; assertions: {', '.join(result.assertions) or 'none'}")
        click.echo(f"  {_outcome(summary)}, failed {summary.failed}")
        if evaluations.failed_everywhere(summary):
            click.echo(f"  {evaluations.all_failed_message(store, summary)}")
        if with_cells:
            for c in sorted(comparisons.run_cells(store, run_id), key=lambda c: c.row):
                verdict = "error" if c.error is not None else {True: "passed", False: "failed", None: "unjudged"}[c.passed]
                score = "" if c.score is None else f" score {c.score:.2f}"
                said = f"error: {evaluations.explain_error(c.error)}" if c.error is not None else (c.output or "")
                click.echo(f"  row {c.row} example {c.example_id}: {verdict}{score} {_short(said)!r}")

    emit(ctx, payload, human)


@command(evaluate, "compare")
@click.argument("base_run", type=int)
@click.argument("candidate_run", type=int)
@click.option("--examples", type=click.IntRange(1, 100), default=LISTED_EXAMPLES, show_default=True,
              help="How many best, worst and changed examples to list.")
def compare_cmd(ctx: click.Context, base_run: int, candidate_run: int, examples: int) -> None:
    """Pair two evaluations on their inputs: per-assertion win rates with intervals, McNemar p-values, examples."""
    from workbench.services import evaluations

    result = evaluations.compare_evaluations(store_of(ctx), base_run, candidate_run, examples=examples)
    paired = result.paired

    def line(row: AssertionComparison) -> str:
        p = "-" if row.mcnemar_p is None else f"{row.mcnemar_p:.3g}"
        return (f"  {row.label}: wins {row.wins}, losses {row.losses}, ties {row.ties}, win rate {_rate(row.win_rate)}"
                f"{_interval(row.win_rate_ci)}, pass {_rate(row.base_pass_rate)} -> {_rate(row.candidate_pass_rate)}, "
                f"McNemar p {p}" + (f" ({row.note})" if row.note else ""))

    def human() -> None:
        click.echo(f"base run {result.base.run_id} ({result.base.label}) against candidate run {result.candidate.run_id} "
                   f"({result.candidate.label}) on {paired.pairs} inputs")
        for row in [paired.overall, *paired.assertions]:
            click.echo(line(row))
        diff = paired.score_difference
        if diff.mean is not None:
            click.echo(f"  mean score change {diff.mean:+.3f}{'' if diff.ci is None else f' ({diff.ci.low:+.3f} to {diff.ci.high:+.3f})'}"
                       + ("" if diff.p_value is None else f", paired t p {diff.p_value:.3g}"))
        for title, pairs in (("best", result.best), ("worst", result.worst), ("changed", result.changed)):
            click.echo(f"{title}: " + (", ".join(str(p.example_id) for p in pairs) or "none"))
            for p in pairs:
                click.echo(f"  example {p.example_id}: {_short(p.input)!r} base {_short(p.base_output or p.base_error or '')!r} "
                           f"-> candidate {_short(p.candidate_output or p.candidate_error or '')!r}")

    emit(ctx, {"ok": True, **result.model_dump(mode="json")}, human)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
