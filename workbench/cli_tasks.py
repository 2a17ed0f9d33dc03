"""`workbench tasks ...`: the dataset-wide actions the app runs in the background, from a terminal.

`list`, `show` and `cancel` watch and stop them; `run ID` is what the app spawns to do one (not
for people: `start` in `services.tasks` creates the row it runs). Registered on the main group by
`workbench.cli`; every command takes --json and fails as one JSON object.
"""

from __future__ import annotations

import click

from workbench.cli import command, emit, fail, main, store_of
from workbench.domain.progress import format_amount, format_duration
from workbench.store.tasks import Task, TaskState


@main.group()
def tasks() -> None:
    """Background dataset-wide actions started from the app: list, show, cancel."""


def describe(task: Task) -> str:
    """One line for a person: id, kind, dataset, state and how far it got."""
    line = f"#{task.id} {task.kind} on {_dataset_words(task)}: {task.state.value}"
    if task.state.active and task.total:
        line += f", {task.stage}: {format_amount(task.done, task.total, task.unit)}"
        if task.eta_s is not None:
            line += f", about {format_duration(task.eta_s)} left"
    elif task.state.active and task.stage:
        line += f", {task.stage}"
    if task.error:
        line += f" ({task.error})"
    if task.stale and task.kind != "import":  # an import's result is a report of what it did, never out of date
        line += " (the dataset changed since)"
    return line


def _dataset_words(task: Task) -> str:
    if task.dataset is not None:
        return task.dataset
    if task.dataset_id is None and task.params.get("name"):
        return str(task.params["name"])  # an import names the dataset it is creating
    return "(deleted dataset)"


def _payload(task: Task, *, with_result: bool = True) -> dict:
    data = task.model_dump(mode="json", exclude=set() if with_result else {"result"})
    data["stale"] = task.stale
    return data


@command(tasks, "list")
@click.option("--dataset", default=None, help="Only this dataset's tasks.")
@click.option("--active", is_flag=True, help="Only tasks still queued or running.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def list_cmd(ctx: click.Context, dataset: str | None, active: bool, limit: int) -> None:
    """List recent tasks, newest first."""
    from workbench.services import tasks as svc

    found = svc.list_tasks(store_of(ctx), dataset, active_only=active, limit=limit)
    emit(ctx, {"ok": True, "tasks": [_payload(t, with_result=False) for t in found]},
         lambda: click.echo("\n".join(describe(t) for t in found) or "no tasks"))


@command(tasks, "show")
@click.argument("task_id", type=int)
def show_cmd(ctx: click.Context, task_id: int) -> None:
    """Show one task, with its result when it has one."""
    from workbench.cli import json_text
    from workbench.services import tasks as svc

    task = svc.get(store_of(ctx), task_id)
    emit(ctx, {"ok": True, "task": _payload(task)}, lambda: click.echo(
        describe(task) + ("" if task.result is None else "\n" + json_text(task.result))
    ))


@command(tasks, "cancel")
@click.argument("task_id", type=int)
def cancel_cmd(ctx: click.Context, task_id: int) -> None:
    """Ask a running task to stop; it stops at its next progress report."""
    from workbench.services import tasks as svc

    task = svc.cancel(store_of(ctx), task_id)
    asked = task.cancel_requested and task.state.active
    emit(ctx, {"ok": True, "task": _payload(task, with_result=False)}, lambda: click.echo(
        f"asked task {task_id} to stop" if asked else f"{describe(task)} (it had already ended: nothing to cancel)"
    ))


@command(tasks, "run")
@click.argument("task_id", type=int)
def run_cmd(ctx: click.Context, task_id: int) -> None:
    """Run a queued task in this process (what the app spawns; not needed by hand)."""
    from workbench.services import tasks as svc

    task = svc.run(store_of(ctx), task_id)
    if task.state is TaskState.FAILED:
        fail(ctx, task.error or "the task failed", {"task": _payload(task, with_result=False)})
    emit(ctx, {"ok": task.state is TaskState.DONE, "task": _payload(task, with_result=False)}, lambda: click.echo(describe(task)))
