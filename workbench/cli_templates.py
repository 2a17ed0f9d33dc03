"""`workbench templates ...`: the prompt template library from a terminal.

`list`, `show`, `render` and `diff` read; `create` adds a version (a template when the name is new)
and `label` moves a label. A template is named `NAME`, `NAME@VERSION` or `NAME@LABEL`; plain `NAME`
is its latest version. Registered on the main group by `workbench.cli`; every command takes --json
and fails as one JSON object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from workbench.cli import command, emit, main, store_of
from workbench.domain.templates import CallCost, RenderedPrompt, TemplateDiff, TemplateVersion
from workbench.errors import InvalidInput


@main.group()
def templates() -> None:
    """Prompt templates: versions, labels, rendering with token counts and costs, diffs."""


_VAR_HELP = "A variable as key=value (repeat for more); wins over what --example offers."
_EXAMPLE_HELP = "Take variables from this dataset example: input, reference, system, messages and its metadata keys."


def _read_text(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the {what} file {path} is not UTF-8 text (byte {exc.start})") from None


@command(templates, "list")
def list_cmd(ctx: click.Context) -> None:
    """List templates with their newest version, labels and model."""
    from workbench.services import templates as svc

    found = svc.list_templates(store_of(ctx))
    payload = [{
        "name": s.template.name, "task_type": s.template.task_type, "description": s.template.description,
        "versions": s.versions, "latest": s.latest, "labels": s.labels, "model": s.model,
    } for s in found]

    def human() -> None:
        if not found:
            click.echo("no templates yet: `workbench templates create NAME --user-file F`, or `workbench demo load`")
        for s in found:
            labels = ", ".join(f"{label}={number}" for label, number in s.labels.items())
            click.echo(f"{s.template.name}  [{s.template.task_type}]  v{s.latest}  {labels}  {s.model or ''}".rstrip())

    emit(ctx, {"ok": True, "templates": payload}, human)


@command(templates, "show")
@click.argument("ref")
def show_cmd(ctx: click.Context, ref: str) -> None:
    """Show a template version (NAME, NAME@VERSION or NAME@LABEL), its labels and the versions it has."""
    from workbench.services import templates as svc

    store = store_of(ctx)
    version = svc.resolve(store, ref)
    detail = svc.template_detail(store, version.template)
    history = [{
        "version": v.version, "created_at": v.created_at, "created_by": v.created_by,
        "commit_message": v.commit_message, "labels": v.labels,
    } for v in detail.versions]
    payload = {
        "ok": True, "template": detail.template, "version": version, "labels": detail.labels,
        "versions": history, "moves": detail.moves,
    }

    def human() -> None:
        t = detail.template
        click.echo(f"{version.ref}  [{t.task_type}]  {t.description}".rstrip())
        click.echo(f"  labels: {', '.join(f'{k}={v}' for k, v in detail.labels.items()) or '(none)'}")
        click.echo(f"  made {version.created_at} by {version.created_by or 'unknown'}: {version.commit_message or '(no message)'}")
        click.echo(f"  variables: {', '.join(version.variables) or '(none)'}")
        click.echo(f"  settings: {_settings_words(version)}")
        _block("system template", version.system_template or "(none)")
        _block("user template", version.user_template)
        if version.cot_instruction:
            _block("chain-of-thought instruction", version.cot_instruction)
        for i, shot in enumerate(version.few_shot, 1):
            _block(f"few-shot {i} input" + (f" ({shot.source})" if shot.source else ""), shot.input)
            _block(f"few-shot {i} output", shot.output)
        click.echo(f"versions: {', '.join(str(v['version']) for v in history)}")

    emit(ctx, payload, human)


def _settings_words(version: TemplateVersion) -> str:
    s = version.settings
    words = f"model {s.model}, temperature {s.temperature:g}, max_tokens {s.max_tokens}"
    if s.top_p is not None:
        words += f", top_p {s.top_p:g}"
    if s.stop:
        words += f", stop {s.stop!r}"
    return words


def _block(title: str, text: str) -> None:
    click.echo(f"--- {title}")
    click.echo(text)


@command(templates, "render")
@click.argument("ref")
@click.option("--var", "pairs", multiple=True, help=_VAR_HELP)
@click.option("--dataset", default=None, help="The dataset the example is in (checked).")
@click.option("--example", "example_id", type=int, default=None, help=_EXAMPLE_HELP)
@click.option("--output-tokens", type=click.IntRange(0), default=None,
              help="Expected reply length for the cost (default: the version's max_tokens).")
def render_cmd(ctx: click.Context, ref: str, pairs: tuple[str, ...], dataset: str | None, example_id: int | None,
               output_tokens: int | None) -> None:
    """Render a version exactly as the model is sent it, with token counts and a per-call cost per priced model."""
    from workbench.services import templates as svc

    rendered = svc.render(store_of(ctx), ref, svc.parse_vars(list(pairs)), dataset=dataset, example_id=example_id,
                          expected_output_tokens=output_tokens)
    emit(ctx, {"ok": True, "rendered": rendered}, lambda: _print_rendered(rendered))


def _print_rendered(r: RenderedPrompt) -> None:
    click.echo(f"{r.template}@{r.version}  ({r.settings.model}, temperature {r.settings.temperature:g}, "
               f"max_tokens {r.settings.max_tokens})")
    _block(f"system ({r.tokens.system} tokens)", r.system if r.system is not None else "(no system prompt)")
    for turn, count in zip(r.messages, r.tokens.messages, strict=True):
        _block(f"{turn.role} ({count} tokens)", turn.content)
    click.echo(f"--- {r.tokens.total} input tokens in all ({r.tokens.counter})")
    for cost in r.costs:
        click.echo(_cost_words(cost))


def _cost_words(c: CallCost) -> str:
    mark = " [this version's model]" if c.template_model else ""
    if c.usd is None:
        return f"  {c.model}{mark}: {c.note}"
    return (
        f"  {c.label} ({c.model}){mark}: {_usd(c.usd)} per call = {c.input_tokens} in x {_usd(c.input_usd_per_1k)}/1K"
        f" + {c.output_tokens} out x {_usd(c.output_usd_per_1k)}/1K\n"
        f"      price row {c.price_row}; {c.source}, {c.effective or 'no date given'}"
        + (f"; {c.note}" if c.note else "")
    )


def _usd(amount: float | None) -> str:
    return "?" if amount is None else f"${amount:.8f}".rstrip("0").rstrip(".")


@command(templates, "create")
@click.argument("name")
@click.option("--user-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The user template (Jinja2). Needed for a new template; kept from the newest version otherwise.")
@click.option("--system-file", type=click.Path(exists=True, dir_okay=False), default=None, help="The system template (Jinja2).")
@click.option("--task", default=None, help="Task type, e.g. summarisation (default: general).")
@click.option("--description", default=None, help="What the template is for.")
@click.option("--model", default=None, help="Model id the version is set up for, e.g. amazon.nova-lite-v1:0.")
@click.option("--temperature", type=float, default=None, help="0 to 2.")
@click.option("--max-tokens", type=int, default=None, help="Most tokens the reply may have (> 0).")
@click.option("--top-p", type=float, default=None, help="Nucleus sampling, above 0 and at most 1.")
@click.option("--stop", multiple=True, help="A stop sequence (repeat for more, up to 4).")
@click.option("--cot", default=None, help="Chain-of-thought instruction appended to the system prompt ('' removes it).")
@click.option("--shot", "shots", type=int, multiple=True,
              help="Copy this dataset example's last user and assistant turns as a few-shot pair (repeat in order).")
@click.option("--shots-dataset", default=None, help="The dataset the --shot examples are in (checked).")
@click.option("--no-shots", is_flag=True, help="Drop the few-shot pairs the newest version has.")
@click.option("--message", default="", help="Commit message: what changed and why.")
def create_cmd(ctx: click.Context, name: str, user_file: str | None, system_file: str | None, task: str | None,
               description: str | None, model: str | None, temperature: float | None, max_tokens: int | None,
               top_p: float | None, stop: tuple[str, ...], cot: str | None, shots: tuple[int, ...],
               shots_dataset: str | None, no_shots: bool, message: str) -> None:
    """Create a template, or a new version of NAME when it exists (what is not given is kept from the newest).

    A version whose content equals the newest one's is not made; the command says so and exits 0.
    """
    from workbench.services import templates as svc

    store = store_of(ctx)
    if shots and no_shots:
        raise InvalidInput("--shot and --no-shots contradict each other: give one")
    few_shot = svc.few_shot_from_examples(store, list(shots), shots_dataset) if shots else ([] if no_shots else None)
    settings: dict[str, Any] = {"model": model, "temperature": temperature, "max_tokens": max_tokens, "top_p": top_p}
    if stop:
        settings["stop"] = list(stop)
    result = svc.create_version(
        store, name, user_template=_read_text(user_file, "user template"),
        system_template=_read_text(system_file, "system template"), task_type=task, description=description,
        settings={k: v for k, v in settings.items() if v is not None}, few_shot=few_shot, cot_instruction=cot,
        commit_message=message, created_by=svc.current_user(),
    )
    v = result.version

    def human() -> None:
        if not result.created:
            click.echo(f"no change: the content equals {v.ref}, so no version was made")
        else:
            click.echo(f"created {v.ref}" + (" (new template)" if result.new_template else "") + f"; variables: "
                       f"{', '.join(v.variables) or '(none)'}")

    emit(ctx, {"ok": True, "created": result.created, "new_template": result.new_template, "version": v}, human)


@command(templates, "label")
@click.argument("name")
@click.argument("version", type=int)
@click.argument("label")
def label_cmd(ctx: click.Context, name: str, version: int, label: str) -> None:
    """Point LABEL (production, staging or your own) at VERSION of NAME; the move is kept in its history."""
    from workbench.services import templates as svc

    store = store_of(ctx)
    move = svc.set_label(store, name, version, label, moved_by=svc.current_user())
    labels = svc.template_detail(store, name).labels

    def human() -> None:
        if move is None:
            click.echo(f"{label} already points at {name}@{version}")
        else:
            before = f" (was {move.from_version})" if move.from_version is not None else ""
            click.echo(f"{label} -> {name}@{version}{before}")

    emit(ctx, {"ok": True, "moved": move is not None, "move": move, "labels": labels}, human)


@command(templates, "diff")
@click.argument("name")
@click.argument("v1")
@click.argument("v2")
@click.option("--var", "pairs", multiple=True, help=_VAR_HELP)
@click.option("--dataset", default=None, help="The dataset the example is in (checked).")
@click.option("--example", "example_id", type=int, default=None, help=_EXAMPLE_HELP)
def diff_cmd(ctx: click.Context, name: str, v1: str, v2: str, pairs: tuple[str, ...], dataset: str | None,
             example_id: int | None) -> None:
    """Render two versions (numbers or labels) of NAME on the same input and diff them, part by part."""
    from workbench.services import templates as svc

    found = svc.diff(store_of(ctx), name, _selector(v1), _selector(v2), svc.parse_vars(list(pairs)),
                     dataset=dataset, example_id=example_id)
    emit(ctx, {"ok": True, "diff": found}, lambda: _print_diff(found))


def _selector(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _print_diff(d: TemplateDiff) -> None:
    changed = [p for p in d.parts if p.changed]
    for key, (a, b) in d.settings.items():
        click.echo(f"setting {key}: {a!r} -> {b!r}")
    for part in changed:
        click.echo("\n".join(part.diff))
    if not changed and not d.settings:
        click.echo(f"{d.a.template}@{d.a.version} and @{d.b.version} render the same on this input")
