"""One panel for every dataset-wide action: start it, watch it, stop it, and show the result it kept.

The work runs as a task in a process of its own (`services.tasks`), so the page stays usable
while it runs: only the small live view below refreshes itself, once a second, reading the task's
row. The finished result is kept in the store, so a reopened tab (a new session, another user)
shows it without recomputing, saying when it was computed and whether the dataset changed since.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import streamlit as st

from workbench.domain.progress import format_amount, format_duration
from workbench.errors import WorkbenchError
from workbench.services import tasks
from workbench.store.tasks import Task, TaskState
from workbench.ui.widgets import escape_markdown, flash, plural, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

Render = Callable[[Any, Task], None]
AUTO_START_MAX_EXAMPLES = 50_000
"""A tab may start a pass over a dataset by itself (statistics, a PII count) only up to this size, where it
takes seconds; past it, opening a tab must not start minutes of work nobody asked for: it offers a button."""


def task_panel(
    store: Store,
    dataset: str,
    kind: str,
    params: dict[str, Any],
    *,
    key: str,
    label: str,
    render: Render,
    icon: str | None = None,
    primary: bool = False,
    disabled: bool = False,
    help: str | None = None,  # noqa: A002 - the name every Streamlit widget uses
    container: Any = None,
    follows_data: bool = True,
) -> Task | None:
    """Draw a start button and the latest task of this kind and params: live while it runs, its result when done.

    `render(result, task)` draws a finished result (plain JSON, as the action returned it); the
    button goes in `container` when given (a column beside other inputs), else where the panel is.
    `follows_data=False`: the result does not depend on the live data (a diff of two frozen
    versions), so an edit since is not worth a note. Returns the task shown, if any.
    """
    task = latest(store, dataset, kind, params)
    running = task is not None and task.state.active
    (container or st).button(
        label, key=key, icon=icon, type="primary" if primary else "secondary", disabled=disabled or running, help=help,
        on_click=start_task, args=(store, kind, dataset, params, key),
    )
    show_task(store, dataset, task, key=key, render=render, follows_data=follows_data)
    return task


def show_task(
    store: Store, dataset: str, task: Task | None, *, key: str, render: Render, recompute: bool = True, follows_data: bool = True,
) -> None:
    """Show a task: live while it runs, its kept result when done (with a Recompute offer once stale), else why not."""
    show_flash(key)
    if task is None:
        return
    if task.state.active:
        _live(store, task.id, key)
    elif task.state is TaskState.DONE:
        _kept(store, dataset, task, key, recompute=recompute, follows_data=follows_data)
        render(task.result, task)
    elif task.state is TaskState.CANCELLED:
        st.info(f"Stopped {_progress_words(task)}. Start it again to run it to the end.", icon=":material/stop_circle:")
    else:
        st.error(f"{_label(task)} failed: {escape_markdown(task.error or 'no reason given')}", icon=":material/error:")


def latest(store: Store, dataset: str, kind: str, params: dict[str, Any] | None = None) -> Task | None:
    """Return the newest task of a kind on a dataset (with these params, when given); None when there is none."""
    try:
        return tasks.latest(store, dataset, kind, params)
    except WorkbenchError:
        return None


def start_task(store: Store, kind: str, dataset: str, params: dict[str, Any], key: str) -> Task | None:
    """Start a task from a callback; a refusal is shown by `show_task` under the same key."""
    try:
        task = tasks.start(store, kind, dataset, params)
    except WorkbenchError as exc:
        flash(key, escape_markdown(str(exc)), "error")
        return None
    st.cache_data.clear()
    return task


def session_task(store: Store, key: str) -> Task | None:
    """The task this session started, kept under `key`, as stored now (None once it is gone or was never started)."""
    task_id = st.session_state.get(key)
    if task_id is None:
        return None
    try:
        return tasks.get(store, int(task_id))
    except WorkbenchError:
        return None


def _cancel(store: Store, task_id: int) -> None:
    with contextlib.suppress(WorkbenchError):  # it ended meanwhile: the next refresh shows how
        tasks.cancel(store, task_id)


@st.fragment(run_every=1)
def _live(store: Store, task_id: int, key: str) -> None:
    """The running task's stage, bar and time left, redrawn every second; the page reruns once it ends."""
    try:
        task = tasks.get(store, task_id)
    except WorkbenchError:
        task = None
    if task is None or not task.state.active:
        st.cache_data.clear()  # an action that wrote changed what the rest of the page shows
        st.rerun()
        return
    with st.container(border=True):
        cols = st.columns([3, 1], vertical_alignment="center")  # wide enough for Cancel in a half-width column
        stage = escape_markdown(task.stage or "starting")
        if task.total:
            cols[0].progress(min(1.0, task.done / task.total), text=f"{stage}: {_counts(task)}")
        else:
            cols[0].progress(0.0, text=f"{stage}…")
        cols[1].button(
            "Cancel", key=f"{key}.cancel", icon=":material/stop:", disabled=task.cancel_requested, width="stretch",
            on_click=_cancel, args=(store, task.id),
        )
        if task.cancel_requested:
            st.caption("Stopping at the next safe point…")


def _counts(task: Task) -> str:
    text = format_amount(task.done, task.total, task.unit)
    if task.eta_s is not None:
        text += f", about {format_duration(task.eta_s)} left"
    return text


def _progress_words(task: Task) -> str:
    return f"at {format_amount(task.done, task.total, task.unit)}" if task.total else "before it had counted anything"


def _label(task: Task) -> str:
    from workbench.services.task_actions import action_label

    return action_label(task.kind)


def _kept(store: Store, dataset: str, task: Task, key: str, *, recompute: bool, follows_data: bool) -> None:
    """Say when the shown result was computed and on how much, and offer to recompute when the data changed since."""
    when = when_text(task.finished_at or task.updated_at)
    on = f" on {plural(task.examples, 'example')}" if task.examples is not None else ""
    if not task.stale or not follows_data:
        st.caption(f"Computed {when}{on}.")
        return
    if not recompute:
        st.caption(f"Computed {when}{on}; the dataset has changed since.")
        return
    cols = st.columns([4, 1], vertical_alignment="center")
    cols[0].warning(f"Computed {when}{on}; the dataset has changed since.", icon=":material/update:")
    cols[1].button("Recompute", key=f"{key}.recompute", icon=":material/refresh:", width="stretch",
                   on_click=start_task, args=(store, task.kind, dataset, task.params, key))


def when_text(stamp: str) -> str:
    """Say when something ended, for a caption: `at 2026-11-30 14:05 UTC`."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return escape_markdown(stamp)
    return f"at {moment.strftime('%Y-%m-%d %H:%M')} UTC"
