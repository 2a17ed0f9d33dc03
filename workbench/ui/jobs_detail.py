"""One job's page: state, losses, events, timing, and the actions its state allows (cancel, retry, clone).

While the job is active the live part refreshes itself with `st.fragment(run_every=...)`, reading what the
watcher wrote to the store; once it is final the page stops refreshing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import plotly.graph_objects as go
import streamlit as st

from workbench.domain.access import Permission
from workbench.domain.jobs import JobState, MetricPoint
from workbench.services import job_views, jobs
from workbench.store.jobs import JobRow
from workbench.ui.permits import may
from workbench.ui.widgets import escape_markdown, run_action, show_flash

if TYPE_CHECKING:
    from workbench.store import Store

REFRESH_S = 5.0
"""How often an active job's view rereads the store (the watcher polls providers on its own clock)."""
SCOPE = "jobs.detail"
BADGE_COLOURS = {
    JobState.QUEUED: "gray", JobState.VALIDATING: "violet", JobState.RUNNING: "blue", JobState.SUCCEEDED: "green",
    JobState.FAILED: "red", JobState.CANCELLED: "orange", JobState.UNKNOWN: "yellow",
}
RETRYABLE = (JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN)


def render(store: Store, job: JobRow, *, on_clone: Callable[[int], None], on_retried: Callable[[int], None]) -> None:
    """Draw the job's header, actions and live view."""
    st.subheader(f":material/model_training: {escape_markdown(job.name)}", anchor=False)
    show_flash(SCOPE)
    _actions(store, job, on_clone, on_retried)
    live = st.fragment(_live, run_every=refresh_every(job.state))
    live(store, job.id, job.state.active)


def refresh_every(state: JobState) -> float | None:
    """Refresh while the provider may still change the job; a final job's view stays still."""
    return REFRESH_S if state.active else None


def _actions(store: Store, job: JobRow, on_clone: Callable[[int], None], on_retried: Callable[[int], None]) -> None:
    if not may(Permission.JOBS_WRITE, "cancel, retry or clone jobs"):
        return
    cols = st.columns([1, 1, 1, 4])
    cols[0].button("Cancel", key="jobs.cancel", icon=":material/stop_circle:", disabled=not job.state.active,
                   on_click=run_action, args=(SCOPE, jobs.cancel_job, store, job.id),
                   kwargs={"success": "Cancel requested; the watcher records when the provider stops the job."},
                   help="Ask the provider to stop this job (queued, validating or running jobs only).")
    cols[1].button("Retry", key="jobs.retry", icon=":material/replay:", disabled=job.state not in RETRYABLE,
                   on_click=_retry, args=(store, job.id, on_retried),
                   help="Launch this failed, cancelled or unknown job again with the same settings, under a new name.")
    cols[2].button("Clone", key="jobs.clone", icon=":material/content_copy:", on_click=on_clone, args=(job.id,),
                   help="Fill the launch form with this job's dataset version, model and hyperparameters.")


def _retry(store: Store, job_id: int, on_retried: Callable[[int], None]) -> None:
    new = run_action(SCOPE, jobs.retry_job, store, job_id, success=lambda r: f"Launched {escape_markdown(r.name)} (job #{r.id}).")
    if new is not None:
        on_retried(new.id)


def _live(store: Store, job_id: int, was_active: bool) -> None:
    detail = jobs.show_job(store, job_id)
    job = detail.job
    if was_active and not job.state.active:
        st.rerun()  # the whole page: the actions change, and the view stops refreshing
    top = st.columns([1.2, 1, 1, 1, 1])
    with top[0]:
        st.badge(job.state.value, color=BADGE_COLOURS[job.state], icon=None)
        st.caption("provider status: " + escape_markdown(job.provider_status or "n/a"))
    top[1].metric("Elapsed", job_views.duration(detail.elapsed_s))
    finished = {JobState.SUCCEEDED: "done", JobState.FAILED: "stopped", JobState.CANCELLED: "stopped"}
    top[2].metric("ETA", finished.get(job.state, "—") if not job.state.active else job_views.duration(detail.eta_s))
    top[3].metric("Estimate", job_views.money(job.estimate_usd))
    top[4].metric("Steps", f"{detail.metrics[-1].step:,}" if detail.metrics else "0")
    st.caption(" · ".join(escape_markdown(part) for part in (
        f"{job.backend} job {job.provider_job_id or '(not submitted)'}", f"base model {job.base_model}",
        f"dataset {job_views.dataset_ref(job.dataset_name, job.version)}", f"created {job.created_at[:16]}",
    )))
    if job.failure_message:
        st.error("The job failed: " + escape_markdown(job.failure_message), icon=":material/error:")
    if job.output_model:
        st.markdown("**Output model:** " + escape_markdown(job.output_model))
    _curves(detail.metrics, active=job.state.active)
    with st.expander(f"Events ({len(detail.events):,})", expanded=bool(detail.events) and job.state.active):
        st.dataframe(job_views.events_frame(detail.events), hide_index=True, width="stretch")
    with st.expander("Hyperparameters and request"):
        st.json(job.hyperparameters or {"(all)": "provider default"})
        if job.request:
            st.json(job.request, expanded=False)


def _curves(points: list[MetricPoint], active: bool = True) -> None:
    series = job_views.loss_series(points)
    if not series:
        st.caption("No loss reported yet: curves appear here as the provider reports steps." if active
                   else "The provider reported no loss for this job.")
        return
    figure = go.Figure()
    for label, (steps, losses) in series.items():
        figure.add_trace(go.Scatter(x=steps, y=losses, mode="lines+markers" if len(steps) < 30 else "lines", name=label))
    figure.update_layout(height=320, margin={"l": 0, "r": 0, "t": 10, "b": 0}, xaxis_title="step", yaxis_title="loss")
    st.plotly_chart(figure, key="jobs.loss_chart")
