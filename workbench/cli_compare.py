"""`workbench compare ...`: run template versions x models over a dataset's inputs, side by side.

`run` answers the whole matrix (with progress on a terminal) and prints each variant's summary;
`list`, `show ID` and `export ID` reopen kept runs. Registered on the main group by `workbench.cli`;
every command takes --json and fails as one JSON object.
"""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli import command, emit, fail, main, store_of
from workbench.errors import InvalidInput


@main.group()
def compare() -> None:
    """Compare template versions and models on the same inputs: pass rates, cost, latency."""


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: could not read it as UTF-8 text ({exc})") from None


@command(compare, "run")
@click.option("--variant", "variants", multiple=True, required=True,
              help="NAME[@VERSION]=CLIENT[:MODEL], 2 to 6 times; CLIENT is anthropic, bedrock, openai or local.")
@click.option("--dataset", required=True, help="The dataset whose examples are the inputs (reference answers included).")
@click.option("--split", default=None, type=click.Choice(["train", "validation", "test"]), help="Only this split's examples.")
@click.option("--version", default=None, help="A frozen version of the dataset instead of its live examples.")
@click.option("--limit", type=int, default=None, help="Inputs to take, from the first (default 50).")
@click.option("--assert", "checks", multiple=True,
              help="An assertion, repeatable: equals, contains:X, regex:P, is-json, json-schema:@F, json-field:F, length:10..200, "
                   "guardrails, judge:RUBRIC... Default: equals the reference, trimmed.")
@click.option("--judge", default=None, help="CLIENT:MODEL that grades judge: assertions.")
@click.option("--concurrency", type=int, default=4, show_default=True, help="Calls in flight at once.")
@click.option("--name", default="", help="A name to find the run by later.")
def run_cmd(ctx: click.Context, variants: tuple[str, ...], dataset: str, split: str | None, version: str | None, limit: int | None,
            checks: tuple[str, ...], judge: str | None, concurrency: int, name: str) -> None:
    """Answer every input with every variant, check each output, and print each variant's summary."""
    from workbench.cli_progress import cli_progress
    from workbench.services import comparisons

    with cli_progress(ctx) as progress:
        result = comparisons.run_comparison(
            store_of(ctx), list(variants), dataset=dataset, split=split, version=version, limit=limit, assertions=list(checks),
            judge=judge, concurrency=concurrency, name=name, progress=progress, read_file=_read_text,
        )
    payload = result.model_dump(mode="json")

    def human() -> None:
        click.echo(f"run {result.run_id}: {result.inputs} inputs x {len(result.variants)} variants ({result.state}); "
                   f"assertions: {', '.join(result.assertions) or 'none'}")
        for v in result.variants:
            rate = f"{v.summary.pass_rate:.0%}" if v.summary.pass_rate is not None else "-"
            p50 = f"{v.latency_p50_ms:,.0f} ms" if v.latency_p50_ms is not None else "-"
            click.echo(f"  {v.label}: passed {v.passed}/{v.cells} ({rate}), failed {v.failed}, errors {v.errors}, "
                       f"${v.cost_usd:.4f} spent, ${v.cost_saved_usd:.4f} saved by {v.cache_hits} cache hits, p50 {p50}")

    broken = [v for v in result.variants if v.cells and v.errors == v.cells]
    if broken and len(broken) == len(result.variants):  # kept and named, but it measured nothing
        first = next((c.error for c in comparisons.run_cells(store_of(ctx), result.run_id) if c.error), "")
        message = (f"run {result.run_id} measured nothing: all {sum(v.cells for v in broken)} cells failed with an error; "
                   f"the first: {first}")
        if not ctx.obj["json"]:
            human()
        fail(ctx, message, {**payload, "ok": False, "error": message})
    emit(ctx, {"ok": True, **payload}, human)


@command(compare, "list")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def list_cmd(ctx: click.Context, limit: int) -> None:
    """List recent comparison and evaluation runs, newest first."""
    from workbench.services import comparisons

    found = comparisons.list_runs(store_of(ctx), limit=limit)
    payload = [r.model_dump(mode="json", exclude={"assertions"}) for r in found]

    def human() -> None:
        if not found:
            click.echo("no runs yet: `workbench compare run --variant ... --variant ... --dataset NAME`")
        for r in found:
            labels = ", ".join(v["label"] for v in r.variants)
            click.echo(f"#{r.id} {r.kind} {r.name or ''} on {r.dataset_name or '(deleted dataset)'}: {r.state}, "
                       f"{r.cells_total} cells: {labels}".replace("  ", " "))

    emit(ctx, {"ok": True, "runs": payload}, human)


@command(compare, "show")
@click.argument("run_id", type=int)
@click.option("--cells", "with_cells", is_flag=True, help="Every cell too (output, assertion results, tokens, cost).")
def show_cmd(ctx: click.Context, run_id: int, with_cells: bool) -> None:
    """Show a kept run's summary (and its cells)."""
    from workbench.services import comparisons

    store = store_of(ctx)
    result = comparisons.report(store, run_id)
    payload = result.model_dump(mode="json")
    if with_cells:
        payload["cells"] = [c.model_dump(mode="json") for c in comparisons.run_cells(store, run_id)]

    def human() -> None:
        click.echo(f"run {result.run_id} on {result.dataset}: {result.state}, {result.inputs} inputs")
        for v in result.variants:
            click.echo(f"  {v.label}: passed {v.passed}/{v.cells}, failed {v.failed}, errors {v.errors}, cache hits {v.cache_hits}")

    emit(ctx, {"ok": True, **payload}, human)


@command(compare, "export")
@click.argument("run_id", type=int)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
def export_cmd(ctx: click.Context, run_id: int, out: str, fmt: str) -> None:
    """Write a run's cells, one per input and variant, as CSV or JSON Lines."""
    from workbench.services import comparisons

    written = comparisons.export_run(store_of(ctx), run_id, Path(out), fmt)
    emit(ctx, {"ok": True, "run_id": run_id, "path": out, "cells": written}, lambda: click.echo(f"wrote {written} cells to {out}"))



@command(compare, "review")
@click.argument("run_id", type=int)
@click.option("--all", "everything", is_flag=True, help="Every answered output, not only the failed ones.")
def review_cmd(ctx: click.Context, run_id: int, everything: bool) -> None:
    """Queue a run's failed outputs (or all of them) for the reviewers on the Review page."""
    from workbench.services import comparisons

    ids = comparisons.send_to_review(store_of(ctx), run_id, everything=everything)
    emit(ctx, {"ok": True, "run_id": run_id, "queued": len(ids), "item_ids": ids},
         lambda: click.echo(f"queued {len(ids)} outputs of run {run_id} for review"))
